//! The OpenAPI document, generated from the handlers' annotations and served at
//! `GET /api/openapi.json`.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{admin, public};

#[derive(OpenApi)]
#[openapi(
    info(title = "shoplab shop API", description = "The same API on the monolith and the microservices gateway."),
    paths(
        public::register, public::log_in, public::list_products, public::product_detail,
        public::get_cart, public::set_cart_item, public::remove_cart_item,
        public::checkout, public::list_orders, public::get_order,
        admin::reset, admin::audit, admin::inject_fault, admin::list_faults, admin::clear_faults,
    ),
    modifiers(&BearerAuth),
    tags((name = "admin", description = "Needs the admin token; not reachable through the gateway's public port."))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

pub fn router() -> Router {
    let document = ApiDoc::openapi();
    Router::new().route(
        "/api/openapi.json",
        get(move || async move { Json(document.clone()) }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_documents_its_429_with_retry_after() {
        let document = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let too_many = &document["paths"]["/api/sessions"]["post"]["responses"]["429"];
        assert!(too_many.is_object(), "no 429 on POST /api/sessions");
        assert!(
            too_many["headers"]["Retry-After"].is_object(),
            "the 429 does not document Retry-After: {too_many}"
        );
    }
}
