//! The accept loop's three helpers: the connection cap held under the open-file limit, the
//! answer at the cap, and the pause after an accept error.

use std::io;
use std::sync::LazyLock;
use std::time::Duration;

use tokio::net::TcpStream;

/// `max_connections`, held to half the process's soft limit of open files (at least one).
///
/// Each connection is a descriptor, and may need more: the gateway's hop to a service, the
/// front door's to its backend, the database's pool. A cap above the limit would never be
/// met; the process would run out of descriptors first and then fail whatever needs one
/// (an `accept` among them, so new clients hang). Half is a round share of the rest for
/// those.
pub(super) fn cap(max_connections: usize) -> usize {
    let open_files = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(soft, _hard)| usize::try_from(soft).unwrap_or(usize::MAX));
    let held = held_under(max_connections, open_files);
    if held < max_connections {
        tracing::info!(
            max_connections,
            open_files,
            held,
            "connection cap held to half the limit of open files"
        );
    }
    held
}

fn held_under(max_connections: usize, open_files: Option<usize>) -> usize {
    match open_files {
        Some(open_files) => max_connections.min(open_files / 2),
        None => max_connections,
    }
    .max(1)
}

/// The answer to a connection over the cap: 503 with the shop's error body, then the close.
static REFUSAL: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let body =
        r#"{"error":{"code":"unavailable","message":"the server is at its connection limit"}}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
});

/// Answers `stream` with [`REFUSAL`] and closes it, without waiting: the answer fits in a
/// fresh socket's send buffer, so one non-blocking write sends it, and a stream that cannot
/// take it at once is only closed. Whatever the client already sent is read first (as far
/// as it is there), since closing over unread bytes resets the connection and a reset can
/// reach the client before the answer does.
pub(super) fn refuse(stream: TcpStream) {
    let mut unread = [0u8; 4096];
    for _ in 0..16 {
        if !matches!(stream.try_read(&mut unread), Ok(read) if read > 0) {
            break;
        }
    }
    let _ = stream.try_write(&REFUSAL);
}

/// Paces the accept loop after errors that are the process's, not one connection's: out of
/// descriptors (`EMFILE`, `ENFILE`) or memory. Those repeat until something closes, so
/// accepting again at once would spin; the pause starts short, so serving resumes soon after
/// a descriptor frees, and doubles up to a second. Logged once when it starts and once when
/// accepting works again, not once per failure.
#[derive(Debug)]
pub(super) struct AcceptPause {
    next: Duration,
    failures: u64,
}

const FIRST_PAUSE: Duration = Duration::from_millis(10);
const LONGEST_PAUSE: Duration = Duration::from_secs(1);

impl Default for AcceptPause {
    fn default() -> AcceptPause {
        AcceptPause {
            next: FIRST_PAUSE,
            failures: 0,
        }
    }
}

impl AcceptPause {
    /// How long to wait before the next accept; `None` for a connection's own failure (it
    /// was reset or aborted before it was accepted), after which the next one is accepted
    /// at once.
    pub(super) fn after(&mut self, error: &io::Error) -> Option<Duration> {
        if matches!(
            error.kind(),
            io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionRefused
        ) {
            return None;
        }
        if self.failures == 0 {
            tracing::error!(error = %error, "accept failed; pausing accepts until it works again");
        }
        self.failures += 1;
        let wait = self.next;
        self.next = (self.next * 2).min(LONGEST_PAUSE);
        Some(wait)
    }

    /// An accept worked: the next failure starts the pauses afresh.
    pub(super) fn accepted(&mut self) {
        if self.failures > 0 {
            tracing::info!(failures = self.failures, "accepting connections again");
        }
        *self = AcceptPause::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_after_running_out_of_descriptors_doubles_up_to_a_second_and_resets() {
        let mut pause = AcceptPause::default();
        let emfile = io::Error::from_raw_os_error(24);
        let waits: Vec<Duration> = (0..9).filter_map(|_| pause.after(&emfile)).collect();
        assert_eq!(waits[0], FIRST_PAUSE);
        assert_eq!(waits[1], FIRST_PAUSE * 2);
        assert_eq!(*waits.last().unwrap(), LONGEST_PAUSE);
        pause.accepted();
        assert_eq!(pause.after(&emfile), Some(FIRST_PAUSE));
    }

    #[test]
    fn the_cap_is_held_to_half_the_open_file_limit() {
        assert_eq!(held_under(1024, Some(200)), 100);
        assert_eq!(held_under(1024, Some(20_000)), 1024);
        assert_eq!(held_under(1024, None), 1024);
        assert_eq!(held_under(0, Some(200)), 1);
    }

    #[test]
    fn a_connection_reset_before_its_accept_is_not_paused_for() {
        let mut pause = AcceptPause::default();
        let reset = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(pause.after(&reset), None);
    }

    #[test]
    fn the_refusal_is_a_complete_503_with_the_shops_error_body() {
        let refusal = String::from_utf8(REFUSAL.clone()).unwrap();
        let (head, body) = refusal.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let parsed: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(parsed["error"]["code"], "unavailable");
    }
}
