//! Per-process Prometheus metrics: requests by route template and status, a latency
//! histogram, requests in flight; and, in a process that calls other contexts, the same
//! per hop ([`HopMetrics`]: calls by upstream and outcome, retries, latency, breaker state).
//!
//! One registry per server instance rather than a global recorder, so tests can run several
//! servers in one process and each reports only its own traffic.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

type LatencyFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    in_flight: Gauge,
    hops: HopMetrics,
}

/// The client side of every hop this process makes, labelled with the called context's one
/// spelling (`upstream="catalog"`). Cloning shares the series, so every upstream client of a
/// process reports into the registry of its server.
#[derive(Clone)]
pub struct HopMetrics {
    calls: Family<HopCallLabels, Counter>,
    retries: Family<HopLabels, Counter>,
    retries_denied: Family<HopLabels, Counter>,
    panic_calls: Family<HopLabels, Counter>,
    latency: Family<HopLabels, Histogram, fn() -> Histogram>,
    breaker_state: Family<BreakerLabels, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HopLabels {
    upstream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HopCallLabels {
    upstream: String,
    /// `ok`, or the error code the call ended with (`not_found`, `unavailable`, ...).
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BreakerLabels {
    upstream: String,
    /// `host:port` of the replica the breaker guards.
    replica: String,
}

/// A circuit breaker's state as the gauge reports it: ordered by how bad it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed = 0,
    HalfOpen = 1,
    Open = 2,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms .. ~8 s: covers a cached read on loopback up to a hung dependency.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: LatencyFamily = Family::new_with_constructor(latency_histogram);
        let in_flight = Gauge::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time from request to response head",
            latency.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being served",
            in_flight.clone(),
        );
        let hops = HopMetrics::default();
        hops.register(&mut registry);
        Metrics {
            registry: Arc::new(registry),
            requests,
            latency,
            in_flight,
            hops,
        }
    }

    /// The hop series of this registry, for the upstream clients of the same process.
    pub fn hops(&self) -> HopMetrics {
        self.hops.clone()
    }

    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

impl HopMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "hop_calls",
            "Calls to another context, by upstream and outcome (ok or the error code)",
            self.calls.clone(),
        );
        registry.register(
            "hop_retries",
            "Extra attempts of idempotent calls, by upstream",
            self.retries.clone(),
        );
        registry.register(
            "hop_retries_denied",
            "Retries the retry budget refused, by upstream",
            self.retries_denied.clone(),
        );
        registry.register(
            "hop_panic_calls",
            "Calls sent through an open breaker because every replica's breaker was open, by upstream",
            self.panic_calls.clone(),
        );
        registry.register(
            "hop_duration_seconds",
            "Time of one call to another context, retries included",
            self.latency.clone(),
        );
        registry.register(
            "hop_breaker_state",
            "Circuit breaker per upstream replica: 0 closed, 1 half-open, 2 open",
            self.breaker_state.clone(),
        );
    }

    /// One call finished: `outcome` is `ok` or the error code it ended with.
    pub fn call(&self, upstream: &str, outcome: &str, seconds: f64) {
        self.calls
            .get_or_create(&HopCallLabels {
                upstream: upstream.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.latency.get_or_create(&hop(upstream)).observe(seconds);
    }

    pub fn retry(&self, upstream: &str) {
        self.retries.get_or_create(&hop(upstream)).inc();
    }

    pub fn retry_denied(&self, upstream: &str) {
        self.retries_denied.get_or_create(&hop(upstream)).inc();
    }

    /// A call sent to a replica whose breaker is open, because every breaker was (panic mode).
    pub fn panic_call(&self, upstream: &str) {
        self.panic_calls.get_or_create(&hop(upstream)).inc();
    }

    pub fn breaker_state(&self, upstream: &str, replica: &str, state: BreakerState) {
        self.breaker_state
            .get_or_create(&BreakerLabels {
                upstream: upstream.to_owned(),
                replica: replica.to_owned(),
            })
            .set(state as i64);
    }
}

impl Default for HopMetrics {
    /// Series registered nowhere: what a client built without a server's registry (a test,
    /// a tool) reports into.
    fn default() -> HopMetrics {
        HopMetrics {
            calls: Family::default(),
            retries: Family::default(),
            retries_denied: Family::default(),
            panic_calls: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            breaker_state: Family::default(),
        }
    }
}

fn hop(upstream: &str) -> HopLabels {
    HopLabels {
        upstream: upstream.to_owned(),
    }
}

/// Middleware (mounted with `route_layer`, so the route template is known).
pub async fn track(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let in_flight = InFlight::enter(&metrics.in_flight);
    let started = Instant::now();
    let response = next.run(request).await;
    drop(in_flight);
    metrics
        .latency
        .get_or_create(&RouteLabels {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// Decrements the in-flight gauge when dropped, also when the client goes away mid-request
/// and the handler future is dropped.
struct InFlight(Gauge);

impl InFlight {
    fn enter(gauge: &Gauge) -> InFlight {
        gauge.inc();
        InFlight(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}
