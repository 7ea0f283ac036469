//! Start, readiness and graceful shutdown of the real process.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};

use crate::process::{ADMIN_TOKEN, Process};

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish_then_exits_cleanly() {
    let mut monolith = Process::start().await;
    // A slow catalog keeps one request in flight while the signal arrives.
    monolith
        .inject(serde_json::json!({"context": "catalog", "kind": "latency", "params": {"ms": 700}}))
        .await;
    let slow = tokio::spawn(monolith.client.get(monolith.url("/api/products/1")).send());
    // The scrape counts itself, so two in flight means the slow request has arrived.
    let metrics_show_in_flight = async {
        loop {
            let text = monolith
                .client
                .get(monolith.url("/metrics"))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let in_flight = text
                .lines()
                .find_map(|line| line.strip_prefix("http_requests_in_flight "))
                .and_then(|value| value.trim().parse::<u64>().ok());
            if in_flight.is_some_and(|in_flight| in_flight >= 2) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), metrics_show_in_flight)
        .await
        .expect("request in flight");
    kill(monolith.pid(), Signal::SIGTERM).expect("send SIGTERM");
    let answer = slow
        .await
        .unwrap()
        .expect("the in-flight request is answered, not cut");
    assert_eq!(answer.status(), 200);
    let status = monolith.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

#[tokio::test]
async fn after_sigterm_the_port_stops_accepting() {
    let mut monolith = Process::start().await;
    kill(monolith.pid(), Signal::SIGTERM).expect("send SIGTERM");
    assert!(monolith.wait_exit(Duration::from_secs(15)).success());
    let after = monolith.client.get(monolith.url("/health")).send().await;
    assert!(after.is_err(), "nothing may answer on the port after exit");
}

#[tokio::test]
async fn a_restart_on_the_same_database_keeps_the_shop_and_does_not_reseed() {
    let mut first = Process::start().await;
    let reset = first
        .client
        .post(first.url("/admin/reset"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"products": 5, "stock": 1, "users": 1, "seed": 9}))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200);
    kill(first.pid(), Signal::SIGTERM).unwrap();
    assert!(first.wait_exit(Duration::from_secs(15)).success());

    let second = Process::start_on(first.take_data(), &[]).await;
    let after: serde_json::Value = second
        .client
        .get(second.url("/api/products"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        after["total"], 5,
        "the restarted shop is the one that was there, not a fresh seed"
    );
}

#[tokio::test]
async fn a_first_start_on_an_empty_database_seeds_the_shop() {
    let empty = Process::start_on(tempfile::tempdir().unwrap(), &[]).await;
    let products: serde_json::Value = empty
        .client
        .get(empty.url("/api/products"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        products["total"], 20,
        "SHOPLAB_SEED_PRODUCTS products from the default seed"
    );
}

/// With a shutdown delay, SIGTERM first turns `/ready` to 503 while the shop keeps
/// answering — how balancers that follow readiness move away before the port closes — and
/// only after the delay does the process stop accepting and exit.
#[tokio::test]
async fn with_a_shutdown_delay_sigterm_fails_readiness_first_and_keeps_serving_until_it_is_over() {
    let mut monolith = Process::start_with(
        tempfile::tempdir().unwrap(),
        &["--seed", "7"],
        &[("SHOPLAB_SHUTDOWN_DELAY_MS", "5000")],
    )
    .await;
    let ready = monolith
        .client
        .get(monolith.url("/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "ready before the signal");
    kill(monolith.pid(), Signal::SIGTERM).expect("send SIGTERM");
    let not_ready = async {
        loop {
            let answer = monolith
                .client
                .get(monolith.url("/ready"))
                .send()
                .await
                .unwrap();
            if answer.status() == 503 {
                return answer.json::<serde_json::Value>().await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let body = tokio::time::timeout(Duration::from_secs(4), not_ready)
        .await
        .expect("/ready turns 503 within the delay");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("stopping"),
        "the answer says why: {body}"
    );
    let product = monolith
        .client
        .get(monolith.url("/api/products/1"))
        .send()
        .await
        .expect("still accepting during the delay");
    assert_eq!(product.status(), 200, "still serving during the delay");
    assert!(monolith.wait_exit(Duration::from_secs(20)).success());
    let after = monolith.client.get(monolith.url("/health")).send().await;
    assert!(after.is_err(), "nothing answers on the port after exit");
}
