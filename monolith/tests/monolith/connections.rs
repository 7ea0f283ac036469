//! A flood of sockets that send nothing, against a monolith whose limit of open files is
//! low: what once left new requests hanging behind `accept error: Too many open files`.

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;

use crate::process::Process;

#[tokio::test]
async fn with_few_open_files_a_flood_of_silent_sockets_is_refused_not_hung_and_the_shop_serves_once_it_ends()
 {
    // 200 descriptors hold the connection cap to 100, the rest left for the database and the
    // process itself. The header-read timeout is long, so the flood stays for the test.
    let process =
        Process::start_with_open_files(200, &[("SHOPLAB_HEADER_READ_TIMEOUT_MS", "60000")]).await;
    let address = process.base_url.trim_start_matches("http://").to_owned();
    let mut flood = Vec::new();
    for _ in 0..300 {
        flood.push(TcpStream::connect(&address).await.expect("connect"));
    }
    let last = flood.last_mut().expect("a flood");
    let answer = read_until_closed(last).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "over the cap: {answer}");

    // A new client is answered at once — a 503, or a reset when its request crossed the
    // close — rather than left waiting. Its own connection, not one pooled before the flood.
    let fresh = || {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client")
    };
    match fresh().get(process.url("/health")).send().await {
        Ok(response) => assert_eq!(response.status(), 503),
        Err(error) => assert!(!error.is_timeout(), "the request hung: {error}"),
    }

    drop(flood);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let health = fresh().get(process.url("/health")).send().await;
        if health.is_ok_and(|response| response.status() == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the shop did not serve again once the flood ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads until the server closes the connection (a reset counts), at most 10 s.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut read = Vec::new();
    let closing = async {
        let mut buffer = [0u8; 1024];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(count) => read.extend_from_slice(&buffer[..count]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), closing)
        .await
        .expect("the server did not close the connection");
    String::from_utf8_lossy(&read).into_owned()
}
