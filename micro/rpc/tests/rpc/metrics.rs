//! Per-hop series in the calling process's registry: calls by upstream and outcome,
//! retries, latency, and the attempts and breaker state of every replica.

use std::collections::BTreeMap;

use domain::Context;
use domain::catalog::Catalog;
use micro_rpc::catalog::CatalogClient;
use micro_rpc::{Directory, ReplicaList, Upstream, UpstreamSettings};

use crate::support::{DEADLINE, Mode, Stub, dead_address, eventually, series};

#[tokio::test]
async fn the_calling_process_reports_calls_retries_latency_and_breaker_state_per_upstream() {
    let stub = Stub::start(Mode::Healthy).await;
    let metrics = api::metrics::Metrics::new();
    let catalog = CatalogClient(Upstream::with_metrics(
        Context::Catalog,
        vec![stub.base_url.clone()],
        UpstreamSettings {
            retries: 1,
            ..UpstreamSettings::default()
        },
        &metrics.hops(),
    ));
    let replica = stub.address.to_string();
    let breaker = |state: u8| {
        format!("hop_breaker_state{{upstream=\"catalog\",replica=\"{replica}\"}} {state}")
    };
    assert!(
        metrics.encode().contains(&breaker(0)),
        "closed from the start"
    );

    catalog.get(1).await.unwrap();
    stub.set(Mode::NotFound);
    let _ = catalog.get(1).await;
    stub.set(Mode::Broken);
    let _ = catalog.get(1).await;

    let text = metrics.encode();
    for series in [
        "hop_calls_total{upstream=\"catalog\",outcome=\"ok\"} 1",
        "hop_calls_total{upstream=\"catalog\",outcome=\"not_found\"} 1",
        "hop_calls_total{upstream=\"catalog\",outcome=\"unavailable\"} 1",
        "hop_retries_total{upstream=\"catalog\"} 1",
        "hop_duration_seconds_count{upstream=\"catalog\"} 3",
        "hop_duration_seconds_bucket{le=\"0.00025\",upstream=\"catalog\"}",
    ] {
        assert!(text.contains(series), "{series} missing from\n{text}");
    }
    assert!(text.contains(&breaker(0)), "two failures leave it closed");

    eventually(DEADLINE, "the breaker opening", || async {
        let _ = catalog.get(1).await;
        metrics.encode().contains(&breaker(2))
    })
    .await;
    stub.set(Mode::Healthy);
    eventually(DEADLINE, "the breaker closing", || async {
        let _ = catalog.get(1).await;
        metrics.encode().contains(&breaker(0))
    })
    .await;
}

#[tokio::test]
async fn attempts_are_counted_per_replica_and_a_replica_that_leaves_takes_its_series_along() {
    let first = Stub::start(Mode::Healthy).await;
    let second = Stub::start(Mode::Healthy).await;
    let dead = dead_address().await;
    let mut upstreams = BTreeMap::new();
    upstreams.insert(
        "catalog".to_owned(),
        vec![first.base_url.clone(), second.base_url.clone()],
    );
    upstreams.insert("inventory".to_owned(), vec![dead.clone()]);
    let directory = Directory::new(&upstreams);
    let metrics = api::metrics::Metrics::new();
    let settings = UpstreamSettings {
        retries: 0,
        ..UpstreamSettings::default()
    };
    let catalog = CatalogClient(Upstream::from_directory(
        Context::Catalog,
        &directory,
        settings.clone(),
        &metrics.hops(),
    ));
    let inventory =
        Upstream::from_directory(Context::Inventory, &directory, settings, &metrics.hops());
    for _ in 0..40 {
        catalog.get(1).await.unwrap();
    }
    let attempts = |stub: &Stub| {
        format!(
            "hop_attempts_total{{upstream=\"catalog\",replica=\"{}\"}}",
            stub.address
        )
    };
    let text = metrics.encode();
    assert_eq!(series(&text, &attempts(&first)), first.hits() as f64);
    assert_eq!(series(&text, &attempts(&second)), second.hits() as f64);
    assert!(first.hits() > 0 && second.hits() > 0);

    // Inventory's only replica is dead: its breaker opens.
    let dead_breaker = format!(
        "hop_breaker_state{{upstream=\"inventory\",replica=\"{}\"}} 2",
        dead.trim_start_matches("http://")
    );
    let call_inventory = || async {
        let _: Result<serde_json::Value, _> = inventory
            .call(
                reqwest::Method::GET,
                "/internal/inventory/1",
                None::<&()>,
                micro_rpc::upstream::Idempotency::Idempotent,
            )
            .await;
    };
    eventually(DEADLINE, "inventory's breaker opening", || async {
        call_inventory().await;
        metrics.encode().contains(&dead_breaker)
    })
    .await;

    directory
        .set(ReplicaList {
            context: Context::Catalog,
            replicas: vec![second.base_url.clone()],
        })
        .unwrap();
    catalog.get(1).await.unwrap();
    call_inventory().await;
    let text = metrics.encode();
    assert!(
        !text.contains(&first.address.to_string()),
        "the replica that left has no series:\n{text}"
    );
    assert!(text.contains(&attempts(&second)));
    assert!(
        text.contains(&dead_breaker),
        "a change to catalog's list leaves inventory's breaker as it was:\n{text}"
    );
}
