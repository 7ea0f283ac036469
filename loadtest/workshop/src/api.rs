//! The workshop's HTTP face: the page and its assets (embedded in the binary, so it works
//! offline), the JSON API every button of the page calls (docs/workshop.md documents it
//! with curl examples), and the event stream of ticks. Bad input is a 4xx with the shop's
//! error body `{"error":{"code":"...","message":"..."}}`; nothing a client sends panics.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use futures::Stream;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::actions::{self, Action};
use super::error::ApiError;
use super::guard::{self, Guard};
use super::load;
use super::picker;
use super::state::{LoadStatus, Workshop, lock, shopfront};
use loadtest_check::check;
use loadtest_results::history::CHECKOUT;

const PAGE: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/workshop.js");
const STYLE: &str = include_str!("../assets/workshop.css");

/// How long the checker waits for checkouts in flight to settle before it audits.
const QUIESCENCE: Duration = Duration::from_secs(30);

/// The page, its assets and the API over one workshop listening at `address`, behind the
/// guard that keeps other sites' pages from driving it (`guard`).
pub(crate) fn router(workshop: Arc<Workshop>, address: SocketAddr) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", PAGE) }),
        )
        .route(
            "/assets/workshop.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/assets/workshop.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route("/api/state", get(state))
        .route("/api/faults", get(fault_catalogue))
        .route("/api/stream", get(stream))
        .route("/api/load", post(start_load).delete(stop_load))
        .route(
            "/api/builds/{build}/components/{component}/{action}",
            post(control),
        )
        .route("/api/builds/{build}/topology", put(picker::pick))
        .route("/api/heal", post(heal))
        .route("/api/self-healing", put(self_healing))
        .route("/api/check", post(check_invariants))
        .route("/api/reset", post(reset))
        .fallback(|| async { ApiError::not_found("no such page or API route") })
        .with_state(workshop)
        .layer(axum::middleware::from_fn_with_state(
            Guard { address },
            guard::guard,
        ))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Reads an optional JSON body: empty is `None`; anything else must be JSON of `T`.
pub(crate) fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<Option<T>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(bytes)
        .map(Some)
        .map_err(|error| ApiError::bad_request(error.to_string()))
}

/// The fault catalogue (`domain::faults`): every kind with its layer, what it does and its
/// parameters' defaults and ranges. The page draws its fault controls from it.
async fn fault_catalogue() -> Json<Value> {
    Json(json!({ "faults": domain::faults::catalogue() }))
}

/// Everything a page needs to draw itself before the first tick.
async fn state(State(workshop): State<Arc<Workshop>>) -> Json<Value> {
    let builds: Vec<Value> = workshop
        .labs
        .iter()
        .map(|lab| {
            let identity = lab.identity();
            let url = lab
                .target
                .try_lock()
                .map(|target| target.url().to_owned())
                .unwrap_or_default();
            json!({
                // The lab's name, as control paths and events name it; kept under `build`
                // since the two builds' names are their presets'.
                "build": identity.name,
                "recorded_as": identity.build,
                "topology": picker::describe(&identity.topology),
                "url": url,
                "color": lab.color,
                "series": &*lock(&lab.series),
                "processes": &*lock(&lab.processes),
                "capabilities": &identity.capabilities,
            })
        })
        .collect();
    let load = workshop.load.lock().await.status();
    Json(json!({
        "t_ms": workshop.now_ms(),
        "builds": builds,
        "presets": picker::presets(),
        "events": workshop.events(),
        "load": load,
        "healing": workshop.healing(),
        "max_users_per_build": load::MAX_USERS_PER_BUILD,
    }))
}

/// One tick a second as server-sent events (`event: tick`), until the page goes or the
/// workshop stops.
async fn stream(
    State(workshop): State<Arc<Workshop>>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let ticks = workshop.ticks.subscribe();
    let closed = workshop.closed.subscribe();
    let events = futures::stream::unfold((ticks, closed), |(mut ticks, mut closed)| async move {
        loop {
            let tick = tokio::select! {
                _ = closed.wait_for(|closed| *closed) => None,
                tick = ticks.recv() => Some(tick),
            };
            match tick {
                None => return None,
                Some(Ok(tick)) => {
                    let event = SseEvent::default().event("tick").data(&*tick);
                    return Some((Ok(event), (ticks, closed)));
                }
                // A page that fell behind skips to the newest tick.
                Some(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
                Some(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return None,
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadRequest {
    users_per_build: usize,
}

async fn start_load(
    State(workshop): State<Arc<Workshop>>,
    bytes: Bytes,
) -> Result<Json<LoadStatus>, ApiError> {
    let request: LoadRequest = body(&bytes)?
        .ok_or_else(|| ApiError::invalid("the body must be {\"users_per_build\": N}"))?;
    load::start(&workshop, request.users_per_build)
        .await
        .map(Json)
}

async fn stop_load(State(workshop): State<Arc<Workshop>>) -> Result<Json<LoadStatus>, ApiError> {
    load::stop(&workshop, "stop pressed").await.map(Json)
}

/// `POST /api/builds/{build}/components/{component}/{action}`: `build` is a running
/// topology's name (`monolith`, `micro`, `coarse`, a spec) or `both` (every one). Short controls answer 200 with what they did; deploys, rollbacks,
/// scaling and network faults answer 202 and report in the event log when done.
async fn control(
    State(workshop): State<Arc<Workshop>>,
    Path((build, component, action)): Path<(String, String, String)>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let action_name = action.clone();
    let action = Action::parse(&action, body::<Value>(&bytes)?)?;
    // Everything is checked on every lab before anything is done to any of them.
    let mut aimed = Vec::new();
    for lab_index in workshop.labs_named(&build)? {
        let build = workshop.labs[lab_index].identity().build;
        let aim = actions::aim(build, &component)?;
        actions::check(build, aim, &action)?;
        actions::realized(&workshop.labs[lab_index], &action_name, &action)?;
        aimed.push((lab_index, aim));
    }
    if action.is_long() {
        let names: Vec<String> = aimed
            .iter()
            .map(|(index, aim)| format!("{} {}", workshop.labs[*index].name(), aim.process))
            .collect();
        // Every build is held before anything starts, so a control that cannot run now is a
        // 409 to its caller, never a 202 that fails in the event log (a claim taken on one
        // build is let go when another's is refused).
        let mut claims = Vec::new();
        for ((lab_index, _), name) in aimed.iter().zip(&names) {
            claims.push(
                workshop
                    .claim(*lab_index, &format!("{action_name} of {name}"))
                    .await?,
            );
        }
        for ((lab_index, aim), claim) in aimed.into_iter().zip(claims) {
            let workshop = workshop.clone();
            let action = action.clone();
            tokio::spawn(async move {
                let _claim = claim;
                let lab = &workshop.labs[lab_index];
                let kind = match action {
                    Action::Fault(_) => "fault",
                    Action::Scale => "scale",
                    _ => "deploy",
                };
                match actions::perform(&workshop, lab, aim, action).await {
                    Ok(message) => workshop.event(Some(lab.name()), kind, message),
                    Err(error) => workshop.event(Some(lab.name()), "error", error.message),
                }
            });
        }
        let message = format!("started on {}; see the event log", names.join(" and "));
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "accepted": true, "message": message })),
        )
            .into_response());
    }
    let mut results = Vec::new();
    for (lab_index, aim) in aimed {
        let lab = &workshop.labs[lab_index];
        let message = actions::perform(&workshop, lab, aim, action.clone()).await?;
        let kind = match action {
            Action::Resume => "heal",
            _ => "fault",
        };
        workshop.event(Some(lab.name()), kind, message.clone());
        results.push(json!({ "build": lab.name(), "message": message }));
    }
    Ok(Json(json!({ "results": results })).into_response())
}

/// `POST /api/heal`: every fault, pause and broken link healed, every dead process
/// restarted, on every build.
async fn heal(State(workshop): State<Arc<Workshop>>) -> Result<Json<Value>, ApiError> {
    let mut results = Vec::new();
    for lab in &workshop.labs {
        let done = actions::heal(lab).await?;
        workshop.event(
            Some(lab.name()),
            "heal",
            format!("healed: {}", done.join(", ")),
        );
        results.push(json!({ "build": lab.name(), "done": done }));
    }
    Ok(Json(json!({ "results": results })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HealingRequest {
    enabled: bool,
    delay_ms: Option<u64>,
}

async fn self_healing(
    State(workshop): State<Arc<Workshop>>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let request: HealingRequest = body(&bytes)?.ok_or_else(|| {
        ApiError::invalid("the body must be {\"enabled\": true|false, \"delay_ms\": N}")
    })?;
    if request.delay_ms.is_some_and(|delay| delay > 600_000) {
        return Err(ApiError::invalid("delay_ms must be at most 600000"));
    }
    let healing = {
        let mut healing = lock(&workshop.healing);
        healing.enabled = request.enabled;
        if let Some(delay_ms) = request.delay_ms {
            healing.delay_ms = delay_ms;
        }
        *healing
    };
    workshop.event(
        None,
        "heal",
        format!(
            "self-healing {} (restart after {} ms)",
            if healing.enabled { "on" } else { "off" },
            healing.delay_ms
        ),
    );
    Ok(Json(json!(healing)))
}

/// `POST /api/check`: stops the load (a checkout in flight would be read as half done),
/// waits for the shop to settle, and runs the invariant checker on every build over the
/// audit snapshot and every checkout since the last reset.
async fn check_invariants(State(workshop): State<Arc<Workshop>>) -> Result<Json<Value>, ApiError> {
    if workshop.load.lock().await.status().running {
        load::stop(&workshop, "for the invariant checker").await?;
    }
    let mut results = Vec::new();
    for lab in &workshop.labs {
        // What the sampler has not drained yet belongs to the history too.
        let late = lab.recorder.take();
        lock(&lab.checkouts).extend(
            late.into_iter()
                .filter(|record| record.transaction == CHECKOUT),
        );
        let target = lab.target().await?;
        let (audit, quiescent) = target
            .quiesce(QUIESCENCE)
            .await
            .map_err(|error| ApiError::failed(format!("audit {}: {error:#}", lab.name())))?;
        drop(target);
        let history = lock(&lab.checkouts).clone();
        let report = check(&audit, Some(&history));
        let violated: Vec<&str> = report
            .invariants
            .iter()
            .filter(|invariant| invariant.violations > 0)
            .map(|invariant| invariant.id.as_str())
            .collect();
        let summary = if report.valid {
            format!(
                "invariants I1-I9 hold ({} checkouts, {} orders)",
                history.len(),
                audit.orders.len()
            )
        } else {
            format!("invariants VIOLATED: {}", violated.join(", "))
        };
        workshop.event(Some(lab.name()), "check", summary.clone());
        results.push(json!({
            "build": lab.name(),
            "valid": report.valid,
            "quiescent": quiescent,
            "summary": summary,
            "checkouts": history.len(),
            "report": report,
        }));
    }
    Ok(Json(json!({ "results": results })))
}

/// `POST /api/reset`: stops the load and seeds every build afresh (the checker's history
/// starts again with it).
async fn reset(State(workshop): State<Arc<Workshop>>) -> Result<Json<Value>, ApiError> {
    load::stop(&workshop, "for a reset").await?;
    for lab in &workshop.labs {
        let target = lab.target().await?;
        let summary = target
            .reset(&workshop.settings)
            .await
            .map_err(|error| ApiError::failed(format!("reset {}: {error:#}", lab.name())))?;
        drop(target);
        *lock(&lab.shop) = shopfront(&summary);
        lab.recorder.take();
        lock(&lab.checkouts).clear();
        workshop.event(
            Some(lab.name()),
            "heal",
            format!(
                "data reset: {} products, {} users",
                summary.products, summary.users
            ),
        );
    }
    Ok(Json(json!({ "reset": true })))
}
