//! The caller's deadline on every hop: it travels as `x-shoplab-deadline-ms`, it cuts an
//! attempt shorter than the hop's own timeout, a call made after it passed makes no hop, and
//! a service refuses an expired one at once without doing the work.

use std::time::{Duration, Instant};

use domain::Context;
use domain::catalog::Catalog;
use domain::inventory::Inventory;
use micro_rpc::catalog::CatalogClient;
use micro_rpc::deadline::{self, DEADLINE_HEADER};
use micro_rpc::inventory::InventoryClient;

use crate::support::{Mode, Stub, start_service, upstream};

#[tokio::test]
async fn the_time_left_travels_with_every_attempt_and_never_exceeds_the_caller_s() {
    let stub = Stub::start(Mode::Healthy).await;
    let catalog = CatalogClient(upstream(Context::Catalog, vec![stub.base_url.clone()], 0));

    catalog.get(1).await.unwrap();
    let within = deadline::scope(Instant::now() + Duration::from_millis(300), async {
        catalog.get(1).await
    })
    .await;
    within.unwrap();

    let sent: Vec<u64> = stub
        .deadlines()
        .iter()
        .map(|value| value.parse().unwrap())
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(
        sent[0], 2_000,
        "outside a request, the hop's own timeout is the budget"
    );
    assert!(
        (1..=300).contains(&sent[1]),
        "inside a request, what is left of the caller's 300 ms: {}",
        sent[1]
    );
}

#[tokio::test]
async fn a_hung_upstream_is_waited_for_only_until_the_caller_s_deadline_and_not_retried() {
    let stub = Stub::start(Mode::Hang).await;
    let catalog = CatalogClient(upstream(Context::Catalog, vec![stub.base_url.clone()], 2));
    let started = Instant::now();
    let answer = deadline::scope(Instant::now() + Duration::from_millis(200), async {
        catalog.get(1).await
    })
    .await;
    assert!(
        matches!(&answer, Err(domain::DomainError::Unavailable(message)) if message.contains("deadline")),
        "{answer:?}"
    );
    // The hop's own timeout is 2 s; the caller gave 200 ms.
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "gave up after {:?}",
        started.elapsed()
    );
    assert_eq!(
        stub.hits(),
        1,
        "no retry could finish in time, so none was made"
    );
}

#[tokio::test]
async fn a_call_made_after_the_deadline_passed_makes_no_hop() {
    let stub = Stub::start(Mode::Healthy).await;
    let catalog = CatalogClient(upstream(Context::Catalog, vec![stub.base_url.clone()], 2));
    let answer = deadline::scope(Instant::now(), async { catalog.get(1).await }).await;
    assert!(
        matches!(answer, Err(domain::DomainError::Unavailable(_))),
        "{answer:?}"
    );
    assert_eq!(stub.hits(), 0);
}

#[tokio::test]
async fn a_service_answers_an_expired_deadline_with_503_at_once_and_reserves_nothing() {
    let service = start_service().await;
    let http = reqwest::Client::new();
    let url = format!(
        "{}/internal/inventory/reservations/order-1",
        service.base_url
    );
    let body = serde_json::json!({"lines": [{"product_id": 1, "quantity": 1}], "ttl_ms": 60_000});

    let expired = http
        .put(&url)
        .header(DEADLINE_HEADER, "0")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), 503);
    let error: serde_json::Value = expired.json().await.unwrap();
    assert_eq!(error["error"]["code"], "unavailable");

    let malformed = http
        .put(&url)
        .header(DEADLINE_HEADER, "soon")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 422);
    let error: serde_json::Value = malformed.json().await.unwrap();
    assert_eq!(error["error"]["code"], "invalid");

    let inventory = InventoryClient(upstream(
        Context::Inventory,
        vec![service.base_url.clone()],
        0,
    ));
    assert_eq!(
        inventory.available(1).await.unwrap(),
        1,
        "neither request reserved the one unit"
    );
    let answered = http
        .put(&url)
        .header(DEADLINE_HEADER, "1000")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), 200, "time left: the work is done");
    assert_eq!(inventory.available(1).await.unwrap(), 0);
}
