//! `shoplab serve micro` as a user runs it: the map it prints, and that no child outlives
//! it — whether it is stopped with SIGTERM or killed with SIGKILL.

use std::collections::BTreeSet;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::support::{eventually, process_is_gone, shoplab_binary};

/// A running `shoplab serve micro` and what it printed up to its `listening on` line.
struct Supervisor {
    child: Child,
    /// `(service, replica, pid, url)` rows of the printed map.
    map: Vec<(String, u32, u32, String)>,
    url: String,
    _data: tempfile::TempDir,
}

impl Supervisor {
    fn start(extra_args: &[&str]) -> Supervisor {
        let data = tempfile::tempdir().expect("temp dir");
        let mut command = Command::new(shoplab_binary());
        command
            .args(["serve", "micro", "--port", "0", "--data-dir"])
            .arg(data.path())
            .args(extra_args);
        let (child, line_rx) = crate::support::spawn_with_lines(&mut command);
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
            _data: data,
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
