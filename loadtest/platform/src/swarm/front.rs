//! The way in from the lab: its front door on this machine, in front of every node's
//! published front port, with health checks.
//!
//! Without IPVS there is no routing mesh, so the front (the monolith, or the gateway) is
//! published in host mode: its port answers only on the nodes that run one of its tasks,
//! and which nodes those are changes whenever Swarm rolls, heals or reschedules it. The lab
//! does what a load balancer in front of a swarm does: a follower asks every node's
//! `/ready` twice a second and gives the front door the set that answers (the gateway's
//! admin port gets a front door of its own, fed by the same checks). A backend that stops
//! between two checks refuses connections, which the front door retries on another one.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::watch;

use super::cluster::Node;
use crate::TargetSettings;
use crate::sidecars::door::{FrontDoor, put_json};
use crate::sidecars::front_door::Backends;

/// How often the follower checks the nodes.
const CHECK_EVERY: Duration = Duration::from_millis(500);
/// One check's deadline: a node that takes longer is out for now.
const CHECK_DEADLINE: Duration = Duration::from_millis(400);

/// The front doors and the follower that feeds them.
pub struct Front {
    public: FrontDoor,
    /// The gateway's admin API, behind a front door of its own (micro build).
    admin: Option<FrontDoor>,
    follower: tokio::task::JoinHandle<()>,
    /// The nodes whose front answered `/ready` at the last check.
    ready: watch::Receiver<Vec<String>>,
    /// Every node's address, for the follower (a node started again has a new one).
    nodes: watch::Sender<Vec<String>>,
}

impl Front {
    /// Starts the front doors and the follower, and waits until some node's front is ready.
    /// `ports`: the public port, then the admin port when the build has one.
    pub async fn start(
        settings: &TargetSettings,
        nodes: &[Node],
        ports: &[u16],
        deadline: Duration,
    ) -> anyhow::Result<Front> {
        let addresses: Vec<String> = nodes.iter().map(|node| node.address.clone()).collect();
        let public_port = ports[0];
        let http = reqwest::Client::builder()
            .timeout(CHECK_DEADLINE)
            .pool_idle_timeout(api::server::CLIENT_POOL_IDLE)
            .build()?;
        let ready_now = wait_some_ready(&http, &addresses, public_port, deadline).await?;
        let backends = |port: u16, ready: &[String]| -> Vec<String> {
            ready
                .iter()
                .map(|address| format!("http://{address}:{port}"))
                .collect()
        };
        let public = FrontDoor::start(
            &settings.program,
            &backends(public_port, &ready_now),
            &settings.env,
            settings.forward_logs,
        )
        .await?;
        let admin = match ports.get(1) {
            Some(port) => Some(
                FrontDoor::start(
                    &settings.program,
                    &backends(*port, &ready_now),
                    &settings.env,
                    settings.forward_logs,
                )
                .await?,
            ),
            None => None,
        };
        let controls: Vec<(String, u16)> = std::iter::once(&public)
            .chain(admin.as_ref())
            .zip(ports)
            .map(|(door, port)| (door.control_url().to_owned(), *port))
            .collect();
        let (tell, ready) = watch::channel(ready_now);
        let (nodes, addresses) = watch::channel(addresses);
        let follower = tokio::spawn(follow(http, addresses, public_port, controls, tell));
        Ok(Front {
            public,
            admin,
            follower,
            ready,
            nodes,
        })
    }

    /// The public URL clients use.
    pub fn url(&self) -> &str {
        self.public.url()
    }

    /// The public front door's control URL. Its backends are the nodes' published ports,
    /// one task of the public service behind each.
    pub fn control_url(&self) -> &str {
        self.public.control_url()
    }

    /// The admin API's URL: the gateway's own front door, or the public one (monolith).
    pub fn admin_url(&self) -> &str {
        self.admin.as_ref().unwrap_or(&self.public).url()
    }

    pub fn pids(&self) -> Vec<u32> {
        std::iter::once(&self.public)
            .chain(self.admin.as_ref())
            .map(FrontDoor::pid)
            .collect()
    }

    /// The nodes to check from now on.
    pub fn set_nodes(&self, nodes: &[Node]) {
        self.nodes
            .send_replace(nodes.iter().map(|node| node.address.clone()).collect());
    }

    /// The addresses of the nodes whose front answered at the last check.
    pub fn ready_nodes(&self) -> Vec<String> {
        self.ready.borrow().clone()
    }

    /// Waits until a check made from now on finds a ready front (after an operation that
    /// may have moved it: an answer from before the operation proves nothing).
    pub async fn wait_ready(&mut self, deadline: Duration) -> anyhow::Result<()> {
        self.wait_ready_where(deadline, |ready| !ready.is_empty())
            .await
    }

    /// Waits until a check made from now on finds the ready nodes' addresses as `wanted`
    /// says (for one: the front off a node that was lost or drained).
    pub async fn wait_ready_where(
        &mut self,
        deadline: Duration,
        wanted: impl Fn(&[String]) -> bool,
    ) -> anyhow::Result<()> {
        self.ready.mark_unchanged();
        let ready = &mut self.ready;
        tokio::time::timeout(deadline, async move {
            loop {
                ready.changed().await?;
                if wanted(&ready.borrow_and_update()) {
                    return Ok::<(), watch::error::RecvError>(());
                }
            }
        })
        .await
        .with_context(|| format!("the front was not ready as wanted within {deadline:?}"))?
        .context("the front follower stopped")
    }

    /// Stops the follower and the front doors.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.follower.abort();
        let stopped = self.public.stop(Duration::from_secs(5)).await;
        if let Some(admin) = self.admin {
            admin.stop(Duration::from_secs(5)).await?;
        }
        stopped
    }
}

/// Checks every node until one's front answers `/ready`; the ready ones.
async fn wait_some_ready(
    http: &reqwest::Client,
    addresses: &[String],
    port: u16,
    deadline: Duration,
) -> anyhow::Result<Vec<String>> {
    let until = Instant::now() + deadline;
    loop {
        let ready = check(http, addresses, port).await;
        if !ready.is_empty() {
            return Ok(ready);
        }
        anyhow::ensure!(
            Instant::now() < until,
            "no node of {addresses:?} answered /ready on port {port} within {deadline:?}"
        );
        tokio::time::sleep(CHECK_EVERY).await;
    }
}

/// The nodes whose front answers `GET /ready` on `port` now.
async fn check(http: &reqwest::Client, addresses: &[String], port: u16) -> Vec<String> {
    let answers = futures::future::join_all(addresses.iter().map(|address| async move {
        let url = format!("http://{address}:{port}/ready");
        let ready = http
            .get(&url)
            .send()
            .await
            .is_ok_and(|response| response.status().is_success());
        ready.then(|| address.clone())
    }))
    .await;
    answers.into_iter().flatten().collect()
}

/// The follower: every [`CHECK_EVERY`], the nodes whose front is ready become each front
/// door's backends (on the door's own port) when the set changed. An empty set is not
/// given (a front door needs a backend): the last one stays, and its requests fail as
/// they would behind any load balancer with nothing healthy behind it.
async fn follow(
    http: reqwest::Client,
    addresses: watch::Receiver<Vec<String>>,
    check_port: u16,
    controls: Vec<(String, u16)>,
    tell: watch::Sender<Vec<String>>,
) {
    let mut given = tell.borrow().clone();
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        let nodes = addresses.borrow().clone();
        let ready = check(&http, &nodes, check_port).await;
        tell.send_replace(ready.clone());
        if ready.is_empty() || ready == given {
            continue;
        }
        for (control, port) in &controls {
            let url = format!("{control}/backends");
            let body = Backends {
                backends: ready
                    .iter()
                    .map(|address| format!("http://{address}:{port}"))
                    .collect(),
            };
            if let Err(error) = put_json(http.put(&url), &url, &body).await {
                tracing::warn!(error = format!("{error:#}"), "the front follower");
            }
        }
        given = ready;
    }
}
