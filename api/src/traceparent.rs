//! W3C Trace Context (`traceparent`) for one request across every hop: read on the way in
//! (or a new trace started), carried through the request's task, sent on every hop out.
//!
//! Hand-written on purpose: the lab needs one header parsed and formatted so that log lines
//! of one checkout share a `trace_id` in the gateway, orders, inventory and payments. The
//! OpenTelemetry SDK would bring exporters, a global propagator and a tracer provider to
//! configure — far more than these forty lines, and nothing the lab collects spans with.
//!
//! The context travels in a tokio task-local set by [`layer`]; handlers run inside the
//! request's task, so a client deep below a handler finds it with [`current`]. Work spawned
//! on other tasks (the saga's recovery loop) has none, and its hops start traces of their own.

use std::fmt;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::response::Response;

/// The header name, as the W3C spells it.
pub const TRACEPARENT: &str = "traceparent";

/// One position in a trace: which trace, and which span is the parent of the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

impl TraceContext {
    /// A new trace with a random id (a request that came in without one).
    pub fn start() -> TraceContext {
        TraceContext {
            trace_id: nonzero(rand::random()),
            span_id: nonzero(rand::random()),
            sampled: true,
        }
    }

    /// The same trace, one level down: a new span id whose parent is this one.
    pub fn child(&self) -> TraceContext {
        TraceContext {
            span_id: nonzero(rand::random()),
            ..*self
        }
    }

    /// Parses `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`. Later versions are
    /// read by the same first four fields, as the specification asks; version `ff`, all-zero
    /// ids and anything malformed are `None` (the server then starts a new trace).
    pub fn parse(header: &str) -> Option<TraceContext> {
        let mut parts = header.trim().split('-');
        let version = parts.next()?;
        let trace_id = parts.next()?;
        let span_id = parts.next()?;
        let flags = parts.next()?;
        if version.len() != 2 || version.eq_ignore_ascii_case("ff") {
            return None;
        }
        let _ = u8::from_str_radix(version, 16).ok()?;
        if version == "00" && parts.next().is_some() {
            return None;
        }
        let trace_id: [u8; 16] = hex_bytes(trace_id)?;
        let span_id: [u8; 8] = hex_bytes(span_id)?;
        let [flags]: [u8; 1] = hex_bytes(flags)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceContext {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The `traceparent` value naming this span as the parent.
    pub fn header_value(&self) -> HeaderValue {
        HeaderValue::from_bytes(&self.encode()).expect("hex digits and dashes are a header value")
    }

    /// The trace id as a log field: written as 32 hex digits only when a subscriber records
    /// it, so a request span that nobody logs costs no formatting.
    pub fn trace_id(&self) -> TraceId {
        TraceId(self.trace_id)
    }

    /// `00-<trace id>-<span id>-<flags>`. By the `hex` crate's table rather than `format!`:
    /// every hop writes one and every server echoes one, and `{:02x}` per byte took about
    /// 8,000 instructions per header (callgrind, `bench/hop-instructions.sh`).
    fn encode(&self) -> [u8; 55] {
        let mut header = *b"00-00000000000000000000000000000000-0000000000000000-00";
        hex::encode_to_slice(self.trace_id, &mut header[3..35]).expect("32 digits for 16 bytes");
        hex::encode_to_slice(self.span_id, &mut header[36..52]).expect("16 digits for 8 bytes");
        if self.sampled {
            header[54] = b'1';
        }
        header
    }
}

/// A trace id as a log field ([`TraceContext::trace_id`]).
#[derive(Clone, Copy, Debug)]
pub struct TraceId([u8; 16]);

impl fmt::Display for TraceId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut digits = [0u8; 32];
        hex::encode_to_slice(self.0, &mut digits).expect("32 digits for 16 bytes");
        formatter.write_str(std::str::from_utf8(&digits).expect("hex digits are ASCII"))
    }
}

/// The trace context of the request this task serves, if any.
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(|context| *context).ok()
}

/// Runs `future` as part of `context` (what [`layer`] does for every request; tests use it
/// to call a client as if from inside a request).
pub async fn scope<F: Future>(context: TraceContext, future: F) -> F::Output {
    CURRENT.scope(context, future).await
}

/// The trace a request belongs to: the caller's `traceparent` made this server's child span
/// (or a new trace when it sent none, or a malformed one). The server's outermost layer
/// (`crate::server::finish`) calls this, runs the request in [`scope`] and [`echo`]es the
/// span on the answer.
pub fn receive(request: &Request) -> TraceContext {
    let incoming = request
        .headers()
        .get(TRACEPARENT)
        .and_then(|value| value.to_str().ok())
        .and_then(TraceContext::parse);
    match incoming {
        Some(parent) => parent.child(),
        None => TraceContext::start(),
    }
}

/// Puts `context` on the answer, so a caller without tracing of its own can still find the
/// request in the logs.
pub fn echo(response: &mut Response, context: TraceContext) {
    response
        .headers_mut()
        .insert(TRACEPARENT, context.header_value());
}

fn nonzero<const N: usize>(mut bytes: [u8; N]) -> [u8; N] {
    // All zeros is the one invalid id; the odds are nil, the fix is free.
    if bytes.iter().all(|byte| *byte == 0) {
        bytes[N - 1] = 1;
    }
    bytes
}

fn hex_bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut bytes = [0u8; N];
    // Refuses a wrong length and any non-hex digit.
    hex::decode_to_slice(text, &mut bytes).ok()?;
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_specification_example_round_trips() {
        let context = TraceContext::parse(EXAMPLE).unwrap();
        assert_eq!(
            context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(context.sampled);
        assert_eq!(context.header_value(), EXAMPLE);
    }

    #[test]
    fn a_child_keeps_the_trace_and_changes_the_parent() {
        let parent = TraceContext::parse(EXAMPLE).unwrap();
        let child = parent.child();
        assert_eq!(child.trace_id, parent.trace_id);
        assert_ne!(child.span_id, parent.span_id);
    }

    #[test]
    fn malformed_or_all_zero_headers_are_refused() {
        for header in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(header), None, "{header:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_first_fields() {
        let header = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-more";
        let context = TraceContext::parse(header).unwrap();
        assert!(!context.sampled);
    }

    #[tokio::test]
    async fn the_current_context_is_visible_inside_its_scope_only() {
        let context = TraceContext::start();
        assert_eq!(scope(context, async { current() }).await, Some(context));
        assert_eq!(current(), None);
    }
}
