//! `payments` over HTTP. Charges are keyed by the caller's idempotency key and refunds by
//! the charge, so both may be retried.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::Method;
use axum::routing::{post, put};
use axum::{Json, Router};
use domain::DomainResult;
use domain::payments::{Charge, Payments, Refund};
use domain::users::UserId;
use serde::{Deserialize, Serialize};

use api::ApiError;
use api::extract::{ApiJson, ApiPath};

use crate::trust::{ORDERS, Rule};
use crate::upstream::{Idempotency, Upstream};

#[derive(Serialize, Deserialize)]
struct ChargeRequest {
    user_id: UserId,
    amount_cents: i64,
}

/// Who may call each route below (checked by `crate::inbound`; a route without a rule
/// serves no one).
pub const ACCESS: &[Rule] = &[
    Rule::new(
        Method::PUT,
        "/internal/payments/charges/{idempotency_key}",
        &[ORDERS],
    ),
    Rule::new(
        Method::POST,
        "/internal/payments/charges/{charge_id}/refund",
        &[ORDERS],
    ),
];

/// Charges and refunds are the saga's steps: only `orders` makes them.
pub fn routes(payments: Arc<dyn Payments>) -> Router {
    Router::new()
        .route("/internal/payments/charges/{idempotency_key}", put(charge))
        .route(
            "/internal/payments/charges/{charge_id}/refund",
            post(refund),
        )
        .with_state(payments)
}

async fn charge(
    State(payments): State<Arc<dyn Payments>>,
    ApiPath(idempotency_key): ApiPath<String>,
    ApiJson(body): ApiJson<ChargeRequest>,
) -> Result<Json<Charge>, ApiError> {
    Ok(Json(
        payments
            .charge(&idempotency_key, body.user_id, body.amount_cents)
            .await?,
    ))
}

async fn refund(
    State(payments): State<Arc<dyn Payments>>,
    ApiPath(charge_id): ApiPath<String>,
) -> Result<Json<Refund>, ApiError> {
    Ok(Json(payments.refund(&charge_id).await?))
}

pub struct PaymentsClient(pub Upstream);

#[async_trait]
impl Payments for PaymentsClient {
    async fn charge(
        &self,
        idempotency_key: &str,
        user_id: UserId,
        amount_cents: i64,
    ) -> DomainResult<Charge> {
        let path = format!("/internal/payments/charges/{idempotency_key}");
        let body = ChargeRequest {
            user_id,
            amount_cents,
        };
        self.0
            .call(Method::PUT, &path, Some(&body), Idempotency::Idempotent)
            .await
    }

    async fn refund(&self, charge_id: &str) -> DomainResult<Refund> {
        let path = format!("/internal/payments/charges/{charge_id}/refund");
        self.0
            .call(Method::POST, &path, None::<&()>, Idempotency::Idempotent)
            .await
    }
}
