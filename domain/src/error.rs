//! The one domain error enum: a meaning, never a transport detail.
//!
//! Each variant has a stable, machine-readable code (`code`), the name of the meaning that
//! logs and metrics carry. Which HTTP status a meaning becomes, the wire body, and the way
//! back from a status and code to the variant all live in one place, `api::error`: this
//! crate knows nothing about HTTP.

pub type DomainResult<T> = Result<T, DomainError>;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The request could not be read (malformed JSON, a missing header).
    #[error("{0}")]
    BadRequest(String),
    /// No valid credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// Valid credentials, not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// The thing does not exist, or is not yours to see.
    #[error("{0}")]
    NotFound(String),
    /// The request clashes with the current state (email taken, out of stock).
    #[error("{0}")]
    Conflict(String),
    /// The body was too large.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Well-formed but breaks a rule (validation, idempotency key reused).
    #[error("{0}")]
    Invalid(String),
    /// Too many attempts of this kind for now (failed logins for one account); try again
    /// after `retry_after_secs`.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    /// A dependency is down, timed out, or a fault is switched on.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or a broken invariant; the message stays in the logs, never on the wire.
    #[error("{0}")]
    Internal(String),
}

impl DomainError {
    /// The stable, machine-readable code of this meaning, carried in every error body.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::BadRequest(_) => "bad_request",
            DomainError::Unauthenticated(_) => "unauthenticated",
            DomainError::Forbidden(_) => "forbidden",
            DomainError::NotFound(_) => "not_found",
            DomainError::Conflict(_) => "conflict",
            DomainError::PayloadTooLarge(_) => "payload_too_large",
            DomainError::Invalid(_) => "invalid",
            DomainError::RateLimited { .. } => "rate_limited",
            DomainError::Unavailable(_) => "unavailable",
            DomainError::Internal(_) => "internal",
        }
    }
}
