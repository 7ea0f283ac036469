//! One accepted connection, served by hyper's HTTP/1 server under three deadlines: the
//! header-read timeout, the idle timeout and the response-write timeout
//! ([`super::Limits`]). Each request carries the peer's address (axum's `ConnectInfo`).
//!
//! Hand-written rather than hyper's own `header_read_timeout`, for one reason: hyper starts
//! that timer whenever a connection begins to wait for a request head, so on a kept-alive
//! connection the idle wait and the reading of the head share one budget. Either a slowloris
//! holds its socket as long as an idle connection may stay pooled, or every client's pool
//! must drop its connections within the few seconds a head deserves. Servers keep the two
//! apart (nginx's `client_header_timeout` and `keepalive_timeout`, Go's `ReadHeaderTimeout`
//! and `IdleTimeout`); so does this file, by watching the connection: the service marks a
//! request in flight from its head until hyper drops its response body, and the socket
//! marks the first byte read after that as the start of the next head.
//!
//! The third deadline covers what the other two cannot see: a client that sends a request
//! and never reads the answer. Its request stays in flight (hyper holds the body it cannot
//! write), so neither of the first two runs. The socket marks a write that cannot go on
//! (the client's window and the kernel's send buffer are full) and clears the mark when a
//! write goes through; a mark older than the response-write timeout closes the connection.
//! nginx's `send_timeout` is the same rule: it bounds the wait between two successful
//! writes, not the whole answer, so a slow but reading client is never cut.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tower::ServiceExt as _;

/// The three deadlines of a connection.
#[derive(Clone, Copy, Debug)]
pub(super) struct Timeouts {
    pub(super) header_read: Duration,
    pub(super) idle: Duration,
    pub(super) response_write: Duration,
}

/// Serves one connection until the client closes it, its deadline passes (then it is
/// closed at once: nothing is in flight), or `stop` turns true: then hyper's graceful
/// shutdown lets a request in flight finish and closes the connection after its answer.
pub(super) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    timeouts: Timeouts,
    mut stop: watch::Receiver<bool>,
) {
    // A new connection is there to send a request: its head is due from the accept on.
    let phase = Arc::new(watch::Sender::new(Phase::Head(Instant::now())));
    let deadline = deadline_passed(phase.subscribe(), timeouts);
    let stalled = Arc::new(watch::Sender::new(None));
    let write_stalled = write_stalled_too_long(stalled.subscribe(), timeouts.response_write);
    let io = TokioIo::new(Watched {
        stream,
        phase: phase.clone(),
        stalled,
    });
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        let in_flight = InFlight::begin(phase.clone());
        let router = router.clone();
        // Where the request came from, for handlers that ask (`ConnectInfo<SocketAddr>`):
        // the failed-login throttle counts per client address.
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        async move {
            let Ok(response) = router.oneshot(request.map(Body::new)).await;
            Ok::<_, Infallible>(response.map(|body| Tracked {
                body,
                _in_flight: in_flight,
            }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The deadlines are this file's (see its header); hyper's would cut idle connections at
    // the header-read timeout.
    builder.header_read_timeout(None);
    let connection = builder.serve_connection(io, service).with_upgrades();
    let stopped = async move {
        // A dropped sender means the server is gone: stop as well.
        let _ = stop.wait_for(|stop| *stop).await;
    };
    tokio::pin!(connection, deadline, write_stalled, stopped);
    let mut stopping = false;
    loop {
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(error) = served {
                    tracing::debug!(error = %error, "connection ended with an error");
                }
                return;
            }
            () = &mut stopped, if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
            reason = &mut deadline => {
                tracing::debug!(reason, "closing a connection");
                return;
            }
            // Closed even while stopping: a client that takes no byte of its answer would
            // otherwise hold the drain until its deadline.
            () = &mut write_stalled => {
                tracing::debug!(
                    reason = "response write timeout",
                    peer = %peer,
                    "closing a connection whose client does not read its answer"
                );
                return;
            }
        }
    }
}

/// Where a connection is between requests, which decides its deadline.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// A request head is due; since this instant (the accept, or the first byte read after
    /// the last answer).
    Head(Instant),
    /// No request in flight and no byte of the next one, since this instant.
    Idle(Instant),
    /// This many requests in flight (more than one only when the client pipelines); the
    /// handlers' own time is not this file's to bound.
    Busy(usize),
}

/// Resolves when the connection's current deadline passes, with the reason.
async fn deadline_passed(mut phase: watch::Receiver<Phase>, timeouts: Timeouts) -> &'static str {
    loop {
        let current = *phase.borrow_and_update();
        let deadline = match current {
            Phase::Head(since) => Some((since + timeouts.header_read, "header read timeout")),
            Phase::Idle(since) => Some((since + timeouts.idle, "idle timeout")),
            Phase::Busy(_) => None,
        };
        let changed = async {
            // The sender lives as long as the connection; once it is gone there is nothing
            // left to time.
            if phase.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        match deadline {
            Some((deadline, reason)) => tokio::select! {
                () = tokio::time::sleep_until(deadline) => return reason,
                () = changed => {}
            },
            None => changed.await,
        }
    }
}

/// Resolves once a write has waited `timeout` for the client to take bytes (`stalled` holds
/// since when a write could not go on, `None` while writes go through).
async fn write_stalled_too_long(mut stalled: watch::Receiver<Option<Instant>>, timeout: Duration) {
    loop {
        let since = *stalled.borrow_and_update();
        let changed = async {
            // The sender lives as long as the connection.
            if stalled.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        match since {
            Some(since) => tokio::select! {
                () = tokio::time::sleep_until(since + timeout) => return,
                () = changed => {}
            },
            None => changed.await,
        }
    }
}

/// One request in flight, from its head until hyper drops its response body (written, or
/// the connection gone); then the connection is idle.
struct InFlight(Arc<watch::Sender<Phase>>);

impl InFlight {
    fn begin(phase: Arc<watch::Sender<Phase>>) -> InFlight {
        phase.send_modify(|phase| {
            *phase = match *phase {
                Phase::Busy(requests) => Phase::Busy(requests + 1),
                Phase::Head(_) | Phase::Idle(_) => Phase::Busy(1),
            }
        });
        InFlight(phase)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|phase| {
            *phase = match *phase {
                Phase::Busy(requests) if requests > 1 => Phase::Busy(requests - 1),
                _ => Phase::Idle(Instant::now()),
            }
        });
    }
}

/// A response body that ends its request's [`InFlight`] when hyper drops it.
struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(context)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The socket, which marks the first byte read on an idle connection as the start of a
/// request head, and since when a write has been waiting for the client to read.
struct Watched {
    stream: TcpStream,
    phase: Arc<watch::Sender<Phase>>,
    /// Since when a write could not go on; `None` once one went through.
    stalled: Arc<watch::Sender<Option<Instant>>>,
}

impl Watched {
    fn note_write<T>(&self, written: &Poll<std::io::Result<T>>) {
        let waiting = written.is_pending();
        self.stalled
            .send_if_modified(|since| match (waiting, *since) {
                (true, None) => {
                    *since = Some(Instant::now());
                    true
                }
                (false, Some(_)) => {
                    *since = None;
                    true
                }
                _ => false,
            });
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buffer.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(context, buffer);
        if matches!(read, Poll::Ready(Ok(()))) && buffer.filled().len() > before {
            self.phase.send_if_modified(|phase| match phase {
                Phase::Idle(_) => {
                    *phase = Phase::Head(Instant::now());
                    true
                }
                Phase::Head(_) | Phase::Busy(_) => false,
            });
        }
        read
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write(context, buffer);
        self.note_write(&written);
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write_vectored(context, buffers);
        self.note_write(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(context)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(context)
    }
}
