//! Runs a router on a bound listener until a shutdown future resolves, then drains
//! in-flight requests for at most a deadline, holding every connection to the [`Limits`]
//! (a header-read timeout, an idle timeout, a response-write timeout, a cap); [`finish`], the layers every process's
//! router wears; and [`Stopping`], what `/ready` says between the stop signal and the
//! listener's close.
//!
//! Every server of the workspace runs through [`serve`]: the monolith, the gateway's two
//! ports, each service, and the lab's front door, fault-proxy control port and workshop.

mod connection;
mod listen;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use crate::error::{method_not_allowed, route_not_found};
use crate::metrics::{self, Metrics};
use crate::traceparent;

/// The common layers every shop process wears: metrics by route template, JSON answers
/// for unknown routes and wrong methods, request tracing, the body limit.
///
/// Tracing: the outermost layer ([`edge`]) reads the caller's `traceparent` (or starts a
/// trace) and keeps it for the request's task, so every hop out continues the trace
/// ([`crate::traceparent`]); the request span records its `trace_id`, so every log line of
/// the request carries it.
///
/// Only the metrics need the matched route, so only they are a route layer; the rest wraps
/// the routed router from outside, as one layer. A route layer wraps every route, and axum
/// clones a route's whole stack of boxed layers for each request at each layer (the cost
/// grows with the square of the depth); outside, a clone is of the router, one reference
/// count. As four route layers (trace context, tower-http's `TraceLayer`, the oversize check,
/// the body limit) they cost a hop about a fifth of its instructions (callgrind,
/// `bench/hop-instructions.sh`). The result is a router again, so callers merge, nest and
/// test it as before.
pub fn finish(router: Router, metrics: &Metrics, body_limit_bytes: usize) -> Router {
    let routed = router
        .route_layer(axum::middleware::from_fn_with_state(
            metrics.clone(),
            metrics::track,
        ))
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let wrapped = tower::ServiceBuilder::new()
        .layer(axum::middleware::from_fn_with_state(body_limit_bytes, edge))
        .layer(axum::extract::DefaultBodyLimit::max(body_limit_bytes))
        .service(routed);
    Router::new().fallback_service(wrapped)
}

/// The outermost layer of every shop server: the request's trace (received, kept for its
/// task, echoed on the answer), its span, the 413 for a declared-oversized body, and an error
/// line for every 5xx answer (what tower-http's `TraceLayer` logged, which this replaces:
/// the same span and failure line at a quarter of the layers).
async fn edge(
    axum::extract::State(body_limit_bytes): axum::extract::State<usize>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument as _;

    let context = traceparent::receive(&request);
    // The trace id is formatted only if a subscriber records the span.
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        trace_id = %context.trace_id(),
    );
    let started = std::time::Instant::now();
    let served = async move {
        let response = match declared_oversize(&request, body_limit_bytes) {
            Some(length) => refuse_oversized(request, length, body_limit_bytes).await,
            None => next.run(request).await,
        };
        if response.status().is_server_error() {
            tracing::error!(
                status = response.status().as_u16(),
                latency_ms = started.elapsed().as_millis() as u64,
                "answered with a server error"
            );
        }
        response
    };
    let mut response = traceparent::scope(context, served).instrument(span).await;
    traceparent::echo(&mut response, context);
    response
}

/// The most of a declared-oversized body read and thrown away before its 413, and for how
/// long at most (see [`refuse_oversized`]).
const LINGER_BYTES: u64 = 16 << 20;
const LINGER_TIME: Duration = Duration::from_secs(5);

/// The body length `request` declares, when it is over `limit`.
fn declared_oversize(request: &axum::extract::Request, limit: usize) -> Option<u64> {
    request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
        .filter(|length| *length > limit as u64)
}

/// A body whose `Content-Length` is over the limit gets its 413 without a handler running.
/// The body is first read and thrown away (up to [`LINGER_BYTES`], for at most
/// [`LINGER_TIME`]) — nginx's lingering close: a client that sends its body without waiting
/// for `100 Continue` is still writing when the answer is ready, and a server that closes
/// then resets the connection, so the client sees a reset instead of the 413. The answer
/// closes the connection. Bodies without a declared length meet the limit in the extractor.
async fn refuse_oversized(
    request: axum::extract::Request,
    length: u64,
    limit: usize,
) -> axum::response::Response {
    use axum::http::header::CONNECTION;
    use axum::response::IntoResponse as _;
    use futures::StreamExt as _;

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

/// How a server treats its connections, from the settings `header_read_timeout_ms`,
/// `idle_timeout_ms`, `response_write_timeout_ms`, `max_connections` and
/// `shutdown_drain_ms` (their defaults and reasons are there).
///
/// A connection must send its request head within `header_read_timeout`, counted from the
/// accept or from the first byte after the last answer; one that waits with nothing in
/// flight is closed after `idle_timeout`. A request in flight is never cut by either; but
/// once its answer is being written, a client that takes no byte of it for
/// `response_write_timeout` (it sent a request and does not read) has its connection closed.
///
/// At `max_connections` a new connection is accepted, answered `503` with `Retry-After: 1`
/// and closed at once, rather than left unaccepted until a slot frees (what nginx does at
/// its `worker_connections` and HAProxy at its `maxconn`). Unaccepted, it would wait in the
/// kernel's backlog with no answer, and a client would see a hung request until its own
/// timeout; the flood of idle sockets this cap is against would keep the slots full, so
/// the wait would be long. A quick 503 is an answer every client here already handles (a
/// hop counts it against the replica's breaker and retries an idempotent call, a load
/// generator counts an error), and it costs the server one `accept` and one write. Envoy's
/// listener connection limit also accepts and closes at once, without the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    /// The longest a write of an answer may wait for the client to take a byte.
    pub response_write_timeout: Duration,
    pub max_connections: usize,
    /// After the shutdown future resolves, how long connections in flight get to finish.
    pub drain: Duration,
}

impl Limits {
    pub fn of(settings: &crate::Settings) -> Limits {
        Limits {
            header_read_timeout: Duration::from_millis(settings.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(settings.idle_timeout_ms),
            response_write_timeout: Duration::from_millis(settings.response_write_timeout_ms),
            max_connections: settings.max_connections,
            drain: Duration::from_millis(settings.shutdown_drain_ms),
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::of(&crate::Settings::default())
    }
}

/// The longest any HTTP client of a shop server keeps an idle pooled connection: half the
/// servers' default `idle_timeout_ms`. A client that reuses a kept-alive connection just as
/// the server closes it sends a request that fails with no answer, and one that is not
/// idempotent (a checkout, a charge, a reset) cannot be sent again; a pool that lets go
/// first never meets that race.
pub const CLIENT_POOL_IDLE: Duration = Duration::from_secs(30);

/// Serves until `shutdown` resolves, under `limits`; then stops accepting, lets in-flight
/// requests finish (each connection closes after its answer, an idle one at once) for at
/// most `limits.drain`, and returns, cutting the stragglers off when the deadline passes.
///
/// HTTP/1.1 through hyper's server (every client of the shop speaks it; `axum::serve`, which
/// this replaces, has neither a header-read timeout nor a connection cap).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: Limits,
) -> anyhow::Result<()> {
    let max_connections = listen::cap(limits.max_connections);
    if limits.idle_timeout <= CLIENT_POOL_IDLE {
        tracing::warn!(
            idle_timeout_ms = limits.idle_timeout.as_millis() as u64,
            client_pool_idle_ms = CLIENT_POOL_IDLE.as_millis() as u64,
            "the idle timeout is not above the clients' pool idle: a pooled connection may be \
             reused as this server closes it"
        );
    }
    let timeouts = connection::Timeouts {
        header_read: limits.header_read_timeout,
        idle: limits.idle_timeout,
        response_write: limits.response_write_timeout,
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut pause = listen::AcceptPause::default();
    let mut refusing = false;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            // Finished connections are reaped as they go, so the set holds live ones only.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    pause.accepted();
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        if !refusing {
                            tracing::warn!(
                                max_connections,
                                "at the connection limit: new connections are answered 503"
                            );
                            refusing = true;
                        }
                        listen::refuse(stream);
                        continue;
                    };
                    if refusing {
                        tracing::info!(max_connections, "below the connection limit again");
                        refusing = false;
                    }
                    let router = router.clone();
                    let stop = stop_rx.clone();
                    connections.spawn(async move {
                        connection::serve(stream, peer, router, timeouts, stop).await;
                        drop(slot);
                    });
                }
                Err(error) => {
                    if let Some(wait) = pause.after(&error) {
                        tokio::select! {
                            () = &mut shutdown => break,
                            () = tokio::time::sleep(wait) => {}
                        }
                    }
                }
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.drain, drained).await.is_err() {
        tracing::warn!(
            drain_ms = limits.drain.as_millis() as u64,
            connections = connections.len(),
            "drain deadline passed; closing remaining connections"
        );
        connections.shutdown().await;
    }
    Ok(())
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
