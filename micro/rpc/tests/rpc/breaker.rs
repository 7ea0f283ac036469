//! The circuit breaker: a partial fault below the failure-rate threshold never opens it; a
//! replica that fails nearly everything opens it once the window holds enough calls, and
//! calls then fail fast except the panic share; it closes within a second of the upstream
//! healing; it ignores answers that are the service's correct refusals (404, 422).

use std::time::{Duration, Instant};

use domain::catalog::Catalog;
use domain::{Context, DomainError};
use micro_rpc::catalog::CatalogClient;
use micro_rpc::{Upstream, UpstreamSettings};

use crate::support::{DEADLINE, Mode, Stub, eventually, series, start_service, upstream};

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

/// No retries, so every call is one attempt the breaker counts.
fn single_attempt(settings: UpstreamSettings) -> UpstreamSettings {
    UpstreamSettings {
        retries: 0,
        ..settings
    }
}

#[tokio::test]
async fn a_service_failing_half_its_calls_never_opens_the_breaker_below_the_rate_threshold() {
    let service = start_service().await;
    service.fail_at("catalog", 0.5);
    let metrics = api::metrics::Metrics::new();
    let settings = single_attempt(UpstreamSettings::default());
    let catalog = CatalogClient(Upstream::with_metrics(
        Context::Catalog,
        vec![service.base_url.clone()],
        settings,
        &metrics.hops(),
    ));
    let (mut served, mut refused_by_the_service) = (0, 0);
    for _ in 0..400 {
        match catalog.get(1).await {
            Ok(_) => served += 1,
            Err(DomainError::Unavailable(message)) if message.contains("injected fault") => {
                refused_by_the_service += 1
            }
            Err(other) => panic!("only the service's own answers, never a fast failure: {other}"),
        }
    }
    // 400 calls at 50 %: 200 each way, and 150..250 holds with a margin of five standard
    // deviations, so the check below cannot pass by luck while the fault is off.
    assert!(
        (150..=250).contains(&served),
        "{served} served, {refused_by_the_service} refused"
    );
    let text = metrics.encode();
    assert!(
        text.lines()
            .filter(|line| line.starts_with("hop_breaker_state{"))
            .all(|line| line.ends_with(" 0")),
        "the breaker stayed closed at 50 % failures under an 80 % threshold:\n{text}"
    );
}

#[tokio::test]
async fn sustained_failure_opens_the_breaker_within_a_second_and_then_only_the_panic_share_gets_through()
 {
    let stub = Stub::start(Mode::Broken).await;
    let settings = UpstreamSettings {
        // No probe inside this test: only panic calls may reach the stub once it is open.
        breaker_open_ms: 60_000,
        ..single_attempt(UpstreamSettings::default())
    };
    let min_calls = settings.breaker_min_calls as usize;
    let catalog = CatalogClient(Upstream::new(
        Context::Catalog,
        vec![stub.base_url.clone()],
        settings,
    ));

    let took = open_the_breaker(&catalog, &stub).await;
    assert!(took < Duration::from_secs(1), "opened after {took:?}");
    assert_eq!(
        stub.hits(),
        min_calls,
        "it opens at the first judgement: every call of the minimum failed"
    );

    let hits = stub.hits();
    for _ in 0..100 {
        let started = Instant::now();
        let answer = catalog.get(1).await;
        assert!(
            matches!(&answer, Err(DomainError::Unavailable(_))),
            "{answer:?}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "an open breaker answers without waiting, took {:?}",
            started.elapsed()
        );
    }
    assert_eq!(
        stub.hits() - hits,
        10,
        "one call in ten reaches the broken upstream while its breaker is open (panic share 10 %)"
    );
}

#[tokio::test]
async fn with_every_replica_s_breaker_open_panic_mode_spreads_a_share_of_calls_over_all_of_them() {
    let first = Stub::start(Mode::Unavailable).await;
    let second = Stub::start(Mode::Unavailable).await;
    let metrics = api::metrics::Metrics::new();
    let settings = UpstreamSettings {
        breaker_open_ms: 60_000,
        breaker_panic_percent: 25,
        ..single_attempt(UpstreamSettings::default())
    };
    let catalog = CatalogClient(Upstream::with_metrics(
        Context::Catalog,
        vec![first.base_url.clone(), second.base_url.clone()],
        settings,
        &metrics.hops(),
    ));
    eventually(DEADLINE, "both breakers open", || async {
        let _ = catalog.get(1).await;
        metrics.encode().matches("hop_breaker_state{").count() == 2
            && metrics
                .encode()
                .lines()
                .filter(|line| line.starts_with("hop_breaker_state{"))
                .all(|line| line.ends_with(" 2"))
    })
    .await;

    let (first_before, second_before) = (first.hits(), second.hits());
    for _ in 0..40 {
        assert!(catalog.get(1).await.is_err());
    }
    assert_eq!(
        (first.hits() - first_before, second.hits() - second_before),
        (5, 5),
        "a call in four went through, to each replica in turn"
    );

    first.set(Mode::Healthy);
    second.set(Mode::Healthy);
    let mut served = 0;
    for _ in 0..8 {
        if catalog.get(1).await.is_ok() {
            served += 1;
        }
    }
    assert!(
        served >= 5,
        "within four calls a panic call found a healed replica and closed its breaker, and \
         every call after it was served: {served} of 8"
    );
    assert!(
        series(
            &metrics.encode(),
            "hop_panic_calls_total{upstream=\"catalog\"}"
        ) >= 1.0
    );
    // An answered panic call closed that replica's breaker: from then on every call is served.
    for _ in 0..20 {
        assert_eq!(catalog.get(1).await.unwrap().id, 1);
    }
}

#[tokio::test]
async fn after_the_upstream_heals_calls_succeed_again_within_a_second() {
    let stub = Stub::start(Mode::Broken).await;
    let settings = UpstreamSettings {
        breaker_open_ms: 60_000,
        ..single_attempt(UpstreamSettings::default())
    };
    let catalog = CatalogClient(Upstream::new(
        Context::Catalog,
        vec![stub.base_url.clone()],
        settings,
    ));
    open_the_breaker(&catalog, &stub).await;

    stub.set(Mode::Healthy);
    let healed = Instant::now();
    eventually(DEADLINE, "a call succeeding after the heal", || async {
        catalog.get(1).await.is_ok()
    })
    .await;
    let took = healed.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "served again {took:?} after the heal, though the breaker's own wait is a minute"
    );
    for _ in 0..50 {
        assert_eq!(catalog.get(1).await.unwrap().id, 1, "closed again");
    }
}

#[tokio::test]
async fn an_open_breaker_half_opens_and_a_failed_probe_opens_it_again() {
    let stub = Stub::start(Mode::Broken).await;
    // Panic mode off, so every call that reaches the stub is the half-open probe.
    let settings = UpstreamSettings {
        breaker_open_ms: 300,
        breaker_panic_percent: 0,
        ..single_attempt(UpstreamSettings::default())
    };
    let catalog = CatalogClient(Upstream::new(
        Context::Catalog,
        vec![stub.base_url.clone()],
        settings,
    ));
    open_the_breaker(&catalog, &stub).await;
    let hits = stub.hits();

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

    stub.set(Mode::Healthy);
    eventually(DEADLINE, "the next probe closing it", || async {
        catalog.get(1).await.is_ok()
    })
    .await;
}

#[tokio::test]
async fn not_found_and_invalid_answers_do_not_open_the_breaker() {
    let stub = Stub::start(Mode::NotFound).await;
    let catalog = CatalogClient(upstream(Context::Catalog, vec![stub.base_url.clone()], 1));
    for _ in 0..60 {
        assert!(matches!(
            catalog.get(1).await,
            Err(DomainError::NotFound(_))
        ));
    }
    stub.set(Mode::Invalid);
    for _ in 0..60 {
        assert!(matches!(catalog.get(1).await, Err(DomainError::Invalid(_))));
    }
    assert_eq!(
        stub.hits(),
        120,
        "every call reached the upstream once: not retried, never failed fast"
    );
    stub.set(Mode::Healthy);
    assert_eq!(catalog.get(1).await.unwrap().id, 1);
}
