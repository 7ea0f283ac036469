//! Runs a router on a bound listener until a shutdown future resolves, then drains
//! in-flight requests for at most a deadline.

use std::future::{Future, IntoFuture};
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
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(request_span))
        .layer(axum::middleware::from_fn(traceparent::layer))
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
