//! `inventory` over HTTP. Reservation ids are chosen by the caller, so every call here is
//! idempotent and may be retried.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::Method;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use domain::DomainResult;
use domain::catalog::ProductId;
use domain::inventory::{Inventory, Reservation, StockLine};
use serde::{Deserialize, Serialize};

use api::ApiError;
use api::extract::{ApiJson, ApiPath};

use crate::trust::{GATEWAY, ORDERS, Rule};
use crate::upstream::{Idempotency, Upstream};

#[derive(Serialize, Deserialize)]
struct Available {
    available: i64,
}

#[derive(Serialize, Deserialize)]
struct Reserve {
    lines: Vec<StockLine>,
    ttl_ms: i64,
}

/// Who may call each route below (checked by `crate::inbound`; a route without a rule
/// serves no one).
pub const ACCESS: &[Rule] = &[
    Rule::new(
        Method::GET,
        "/internal/inventory/stock/{product_id}",
        &[GATEWAY],
    ),
    Rule::new(
        Method::PUT,
        "/internal/inventory/reservations/{id}",
        &[ORDERS],
    ),
    Rule::new(
        Method::POST,
        "/internal/inventory/reservations/{id}/commit",
        &[ORDERS],
    ),
    Rule::new(
        Method::POST,
        "/internal/inventory/reservations/{id}/release",
        &[ORDERS],
    ),
];

/// The gateway reads availability for the product page; reservations are the saga's, so
/// only `orders` reserves, commits and releases stock.
pub fn routes(inventory: Arc<dyn Inventory>) -> Router {
    Router::new()
        .route("/internal/inventory/stock/{product_id}", get(available))
        .route("/internal/inventory/reservations/{id}", put(reserve))
        .route("/internal/inventory/reservations/{id}/commit", post(commit))
        .route(
            "/internal/inventory/reservations/{id}/release",
            post(release),
        )
        .with_state(inventory)
}

async fn available(
    State(inventory): State<Arc<dyn Inventory>>,
    ApiPath(product_id): ApiPath<ProductId>,
) -> Result<Json<Available>, ApiError> {
    Ok(Json(Available {
        available: inventory.available(product_id).await?,
    }))
}

async fn reserve(
    State(inventory): State<Arc<dyn Inventory>>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Reserve>,
) -> Result<Json<Reservation>, ApiError> {
    Ok(Json(
        inventory.reserve(&id, &body.lines, body.ttl_ms).await?,
    ))
}

async fn commit(
    State(inventory): State<Arc<dyn Inventory>>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Reservation>, ApiError> {
    Ok(Json(inventory.commit(&id).await?))
}

async fn release(
    State(inventory): State<Arc<dyn Inventory>>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Reservation>, ApiError> {
    Ok(Json(inventory.release(&id).await?))
}

pub struct InventoryClient(pub Upstream);

#[async_trait]
impl Inventory for InventoryClient {
    async fn available(&self, product_id: ProductId) -> DomainResult<i64> {
        let path = format!("/internal/inventory/stock/{product_id}");
        let answer: Available = self
            .0
            .call(Method::GET, &path, None::<&()>, Idempotency::Idempotent)
            .await?;
        Ok(answer.available)
    }

    async fn reserve(
        &self,
        reservation_id: &str,
        lines: &[StockLine],
        ttl_ms: i64,
    ) -> DomainResult<Reservation> {
        let path = format!("/internal/inventory/reservations/{reservation_id}");
        let body = Reserve {
            lines: lines.to_vec(),
            ttl_ms,
        };
        self.0
            .call(Method::PUT, &path, Some(&body), Idempotency::Idempotent)
            .await
    }

    async fn commit(&self, reservation_id: &str) -> DomainResult<Reservation> {
        let path = format!("/internal/inventory/reservations/{reservation_id}/commit");
        self.0
            .call(Method::POST, &path, None::<&()>, Idempotency::Idempotent)
            .await
    }

    async fn release(&self, reservation_id: &str) -> DomainResult<Reservation> {
        let path = format!("/internal/inventory/reservations/{reservation_id}/release");
        self.0
            .call(Method::POST, &path, None::<&()>, Idempotency::Idempotent)
            .await
    }
}
