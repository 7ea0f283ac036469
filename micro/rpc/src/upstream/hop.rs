//! One attempt on one replica: the request as it travels down the stack, what came back, and
//! which outcomes mean "this replica is not answering" — the one rule the circuit breaker
//! and the retry policy share.

use std::sync::Arc;
use std::task::{Context, Poll};

use api::error::ErrorBody;
use api::traceparent::{TRACEPARENT, TraceContext};
use axum::body::Bytes;
use futures::future::BoxFuture;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};

use super::Idempotency;

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
    /// This replica's breaker refused the call (it turned open or used its half-open probe
    /// between being picked and being called).
    #[error("refused the call: its circuit breaker is open")]
    ReplicaOpen,
    /// No replica is closed and none is ready: the call fails fast without a hop.
    #[error("is failing fast: the circuit breaker of every replica is open")]
    AllOpen,
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
    match result {
        Err(_) => true,
        Ok(answer) => {
            answer.status == StatusCode::SERVICE_UNAVAILABLE
                || (answer.status.is_server_error() && answer.error_body().is_none())
        }
    }
}

/// One replica of a context as a `tower::Service`: sends one attempt and returns whatever
/// status came back. The time limits are reqwest's (connect, and connect to last byte).
#[derive(Clone)]
pub(crate) struct Replica {
    base_url: Arc<str>,
    http: reqwest::Client,
}

impl Replica {
    pub(crate) fn new(base_url: &str, http: reqwest::Client) -> Replica {
        Replica {
            base_url: Arc::from(base_url.trim_end_matches('/')),
            http,
        }
    }
}

impl tower::Service<HopRequest> for Replica {
    type Response = Answer;
    type Error = HopError;
    type Future = BoxFuture<'static, Result<Answer, HopError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), HopError>> {
        // reqwest keeps its own pool; whether the replica is worth calling is the breaker's
        // call, one layer up.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: HopRequest) -> Self::Future {
        let url = format!("{}{}", self.base_url, request.path);
        let mut builder = self
            .http
            .request(request.method, url)
            .header(TRACEPARENT, request.trace.child().header());
        if let Some(body) = request.body {
            builder = builder.header(CONTENT_TYPE, "application/json").body(body);
        }
        Box::pin(async move {
            let response = builder.send().await.map_err(hop_error)?;
            let status = response.status();
            let body = response.bytes().await.map_err(hop_error)?;
            Ok(Answer { status, body })
        })
    }
}

fn hop_error(error: reqwest::Error) -> HopError {
    if error.is_timeout() {
        HopError::TimedOut
    } else {
        HopError::NoAnswer
    }
}
