//! The circuit breaker: it opens within about a second of sustained failure and then fails
//! calls fast without a hop, half-opens and closes once the upstream heals, and ignores
//! answers that are the service's correct refusals (404, 422).

use std::time::{Duration, Instant};

use domain::catalog::Catalog;
use domain::{Context, DomainError};
use micro_rpc::catalog::CatalogClient;

use crate::support::{DEADLINE, Mode, Stub, eventually, upstream};

/// Calls a broken stub until a call fails without reaching it; returns how long that took.
async fn open_the_breaker(catalog: &CatalogClient, stub: &Stub) -> Duration {
    eventually(DEADLINE, "the breaker failing fast", || async {
        let hits = stub.hits();
        let answer = catalog.get(1).await;
        assert!(
            matches!(answer, Err(DomainError::Unavailable(_))),
            "{answer:?}"
        );
        stub.hits() == hits
    })
    .await
}

#[tokio::test]
async fn sustained_failure_opens_the_breaker_within_a_second_and_calls_then_fail_fast() {
    let stub = Stub::start(Mode::Broken).await;
    let catalog = CatalogClient(upstream(Context::Catalog, vec![stub.base_url.clone()], 0));

    let took = open_the_breaker(&catalog, &stub).await;
    assert!(took < Duration::from_secs(1), "opened after {took:?}");
    assert_eq!(
        stub.hits(),
        5,
        "five failures in a row open it (the default setting)"
    );

    let hits = stub.hits();
    for _ in 0..20 {
        let started = Instant::now();
        let answer = catalog.get(1).await;
        assert!(
            matches!(&answer, Err(DomainError::Unavailable(message)) if message.contains("circuit breaker")),
            "{answer:?}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "an open breaker answers at once, took {:?}",
            started.elapsed()
        );
    }
    assert_eq!(stub.hits(), hits, "no call reached the upstream while open");
}

#[tokio::test]
async fn an_open_breaker_half_opens_and_closes_within_two_seconds_of_the_upstream_healing() {
    let stub = Stub::start(Mode::Broken).await;
    let catalog = CatalogClient(upstream(Context::Catalog, vec![stub.base_url.clone()], 0));
    open_the_breaker(&catalog, &stub).await;

    stub.set(Mode::Healthy);
    let healed = Instant::now();
    eventually(DEADLINE, "a call succeeding after the heal", || async {
        catalog.get(1).await.is_ok()
    })
    .await;
    let took = healed.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "closed {took:?} after the upstream healed"
    );
    for _ in 0..10 {
        assert_eq!(catalog.get(1).await.unwrap().id, 1, "closed again");
    }
}

#[tokio::test]
async fn a_failed_probe_opens_the_breaker_again() {
    let stub = Stub::start(Mode::Broken).await;
    let catalog = CatalogClient(upstream(Context::Catalog, vec![stub.base_url.clone()], 0));
    open_the_breaker(&catalog, &stub).await;
    let hits = stub.hits();

    // The probe after the wait reaches the upstream, fails, and the breaker opens again.
    eventually(DEADLINE, "the half-open probe", || async {
        let _ = catalog.get(1).await;
        stub.hits() > hits
    })
    .await;
    assert_eq!(stub.hits(), hits + 1, "exactly one probe");
    for _ in 0..10 {
        assert!(catalog.get(1).await.is_err());
    }
    assert_eq!(stub.hits(), hits + 1, "open again after the failed probe");
}

#[tokio::test]
async fn not_found_and_invalid_answers_do_not_open_the_breaker() {
    let stub = Stub::start(Mode::NotFound).await;
    let catalog = CatalogClient(upstream(Context::Catalog, vec![stub.base_url.clone()], 1));
    for _ in 0..20 {
        assert!(matches!(
            catalog.get(1).await,
            Err(DomainError::NotFound(_))
        ));
    }
    stub.set(Mode::Invalid);
    for _ in 0..20 {
        assert!(matches!(catalog.get(1).await, Err(DomainError::Invalid(_))));
    }
    assert_eq!(
        stub.hits(),
        40,
        "every call reached the upstream once: not retried, never failed fast"
    );
    stub.set(Mode::Healthy);
    assert_eq!(catalog.get(1).await.unwrap().id, 1);
}
