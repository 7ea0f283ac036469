//! `/health`, `/ready`, `/metrics`: what an orchestrator and a scraper ask every process.
//!
//! `/health` and `/ready` answer anyone (an orchestrator's probe carries no credential).
//! `/metrics` needs `Authorization: Bearer <metrics token>` (or the admin token), on every
//! port that serves it, the public ones included: its series name routes, upstream
//! replicas' addresses, pool sizes and error rates, which is reconnaissance for an attacker
//! and nobody else's business. The metrics token opens nothing else, so the credential a
//! scraper holds cannot reset the shop. Prometheus sends it with
//! `authorization: {credentials_file: …}` in its scrape config; the lab sends it on every
//! scrape.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use domain::DomainResult;
use serde_json::json;

use crate::ApiError;
use crate::metrics::Metrics;
use crate::server::Stopping;

/// Whether a process can serve: its database and required dependencies answer.
#[async_trait]
pub trait Readiness: Send + Sync {
    async fn check(&self) -> DomainResult<()>;
}

#[derive(Clone)]
pub struct OpsState {
    pub readiness: Arc<dyn Readiness>,
    pub metrics: Metrics,
    /// Once set, `/ready` answers 503 whatever the dependencies say (the process is
    /// stopping; see [`Stopping`]).
    pub stopping: Stopping,
    /// A bearer token `/metrics` accepts: the process's admin token.
    pub admin_token: Arc<str>,
    /// The other one, which opens `/metrics` only (`Settings::metrics_token`).
    pub metrics_token: Arc<str>,
}

pub fn router(state: OpsState) -> Router {
    let tokens: Arc<[Arc<str>]> =
        Arc::from([state.metrics_token.clone(), state.admin_token.clone()]);
    let scrape = Router::new().route("/metrics", get(metrics)).route_layer(
        axum::middleware::from_fn_with_state(tokens, crate::admin::require_one_of),
    );
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .merge(scrape)
        .with_state(state)
}

/// The process is alive and answering; says nothing about its dependencies.
async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn ready(State(state): State<OpsState>) -> Result<Json<serde_json::Value>, ApiError> {
    if state.stopping.is_set() {
        return Err(domain::DomainError::Unavailable(
            "stopping: this process was told to stop and takes no new work".to_owned(),
        )
        .into());
    }
    state.readiness.check().await?;
    Ok(Json(json!({ "status": "ready" })))
}

/// OpenMetrics for a scraper that asks for it (Prometheus does, in its `Accept`), the text
/// format 0.0.4 for everyone else (promtool, curl, older scrapers).
async fn metrics(State(state): State<OpsState>, headers: HeaderMap) -> impl IntoResponse {
    let wants_openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|accept| accept.contains(OPENMETRICS));
    let (content_type, body) = if wants_openmetrics {
        (
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            state.metrics.encode_openmetrics(),
        )
    } else {
        (
            "text/plain; version=0.0.4; charset=utf-8",
            state.metrics.encode(),
        )
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body)
}

const OPENMETRICS: &str = "application/openmetrics-text";
