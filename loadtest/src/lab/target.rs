//! The `local` target: one build of the shop as real child processes on loopback, plus what
//! the experiments do to it — reset the data, read the audit, switch in-process faults,
//! kill / pause / redeploy a component — and what it costs in CPU and memory.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use domain::Context;
use domain::admin::{Audit, ResetSummary};
use nix::sys::signal::Signal;
use serde::Serialize;
use serde_json::{Value, json};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::lab::cgroup::ProcessLimits;
use crate::supervisor::{Build, Component, Database, Deployment, Options};

/// How the lab starts a build.
#[derive(Clone, Debug)]
pub struct TargetSettings {
    pub program: std::path::PathBuf,
    /// `None`: SQLite files in a fresh temporary folder. `Some`: a PostgreSQL server.
    pub postgres: Option<String>,
    pub seed: u64,
    pub products: u32,
    pub users: u32,
    /// Initial stock of every product; large, so the buy journey never runs out.
    pub stock: i64,
    /// More `SHOPLAB_*` settings for every child.
    pub env: Vec<(String, String)>,
    pub forward_logs: bool,
    /// Per-process limits of the shop's processes (none by default).
    pub limits: ProcessLimits,
}

/// One running build.
pub struct Target {
    pub build: Build,
    deployment: Deployment,
    limits: ProcessLimits,
    http: reqwest::Client,
    /// The SQLite files; removed when the target is dropped.
    _data: Option<tempfile::TempDir>,
}

impl Target {
    /// Starts `build` on free loopback ports and waits until it is ready.
    pub async fn start(build: Build, settings: &TargetSettings) -> anyhow::Result<Target> {
        let (database, data) = match &settings.postgres {
            Some(server) => (
                Database::Postgres {
                    server: server.clone(),
                },
                None,
            ),
            None => {
                let data = tempfile::Builder::new()
                    .prefix(&format!("shoplab-{build}-"))
                    .tempdir()
                    .context("create a data folder")?;
                (
                    Database::Sqlite {
                        dir: data.path().to_owned(),
                    },
                    Some(data),
                )
            }
        };
        let admin_token = hex::encode(rand::random::<[u8; 16]>());
        let token_secret = hex::encode(rand::random::<[u8; 24]>());
        let mut options = Options::new(
            build,
            settings.program.clone(),
            database,
            admin_token,
            token_secret,
        );
        options.env = settings.env.clone();
        // Both builds behind the same front door, so either can be rolled or scaled out.
        options.front_door = true;
        options.forward_logs = settings.forward_logs;
        options.limits = settings.limits;
        options.stop_deadline = Duration::from_secs(5);
        let deployment = Deployment::start(options)
            .await
            .with_context(|| format!("start the {build} build"))?;
        Ok(Target {
            build,
            deployment,
            limits: settings.limits,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            _data: data,
        })
    }

    /// The per-process limits every shop process is held to.
    pub fn limits(&self) -> &ProcessLimits {
        &self.limits
    }

    /// The public URL: the front door's.
    pub fn url(&self) -> &str {
        self.deployment.url()
    }

    /// The monolith's or the gateway's own URL, past the front door (the throughput sweep
    /// measures the builds without the front door's hop).
    pub fn direct_url(&self) -> &str {
        self.deployment.direct_url()
    }

    pub fn admin_url(&self) -> &str {
        self.deployment.admin_url()
    }

    pub fn admin_token(&self) -> &str {
        self.deployment.admin_token()
    }

    pub fn deployment(&mut self) -> &mut Deployment {
        &mut self.deployment
    }

    /// Every process of the system under test right now, fault proxies included (their CPU
    /// is the shop's, not the generator's).
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .deployment
            .members()
            .iter()
            .map(|member| member.pid())
            .collect();
        pids.extend(self.deployment.proxy_pids());
        pids
    }

    /// Wipes and seeds every context; returns how seeded users log in.
    pub async fn reset(&self, settings: &TargetSettings) -> anyhow::Result<ResetSummary> {
        let body = json!({
            "products": settings.products,
            "stock": settings.stock,
            "users": settings.users,
            "seed": settings.seed,
        });
        let answer = self
            .admin(reqwest::Method::POST, "/admin/reset", Some(body))
            .await
            .context("reset the data")?;
        serde_json::from_value(answer).context("read the reset summary")
    }

    pub async fn audit(&self) -> anyhow::Result<Audit> {
        let answer = self
            .admin(reqwest::Method::GET, "/admin/audit", None)
            .await?;
        serde_json::from_value(answer).context("read the audit snapshot")
    }

    /// Switches an in-process fault on for `context` (both builds take the same body).
    pub async fn fault(&self, context: Context, kind: &str, params: Value) -> anyhow::Result<()> {
        let body = json!({ "context": context, "kind": kind, "params": params });
        self.admin(reqwest::Method::POST, "/admin/faults", Some(body))
            .await
            .map(drop)
    }

    /// Clears every in-process fault.
    pub async fn heal_faults(&self) -> anyhow::Result<()> {
        self.admin(reqwest::Method::DELETE, "/admin/faults", None)
            .await
            .map(drop)
    }

    /// Waits until no reservation is held and no order is pending (a saga left to its
    /// recovery loop): nothing is in flight any more. Gives up (and says so) after
    /// `deadline`.
    pub async fn quiesce(&self, deadline: Duration) -> anyhow::Result<(Audit, bool)> {
        let until = Instant::now() + deadline;
        loop {
            let audit = self.audit().await?;
            let held =
                audit.reservations.iter().any(|reservation| {
                    reservation.state == domain::inventory::ReservationState::Held
                }) || audit
                    .orders
                    .iter()
                    .any(|order| order.status == domain::orders::OrderStatus::Pending);
            if !held || Instant::now() >= until {
                return Ok((audit, !held));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Self-healing until `until`: every 50 ms, any process that has exited is started again
    /// (as a process manager or Kubernetes would), after a backoff that doubles for a
    /// process that crashes again within 10 s (0 ms, 250 ms, 500 ms, ... up to 4 s).
    /// Returns each restart with how long the process was gone.
    pub async fn self_heal_until(&mut self, until: Instant) -> Vec<Restart> {
        const POLL: Duration = Duration::from_millis(50);
        const CRASH_LOOP_WINDOW: Duration = Duration::from_secs(10);
        let mut restarts: Vec<Restart> = Vec::new();
        while Instant::now() < until {
            for (component, replica) in self.deployment.exited() {
                let detected = Instant::now();
                let recent = restarts
                    .iter()
                    .filter(|restart| restart.component == component.to_string())
                    .filter(|restart| detected.duration_since(restart.at) < CRASH_LOOP_WINDOW)
                    .count() as u32;
                let backoff = match recent {
                    0 => Duration::ZERO,
                    crashes => (Duration::from_millis(250) * 2u32.pow(crashes.min(5) - 1))
                        .min(Duration::from_secs(4)),
                };
                tokio::time::sleep(backoff).await;
                let restarted = self.deployment.restart(component, replica).await;
                restarts.push(Restart {
                    component: component.to_string(),
                    at: detected,
                    backoff_ms: backoff.as_millis() as u64,
                    down_ms: detected.elapsed().as_millis() as u64,
                    error: restarted.err().map(|error| format!("{error:#}")),
                });
            }
            tokio::time::sleep(POLL.min(until.saturating_duration_since(Instant::now()))).await;
        }
        restarts
    }

    /// `kill -9` a component, as a crash would.
    pub async fn kill(&mut self, component: Component) -> anyhow::Result<()> {
        self.deployment.kill(component, 1).await
    }

    /// SIGSTOP / SIGCONT.
    pub fn pause(&mut self, component: Component, paused: bool) -> anyhow::Result<()> {
        let signal = if paused {
            Signal::SIGSTOP
        } else {
            Signal::SIGCONT
        };
        self.deployment.signal(component, 1, signal)
    }

    /// Recreate deploy: stop the running process (SIGTERM, drain), start a new one on the
    /// same port, wait for `/ready`.
    pub async fn recreate(&mut self, component: Component) -> anyhow::Result<()> {
        self.deployment.restart(component, 1).await
    }

    /// Rolling deploy: start the new process, wait until it is ready, move traffic to it,
    /// drain and stop the old one.
    pub async fn roll(&mut self, component: Component) -> anyhow::Result<()> {
        self.deployment.roll(component, 1).await
    }

    /// A rolling deploy of a release that never gets ready; the old process must keep
    /// serving. Returns why the new one failed.
    pub async fn roll_bad_release(&mut self, component: Component) -> anyhow::Result<String> {
        self.deployment.roll_bad_release(component, 1).await
    }

    /// The components a deploy or fault can target in this build (not the front door).
    pub fn components(&self) -> Vec<Component> {
        let mut components: Vec<Component> = self
            .deployment
            .members()
            .iter()
            .map(|member| member.component())
            .filter(|component| *component != Component::FrontDoor)
            .collect();
        components.dedup();
        components
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.deployment.stop().await
    }

    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.admin_url()))
            .bearer_auth(self.admin_token());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        anyhow::ensure!(
            status.is_success(),
            "{method} {path} answered {status}: {text}"
        );
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// One self-healing restart.
#[derive(Clone, Debug, Serialize)]
pub struct Restart {
    pub component: String,
    #[serde(skip)]
    pub at: Instant,
    pub backoff_ms: u64,
    /// From noticing the exit to the new process answering `/ready`.
    pub down_ms: u64,
    pub error: Option<String>,
}

/// CPU seconds and memory of the system under test, read from the kernel by PID.
pub struct Meter {
    /// `None` where the kernel's process table cannot be read; samples are then zero.
    system: Option<System>,
}

/// What the system under test used over a window.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Usage {
    pub cpu_s: f64,
    pub peak_rss_mib: f64,
}

impl Meter {
    pub fn new() -> Meter {
        Meter {
            system: System::new().ok(),
        }
    }

    /// Total CPU seconds and resident memory (MiB) of these processes now.
    pub fn sample(&mut self, pids: &[u32]) -> (f64, f64) {
        let Some(system) = self.system.as_mut() else {
            return (0.0, 0.0);
        };
        let pids: Vec<Pid> = pids.iter().map(|pid| Pid::from_u32(*pid)).collect();
        system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&pids),
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
        let mut cpu_ms = 0;
        let mut rss = 0;
        for pid in &pids {
            if let Some(process) = system.process(*pid) {
                cpu_ms += process.accumulated_cpu_time();
                rss += process.memory();
            }
        }
        (cpu_ms as f64 / 1000.0, rss as f64 / (1024.0 * 1024.0))
    }
}

impl Default for Meter {
    fn default() -> Meter {
        Meter::new()
    }
}
