//! The one place where a domain error becomes an HTTP answer, and where an HTTP answer
//! becomes a domain error again.
//!
//! Both directions live here so they cannot drift apart: a service answers with `status`
//! and `ErrorBody::of`, and the client that called it (`micro-rpc`, the gateway's admin
//! fan-out) rebuilds the same variant with `ErrorBody::into_error`, so a 404 raised in a
//! service stays a 404 at the gateway.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::DomainError;
use serde::{Deserialize, Serialize};

/// A domain error on its way out of a handler.
#[derive(Debug)]
pub struct ApiError(pub DomainError);

/// The wire shape of every error: `{"error":{"code":"...","message":"..."}}`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// The HTTP status of a domain meaning.
pub fn status(error: &DomainError) -> StatusCode {
    match error {
        DomainError::BadRequest(_) => StatusCode::BAD_REQUEST,
        DomainError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        DomainError::Forbidden(_) => StatusCode::FORBIDDEN,
        DomainError::NotFound(_) => StatusCode::NOT_FOUND,
        DomainError::Conflict(_) => StatusCode::CONFLICT,
        DomainError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        DomainError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        DomainError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        DomainError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ErrorBody {
    /// The body a client sees for `error`: internals are replaced by a generic sentence.
    pub fn of(error: &DomainError) -> ErrorBody {
        let message = match error {
            DomainError::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        };
        ErrorBody {
            error: ErrorDetail {
                code: error.code().to_owned(),
                message,
            },
        }
    }

    /// The variant this body was answered for, with its message. The code decides; a code
    /// this build does not know (a newer peer, or a non-domain code such as
    /// `method_not_allowed`) falls back on the status, the inverse of [`status`].
    pub fn into_error(self, status: StatusCode) -> DomainError {
        let message = self.error.message;
        match self.error.code.as_str() {
            "bad_request" => DomainError::BadRequest(message),
            "unauthenticated" => DomainError::Unauthenticated(message),
            "forbidden" => DomainError::Forbidden(message),
            "not_found" => DomainError::NotFound(message),
            "conflict" => DomainError::Conflict(message),
            "payload_too_large" => DomainError::PayloadTooLarge(message),
            "invalid" => DomainError::Invalid(message),
            "unavailable" => DomainError::Unavailable(message),
            "internal" => DomainError::Internal(message),
            _ => from_status(status, message),
        }
    }
}

/// The meaning a bare status stands for; anything the shop never answers is internal.
fn from_status(status: StatusCode, message: String) -> DomainError {
    match status {
        StatusCode::BAD_REQUEST => DomainError::BadRequest(message),
        StatusCode::UNAUTHORIZED => DomainError::Unauthenticated(message),
        StatusCode::FORBIDDEN => DomainError::Forbidden(message),
        StatusCode::NOT_FOUND => DomainError::NotFound(message),
        StatusCode::CONFLICT => DomainError::Conflict(message),
        StatusCode::PAYLOAD_TOO_LARGE => DomainError::PayloadTooLarge(message),
        StatusCode::UNPROCESSABLE_ENTITY => DomainError::Invalid(message),
        StatusCode::SERVICE_UNAVAILABLE => DomainError::Unavailable(message),
        _ => DomainError::Internal(message),
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> ApiError {
        ApiError(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status(&self.0);
        if status.is_server_error() {
            // Logged once, here, where the request is answered; the body never carries it.
            tracing::warn!(error.code = self.0.code(), error.message = %self.0, "request failed");
        }
        (status, Json(ErrorBody::of(&self.0))).into_response()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn every_variant() -> [DomainError; 9] {
        [
            DomainError::BadRequest("a".into()),
            DomainError::Unauthenticated("a".into()),
            DomainError::Forbidden("a".into()),
            DomainError::NotFound("a".into()),
            DomainError::Conflict("a".into()),
            DomainError::PayloadTooLarge("a".into()),
            DomainError::Invalid("a".into()),
            DomainError::Unavailable("a".into()),
            DomainError::Internal("a".into()),
        ]
    }

    #[test]
    fn every_variant_survives_a_round_trip_through_its_status_and_body() {
        for error in every_variant() {
            let mut body = ErrorBody::of(&error);
            // Internal messages are replaced on the wire; the variant must survive anyway.
            body.error.message = "a".into();
            assert_eq!(body.into_error(status(&error)), error);
        }
    }

    #[test]
    fn every_variant_survives_a_round_trip_through_its_status_alone() {
        for error in every_variant() {
            let unknown_code = ErrorBody {
                error: ErrorDetail {
                    code: "from_a_newer_peer".into(),
                    message: "a".into(),
                },
            };
            assert_eq!(unknown_code.into_error(status(&error)), error);
        }
    }

    #[test]
    fn internal_errors_never_reach_the_wire() {
        let body = ErrorBody::of(&DomainError::Internal(
            "sqlx: pool timed out at db.rs:42".into(),
        ));
        assert_eq!(body.error.message, "internal error");
        assert_eq!(body.error.code, "internal");
    }
}
