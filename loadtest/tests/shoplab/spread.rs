//! The spread over replicas, as the balancer in front of them counts it: the lab's front
//! door per backend (monolith or gateway replicas), the gateway per replica of a service. Real
//! processes, real requests; every request is counted once, on the replica that answered.

use std::collections::BTreeMap;

use loadtest_platform::spread;
use loadtest_results::component::{Build, Component};

use crate::support::start_target;

/// `requests` GETs of `path` through the target's public URL, each answered 200.
async fn send(http: &reqwest::Client, base_url: &str, path: &str, requests: usize) {
    for _ in 0..requests {
        let status = http
            .get(format!("{base_url}{path}"))
            .send()
            .await
            .expect("the request is answered")
            .status();
        assert_eq!(status, 200, "GET {path}");
    }
}

async fn spread_over_two_replicas(build: Build, component: Component, path: &str) {
    let _quiet = crate::support::exclusive().await;
    let mut target = start_target(build).await;
    assert_eq!(target.add_replica(component).await.expect("scale"), 2);
    let source = target
        .spread_source(component)
        .await
        .expect("the local platform counts per replica");
    let http = reqwest::Client::new();
    let before = source.read(&http).await.expect("read the counters");
    const REQUESTS: usize = 200;
    send(&http, target.url(), path, REQUESTS).await;
    let counts: BTreeMap<String, u64> = spread::difference(
        &before,
        &source.read(&http).await.expect("read the counters again"),
    )
    .into_iter()
    .collect();
    target.stop().await.expect("stop");

    assert_eq!(
        counts.len(),
        2,
        "{build}: one count per replica: {counts:?}"
    );
    assert!(
        counts.values().all(|count| *count > 0),
        "{build}: the balancer sent to both replicas: {counts:?}"
    );
    assert_eq!(
        counts.values().sum::<u64>(),
        REQUESTS as u64,
        "{build}: every request counted once ({})",
        source.counted_by
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_door_counts_each_monolith_replicas_responses() {
    spread_over_two_replicas(Build::Monolith, Component::Monolith, "/api/products/1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_counts_its_calls_to_each_catalog_replica() {
    spread_over_two_replicas(
        Build::Micro,
        Component::Service(domain::Context::Catalog),
        "/api/products/1",
    )
    .await;
}

/// The scale experiment may find the gateway its bottleneck: a second one goes behind the
/// front door like a second monolith.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_door_counts_each_gateway_replicas_responses() {
    spread_over_two_replicas(Build::Micro, Component::Gateway, "/api/products/1").await;
}

/// A rolling deploy replaces the process behind the front door: the one it replaced leaves
/// the counts with it, so a spread read later is over the replicas there are, not a replica
/// that "got nothing" for every deploy of the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_door_counts_only_the_backends_behind_it_now_not_the_ones_a_deploy_replaced() {
    let _quiet = crate::support::exclusive().await;
    let mut target = start_target(Build::Monolith).await;
    let source = target
        .spread_source(Component::Monolith)
        .await
        .expect("the local platform counts per replica");
    let http = reqwest::Client::new();
    send(&http, target.url(), "/api/products/1", 20).await;
    let first = source.read(&http).await.expect("read the counters");
    target
        .roll(Component::Monolith)
        .await
        .expect("the rolling deploy");
    send(&http, target.url(), "/api/products/1", 20).await;
    let after = source.read(&http).await.expect("read the counters again");
    target.stop().await.expect("stop");

    assert_eq!(first.len(), 1, "one backend before the deploy: {first:?}");
    assert_eq!(after.len(), 1, "one backend after it: {after:?}");
    assert_ne!(
        first.keys().next(),
        after.keys().next(),
        "the deploy put a new process behind the door"
    );
}

/// The faults and throughput experiments read every caller's hop counters (retry
/// amplification, hops per request) from each process's `/metrics`, which answers the lab's
/// metrics token (not only the admin token) and nobody without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_micro_process_gives_its_hop_counters_to_the_lab_and_to_nobody_without_the_token() {
    let _quiet = crate::support::exclusive().await;
    let target = start_target(Build::Micro).await;
    let http = reqwest::Client::new();
    const REQUESTS: usize = 10;
    send(&http, target.url(), "/api/products/1", REQUESTS).await;
    let urls = target.metrics_urls().await;
    let count = spread::HopCount::read(
        &http,
        &urls,
        target.metrics_token(),
        Some(domain::Context::Catalog),
    )
    .await;
    assert_ne!(
        target.metrics_token(),
        target.admin_token(),
        "the local platform gives its processes a metrics token of their own"
    );
    let mut refused = Vec::new();
    for url in &urls {
        refused.push(http.get(url).send().await.expect("an answer").status());
    }
    target.stop().await.expect("stop");

    assert!(urls.len() > 2, "the gateway and the services: {urls:?}");
    let count = count.expect("every process answers the lab's scrape");
    // Exactly: each product page calls catalog once, and a process counted twice (the front
    // door forwards its `/metrics` to the gateway) would double it.
    assert_eq!(
        count.calls, REQUESTS as f64,
        "{REQUESTS} product pages, {} calls into catalog counted",
        count.calls
    );
    assert!(
        refused.iter().all(|status| status.as_u16() == 401),
        "a scrape without the token: {refused:?}"
    );
}
