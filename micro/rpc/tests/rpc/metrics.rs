//! Per-hop series in the calling process's registry: calls by upstream and outcome,
//! retries, latency, and the breaker state of every replica.

use domain::Context;
use domain::catalog::Catalog;
use micro_rpc::catalog::CatalogClient;
use micro_rpc::{Upstream, UpstreamSettings};

use crate::support::{DEADLINE, Mode, Stub, eventually};

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
