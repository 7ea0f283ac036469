//! Either build as real processes on this machine: the monolith as one process, or every
//! service (and its replicas) in dependency order, then the gateway; know every process's
//! PID and URL; kill, pause, restart one of them; restart whatever exits (`healing`); stop
//! them all, leaving nothing behind.
//!
//! A topology between the two (`domain::topology`: one process per group of contexts) is
//! started by [`GroupDeployment`], which kills, pauses, restarts and rolls a group's process
//! the same way (the rolling deploy's end, [`retire`], and its announcement, [`put_all`],
//! are shared); it runs no replicas, fault proxies or quotas.
//!
//! `shoplab serve micro` is a thin command over [`Deployment`]; the lab uses the same type
//! to deploy, break and heal either build under load, and the tests use it to do so for real.
//!
//! Every child is the `shoplab` executable itself running its hidden `service <name>`
//! subcommand, so no other binary has to be built. A child dies with the supervisor even
//! when the supervisor is killed with `kill -9` (see [`die_with_supervisor`]).

mod database;
mod groups;
mod healing;
mod options;
mod proxies;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use domain::Context;
use domain::trust::Peer;
use nix::sys::signal::Signal;

use crate::cgroup::ProcessLimits;
use crate::child::{Launch, Process};

pub use crate::child::{SUPERVISOR_PID, die_with_supervisor};
pub use crate::sidecars::door::FrontDoor;
use crate::sidecars::door::put_json;
pub use crate::sidecars::fault_proxy::{Link, NetworkFault};
pub use database::{Database, RunClaim, name_safe, redact};
pub use groups::GroupDeployment;
pub use healing::RestartPolicy;
pub use loadtest_results::component::{Build, Component, LEAF_SERVICES, ORDERS_UPSTREAMS};
pub use options::Options;
use proxies::FaultProxy;

/// One running process of the deployment.
pub struct Member {
    component: Component,
    replica: usize,
    url: String,
    admin_url: Option<String>,
    /// The port it was first given, kept for restarts: callers hold its URL.
    port: u16,
    launch: Launch,
    process: Process,
}

impl Member {
    pub fn component(&self) -> Component {
        self.component
    }

    /// 1-based.
    pub fn replica(&self) -> usize {
        self.replica
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The CPU quota in force on it (cores), read back from its cgroup; `None`: none.
    pub fn cpu_quota(&self) -> Option<f64> {
        self.process.cpu_quota()
    }

    /// The gateway's admin port, the front door's control port; `None` for the rest.
    pub fn admin_url(&self) -> Option<&str> {
        self.admin_url.as_deref()
    }
}

/// A started microservices deployment.
pub struct Deployment {
    options: Options,
    members: Vec<Member>,
    /// The fault proxies `options.proxied` and `options.proxied_databases` asked for.
    proxies: Vec<FaultProxy>,
    http: reqwest::Client,
}

impl Deployment {
    /// Prepares the databases and starts everything in order, each process answering
    /// `/ready` before what depends on it starts.
    pub async fn start(mut options: Options) -> anyhow::Result<Deployment> {
        let fresh = options.database.prepare(options.build).await?;
        let seed = options.seed.or(fresh.then_some(42));
        let build = options.build;
        let mut deployment = Deployment {
            options,
            members: Vec::new(),
            proxies: Vec::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .pool_idle_timeout(api::server::CLIENT_POOL_IDLE)
                .build()?,
        };
        deployment.start_database_proxies().await?;
        // With a front door, the front door takes the public port and the process behind it
        // any free one.
        let port = if deployment.options.front_door {
            0
        } else {
            deployment.options.port
        };
        if build == Build::Monolith {
            deployment.add(Component::Monolith, 1, seed, port).await?;
            deployment.add_front_door().await?;
            return Ok(deployment);
        }

        // The first replica of each leaf service side by side (they do not call each
        // other); it alone seeds, so replicas never wipe what a running one serves.
        let first = LEAF_SERVICES.map(|context| {
            let launch = deployment.launch(Component::Service(context), 1, seed);
            deployment.spawn(launch, Component::Service(context), 1, 0)
        });
        let started = futures::future::try_join_all(first).await?;
        deployment.members.extend(started);
        for context in LEAF_SERVICES {
            for replica in 2..=deployment.options.replicas_of(context) {
                deployment
                    .add(Component::Service(context), replica, None, 0)
                    .await?;
            }
        }
        for context in LEAF_SERVICES {
            if deployment.options.proxied.contains(&context) {
                deployment.start_service_proxies(context).await?;
            }
        }
        for replica in 1..=deployment.options.replicas_of(Context::Orders) {
            let seed = if replica == 1 { seed } else { None };
            deployment
                .add(Component::Service(Context::Orders), replica, seed, 0)
                .await?;
        }
        if deployment.options.proxied.contains(&Context::Orders) {
            deployment.start_service_proxies(Context::Orders).await?;
        }
        deployment.add(Component::Gateway, 1, None, port).await?;
        deployment.add_front_door().await?;
        Ok(deployment)
    }

    async fn add_front_door(&mut self) -> anyhow::Result<()> {
        if self.options.front_door {
            let port = self.options.port;
            self.add(Component::FrontDoor, 1, None, port).await?;
        }
        Ok(())
    }

    pub fn build(&self) -> Build {
        self.options.build
    }

    /// The deployment's service key pairs (`Options::service_keys`).
    pub fn service_keys(&self) -> &domain::trust::Keyring {
        &self.options.service_keys
    }

    /// The public base URL: the front door's, or else the gateway's or the monolith's.
    pub fn url(&self) -> &str {
        self.members
            .iter()
            .find(|member| member.component == Component::FrontDoor)
            .map_or_else(|| self.direct_url(), |door| door.url.as_str())
    }

    /// The gateway's or the monolith's own URL, past any front door.
    pub fn direct_url(&self) -> &str {
        self.front().map_or("", |front| front.url.as_str())
    }

    /// The admin base URL (needs [`Deployment::admin_token`]): the gateway's admin port, or
    /// the monolith's one port.
    pub fn admin_url(&self) -> &str {
        self.front()
            .map(|front| front.admin_url.as_deref().unwrap_or(front.url.as_str()))
            .unwrap_or("")
    }

    pub fn admin_token(&self) -> &str {
        &self.options.admin_token
    }

    /// Opens every process's `/metrics` and nothing else.
    pub fn metrics_token(&self) -> &str {
        &self.options.metrics_token
    }

    /// Every process, in start order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn member(&self, component: Component, replica: usize) -> anyhow::Result<&Member> {
        self.members
            .iter()
            .find(|member| member.component == component && member.replica == replica)
            .with_context(|| format!("no {component}#{replica} in this deployment"))
    }

    /// The base URLs of every replica of `context`.
    pub fn urls(&self, context: Context) -> Vec<String> {
        self.members
            .iter()
            .filter(|member| member.component == Component::Service(context))
            .map(|member| member.url.clone())
            .collect()
    }

    /// The table `shoplab serve micro` prints: service, replica, pid, URL.
    pub fn map(&self) -> String {
        let mut map = format!(
            "{:<16} {:>7} {:>8}  {}\n",
            "service", "replica", "pid", "url"
        );
        for member in &self.members {
            map.push_str(&format!(
                "{:<16} {:>7} {:>8}  {}\n",
                member.component.as_str(),
                member.replica,
                member.pid(),
                member.url
            ));
        }
        map
    }

    /// `kill -9` one process, and reap it. Its callers see refused connections until it is
    /// restarted.
    pub async fn kill(&mut self, component: Component, replica: usize) -> anyhow::Result<()> {
        let member = self.member_mut(component, replica)?;
        member.process.kill().await?;
        Ok(())
    }

    /// The processes that have exited since they were started (crashed, or killed by a
    /// fault), reaped; [`Deployment::restart`] brings each back, and
    /// [`Deployment::heal_until`] does so under the restart policy.
    pub fn exited(&mut self) -> Vec<(Component, usize)> {
        self.members
            .iter_mut()
            .filter_map(|member| {
                member
                    .process
                    .has_exited()
                    .then_some((member.component, member.replica))
            })
            .collect()
    }

    /// Sends a signal to one process (SIGSTOP / SIGCONT to pause and resume it).
    pub fn signal(
        &mut self,
        component: Component,
        replica: usize,
        signal: Signal,
    ) -> anyhow::Result<()> {
        self.member_mut(component, replica)?.process.signal(signal)
    }

    /// Starts one process again on the port it had, so everyone that calls it finds it
    /// where it was; stops it first (SIGTERM, then the deadline) if it still runs. Never
    /// reseeds: a restart keeps the data.
    pub async fn restart(&mut self, component: Component, replica: usize) -> anyhow::Result<()> {
        let deadline = self.options.stop_deadline;
        let start_deadline = self.options.start_deadline;
        // From the current map, not the first start's: a replica may have moved since.
        let launch = self.relaunch(component, replica)?;
        let member = self.member_mut(component, replica)?;
        member.process.request_stop()?;
        member.process.finish_stop(deadline).await?;
        let port = member.port;
        let (process, addresses) = Process::spawn(&launch, port, start_deadline).await?;
        let member = self.member_mut(component, replica)?;
        member.launch = launch;
        member.process = process;
        member.url = addresses.url;
        member.admin_url = addresses.admin_url;
        let url = member.url.clone();
        self.wait_ready(component, replica, &url).await
    }

    /// Rolling deploy of one process: start its replacement on a free port, wait until it is
    /// ready, point its callers at it (the front door for the monolith and the gateway;
    /// the gateway's and orders' directories for a service), then stop the old process,
    /// which drains what it was still answering. Never reseeds.
    pub async fn roll(&mut self, component: Component, replica: usize) -> anyhow::Result<()> {
        self.roll_with(component, replica, |_| {}).await
    }

    /// A rolling deploy of a bad release: the new process is told to bind an address this
    /// machine does not have (TEST-NET-1), so it never becomes ready; the deploy is abandoned and the old process keeps serving (the
    /// automatic rollback of a rolling deploy). Returns how the new process failed.
    pub async fn roll_bad_release(
        &mut self,
        component: Component,
        replica: usize,
    ) -> anyhow::Result<String> {
        let outcome = self
            .roll_with(component, replica, |launch| {
                launch.set_flag("--bind", "192.0.2.1");
            })
            .await;
        match outcome {
            Ok(()) => anyhow::bail!("the bad release of {component} became ready"),
            Err(failure) => Ok(format!("{failure:#}")),
        }
    }

    async fn roll_with(
        &mut self,
        component: Component,
        replica: usize,
        change: impl FnOnce(&mut Launch),
    ) -> anyhow::Result<()> {
        anyhow::ensure!(
            component != Component::FrontDoor,
            "the front door itself is not rolled"
        );
        if component.is_front() {
            anyhow::ensure!(
                self.options.front_door,
                "rolling {component} needs the front door (Options::front_door)"
            );
        }
        let mut launch = self.relaunch(component, replica)?;
        // The old process still holds its admin port while the new one starts.
        if launch.flag("--admin-port").is_some() {
            launch.set_flag("--admin-port", "0");
        }
        change(&mut launch);
        let mut fresh = self.spawn(launch, component, replica, 0).await?;
        let at = self
            .members
            .iter()
            .position(|member| member.component == component && member.replica == replica)
            .with_context(|| format!("no {component}#{replica} in this deployment"))?;
        std::mem::swap(&mut self.members[at], &mut fresh);
        let mut old = fresh;
        if let Err(error) = self.announce(component).await {
            // Put the old one back and drop the new one (kill_on_drop ends it).
            std::mem::swap(&mut self.members[at], &mut old);
            return Err(error.context(format!(
                "point the callers of {component} at the new process"
            )));
        }
        retire(&mut old.process, &self.options).await
    }

    /// Scale-out: one more replica of a service or, behind the front door, of the
    /// monolith or the gateway; its callers learn about it before this returns.
    pub async fn add_replica(&mut self, component: Component) -> anyhow::Result<usize> {
        let replica = self
            .members
            .iter()
            .filter(|member| member.component == component)
            .count()
            + 1;
        match component {
            // The public process: the front door balances over its replicas.
            Component::Monolith | Component::Gateway => anyhow::ensure!(
                self.options.front_door,
                "a second {component} needs the front door to balance over both"
            ),
            Component::Service(_) => {}
            other => anyhow::bail!("{other} does not run replicas"),
        }
        self.add(component, replica, None, 0).await?;
        self.announce(component).await?;
        Ok(replica)
    }

    /// Holds every shop process (the monolith, each service replica, the gateway; not the
    /// lab's front door and fault proxies) to `cores` of CPU time each, and every one
    /// started from now on (a replica, a restart) from its start; `None` lifts it. What is
    /// in force, per process, in the cgroup files' words.
    pub fn set_cpu_quota(&mut self, cores: Option<f64>) -> anyhow::Result<Vec<String>> {
        self.options.limits.cpu_cores = cores;
        let mut in_force = Vec::new();
        for member in self
            .members
            .iter_mut()
            .filter(|member| member.component != Component::FrontDoor)
        {
            let pid = member.pid();
            if let Some(note) = member.process.set_cpu_quota(cores)? {
                in_force.push(format!(
                    "{}#{} (pid {pid}): {note}",
                    member.component, member.replica
                ));
            }
        }
        Ok(in_force)
    }

    /// The CPU quota every shop process is held to (cores), as started; `None`: none.
    pub fn cpu_quota(&self) -> Option<f64> {
        self.options.limits.cpu_cores
    }

    /// Tells whoever routes to `component` where its replicas are now.
    async fn announce(&self, component: Component) -> anyhow::Result<()> {
        let urls = |component: Component| -> Vec<String> {
            self.members
                .iter()
                .filter(|member| member.component == component)
                .map(|member| member.url.clone())
                .collect()
        };
        let mut calls: Vec<(String, serde_json::Value)> = Vec::new();
        match component {
            Component::Monolith | Component::Gateway => {
                if let Some(door) = self.member_of(Component::FrontDoor) {
                    let control = door
                        .admin_url
                        .clone()
                        .context("the front door has no control port")?;
                    calls.push((
                        format!("{control}/backends"),
                        serde_json::json!({ "backends": urls(component) }),
                    ));
                }
            }
            Component::Service(ref context) => {
                let body = serde_json::json!({ "context": context, "replicas": urls(component) });
                // Every gateway replica calls the services.
                for gateway in self
                    .members
                    .iter()
                    .filter(|member| member.component == Component::Gateway)
                {
                    let admin = gateway
                        .admin_url
                        .clone()
                        .context("the gateway has no admin port")?;
                    calls.push((format!("{admin}/admin/upstreams"), body.clone()));
                }
                if ORDERS_UPSTREAMS.contains(context) {
                    for orders in urls(Component::Service(Context::Orders)) {
                        calls.push((format!("{orders}/admin/upstreams"), body.clone()));
                    }
                }
            }
            Component::FrontDoor => {}
        }
        put_all(&self.http, &self.options.admin_token, calls).await
    }

    fn member_of(&self, component: Component) -> Option<&Member> {
        self.members
            .iter()
            .find(|member| member.component == component)
    }

    /// The launch of a process as the deployment stands now (never seeding), keeping the
    /// admin port it had.
    fn relaunch(&self, component: Component, replica: usize) -> anyhow::Result<Launch> {
        let member = self.member(component, replica)?;
        let mut launch = self.launch(component, replica, None);
        if let Some(admin_port) = member.launch.flag("--admin-port") {
            launch.set_flag("--admin-port", admin_port);
        }
        Ok(launch)
    }

    /// Stops everything: SIGTERM by PID in reverse start order (gateway, orders, the rest),
    /// each group given the stop deadline before SIGKILL; every child is reaped.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let deadline = self.options.stop_deadline;
        for tier in 0..=3 {
            let in_tier = |member: &&mut Member| member.component.stop_tier() == tier;
            for member in self.members.iter_mut().rev().filter(in_tier) {
                member.process.request_stop()?;
            }
            let stopping = self
                .members
                .iter_mut()
                .filter(|member| member.component.stop_tier() == tier)
                .map(|member| member.process.finish_stop(deadline));
            futures::future::try_join_all(stopping).await?;
        }
        self.stop_proxies().await
    }

    /// The process that owns the public port.
    fn front(&self) -> Option<&Member> {
        self.members
            .iter()
            .find(|member| member.component.is_front())
    }

    fn member_mut(&mut self, component: Component, replica: usize) -> anyhow::Result<&mut Member> {
        self.members
            .iter_mut()
            .find(|member| member.component == component && member.replica == replica)
            .with_context(|| format!("no {component}#{replica} in this deployment"))
    }

    /// The flags and environment of one process. Orders is told where its four upstreams
    /// are, the gateway where everyone is (payments too, for the admin port).
    fn launch(&self, component: Component, replica: usize, seed: Option<u64>) -> Launch {
        let options = &self.options;
        let mut args = vec!["service".to_owned(), component.as_str().to_owned()];
        let upstreams: &[Context] = match component {
            Component::Service(Context::Orders) => &ORDERS_UPSTREAMS,
            Component::Service(_) | Component::Monolith | Component::FrontDoor => &[],
            Component::Gateway => &Context::ALL,
        };
        for context in upstreams {
            args.push("--upstream".to_owned());
            args.push(format!(
                "{context}={}",
                self.upstream_urls(*context).join(",")
            ));
        }
        match component {
            Component::Service(_) => {
                args.push("--db".to_owned());
                args.push(self.database_url(component));
            }
            Component::Gateway => {
                // The admin port asked for is the first gateway's; a replica takes any.
                let admin_port = if replica == 1 { options.admin_port } else { 0 };
                args.push("--admin-port".to_owned());
                args.push(admin_port.to_string());
            }
            Component::Monolith => {
                args.push("--db".to_owned());
                args.push(self.database_url(component));
            }
            Component::FrontDoor => {
                args.push("--admin-port".to_owned());
                args.push("0".to_owned());
                let behind = match options.build {
                    Build::Monolith => Component::Monolith,
                    Build::Micro => Component::Gateway,
                };
                for member in self
                    .members
                    .iter()
                    .filter(|member| member.component == behind)
                {
                    args.push("--backend".to_owned());
                    args.push(member.url.clone());
                }
            }
        }
        if let Some(seed) = seed {
            args.push("--seed".to_owned());
            args.push(seed.to_string());
        }
        let mut env = options.env.clone();
        env.push(("SHOPLAB_ADMIN_TOKEN".into(), options.admin_token.clone()));
        env.push((
            "SHOPLAB_METRICS_TOKEN".into(),
            options.metrics_token.clone(),
        ));
        env.push(("SHOPLAB_TOKEN_SECRET".into(), options.token_secret.clone()));
        // Its own private key and everyone's public keys; the monolith and the front door
        // make no internal calls and get none.
        let peer = match component {
            Component::Service(context) => Some(Peer::Service(context)),
            Component::Gateway => Some(Peer::Gateway),
            Component::Monolith | Component::FrontDoor => None,
        };
        if let Some(peer) = peer {
            env.extend(options.service_keys.environment(peer));
        }
        Launch {
            label: format!("{component}#{replica}"),
            program: options.program.clone(),
            args,
            env,
            forward_logs: options.forward_logs,
            limits: match component {
                // The lab's own part, not the shop's.
                Component::FrontDoor => ProcessLimits::default(),
                _ => options.limits,
            },
        }
    }

    /// Starts one process and waits until it is ready; then it joins the deployment.
    async fn add(
        &mut self,
        component: Component,
        replica: usize,
        seed: Option<u64>,
        port: u16,
    ) -> anyhow::Result<()> {
        let launch = self.launch(component, replica, seed);
        let member = self.spawn(launch, component, replica, port).await?;
        self.members.push(member);
        Ok(())
    }

    async fn spawn(
        &self,
        mut launch: Launch,
        component: Component,
        replica: usize,
        port: u16,
    ) -> anyhow::Result<Member> {
        let started = start_ready(&self.http, &mut launch, port, self.options.start_deadline)
            .await
            .with_context(|| format!("start {component}#{replica}"))?;
        Ok(Member {
            component,
            replica,
            url: started.url,
            admin_url: started.admin_url,
            port: started.port,
            launch,
            process: started.process,
        })
    }

    async fn wait_ready(
        &mut self,
        component: Component,
        replica: usize,
        url: &str,
    ) -> anyhow::Result<()> {
        let http = self.http.clone();
        let deadline = self.options.start_deadline;
        let member = self.member_mut(component, replica)?;
        poll_ready(&http, &mut member.process, url, deadline)
            .await
            .with_context(|| format!("restart {component}#{replica}"))
    }
}

/// The end of every rolling deploy, of a service as of a group of contexts: once the callers
/// were told where the new process is, the old one gets the deregistration delay (requests
/// already routed to it arrive), then SIGTERM, and drains what it still answers within the
/// stop deadline.
async fn retire(old: &mut Process, options: &Options) -> anyhow::Result<()> {
    tokio::time::sleep(options.deregistration_delay).await;
    old.request_stop()?;
    old.finish_stop(options.stop_deadline).await?;
    Ok(())
}

/// Sends each `PUT` of an announcement (`/admin/upstreams` of a caller, `/backends` of the
/// front door) with the admin token, in order; the first refusal ends it.
async fn put_all(
    http: &reqwest::Client,
    admin_token: &str,
    calls: Vec<(String, serde_json::Value)>,
) -> anyhow::Result<()> {
    for (url, body) in calls {
        put_json(http.put(&url).bearer_auth(admin_token), &url, &body).await?;
    }
    Ok(())
}

/// One process started and answering ready, where it listens.
struct Started {
    process: Process,
    url: String,
    admin_url: Option<String>,
    port: u16,
}

/// Spawns `launch` on `port` (0: any free one) and waits until it answers ready; `launch` is
/// then what restarts it: without `--seed` (a restart keeps the data: only the first start
/// seeds) and on the admin port it got, so whoever holds the admin URL still reaches it.
/// Every process the local platform starts, of either build or of a group, starts here.
async fn start_ready(
    http: &reqwest::Client,
    launch: &mut Launch,
    port: u16,
    deadline: Duration,
) -> anyhow::Result<Started> {
    let (mut process, addresses) = Process::spawn(launch, port, deadline).await?;
    let port = port_of(&addresses.url)
        .with_context(|| format!("it printed the address {}", addresses.url))?;
    launch.remove_flag("--seed");
    if let Some(admin_port) = addresses.admin_url.as_deref().and_then(port_of) {
        launch.set_flag("--admin-port", &admin_port.to_string());
    }
    poll_ready(http, &mut process, &addresses.url, deadline).await?;
    Ok(Started {
        process,
        url: addresses.url,
        admin_url: addresses.admin_url,
        port,
    })
}

/// The port of a base URL such as `http://127.0.0.1:4101`.
fn port_of(url: &str) -> Option<u16> {
    url.rsplit(':').next()?.parse().ok()
}

/// Polls `GET {url}/ready` until it answers 200, the process exits, or `deadline` passes.
async fn poll_ready(
    http: &reqwest::Client,
    process: &mut Process,
    url: &str,
    deadline: Duration,
) -> anyhow::Result<()> {
    let until = Instant::now() + deadline;
    loop {
        let ready = http.get(format!("{url}/ready")).send().await;
        if ready.is_ok_and(|response| response.status().is_success()) {
            return Ok(());
        }
        if process.has_exited() {
            anyhow::bail!("it exited; its last output:\n{}", process.tail());
        }
        if Instant::now() >= until {
            anyhow::bail!(
                "{url}/ready did not answer 200 within {deadline:?}; its last output:\n{}",
                process.tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
