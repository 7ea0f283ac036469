//! Open-loop load against a real monolith: arrivals are counted against the schedule, an
//! in-flight cap drops (and counts) what cannot start, and latency runs from the due time.

use std::time::{Duration, Instant};

use domain::Context;
use loadtest_lab::journeys::{Recorder, Shopfront, Step};
use loadtest_lab::open_loop::{self, OpenLoopPlan, Rate};
use loadtest_results::component::Build;
use loadtest_results::experiments::capacity::Arrivals;
use loadtest_results::history::Outcome;
use serde_json::json;

use crate::support::{SEED, start_target};

fn shop() -> Shopfront {
    Shopfront {
        products: 20,
        users: 2,
        first_user: 0,
        password: format!("shoplab-{SEED}"),
        browse_weight: 1,
        buy_weight: 0,
    }
}

fn plan(base_url: &str, per_s: f64, seconds: u64, max_in_flight: usize) -> OpenLoopPlan {
    OpenLoopPlan {
        base_url: base_url.to_owned(),
        rate: Rate::constant(per_s),
        duration: Duration::from_secs(seconds),
        arrivals: Arrivals::Uniform,
        max_in_flight,
        request_timeout: Duration::from_secs(5),
        seed: 7,
        only: Some(Step::List),
    }
}

#[tokio::test]
async fn every_arrival_due_at_the_target_rate_is_started_and_sends_its_request() {
    let _quiet = crate::support::exclusive().await;
    let target = start_target(Build::Monolith).await;
    let plan = plan(target.url(), 50.0, 2, 64);
    let recorder = Recorder::new(Instant::now());
    let run = open_loop::run(&plan, &shop(), &recorder)
        .await
        .expect("the open-loop run");
    assert_eq!(run.due, 100, "50/s evenly spaced over 2 s");
    assert_eq!(run.started + run.dropped, run.due);
    assert_eq!(run.dropped, 0, "a cap of 64 is never reached at 50/s");
    // One request per arrival (the list step alone), each answered.
    assert_eq!(run.records.len(), run.started);
    assert!(
        run.records
            .iter()
            .all(|record| record.outcome == Outcome::Ok),
        "every list request succeeded"
    );
    target.stop().await.expect("the target stops");
}

#[tokio::test]
async fn users_logged_in_before_a_run_buy_without_logging_in_again() {
    let _quiet = crate::support::exclusive().await;
    let target = start_target(Build::Monolith).await;
    let shop = Shopfront {
        browse_weight: 0,
        buy_weight: 1,
        ..shop()
    };
    let sessions = open_loop::Sessions::default();
    let logins = open_loop::log_in_everyone(
        target.url(),
        &shop,
        &Recorder::new(Instant::now()),
        &sessions,
        Duration::from_secs(5),
        2,
    )
    .await
    .expect("the logins");
    assert_eq!(logins.len(), 2, "one login per seeded user");
    assert!(logins.iter().all(|record| record.outcome == Outcome::Ok));
    assert_eq!(sessions.len(), 2, "both users keep a session");
    let plan = OpenLoopPlan {
        only: None,
        ..plan(target.url(), 5.0, 1, 8)
    };
    let run = open_loop::run_from(
        &plan,
        &shop,
        &Recorder::new(Instant::now()),
        Instant::now(),
        &sessions,
    )
    .await
    .expect("the open-loop run");
    assert!(run.started > 0);
    let logged_in = run
        .records
        .iter()
        .filter(|record| record.transaction == loadtest_lab::journeys::LOGIN)
        .count();
    assert_eq!(logged_in, 0, "no buy arrival logs in again");
    assert!(
        run.records
            .iter()
            .all(|record| record.outcome == Outcome::Ok)
    );
    target.stop().await.expect("the target stops");
}

#[tokio::test]
async fn a_cap_of_one_in_flight_drops_and_counts_arrivals_while_catalog_is_slowed() {
    let _quiet = crate::support::exclusive().await;
    let target = start_target(Build::Monolith).await;
    target
        .fault(Context::Catalog, "latency", json!({"ms": 300}))
        .await
        .expect("the latency fault");
    let plan = OpenLoopPlan {
        only: Some(Step::ProductPage),
        ..plan(target.url(), 20.0, 2, 1)
    };
    let recorder = Recorder::new(Instant::now());
    let run = open_loop::run(&plan, &shop(), &recorder)
        .await
        .expect("the open-loop run");
    assert_eq!(run.due, 40);
    assert_eq!(run.started + run.dropped, run.due);
    // Each product page holds the one slot for at least 300 ms while arrivals come every
    // 50 ms: most of them find the slot taken.
    assert!(run.dropped > 0, "nothing dropped: {run:?}");
    assert!(run.started >= 1);
    assert_eq!(
        run.records.len(),
        run.started,
        "no dropped arrival was sent"
    );
    target.heal_faults().await.expect("the heal");
    target.stop().await.expect("the target stops");
}

#[tokio::test]
async fn an_arrival_that_starts_late_counts_its_wait_in_its_latency() {
    let _quiet = crate::support::exclusive().await;
    let target = start_target(Build::Monolith).await;
    // The schedule began 500 ms ago: the arrivals due in those 500 ms are late from the
    // start, as if the generator had stalled, and must carry that wait.
    let late = Duration::from_millis(500);
    let start = Instant::now()
        .checked_sub(late)
        .expect("the machine has been up longer than half a second");
    let plan = plan(target.url(), 10.0, 1, 64);
    let recorder = Recorder::new(start);
    let run = open_loop::run_from(&plan, &shop(), &recorder, start, &Default::default())
        .await
        .expect("the open-loop run");
    assert_eq!(run.due, 10);
    let overdue: Vec<_> = run
        .records
        .iter()
        .filter(|record| record.t_ms < 400)
        .collect();
    assert_eq!(overdue.len(), 4, "arrivals due at 0, 100, 200, 300 ms");
    for record in overdue {
        // Due at `t_ms` (rounded down), sent no earlier than 500 ms after the start.
        let wait_us = (late.as_millis() as u64 - record.t_ms - 1) * 1000;
        assert!(
            record.latency_us >= wait_us,
            "due at {} ms, sent at least {} ms late, yet its latency is {} us",
            record.t_ms,
            wait_us / 1000,
            record.latency_us
        );
    }
    target.stop().await.expect("the target stops");
}

#[tokio::test]
async fn shoplab_load_refuses_a_zero_arrival_rate_and_a_closed_loop_flag_beside_it() {
    for args in [
        vec!["--arrival-rate", "0"],
        vec!["--arrival-rate", "10", "--users", "4"],
        vec!["--arrival-rate", "10", "--only", "log-in"],
    ] {
        let output = tokio::process::Command::new(crate::support::shoplab_binary())
            .args(["load", "--base-url", "http://127.0.0.1:9"])
            .args(&args)
            .output()
            .await
            .expect("run shoplab load");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "shoplab load {args:?} was not refused as a usage error:\n{stderr}"
        );
        assert!(
            stderr.contains(args[args.len() - 2]),
            "the error does not name {}:\n{stderr}",
            args[args.len() - 2]
        );
    }
}
