//! `shoplab serve micro` as a user runs it: the map it prints (whose service ports refuse a
//! caller without a service token), that no child outlives it —
//! whether it is stopped with SIGTERM or killed with SIGKILL — and that a service killed
//! under it comes back, its exit and restart in the log.

use std::collections::BTreeSet;
use std::process::{Child, Command};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::support::{eventually, process_is_alive, process_is_gone, shoplab_binary};

/// A running `shoplab serve micro` and what it printed up to its `listening on` line.
struct Supervisor {
    child: Child,
    /// `(service, replica, pid, url)` rows of the printed map.
    map: Vec<(String, u32, u32, String)>,
    url: String,
    /// Its stderr: its own log as JSON lines, and its children's lines, prefixed.
    log: Receiver<String>,
    _data: tempfile::TempDir,
}

impl Supervisor {
    /// Logs as JSON (`SHOPLAB_LOG_FORMAT`, which the children read too) at info, so a test
    /// can read the supervisor's events by their fields.
    fn start(extra_args: &[&str]) -> Supervisor {
        let data = tempfile::tempdir().expect("temp dir");
        let mut command = Command::new(shoplab_binary());
        command
            .args(["serve", "micro", "--port", "0", "--data-dir"])
            .arg(data.path())
            .args(extra_args)
            .env("SHOPLAB_LOG_FORMAT", "json")
            .env("RUST_LOG", "info");
        let (child, line_rx, log) = crate::support::spawn_with_log(&mut command);
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut map = Vec::new();
        let url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = line_rx
                .recv_timeout(left)
                .expect("shoplab prints its map and address within 120 s");
            if let Some(url) = line.strip_prefix("shoplab micro listening on ") {
                break url.trim().to_owned();
            }
            let columns: Vec<&str> = line.split_whitespace().collect();
            if let [service, replica, pid, url] = columns[..]
                && let (Ok(replica), Ok(pid)) = (replica.parse(), pid.parse())
            {
                map.push((service.to_owned(), replica, pid, url.to_owned()));
            }
        };
        Supervisor {
            child,
            map,
            url,
            log,
            _data: data,
        }
    }

    /// The `(pid, url)` of `service`'s first replica, from the printed map.
    fn process(&self, service: &str) -> (u32, String) {
        self.map
            .iter()
            .find(|(name, replica, _, _)| name == service && *replica == 1)
            .map(|(_, _, pid, url)| (*pid, url.clone()))
            .unwrap_or_else(|| panic!("{service} is on the map"))
    }

    /// The next event of the supervisor's own log with this message about `process`
    /// (`orders#1`), read from the log within `deadline`; the lines before it are passed.
    fn next_event(&self, message: &str, process: &str, deadline: Duration) -> Value {
        let until = Instant::now() + deadline;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let line = self.log.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no {message:?} about {process} in the log within {deadline:?}")
            });
            // The children's lines are prefixed with their names; only the supervisor's
            // own are bare JSON.
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if event["message"] == message && event["process"] == process {
                return event;
            }
        }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    fn child_pids(&self) -> Vec<u32> {
        self.map.iter().map(|(_, _, pid, _)| *pid).collect()
    }

    fn wait_exit(&mut self, deadline: Duration) -> std::process::ExitStatus {
        let until = Instant::now() + deadline;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll shoplab") {
                return status;
            }
            assert!(
                Instant::now() < until,
                "shoplab did not exit within {deadline:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether `GET {base_url}/ready` answers 2xx.
async fn answers_ready(http: &reqwest::Client, base_url: &str) -> bool {
    http.get(format!("{base_url}/ready"))
        .send()
        .await
        .is_ok_and(|response| response.status().is_success())
}

async fn assert_all_gone(pids: &[u32]) {
    eventually(Duration::from_secs(20), "every child exiting", async || {
        pids.iter().all(|pid| process_is_gone(*pid))
    })
    .await;
}

#[tokio::test]
async fn serve_micro_prints_the_map_and_sigterm_leaves_no_child_behind() {
    let mut supervisor = Supervisor::start(&["--seed", "7"]);
    let services: BTreeSet<&str> = supervisor
        .map
        .iter()
        .map(|(service, _, _, _)| service.as_str())
        .collect();
    let expected = BTreeSet::from([
        "catalog",
        "inventory",
        "cart",
        "orders",
        "payments",
        "users",
        "recommendations",
        "gateway",
    ]);
    assert_eq!(services, expected, "the map lists every service");
    let products: serde_json::Value = reqwest::get(format!("{}/api/products", supervisor.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(products["total"], 20);

    // The ports on the map are no way in: a charge or a read of orders sent there without a
    // service token is refused (issue 18; every attack in `trust.rs`).
    let http = reqwest::Client::new();
    let (_, payments) = supervisor.process("payments");
    let (_, orders) = supervisor.process("orders");
    for request in [
        http.put(format!("{payments}/internal/payments/charges/from-the-map"))
            .json(&serde_json::json!({ "user_id": 1, "amount_cents": 100 })),
        http.get(format!("{orders}/internal/orders/1")),
    ] {
        let answer = request.send().await.expect("the service answers");
        assert_eq!(answer.status(), 401);
    }

    let pids = supervisor.child_pids();
    assert!(pids.iter().all(|pid| !process_is_gone(*pid)));
    kill(supervisor.pid(), Signal::SIGTERM).expect("send SIGTERM");
    let status = supervisor.wait_exit(Duration::from_secs(60));
    assert!(
        status.success(),
        "shoplab exit status after SIGTERM: {status}"
    );
    // Reaped by shoplab itself, so not even a zombie is left.
    for pid in &pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "child {pid} outlived shoplab"
        );
    }
}

#[tokio::test]
async fn a_supervisor_killed_with_sigkill_takes_its_children_with_it() {
    // No --seed: fresh data is seeded (with 42) anyway. Two catalog replicas.
    let mut supervisor = Supervisor::start(&["--replicas", "catalog=2"]);
    let catalogs = supervisor
        .map
        .iter()
        .filter(|(service, _, _, _)| service == "catalog")
        .count();
    assert_eq!(catalogs, 2, "both catalog replicas are on the map");
    let products: serde_json::Value = reqwest::get(format!("{}/api/products", supervisor.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(products["total"], 20, "a fresh start is seeded");

    let pids = supervisor.child_pids();
    kill(supervisor.pid(), Signal::SIGKILL).expect("send SIGKILL");
    supervisor.wait_exit(Duration::from_secs(10));
    assert_all_gone(&pids).await;
}

#[tokio::test]
async fn a_service_killed_under_serve_micro_is_restarted_and_its_exit_and_restart_are_logged() {
    let mut supervisor = Supervisor::start(&["--seed", "7"]);
    let (killed_pid, orders_url) = supervisor.process("orders");
    kill(Pid::from_raw(killed_pid as i32), Signal::SIGKILL).expect("kill -9 orders");
    // Gone first, so that a `/ready` answered below cannot be the killed process's.
    eventually(
        Duration::from_secs(10),
        "the killed orders exiting",
        async || process_is_gone(killed_pid),
    )
    .await;

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("http client");
    eventually(
        Duration::from_secs(60),
        "orders answering /ready on its port again",
        async || answers_ready(&http, &orders_url).await,
    )
    .await;
    // The gateway's `/ready` requires orders: the shop as a whole is back.
    eventually(
        Duration::from_secs(30),
        "the gateway answering /ready again",
        async || answers_ready(&http, &supervisor.url).await,
    )
    .await;

    let exited = supervisor.next_event("process exited", "orders#1", Duration::from_secs(30));
    assert_eq!(exited["level"], "WARN", "{exited}");
    assert_eq!(exited["component"], "orders", "{exited}");
    assert_eq!(exited["pid"], killed_pid, "{exited}");
    assert_eq!(exited["exit.signal"], "SIGKILL", "{exited}");
    let restarted = supervisor.next_event("process restarted", "orders#1", Duration::from_secs(30));
    assert_eq!(restarted["level"], "INFO", "{restarted}");
    assert_eq!(
        restarted["backoff_ms"], 0,
        "a first crash is restarted at once: {restarted}"
    );
    let new_pid = restarted["pid"].as_u64().expect("the new pid") as u32;
    assert_ne!(new_pid, killed_pid, "{restarted}");
    assert!(
        process_is_alive(new_pid),
        "the restarted orders runs: {restarted}"
    );

    // The restarted process is a child like the others: it ends with the supervisor.
    kill(supervisor.pid(), Signal::SIGTERM).expect("send SIGTERM");
    let status = supervisor.wait_exit(Duration::from_secs(60));
    assert!(
        status.success(),
        "shoplab exit status after SIGTERM: {status}"
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{new_pid}")).exists(),
        "the restarted orders outlived shoplab"
    );
}
