//! The one place where a domain error becomes an HTTP answer, and where an HTTP answer
//! becomes a domain error again.
//!
//! Both directions live here so they cannot drift apart: a service answers with `status`
//! and `ErrorBody::of`, and the client that called it (`micro-rpc`, the gateway's admin
//! fan-out) rebuilds the same variant with `ErrorBody::into_error`, so a 404 raised in a
//! service stays a 404 at the gateway.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
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
    /// `rate_limited` only: seconds until a new attempt may succeed, the same number as the
    /// answer's `Retry-After` header. In the body too, so the wait survives a hop between
    /// services along with the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
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
        DomainError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
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
        let retry_after_secs = match error {
            DomainError::RateLimited {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        };
        ErrorBody {
            error: ErrorDetail {
                code: error.code().to_owned(),
                message,
                retry_after_secs,
            },
        }
    }

    /// The variant this body was answered for, with its message. The code decides; a code
    /// this build does not know (a newer peer, or a non-domain code such as
    /// `method_not_allowed`) falls back on the status, the inverse of [`status`].
    pub fn into_error(self, status: StatusCode) -> DomainError {
        let message = self.error.message;
        let retry_after_secs = self.error.retry_after_secs;
        match self.error.code.as_str() {
            "bad_request" => DomainError::BadRequest(message),
            "unauthenticated" => DomainError::Unauthenticated(message),
            "forbidden" => DomainError::Forbidden(message),
            "not_found" => DomainError::NotFound(message),
            "conflict" => DomainError::Conflict(message),
            "payload_too_large" => DomainError::PayloadTooLarge(message),
            "invalid" => DomainError::Invalid(message),
            "rate_limited" => DomainError::RateLimited {
                message,
                retry_after_secs: retry_after_secs.unwrap_or(DEFAULT_RETRY_AFTER_SECS),
            },
            "unavailable" => DomainError::Unavailable(message),
            "internal" => DomainError::Internal(message),
            _ => from_status(status, message),
        }
    }
}

/// The wait assumed for a 429 that did not say how long (a peer without the body's field).
const DEFAULT_RETRY_AFTER_SECS: u64 = 1;

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
        StatusCode::TOO_MANY_REQUESTS => DomainError::RateLimited {
            message,
            retry_after_secs: DEFAULT_RETRY_AFTER_SECS,
        },
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
        let mut response = (status, Json(ErrorBody::of(&self.0))).into_response();
        if let DomainError::RateLimited {
            retry_after_secs, ..
        } = &self.0
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        response
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
            retry_after_secs: None,
        },
    };
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_variant() -> [DomainError; 10] {
        [
            DomainError::BadRequest("a".into()),
            DomainError::Unauthenticated("a".into()),
            DomainError::Forbidden("a".into()),
            DomainError::NotFound("a".into()),
            DomainError::Conflict("a".into()),
            DomainError::PayloadTooLarge("a".into()),
            DomainError::Invalid("a".into()),
            DomainError::RateLimited {
                message: "a".into(),
                retry_after_secs: 1,
            },
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
                    retry_after_secs: None,
                },
            };
            assert_eq!(unknown_code.into_error(status(&error)), error);
        }
    }

    #[test]
    fn a_rate_limited_answer_carries_its_wait_in_the_header_and_back_through_the_body() {
        let error = DomainError::RateLimited {
            message: "too many failed logins".into(),
            retry_after_secs: 42,
        };
        let response = ApiError(error.clone()).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "42");
        let body = ErrorBody::of(&error);
        assert_eq!(body.error.retry_after_secs, Some(42));
        let wire = serde_json::to_string(&body).unwrap();
        let back: ErrorBody = serde_json::from_str(&wire).unwrap();
        assert_eq!(back.into_error(StatusCode::TOO_MANY_REQUESTS), error);
        // Every other error body keeps its two fields only.
        let other =
            serde_json::to_value(ErrorBody::of(&DomainError::NotFound("a".into()))).unwrap();
        assert_eq!(other["error"].as_object().unwrap().len(), 2);
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
