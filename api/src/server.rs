//! Runs a router on a bound listener until a shutdown future resolves, then drains
//! in-flight requests for at most a deadline; and [`Stopping`], what `/ready` says between
//! the stop signal and the listener's close.

use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use crate::error::{method_not_allowed, route_not_found};
use crate::metrics::{self, Metrics};
use crate::traceparent::{self, TraceContext};

/// The common layers every shop process wears: metrics by route template, JSON answers
/// for unknown routes and wrong methods, request tracing, the body limit.
///
/// Tracing: the outermost layer reads the caller's `traceparent` (or starts a trace) and
/// keeps it for the request's task, so every hop out continues the trace
/// ([`crate::traceparent`]); the request span records its `trace_id`, so every log line of
/// the request carries it.
pub fn finish(router: Router, metrics: &Metrics, body_limit_bytes: usize) -> Router {
    router
        .route_layer(axum::middleware::from_fn_with_state(
            metrics.clone(),
            metrics::track,
        ))
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(body_limit_bytes))
        .layer(axum::middleware::from_fn_with_state(
            body_limit_bytes,
            refuse_oversized,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(request_span))
        .layer(axum::middleware::from_fn(traceparent::layer))
}

/// The most of a declared-oversized body read and thrown away before its 413, and for how
/// long at most (see [`refuse_oversized`]).
const LINGER_BYTES: u64 = 16 << 20;
const LINGER_TIME: Duration = Duration::from_secs(5);

/// A body whose `Content-Length` is over the limit gets its 413 without a handler running.
/// The body is first read and thrown away (up to [`LINGER_BYTES`], for at most
/// [`LINGER_TIME`]) — nginx's lingering close: a client that sends its body without waiting
/// for `100 Continue` is still writing when the answer is ready, and a server that closes
/// then resets the connection, so the client sees a reset instead of the 413. The answer
/// closes the connection. Bodies without a declared length meet the limit in the extractor.
async fn refuse_oversized(
    axum::extract::State(limit): axum::extract::State<usize>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::header::{CONNECTION, CONTENT_LENGTH};
    use axum::response::IntoResponse as _;
    use futures::StreamExt as _;

    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let Some(length) = declared.filter(|length| *length > limit as u64) else {
        return next.run(request).await;
    };
    if length <= LINGER_BYTES {
        let mut body = request.into_body().into_data_stream();
        let drained = async { while let Some(Ok(_)) = body.next().await {} };
        let _ = tokio::time::timeout(LINGER_TIME, drained).await;
    }
    let mut response = crate::ApiError(domain::DomainError::PayloadTooLarge(format!(
        "request body of {length} bytes is over the limit of {limit}"
    )))
    .into_response();
    response
        .headers_mut()
        .insert(CONNECTION, axum::http::HeaderValue::from_static("close"));
    response
}

/// The span every log line of a request is written in. At `info` (tower-http's default is
/// `debug`, which the default filter drops, and with it the `trace_id` of every line).
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let trace_id = request
        .extensions()
        .get::<TraceContext>()
        .map(TraceContext::trace_id_hex)
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        trace_id = %trace_id,
    )
}

/// Set once the process was told to stop; from then on its `/ready` answers 503 while it
/// keeps serving for the settings' `shutdown_delay_ms`, and only then stops accepting.
///
/// A process that stops accepting the moment it hears SIGTERM races whatever balances over
/// it: a balancer that learns of the stop from health checks (a load balancer in front of a
/// swarm's nodes, callers re-resolving `tasks.<service>` every second) still sends it
/// requests, and one sent on a kept-alive connection the server is closing fails with no
/// answer — it may have run, so it cannot be retried. Failing readiness first and closing
/// later is the preStop pattern of Kubernetes: the balancers move away while every request
/// still gets an answer. Where the lab moves the traffic itself before the stop (its own
/// supervisor, compose) the delay is 0 and the process stops at once.
#[derive(Clone, Debug, Default)]
pub struct Stopping(Arc<AtomicBool>);

impl Stopping {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// The shutdown future to give [`serve`]: waits for `signal`, marks the process as
    /// stopping (`/ready` answers 503), keeps serving for `delay`, then resolves.
    pub fn after(
        &self,
        signal: impl Future<Output = ()> + Send + 'static,
        delay: Duration,
    ) -> impl Future<Output = ()> + Send + 'static {
        let flag = self.0.clone();
        async move {
            signal.await;
            flag.store(true, Ordering::Relaxed);
            if !delay.is_zero() {
                tracing::info!(
                    delay_ms = delay.as_millis() as u64,
                    "stopping: not ready from now on, serving until the delay is over"
                );
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Serves until `shutdown` resolves; then stops accepting, gives in-flight requests `drain`
/// to finish, and returns (cutting the stragglers off) when the deadline passes.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> anyhow::Result<()> {
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let graceful = async move {
        shutdown.await;
        let _ = stopping_tx.send(());
    };
    let mut server = tokio::spawn(
        axum::serve(listener, router)
            .with_graceful_shutdown(graceful)
            .into_future(),
    );
    tokio::select! {
        finished = &mut server => return Ok(finished??),
        _ = stopping_rx => {}
    }
    match tokio::time::timeout(drain, &mut server).await {
        Ok(finished) => Ok(finished??),
        Err(_) => {
            tracing::warn!(
                drain_ms = drain.as_millis() as u64,
                "drain deadline passed; closing remaining connections"
            );
            server.abort();
            Ok(())
        }
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("interrupt received, shutting down"),
        _ = terminate => tracing::info!("terminate received, shutting down"),
    }
}
