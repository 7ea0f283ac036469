//! `probe URL`: the healthcheck inside shoplab's images. Sends one `GET` to an `http://`
//! URL and exits 0 when the answer is 2xx, 1 otherwise (refused, timed out, any other status).
//!
//! Why it is written by hand: the images are `FROM scratch` (a static binary and nothing
//! else), so there is no shell and no curl for a compose healthcheck to call. A crate such as
//! `ureq` would need a Cargo manifest: either a new workspace member (and a dependency edge in
//! ARCHITECTURE.md) for a few lines of HTTP/1.0, or a second lock file. This one file uses
//! only `std`, is compiled with `rustc` alone (see `build-images.sh`), and understands exactly
//! what a probe needs: `http://HOST:PORT/PATH`, one request, the status line.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

/// Connect, send and read each get this long; compose's own `timeout` bounds the whole probe.
const STEP_TIMEOUT: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: probe http://HOST:PORT/PATH");
        return ExitCode::from(2);
    };
    match status_of(&url) {
        Ok(status) if (200..300).contains(&status) => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("{url} answered {status}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("{url}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The status code of `GET url`.
fn status_of(url: &str) -> Result<u16, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, "/"),
    };
    let address = authority
        .to_socket_addrs()
        .map_err(|error| format!("resolve {authority}: {error}"))?
        .next()
        .ok_or_else(|| format!("{authority} resolves to no address"))?;
    let mut stream = TcpStream::connect_timeout(&address, STEP_TIMEOUT)
        .map_err(|error| format!("connect: {error}"))?;
    stream
        .set_read_timeout(Some(STEP_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(STEP_TIMEOUT)))
        .map_err(|error| format!("set timeouts: {error}"))?;
    // HTTP/1.0 with `Connection: close`: the server ends the answer by closing, so reading the
    // status line is all there is to do.
    let request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|error| format!("send: {error}"))?;
    let mut head = [0_u8; 64];
    let mut read = 0;
    // The status line is `HTTP/1.x NNN ...`: 12 bytes hold the code.
    while read < 12 {
        match stream.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(count) => read += count,
            Err(error) => return Err(format!("read: {error}")),
        }
    }
    let line = String::from_utf8_lossy(&head[..read]);
    line.strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {line:?}"))
}
