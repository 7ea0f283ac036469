//! One remote context as the caller sees it, as a stack of tower layers:
//!
//! ```text
//! Upstream::call      serialize, service token, trace context, deadline, metrics,
//!                     answer -> DomainResult
//!   Retry             idempotent calls only, jittered backoff, bounded by a retry budget
//!                     and by the caller's deadline (retry.rs)
//!     Balanced        p2c over the replicas a breaker lets through; when none does, panic
//!                     mode sends a share of calls anyway and fails the rest fast (balance.rs)
//!       Breaker       one per replica: failure rate over a window, or no answers in a row
//!                     (breaker.rs)
//!         Replica     one HTTP attempt: min(hop timeout, caller's time left), sent on as
//!                     the deadline header (hop.rs)
//! ```
//!
//! Errors survive the hop: an answer with the shop's error body maps back to the same
//! `DomainError`; a hop that fails to answer (refused, reset, timed out, breaker open) is
//! `Unavailable`, so the callers' fallbacks (empty recommendations, unknown availability,
//! 503 checkout) work the same whichever way the context is gone.

mod balance;
mod breaker;
mod hop;
mod retry;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use api::metrics::HopMetrics;
use api::traceparent::{self, TraceContext};
use axum::http::Method;
use domain::trust::{Identity, Peer};
use domain::{Context, DomainError, DomainResult};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower::ServiceExt;
use tower::retry::Retry;

use crate::{Directory, deadline};
use balance::Balanced;
use hop::{Answer, HopError, HopRequest, HttpClient};
use retry::HopPolicy;

/// Settings of every hop; recorded with results because they decide how a fault spreads.
/// Defaults and the reasons for them: `micro/README.md`, "Resilience settings" (the
/// defaults live in `api::Settings`, mapped here by `micro_kit::upstream_settings`).
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct UpstreamSettings {
    /// One attempt, connect to last byte, unless the caller's deadline is nearer.
    pub timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// Extra attempts for idempotent calls, each paid for from the retry budget.
    pub retries: u32,
    /// The wait before the first retry; each further one doubles it, plus jitter.
    pub retry_backoff_ms: u64,
    /// The longest wait between two attempts, jitter included.
    pub retry_backoff_max_ms: u64,
    /// How long the retry budget remembers calls and retries (clamped to 1..=60 s).
    pub retry_budget_ttl_ms: u64,
    /// Retries per second allowed however few calls were made.
    pub retry_budget_min_per_sec: u32,
    /// Retries allowed per call made, on top of the minimum. tower spends `1 / ratio` of a
    /// call's deposit per retry, rounded down, so a ratio whose inverse is a whole number
    /// (0.125, 0.2, 0.25) is applied exactly; 0.15 would act as 1/6.
    pub retry_budget_ratio: f32,
    /// The sliding window a replica's failure rate is measured over.
    pub breaker_window_ms: u64,
    /// Calls the window must hold before its failure rate is judged.
    pub breaker_min_calls: u32,
    /// Share of failed calls in the window (0..=1) that opens a replica's breaker.
    pub breaker_failure_rate: f32,
    /// Attempts in a row that got no answer at all (refused, reset, timed out) that open a
    /// replica's breaker whatever the window says.
    pub breaker_no_answer_failures: u32,
    /// How long an open breaker waits before letting one probe call through.
    pub breaker_open_ms: u64,
    /// With every replica's breaker open, the share of calls (in percent) sent anyway.
    pub breaker_panic_percent: u32,
}

impl Default for UpstreamSettings {
    /// The same values as `api::Settings::default()`'s `hop_*` fields.
    fn default() -> UpstreamSettings {
        UpstreamSettings {
            timeout_ms: 2_000,
            connect_timeout_ms: 250,
            retries: 2,
            retry_backoff_ms: 5,
            retry_backoff_max_ms: 100,
            retry_budget_ttl_ms: 1_000,
            retry_budget_min_per_sec: 1,
            retry_budget_ratio: 0.125,
            breaker_window_ms: 5_000,
            breaker_min_calls: 50,
            breaker_failure_rate: 0.8,
            breaker_no_answer_failures: 5,
            breaker_open_ms: 1_000,
            breaker_panic_percent: 10,
        }
    }
}

/// A client of one context. Cheap to clone; clones share the balancer, the breakers and the
/// retry budget.
#[derive(Clone)]
pub struct Upstream {
    context: Context,
    /// Where the replicas are; a change rebuilds the balancer (see `crate::directory`).
    directory: Directory,
    pool: Arc<RwLock<Pool>>,
    /// Shared by the replicas; `probe` asks each directly with it, breakers or not.
    http: HttpClient,
    settings: UpstreamSettings,
    /// One retry budget across replica changes.
    policy: HopPolicy,
    metrics: HopMetrics,
    /// Who this process is: every call carries a service token it signs for the callee
    /// (`crate::trust`). `None` sends none, which every shop service refuses; only tests of
    /// the hop itself, against servers of their own, go without.
    identity: Option<Arc<Identity>>,
}

/// The replicas of one directory version, balanced.
struct Pool {
    version: u64,
    replicas: Arc<Vec<String>>,
    service: Retry<HopPolicy, Balanced>,
}

/// Whether a call may be repeated without changing the outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotency {
    Idempotent,
    NotIdempotent,
}

impl Upstream {
    /// `replicas` are base URLs such as `http://127.0.0.1:4101`. Its hop metrics go nowhere;
    /// a server's clients use [`Upstream::with_metrics`].
    pub fn new(context: Context, replicas: Vec<String>, settings: UpstreamSettings) -> Upstream {
        Upstream::with_metrics(context, replicas, settings, &HopMetrics::default())
    }

    /// As [`Upstream::new`], reporting calls, retries, latency and breaker states into
    /// `metrics` (the calling process's registry, `api::metrics::Metrics::hops`).
    pub fn with_metrics(
        context: Context,
        replicas: Vec<String>,
        settings: UpstreamSettings,
        metrics: &HopMetrics,
    ) -> Upstream {
        let mut upstreams = std::collections::BTreeMap::new();
        upstreams.insert(context.to_string(), replicas);
        Upstream::from_directory(context, &Directory::new(&upstreams), settings, metrics)
    }

    /// A client whose replicas follow `directory` (shared by the process's clients and its
    /// `PUT /admin/upstreams` route).
    pub fn from_directory(
        context: Context,
        directory: &Directory,
        settings: UpstreamSettings,
        metrics: &HopMetrics,
    ) -> Upstream {
        let http = hop::http_client(&settings);
        let policy = HopPolicy::new(context, &settings, metrics);
        let version = directory.version();
        let replicas = directory.replicas(context);
        let balanced = Balanced::new(context, &replicas, &http, &settings, metrics, directory);
        let pool = Pool {
            version,
            replicas: Arc::new(replicas),
            service: Retry::new(policy.clone(), balanced),
        };
        Upstream {
            context,
            directory: directory.clone(),
            pool: Arc::new(RwLock::new(pool)),
            http,
            settings,
            policy,
            metrics: metrics.clone(),
            identity: None,
        }
    }

    /// This client, proving `identity` on every call with a service token for its context.
    pub fn signed_by(mut self, identity: Arc<Identity>) -> Upstream {
        self.identity = Some(identity);
        self
    }

    /// The pool of the directory's current version. A change of the version rebuilds it only
    /// when this context's list changed: a change to another context (or the same list
    /// found again) keeps the breakers and the calls-in-flight counts they learned.
    fn current(&self) -> (Arc<Vec<String>>, Retry<HopPolicy, Balanced>) {
        let version = self.directory.version();
        {
            let pool = self
                .pool
                .read()
                .unwrap_or_else(|poison| poison.into_inner());
            if pool.version == version {
                return (pool.replicas.clone(), pool.service.clone());
            }
        }
        let mut pool = self
            .pool
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        if pool.version != version {
            // The version before the list: a change in between makes the next call look
            // again rather than keep a stale list under a new version.
            let version = self.directory.version();
            let replicas = self.directory.replicas(self.context);
            if *pool.replicas == replicas {
                pool.version = version;
            } else {
                for gone in pool.replicas.iter().filter(|old| !replicas.contains(old)) {
                    self.metrics
                        .forget_replica(self.context.as_str(), balance::replica_name(gone));
                }
                *pool = self.build(version, replicas);
            }
        }
        (pool.replicas.clone(), pool.service.clone())
    }

    fn build(&self, version: u64, replicas: Vec<String>) -> Pool {
        let balanced = Balanced::new(
            self.context,
            &replicas,
            &self.http,
            &self.settings,
            &self.metrics,
            &self.directory,
        );
        Pool {
            version,
            replicas: Arc::new(replicas),
            service: Retry::new(self.policy.clone(), balanced),
        }
    }

    pub fn context(&self) -> Context {
        self.context
    }

    /// Sends one call and decodes the answer. Idempotent calls whose hop fails are tried
    /// again (see `retry.rs`); the others never are. Inside a request that carries a
    /// deadline (`crate::deadline`), no attempt outlives it, and a call made after it passed
    /// fails at once without a hop.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + Sync)>,
        idempotency: Idempotency,
    ) -> DomainResult<T> {
        let started = Instant::now();
        let result = self.send(method, path, body, idempotency).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(error) => error.code(),
        };
        self.metrics.call(
            self.context.as_str(),
            outcome,
            started.elapsed().as_secs_f64(),
        );
        result
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + Sync)>,
        idempotency: Idempotency,
    ) -> DomainResult<T> {
        let (replicas, service) = self.current();
        if replicas.is_empty() {
            return Err(DomainError::Unavailable(format!(
                "{} has no replicas",
                self.context
            )));
        }
        let deadline = deadline::current();
        if deadline.is_some_and(|deadline| deadline <= Instant::now()) {
            return Err(DomainError::Unavailable(format!(
                "{} was not called: the caller's deadline passed",
                self.context
            )));
        }
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|error| DomainError::Internal(format!("a request body: {error}")))?;
        // Cached by the identity and renewed when half its life is gone: one signature per
        // callee per half-minute, not one per call.
        let service_token = self
            .identity
            .as_ref()
            .map(|identity| identity.token_for(Peer::Service(self.context)))
            .transpose()?
            .map(Arc::from);
        let request = HopRequest {
            method,
            path: Arc::from(path),
            body: body.map(Into::into),
            idempotency,
            // Inside a request this continues its trace; elsewhere (a background loop) the
            // call starts a trace of its own.
            trace: traceparent::current().unwrap_or_else(TraceContext::start),
            deadline,
            service_token,
        };
        self.policy.deposit();
        match service.oneshot(request).await {
            Ok(answer) => self.decode(answer),
            Err(error) => Err(self.unavailable(&error)),
        }
    }

    fn decode<T: DeserializeOwned>(&self, answer: Answer) -> DomainResult<T> {
        let status = answer.status;
        if status.is_success() {
            return serde_json::from_slice(&answer.body).map_err(|error| {
                DomainError::Internal(format!(
                    "{} answered a body that does not parse: {error}",
                    self.context
                ))
            });
        }
        Err(match answer.error_body() {
            Some(body) => body.into_error(status),
            // No shop error body: something between us and the service answered.
            None if status.is_server_error() => {
                DomainError::Unavailable(format!("{} answered {status}", self.context))
            }
            None => DomainError::Internal(format!(
                "{} answered {status} without an error body",
                self.context
            )),
        })
    }

    fn unavailable(&self, error: &HopError) -> DomainError {
        DomainError::Unavailable(format!("{} {error}", self.context))
    }
}

impl Upstream {
    /// Whether at least one replica answers `GET /health`. Asked directly, past the
    /// breakers: readiness wants to know whether the process is there now.
    pub async fn probe(&self) -> DomainResult<()> {
        let (replicas, _) = self.current();
        let timeout = Duration::from_millis(self.settings.timeout_ms);
        for replica in replicas.iter() {
            let Ok(uri) = format!("{replica}/health").parse::<axum::http::Uri>() else {
                continue;
            };
            let answer = tokio::time::timeout(timeout, self.http.get(uri)).await;
            if answer
                .is_ok_and(|answer| answer.is_ok_and(|response| response.status().is_success()))
            {
                return Ok(());
            }
        }
        Err(DomainError::Unavailable(format!(
            "{} is not answering",
            self.context
        )))
    }
}
