//! One attempt on one replica: the request as it travels down the stack, what came back, and
//! which outcomes mean "this replica is not serving" — the one rule the circuit breaker and
//! the retry policy share.
//!
//! An attempt's time limit is the hop's own timeout or what is left of the caller's
//! deadline, whichever is shorter, and that limit travels with it as the deadline header, so
//! the replica's own hops stop when this attempt stops waiting (see `crate::deadline`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use api::error::ErrorBody;
use api::traceparent::{TRACEPARENT, TraceContext};
use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::http::uri::{Authority, PathAndQuery, Scheme};
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::breaker::Outcome;
use super::{Idempotency, UpstreamSettings};
use crate::deadline::DEADLINE_HEADER;
use crate::trust::SERVICE_TOKEN_HEADER;

/// One call as every layer sees it; cloned for a retry (the body is shared, not copied).
#[derive(Clone)]
pub(crate) struct HopRequest {
    pub(crate) method: Method,
    pub(crate) path: Arc<str>,
    /// Already-serialized JSON.
    pub(crate) body: Option<Bytes>,
    pub(crate) idempotency: Idempotency,
    /// The trace this call belongs to; every attempt is a new child span of it.
    pub(crate) trace: TraceContext,
    /// When the caller stops waiting: no attempt runs past it, and no retry starts that
    /// could not finish before it.
    pub(crate) deadline: Option<Instant>,
    /// This process's token for the callee (`crate::trust`), the same on every attempt.
    pub(crate) service_token: Option<Arc<str>>,
}

/// Whatever status a replica answered, with its body.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
}

/// An attempt that got no answer to map: the hop itself failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HopError {
    #[error("timed out")]
    TimedOut,
    #[error("did not answer")]
    NoAnswer,
    /// No replica is closed and none is ready: the call fails fast without a hop.
    #[error("is failing fast: the circuit breaker of every replica is open")]
    AllOpen,
    /// The caller's deadline passed before or during the attempt: not the replica's doing.
    #[error("was not waited for: the caller's deadline passed")]
    DeadlineExceeded,
}

impl Answer {
    /// The shop's error body, when the answer carries one.
    pub(crate) fn error_body(&self) -> Option<ErrorBody> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Whether an outcome says the replica is not serving: no answer, a timeout, a 503, or a 5xx
/// that is not the shop's own error body (something between us and the service answered).
/// A 404, a 409 or a 422 is the service answering correctly, and a 500 with the shop's body
/// is a bug to see, not a reason to stop calling.
pub(crate) fn is_unavailable(result: &Result<Answer, HopError>) -> bool {
    matches!(outcome(result), Outcome::Unavailable | Outcome::NoAnswer)
}

/// How the breaker counts an attempt's result.
pub(crate) fn outcome(result: &Result<Answer, HopError>) -> Outcome {
    match result {
        Err(HopError::DeadlineExceeded) => Outcome::Ignored,
        Err(HopError::AllOpen) => Outcome::Unavailable,
        Err(HopError::TimedOut | HopError::NoAnswer) => Outcome::NoAnswer,
        Ok(answer)
            if answer.status == StatusCode::SERVICE_UNAVAILABLE
                || (answer.status.is_server_error() && answer.error_body().is_none()) =>
        {
            Outcome::Unavailable
        }
        Ok(_) => Outcome::Answered,
    }
}

/// The HTTP/1 client every replica of one upstream shares (one connection pool).
///
/// hyper-util's client rather than reqwest, which this crate used until the hop was counted
/// (`bench/hop-instructions.sh`): reqwest parses every URL with the WHATWG parser, runs a
/// redirect policy and builds its own request type around hyper's, about 15,000 instructions
/// per call of which a hop between our own services needs none. Here the replica's address is
/// parsed once and each call only joins it to a path.
pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub(crate) fn http_client(settings: &UpstreamSettings) -> HttpClient {
    let mut connector = HttpConnector::new();
    // Nagle's algorithm would hold a small request back until the last one's ACK.
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_millis(settings.connect_timeout_ms)));
    Client::builder(TokioExecutor::new())
        // Under the services' idle timeout, so a pooled connection is never reused as the
        // service closes it (`api::server::CLIENT_POOL_IDLE`); the timer evicts idle ones.
        .pool_idle_timeout(api::server::CLIENT_POOL_IDLE)
        .pool_timer(TokioTimer::new())
        .build(connector)
}

/// A replica's base URL, parsed once: `http://host:port` and an optional path prefix.
#[derive(Clone)]
struct Address {
    scheme: Scheme,
    authority: Authority,
    /// The base URL's path without its trailing slash; empty for most replicas.
    prefix: Arc<str>,
}

impl Address {
    fn parse(base_url: &str) -> Result<Address, String> {
        let uri: Uri = base_url
            .parse()
            .map_err(|error| format!("{base_url:?} is not a URL: {error}"))?;
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            return Err(format!("{base_url:?} needs a scheme and a host"));
        };
        if *scheme != Scheme::HTTP {
            return Err(format!("{base_url:?}: the services speak plain http"));
        }
        Ok(Address {
            scheme: scheme.clone(),
            authority: authority.clone(),
            prefix: Arc::from(uri.path().trim_end_matches('/')),
        })
    }

    fn uri(&self, path: &str) -> Result<Uri, String> {
        let path_and_query = if self.prefix.is_empty() {
            PathAndQuery::try_from(path)
        } else {
            PathAndQuery::try_from(format!("{}{path}", self.prefix))
        }
        .map_err(|error| format!("{path:?} is not a path: {error}"))?;
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .map_err(|error| error.to_string())
    }
}

/// One replica of a context: sends one attempt and returns whatever status came back.
#[derive(Clone)]
pub(crate) struct Replica {
    /// Why the base URL could not be used, if it could not: every attempt then gets no
    /// answer, as a replica that is not there, and says why in the log.
    address: Result<Address, Arc<str>>,
    http: HttpClient,
    /// The hop's own limit for one attempt, connect to last byte.
    timeout: Duration,
}

impl Replica {
    pub(crate) fn new(base_url: &str, http: HttpClient, timeout: Duration) -> Replica {
        Replica {
            address: Address::parse(base_url).map_err(Arc::from),
            http,
            timeout,
        }
    }

    pub(crate) fn send(&self, request: HopRequest) -> BoxFuture<'static, Result<Answer, HopError>> {
        // The caller's deadline cuts the attempt short when it is nearer than the hop's own
        // timeout; a timeout then is the caller's doing, not the replica's.
        let (limit, cut_by_caller) = match request.deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                (left.min(self.timeout), left < self.timeout)
            }
            None => (self.timeout, false),
        };
        if limit.is_zero() {
            return Box::pin(std::future::ready(Err(HopError::DeadlineExceeded)));
        }
        let built = self
            .address
            .as_ref()
            .map_err(|why| why.to_string())
            .and_then(|address| address.uri(&request.path))
            .and_then(|uri| build(request, uri, limit));
        let request = match built {
            Ok(request) => request,
            Err(why) => {
                tracing::error!(%why, "an upstream call could not be built");
                return Box::pin(std::future::ready(Err(HopError::NoAnswer)));
            }
        };
        let http = self.http.clone();
        Box::pin(async move {
            let attempt = async {
                let response = http
                    .request(request)
                    .await
                    .map_err(|_| HopError::NoAnswer)?;
                let status = response.status();
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map_err(|_| HopError::NoAnswer)?
                    .to_bytes();
                Ok(Answer { status, body })
            };
            match tokio::time::timeout(limit, attempt).await {
                Ok(answered) => answered,
                Err(_) if cut_by_caller => Err(HopError::DeadlineExceeded),
                Err(_) => Err(HopError::TimedOut),
            }
        })
    }
}

/// The attempt as hyper sends it: the trace's child span, the time it may take (whole
/// milliseconds, rounded up: a budget of 0.4 ms is not an expired one), the service token.
fn build(
    request: HopRequest,
    uri: Uri,
    limit: Duration,
) -> Result<axum::http::Request<Full<Bytes>>, String> {
    let mut builder = axum::http::Request::builder()
        .method(request.method)
        .uri(uri)
        .header(TRACEPARENT, request.trace.child().header_value())
        .header(
            DEADLINE_HEADER,
            HeaderValue::from(u64::try_from(limit.as_micros().div_ceil(1000)).unwrap_or(u64::MAX)),
        );
    if let Some(token) = request.service_token.as_deref() {
        let token = HeaderValue::from_str(token).map_err(|error| error.to_string())?;
        builder = builder.header(SERVICE_TOKEN_HEADER, token);
    }
    let body = match request.body {
        Some(body) => {
            builder = builder.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Full::new(body)
        }
        None => Full::new(Bytes::new()),
    };
    builder.body(body).map_err(|error| error.to_string())
}
