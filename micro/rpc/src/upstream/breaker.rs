//! The circuit breaker of one replica, on resilience4j's model: it opens when the share of
//! failed calls over a sliding time window reaches a threshold (once the window holds a
//! minimum number of calls), or at once when the replica stops answering at all (Envoy's
//! consecutive local-origin failures); after a wait it lets one probe call through
//! (half-open), and the probe's success closes it.
//!
//! Written here rather than taken from tower-resilience 0.13 (checked in its source,
//! `circuit.rs`): its count-based window is not a sliding window but a count since the last
//! state change, so a long healthy history hides a new failure rate; its time-based window
//! keeps one record per call and scans them all under the lock on every call. Neither can
//! tell "answered 503" from "did not answer", and an open breaker there can only refuse, while
//! the balancer here must be able to send a panic call through it (see `balance.rs`).
//! Counting per bucket keeps a call's cost to a few additions whatever the traffic.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::metrics::{BreakerState, HopMetrics};
use domain::Context;

use super::UpstreamSettings;

/// The window is counted in this many buckets; the oldest one is dropped as time moves on,
/// so the window slides in steps of a tenth of its length.
const BUCKETS: usize = 10;

/// What an attempt on one replica turned out to be, as the breaker counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// An answer that is the service's own (a 2xx, or a 4xx/500 with the shop's error body).
    Answered,
    /// An answer saying the service cannot serve (a 503, a 5xx from something in between).
    Unavailable,
    /// No answer at all: refused, reset, or timed out.
    NoAnswer,
    /// Not the replica's doing (the caller's own deadline ran out): not counted.
    Ignored,
}

/// How a call was let through, which decides how its outcome is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// The breaker is closed.
    Closed,
    /// The one probe of a half-open breaker.
    Probe,
    /// Every breaker is open and the balancer sent this call anyway (panic mode).
    Panic,
}

/// One replica's breaker; shared by every call to that replica.
pub(crate) struct Breaker {
    core: Mutex<Core>,
    window: Duration,
    min_calls: u64,
    failure_rate: f64,
    no_answer_limit: u32,
    open_for: Duration,
    context: Context,
    replica: Arc<str>,
    metrics: HopMetrics,
}

struct Core {
    state: State,
    /// When this breaker was made: bucket numbers count bucket lengths since then.
    epoch: Instant,
    buckets: [Bucket; BUCKETS],
    /// Attempts in a row that got no answer at all.
    no_answer_run: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Closed,
    Open {
        until: Instant,
    },
    /// The probe is out; every other call is refused until it comes back.
    HalfOpen,
}

#[derive(Clone, Copy, Default)]
struct Bucket {
    /// Which bucket length since the epoch these counts belong to.
    number: u64,
    calls: u64,
    failures: u64,
}

impl Breaker {
    pub(crate) fn new(
        context: Context,
        replica: &Arc<str>,
        settings: &UpstreamSettings,
        metrics: &HopMetrics,
    ) -> Breaker {
        metrics.breaker_state(context.as_str(), replica, BreakerState::Closed);
        Breaker {
            core: Mutex::new(Core {
                state: State::Closed,
                epoch: Instant::now(),
                buckets: [Bucket::default(); BUCKETS],
                no_answer_run: 0,
            }),
            // At least one millisecond per bucket, so bucket numbers always move on.
            window: Duration::from_millis(settings.breaker_window_ms.max(BUCKETS as u64)),
            min_calls: u64::from(settings.breaker_min_calls.max(1)),
            failure_rate: if settings.breaker_failure_rate.is_finite() {
                f64::from(settings.breaker_failure_rate).clamp(0.0, 1.0)
            } else {
                1.0
            },
            no_answer_limit: settings.breaker_no_answer_failures.max(1),
            open_for: Duration::from_millis(settings.breaker_open_ms),
            context,
            replica: replica.clone(),
            metrics: metrics.clone(),
        }
    }

    /// Whether a call could be let through now (closed, or open long enough for its probe).
    /// Asked by the balancer to choose among replicas; `admit` decides.
    pub(crate) fn is_available(&self) -> bool {
        match self.lock().state {
            State::Closed => true,
            State::Open { until } => Instant::now() >= until,
            State::HalfOpen => false,
        }
    }

    /// Lets a call through, or refuses it. An open breaker whose wait is over turns
    /// half-open and lets this call through as its probe.
    pub(crate) fn admit(&self) -> Option<Admission> {
        let mut core = self.lock();
        match core.state {
            State::Closed => Some(Admission::Closed),
            State::Open { until } if Instant::now() >= until => {
                self.transition(&mut core, State::HalfOpen);
                Some(Admission::Probe)
            }
            State::Open { .. } | State::HalfOpen => None,
        }
    }

    /// Counts what a call that was let through came back with.
    pub(crate) fn record(&self, admission: Admission, outcome: Outcome) {
        if outcome == Outcome::Ignored {
            if admission == Admission::Probe {
                // The probe told nothing: give the next call the chance to probe.
                let mut core = self.lock();
                if core.state == State::HalfOpen {
                    self.transition(
                        &mut core,
                        State::Open {
                            until: Instant::now(),
                        },
                    );
                }
            }
            return;
        }
        let failed = outcome != Outcome::Answered;
        let mut core = self.lock();
        match (core.state, admission) {
            (State::Closed, _) => {
                core.no_answer_run = if outcome == Outcome::NoAnswer {
                    core.no_answer_run + 1
                } else {
                    0
                };
                let now = Instant::now();
                let (calls, failures) = core.count(now, self.window, failed);
                let rate_reached =
                    calls >= self.min_calls && failures as f64 >= self.failure_rate * calls as f64;
                if rate_reached || core.no_answer_run >= self.no_answer_limit {
                    self.open(&mut core);
                }
            }
            // A probe, or a panic call that reached a replica whose breaker is open or
            // half-open: an answer means the replica serves again, a failure keeps it out.
            (State::HalfOpen | State::Open { .. }, Admission::Probe | Admission::Panic) => {
                if !failed {
                    self.transition(&mut core, State::Closed);
                } else if core.state == State::HalfOpen && admission == Admission::Probe {
                    self.open(&mut core);
                }
            }
            // A call let through while closed that came back after the breaker opened.
            (State::HalfOpen | State::Open { .. }, Admission::Closed) => {}
        }
    }

    fn open(&self, core: &mut Core) {
        let until = Instant::now() + self.open_for;
        self.transition(core, State::Open { until });
    }

    fn transition(&self, core: &mut Core, to: State) {
        let from = core.state;
        core.state = to;
        if to == State::Closed {
            // A fresh window: what happened before the breaker opened says nothing now.
            core.buckets = [Bucket::default(); BUCKETS];
            core.no_answer_run = 0;
        }
        let (reported, name) = match to {
            State::Closed => (BreakerState::Closed, "closed"),
            State::HalfOpen => (BreakerState::HalfOpen, "half-open"),
            State::Open { .. } => (BreakerState::Open, "open"),
        };
        let changed = std::mem::discriminant(&from) != std::mem::discriminant(&to);
        if changed {
            self.metrics
                .breaker_state(self.context.as_str(), &self.replica, reported);
            tracing::warn!(upstream = %self.context, replica = %self.replica, to = name, "circuit breaker changed state");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Core> {
        self.core
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl Core {
    /// Adds one call to the current bucket and returns the calls and failures of the window.
    fn count(&mut self, now: Instant, window: Duration, failed: bool) -> (u64, u64) {
        let bucket_length = window.as_nanos() / BUCKETS as u128;
        let number = (now.duration_since(self.epoch).as_nanos() / bucket_length) as u64;
        let current = &mut self.buckets[(number % BUCKETS as u64) as usize];
        if current.number != number {
            *current = Bucket {
                number,
                ..Bucket::default()
            };
        }
        current.calls += 1;
        current.failures += u64::from(failed);
        self.buckets
            .iter()
            .filter(|bucket| bucket.number + BUCKETS as u64 > number)
            .fold((0, 0), |(calls, failures), bucket| {
                (calls + bucket.calls, failures + bucket.failures)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(min_calls: u32, failure_rate: f32) -> Breaker {
        let settings = UpstreamSettings {
            breaker_window_ms: 60_000,
            breaker_min_calls: min_calls,
            breaker_failure_rate: failure_rate,
            breaker_no_answer_failures: 5,
            breaker_open_ms: 60_000,
            ..UpstreamSettings::default()
        };
        Breaker::new(
            Context::Catalog,
            &Arc::from("127.0.0.1:1"),
            &settings,
            &HopMetrics::default(),
        )
    }

    fn call(breaker: &Breaker, outcome: Outcome) {
        let admission = breaker.admit().expect("the breaker lets the call through");
        breaker.record(admission, outcome);
    }

    #[test]
    fn a_failure_rate_below_the_threshold_never_opens_it() {
        let breaker = breaker(20, 0.8);
        // Three failures in four calls, in runs of three: 75 % under an 80 % threshold.
        for _ in 0..100 {
            call(&breaker, Outcome::Unavailable);
            call(&breaker, Outcome::Unavailable);
            call(&breaker, Outcome::Unavailable);
            call(&breaker, Outcome::Answered);
        }
        assert!(breaker.admit().is_some());
    }

    #[test]
    fn the_threshold_is_judged_only_once_the_window_holds_the_minimum_of_calls() {
        let breaker = breaker(20, 0.8);
        for _ in 0..19 {
            call(&breaker, Outcome::Unavailable);
        }
        assert!(breaker.admit().is_some(), "19 calls are too few to judge");
        call(&breaker, Outcome::Unavailable);
        assert!(breaker.admit().is_none(), "20 failures of 20 open it");
    }

    #[test]
    fn a_success_after_failures_does_not_open_it_while_the_rate_is_below_the_threshold() {
        let breaker = breaker(5, 0.9);
        for _ in 0..4 {
            call(&breaker, Outcome::Unavailable);
        }
        call(&breaker, Outcome::Answered);
        assert!(breaker.admit().is_some(), "4 of 5 is 80 %, under 90 %");
    }

    #[test]
    fn a_replica_that_stops_answering_opens_it_after_the_run_of_no_answers() {
        let breaker = breaker(1_000, 0.8);
        for _ in 0..4 {
            call(&breaker, Outcome::NoAnswer);
        }
        call(&breaker, Outcome::Unavailable);
        for _ in 0..4 {
            call(&breaker, Outcome::NoAnswer);
        }
        assert!(breaker.admit().is_some(), "a 503 answer ends the run");
        call(&breaker, Outcome::NoAnswer);
        assert!(
            breaker.admit().is_none(),
            "five no-answers in a row open it"
        );
    }

    #[test]
    fn a_panic_call_that_is_answered_closes_an_open_breaker() {
        let breaker = breaker(1, 0.5);
        call(&breaker, Outcome::Unavailable);
        assert!(breaker.admit().is_none());
        breaker.record(Admission::Panic, Outcome::Unavailable);
        assert!(
            breaker.admit().is_none(),
            "a failed panic call keeps it open"
        );
        breaker.record(Admission::Panic, Outcome::Answered);
        assert!(
            breaker.admit().is_some(),
            "an answered panic call closes it"
        );
    }
}
