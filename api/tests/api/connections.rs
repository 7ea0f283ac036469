//! `api::server::serve` on a real socket: a slowloris and an idle kept-alive connection are
//! closed on their deadlines while a slow request is not, a client that never reads its
//! answer is closed at the response-write deadline, a connection over the cap gets its 503
//! and the next one is served once a slot frees, shutdown drains a request in flight and
//! cuts the stragglers at the drain deadline, and handlers see the peer's address.
//!
//! Each test sets the deadline it exercises short and the others long, so a close can only
//! come from the one under test. Waits for a close are bounded (`CLOSE_WITHIN`) but never
//! timed for speed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use api::server::Limits;
use axum::Router;
use axum::routing::get;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The longest a test waits for something the server must do; far above any deadline here.
const CLOSE_WITHIN: Duration = Duration::from_secs(10);
const SHORT: Duration = Duration::from_millis(300);
const LONG: Duration = Duration::from_secs(60);
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nhost: shop\r\n\r\n";
/// `/large`'s body: far more than a loopback socket's send and receive buffers hold
/// together (Linux grows a send buffer to 4 MiB at most by default), so a client that does
/// not read leaves the server's write waiting.
const LARGE: usize = 32 << 20;

#[tokio::test]
async fn a_slowloris_that_stalls_mid_head_is_closed_after_the_header_read_timeout() {
    let server = Server::start(Limits {
        header_read_timeout: SHORT,
        idle_timeout: LONG,
        ..limits()
    })
    .await;
    let mut slowloris = server.connect().await;
    let sent = Instant::now();
    slowloris
        .write_all(b"GET / HTTP/1.1\r\nhost: shop\r\nx-slow: ")
        .await
        .unwrap();
    let (answer, closed) = read_until_closed(&mut slowloris).await;
    assert!(answer.is_empty(), "a slowloris got an answer: {answer}");
    assert!(
        closed.duration_since(sent) >= SHORT,
        "closed before the header-read timeout"
    );
}

#[tokio::test]
async fn a_connection_that_never_sends_is_closed_after_the_header_read_timeout() {
    let server = Server::start(Limits {
        header_read_timeout: SHORT,
        idle_timeout: LONG,
        ..limits()
    })
    .await;
    let mut silent = server.connect().await;
    let (answer, _) = read_until_closed(&mut silent).await;
    assert!(
        answer.is_empty(),
        "an empty connection got an answer: {answer}"
    );
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let server = Server::start(Limits {
        header_read_timeout: LONG,
        idle_timeout: SHORT,
        ..limits()
    })
    .await;
    let mut kept_alive = server.connect().await;
    // Two requests on one connection: it is kept alive between them.
    for _ in 0..2 {
        kept_alive.write_all(REQUEST).await.unwrap();
        assert!(
            read_response(&mut kept_alive)
                .await
                .starts_with("HTTP/1.1 200")
        );
    }
    let answered = Instant::now();
    let (more, closed) = read_until_closed(&mut kept_alive).await;
    assert!(more.is_empty(), "unexpected bytes: {more}");
    assert!(
        closed.duration_since(answered) >= SHORT,
        "closed before the idle timeout"
    );
}

#[tokio::test]
async fn a_kept_alive_connection_whose_next_head_stalls_is_closed_after_the_header_read_timeout() {
    let server = Server::start(Limits {
        header_read_timeout: SHORT,
        idle_timeout: LONG,
        ..limits()
    })
    .await;
    let mut connection = server.connect().await;
    connection.write_all(REQUEST).await.unwrap();
    assert!(
        read_response(&mut connection)
            .await
            .starts_with("HTTP/1.1 200")
    );
    connection.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    let (answer, _) = read_until_closed(&mut connection).await;
    assert!(answer.is_empty(), "a stalled head got an answer: {answer}");
}

#[tokio::test]
async fn a_request_slower_than_both_timeouts_is_answered() {
    let server = Server::start(Limits {
        header_read_timeout: Duration::from_millis(100),
        idle_timeout: Duration::from_millis(100),
        ..limits()
    })
    .await;
    let mut connection = server.connect().await;
    connection
        .write_all(b"GET /slow HTTP/1.1\r\nhost: shop\r\n\r\n")
        .await
        .unwrap();
    let answer = read_response(&mut connection).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("slow"), "{answer}");
}

#[tokio::test]
async fn a_client_that_never_reads_its_answer_is_closed_after_the_response_write_timeout_while_others_are_served()
 {
    // Long enough that the checks made while the reader is stuck finish well inside it.
    let timeout = Duration::from_secs(2);
    let server = Server::start(Limits {
        response_write_timeout: timeout,
        max_connections: 2,
        ..limits()
    })
    .await;
    let mut reader = server.connect_with_small_receive_buffer().await;
    let sent = Instant::now();
    reader
        .write_all(b"GET /large HTTP/1.1\r\nhost: shop\r\n\r\n")
        .await
        .unwrap();

    // Another client is served while the reader's answer waits, and keeps its connection:
    // with the reader's that fills the cap, so a third is refused — the reader is held.
    let mut other = server.connect().await;
    other.write_all(REQUEST).await.unwrap();
    assert!(read_response(&mut other).await.starts_with("HTTP/1.1 200"));
    let mut third = server.connect().await;
    let (refusal, _) = read_until_closed(&mut third).await;
    assert!(
        refusal.starts_with("HTTP/1.1 503"),
        "the reader's slot should still be held: {refusal}"
    );

    // Once the write has waited out the timeout the reader's connection is closed and its
    // slot serves someone else (polled: the close is the server's to time).
    let deadline = Instant::now() + CLOSE_WITHIN;
    loop {
        let mut next = server.connect().await;
        next.write_all(REQUEST).await.unwrap();
        let answer = read_response(&mut next).await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(Instant::now() < deadline, "the reader's slot never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        sent.elapsed() >= timeout,
        "closed before the response-write timeout"
    );
    // The reader, reading at last, finds its answer cut short: the server gave up on it.
    let read = tokio::time::timeout(CLOSE_WITHIN, async {
        let mut buffer = vec![0u8; 64 * 1024];
        let mut total = 0;
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => return total,
                Ok(count) => total += count,
            }
        }
    })
    .await
    .expect("the reader's connection was closed");
    assert!(read < LARGE, "the whole answer arrived ({read} bytes)");
    // The other client's connection was not touched.
    other.write_all(REQUEST).await.unwrap();
    assert!(read_response(&mut other).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_handler_sees_the_peers_address() {
    let server = Server::start(limits()).await;
    let mut client = server.connect().await;
    let local = client.local_addr().unwrap();
    client
        .write_all(b"GET /peer HTTP/1.1\r\nhost: shop\r\n\r\n")
        .await
        .unwrap();
    let answer = read_response(&mut client).await;
    assert!(answer.ends_with(&local.to_string()), "{answer}");
}

#[tokio::test]
async fn at_the_connection_cap_a_new_connection_gets_503_and_one_is_served_once_a_slot_frees() {
    let server = Server::start(Limits {
        max_connections: 1,
        ..limits()
    })
    .await;
    // Answered, so the server holds it: the one slot is taken.
    let mut first = server.connect().await;
    first.write_all(REQUEST).await.unwrap();
    assert!(read_response(&mut first).await.starts_with("HTTP/1.1 200"));

    let mut over = server.connect().await;
    let (refusal, _) = read_until_closed(&mut over).await;
    assert!(
        refusal.starts_with("HTTP/1.1 503"),
        "over the cap: {refusal}"
    );
    assert!(refusal.contains(r#""code":"unavailable""#), "{refusal}");

    drop(first);
    // The slot frees when the server sees the close; until then a new connection may still
    // be refused, so poll with a deadline.
    let deadline = Instant::now() + CLOSE_WITHIN;
    loop {
        let mut next = server.connect().await;
        next.write_all(REQUEST).await.unwrap();
        let answer = read_response(&mut next).await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(Instant::now() < deadline, "the slot never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn shutdown_stops_accepting_and_drains_a_request_in_flight() {
    let server = Server::start(limits()).await;
    let mut in_flight = server.connect().await;
    in_flight
        .write_all(b"GET /held HTTP/1.1\r\nhost: shop\r\n\r\n")
        .await
        .unwrap();
    server.gate.started.notified().await;
    let (address, served) = server.shut_down();
    // The listener closes: a new connection is refused (polled, since the shutdown is
    // asynchronous).
    let deadline = Instant::now() + CLOSE_WITHIN;
    while TcpStream::connect(address).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after shutdown");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    served.gate.release.notify_one();
    let answer = read_response(&mut in_flight).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("held"), "{answer}");
    tokio::time::timeout(CLOSE_WITHIN, served.task)
        .await
        .expect("serve returns once drained")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn shutdown_cuts_a_request_still_running_at_the_drain_deadline() {
    let server = Server::start(Limits {
        drain: SHORT,
        ..limits()
    })
    .await;
    let mut straggler = server.connect().await;
    straggler
        .write_all(b"GET /held HTTP/1.1\r\nhost: shop\r\n\r\n")
        .await
        .unwrap();
    server.gate.started.notified().await;
    let (_, served) = server.shut_down();
    tokio::time::timeout(CLOSE_WITHIN, served.task)
        .await
        .expect("serve returns at the drain deadline")
        .unwrap()
        .unwrap();
    let (answer, _) = read_until_closed(&mut straggler).await;
    assert!(answer.is_empty(), "the straggler got an answer: {answer}");
}

/// Long deadlines, a roomy cap, a short drain: each test shortens what it exercises.
fn limits() -> Limits {
    Limits {
        header_read_timeout: LONG,
        idle_timeout: LONG,
        response_write_timeout: LONG,
        max_connections: 64,
        drain: CLOSE_WITHIN,
    }
}

/// Lets a test hold `/held` until it says so, and know when it started.
#[derive(Default)]
struct Gate {
    started: Notify,
    release: Notify,
}

/// A server on a random port, stopped when its shutdown sender fires or is dropped.
struct Server {
    address: SocketAddr,
    gate: Arc<Gate>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

/// What remains of a [`Server`] told to stop.
struct Stopping {
    gate: Arc<Gate>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    async fn start(limits: Limits) -> Server {
        let gate = Arc::new(Gate::default());
        let held = gate.clone();
        let router =
            Router::new()
                .route("/", get(|| async { "ok" }))
                .route(
                    "/slow",
                    // Slower than the test's header-read and idle timeouts together.
                    get(|| async {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        "slow"
                    }),
                )
                .route("/large", get(|| async { vec![b'x'; LARGE] }))
                .route(
                    "/peer",
                    get(
                        |axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<
                            SocketAddr,
                        >| async move { peer.to_string() },
                    ),
                )
                .route(
                    "/held",
                    get(move || {
                        let gate = held.clone();
                        async move {
                            gate.started.notify_one();
                            gate.release.notified().await;
                            "held"
                        }
                    }),
                );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(api::server::serve(
            listener,
            router,
            async move {
                let _ = stop.await;
            },
            limits,
        ));
        Server {
            address,
            gate,
            shutdown,
            task,
        }
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.address).await.unwrap()
    }

    /// A client whose kernel takes only a few KiB of an answer it does not read.
    async fn connect_with_small_receive_buffer(&self) -> TcpStream {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect(self.address).await.unwrap()
    }

    fn shut_down(self) -> (SocketAddr, Stopping) {
        let _ = self.shutdown.send(());
        (
            self.address,
            Stopping {
                gate: self.gate,
                task: self.task,
            },
        )
    }
}

/// Reads until the server closes the connection (a reset counts); what was read, and when
/// the close came. Fails the test if it does not come within [`CLOSE_WITHIN`].
async fn read_until_closed(stream: &mut TcpStream) -> (String, Instant) {
    let mut read = Vec::new();
    let closing = async {
        let mut buffer = [0u8; 1024];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return Instant::now(),
                Ok(count) => read.extend_from_slice(&buffer[..count]),
            }
        }
    };
    let closed = tokio::time::timeout(CLOSE_WITHIN, closing)
        .await
        .expect("the server did not close the connection");
    (String::from_utf8_lossy(&read).into_owned(), closed)
}

/// Reads one response with a `content-length` body and returns it whole (head and body).
async fn read_response(stream: &mut TcpStream) -> String {
    let reading = async {
        let mut read = Vec::new();
        let mut buffer = [0u8; 1024];
        loop {
            let text = String::from_utf8_lossy(&read).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    return text;
                }
            }
            let count = stream.read(&mut buffer).await.unwrap();
            assert!(count > 0, "closed mid-response: {text}");
            read.extend_from_slice(&buffer[..count]);
        }
    };
    tokio::time::timeout(CLOSE_WITHIN, reading)
        .await
        .expect("no response")
}
