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
use futures::future::BoxFuture;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};

use super::Idempotency;
use super::breaker::Outcome;
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

/// One replica of a context: sends one attempt and returns whatever status came back.
#[derive(Clone)]
pub(crate) struct Replica {
    base_url: Arc<str>,
    http: reqwest::Client,
    /// The hop's own limit for one attempt, connect to last byte.
    timeout: Duration,
}

impl Replica {
    pub(crate) fn new(base_url: &str, http: reqwest::Client, timeout: Duration) -> Replica {
        Replica {
            base_url: Arc::from(base_url.trim_end_matches('/')),
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
        let url = format!("{}{}", self.base_url, request.path);
        let mut builder = self
            .http
            .request(request.method, url)
            .timeout(limit)
            .header(TRACEPARENT, request.trace.child().header_value())
            // Whole milliseconds, rounded up: a budget of 0.4 ms is not an expired one.
            .header(
                DEADLINE_HEADER,
                limit.as_micros().div_ceil(1000).to_string(),
            );
        if let Some(token) = request.service_token.as_deref() {
            builder = builder.header(SERVICE_TOKEN_HEADER, token);
        }
        if let Some(body) = request.body {
            builder = builder.header(CONTENT_TYPE, "application/json").body(body);
        }
        Box::pin(async move {
            let hop_error = |error: reqwest::Error| match error.is_timeout() {
                true if cut_by_caller => HopError::DeadlineExceeded,
                true => HopError::TimedOut,
                false => HopError::NoAnswer,
            };
            let response = builder.send().await.map_err(hop_error)?;
            let status = response.status();
            let body = response.bytes().await.map_err(hop_error)?;
            Ok(Answer { status, body })
        })
    }
}
