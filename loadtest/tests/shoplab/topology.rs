//! A topology between the two builds as real processes: one `shoplab service <group>` per
//! group over its own database and the gateway in front, started, healed after a `kill -9`
//! and stopped by the supervisor's `GroupDeployment`; a group's process killed through the
//! lab's `Target` by one context it hosts, taking exactly that group's contexts down; and
//! what `shoplab serve topology` refuses.

use std::time::{Duration, Instant};

use domain::Topology;
use loadtest_platform::local::supervisor::{Database, GroupDeployment, Options};
use loadtest_results::component::{Build, Component};
use serde_json::json;

use crate::support::{
    ADMIN_TOKEN, SEED, TOKEN_SECRET, answer, checkout_at, child_env, eventually, log_in_at,
    pid_named, process_is_gone, put_in_cart_at, shoplab_binary, start_topology_target,
};

#[tokio::test]
async fn browse_buy_runs_two_group_processes_and_a_gateway_that_sell_fan_out_admin_once_and_heal() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut options = Options::new(
        Build::Micro,
        shoplab_binary(),
        Database::Sqlite {
            dir: data.path().to_owned(),
        },
        ADMIN_TOKEN.to_owned(),
        TOKEN_SECRET.to_owned(),
    );
    options.seed = Some(SEED);
    options.env = child_env();
    options.forward_logs = std::env::var_os("SHOPLAB_TEST_LOGS").is_some();
    options.stop_deadline = Duration::from_secs(5);
    let topology = Topology::parse("browse-buy").expect("a preset");
    let mut deployment = GroupDeployment::start(options, topology)
        .await
        .expect("the topology starts");
    let map = deployment.map();
    let rows: Vec<Vec<&str>> = map
        .lines()
        .skip(1)
        .map(|row| row.split_whitespace().collect())
        .collect();
    let processes: Vec<(&str, &str)> = rows
        .iter()
        .map(|columns| match columns[..] {
            [name, contexts, _, _] => (name, contexts),
            [name, _, _] => (name, ""),
            _ => panic!("a row of the map: {columns:?}"),
        })
        .collect();
    assert_eq!(
        processes,
        [
            ("browse", "catalog+recommendations+users"),
            ("buy", "cart+inventory+orders+payments"),
            ("gateway", ""),
        ],
        "{map}"
    );
    // One database per group, named after it.
    let mut files: Vec<String> = std::fs::read_dir(data.path())
        .expect("the data folder")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".db"))
        .collect();
    files.sort();
    assert_eq!(files, ["browse.db", "buy.db"]);

    // The saga across the cut: cart, inventory and payments in-process in `buy`, the
    // prices from `browse` over HTTP.
    let http = reqwest::Client::new();
    let url = deployment.url().to_owned();
    let token = log_in_at(&http, &url).await;
    put_in_cart_at(&http, &url, &token, 3).await;
    let (status, order) = checkout_at(&http, &url, &token, "topology-1").await;
    assert_eq!(status, 201, "checkout answered {order}");
    assert_eq!(order["status"], "confirmed", "{order}");

    let admin = deployment.admin_url().to_owned();
    let (status, audit) = answer(
        http.get(format!("{admin}/admin/audit"))
            .bearer_auth(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{audit}");
    assert_eq!(audit["orders"].as_array().map(Vec::len), Some(1), "{audit}");
    assert_eq!(
        audit["charges"].as_array().map(Vec::len),
        Some(1),
        "{audit}"
    );

    // A fault in `browse` is one fault of one process, though the gateway knows that
    // process under three contexts.
    let (status, fault) = answer(
        http.post(format!("{admin}/admin/faults"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"context": "recommendations", "kind": "errors"})),
    )
    .await;
    assert_eq!(status, 201, "{fault}");
    let (status, faults) = answer(
        http.get(format!("{admin}/admin/faults"))
            .bearer_auth(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{faults}");
    assert_eq!(
        faults["items"].as_array().map(Vec::len),
        Some(1),
        "{faults}"
    );

    assert!(deployment.exited().is_empty());

    // `buy` killed for real: healing starts it again on its port, with its orders kept.
    let pid_of = |deployment: &GroupDeployment, name: &str| {
        let pids = deployment.pids();
        pids.iter()
            .find(|(process, _)| process == name)
            .map(|(_, pid)| *pid)
            .expect("a process of the topology")
    };
    let killed = pid_of(&deployment, "buy");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(killed as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9 buy");
    let ready_url = format!("{url}/ready");
    let back = async {
        eventually(Duration::from_secs(10), "buy gone", async || {
            process_is_gone(killed)
        })
        .await;
        // Past the old process, a ready gateway means a new `buy` answers behind it.
        eventually(
            Duration::from_secs(30),
            "the gateway ready again",
            async || {
                let ready = http.get(&ready_url).send().await;
                ready.is_ok_and(|response| response.status().is_success())
            },
        )
        .await;
    };
    let restarts = deployment.heal_until(back).await;
    assert_eq!(restarts.len(), 1, "{restarts:?}");
    assert_eq!(restarts[0].component, "buy");
    assert_eq!(restarts[0].error, None);
    assert_ne!(pid_of(&deployment, "buy"), killed);
    let (status, orders) = answer(http.get(format!("{url}/api/orders")).bearer_auth(&token)).await;
    assert_eq!(status, 200, "{orders}");
    assert_eq!(orders["items"][0]["id"], order["id"], "the order was kept");

    deployment.stop().await.expect("the topology stops");
}

#[tokio::test]
async fn killing_payments_on_coarse_takes_down_exactly_the_checkout_group_and_the_lab_heals_it() {
    let _quiet = crate::support::exclusive().await;
    let mut target = start_topology_target("coarse").await;
    let http = reqwest::Client::new();
    let url = target.url().to_owned();
    let token = log_in_at(&http, &url).await;
    put_in_cart_at(&http, &url, &token, 3).await;
    let status_of = async |path: &str| {
        let (status, _) = answer(http.get(format!("{url}{path}")).bearer_auth(&token)).await;
        status
    };
    // Every context answers before: catalog (storefront), cart and orders (checkout).
    for path in ["/api/products", "/api/cart", "/api/orders"] {
        assert_eq!(status_of(path).await, 200, "{path} before the kill");
    }
    let pids_before: Vec<(String, u32)> = {
        let mut pids = Vec::new();
        for name in ["storefront", "stock", "checkout", "accounts", "gateway"] {
            pids.push((name.to_owned(), pid_named(&target, name).await));
        }
        pids
    };
    let checkout = pid_named(&target, "checkout").await;

    target
        .kill(Component::Service(domain::Context::Payments))
        .await
        .expect("kill the process hosting payments");
    assert!(process_is_gone(checkout), "checkout was killed");
    // Its contexts are gone with it (cart and orders are in checkout too); the others answer.
    assert!(
        status_of("/api/cart").await >= 500,
        "cart answers without checkout"
    );
    assert!(
        status_of("/api/orders").await >= 500,
        "orders answer without checkout"
    );
    assert_eq!(
        status_of("/api/products").await,
        200,
        "storefront is untouched"
    );
    log_in_at(&http, &url).await;
    for (name, pid) in &pids_before {
        if name != "checkout" {
            assert!(!process_is_gone(*pid), "{name} was not killed");
        }
    }

    // The lab's healing brings exactly that process back, on its port, its data kept.
    let restored = target.restore().await.expect("restore");
    assert_eq!(restored, 1, "one process came back");
    assert_ne!(pid_named(&target, "checkout").await, checkout);
    eventually(
        Duration::from_secs(10),
        "cart answering again",
        async || status_of("/api/cart").await == 200,
    )
    .await;
    let (status, cart) = answer(http.get(format!("{url}/api/cart")).bearer_auth(&token)).await;
    assert_eq!(status, 200, "{cart}");
    assert_eq!(
        cart["items"].as_array().map(Vec::len),
        Some(1),
        "the cart was kept: {cart}"
    );
    target.stop().await.expect("stop");
}

#[tokio::test]
async fn serve_topology_refuses_a_grouping_without_every_context_naming_the_missing_ones() {
    let output = tokio::process::Command::new(shoplab_binary())
        .args([
            "serve",
            "topology",
            "catalog+users,cart+orders",
            "--port",
            "0",
        ])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), output)
        .await
        .expect("refused within 30 s")
        .expect("run shoplab");
    assert_eq!(output.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no process hosts inventory, payments, recommendations"),
        "{stderr}"
    );
}

#[tokio::test]
async fn serve_topology_satellites_checks_out_locally_in_its_core_and_ctrl_c_stops_every_process() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut command = std::process::Command::new(shoplab_binary());
    command
        .args(["serve", "topology", "satellites", "--port", "0"])
        .args(["--seed", &SEED.to_string(), "--data-dir"])
        .arg(data.path())
        .env("SHOPLAB_LOG_FORMAT", "json");
    let (child, stdout, stderr) = crate::support::spawn_with_log(&mut command);
    // Killed however the test ends; its children die with it.
    let mut shoplab = Running(child);
    let until = Instant::now() + Duration::from_secs(120);
    let mut pids = Vec::new();
    let url = loop {
        let line = stdout
            .recv_timeout(until.saturating_duration_since(Instant::now()))
            .expect("shoplab prints its map and address within 120 s");
        if let Some(url) = line.strip_prefix("shoplab satellites listening on ") {
            break url.to_owned();
        }
        // `process contexts pid url` rows (the gateway's has no contexts): the pid is the
        // one number among them.
        if let Some(pid) = line
            .split_whitespace()
            .find_map(|column| column.parse::<u32>().ok())
        {
            pids.push(pid);
        }
    };
    assert_eq!(
        pids.len(),
        4,
        "core, users, recommendations and the gateway"
    );

    // The core group hosts every context checkout touches, so it checks out locally. The
    // log comes through its own pipe, so it is read until the line, not as far as it got.
    let chosen = loop {
        let line = stderr
            .recv_timeout(until.saturating_duration_since(Instant::now()))
            .expect("the core group says which checkout it runs");
        if line.contains("orders checkout chosen by the topology") {
            break line;
        }
    };
    assert!(chosen.contains(r#""checkout":"Local""#), "{chosen}");
    // It calls itself by its preset's name, as the map does.
    assert!(chosen.contains(r#""service":"core""#), "{chosen}");

    let http = reqwest::Client::new();
    let token = log_in_at(&http, &url).await;
    put_in_cart_at(&http, &url, &token, 2).await;
    let (status, order) = checkout_at(&http, &url, &token, "satellites-1").await;
    assert_eq!(status, 201, "checkout answered {order}");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shoplab.0.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("send SIGINT");
    let until = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = shoplab.0.try_wait().expect("poll shoplab") {
            break status;
        }
        assert!(Instant::now() < until, "shoplab did not exit after SIGINT");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "exit status after SIGINT: {status}");
    eventually(
        Duration::from_secs(10),
        "every printed process exiting",
        async || pids.iter().all(|pid| process_is_gone(*pid)),
    )
    .await;
}

/// The `shoplab` child, killed and reaped when dropped unless it already exited.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
