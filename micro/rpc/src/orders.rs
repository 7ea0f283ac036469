//! `orders` over HTTP: checkout, list and read one user's orders.
//!
//! Checkout is not retried by this client. A repeat after a lost answer would be a second
//! request under the same idempotency key — harmless to the data, but whether and when to
//! retry belongs to the public client, which owns the `Idempotency-Key`.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::Method;
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::DomainResult;
use domain::orders::{CheckoutOutcome, CheckoutRequest, Order, OrderId, Orders};
use domain::users::UserId;
use serde::{Deserialize, Serialize};

use api::ApiError;
use api::extract::{ApiJson, ApiPath};

use crate::trust::{GATEWAY, Rule};
use crate::upstream::{Idempotency, Upstream};

/// `POST /internal/orders/checkout` body: who checks out, under which key, with what.
#[derive(Serialize, Deserialize)]
struct Checkout {
    user_id: UserId,
    idempotency_key: String,
    request: CheckoutRequest,
}

/// Who may call each route below (checked by `crate::inbound`; a route without a rule
/// serves no one).
pub const ACCESS: &[Rule] = &[
    Rule::new(Method::POST, "/internal/orders/checkout", &[GATEWAY]),
    Rule::new(Method::GET, "/internal/orders/{user_id}", &[GATEWAY]),
    Rule::new(
        Method::GET,
        "/internal/orders/{user_id}/{order_id}",
        &[GATEWAY],
    ),
];

/// Orders are placed and read for the public API only: the gateway is the one caller.
pub fn routes(orders: Arc<dyn Orders>) -> Router {
    Router::new()
        .route("/internal/orders/checkout", post(checkout))
        .route("/internal/orders/{user_id}", get(list))
        .route("/internal/orders/{user_id}/{order_id}", get(order))
        .with_state(orders)
}

async fn checkout(
    State(orders): State<Arc<dyn Orders>>,
    ApiJson(body): ApiJson<Checkout>,
) -> Result<Json<CheckoutOutcome>, ApiError> {
    // The service checks its own input; it does not trust that the gateway did.
    domain::orders::validate_idempotency_key(&body.idempotency_key)?;
    body.request.validate()?;
    Ok(Json(
        orders
            .checkout(body.user_id, &body.idempotency_key, &body.request)
            .await?,
    ))
}

async fn list(
    State(orders): State<Arc<dyn Orders>>,
    ApiPath(user_id): ApiPath<UserId>,
) -> Result<Json<Vec<Order>>, ApiError> {
    Ok(Json(orders.list(user_id).await?))
}

async fn order(
    State(orders): State<Arc<dyn Orders>>,
    ApiPath((user_id, order_id)): ApiPath<(UserId, OrderId)>,
) -> Result<Json<Order>, ApiError> {
    Ok(Json(orders.get(user_id, order_id).await?))
}

pub struct OrdersClient(pub Upstream);

#[async_trait]
impl Orders for OrdersClient {
    async fn checkout(
        &self,
        user_id: UserId,
        idempotency_key: &str,
        request: &CheckoutRequest,
    ) -> DomainResult<CheckoutOutcome> {
        let body = Checkout {
            user_id,
            idempotency_key: idempotency_key.to_owned(),
            request: request.clone(),
        };
        self.0
            .call(
                Method::POST,
                "/internal/orders/checkout",
                Some(&body),
                Idempotency::NotIdempotent,
            )
            .await
    }

    async fn list(&self, user_id: UserId) -> DomainResult<Vec<Order>> {
        self.0
            .call(
                Method::GET,
                &format!("/internal/orders/{user_id}"),
                None::<&()>,
                Idempotency::Idempotent,
            )
            .await
    }

    async fn get(&self, user_id: UserId, order_id: OrderId) -> DomainResult<Order> {
        self.0
            .call(
                Method::GET,
                &format!("/internal/orders/{user_id}/{order_id}"),
                None::<&()>,
                Idempotency::Idempotent,
            )
            .await
    }
}
