//! The one domain error enum: a meaning, never a transport detail.
//!
//! It is mapped to HTTP in exactly one place (`api::error`), and a remote client maps a
//! status and code back to the same variant, so a 404 raised in a service stays a 404.

use serde::{Deserialize, Serialize};

pub type DomainResult<T> = Result<T, DomainError>;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The request could not be read (malformed JSON, a missing header): 400.
    #[error("{0}")]
    BadRequest(String),
    /// No valid credentials: 401.
    #[error("{0}")]
    Unauthenticated(String),
    /// Valid credentials, not allowed: 403.
    #[error("{0}")]
    Forbidden(String),
    /// The thing does not exist, or is not yours to see: 404.
    #[error("{0}")]
    NotFound(String),
    /// The request clashes with the current state (email taken, out of stock): 409.
    #[error("{0}")]
    Conflict(String),
    /// The body was too large: 413.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Well-formed but breaks a rule (validation, idempotency key reused): 422.
    #[error("{0}")]
    Invalid(String),
    /// A dependency is down, timed out, or a fault is switched on: 503.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or a broken invariant; the message stays in the logs, never on the wire: 500.
    #[error("{0}")]
    Internal(String),
}

impl DomainError {
    /// The stable, machine-readable code carried in every error body.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::BadRequest(_) => "bad_request",
            DomainError::Unauthenticated(_) => "unauthenticated",
            DomainError::Forbidden(_) => "forbidden",
            DomainError::NotFound(_) => "not_found",
            DomainError::Conflict(_) => "conflict",
            DomainError::PayloadTooLarge(_) => "payload_too_large",
            DomainError::Invalid(_) => "invalid",
            DomainError::Unavailable(_) => "unavailable",
            DomainError::Internal(_) => "internal",
        }
    }

    /// The HTTP status for this meaning (kept here so clients can invert it).
    pub fn status(&self) -> u16 {
        match self {
            DomainError::BadRequest(_) => 400,
            DomainError::Unauthenticated(_) => 401,
            DomainError::Forbidden(_) => 403,
            DomainError::NotFound(_) => 404,
            DomainError::Conflict(_) => 409,
            DomainError::PayloadTooLarge(_) => 413,
            DomainError::Invalid(_) => 422,
            DomainError::Unavailable(_) => 503,
            DomainError::Internal(_) => 500,
        }
    }

    /// Rebuilds the variant from a code received over the network.
    pub fn from_code(code: &str, message: String) -> DomainError {
        match code {
            "bad_request" => DomainError::BadRequest(message),
            "unauthenticated" => DomainError::Unauthenticated(message),
            "forbidden" => DomainError::Forbidden(message),
            "not_found" => DomainError::NotFound(message),
            "conflict" => DomainError::Conflict(message),
            "payload_too_large" => DomainError::PayloadTooLarge(message),
            "invalid" => DomainError::Invalid(message),
            "unavailable" => DomainError::Unavailable(message),
            _ => DomainError::Internal(message),
        }
    }

    /// The message a client may see: internals are replaced by a generic sentence.
    pub fn public_message(&self) -> String {
        match self {
            DomainError::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.public_message(),
            },
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_survives_a_round_trip_through_its_code() {
        let all = [
            DomainError::BadRequest("a".into()),
            DomainError::Unauthenticated("a".into()),
            DomainError::Forbidden("a".into()),
            DomainError::NotFound("a".into()),
            DomainError::Conflict("a".into()),
            DomainError::PayloadTooLarge("a".into()),
            DomainError::Invalid("a".into()),
            DomainError::Unavailable("a".into()),
            DomainError::Internal("a".into()),
        ];
        for error in all {
            assert_eq!(DomainError::from_code(error.code(), "a".into()), error);
        }
    }

    #[test]
    fn internal_errors_never_reach_the_wire() {
        let body = DomainError::Internal("sqlx: pool timed out at db.rs:42".into()).body();
        assert_eq!(body.error.message, "internal error");
    }
}
