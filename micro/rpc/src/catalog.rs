//! `catalog` over HTTP.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::Method;
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::DomainResult;
use domain::catalog::{Catalog, Product, ProductFilter, ProductId, ProductPage};

use api::ApiError;
use api::extract::{ApiJson, ApiPath};

use crate::trust::{GATEWAY, ORDERS, Rule};
use crate::upstream::{Idempotency, Upstream};

/// Who may call each route below (checked by `crate::inbound`; a route without a rule
/// serves no one).
pub const ACCESS: &[Rule] = &[
    Rule::new(Method::POST, "/internal/catalog/search", &[GATEWAY]),
    Rule::new(Method::GET, "/internal/catalog/products/{id}", &[GATEWAY]),
    Rule::new(Method::POST, "/internal/catalog/batch", &[GATEWAY, ORDERS]),
];

/// The gateway lists, searches and reads products for the public API; `orders` reads the
/// products in a cart (the batch) to price a checkout.
pub fn routes(catalog: Arc<dyn Catalog>) -> Router {
    Router::new()
        .route("/internal/catalog/search", post(search))
        .route("/internal/catalog/products/{id}", get(product))
        .route("/internal/catalog/batch", post(batch))
        .with_state(catalog)
}

async fn search(
    State(catalog): State<Arc<dyn Catalog>>,
    ApiJson(filter): ApiJson<ProductFilter>,
) -> Result<Json<ProductPage>, ApiError> {
    Ok(Json(catalog.list(&filter).await?))
}

async fn product(
    State(catalog): State<Arc<dyn Catalog>>,
    ApiPath(id): ApiPath<ProductId>,
) -> Result<Json<Product>, ApiError> {
    Ok(Json(catalog.get(id).await?))
}

/// Bodies are JSON objects everywhere (the extractor insists), so the ids travel wrapped.
#[derive(serde::Serialize, serde::Deserialize)]
struct Batch {
    ids: Vec<ProductId>,
}

async fn batch(
    State(catalog): State<Arc<dyn Catalog>>,
    ApiJson(batch): ApiJson<Batch>,
) -> Result<Json<Vec<Product>>, ApiError> {
    Ok(Json(catalog.get_many(&batch.ids).await?))
}

pub struct CatalogClient(pub Upstream);

#[async_trait]
impl Catalog for CatalogClient {
    async fn list(&self, filter: &ProductFilter) -> DomainResult<ProductPage> {
        self.0
            .call(
                Method::POST,
                "/internal/catalog/search",
                Some(filter),
                Idempotency::Idempotent,
            )
            .await
    }

    async fn get(&self, id: ProductId) -> DomainResult<Product> {
        self.0
            .call(
                Method::GET,
                &format!("/internal/catalog/products/{id}"),
                None::<&()>,
                Idempotency::Idempotent,
            )
            .await
    }

    async fn get_many(&self, ids: &[ProductId]) -> DomainResult<Vec<Product>> {
        self.0
            .call(
                Method::POST,
                "/internal/catalog/batch",
                Some(&Batch { ids: ids.to_vec() }),
                Idempotency::Idempotent,
            )
            .await
    }
}
