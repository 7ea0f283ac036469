//! The lab's orchestration doing what it says, on both builds, through the lab's own
//! `Target`: a kill kills and a restart restarts (new PID, same URL, data kept), the
//! monolith serves public and admin on one port, each fault kind does what it says and
//! heals, and `shoplab serve micro` stopped with Ctrl-C leaves no process behind.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use domain::Context;
use domain::orders::OrderStatus;
use loadtest_results::component::{Build, Component};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;

use crate::support::{
    SEED, answer, checkout_at, eventually, log_in_at, pid_of, process, process_is_alive,
    process_is_gone, put_in_cart_at, shoplab_binary, start_target, target_settings,
};

/// How long a restarted process, a healed fault or an exit may take to show.
const DEADLINE: Duration = Duration::from_secs(15);
/// The in-process latency fault the lab injects, and what it must add to a request.
const FAULT_LATENCY: Duration = Duration::from_millis(300);
/// Longer than an unpaused request takes on a busy machine, shorter than the hop budget the
/// gateway gives a paused service (`support::HOP_TIMEOUT`), so SIGCONT comes in time.
const STALL: Duration = Duration::from_millis(500);

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
}

/// How long `GET {url}` takes, and its status.
async fn timed_get(http: &reqwest::Client, url: &str) -> (Duration, u16) {
    let started = Instant::now();
    let (status, _) = answer(http.get(url)).await;
    (started.elapsed(), status)
}

/// Kills the process holding the orders (`kill -9`), restarts it, and then recreates it
/// while it runs: each time the old PID is gone, a new one answers `/ready` on the same URL,
/// and the order placed at the start is still there (a restart never reseeds).
async fn kill_and_restart_keep_the_url_and_the_data(build: Build) {
    let mut target = start_target(build).await;
    let http = http();
    let url = target.url().to_owned();
    let token = log_in_at(&http, &url).await;
    put_in_cart_at(&http, &url, &token, 3).await;
    let (status, order) = checkout_at(&http, &url, &token, "before-the-kill").await;
    assert_eq!(status, 201, "checkout answered {order}");
    let order_id = order["id"].as_i64().expect("an order id");

    let component = build.process_of(Context::Orders);
    let member_url = process(&target, component, 1).await.url;
    let killed = pid_of(&target, component).await;
    assert!(process_is_alive(killed));
    target.kill(component).await.expect("the kill");
    // `kill` reaps: not even a zombie is left, and the port refuses connections.
    assert!(process_is_gone(killed), "pid {killed} survived kill -9");
    assert!(
        !process_is_alive(killed),
        "kill(pid {killed}, 0) still succeeds"
    );
    assert!(
        http.get(format!("{member_url}/health"))
            .send()
            .await
            .is_err(),
        "something still answers on {member_url} after the kill"
    );

    target.recreate(component).await.expect("the restart");
    let restarted = pid_of(&target, component).await;
    assert_ne!(restarted, killed, "the restart made a new process");
    assert!(process_is_alive(restarted));
    assert_eq!(
        process(&target, component, 1).await.url,
        member_url,
        "the restarted process is on the URL its callers hold"
    );
    assert_eq!(target.url(), url, "the public URL did not move");
    let (status, ready) = answer(http.get(format!("{member_url}/ready"))).await;
    assert_eq!(
        status, 200,
        "the restarted process's /ready answered {ready}"
    );
    let (status, kept) = answer(
        http.get(format!("{url}/api/orders/{order_id}"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(
        status, 200,
        "the order placed before the kill answered {kept}"
    );
    assert_eq!(kept["id"], order["id"]);
    assert_eq!(kept["total_cents"], order["total_cents"]);
    assert!(
        target
            .audit()
            .await
            .unwrap()
            .orders
            .iter()
            .any(|audited| audited.id == order_id),
        "the audit lost order {order_id}"
    );

    // A recreate of a running process: SIGTERM, drain, a new process on the same port.
    target.recreate(component).await.expect("the recreate");
    let recreated = pid_of(&target, component).await;
    assert_ne!(recreated, restarted);
    assert!(
        process_is_gone(restarted),
        "pid {restarted} outlived its recreate"
    );
    assert!(process_is_alive(recreated));
    put_in_cart_at(&http, &url, &token, 4).await;
    let (status, second) = checkout_at(&http, &url, &token, "after-the-restarts").await;
    assert_eq!(status, 201, "checkout after the restarts answered {second}");
    assert!(
        second["id"].as_i64() > Some(order_id),
        "order ids started over: {second} after order {order_id}"
    );
    let (status, kept) = answer(
        http.get(format!("{url}/api/orders/{order_id}"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!((status, &kept["id"]), (200, &order["id"]));
    target.stop().await.expect("the target stops");
}

#[tokio::test]
async fn a_killed_monolith_is_gone_and_its_restart_answers_on_the_same_url_with_the_orders_kept() {
    kill_and_restart_keep_the_url_and_the_data(Build::Monolith).await;
}

#[tokio::test]
async fn a_killed_orders_service_is_gone_and_its_restart_answers_on_the_same_url_with_the_orders_kept()
 {
    kill_and_restart_keep_the_url_and_the_data(Build::Micro).await;
}

#[tokio::test]
async fn the_monolith_target_serves_public_and_admin_on_one_port_and_reset_seeds_the_audited_stock()
{
    let target = start_target(Build::Monolith).await;
    // The monolith process's own port (the lab may put a front door before it).
    let monolith = process(&target, Component::Monolith, 1).await.url;
    assert_eq!(
        target.admin_url(),
        monolith,
        "the admin API is the monolith's port"
    );
    let http = http();
    for base in [target.url(), monolith.as_str()] {
        let (status, page) = answer(http.get(format!("{base}/api/products"))).await;
        assert_eq!(status, 200, "the public API at {base} answered {page}");
        assert_eq!(page["total"], 20);
    }
    let (status, _) = answer(http.get(format!("{monolith}/admin/audit"))).await;
    assert_eq!(
        status, 401,
        "the admin API on the same port wants the token"
    );

    let settings = loadtest_platform::TargetSettings {
        products: 7,
        stock: 13,
        ..target_settings()
    };
    let summary = target.reset(&settings).await.expect("the reset");
    assert_eq!((summary.products, summary.stock, summary.users), (7, 13, 2));
    let audit = target.audit().await.expect("the audit");
    let stock: Vec<(i64, i64, i64, i64)> = audit
        .stock
        .iter()
        .map(|row| (row.initial, row.available, row.reserved, row.sold))
        .collect();
    assert_eq!(stock, vec![(13, 13, 0, 0); 7], "{:?}", audit.stock);
    assert!(audit.orders.is_empty() && audit.charges.is_empty());
    assert!(audit.reservations.is_empty());
    target.stop().await.expect("the target stops");
}

/// Latency on catalog: the product page takes at least the injected 300 ms more, and not
/// after the heal.
async fn latency_on_catalog_slows_the_product_page_until_healed(build: Build) {
    let _quiet = crate::support::exclusive().await;
    let target = start_target(build).await;
    let http = http();
    let product = format!("{}/api/products/1", target.url());
    // Before: some request is well under the fault's latency (so the test can fail).
    eventually(DEADLINE, "a product page under 300 ms", async || {
        let (took, status) = timed_get(&http, &product).await;
        status == 200 && took < FAULT_LATENCY
    })
    .await;

    target
        .fault(Context::Catalog, "latency", json!({"ms": 300}))
        .await
        .expect("the latency fault");
    for _ in 0..3 {
        let (took, status) = timed_get(&http, &product).await;
        assert_eq!(status, 200, "the slowed product page still answers");
        assert!(
            took >= FAULT_LATENCY,
            "a product page took {took:?} with {FAULT_LATENCY:?} of latency on catalog"
        );
    }

    target.heal_faults().await.expect("the heal");
    eventually(
        DEADLINE,
        "a product page under 300 ms after the heal",
        async || {
            let (took, status) = timed_get(&http, &product).await;
            status == 200 && took < FAULT_LATENCY
        },
    )
    .await;
    target.stop().await.expect("the target stops");
}

#[tokio::test]
async fn latency_on_catalog_adds_300_ms_to_the_monolith_product_page_until_healed() {
    latency_on_catalog_slows_the_product_page_until_healed(Build::Monolith).await;
}

#[tokio::test]
async fn latency_on_catalog_adds_300_ms_to_the_micro_product_page_until_healed() {
    latency_on_catalog_slows_the_product_page_until_healed(Build::Micro).await;
}

/// SIGSTOP on the process that runs catalog: a product page does not answer while it is
/// stopped, and SIGCONT lets that same request finish.
async fn a_paused_catalog_stalls_the_product_page_until_resumed(build: Build) {
    let _quiet = crate::support::exclusive().await;
    let mut target = start_target(build).await;
    let http = http();
    let product = format!("{}/api/products/1", target.url());
    assert_eq!(answer(http.get(&product)).await.0, 200);
    let process = build.process_of(Context::Catalog);

    target.pause(process, true).await.expect("SIGSTOP");
    let paused_at = Instant::now();
    let mut request = tokio::spawn({
        let http = http.clone();
        let product = product.clone();
        async move { answer(http.get(&product)).await }
    });
    let early = tokio::time::timeout(STALL, &mut request).await;
    if early.is_ok() {
        // The stall is the claim: say whether the stopped process really was stopped.
        let pid = pid_of(&target, process).await;
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let members: Vec<String> = target
            .processes()
            .await
            .into_iter()
            .map(|process| {
                format!(
                    "{} pid {:?} {}",
                    process.component, process.pid, process.url
                )
            })
            .collect();
        panic!(
            "a product page answered {early:?} while {process} was stopped; \
             /proc/{pid}/stat: {state}; members: {members:?}; front: {}",
            target.url()
        );
    }
    if build == Build::Micro {
        // Only catalog stopped: the gateway itself still answers at once.
        let (took, status) = timed_get(&http, &format!("{}/health", target.url())).await;
        assert_eq!(status, 200);
        assert!(took < STALL, "the gateway's /health took {took:?}");
    }

    target.pause(process, false).await.expect("SIGCONT");
    let (status, body) = tokio::time::timeout(DEADLINE, request)
        .await
        .expect("the stalled request finishes after SIGCONT")
        .expect("the request task");
    assert_eq!(status, 200, "the stalled product page answered {body}");
    assert!(paused_at.elapsed() >= STALL);
    assert_eq!(answer(http.get(&product)).await.0, 200);
    target.stop().await.expect("the target stops");
}

#[tokio::test]
async fn a_paused_monolith_stalls_a_request_and_sigcont_lets_it_finish() {
    a_paused_catalog_stalls_the_product_page_until_resumed(Build::Monolith).await;
}

#[tokio::test]
async fn a_paused_catalog_service_stalls_a_request_and_sigcont_lets_it_finish() {
    a_paused_catalog_stalls_the_product_page_until_resumed(Build::Micro).await;
}

/// Errors at rate 1.0 on inventory: checkout answers 503 `unavailable`; healed, 201.
async fn errors_on_inventory_fail_checkout_until_healed(build: Build) {
    let target = start_target(build).await;
    let http = http();
    let url = target.url().to_owned();
    let token = log_in_at(&http, &url).await;
    put_in_cart_at(&http, &url, &token, 5).await;

    target
        .fault(Context::Inventory, "errors", json!({"rate": 1.0}))
        .await
        .expect("the errors fault");
    let (status, body) = checkout_at(&http, &url, &token, "during-errors").await;
    assert_eq!(
        status, 503,
        "checkout with failing inventory answered {body}"
    );
    assert_eq!(body["error"]["code"], "unavailable");

    target.heal_faults().await.expect("the heal");
    // The failed checkout kept the cart; putting the item again keeps the test independent
    // of that.
    put_in_cart_at(&http, &url, &token, 5).await;
    let (status, order) = checkout_at(&http, &url, &token, "after-errors").await;
    assert_eq!(status, 201, "checkout after the heal answered {order}");
    // The micro saga that met the fault may be left pending for recovery to cancel (the
    // monolith rolled it back); either way it must end without a sale.
    eventually(DEADLINE, "every checkout settling", async || {
        let audit = target.audit().await.expect("the audit");
        !audit
            .orders
            .iter()
            .any(|audited| audited.status == OrderStatus::Pending)
    })
    .await;
    let (audit, quiescent) = target.quiesce(DEADLINE).await.expect("the audit");
    assert!(
        quiescent,
        "a reservation is still held: {:?}",
        audit.reservations
    );
    let outcomes: Vec<(String, OrderStatus)> = audit
        .orders
        .iter()
        .map(|audited| (audited.idempotency_key.clone(), audited.status))
        .collect();
    // A cancelled saga frees its key as `<key>#cancelled#<order id>`.
    let expected: Vec<(String, OrderStatus)> = match build {
        Build::Monolith => vec![("after-errors".into(), OrderStatus::Confirmed)],
        Build::Micro => vec![
            (
                format!(
                    "during-errors#cancelled#{}",
                    audit.orders.first().map_or(0, |order| order.id)
                ),
                OrderStatus::Cancelled,
            ),
            ("after-errors".into(), OrderStatus::Confirmed),
        ],
    };
    assert_eq!(outcomes, expected, "{:?}", audit.orders);
    let product = audit.stock.iter().find(|row| row.product_id == 5).unwrap();
    assert_eq!((product.sold, product.reserved), (1, 0), "{product:?}");
    target.stop().await.expect("the target stops");
}

#[tokio::test]
async fn errors_on_inventory_make_monolith_checkout_answer_503_until_healed() {
    errors_on_inventory_fail_checkout_until_healed(Build::Monolith).await;
}

#[tokio::test]
async fn errors_on_inventory_make_micro_checkout_answer_503_until_healed() {
    errors_on_inventory_fail_checkout_until_healed(Build::Micro).await;
}

#[tokio::test]
async fn abort_on_the_inventory_service_kills_only_that_process_and_a_restart_brings_it_back() {
    let mut target = start_target(Build::Micro).await;
    let http = http();
    let product = format!("{}/api/products/1", target.url());
    let inventory = Component::Service(Context::Inventory);
    let pids: Vec<(Component, u32)> = target
        .processes()
        .await
        .into_iter()
        .map(|process| {
            (
                process.component,
                process.pid.expect("a local process has a pid"),
            )
        })
        .collect();

    target
        .fault(Context::Inventory, "abort", json!({}))
        .await
        .expect("the abort fault");
    // The next call into inventory aborts its process; the product page absorbs it.
    let (status, page) = answer(http.get(&product)).await;
    assert_eq!(status, 200, "the product page answered {page}");
    let exited = crate::support::wait_for_an_exit(&mut target).await;
    assert_eq!(exited, vec![(inventory, 1)], "only inventory exited");
    for (component, pid) in &pids {
        if *component == inventory {
            assert!(process_is_gone(*pid), "inventory (pid {pid}) still runs");
        } else {
            assert!(
                process_is_alive(*pid),
                "{component} (pid {pid}) went down too"
            );
        }
    }
    assert_eq!(
        answer(http.get(&product)).await.1["availability"],
        "unknown"
    );

    target.recreate(inventory).await.expect("the restart");
    assert!(target.exited().is_empty());
    // The gateway's breaker for inventory sees the new process through its next probe (at
    // most `hop_breaker_open_ms` later); until then availability is still "unknown".
    eventually(
        DEADLINE,
        "inventory answering the product page again",
        async || {
            let (status, page) = answer(http.get(&product)).await;
            assert_eq!(status, 200);
            page["availability"] != "unknown"
        },
    )
    .await;
    let (status, page) = answer(http.get(&product)).await;
    assert_eq!(status, 200);
    assert_eq!(
        page["availability"], "in_stock",
        "inventory answers again, and the new process has no abort armed: {page}"
    );
    target.stop().await.expect("the target stops");
}

#[tokio::test]
async fn abort_on_catalog_in_the_monolith_takes_the_whole_shop_down_until_restarted() {
    let mut target = start_target(Build::Monolith).await;
    let http = http();
    // The monolith process's own port: what it answers, not what a front door says for it.
    let monolith = process(&target, Component::Monolith, 1).await.url;
    let before = pid_of(&target, Component::Monolith).await;

    target
        .fault(Context::Catalog, "abort", json!({}))
        .await
        .expect("the abort fault");
    // The request that triggers the abort gets no answer; the process is gone.
    let triggered = http.get(format!("{monolith}/api/products/1")).send().await;
    assert!(
        triggered.is_err(),
        "the aborting request was answered: {triggered:?}"
    );
    let exited = crate::support::wait_for_an_exit(&mut target).await;
    assert_eq!(exited, vec![(Component::Monolith, 1)]);
    assert!(process_is_gone(before));
    for path in ["/api/products", "/api/cart", "/health"] {
        assert!(
            http.get(format!("{monolith}{path}")).send().await.is_err(),
            "{path} still answers: no context survives the abort"
        );
    }

    target
        .recreate(Component::Monolith)
        .await
        .expect("the restart");
    assert_ne!(pid_of(&target, Component::Monolith).await, before);
    for base in [target.url(), monolith.as_str()] {
        let (status, page) = answer(http.get(format!("{base}/api/products/1"))).await;
        assert_eq!(
            status, 200,
            "the restarted monolith at {base} answered {page}"
        );
    }
    target.stop().await.expect("the target stops");
}

/// `shoplab serve micro` as a child of this test, up to its `listening on` line.
struct ServeMicro {
    child: Child,
    /// The PIDs of the map it printed.
    pids: Vec<u32>,
    _data: tempfile::TempDir,
}

impl ServeMicro {
    fn start() -> ServeMicro {
        let data = tempfile::tempdir().expect("temp dir");
        let mut command = Command::new(shoplab_binary());
        command
            .args(["serve", "micro", "--port", "0", "--seed", &SEED.to_string()])
            .arg("--data-dir")
            .arg(data.path());
        let (child, line_rx) = crate::support::spawn_with_lines(&mut command);
        let until = Instant::now() + Duration::from_secs(120);
        let mut pids = Vec::new();
        loop {
            let line = line_rx
                .recv_timeout(until.saturating_duration_since(Instant::now()))
                .expect("shoplab prints its map and address within 120 s");
            if line.starts_with("shoplab micro listening on ") {
                break;
            }
            // `service replica pid url` rows; the header's third column is not a number.
            if let [_, _, pid, _] = line.split_whitespace().collect::<Vec<_>>()[..]
                && let Ok(pid) = pid.parse()
            {
                pids.push(pid);
            }
        }
        ServeMicro {
            child,
            pids,
            _data: data,
        }
    }
}

impl Drop for ServeMicro {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test]
async fn serve_micro_interrupted_with_ctrl_c_stops_every_process_it_printed() {
    let mut lab = ServeMicro::start();
    assert_eq!(lab.pids.len(), 8, "one row per service and the gateway");
    assert!(lab.pids.iter().all(|pid| process_is_alive(*pid)));

    kill(Pid::from_raw(lab.child.id() as i32), Signal::SIGINT).expect("send SIGINT");
    let until = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = lab.child.try_wait().expect("poll shoplab") {
            break status;
        }
        assert!(Instant::now() < until, "shoplab did not exit after SIGINT");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        status.success(),
        "shoplab exit status after SIGINT: {status}"
    );
    let pids = lab.pids.clone();
    eventually(DEADLINE, "every printed process exiting", async || {
        pids.iter().all(|pid| process_is_gone(*pid))
    })
    .await;
    for pid in &pids {
        assert!(!process_is_alive(*pid), "pid {pid} outlived shoplab");
    }
}
