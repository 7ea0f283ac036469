//! The public API, identical on the monolith and the gateway.
//!
//! Handlers only compose context calls; the rules live in `domain`. The product page is the
//! one place with fallbacks: availability and recommendations are nice to have, so when
//! their context fails the page still renders (`unknown`, `[]`) — in both builds alike.

use crate::error::ErrorBody;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use domain::cart::{CartItemView, CartView, SetQuantity};
use domain::catalog::{Product, ProductId, ProductPage, ProductQuery};
use domain::inventory::Availability;
use domain::orders::{CheckoutRequest, Order, OrderId, OrderList, validate_idempotency_key};
use domain::recommendations::Recommendation;
use domain::users::{Credentials, Registration, Session, User, UserId};
use domain::{DomainError, Shop};
use serde::{Deserialize, Serialize};

use crate::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, AuthUser, ClientAddress};

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on a checkout answer that replays an earlier one.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The public routes over a shop. Ops and admin routes are mounted beside it by each process.
pub fn router(shop: Shop) -> Router {
    Router::new()
        .route("/api/users", post(register))
        .route("/api/sessions", post(log_in))
        .route("/api/products", get(list_products))
        .route("/api/products/{id}", get(product_detail))
        .route("/api/cart", get(get_cart))
        .route(
            "/api/cart/items/{product_id}",
            put(set_cart_item).delete(remove_cart_item),
        )
        .route("/api/orders", post(checkout).get(list_orders))
        .route("/api/orders/{id}", get(get_order))
        .with_state(shop)
}

/// `GET /api/products/{id}`: the product, how much is left, what else people bought.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProductDetail {
    #[serde(flatten)]
    pub product: Product,
    pub availability: Availability,
    pub recommendations: Vec<Recommendation>,
}

#[utoipa::path(post, path = "/api/users", tag = "users", request_body = Registration,
    responses((status = 201, body = User), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn register(
    State(shop): State<Shop>,
    ApiJson(registration): ApiJson<Registration>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let user = shop.users.register(registration.validate()?).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Logs in. After `login_failure_limit` failed logins for one account (10 by default)
/// within `login_failure_window_ms` of the first (15 minutes), every attempt on that account
/// — a correct password included — answers 429 `rate_limited` until the window ends; a
/// successful login clears the count. The same after `login_failure_limit_per_address`
/// failed logins from one client address (50 by default, whatever the accounts), except
/// that a success neither counts nor clears ([`ClientAddress`] says what the address is).
#[utoipa::path(post, path = "/api/sessions", tag = "users", request_body = Credentials,
    responses((status = 200, body = Session), (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "too many failed logins for this account, or from this address",
            headers(("Retry-After" = u64, description = "seconds until the account's (or the address's) window ends; also `error.retry_after_secs`")))))]
pub async fn log_in(
    State(shop): State<Shop>,
    ClientAddress(from): ClientAddress,
    ApiJson(credentials): ApiJson<Credentials>,
) -> Result<Json<Session>, ApiError> {
    Ok(Json(shop.users.login(&credentials, from).await?))
}

#[utoipa::path(get, path = "/api/products", tag = "catalog", params(ProductQuery),
    responses((status = 200, body = ProductPage), (status = 422, body = ErrorBody)))]
pub async fn list_products(
    State(shop): State<Shop>,
    ApiQuery(query): ApiQuery<ProductQuery>,
) -> Result<Json<ProductPage>, ApiError> {
    let filter = query.validate()?;
    Ok(Json(shop.catalog.list(&filter).await?))
}

#[utoipa::path(get, path = "/api/products/{id}", tag = "catalog", params(("id" = i64, Path)),
    responses((status = 200, body = ProductDetail), (status = 404, body = ErrorBody)))]
pub async fn product_detail(
    State(shop): State<Shop>,
    ApiPath(id): ApiPath<ProductId>,
) -> Result<Json<ProductDetail>, ApiError> {
    let product = shop.catalog.get(id).await?;
    let (available, recommendations) = tokio::join!(
        shop.inventory.available(id),
        shop.recommendations.for_product(id)
    );
    let availability = match available {
        Ok(units) => Availability::from_available(units),
        Err(error) => {
            tracing::debug!(product.id = id, error = %error, "availability fell back to unknown");
            Availability::Unknown
        }
    };
    let recommendations = recommendations.unwrap_or_else(|error| {
        tracing::debug!(product.id = id, error = %error, "recommendations fell back to empty");
        Vec::new()
    });
    Ok(Json(ProductDetail {
        product,
        availability,
        recommendations,
    }))
}

#[utoipa::path(get, path = "/api/cart", tag = "cart", security(("bearer" = [])),
    responses((status = 200, body = CartView), (status = 401, body = ErrorBody)))]
pub async fn get_cart(
    State(shop): State<Shop>,
    AuthUser(user_id): AuthUser,
) -> Result<Json<CartView>, ApiError> {
    Ok(Json(cart_view(&shop, user_id).await?))
}

#[utoipa::path(put, path = "/api/cart/items/{product_id}", tag = "cart", security(("bearer" = [])),
    params(("product_id" = i64, Path)), request_body = SetQuantity,
    responses((status = 200, body = CartView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_cart_item(
    State(shop): State<Shop>,
    AuthUser(user_id): AuthUser,
    ApiPath(product_id): ApiPath<ProductId>,
    ApiJson(body): ApiJson<SetQuantity>,
) -> Result<Json<CartView>, ApiError> {
    let quantity = body.validate()?;
    shop.catalog.get(product_id).await?;
    shop.cart
        .set_quantity(user_id, product_id, quantity)
        .await?;
    Ok(Json(cart_view(&shop, user_id).await?))
}

#[utoipa::path(delete, path = "/api/cart/items/{product_id}", tag = "cart", security(("bearer" = [])),
    params(("product_id" = i64, Path)),
    responses((status = 200, body = CartView), (status = 404, body = ErrorBody)))]
pub async fn remove_cart_item(
    State(shop): State<Shop>,
    AuthUser(user_id): AuthUser,
    ApiPath(product_id): ApiPath<ProductId>,
) -> Result<Json<CartView>, ApiError> {
    shop.cart.remove(user_id, product_id).await?;
    Ok(Json(cart_view(&shop, user_id).await?))
}

/// The cart priced at the catalog's current prices. A product that left the catalog
/// drops out of the view (checkout refuses it the same way).
async fn cart_view(shop: &Shop, user_id: UserId) -> Result<CartView, DomainError> {
    let lines = shop.cart.lines(user_id).await?;
    let ids: Vec<ProductId> = lines.iter().map(|line| line.product_id).collect();
    let products = shop.catalog.get_many(&ids).await?;
    let items: Vec<CartItemView> = lines
        .iter()
        .filter_map(|line| {
            let product = products
                .iter()
                .find(|product| product.id == line.product_id)?;
            Some(CartItemView {
                product_id: line.product_id,
                quantity: line.quantity,
                price_cents: product.price_cents,
                name: product.name.clone(),
            })
        })
        .collect();
    let total_cents = items
        .iter()
        .map(|item| item.quantity * item.price_cents)
        .sum();
    Ok(CartView { items, total_cents })
}

#[utoipa::path(post, path = "/api/orders", tag = "orders", security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "1 to 200 printable ASCII characters; same key + same body = same answer")),
    request_body = CheckoutRequest,
    responses((status = 201, body = Order), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn checkout(
    State(shop): State<Shop>,
    AuthUser(user_id): AuthUser,
    headers: HeaderMap,
    ApiJson(request): ApiJson<CheckoutRequest>,
) -> Result<Response, ApiError> {
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .ok_or_else(|| DomainError::BadRequest("missing Idempotency-Key header".into()))?
        .to_str()
        .map_err(|_| DomainError::BadRequest("Idempotency-Key must be printable ASCII".into()))?;
    validate_idempotency_key(key)?;
    request.validate()?;
    let outcome = shop.orders.checkout(user_id, key, &request).await?;
    let mut response = (StatusCode::CREATED, Json(outcome.order)).into_response();
    if outcome.replayed {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

#[utoipa::path(get, path = "/api/orders", tag = "orders", security(("bearer" = [])),
    responses((status = 200, body = OrderList), (status = 401, body = ErrorBody)))]
pub async fn list_orders(
    State(shop): State<Shop>,
    AuthUser(user_id): AuthUser,
) -> Result<Json<OrderList>, ApiError> {
    Ok(Json(OrderList {
        items: shop.orders.list(user_id).await?,
    }))
}

#[utoipa::path(get, path = "/api/orders/{id}", tag = "orders", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Order), (status = 404, body = ErrorBody)))]
pub async fn get_order(
    State(shop): State<Shop>,
    AuthUser(user_id): AuthUser,
    ApiPath(order_id): ApiPath<OrderId>,
) -> Result<Json<Order>, ApiError> {
    Ok(Json(shop.orders.get(user_id, order_id).await?))
}
