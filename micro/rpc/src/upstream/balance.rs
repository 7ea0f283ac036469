//! The replicas of one context behind tower's power-of-two-choices balancer, each guarded by
//! a circuit breaker of its own (tower-resilience).
//!
//! The breakers run in backpressure mode: an open breaker makes its replica *not ready*, and
//! p2c only picks among ready replicas, so a replica that went away stops receiving calls a
//! few failures after it went, and gets one probe call once its breaker half-opens — back in
//! rotation after one success. When no replica is ready and none is closed, waiting would
//! only burn the caller's time budget, so the call fails fast instead (`AllOpen`), which the
//! client turns into `Unavailable` and the callers' fallbacks absorb.

use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use api::metrics::{BreakerState, HopMetrics};
use domain::Context;
use futures::future::BoxFuture;
use tower::Service;
use tower::balance::p2c::Balance;
use tower::discover::ServiceList;
use tower::load::{CompleteOnResponse, PendingRequests};
use tower::util::MapErr;
use tower_resilience::circuitbreaker::{
    CircuitBreaker, CircuitBreakerError, CircuitBreakerHandle, CircuitBreakerLayer, CircuitState,
    FnClassifier,
};

use super::UpstreamSettings;
use super::hop::{Answer, HopError, HopRequest, Replica, is_unavailable};

type Classifier = FnClassifier<fn(&Result<Answer, HopError>) -> bool>;
type Guarded =
    MapErr<CircuitBreaker<Replica, Classifier>, fn(CircuitBreakerError<HopError>) -> HopError>;
/// One replica as p2c sees it: its breaker, and its load as the number of calls in flight.
/// Pending requests rather than peak EWMA on purpose: a dead replica refuses connections
/// within microseconds, and a latency-based load would make it look like the best replica.
type Endpoint = PendingRequests<Guarded>;

/// Shared by every clone of an `Upstream`: one balancer, one breaker per replica.
#[derive(Clone)]
pub(crate) struct Balanced {
    /// `Balance` needs `&mut self`; tower's `Buffer` would share it through a worker task,
    /// but the lock is held only to pick a replica and hand the call over (the call itself
    /// runs outside it), and one task at a time polling the balancer keeps its wake-ups
    /// right. Fair (tokio's mutex is FIFO), so no caller starves.
    balance: Arc<tokio::sync::Mutex<Balance<ServiceList<Vec<Endpoint>>, HopRequest>>>,
    breakers: Arc<[CircuitBreakerHandle<Classifier>]>,
    /// The longest a call waits for a ready replica (the hop's whole budget).
    ready_timeout: Duration,
}

impl Balanced {
    pub(crate) fn new(
        context: Context,
        replicas: &[String],
        http: &reqwest::Client,
        settings: &UpstreamSettings,
        metrics: &HopMetrics,
    ) -> Balanced {
        let mut endpoints = Vec::with_capacity(replicas.len());
        let mut breakers = Vec::with_capacity(replicas.len());
        for base_url in replicas {
            let (layer, handle) = breaker(context, base_url, settings, metrics);
            let guarded: Guarded = MapErr::new(
                tower::Layer::layer(&layer, Replica::new(base_url, http.clone())),
                unwrap_breaker_error,
            );
            endpoints.push(PendingRequests::new(guarded, CompleteOnResponse::default()));
            breakers.push(handle);
        }
        Balanced {
            balance: Arc::new(tokio::sync::Mutex::new(Balance::new(ServiceList::new(
                endpoints,
            )))),
            breakers: breakers.into(),
            ready_timeout: Duration::from_millis(settings.timeout_ms),
        }
    }

    /// Whether any replica's breaker is closed (a ready replica is then near).
    fn any_closed(&self) -> bool {
        self.breakers
            .iter()
            .any(|breaker| breaker.state() == CircuitState::Closed)
    }
}

impl Service<HopRequest> for Balanced {
    type Response = Answer;
    type Error = HopError;
    type Future = BoxFuture<'static, Result<Answer, HopError>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<Result<(), HopError>> {
        // Readiness is decided per call, under the lock, in `call`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: HopRequest) -> Self::Future {
        let balanced = self.clone();
        Box::pin(async move {
            let pick = async {
                let mut balance = balanced.balance.lock().await;
                std::future::poll_fn(|cx| match balance.poll_ready(cx) {
                    Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
                    // Only a failing discovery errs here, and a fixed list cannot fail.
                    Poll::Ready(Err(_)) => Poll::Ready(Err(HopError::NoAnswer)),
                    Poll::Pending if !balanced.any_closed() => Poll::Ready(Err(HopError::AllOpen)),
                    Poll::Pending => Poll::Pending,
                })
                .await?;
                Ok::<_, HopError>(balance.call(request))
            };
            let answer = tokio::time::timeout(balanced.ready_timeout, pick)
                .await
                .map_err(|_| HopError::TimedOut)??;
            answer
                .await
                .map_err(|error| match error.downcast::<HopError>() {
                    Ok(error) => *error,
                    Err(_) => HopError::NoAnswer,
                })
        })
    }
}

/// The breaker of one replica, with its state reported to the hop metrics and the log.
fn breaker(
    context: Context,
    base_url: &str,
    settings: &UpstreamSettings,
    metrics: &HopMetrics,
) -> (
    CircuitBreakerLayer<Classifier>,
    CircuitBreakerHandle<Classifier>,
) {
    let replica = base_url
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_owned();
    metrics.breaker_state(context.as_str(), &replica, BreakerState::Closed);
    let metrics = metrics.clone();
    let name = format!("{context} {replica}");
    let on_transition = move |from: CircuitState, to: CircuitState| {
        let state = match to {
            CircuitState::Closed => BreakerState::Closed,
            CircuitState::HalfOpen => BreakerState::HalfOpen,
            CircuitState::Open => BreakerState::Open,
        };
        metrics.breaker_state(context.as_str(), &replica, state);
        tracing::warn!(upstream = %context, %replica, ?from, ?to, "circuit breaker changed state");
    };
    CircuitBreakerLayer::builder()
        .name(name)
        // Failures in a row rather than the crate's failure-rate window: its count-based
        // window counts since the last state change (not the last N calls), and the rate is
        // also judged after a success, so four failures and then the first success after a
        // fault heals would open it. A success resets a run of failures.
        .consecutive_failures(settings.breaker_failures.max(1) as usize)
        .wait_duration_in_open(Duration::from_millis(settings.breaker_open_ms))
        // One probe call decides: success closes, failure opens for another wait.
        .permitted_calls_in_half_open(1)
        // Open means "not ready", so p2c skips this replica instead of calling it.
        .backpressure()
        .on_state_transition(on_transition)
        .failure_classifier(is_unavailable as fn(&Result<Answer, HopError>) -> bool)
        .build_with_handle()
        // Only a zero failure count is refused, and it is clamped to one above.
        .expect("a valid circuit breaker configuration")
}

fn unwrap_breaker_error(error: CircuitBreakerError<HopError>) -> HopError {
    match error {
        CircuitBreakerError::OpenCircuit => HopError::ReplicaOpen,
        CircuitBreakerError::Inner(error) => error,
    }
}
