//! The replicas of one context, balanced by power of two choices over the calls each has in
//! flight, each behind a circuit breaker of its own (`breaker.rs`).
//!
//! A call picks two replicas at random among those whose breaker would let it through and
//! takes the one with fewer calls in flight. Calls in flight rather than a latency average
//! on purpose: a dead replica refuses connections within microseconds, and a latency-based
//! load would make it look like the best one.
//!
//! **Panic mode** (Envoy's panic threshold): when no replica's breaker would let a call
//! through, failing every call would turn a partial fault into a full one — with one replica,
//! a breaker that opened on a burst of failures would fail every call until it half-opens. So
//! one call in `100 / breaker_panic_percent` is sent anyway, to the replicas in turn, and
//! the rest fail fast (`AllOpen`), which the callers' fallbacks absorb. A panic call that is
//! answered closes its replica's breaker: the replica serves again, and the calls after it
//! need not wait for the half-open probe.
//!
//! Hand-written rather than tower's `p2c::Balance`: that one needs `&mut self` for every
//! pick (so a lock or a buffer task per upstream) and learns whether a replica may be called
//! only through `poll_ready`, which cannot say "refuse nine calls in ten and let the tenth
//! through" without a timer per replica. Here a pick is two atomic loads and a breaker check.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use api::metrics::HopMetrics;
use domain::Context;
use futures::future::BoxFuture;
use rand::Rng;
use tower::Service;

use super::UpstreamSettings;
use super::breaker::{Admission, Breaker, Outcome};
use super::hop::{Answer, HopError, HopRequest, HttpClient, Replica, outcome};
use crate::Directory;

/// Shared by every clone of an `Upstream`: one breaker and one in-flight count per replica.
#[derive(Clone)]
pub(crate) struct Balanced {
    endpoints: Arc<[Endpoint]>,
    /// Calls that found every breaker closed to them; every `panic_every`-th goes through.
    refused: Arc<AtomicU64>,
    /// 0: never (panic mode off).
    panic_every: u64,
    context: Context,
    metrics: HopMetrics,
    /// Told when a replica did not answer, so a resolver looks for where it went.
    directory: Directory,
}

struct Endpoint {
    /// `host:port`, as the metrics label the replica.
    name: Arc<str>,
    replica: Replica,
    breaker: Breaker,
    in_flight: AtomicUsize,
}

impl Balanced {
    pub(crate) fn new(
        context: Context,
        replicas: &[String],
        http: &HttpClient,
        settings: &UpstreamSettings,
        metrics: &HopMetrics,
        directory: &Directory,
    ) -> Balanced {
        let endpoints = replicas
            .iter()
            .map(|base_url| {
                let name: Arc<str> = Arc::from(replica_name(base_url));
                Endpoint {
                    replica: Replica::new(
                        base_url,
                        http.clone(),
                        Duration::from_millis(settings.timeout_ms),
                    ),
                    breaker: Breaker::new(context, &name, settings, metrics),
                    in_flight: AtomicUsize::new(0),
                    name,
                }
            })
            .collect();
        let percent = u64::from(settings.breaker_panic_percent.min(100));
        Balanced {
            endpoints,
            refused: Arc::new(AtomicU64::new(0)),
            panic_every: if percent == 0 {
                0
            } else {
                100_u64.div_ceil(percent)
            },
            context,
            metrics: metrics.clone(),
            directory: directory.clone(),
        }
    }

    /// A replica and how its breaker let the call through, or `AllOpen`.
    fn pick(&self) -> Result<(&Endpoint, Admission), HopError> {
        let available: Vec<&Endpoint> = self
            .endpoints
            .iter()
            .filter(|endpoint| endpoint.breaker.is_available())
            .collect();
        let mut candidates = match available.len() {
            0 => Vec::new(),
            1 => vec![available[0]],
            count => {
                let mut random = rand::rng();
                let first = random.random_range(0..count);
                // A second index other than the first.
                let second = (first + random.random_range(1..count)) % count;
                let (first, second) = (available[first], available[second]);
                if second.in_flight.load(Ordering::Relaxed)
                    < first.in_flight.load(Ordering::Relaxed)
                {
                    vec![second, first]
                } else {
                    vec![first, second]
                }
            }
        };
        // The chosen one first; the other if its breaker turned in between.
        for endpoint in candidates.drain(..) {
            if let Some(admission) = endpoint.breaker.admit() {
                return Ok((endpoint, admission));
            }
        }
        self.panic()
    }

    /// Every breaker is open (or probing): one call in `panic_every` goes through anyway.
    fn panic(&self) -> Result<(&Endpoint, Admission), HopError> {
        if self.panic_every == 0 || self.endpoints.is_empty() {
            return Err(HopError::AllOpen);
        }
        let refused = self.refused.fetch_add(1, Ordering::Relaxed);
        if refused % self.panic_every != self.panic_every - 1 {
            return Err(HopError::AllOpen);
        }
        let turn = (refused / self.panic_every) as usize % self.endpoints.len();
        self.metrics.panic_call(self.context.as_str());
        Ok((&self.endpoints[turn], Admission::Panic))
    }
}

/// How the metrics and breakers name a replica: its base URL less the scheme.
pub(crate) fn replica_name(base_url: &str) -> &str {
    base_url
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/')
}

/// Decrements a replica's in-flight count however the call ends (cancelled included).
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Service<HopRequest> for Balanced {
    type Response = Answer;
    type Error = HopError;
    type Future = BoxFuture<'static, Result<Answer, HopError>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<Result<(), HopError>> {
        // Whether a replica may be called is decided per call, in `call`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: HopRequest) -> Self::Future {
        let balanced = self.clone();
        Box::pin(async move {
            let (endpoint, admission) = balanced.pick()?;
            endpoint.in_flight.fetch_add(1, Ordering::Relaxed);
            let _in_flight = InFlight(&endpoint.in_flight);
            balanced
                .metrics
                .attempt(balanced.context.as_str(), &endpoint.name);
            let result = endpoint.replica.send(request).await;
            let outcome = outcome(&result);
            if outcome == Outcome::NoAnswer {
                balanced.directory.replica_unreachable();
            }
            endpoint.breaker.record(admission, outcome);
            result
        })
    }
}
