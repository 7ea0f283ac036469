//! The one place where a domain error becomes an HTTP answer.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::DomainError;
use domain::error::{ErrorBody, ErrorDetail};

/// A domain error on its way out of a handler.
#[derive(Debug)]
pub struct ApiError(pub DomainError);

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> ApiError {
        ApiError(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            // Logged once, here, where the request is answered; the body never carries it.
            tracing::warn!(error.code = self.0.code(), error.message = %self.0, "request failed");
        }
        (status, Json(self.0.body())).into_response()
    }
}

/// 404 for paths no route matches, in the shop's error shape.
pub async fn route_not_found() -> ApiError {
    ApiError(DomainError::NotFound("no such route".into()))
}

/// 405 for a known path with the wrong method. Not a domain meaning, so built here.
pub async fn method_not_allowed() -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: "method_not_allowed".into(),
            message: "method not allowed on this route".into(),
        },
    };
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}
