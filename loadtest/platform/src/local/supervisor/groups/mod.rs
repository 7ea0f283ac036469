//! A topology between the two builds on this machine (`domain::topology`): one process per
//! group of contexts (`shoplab service catalog+recommendations`, each over the one database
//! of its group), then the gateway in front of them all.
//!
//! A group's process is named by its group's name; [`GroupDeployment::process_hosting`]
//! finds it from any context it hosts, which is how the lab's operations reach it (a fault
//! or a deploy names a context, as on the monolith, where every context names the one
//! process). `operations` kills, pauses, restarts it on its port and rolls it to a new
//! process with its callers told through `PUT /admin/upstreams` (the end of the roll is
//! `super::retire`, shared with [`super::Deployment`]); it is healed under the same
//! [`RestartPolicy`]. Not here: replicas, fault proxies and CPU quotas (the lab's
//! `Deployment` keys those by `Component`, one per context), and a front door — so the
//! gateway, which the load reaches directly, is restarted in place but never rolled.

mod operations;

use std::time::{Duration, Instant};

use futures::FutureExt as _;

use anyhow::Context as _;
use domain::Context;
use domain::topology::{Group, Topology};
use domain::trust::Peer;

use super::{ORDERS_UPSTREAMS, Options, RestartPolicy, start_ready};
use crate::Restart;
use crate::child::{Launch, Process};

/// A started topology: its group processes and the gateway.
pub struct GroupDeployment {
    options: Options,
    topology: Topology,
    members: Vec<GroupMember>,
    http: reqwest::Client,
}

struct GroupMember {
    /// The group's process name, or `gateway`.
    name: String,
    /// Its group; none for the gateway.
    group: Option<Group>,
    /// The contexts it hosts; none for the gateway.
    contexts: Vec<Context>,
    url: String,
    admin_url: Option<String>,
    /// The port it was first given and the flags it was started with (less the seed): a
    /// restart comes back where its callers look for it, with its data kept.
    port: u16,
    launch: Launch,
    process: Process,
}

impl GroupDeployment {
    /// Prepares one database per group and starts every group, those that call no other
    /// first side by side, then the group hosting `orders` (which may call four others),
    /// then the gateway on `options.port`; each answers `/ready` before what depends on it
    /// starts. A topology of one group is the monolith: start that build instead.
    pub async fn start(
        mut options: Options,
        topology: Topology,
    ) -> anyhow::Result<GroupDeployment> {
        anyhow::ensure!(
            topology.needs_gateway(),
            "{topology} is one process: that is the monolith build"
        );
        let names: Vec<String> = topology.groups().iter().map(Group::name).collect();
        let fresh = options.database.prepare_named(&names).await?;
        let seed = options.seed.or(fresh.then_some(42));
        let mut deployment = GroupDeployment {
            options,
            topology,
            members: Vec::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .pool_idle_timeout(api::server::CLIENT_POOL_IDLE)
                .build()?,
        };
        let orders = deployment.topology.group_of(Context::Orders).clone();
        let leaves: Vec<Group> = deployment
            .topology
            .groups()
            .iter()
            .filter(|group| **group != orders)
            .cloned()
            .collect();
        let first = leaves.iter().map(|group| {
            let launch = deployment.launch_group(group, seed);
            deployment.spawn(launch, Some(group.clone()), 0)
        });
        let started = futures::future::try_join_all(first).await?;
        deployment.members.extend(started);
        let launch = deployment.launch_group(&orders, seed);
        let member = deployment.spawn(launch, Some(orders), 0).await?;
        deployment.members.push(member);
        let launch = deployment.launch_gateway();
        let port = deployment.options.port;
        let gateway = deployment.spawn(launch, None, port).await?;
        deployment.members.push(gateway);
        Ok(deployment)
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The public base URL: the gateway's.
    pub fn url(&self) -> &str {
        self.gateway().map_or("", |gateway| gateway.url.as_str())
    }

    /// The gateway's admin port (reset, audit, faults fanned out to every group).
    pub fn admin_url(&self) -> &str {
        self.gateway()
            .and_then(|gateway| gateway.admin_url.as_deref())
            .unwrap_or("")
    }

    /// The table `shoplab serve topology` prints: process, contexts, pid, URL.
    pub fn map(&self) -> String {
        // A custom group is named by its contexts, which can be long: the columns fit them.
        let width = |column: fn(&GroupMember) -> String, heading: &str| {
            self.members
                .iter()
                .map(|member| column(member).len())
                .chain([heading.len()])
                .max()
                .unwrap_or_default()
        };
        let contexts_of = |member: &GroupMember| {
            let names: Vec<&str> = member.contexts.iter().map(|c| c.as_str()).collect();
            names.join("+")
        };
        let name_width = width(|member| member.name.clone(), "process");
        let contexts_width = width(contexts_of, "contexts");
        let mut map = format!(
            "{:<name_width$} {:<contexts_width$} {:>8}  {}\n",
            "process", "contexts", "pid", "url"
        );
        for member in &self.members {
            map.push_str(&format!(
                "{:<name_width$} {:<contexts_width$} {:>8}  {}\n",
                member.name,
                contexts_of(member),
                member.process.pid(),
                member.url
            ));
        }
        map
    }

    pub fn admin_token(&self) -> &str {
        &self.options.admin_token
    }

    pub fn metrics_token(&self) -> &str {
        &self.options.metrics_token
    }

    /// Starts every process that has exited again on its port; how many there were.
    pub async fn restart_exited(&mut self) -> anyhow::Result<usize> {
        let exited = self.exited();
        for name in &exited {
            self.restart(name).await?;
        }
        Ok(exited.len())
    }

    /// Every process's name and PID, in start order.
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.members
            .iter()
            .map(|member| (member.name.clone(), member.process.pid()))
            .collect()
    }

    /// Every process's name, PID and URL, in start order.
    pub fn processes(&self) -> Vec<(String, u32, String)> {
        self.members
            .iter()
            .map(|member| {
                (
                    member.name.clone(),
                    member.process.pid(),
                    member.url.clone(),
                )
            })
            .collect()
    }

    /// The processes that have exited since they started, reaped, by name.
    pub fn exited(&mut self) -> Vec<String> {
        self.members
            .iter_mut()
            .filter_map(|member| member.process.has_exited().then(|| member.name.clone()))
            .collect()
    }

    /// Stops the gateway first (it drains while the groups still answer), then the group
    /// hosting `orders`, then the rest.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let deadline = self.options.stop_deadline;
        // Started leaves, then orders' group, then the gateway: stopped in reverse.
        for member in self.members.iter_mut().rev() {
            member.process.request_stop()?;
            member.process.finish_stop(deadline).await?;
        }
        Ok(())
    }

    /// Restarts every process that exits, under `Options::restart_policy` (a backoff for a
    /// crash loop), on the port it had, until `stop` resolves; returns each restart. The
    /// same policy as [`super::Deployment::heal_until`]'s, which is keyed by `Component`.
    pub async fn heal_until(&mut self, stop: impl Future<Output = ()>) -> Vec<Restart> {
        let policy: RestartPolicy = self.options.restart_policy;
        let mut restarts: Vec<Restart> = Vec::new();
        tokio::pin!(stop);
        while (&mut stop).now_or_never().is_none() {
            for name in self.exited() {
                let detected = Instant::now();
                tracing::warn!(process = %name, "process exited");
                let recent = restarts
                    .iter()
                    .filter(|restart| restart.component == name)
                    .filter(|restart| {
                        detected.duration_since(restart.at) < policy.crash_loop_window
                    })
                    .count() as u32;
                let backoff = policy.backoff(recent);
                tokio::time::sleep(backoff).await;
                let restarted = self.restart(&name).await;
                let restart = Restart {
                    component: name.clone(),
                    at: detected,
                    backoff_ms: backoff.as_millis() as u64,
                    down_ms: detected.elapsed().as_millis() as u64,
                    error: restarted.err().map(|error| format!("{error:#}")),
                };
                match &restart.error {
                    None => {
                        tracing::info!(process = %name, down_ms = restart.down_ms, "process restarted")
                    }
                    // Logged here, where it is handled: the next round tries again.
                    Some(error) => {
                        tracing::error!(process = %name, error = %error, "process restart failed")
                    }
                }
                restarts.push(restart);
            }
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(policy.poll) => {}
            }
        }
        restarts
    }

    fn gateway(&self) -> Option<&GroupMember> {
        self.members
            .iter()
            .find(|member| member.contexts.is_empty())
    }

    /// The URL of the process hosting `context`.
    fn url_of(&self, context: Context) -> Option<&str> {
        self.members
            .iter()
            .find(|member| member.contexts.contains(&context))
            .map(|member| member.url.as_str())
    }

    /// A group's flags: its contexts, its database, where the contexts it calls but does
    /// not host are (only `orders` calls others), its contexts' keys.
    fn launch_group(&self, group: &Group, seed: Option<u64>) -> Launch {
        let mut args = vec![
            "service".to_owned(),
            group.spec(),
            "--name".to_owned(),
            group.name(),
            "--db".to_owned(),
            self.options.database.url_named(&group.name()),
        ];
        if group.contains(Context::Orders) {
            for context in ORDERS_UPSTREAMS.iter().filter(|c| !group.contains(**c)) {
                let url = self.url_of(*context).unwrap_or_default();
                args.push("--upstream".to_owned());
                args.push(format!("{context}={url}"));
            }
        }
        if let Some(seed) = seed {
            args.push("--seed".to_owned());
            args.push(seed.to_string());
        }
        let mut env = self.environment();
        env.push((
            "SHOPLAB_SERVICE_KEY".to_owned(),
            self.options.service_keys.group_key(group.contexts()),
        ));
        self.launch(group.name(), args, env)
    }

    /// The gateway's flags: where every context is (several of them at one address).
    fn launch_gateway(&self) -> Launch {
        let mut args = vec![
            "service".to_owned(),
            "gateway".to_owned(),
            "--admin-port".to_owned(),
            self.options.admin_port.to_string(),
        ];
        for context in Context::ALL {
            let url = self.url_of(context).unwrap_or_default();
            args.push("--upstream".to_owned());
            args.push(format!("{context}={url}"));
        }
        let mut env = self.environment();
        env.push((
            "SHOPLAB_SERVICE_KEY".to_owned(),
            self.options
                .service_keys
                .private_key(Peer::Gateway)
                .to_owned(),
        ));
        self.launch("gateway".to_owned(), args, env)
    }

    /// What every process is given: the deployment's tokens and every public key.
    fn environment(&self) -> Vec<(String, String)> {
        let options = &self.options;
        let mut env = options.env.clone();
        env.push(("SHOPLAB_ADMIN_TOKEN".into(), options.admin_token.clone()));
        env.push((
            "SHOPLAB_METRICS_TOKEN".into(),
            options.metrics_token.clone(),
        ));
        env.push(("SHOPLAB_TOKEN_SECRET".into(), options.token_secret.clone()));
        env.push((
            "SHOPLAB_SERVICE_PUBLIC_KEYS".into(),
            options.service_keys.public_keys(),
        ));
        env
    }

    fn launch(&self, name: String, args: Vec<String>, env: Vec<(String, String)>) -> Launch {
        Launch {
            label: format!("{name}#1"),
            program: self.options.program.clone(),
            args,
            env,
            forward_logs: self.options.forward_logs,
            limits: self.options.limits,
        }
    }

    /// Starts one process (a group's, or the gateway's for `None`) and waits until it is
    /// ready.
    async fn spawn(
        &self,
        mut launch: Launch,
        group: Option<Group>,
        port: u16,
    ) -> anyhow::Result<GroupMember> {
        let name = group
            .as_ref()
            .map_or_else(|| "gateway".to_owned(), Group::name);
        let started = start_ready(&self.http, &mut launch, port, self.options.start_deadline)
            .await
            .with_context(|| format!("start {name}"))?;
        Ok(GroupMember {
            name,
            contexts: group
                .as_ref()
                .map(|group| group.contexts().to_vec())
                .unwrap_or_default(),
            group,
            url: started.url,
            admin_url: started.admin_url,
            port: started.port,
            launch,
            process: started.process,
        })
    }
}
