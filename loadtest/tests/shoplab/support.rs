//! What the process tests share: a microservices deployment on a fresh data folder with a
//! small seed, HTTP helpers, and polling with a deadline. No test helpers beyond that belong
//! here.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use loadtest_platform::local::supervisor::{Build, Database, Deployment, Options};
use serde_json::{Value, json};

pub const SEED: u64 = 7;
pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const TOKEN_SECRET: &str = "test-token-secret";
/// The hop budget the deployments run with; fault answers must come within it.
pub const HOP_TIMEOUT: Duration = Duration::from_millis(1_000);

/// Settings for every child: a small shop (fast to seed), a short hop budget, a short drain.
pub fn child_env() -> Vec<(String, String)> {
    [
        ("SHOPLAB_SEED_PRODUCTS", "20".to_owned()),
        ("SHOPLAB_SEED_USERS", "2".to_owned()),
        ("SHOPLAB_SHUTDOWN_DRAIN_MS", "2000".to_owned()),
        (
            "SHOPLAB_HOP_TIMEOUT_MS",
            HOP_TIMEOUT.as_millis().to_string(),
        ),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

pub fn shoplab_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_shoplab"))
}

/// A deployment started by the library, its data folder, and a client.
pub struct Lab {
    pub deployment: Deployment,
    pub http: reqwest::Client,
    _data: tempfile::TempDir,
}

impl Lab {
    /// Every service and the gateway on free ports over fresh SQLite files, seeded with
    /// [`SEED`]. `SHOPLAB_TEST_LOGS=1` forwards the children's logs to the test's stderr.
    pub async fn start() -> Lab {
        let data = tempfile::tempdir().expect("temp dir");
        let database = Database::Sqlite {
            dir: data.path().to_owned(),
        };
        let mut options = Options::new(
            Build::Micro,
            shoplab_binary(),
            database,
            ADMIN_TOKEN.to_owned(),
            TOKEN_SECRET.to_owned(),
        );
        options.seed = Some(SEED);
        options.env = child_env();
        options.forward_logs = std::env::var_os("SHOPLAB_TEST_LOGS").is_some();
        options.stop_deadline = Duration::from_secs(5);
        let deployment = Deployment::start(options)
            .await
            .expect("the deployment starts");
        Lab {
            deployment,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("http client"),
            _data: data,
        }
    }

    /// A URL on the gateway's public port.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.deployment.url())
    }

    /// A URL on the gateway's admin port.
    pub fn admin_url(&self, path: &str) -> String {
        format!("{}{path}", self.deployment.admin_url())
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        answer(self.http.get(self.url(path))).await
    }

    /// Logs in as seeded user 1 and returns the bearer token.
    pub async fn log_in(&self) -> String {
        let (status, session) = answer(self.http.post(self.url("/api/sessions")).json(&json!({
            "email": "user1@shoplab.test",
            "password": format!("shoplab-{SEED}"),
        })))
        .await;
        assert_eq!(status, 200, "log-in answered {session}");
        session["token"].as_str().expect("a token").to_owned()
    }

    pub async fn put_in_cart(&self, token: &str, product_id: i64, quantity: i64) -> (u16, Value) {
        answer(
            self.http
                .put(self.url(&format!("/api/cart/items/{product_id}")))
                .bearer_auth(token)
                .json(&json!({ "quantity": quantity })),
        )
        .await
    }

    pub async fn checkout(&self, token: &str, key: &str) -> (u16, Value) {
        answer(
            self.http
                .post(self.url("/api/orders"))
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(&json!({})),
        )
        .await
    }

    pub async fn stop(self) {
        self.deployment.stop().await.expect("the deployment stops");
    }
}

/// Sends a request and returns its status and JSON body (`null` when the body is not JSON).
pub async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("the request is answered");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Polls `condition` every 25 ms until it holds; fails the test after `deadline`.
pub async fn eventually(deadline: Duration, what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let until = Instant::now() + deadline;
    while !condition().await {
        assert!(
            Instant::now() < until,
            "{what} did not happen within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Whether a process is gone: no `/proc/<pid>`, or only a zombie waiting for a reaper.
pub fn process_is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name in parentheses: `1234 (shoplab) Z ...`.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// How the orchestration and lab tests start a build through the lab's own `Target`: the
/// small shop of [`child_env`], reset to [`SEED`] with 20 products of 100 units and 2 users.
pub fn target_settings() -> loadtest_platform::TargetSettings {
    loadtest_platform::TargetSettings {
        program: shoplab_binary(),
        postgres: None,
        seed: SEED,
        products: 20,
        users: 2,
        stock: 100,
        env: child_env(),
        forward_logs: std::env::var_os("SHOPLAB_TEST_LOGS").is_some(),
        limits: Default::default(),
        platform: "local".to_owned(),
        compose: Default::default(),
        kubernetes: Default::default(),
        swarm: Default::default(),
    }
}

/// Starts `build` as the lab does (free ports, fresh SQLite files) and resets it with
/// [`target_settings`], so every test starts from the same known data.
pub async fn start_target(build: Build) -> loadtest_platform::Target {
    let settings = target_settings();
    let target = loadtest_platform::Target::start(build, &settings)
        .await
        .unwrap_or_else(|error| panic!("the {build} build starts: {error:#}"));
    let summary = target
        .reset(&settings)
        .await
        .unwrap_or_else(|error| panic!("the {build} build resets: {error:#}"));
    assert_eq!(summary.user_password, format!("shoplab-{SEED}"));
    target
}

/// [`start_target`] for a topology between the builds (`coarse`, a spec): its group
/// processes and gateway through the lab's `Target`, reset the same way.
pub async fn start_topology_target(topology: &str) -> loadtest_platform::Target {
    let settings = target_settings();
    let topology = domain::Topology::parse(topology).expect("a topology");
    let target = loadtest_platform::Target::start_topology(&topology, &settings)
        .await
        .unwrap_or_else(|error| panic!("the topology {topology} starts: {error:#}"));
    target
        .reset(&settings)
        .await
        .unwrap_or_else(|error| panic!("the topology {topology} resets: {error:#}"));
    target
}

/// The PID of the process `name` of a target, as it is metered (a group's name on a
/// topology between the builds).
pub async fn pid_named(target: &loadtest_platform::Target, name: &str) -> u32 {
    target
        .named_probes()
        .await
        .into_iter()
        .find_map(|(process, probe)| match probe {
            loadtest_platform::Probe::Pid(pid) if process == name => Some(pid),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no process {name}"))
}

/// Logs in as seeded user 1 on the shop at `base_url` and returns the bearer token.
pub async fn log_in_at(http: &reqwest::Client, base_url: &str) -> String {
    let (status, session) = answer(http.post(format!("{base_url}/api/sessions")).json(&json!({
        "email": "user1@shoplab.test",
        "password": format!("shoplab-{SEED}"),
    })))
    .await;
    assert_eq!(status, 200, "log-in answered {session}");
    session["token"].as_str().expect("a token").to_owned()
}

/// Puts one unit of `product_id` in the cart of `token`'s user; fails the test unless the
/// shop answers 200.
pub async fn put_in_cart_at(http: &reqwest::Client, base_url: &str, token: &str, product_id: i64) {
    let (status, cart) = answer(
        http.put(format!("{base_url}/api/cart/items/{product_id}"))
            .bearer_auth(token)
            .json(&json!({ "quantity": 1 })),
    )
    .await;
    assert_eq!(status, 200, "adding to the cart answered {cart}");
}

/// Checks out the cart of `token`'s user with `key`; returns the status and body.
pub async fn checkout_at(
    http: &reqwest::Client,
    base_url: &str,
    token: &str,
    key: &str,
) -> (u16, Value) {
    answer(
        http.post(format!("{base_url}/api/orders"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&json!({})),
    )
    .await
}

/// Whether the kernel still knows `pid` as a live process: `/proc/<pid>` shows it running
/// (not a zombie) and `kill(pid, 0)` succeeds.
pub fn process_is_alive(pid: u32) -> bool {
    let signal_zero = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None);
    signal_zero.is_ok() && !process_is_gone(pid)
}

/// Held by the tests that put the machine under load (`compare`, the rolling deploys) and by
/// the ones that assert wall-clock timings or CPU shares, so that on a 2-core machine a load
/// test never runs beside a timing test. The others still run in parallel.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static EXCLUSIVE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    EXCLUSIVE.lock().await
}

/// Spawns `command` (the `shoplab` binary with its arguments) with the tests' settings and
/// the deployment's secrets; its stdout lines arrive on the receiver, read to the end on a
/// thread of their own so the child never blocks on a full pipe. Stderr is dropped.
pub fn spawn_with_lines(
    command: &mut std::process::Command,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    command.stderr(std::process::Stdio::null());
    let mut child = spawn_shoplab(command);
    let stdout = child.stdout.take().expect("stdout is piped");
    (child, lines_of(stdout))
}

/// [`spawn_with_lines`], and the stderr lines (the log) on a second receiver.
pub fn spawn_with_log(
    command: &mut std::process::Command,
) -> (
    std::process::Child,
    std::sync::mpsc::Receiver<String>,
    std::sync::mpsc::Receiver<String>,
) {
    command.stderr(std::process::Stdio::piped());
    let mut child = spawn_shoplab(command);
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    (child, lines_of(stdout), lines_of(stderr))
}

fn spawn_shoplab(command: &mut std::process::Command) -> std::process::Child {
    command
        .envs(child_env())
        .env("SHOPLAB_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("SHOPLAB_TOKEN_SECRET", TOKEN_SECRET)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn shoplab")
}

/// The lines of `stream`, read to its end on a thread of their own.
fn lines_of(stream: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::{BufRead, BufReader};
    let (line_tx, line_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let _ = line_tx.send(line);
        }
    });
    line_rx
}

/// Polls [`loadtest_platform::Target::exited`] until some process has exited (30 s
/// at most).
pub async fn wait_for_an_exit(
    target: &mut loadtest_platform::Target,
) -> Vec<(loadtest_results::component::Component, usize)> {
    const DEADLINE: Duration = Duration::from_secs(30);
    let until = std::time::Instant::now() + DEADLINE;
    loop {
        let exited = target.exited();
        if !exited.is_empty() {
            return exited;
        }
        assert!(
            std::time::Instant::now() < until,
            "no process exited within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The `replica`-th process of `component`, as the target shows it.
pub async fn process(
    target: &loadtest_platform::Target,
    component: loadtest_results::component::Component,
    replica: usize,
) -> loadtest_platform::ProcessView {
    target
        .processes()
        .await
        .into_iter()
        .find(|process| process.component == component && process.replica == replica)
        .unwrap_or_else(|| panic!("no {component}#{replica} runs"))
}

/// The PID of `component`'s first process (on the local platform, where every process has one).
pub async fn pid_of(
    target: &loadtest_platform::Target,
    component: loadtest_results::component::Component,
) -> u32 {
    process(target, component, 1)
        .await
        .pid
        .expect("a local process has a pid")
}

/// `build` started on the platform `settings` name and reset to the seed, or the test
/// fails saying which step did.
#[allow(dead_code)] // Used by the environment tests (compose, swarm), which share this file.
pub async fn started_target(
    build: Build,
    settings: &loadtest_platform::TargetSettings,
) -> loadtest_platform::Target {
    let platform = settings.platform.clone();
    let target = loadtest_platform::Target::start(build, settings)
        .await
        .unwrap_or_else(|error| panic!("the {build} build starts on {platform}: {error:#}"));
    let summary = target
        .reset(settings)
        .await
        .unwrap_or_else(|error| panic!("the {build} build resets: {error:#}"));
    assert_eq!(summary.user_password, format!("shoplab-{SEED}"));
    target
}
