//! `recommendations` over HTTP.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::Method;
use axum::routing::get;
use axum::{Json, Router};
use domain::DomainResult;
use domain::catalog::ProductId;
use domain::recommendations::{Recommendation, Recommendations};

use api::ApiError;
use api::extract::ApiPath;

use crate::trust::{GATEWAY, Rule};
use crate::upstream::{Idempotency, Upstream};

/// Who may call each route below (checked by `crate::inbound`; a route without a rule
/// serves no one).
pub const ACCESS: &[Rule] = &[Rule::new(
    Method::GET,
    "/internal/recommendations/{product_id}",
    &[GATEWAY],
)];

/// The product page's "also bought": the gateway is the one caller.
pub fn routes(recommendations: Arc<dyn Recommendations>) -> Router {
    Router::new()
        .route("/internal/recommendations/{product_id}", get(for_product))
        .with_state(recommendations)
}

async fn for_product(
    State(recommendations): State<Arc<dyn Recommendations>>,
    ApiPath(product_id): ApiPath<ProductId>,
) -> Result<Json<Vec<Recommendation>>, ApiError> {
    Ok(Json(recommendations.for_product(product_id).await?))
}

pub struct RecommendationsClient(pub Upstream);

#[async_trait]
impl Recommendations for RecommendationsClient {
    async fn for_product(&self, product_id: ProductId) -> DomainResult<Vec<Recommendation>> {
        let path = format!("/internal/recommendations/{product_id}");
        self.0
            .call(Method::GET, &path, None::<&()>, Idempotency::Idempotent)
            .await
    }
}
