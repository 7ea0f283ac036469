//! Per-process Prometheus metrics: requests by route template and status, a latency
//! histogram, requests in flight; and, in a process that calls other contexts, the same
//! per hop ([`HopMetrics`]: calls by upstream and outcome, retries, latency, breaker state).
//! Every process also reports `shoplab_build_info` and, when it has a database, its pools'
//! connections (`db_pool_*`, read at scrape time).
//!
//! One registry per server instance rather than a global recorder, so tests can run several
//! servers in one process and each reports only its own traffic. Each process (each replica)
//! counts only its own requests; the scraper tells replicas apart by the address it scraped
//! (Prometheus's `instance`), and `shoplab_build_info{pid}` names the process behind it.
//!
//! The exposition is negotiated ([`Metrics::encode`], [`Metrics::encode_openmetrics`]): a
//! scraper that asks for OpenMetrics gets prometheus-client's own encoding, anything else the
//! Prometheus text format 0.0.4, which `promtool check metrics` reads.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

// The labels hold what the request has already (a static method name, the matched route's
// shared template) rather than `String`s: four allocations per request less on every process.

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: Cow<'static, str>,
    route: Route,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: Cow<'static, str>,
    route: Route,
}

/// The route template a request matched (`MatchedPath`, a shared string), or `unmatched`.
#[derive(Clone, Debug)]
struct Route(Option<MatchedPath>);

impl Route {
    fn as_str(&self) -> &str {
        self.0.as_ref().map_or("unmatched", MatchedPath::as_str)
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Route) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl std::hash::Hash for Route {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// A method's label: the standard ones without an allocation.
fn method_label(method: &Method) -> Cow<'static, str> {
    static STANDARD: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
        Method::PATCH,
        Method::CONNECT,
        Method::TRACE,
    ];
    match STANDARD.iter().find(|standard| *standard == method) {
        Some(standard) => Cow::Borrowed(standard.as_str()),
        None => Cow::Owned(method.as_str().to_owned()),
    }
}

type LatencyFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    in_flight: Gauge,
    hops: HopMetrics,
    pools: PoolGauges,
    checkout: CheckoutMetrics,
}

/// What became of the microservices' checkouts past the pivot (`micro/orders`): how many
/// were confirmed with their stock commit still owed, and how many of those had to be
/// undone because the reservation ran out first (the apology: refund and cancel a confirmed
/// order). The monolith commits the stock with the order, so both stay 0 there.
#[derive(Clone, Default)]
pub struct CheckoutMetrics {
    stock_commits_owed: Counter,
    apologies: Counter,
}

/// One database pool's connections at one moment, as the pool gauges report them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolSample {
    /// `reader` or `writer` on SQLite; `shared` on PostgreSQL, where one pool serves both.
    pub pool: &'static str,
    /// Connections the pool holds open, idle or in use.
    pub open: u32,
    pub idle: u32,
    /// The most the pool may open.
    pub max: u32,
}

/// Reads a process's pools; called at every scrape.
type PoolProbe = Arc<dyn Fn() -> Vec<PoolSample> + Send + Sync>;

#[derive(Clone)]
struct PoolGauges {
    open: Family<PoolLabels, Gauge>,
    idle: Family<PoolLabels, Gauge>,
    in_use: Family<PoolLabels, Gauge>,
    max: Family<PoolLabels, Gauge>,
    probes: Arc<Mutex<Vec<PoolProbe>>>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildInfoLabels {
    version: String,
    /// `debug` or `release`: figures from a debug build are not the shop's speed.
    build: String,
    /// The process behind this scrape, so replicas and restarts are told apart.
    pid: String,
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
    /// Per replica, so the spread over replicas shows; a replica that leaves the list loses
    /// its series (`forget_replica`), so they stay as many as the replicas.
    attempts: Family<ReplicaLabels, Counter>,
    breaker_state: Family<ReplicaLabels, Gauge>,
}

// Static names and a shared replica name: a hop's series are found without an allocation.

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HopLabels {
    upstream: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HopCallLabels {
    upstream: &'static str,
    /// `ok`, or the error code the call ended with (`not_found`, `unavailable`, ...).
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReplicaLabels {
    upstream: &'static str,
    /// `host:port` of one replica of the upstream.
    replica: Arc<str>,
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
        let build_info = Family::<BuildInfoLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildInfoLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                build: if cfg!(debug_assertions) {
                    "debug"
                } else {
                    "release"
                }
                .to_owned(),
                pid: std::process::id().to_string(),
            })
            .set(1);
        registry.register(
            "shoplab_build_info",
            "The shop's version and build profile, and the process's id; always 1",
            build_info,
        );
        let pools = PoolGauges::default();
        pools.register(&mut registry);
        let checkout = CheckoutMetrics::default();
        registry.register(
            "checkout_stock_commits_owed",
            "Orders confirmed while inventory had not answered their stock commit, owed by the saga's recovery loop",
            checkout.stock_commits_owed.clone(),
        );
        registry.register(
            "checkout_apologies",
            "Confirmed orders refunded and cancelled because their reservation ran out before the owed stock commit",
            checkout.apologies.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            requests,
            latency,
            in_flight,
            hops,
            pools,
            checkout,
        }
    }

    /// Reports the pools `probe` reads, at every scrape, as `db_pool_connections`,
    /// `db_pool_connections_idle`, `db_pool_connections_in_use` and
    /// `db_pool_max_connections`, labelled by pool.
    pub fn watch_pools(&self, probe: impl Fn() -> Vec<PoolSample> + Send + Sync + 'static) {
        self.pools
            .probes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Arc::new(probe));
    }

    /// The Prometheus text format 0.0.4: what `promtool check metrics` and plain text
    /// scrapers read.
    pub fn encode(&self) -> String {
        openmetrics_to_text(&self.encode_openmetrics())
    }

    /// OpenMetrics 1.0, for a scraper that asks for it.
    pub fn encode_openmetrics(&self) -> String {
        self.pools.refresh();
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// The hop series of this registry, for the upstream clients of the same process.
    pub fn hops(&self) -> HopMetrics {
        self.hops.clone()
    }

    /// The checkout series of this registry, for the saga.
    pub fn checkout(&self) -> CheckoutMetrics {
        self.checkout.clone()
    }
}

impl CheckoutMetrics {
    /// An order was confirmed with its stock commit owed.
    pub fn stock_commit_owed(&self) {
        self.stock_commits_owed.inc();
    }

    /// A confirmed order was refunded and cancelled.
    pub fn apology(&self) {
        self.apologies.inc();
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
            "hop_attempts",
            "Attempts sent to one replica of another context, retries and panic calls included, by upstream and replica",
            self.attempts.clone(),
        );
        registry.register(
            "hop_breaker_state",
            "Circuit breaker per upstream replica: 0 closed, 1 half-open, 2 open",
            self.breaker_state.clone(),
        );
    }

    /// One call finished: `outcome` is `ok` or the error code it ended with.
    pub fn call(&self, upstream: &'static str, outcome: &'static str, seconds: f64) {
        self.calls
            .get_or_create(&HopCallLabels { upstream, outcome })
            .inc();
        self.latency.get_or_create(&hop(upstream)).observe(seconds);
    }

    pub fn retry(&self, upstream: &'static str) {
        self.retries.get_or_create(&hop(upstream)).inc();
    }

    pub fn retry_denied(&self, upstream: &'static str) {
        self.retries_denied.get_or_create(&hop(upstream)).inc();
    }

    /// A call sent to a replica whose breaker is open, because every breaker was (panic mode).
    pub fn panic_call(&self, upstream: &'static str) {
        self.panic_calls.get_or_create(&hop(upstream)).inc();
    }

    /// One attempt sent to `replica` (`host:port`).
    pub fn attempt(&self, upstream: &'static str, replica: &Arc<str>) {
        self.attempts.get_or_create(&on(upstream, replica)).inc();
    }

    pub fn breaker_state(&self, upstream: &'static str, replica: &Arc<str>, state: BreakerState) {
        self.breaker_state
            .get_or_create(&on(upstream, replica))
            .set(state as i64);
    }

    /// `replica` left the upstream's list: its series go, so a long run whose replicas come
    /// and go (rolling deploys, tasks rescheduled with new addresses) keeps as many series
    /// as it has replicas.
    pub fn forget_replica(&self, upstream: &'static str, replica: &str) {
        let labels = on(upstream, &Arc::from(replica));
        self.attempts.remove(&labels);
        self.breaker_state.remove(&labels);
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
            attempts: Family::default(),
            breaker_state: Family::default(),
        }
    }
}

impl Default for PoolGauges {
    fn default() -> PoolGauges {
        PoolGauges {
            open: Family::default(),
            idle: Family::default(),
            in_use: Family::default(),
            max: Family::default(),
            probes: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

impl PoolGauges {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "db_pool_connections",
            "Database connections the pool holds open, idle or in use",
            self.open.clone(),
        );
        registry.register(
            "db_pool_connections_idle",
            "Open database connections waiting in the pool",
            self.idle.clone(),
        );
        registry.register(
            "db_pool_connections_in_use",
            "Database connections taken from the pool",
            self.in_use.clone(),
        );
        registry.register(
            "db_pool_max_connections",
            "The most connections the pool may open",
            self.max.clone(),
        );
    }

    /// Reads every watched pool into the gauges; a scrape calls it just before encoding.
    fn refresh(&self) {
        let probes = self
            .probes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for sample in probes.iter().flat_map(|probe| probe()) {
            let labels = PoolLabels {
                pool: sample.pool.to_owned(),
            };
            self.open.get_or_create(&labels).set(i64::from(sample.open));
            self.idle.get_or_create(&labels).set(i64::from(sample.idle));
            self.in_use
                .get_or_create(&labels)
                .set(i64::from(sample.open.saturating_sub(sample.idle)));
            self.max.get_or_create(&labels).set(i64::from(sample.max));
        }
    }
}

/// Rewrites prometheus-client's OpenMetrics encoding as the Prometheus text format 0.0.4.
///
/// Written by hand because no maintained crate does it for this registry: prometheus-client
/// (0.24, and 0.26) encodes only OpenMetrics, where a counter's family is named without its
/// `_total` suffix (`# TYPE http_requests counter` above `http_requests_total 3`). A text
/// format parser such as `promtool check metrics` then finds samples with no HELP or TYPE of
/// their own ("no help text", prometheus/client_rust#194). The families differ only there:
/// counters get `_total` on their HELP and TYPE lines, and the OpenMetrics-only lines
/// (`# UNIT`, `# EOF`) are dropped. Gauges and histograms are written alike in both formats.
pub fn openmetrics_to_text(openmetrics: &str) -> String {
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut text = String::with_capacity(openmetrics.len() + 8 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let descriptor = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|prefix| Some((prefix, line.strip_prefix(prefix)?)));
        match descriptor {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                text.push_str(prefix);
                text.push_str(name);
                if counters.contains(name) && !name.ends_with("_total") {
                    text.push_str("_total");
                }
                text.push(' ');
                text.push_str(tail);
            }
            None => text.push_str(line),
        }
        text.push('\n');
    }
    text
}

fn hop(upstream: &'static str) -> HopLabels {
    HopLabels { upstream }
}

fn on(upstream: &'static str, replica: &Arc<str>) -> ReplicaLabels {
    ReplicaLabels {
        upstream,
        replica: replica.clone(),
    }
}

/// Middleware (mounted with `route_layer`, so the route template is known).
pub async fn track(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let route = Route(request.extensions().get::<MatchedPath>().cloned());
    let method = method_label(request.method());
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The family a sample line belongs to in the text format: its name, less a histogram's
    /// `_bucket`/`_sum`/`_count` when the family is a histogram.
    fn family_of<'a>(sample: &'a str, histograms: &HashSet<&str>) -> &'a str {
        let name = sample.split(['{', ' ']).next().unwrap_or(sample);
        ["_bucket", "_sum", "_count"]
            .into_iter()
            .filter_map(|suffix| name.strip_suffix(suffix))
            .find(|base| histograms.contains(base))
            .unwrap_or(name)
    }

    fn value_of<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines()
            .find_map(|line| line.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no sample {prefix}... in:\n{text}"))
            .trim()
    }

    fn busy_metrics() -> Metrics {
        let metrics = Metrics::new();
        metrics.watch_pools(|| {
            vec![
                PoolSample {
                    pool: "reader",
                    open: 3,
                    idle: 2,
                    max: 8,
                },
                PoolSample {
                    pool: "writer",
                    open: 1,
                    idle: 0,
                    max: 1,
                },
            ]
        });
        metrics
            .requests
            .get_or_create(&RequestLabels {
                method: "GET".into(),
                route: Route(None),
                status: 200,
            })
            .inc();
        metrics
            .latency
            .get_or_create(&RouteLabels {
                method: "GET".into(),
                route: Route(None),
            })
            .observe(0.002);
        let hops = metrics.hops();
        hops.call("catalog", "ok", 0.001);
        hops.retry("catalog");
        hops.retry_denied("catalog");
        let replica = Arc::from("127.0.0.1:4101");
        hops.breaker_state("catalog", &replica, BreakerState::Open);
        hops.attempt("catalog", &replica);
        metrics
    }

    #[test]
    fn every_sample_in_the_text_format_has_help_and_type_lines_for_its_family_before_it() {
        let text = busy_metrics().encode();
        let histograms: HashSet<&str> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .filter_map(|rest| rest.strip_suffix(" histogram"))
            .collect();
        let mut described: HashSet<(&str, &str)> = HashSet::new();
        let mut samples = 0;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# ") {
                let mut words = rest.splitn(3, ' ');
                let (kind, name) = (words.next().unwrap(), words.next().unwrap());
                assert!(
                    kind == "HELP" || kind == "TYPE",
                    "only HELP and TYPE comments: {line}"
                );
                assert!(
                    words.next().is_some_and(|tail| !tail.trim().is_empty()),
                    "{kind} of {name} is empty"
                );
                described.insert((kind, name));
                continue;
            }
            let family = family_of(line, &histograms);
            for kind in ["HELP", "TYPE"] {
                assert!(
                    described.contains(&(kind, family)),
                    "{line:?} has no {kind} line for {family} before it in:\n{text}"
                );
            }
            samples += 1;
        }
        assert!(samples >= 10, "the registry was encoded:\n{text}");
        assert!(text.contains("# TYPE http_requests_total counter\n"));
        assert!(
            !text.contains("# EOF"),
            "OpenMetrics' end marker is not text format"
        );
    }

    #[test]
    fn build_info_is_one_series_set_to_one_with_version_build_and_pid() {
        let text = Metrics::new().encode();
        let line = text
            .lines()
            .find(|line| line.starts_with("shoplab_build_info{"))
            .unwrap_or_else(|| panic!("no build info in:\n{text}"));
        assert!(line.ends_with("} 1"), "{line}");
        assert!(line.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))));
        assert!(line.contains("build=\"debug\"") || line.contains("build=\"release\""));
        assert!(line.contains(&format!("pid=\"{}\"", std::process::id())));
        assert!(text.contains("# TYPE shoplab_build_info gauge\n"));
    }

    #[test]
    fn pool_gauges_read_the_pools_at_every_scrape_and_in_use_is_open_less_idle() {
        let in_use = Arc::new(std::sync::atomic::AtomicU32::new(1));
        let metrics = Metrics::new();
        let probe_in_use = in_use.clone();
        metrics.watch_pools(move || {
            let in_use = probe_in_use.load(std::sync::atomic::Ordering::SeqCst);
            vec![PoolSample {
                pool: "writer",
                open: 1,
                idle: 1 - in_use,
                max: 1,
            }]
        });
        let text = metrics.encode();
        assert_eq!(value_of(&text, "db_pool_connections{pool=\"writer\"}"), "1");
        assert_eq!(
            value_of(&text, "db_pool_connections_idle{pool=\"writer\"}"),
            "0"
        );
        assert_eq!(
            value_of(&text, "db_pool_connections_in_use{pool=\"writer\"}"),
            "1"
        );
        assert_eq!(
            value_of(&text, "db_pool_max_connections{pool=\"writer\"}"),
            "1"
        );
        in_use.store(0, std::sync::atomic::Ordering::SeqCst);
        let text = metrics.encode();
        assert_eq!(
            value_of(&text, "db_pool_connections_in_use{pool=\"writer\"}"),
            "0"
        );
        assert_eq!(
            value_of(&text, "db_pool_connections_idle{pool=\"writer\"}"),
            "1"
        );
    }

    #[test]
    fn openmetrics_counters_get_their_total_suffix_on_help_and_type_and_the_rest_is_kept() {
        let openmetrics = "# HELP jobs Jobs done.\n# TYPE jobs counter\njobs_total{kind=\"a\"} 2\n\
                           # HELP depth Queue depth.\n# TYPE depth gauge\n# UNIT depth items\ndepth 4\n# EOF\n";
        assert_eq!(
            openmetrics_to_text(openmetrics),
            "# HELP jobs_total Jobs done.\n# TYPE jobs_total counter\njobs_total{kind=\"a\"} 2\n\
             # HELP depth Queue depth.\n# TYPE depth gauge\ndepth 4\n"
        );
    }

    #[test]
    fn the_openmetrics_encoding_is_still_available_with_its_end_marker() {
        let openmetrics = busy_metrics().encode_openmetrics();
        assert!(openmetrics.ends_with("# EOF\n"));
        assert!(openmetrics.contains("# TYPE http_requests counter\n"));
    }

    #[test]
    fn a_replica_that_leaves_loses_its_attempt_and_breaker_series_and_the_others_keep_theirs() {
        let metrics = busy_metrics();
        let hops = metrics.hops();
        let replica = Arc::from("127.0.0.1:4102");
        hops.attempt("catalog", &replica);
        hops.attempt("catalog", &replica);
        let text = metrics.encode();
        assert_eq!(
            value_of(
                &text,
                "hop_attempts_total{upstream=\"catalog\",replica=\"127.0.0.1:4102\"}"
            ),
            "2"
        );
        hops.forget_replica("catalog", "127.0.0.1:4101");
        let text = metrics.encode();
        assert!(!text.contains("127.0.0.1:4101"), "{text}");
        assert!(text.contains("replica=\"127.0.0.1:4102\""), "{text}");
    }

    #[tokio::test]
    async fn requests_are_counted_by_method_matched_template_and_status() {
        use tower::ServiceExt;
        let metrics = Metrics::new();
        let router = axum::Router::new()
            .route("/things/{id}", axum::routing::get(|| async { "thing" }))
            .route_layer(axum::middleware::from_fn_with_state(metrics.clone(), track));
        for path in ["/things/1", "/things/2"] {
            let request = axum::http::Request::get(path)
                .body(axum::body::Body::empty())
                .unwrap();
            let response = router.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), 200);
        }
        let request = axum::http::Request::builder()
            .method("PURGE")
            .uri("/things/3")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(router.oneshot(request).await.unwrap().status(), 405);
        let text = metrics.encode();
        assert_eq!(
            value_of(
                &text,
                "http_requests_total{method=\"GET\",route=\"/things/{id}\",status=\"200\"}"
            ),
            "2",
            "{text}"
        );
        assert!(
            text.contains("method=\"PURGE\",route=\"/things/{id}\",status=\"405\""),
            "{text}"
        );
    }
}
