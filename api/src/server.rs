//! Runs a router on a bound listener until a shutdown future resolves, then drains
//! in-flight requests for at most a deadline.

use std::future::{Future, IntoFuture};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use crate::error::{method_not_allowed, route_not_found};
use crate::metrics::{self, Metrics};

/// The common layers every shop process wears: metrics by route template, JSON answers
/// for unknown routes and wrong methods, request tracing, the body limit.
pub fn finish(router: Router, metrics: &Metrics, body_limit_bytes: usize) -> Router {
    router
        .route_layer(axum::middleware::from_fn_with_state(
            metrics.clone(),
            metrics::track,
        ))
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(body_limit_bytes))
        .layer(tower_http::trace::TraceLayer::new_for_http())
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
