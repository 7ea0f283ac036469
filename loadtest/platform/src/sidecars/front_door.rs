//! The front door: a small HTTP reverse proxy that owns a deployment's public port while the
//! process behind it changes — the monolith or the gateway during a rolling deploy, or two
//! monolith replicas in the scale experiment. It is the well-known technique (what nginx,
//! HAProxy or a Kubernetes Service with an ingress do): clients keep their connections to
//! the front door; the backend set changes under it.
//!
//! Backends sit behind tower's power-of-two-choices balancer (least requests in flight),
//! fed by a discover stream, so `PUT /backends` on the control port inserts and removes
//! them at run time. A removed backend gets no new request from the moment the change is
//! applied, which is before the next request is dispatched; requests already sent to it
//! finish there while it drains. So a rolling deploy is: start the new process, wait until it
//! is ready, `PUT` the new set, then stop the old process — no request lost.
//! A request whose connection a backend refused is tried on another one (at most
//! [`CONNECT_ATTEMPTS`] in all): it never reached a backend, so it cannot run twice.
//!
//! The control port's `/metrics` counts the responses each backend gave
//! (`front_door_responses_total{backend}`): how the balancer spread the requests over the
//! replicas behind it, which the scale experiment reports.
//!
//! It does not pass the client's address on (no `Forwarded` header): the shop believes no
//! forwarding header at its public port (`api::extract::ClientAddress`), and every client
//! of the lab runs on this machine, so behind the door or not the shop counts failed logins
//! of one address, 127.0.0.1.
//!
//! What it costs: one more loopback hop (a request and a response copied through this
//! process) for both builds alike, and its CPU, which runs on the system under test's
//! cores. The lab puts it in front of both builds only for the experiments that change the
//! public process (deploy, faults, scale), not for the throughput sweep.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use anyhow::Context as _;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::{Json, Router};
use futures::StreamExt as _;
use futures::channel::mpsc;
use futures::future::BoxFuture;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tower::balance::p2c::Balance;
use tower::buffer::Buffer;
use tower::discover::Change;
use tower::load::{CompleteOnResponse, PendingRequests};
use tower::{BoxError, Service, ServiceExt as _};

/// `PUT /backends` body and answer: the whole set of base URLs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backends {
    pub backends: Vec<String>,
}

/// Requests queued for the balancer before callers wait; far above the lab's user counts.
const QUEUE: usize = 4096;
/// How many backends a request whose connection was refused is tried on (see [`never_sent`]).
const CONNECT_ATTEMPTS: usize = 3;
/// The largest request body passed through (the shop's own limit is far lower).
const BODY_LIMIT: usize = 1024 * 1024;

/// One request as it crosses the front door.
#[derive(Clone)]
struct Forward {
    method: Method,
    path_and_query: String,
    headers: HeaderMap,
    body: Bytes,
}

/// One backend: a base URL, the shared HTTP client, and its count of responses.
#[derive(Clone)]
struct Backend {
    url: Arc<str>,
    http: reqwest::Client,
    answered: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabels {
    backend: String,
}

impl Service<Forward> for Backend {
    type Response = Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response, BoxError>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, forward: Forward) -> Self::Future {
        let url = format!("{}{}", self.url, forward.path_and_query);
        let request = self
            .http
            .request(forward.method, url)
            .headers(forward.headers)
            .body(forward.body);
        let answered = self.answered.clone();
        Box::pin(async move {
            let answer = request.send().await?;
            // Any status counts: the backend answered it. A connection that failed did not.
            answered.inc();
            let mut response = Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                if !is_hop_by_hop(name) {
                    response = response.header(name, value);
                }
            }
            let body = answer.bytes().await?;
            Ok(response.body(Body::from(body))?)
        })
    }
}

type Balanced = Buffer<Forward, <Balance<Discovered, Forward> as Service<Forward>>::Future>;
type Discovered = futures::stream::Map<
    mpsc::UnboundedReceiver<Change<String, PendingRequests<Backend>>>,
    fn(
        Change<String, PendingRequests<Backend>>,
    ) -> Result<Change<String, PendingRequests<Backend>>, Infallible>,
>;

#[derive(Clone)]
struct FrontDoor {
    balanced: Balanced,
    changes: mpsc::UnboundedSender<Change<String, PendingRequests<Backend>>>,
    current: Arc<Mutex<BTreeSet<String>>>,
    http: reqwest::Client,
    responses: Family<BackendLabels, Counter>,
    registry: Arc<Registry>,
}

impl FrontDoor {
    fn new(backends: &[String]) -> anyhow::Result<FrontDoor> {
        // Lets an idle connection to a backend go before the backend's server would close
        // it (its `idle_timeout_ms`), so a forwarded request never rides a connection the
        // backend is closing (see `api::server::CLIENT_POOL_IDLE`).
        let http = reqwest::Client::builder()
            .pool_idle_timeout(api::server::CLIENT_POOL_IDLE)
            .build()?;
        let (changes, discovered) = mpsc::unbounded();
        let discovered: Discovered = discovered.map(Ok as fn(_) -> _);
        let balanced = Buffer::new(Balance::new(discovered), QUEUE);
        let responses = Family::<BackendLabels, Counter>::default();
        let mut registry = Registry::default();
        registry.register(
            "front_door_responses",
            "Responses each backend gave (any status) to requests the front door forwarded",
            responses.clone(),
        );
        let front_door = FrontDoor {
            balanced,
            changes,
            current: Arc::new(Mutex::new(BTreeSet::new())),
            http,
            responses,
            registry: Arc::new(registry),
        };
        front_door.replace(backends)?;
        Ok(front_door)
    }

    /// Makes `backends` the whole set: inserts the new, removes the gone.
    fn replace(&self, backends: &[String]) -> anyhow::Result<()> {
        anyhow::ensure!(!backends.is_empty(), "backends must not be empty");
        if let Some(bad) = backends.iter().find(|url| !url.starts_with("http://")) {
            anyhow::bail!("backend {bad:?} is not an http:// base URL");
        }
        let wanted: BTreeSet<String> = backends.iter().cloned().collect();
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        for gone in current.difference(&wanted) {
            let _ = self.changes.unbounded_send(Change::Remove(gone.clone()));
            // Its series goes with it: a spread read from `/metrics` is over the backends
            // there are, not every process a run of deploys ever put behind the door (they
            // would read as replicas that got nothing). One that comes back counts from zero.
            self.responses.remove(&BackendLabels {
                backend: gone.clone(),
            });
        }
        for new in wanted.difference(&current) {
            let answered = self
                .responses
                .get_or_create(&BackendLabels {
                    backend: new.clone(),
                })
                .clone();
            let backend = Backend {
                url: Arc::from(new.trim_end_matches('/')),
                http: self.http.clone(),
                answered,
            };
            let endpoint = PendingRequests::new(backend, CompleteOnResponse::default());
            let _ = self
                .changes
                .unbounded_send(Change::Insert(new.clone(), endpoint));
        }
        *current = wanted;
        Ok(())
    }
}

/// Proxies one request to a backend chosen by the balancer.
async fn forward(State(front_door): State<FrontDoor>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "body too large",
        );
    };
    let mut headers = parts.headers;
    headers.retain_hop_by_hop();
    let forward = Forward {
        method: parts.method,
        path_and_query: parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), ToString::to_string),
        headers,
        body,
    };
    let mut attempts = 0;
    let answer = loop {
        attempts += 1;
        match dispatch(front_door.balanced.clone(), forward.clone()).await {
            Err(failure) if attempts < CONNECT_ATTEMPTS && never_sent(&failure) => continue,
            answer => break answer,
        }
    };
    match answer {
        Ok(response) => response,
        Err(failure) => {
            tracing::warn!(error = ?failure, "front door: backend did not answer");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the backend did not answer",
            )
        }
    }
}

/// A request whose connection was refused never reached a backend, so sending it again (to
/// whichever backend the balancer picks) cannot do anything twice: what nginx's
/// `proxy_next_upstream error` and HAProxy's `retry-on conn-failure` do. It covers a
/// backend that stopped listening before the lab (or a health check) took it out of the
/// set; any other failure is answered as it is.
fn never_sent(failure: &BoxError) -> bool {
    failure
        .downcast_ref::<reqwest::Error>()
        .is_some_and(reqwest::Error::is_connect)
}

/// The balancer's future, boxed at a plain function boundary: used directly inside the
/// handler, its error conversion trips the compiler's higher-ranked lifetime inference.
fn dispatch(
    balanced: Balanced,
    forward: Forward,
) -> BoxFuture<'static, Result<Response, BoxError>> {
    Box::pin(balanced.oneshot(forward))
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    (status, Json(body)).into_response()
}

/// Connection-level headers a proxy must not pass on (RFC 9110, section 7.6.1).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TRANSFER_ENCODING
        || name == header::CONTENT_LENGTH
        || name == header::HOST
        || name == header::UPGRADE
        || name == header::TE
        || name == header::TRAILER
        || name == header::PROXY_AUTHORIZATION
        || name.as_str() == "keep-alive"
}

trait RetainHopByHop {
    fn retain_hop_by_hop(&mut self);
}

impl RetainHopByHop for HeaderMap {
    fn retain_hop_by_hop(&mut self) {
        let names: Vec<HeaderName> = self
            .keys()
            .filter(|name| is_hop_by_hop(name))
            .cloned()
            .collect();
        for name in names {
            self.remove(name);
        }
    }
}

async fn replace(
    State(front_door): State<FrontDoor>,
    api::extract::ApiJson(backends): api::extract::ApiJson<Backends>,
) -> Response {
    match front_door.replace(&backends.backends) {
        Ok(()) => Json(backends).into_response(),
        Err(refused) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            &refused.to_string(),
        ),
    }
}

/// The responses per backend, in the Prometheus text format (as every shop process's).
async fn metrics(State(front_door): State<FrontDoor>) -> Response {
    let mut openmetrics = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut openmetrics, &front_door.registry);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        api::metrics::openmetrics_to_text(&openmetrics),
    )
        .into_response()
}

async fn list(State(front_door): State<FrontDoor>) -> Json<Backends> {
    let current = front_door.current.lock().unwrap_or_else(|p| p.into_inner());
    Json(Backends {
        backends: current.iter().cloned().collect(),
    })
}

/// Serves the front door on `port` (public) and a control port until SIGTERM/SIGINT; prints
/// both addresses (the supervisor reads them).
pub async fn run(port: u16, control_port: u16, backends: &[String]) -> anyhow::Result<()> {
    api::telemetry::init("text");
    let front_door = FrontDoor::new(backends)?;
    let public = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("bind the front door on port {port}"))?;
    let control = tokio::net::TcpListener::bind(("127.0.0.1", control_port))
        .await
        .context("bind the front door's control port")?;
    let public_router = Router::new()
        .fallback(forward)
        .with_state(front_door.clone());
    let control_router = Router::new()
        .route("/backends", put(replace).get(list))
        .route("/metrics", axum::routing::get(metrics))
        .route("/health", axum::routing::get(|| async { "ok" }))
        .route("/ready", axum::routing::get(|| async { "ok" }))
        // The lab's null endpoint: an HTTP server on the shop's cores that does nothing.
        // Calibrates the generator's ceiling and the price of a loopback round trip.
        .route(
            "/null",
            axum::routing::get(|| async { StatusCode::NO_CONTENT }),
        )
        .with_state(front_door);
    println!(
        "shoplab front-door admin on http://{}",
        control.local_addr()?
    );
    println!(
        "shoplab front-door listening on http://{}",
        public.local_addr()?
    );
    // One signal, two servers: a watch channel lets both hear it. Both hold their clients
    // to the shop's connection limits (the defaults of `api::Settings`): the public port
    // faces the same callers the monolith and the gateway do.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut stop_rx = stop_rx.clone();
        async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        }
    };
    tokio::spawn(async move {
        api::server::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let limits = api::server::Limits::default();
    futures::future::try_join(
        api::server::serve(public, public_router, stopped(), limits),
        api::server::serve(control, control_router, stopped(), limits),
    )
    .await?;
    Ok(())
}
