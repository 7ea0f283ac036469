//! Who may drive the workshop. Its API kills processes and starts load, and a browser
//! reaches loopback from any page it shows: without this, a page on another site could
//! `fetch("http://127.0.0.1:8088/api/builds/both/components/front/kill", {method: "POST"})`
//! (a "simple" request needs no CORS preflight), or rebind its own name to 127.0.0.1 and
//! read the API as if it were the workshop's page. So, on every request:
//!
//! - **Host**: when the page is bound to a loopback address, the `Host` header must name
//!   loopback (`127.0.0.1`, `localhost`, `[::1]`) and the page's port; a rebound name is
//!   refused. Bound to another address (`--bind`, offered to a room on purpose) any name goes,
//!   since the lab cannot know which names the room uses.
//! - **Origin**, on a call that changes anything (any method but GET, HEAD, OPTIONS): when
//!   present (browsers send it on every such call), it must be the origin the request was sent
//!   to, `http://` + its `Host`. Tools that send none (curl) are not browsers driven by a
//!   foreign page, and pass.
//! - **Content type**, on the same calls: a body must be `application/json`, and a
//!   `Content-Type` of anything else is refused even with no body — the three types a foreign
//!   form or a simple request may send without a preflight (`text/plain`, form encodings) are
//!   what such an attack is made of.
//!
//! Refusals are the shop's error body: `403 forbidden` for host and origin, `415
//! unsupported_media_type` for the body, and nothing is done.
//!
//! Written here rather than with tower-http: its CORS layer decides what a browser may *read*
//! of an answer, not whether the call runs, and simple requests run before any CORS check.

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, ORIGIN, TRANSFER_ENCODING};
use axum::http::{HeaderMap, Method, uri::Authority};
use axum::middleware::Next;
use axum::response::Response;

use super::error::ApiError;

/// Where the page listens, which decides which `Host` values it answers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Guard {
    pub address: SocketAddr,
}

/// The middleware: refuses a request the rules above forbid, passes the rest on.
pub(crate) async fn guard(
    State(guard): State<Guard>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    guard.check(request.method(), request.headers())?;
    Ok(next.run(request).await)
}

impl Guard {
    fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
        let host = header(headers, HOST.as_str())?
            .ok_or_else(|| ApiError::forbidden("a request must name its Host"))?;
        if self.address.ip().is_loopback() && !self.is_loopback_host(host) {
            return Err(ApiError::forbidden(format!(
                "the workshop answers only to its loopback address (127.0.0.1, localhost or [::1] with port {}), not to Host {host:?}",
                self.address.port()
            )));
        }
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        if let Some(origin) = header(headers, ORIGIN.as_str())?
            && origin != format!("http://{host}")
        {
            return Err(ApiError::forbidden(format!(
                "a call from another site's page (Origin {origin:?}) may not change the workshop"
            )));
        }
        let has_body = header(headers, TRANSFER_ENCODING.as_str())?.is_some()
            || header(headers, CONTENT_LENGTH.as_str())?.is_some_and(|length| length != "0");
        match header(headers, CONTENT_TYPE.as_str())? {
            Some(kind) if !is_json(kind) => Err(ApiError::unsupported_media_type(format!(
                "a body must be application/json, not {kind:?}"
            ))),
            None if has_body => Err(ApiError::unsupported_media_type(
                "a body must be application/json: send Content-Type: application/json",
            )),
            _ => Ok(()),
        }
    }

    /// Whether `host` is loopback by name or address, at the page's port.
    fn is_loopback_host(&self, host: &str) -> bool {
        let Ok(authority) = host.parse::<Authority>() else {
            return false;
        };
        let name = authority.host();
        let loopback = name.eq_ignore_ascii_case("localhost")
            || name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        loopback && authority.port_u16().unwrap_or(80) == self.address.port()
    }
}

/// A header as text; one that is not text is refused rather than skipped.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    headers
        .get(name)
        .map(|value| {
            value
                .to_str()
                .map_err(|_| ApiError::bad_request(format!("the {name} header is not text")))
        })
        .transpose()
}

/// `application/json`, with parameters (`; charset=utf-8`) or not, in any case.
fn is_json(kind: &str) -> bool {
    kind.split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const LOOPBACK: Guard = Guard {
        address: SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8088),
    };

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        headers
    }

    fn status(guard: Guard, method: Method, pairs: &[(&'static str, &'static str)]) -> u16 {
        match guard.check(&method, &headers(pairs)) {
            Ok(()) => 200,
            Err(error) => error.status().as_u16(),
        }
    }

    #[test]
    fn loopback_names_at_the_pages_port_pass_and_a_rebound_name_or_other_port_is_refused() {
        for host in [
            "127.0.0.1:8088",
            "localhost:8088",
            "[::1]:8088",
            "LocalHost:8088",
        ] {
            assert_eq!(
                status(LOOPBACK, Method::GET, &[("host", host)]),
                200,
                "{host}"
            );
        }
        for host in [
            "evil.example:8088",
            "127.0.0.1:9999",
            "127.0.0.1",
            "10.0.0.1:8088",
        ] {
            assert_eq!(
                status(LOOPBACK, Method::GET, &[("host", host)]),
                403,
                "{host}"
            );
        }
        assert_eq!(status(LOOPBACK, Method::GET, &[]), 403, "no Host at all");
        let room = Guard {
            address: "0.0.0.0:8088".parse().unwrap(),
        };
        assert_eq!(
            status(room, Method::GET, &[("host", "lab-pc.local:8088")]),
            200,
            "bound for a room on purpose, any name goes"
        );
    }

    #[test]
    fn a_change_from_another_origin_is_refused_and_from_the_page_or_a_tool_passes() {
        let host = ("host", "127.0.0.1:8088");
        assert_eq!(
            status(
                LOOPBACK,
                Method::POST,
                &[host, ("origin", "http://evil.example")]
            ),
            403
        );
        assert_eq!(
            status(LOOPBACK, Method::POST, &[host, ("origin", "null")]),
            403
        );
        assert_eq!(
            status(
                LOOPBACK,
                Method::POST,
                &[host, ("origin", "http://127.0.0.1:8088")]
            ),
            200
        );
        assert_eq!(status(LOOPBACK, Method::POST, &[host]), 200, "curl");
        assert_eq!(
            status(
                LOOPBACK,
                Method::GET,
                &[host, ("origin", "http://evil.example")]
            ),
            200,
            "reading is not changing; the Host rule keeps rebound names out"
        );
    }

    #[test]
    fn a_change_with_a_body_must_be_json_and_a_foreign_content_type_is_refused_even_empty() {
        let host = ("host", "127.0.0.1:8088");
        let json = ("content-type", "application/json; charset=utf-8");
        assert_eq!(
            status(
                LOOPBACK,
                Method::POST,
                &[host, json, ("content-length", "9")]
            ),
            200
        );
        for kind in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ] {
            assert_eq!(
                status(
                    LOOPBACK,
                    Method::POST,
                    &[host, ("content-type", kind), ("content-length", "0")]
                ),
                415,
                "{kind}"
            );
        }
        assert_eq!(
            status(LOOPBACK, Method::PUT, &[host, ("content-length", "9")]),
            415,
            "a body with no type"
        );
        assert_eq!(
            status(LOOPBACK, Method::DELETE, &[host, ("content-length", "0")]),
            200,
            "no body, no type: curl -X DELETE"
        );
    }
}
