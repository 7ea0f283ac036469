//! When a failed attempt is tried again: only idempotent calls, only when the hop failed
//! (no answer, a timeout, a 503), at most `retries` times, and only while the retry budget
//! (tower's `TpsBudget`, shared by every call to one context) has room. The budget is what
//! keeps retries from multiplying the load on a context that is already struggling.

use std::sync::Arc;
use std::time::Duration;

use api::metrics::HopMetrics;
use domain::Context;
use tower::retry::Policy;
use tower::retry::budget::{Budget, TpsBudget};

use super::hop::{Answer, HopError, HopRequest, is_unavailable};
use super::{Idempotency, UpstreamSettings};

#[derive(Clone)]
pub(crate) struct HopPolicy {
    context: Context,
    /// Attempts left for this call; `tower::retry::Retry` clones the policy per call.
    remaining: u32,
    budget: Arc<TpsBudget>,
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

impl Policy<HopRequest, Answer, HopError> for HopPolicy {
    type Future = std::future::Ready<()>;

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
        if !self.budget.withdraw() {
            self.metrics.retry_denied(self.context.as_str());
            return None;
        }
        self.remaining -= 1;
        self.metrics.retry(self.context.as_str());
        // At once: the balancer picks again, and a replica whose breaker opened is skipped.
        Some(std::future::ready(()))
    }

    fn clone_request(&mut self, request: &HopRequest) -> Option<HopRequest> {
        // A call that may not be repeated is not even kept for a repeat.
        (request.idempotency == Idempotency::Idempotent).then(|| request.clone())
    }
}
