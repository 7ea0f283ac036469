//! The admin API: seed/reset, the audit snapshot, in-process faults. Every route needs
//! `Authorization: Bearer <admin token>`; the gateway keeps these off its public port.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::DomainError;
use domain::admin::{Admin, Audit, ResetRequest, ResetSummary};
use domain::faults::{ActiveFault, FaultRequest, Faults};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::ApiError;
use crate::extract::ApiJson;

#[derive(Clone)]
pub struct AdminState {
    pub admin: Arc<dyn Admin>,
    pub faults: Faults,
    pub token: Arc<str>,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FaultList {
    pub items: Vec<ActiveFault>,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Cleared {
    pub cleared: usize,
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/admin/reset", post(reset))
        .route("/admin/audit", get(audit))
        .route(
            "/admin/faults",
            post(inject_fault).get(list_faults).delete(clear_faults),
        )
        .route_layer(middleware::from_fn_with_state(
            state.token.clone(),
            require_token,
        ))
        .with_state(state)
}

/// Middleware: the request must carry `Authorization: Bearer <token>` (the state), or it is
/// answered 401 without reaching the handler. Every admin surface uses this one check.
pub async fn require_token(
    State(token): State<Arc<str>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let presented = crate::extract::bearer_token(&parts).unwrap_or_default();
    if !matches(presented, &token) {
        return Err(ApiError(DomainError::Unauthenticated(
            "admin token required".into(),
        )));
    }
    Ok(next.run(Request::from_parts(parts, body)).await)
}

/// Middleware: as [`require_token`], for a route that more than one token opens (`/metrics`:
/// the metrics token and the admin token).
pub async fn require_one_of(
    State(tokens): State<Arc<[Arc<str>]>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let presented = crate::extract::bearer_token(&parts).unwrap_or_default();
    // Every token is compared, so the time taken does not say which one was near.
    let any = tokens
        .iter()
        .fold(false, |any, token| matches(presented, token) | any);
    if !any {
        return Err(ApiError(DomainError::Unauthenticated(
            "metrics token or admin token required".into(),
        )));
    }
    Ok(next.run(Request::from_parts(parts, body)).await)
}

/// Whether `presented` is `token`; constant-time, so the comparison does not leak how much
/// of a guess was right. An empty token matches nothing.
fn matches(presented: &str, token: &str) -> bool {
    let equal: bool = presented.as_bytes().ct_eq(token.as_bytes()).into();
    equal && !token.is_empty()
}

#[utoipa::path(post, path = "/admin/reset", tag = "admin", request_body = ResetRequest,
    responses((status = 200, body = ResetSummary)))]
pub async fn reset(
    State(state): State<AdminState>,
    ApiJson(request): ApiJson<ResetRequest>,
) -> Result<Json<ResetSummary>, ApiError> {
    request.validate()?;
    Ok(Json(state.admin.reset(&request).await?))
}

#[utoipa::path(get, path = "/admin/audit", tag = "admin", responses((status = 200, body = Audit)))]
pub async fn audit(State(state): State<AdminState>) -> Result<Json<Audit>, ApiError> {
    Ok(Json(state.admin.audit().await?))
}

#[utoipa::path(post, path = "/admin/faults", tag = "admin", request_body = FaultRequest,
    responses((status = 201, body = ActiveFault)))]
pub async fn inject_fault(
    State(state): State<AdminState>,
    ApiJson(request): ApiJson<FaultRequest>,
) -> Result<(StatusCode, Json<ActiveFault>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.faults.inject(&request)?)))
}

#[utoipa::path(get, path = "/admin/faults", tag = "admin", responses((status = 200, body = FaultList)))]
pub async fn list_faults(State(state): State<AdminState>) -> Json<FaultList> {
    Json(FaultList {
        items: state.faults.list(),
    })
}

#[utoipa::path(delete, path = "/admin/faults", tag = "admin", responses((status = 200, body = Cleared)))]
pub async fn clear_faults(State(state): State<AdminState>) -> Json<Cleared> {
    Json(Cleared {
        cleared: state.faults.clear(None),
    })
}
