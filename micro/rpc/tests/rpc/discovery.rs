//! Replicas found by DNS (`Directory::resolve_every`), through the system's real resolver:
//! `localhost` for a name that answers, `*.invalid` (RFC 6761) for one that never does.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use api::metrics::Metrics;
use domain::Context;
use domain::catalog::Catalog;
use micro_rpc::catalog::CatalogClient;
use micro_rpc::{Directory, ReplicaList, Upstream, UpstreamSettings};

use crate::support::{DEADLINE, Mode, Stub, dead_address, eventually, series};

/// A directory of `(context, base URLs)`.
fn directory(upstreams: &[(&str, Vec<String>)]) -> Directory {
    let upstreams: BTreeMap<String, Vec<String>> = upstreams
        .iter()
        .map(|(context, urls)| (context.to_string(), urls.clone()))
        .collect();
    Directory::new(&upstreams)
}

/// Every address `localhost` has for `port`, as base URLs, sorted: what resolution must give.
async fn localhost_urls(port: u16) -> Vec<String> {
    let mut urls: Vec<String> = tokio::net::lookup_host(("localhost", port))
        .await
        .unwrap()
        .map(|address| format!("http://{address}"))
        .collect();
    urls.sort();
    urls.dedup();
    urls
}

async fn lookups_reach(directory: &Directory, count: u64) {
    eventually(DEADLINE, &format!("{count} rounds of lookups"), || async {
        directory.lookups() >= count
    })
    .await;
}

#[tokio::test]
async fn a_name_based_upstream_is_called_on_the_ip_of_every_address_the_name_has() {
    let stub = Stub::start(Mode::Healthy).await;
    let port = stub.address.port();
    let expected = localhost_urls(port).await;
    assert!(expected.contains(&stub.base_url), "{expected:?}");
    // Where localhost also has other addresses (::1), a listener on each, so every replica
    // resolution finds is a real one.
    let mut others = Vec::new();
    for url in expected.iter().filter(|url| **url != stub.base_url) {
        let address: SocketAddr = url.trim_start_matches("http://").parse().unwrap();
        others.push(Stub::start_at(Mode::Healthy, address).await);
    }

    let directory = directory(&[("catalog", vec![format!("http://localhost:{port}")])]);
    // A period far beyond the test: the first round, at start, is the one that counts.
    directory.resolve_every(Duration::from_secs(600));
    lookups_reach(&directory, 1).await;
    assert_eq!(directory.replicas(Context::Catalog), expected);

    let metrics = Metrics::new();
    let settings = UpstreamSettings {
        retries: 0,
        ..UpstreamSettings::default()
    };
    let catalog = CatalogClient(Upstream::from_directory(
        Context::Catalog,
        &directory,
        settings,
        &metrics.hops(),
    ));
    for _ in 0..20 {
        assert_eq!(catalog.get(1).await.unwrap().id, 1);
    }
    let hits = stub.hits() + others.iter().map(Stub::hits).sum::<usize>();
    assert_eq!(hits, 20);
    let attempts = format!(
        "hop_attempts_total{{upstream=\"catalog\",replica=\"{}\"}}",
        stub.address
    );
    assert_eq!(series(&metrics.encode(), &attempts), stub.hits() as f64);
}

#[tokio::test]
async fn a_name_that_does_not_resolve_keeps_the_last_list_while_other_contexts_follow_dns() {
    let stub = Stub::start(Mode::Healthy).await;
    let port = stub.address.port();
    let unresolvable = "http://no-such-host.invalid:4101".to_owned();
    let localhost = format!("http://localhost:{port}");
    let directory = directory(&[
        ("catalog", vec![unresolvable.clone()]),
        // One name of two failing keeps the whole list: half an answer is not the truth.
        ("inventory", vec![localhost.clone(), unresolvable.clone()]),
        ("cart", vec![localhost.clone()]),
    ]);
    directory.resolve_every(Duration::from_millis(100));
    lookups_reach(&directory, 3).await;

    assert_eq!(
        directory.replicas(Context::Catalog),
        vec![unresolvable.clone()]
    );
    assert_eq!(
        directory.replicas(Context::Inventory),
        vec![localhost, unresolvable]
    );
    assert_eq!(
        directory.replicas(Context::Cart),
        localhost_urls(port).await
    );
    assert_eq!(directory.version(), 1, "only cart changed, once");
}

#[tokio::test]
async fn a_replica_that_does_not_answer_asks_for_a_lookup_at_once_but_at_most_one_per_100_ms() {
    let dead_port: u16 = dead_address()
        .await
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let directory = directory(&[("catalog", vec![format!("http://localhost:{dead_port}")])]);
    directory.resolve_every(Duration::from_secs(600));
    lookups_reach(&directory, 1).await;
    // No retries, and breakers that never open, so every call makes one attempt that gets
    // no answer.
    let settings = UpstreamSettings {
        retries: 0,
        breaker_no_answer_failures: u32::MAX,
        breaker_min_calls: u32::MAX,
        ..UpstreamSettings::default()
    };
    let catalog = CatalogClient(Upstream::from_directory(
        Context::Catalog,
        &directory,
        settings,
        &api::metrics::HopMetrics::default(),
    ));

    assert!(catalog.get(1).await.is_err());
    let took = eventually(DEADLINE, "a lookup after the failed call", || async {
        directory.lookups() >= 2
    })
    .await;
    assert!(took < Duration::from_secs(1), "looked up after {took:?}");

    let before = directory.lookups();
    let started = Instant::now();
    let mut failed = 0_u64;
    while started.elapsed() < Duration::from_millis(500) {
        assert!(catalog.get(1).await.is_err());
        failed += 1;
    }
    let extra = directory.lookups() - before;
    assert!(failed > 20, "{failed} failed calls");
    // One round per 100 ms, plus the one under way when the window began.
    assert!(
        (1..=6).contains(&extra),
        "{extra} lookups for {failed} failed calls in 500 ms"
    );
}

#[tokio::test]
async fn a_list_put_by_the_admin_api_stops_resolution_for_that_context() {
    let stub = Stub::start(Mode::Healthy).await;
    let named = format!("http://localhost:{}", stub.address.port());
    let directory = directory(&[("catalog", vec![named.clone()])]);
    directory.resolve_every(Duration::from_millis(100));
    lookups_reach(&directory, 1).await;
    assert_ne!(directory.replicas(Context::Catalog), vec![named.clone()]);

    directory
        .set(ReplicaList {
            context: Context::Catalog,
            replicas: vec![named.clone()],
        })
        .unwrap();
    let after_put = directory.lookups();
    lookups_reach(&directory, after_put + 3).await;
    assert_eq!(directory.replicas(Context::Catalog), vec![named]);
}
