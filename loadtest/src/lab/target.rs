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
}

/// One running build.
pub struct Target {
    pub build: Build,
    deployment: Deployment,
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
        options.forward_logs = settings.forward_logs;
        options.stop_deadline = Duration::from_secs(5);
        let deployment = Deployment::start(options)
            .await
            .with_context(|| format!("start the {build} build"))?;
        Ok(Target {
            build,
            deployment,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            _data: data,
        })
    }

    pub fn url(&self) -> &str {
        self.deployment.url()
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

    /// Every process's PID right now.
    pub fn pids(&self) -> Vec<u32> {
        self.deployment
            .members()
            .iter()
            .map(|member| member.pid())
            .collect()
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

    /// Waits until no reservation is held and the audit reads the same twice: nothing is
    /// in flight any more. Gives up (and says so) after `deadline`.
    pub async fn quiesce(&self, deadline: Duration) -> anyhow::Result<(Audit, bool)> {
        let until = Instant::now() + deadline;
        loop {
            let audit = self.audit().await?;
            let held = audit
                .reservations
                .iter()
                .any(|reservation| reservation.state == domain::inventory::ReservationState::Held);
            if !held || Instant::now() >= until {
                return Ok((audit, !held));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
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

    /// The components a deploy or fault can target in this build.
    pub fn components(&self) -> Vec<Component> {
        let mut components: Vec<Component> = self
            .deployment
            .members()
            .iter()
            .map(|member| member.component())
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
