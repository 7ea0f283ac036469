//! Which calls are tried again: idempotent ones only, at most `retries` times, and only while
//! the retry budget has room.

use domain::cart::Cart;
use domain::catalog::Catalog;
use domain::{Context, DomainError};
use micro_rpc::cart::CartClient;
use micro_rpc::catalog::CatalogClient;
use micro_rpc::{Upstream, UpstreamSettings};

use crate::support::{Mode, Stub};

/// Breakers that never open, so these tests see the retry policy alone.
fn without_breaker(retries: u32) -> UpstreamSettings {
    UpstreamSettings {
        retries,
        breaker_failures: 1_000,
        ..UpstreamSettings::default()
    }
}

#[tokio::test]
async fn a_call_that_is_not_idempotent_is_never_retried() {
    let stub = Stub::start(Mode::Broken).await;
    let cart = CartClient(Upstream::new(
        Context::Cart,
        vec![stub.base_url.clone()],
        without_breaker(3),
    ));
    for call in 1..=3 {
        assert!(matches!(
            cart.remove(1, 1).await,
            Err(DomainError::Unavailable(_))
        ));
        assert_eq!(stub.hits(), call, "one attempt per call, no retry");
    }
}

#[tokio::test]
async fn an_idempotent_call_is_retried_as_many_times_as_the_setting_says() {
    let stub = Stub::start(Mode::Broken).await;
    let catalog = CatalogClient(Upstream::new(
        Context::Catalog,
        vec![stub.base_url.clone()],
        without_breaker(2),
    ));
    assert!(matches!(
        catalog.get(1).await,
        Err(DomainError::Unavailable(_))
    ));
    assert_eq!(stub.hits(), 3, "one attempt and two retries");
}

#[tokio::test]
async fn an_answer_that_is_not_a_failure_of_the_hop_is_not_retried() {
    let stub = Stub::start(Mode::NotFound).await;
    let catalog = CatalogClient(Upstream::new(
        Context::Catalog,
        vec![stub.base_url.clone()],
        without_breaker(3),
    ));
    assert!(matches!(
        catalog.get(1).await,
        Err(DomainError::NotFound(_))
    ));
    assert_eq!(stub.hits(), 1);
}

#[tokio::test]
async fn the_retry_budget_bounds_the_retries_of_idempotent_calls() {
    let stub = Stub::start(Mode::Broken).await;
    // 1 retry/s over a 10 s window and nothing earned per call: 10 retries in all, however
    // many calls fail (the test ends long before the window would give any back).
    let settings = UpstreamSettings {
        retry_budget_ttl_ms: 10_000,
        retry_budget_min_per_sec: 1,
        retry_budget_ratio: 0.0,
        ..without_breaker(3)
    };
    let catalog = CatalogClient(Upstream::new(
        Context::Catalog,
        vec![stub.base_url.clone()],
        settings,
    ));
    for _ in 0..20 {
        assert!(matches!(
            catalog.get(1).await,
            Err(DomainError::Unavailable(_))
        ));
    }
    assert_eq!(
        stub.hits(),
        20 + 10,
        "20 calls and the 10 retries the budget allows, not 20 x 4 attempts"
    );
}
