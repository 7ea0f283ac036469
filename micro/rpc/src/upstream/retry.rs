//! When a failed attempt is tried again: only idempotent calls, only when the hop failed
//! (no answer, a timeout, a 503), at most `retries` times — and a timeout only once, since
//! each one costs the caller a whole attempt of waiting and a hung replica hangs the retry
//! too, so a cut link costs two hop timeouts, not three — after a jittered exponential
//! backoff, only when the retry could finish before the caller's deadline, and only while the
//! retry budget (tower's `TpsBudget`, shared by every call to one context) has room. The
//! budget is what keeps retries from multiplying the load on a context that is already
//! struggling: over its window, retries are at most `retry_budget_ratio` per call plus
//! `retry_budget_min_per_sec`, so attempts per call stay at most
//! `1 + ratio + min_per_sec / calls_per_sec` whatever the failure rate.
//!
//! That bound is over the budget's window (`retry_budget_ttl_ms`): the budget is filled by
//! every call of the window, so a fault may spend what the calm calls just before it
//! deposited, and tower keeps a reserve of `min_per_sec` x the window's seconds retries that
//! can be spent at once. Both grow with the window: with 10 s, 5 a second and 0.25, a
//! 1.25 s fault of 50 % errors on inventory could spend 8.75 calm seconds' deposits and a
//! reserve of 50 retries, so only `retries` bound it and attempts per call reached 1.73-1.81
//! (the lab's quick profile). Hence the defaults: a 1 s window (the shortest tower
//! accepts), a reserve of 1, and one retry per eight calls — at most
//! `1 + 0.125 x (1 + 1 s / fault)` plus the reserve's share in any fault, 1.23 in a 1.25 s
//! one and 1.125 in a long one. The reasons in full: `micro/README.md`, "Resilience
//! settings".

use std::sync::Arc;
use std::time::Duration;

use api::metrics::HopMetrics;
use domain::Context;
use tower::retry::Policy;
use tower::retry::backoff::{Backoff, ExponentialBackoff, ExponentialBackoffMaker, MakeBackoff};
use tower::retry::budget::{Budget, TpsBudget};
use tower::util::rng::HasherRng;

use super::hop::{Answer, HopError, HopRequest, is_unavailable};
use super::{Idempotency, UpstreamSettings};

#[derive(Clone)]
pub(crate) struct HopPolicy {
    context: Context,
    /// Attempts left for this call; `tower::retry::Retry` clones the policy per call.
    remaining: u32,
    budget: Arc<TpsBudget>,
    /// The first and the longest wait between attempts; `None`: retries go at once.
    backoff_range: Option<(Duration, Duration)>,
    /// This call's waits, made at its first retry.
    backoff: Option<ExponentialBackoff>,
    /// Whether an attempt of this call already timed out.
    timed_out: bool,
    metrics: HopMetrics,
}

impl HopPolicy {
    pub(crate) fn new(
        context: Context,
        settings: &UpstreamSettings,
        metrics: &HopMetrics,
    ) -> HopPolicy {
        HopPolicy {
            context,
            remaining: settings.retries,
            budget: Arc::new(budget(settings)),
            backoff_range: backoff_range(settings),
            backoff: None,
            timed_out: false,
            metrics: metrics.clone(),
        }
    }

    /// Every call pays into the budget, retried or not; retries withdraw from it.
    pub(crate) fn deposit(&self) {
        self.budget.deposit();
    }
}

/// `TpsBudget::new` panics outside its ranges (ttl 1..=60 s, ratio 0..=1000), so settings
/// are clamped into them rather than trusted.
fn budget(settings: &UpstreamSettings) -> TpsBudget {
    let ttl = Duration::from_millis(settings.retry_budget_ttl_ms.clamp(1_000, 60_000));
    let ratio = if settings.retry_budget_ratio.is_finite() {
        settings.retry_budget_ratio.clamp(0.0, 1000.0)
    } else {
        0.0
    };
    TpsBudget::new(
        ttl,
        settings.retry_budget_min_per_sec.min(i32::MAX as u32 - 1),
        ratio,
    )
}

/// Waits of `retry_backoff_ms`, then twice that, and so on up to `retry_backoff_max_ms`,
/// each plus a random share of up to 100 % of itself (tower's jitter, which never takes a wait
/// past the longest), so calls that failed together do not retry together. A zero first wait
/// means no backoff.
fn backoff_range(settings: &UpstreamSettings) -> Option<(Duration, Duration)> {
    let min = Duration::from_millis(settings.retry_backoff_ms);
    let max = Duration::from_millis(settings.retry_backoff_max_ms).max(min);
    (!min.is_zero()).then_some((min, max))
}

impl Policy<HopRequest, Answer, HopError> for HopPolicy {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        request: &mut HopRequest,
        result: &mut Result<Answer, HopError>,
    ) -> Option<Self::Future> {
        let worth_another_try = request.idempotency == Idempotency::Idempotent
            && self.remaining > 0
            && is_unavailable(result)
            // Every breaker open: another attempt would fail just as fast.
            && !matches!(result, Err(HopError::AllOpen));
        if !worth_another_try {
            return None;
        }
        if matches!(result, Err(HopError::TimedOut)) {
            if self.timed_out {
                return None;
            }
            self.timed_out = true;
        }
        let wait = match (&mut self.backoff, self.backoff_range) {
            (Some(backoff), _) => backoff.next_backoff(),
            (None, Some((min, max))) => {
                // A maker hands every backoff a clone of its random generator, which would
                // give every call the same "random" waits; each call seeds its own instead.
                let mut backoff = ExponentialBackoffMaker::new(min, max, 1.0, HasherRng::default())
                    .map(|mut maker| maker.make_backoff())
                    .ok();
                let wait = backoff
                    .as_mut()
                    .map_or_else(|| tokio::time::sleep(Duration::ZERO), Backoff::next_backoff);
                self.backoff = backoff;
                wait
            }
            (None, None) => tokio::time::sleep(Duration::ZERO),
        };
        // A retry that could not start before the caller stops waiting is not worth its
        // share of the budget.
        if request
            .deadline
            .is_some_and(|deadline| wait.deadline() >= deadline.into())
        {
            return None;
        }
        if !self.budget.withdraw() {
            self.metrics.retry_denied(self.context.as_str());
            return None;
        }
        self.remaining -= 1;
        self.metrics.retry(self.context.as_str());
        // The balancer picks again after the wait, and a replica whose breaker opened is
        // skipped.
        Some(wait)
    }

    fn clone_request(&mut self, request: &HopRequest) -> Option<HopRequest> {
        // A call that may not be repeated is not even kept for a repeat.
        (request.idempotency == Idempotency::Idempotent).then(|| request.clone())
    }
}
