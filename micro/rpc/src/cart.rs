//! `cart` over HTTP.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::Method;
use axum::routing::{delete, get};
use axum::{Json, Router};
use domain::DomainResult;
use domain::cart::{Cart, CartLine, SetQuantity};
use domain::catalog::ProductId;
use domain::users::UserId;

use api::ApiError;
use api::extract::{ApiJson, ApiPath};

use crate::trust::{GATEWAY, ORDERS, Rule};
use crate::upstream::{Idempotency, Upstream};

/// Who may call each route below (checked by `crate::inbound`; a route without a rule
/// serves no one).
pub const ACCESS: &[Rule] = &[
    Rule::new(Method::GET, "/internal/cart/{user_id}", &[GATEWAY, ORDERS]),
    Rule::new(Method::DELETE, "/internal/cart/{user_id}", &[ORDERS]),
    Rule::new(
        Method::DELETE,
        "/internal/cart/{user_id}/items/{product_id}",
        &[GATEWAY],
    ),
    Rule::new(
        Method::PUT,
        "/internal/cart/{user_id}/items/{product_id}",
        &[GATEWAY],
    ),
];

/// The gateway reads and edits a user's cart for the public API; `orders` reads it to check
/// out and clears it once the order is confirmed. Nobody else reaches a cart.
pub fn routes(cart: Arc<dyn Cart>) -> Router {
    Router::new()
        .route("/internal/cart/{user_id}", get(lines))
        .route("/internal/cart/{user_id}", delete(clear))
        .route(
            "/internal/cart/{user_id}/items/{product_id}",
            delete(remove).put(set_quantity),
        )
        .with_state(cart)
}

async fn lines(
    State(cart): State<Arc<dyn Cart>>,
    ApiPath(user_id): ApiPath<UserId>,
) -> Result<Json<Vec<CartLine>>, ApiError> {
    Ok(Json(cart.lines(user_id).await?))
}

async fn set_quantity(
    State(cart): State<Arc<dyn Cart>>,
    ApiPath((user_id, product_id)): ApiPath<(UserId, ProductId)>,
    ApiJson(body): ApiJson<SetQuantity>,
) -> Result<Json<()>, ApiError> {
    // The service checks its own input; it does not trust that the gateway did.
    let quantity = body.validate()?;
    Ok(Json(
        cart.set_quantity(user_id, product_id, quantity).await?,
    ))
}

async fn remove(
    State(cart): State<Arc<dyn Cart>>,
    ApiPath((user_id, product_id)): ApiPath<(UserId, ProductId)>,
) -> Result<Json<()>, ApiError> {
    Ok(Json(cart.remove(user_id, product_id).await?))
}

async fn clear(
    State(cart): State<Arc<dyn Cart>>,
    ApiPath(user_id): ApiPath<UserId>,
) -> Result<Json<()>, ApiError> {
    Ok(Json(cart.clear(user_id).await?))
}

pub struct CartClient(pub Upstream);

#[async_trait]
impl Cart for CartClient {
    async fn lines(&self, user_id: UserId) -> DomainResult<Vec<CartLine>> {
        self.0
            .call(
                Method::GET,
                &format!("/internal/cart/{user_id}"),
                None::<&()>,
                Idempotency::Idempotent,
            )
            .await
    }

    async fn set_quantity(
        &self,
        user_id: UserId,
        product_id: ProductId,
        quantity: i64,
    ) -> DomainResult<()> {
        let path = format!("/internal/cart/{user_id}/items/{product_id}");
        self.0
            .call(
                Method::PUT,
                &path,
                Some(&SetQuantity { quantity }),
                Idempotency::Idempotent,
            )
            .await
    }

    async fn remove(&self, user_id: UserId, product_id: ProductId) -> DomainResult<()> {
        // Not retried: a repeat after a lost answer would say 404 for a removal that happened.
        let path = format!("/internal/cart/{user_id}/items/{product_id}");
        self.0
            .call(
                Method::DELETE,
                &path,
                None::<&()>,
                Idempotency::NotIdempotent,
            )
            .await
    }

    async fn clear(&self, user_id: UserId) -> DomainResult<()> {
        self.0
            .call(
                Method::DELETE,
                &format!("/internal/cart/{user_id}"),
                None::<&()>,
                Idempotency::Idempotent,
            )
            .await
    }
}
