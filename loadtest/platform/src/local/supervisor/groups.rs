//! A topology between the two builds on this machine (`domain::topology`): one process per
//! group of contexts (`shoplab service catalog+recommendations`, each over the one database
//! of its group), then the gateway in front of them all.
//!
//! Not yet a [`super::Deployment`]: every operation of the lab on a deployment (kill, pause,
//! restart, roll, scale, fault proxies, quotas, self-healing) and every experiment names its
//! processes by `Component`, one per context or the monolith, and a process hosting several
//! contexts is none of those. Making a group a `Component` touches every platform and
//! experiment; until then a topology here can be started, used and stopped, and
//! [`GroupDeployment::exited`] tells that a process is gone rather than restarting it.

use std::time::Duration;

use anyhow::Context as _;
use domain::Context;
use domain::topology::{Group, Topology};
use domain::trust::Peer;

use super::{ORDERS_UPSTREAMS, Options, poll_ready};
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
    /// The contexts it hosts; none for the gateway.
    contexts: Vec<Context>,
    url: String,
    admin_url: Option<String>,
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
            deployment.spawn(launch, group.name(), group.contexts().to_vec(), 0)
        });
        let started = futures::future::try_join_all(first).await?;
        deployment.members.extend(started);
        let launch = deployment.launch_group(&orders, seed);
        let member = deployment
            .spawn(launch, orders.name(), orders.contexts().to_vec(), 0)
            .await?;
        deployment.members.push(member);
        let launch = deployment.launch_gateway();
        let port = deployment.options.port;
        let gateway = deployment
            .spawn(launch, "gateway".to_owned(), Vec::new(), port)
            .await?;
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
        let mut map = format!(
            "{:<16} {:<40} {:>8}  {}\n",
            "process", "contexts", "pid", "url"
        );
        for member in &self.members {
            let contexts: Vec<&str> = member.contexts.iter().map(|c| c.as_str()).collect();
            map.push_str(&format!(
                "{:<16} {:<40} {:>8}  {}\n",
                member.name,
                contexts.join("+"),
                member.process.pid(),
                member.url
            ));
        }
        map
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

    async fn spawn(
        &self,
        launch: Launch,
        name: String,
        contexts: Vec<Context>,
        port: u16,
    ) -> anyhow::Result<GroupMember> {
        let (process, addresses) = Process::spawn(&launch, port, self.options.start_deadline)
            .await
            .with_context(|| format!("start {name}"))?;
        let mut member = GroupMember {
            name,
            contexts,
            url: addresses.url,
            admin_url: addresses.admin_url,
            process,
        };
        poll_ready(
            &self.http,
            &mut member.process,
            &member.url,
            self.options.start_deadline,
        )
        .await
        .with_context(|| format!("start {}", member.name))?;
        Ok(member)
    }
}
