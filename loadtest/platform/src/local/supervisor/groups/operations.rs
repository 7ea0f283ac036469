//! What the lab does to a running topology's processes, each named by its group (or
//! `gateway`): kill, signal, restart on its port, and the rolling deploy with its
//! announcement to the callers — the operations `crate::local::topology` realizes for the
//! deploy and fault experiments.

use anyhow::Context as _;
use domain::Context;
use nix::sys::signal::Signal;

use super::{GroupDeployment, GroupMember};
use crate::child::{Launch, Process};
use crate::local::supervisor::{ORDERS_UPSTREAMS, poll_ready, put_all, retire};

impl GroupDeployment {
    /// The name of the process hosting `context` (its group's).
    pub fn process_hosting(&self, context: Context) -> String {
        self.topology.group_of(context).name()
    }

    /// The processes a deploy or a fault can name, one per group, by the first context each
    /// hosts, in start order. Not the gateway: without a front door it cannot be rolled.
    pub fn groups_by_context(&self) -> Vec<Context> {
        self.members
            .iter()
            .filter_map(|member| member.contexts.first().copied())
            .collect()
    }

    /// `kill -9` the process `name`, and reap it. Every context it hosts is gone until it is
    /// restarted.
    pub async fn kill(&mut self, name: &str) -> anyhow::Result<()> {
        self.member_mut(name)?.process.kill().await?;
        Ok(())
    }

    /// Sends a signal to the process `name` (SIGSTOP / SIGCONT to pause and resume it).
    pub fn signal(&mut self, name: &str, signal: Signal) -> anyhow::Result<()> {
        self.member_mut(name)?.process.signal(signal)
    }

    /// Starts the process `name` again on its port, stopping it first if it still runs,
    /// with its flags as the topology stands now (a group rolled since is where its callers
    /// look). Never reseeds.
    pub async fn restart(&mut self, name: &str) -> anyhow::Result<()> {
        let stop_deadline = self.options.stop_deadline;
        let start_deadline = self.options.start_deadline;
        let http = self.http.clone();
        let launch = self.relaunch(name)?;
        let member = self.member_mut(name)?;
        member.process.request_stop()?;
        member.process.finish_stop(stop_deadline).await?;
        let (process, addresses) = Process::spawn(&launch, member.port, start_deadline).await?;
        member.launch = launch;
        member.process = process;
        member.url = addresses.url;
        member.admin_url = addresses.admin_url;
        poll_ready(&http, &mut member.process, &member.url, start_deadline)
            .await
            .with_context(|| format!("restart {name}"))
    }

    /// Rolling deploy of the process `name`, as [`crate::local::supervisor::Deployment::roll`] does a
    /// service's: its replacement on a free port, ready, then the gateway (and the group
    /// hosting `orders`, for the contexts it calls) told where each of its contexts is now,
    /// then the old process retired. Never reseeds.
    pub async fn roll(&mut self, name: &str) -> anyhow::Result<()> {
        self.roll_with(name, |_| {}).await
    }

    /// A rolling deploy of a release that never gets ready (it binds TEST-NET-1, as
    /// [`crate::local::supervisor::Deployment::roll_bad_release`]); the old process keeps serving. How the new
    /// one failed.
    pub async fn roll_bad_release(&mut self, name: &str) -> anyhow::Result<String> {
        let outcome = self
            .roll_with(name, |launch| launch.set_flag("--bind", "192.0.2.1"))
            .await;
        match outcome {
            Ok(()) => anyhow::bail!("the bad release of {name} became ready"),
            Err(failure) => Ok(format!("{failure:#}")),
        }
    }

    async fn roll_with(
        &mut self,
        name: &str,
        change: impl FnOnce(&mut Launch),
    ) -> anyhow::Result<()> {
        let at = self
            .members
            .iter()
            .position(|member| member.name == name)
            .with_context(|| format!("no {name} in this topology"))?;
        let group = self.members[at].group.clone().with_context(|| {
            format!(
                "{name} is not rolled: the load reaches it directly, and a topology between \
                 the builds runs no front door to move it to a new process"
            )
        })?;
        let mut launch = self.relaunch(name)?;
        change(&mut launch);
        let mut fresh = self.spawn(launch, Some(group), 0).await?;
        std::mem::swap(&mut self.members[at], &mut fresh);
        let mut old = fresh;
        if let Err(error) = self.announce(name).await {
            // Put the old one back and drop the new one (kill_on_drop ends it).
            std::mem::swap(&mut self.members[at], &mut old);
            return Err(error.context(format!("point the callers of {name} at the new process")));
        }
        retire(&mut old.process, &self.options).await
    }

    /// Tells whoever calls the contexts of `name` where they are now: the gateway, every
    /// context; the group hosting `orders`, the contexts it calls but does not host.
    async fn announce(&self, name: &str) -> anyhow::Result<()> {
        let member = self.member(name)?;
        let gateway = self
            .gateway()
            .and_then(|gateway| gateway.admin_url.clone())
            .context("the gateway has no admin port")?;
        let orders = self
            .members
            .iter()
            .find(|member| member.contexts.contains(&Context::Orders))
            .filter(|orders| orders.name != name)
            .map(|orders| orders.url.clone());
        let mut calls = Vec::new();
        for context in &member.contexts {
            let body = serde_json::json!({ "context": context, "replicas": [member.url] });
            calls.push((format!("{gateway}/admin/upstreams"), body.clone()));
            if let Some(orders) = orders
                .as_ref()
                .filter(|_| ORDERS_UPSTREAMS.contains(context))
            {
                calls.push((format!("{orders}/admin/upstreams"), body));
            }
        }
        put_all(&self.http, &self.options.admin_token, calls).await
    }

    /// The launch of the process `name` as the topology stands now (never seeding), keeping
    /// the admin port it had.
    fn relaunch(&self, name: &str) -> anyhow::Result<Launch> {
        let member = self.member(name)?;
        let mut launch = match &member.group {
            Some(group) => self.launch_group(group, None),
            None => self.launch_gateway(),
        };
        if let Some(admin_port) = member.launch.flag("--admin-port") {
            launch.set_flag("--admin-port", admin_port);
        }
        Ok(launch)
    }

    fn member(&self, name: &str) -> anyhow::Result<&GroupMember> {
        self.members
            .iter()
            .find(|member| member.name == name)
            .with_context(|| format!("no {name} in this topology"))
    }

    fn member_mut(&mut self, name: &str) -> anyhow::Result<&mut GroupMember> {
        self.members
            .iter_mut()
            .find(|member| member.name == name)
            .with_context(|| format!("no {name} in this topology"))
    }
}
