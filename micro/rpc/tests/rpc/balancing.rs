//! p2c over replicas: calls spread over the live ones, a replica that goes away stops
//! getting calls after a bounded number of failures, and comes back when it answers again.

use std::time::Duration;

use domain::Context;
use domain::catalog::Catalog;
use micro_rpc::catalog::CatalogClient;
use micro_rpc::{Upstream, UpstreamSettings};

use crate::support::{DEADLINE, Mode, Stub, eventually};

#[tokio::test]
async fn after_one_of_two_replicas_shuts_down_every_call_lands_on_the_other_and_it_comes_back() {
    let mut first = Stub::start(Mode::Healthy).await;
    let second = Stub::start(Mode::Healthy).await;
    // No retries, so every call that reaches the dead replica is seen to fail; a long open
    // wait, so no half-open probe falls inside the counting below.
    let settings = UpstreamSettings {
        retries: 0,
        breaker_open_ms: 2_000,
        ..UpstreamSettings::default()
    };
    let breaker_failures = settings.breaker_no_answer_failures as usize;
    let catalog = CatalogClient(Upstream::new(
        Context::Catalog,
        vec![first.base_url.clone(), second.base_url.clone()],
        settings,
    ));
    for _ in 0..40 {
        assert_eq!(catalog.get(1).await.unwrap().id, 1);
    }
    assert!(
        first.hits() > 0 && second.hits() > 0,
        "both replicas serve: {} and {}",
        first.hits(),
        second.hits()
    );

    first.shut_down().await;
    let mut failures = 0;
    for _ in 0..(breaker_failures + 50) {
        if catalog.get(1).await.is_err() {
            failures += 1;
        }
    }
    assert!(
        failures <= breaker_failures,
        "{failures} calls failed; the dead replica's breaker opens after {breaker_failures} calls without an answer"
    );
    let before = second.hits();
    for _ in 0..50 {
        assert_eq!(
            catalog.get(1).await.unwrap().id,
            1,
            "every call succeeds on the live replica"
        );
    }
    assert_eq!(second.hits(), before + 50);

    let served_before = first.hits();
    first.restart().await;
    let took = eventually(DEADLINE, "the restarted replica getting calls", || async {
        let answer = catalog.get(1).await;
        assert!(answer.is_ok(), "the live replica still serves: {answer:?}");
        first.hits() > served_before
    })
    .await;
    assert!(
        took < Duration::from_secs(3),
        "back in rotation {took:?} after its restart (breaker wait 2 s)"
    );
}
