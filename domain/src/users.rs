//! `users`: register, log in (argon2 password hashes), signed bearer tokens.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{DomainError, DomainResult};

mod throttle;

pub use throttle::{Attempt, LoginThrottle, LoginThrottles, ThrottledUsers, address_key};

pub type UserId = i64;

pub const MIN_PASSWORD_CHARS: usize = 8;
/// Argon2 cost grows with input; a cap keeps one request from pinning a core.
pub const MAX_PASSWORD_CHARS: usize = 128;
pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_NAME_CHARS: usize = 100;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
}

/// `POST /api/users` body.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub email: String,
    pub password: String,
    pub name: String,
}

/// A registration that passed validation; the email is trimmed and lowercased.
#[derive(Clone, Debug)]
pub struct ValidRegistration {
    pub email: String,
    pub password: String,
    pub name: String,
}

impl Registration {
    pub fn validate(self) -> DomainResult<ValidRegistration> {
        let email = normalize_email(&self.email);
        if !looks_like_an_email(&email) {
            return Err(DomainError::Invalid("email is not a valid address".into()));
        }
        let password_chars = self.password.chars().count();
        if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&password_chars) {
            return Err(DomainError::Invalid(format!(
                "password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
            )));
        }
        let name = self.name.trim().to_owned();
        let name_chars = name.chars().count();
        if name_chars == 0 || name_chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(DomainError::Invalid(format!(
                "name must be 1 to {MAX_NAME_CHARS} printable characters"
            )));
        }
        Ok(ValidRegistration {
            email,
            password: self.password,
            name,
        })
    }
}

/// `POST /api/sessions` body.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

/// `POST /api/sessions` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    pub token: String,
    /// Seconds since the Unix epoch.
    pub expires_at: i64,
    pub user_id: UserId,
}

pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Deliberately simple: one `@`, a non-empty local part, a dotted domain, no spaces.
/// Real deliverability is the mail server's business, not the shop's.
fn looks_like_an_email(email: &str) -> bool {
    if email.chars().count() > MAX_EMAIL_CHARS
        || email.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| !label.is_empty())
}

/// Hashes a password with argon2id and a fresh salt, in PHC string format.
pub fn hash_password(password: &str) -> DomainResult<String> {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| DomainError::Internal(format!("hash password: {error}")))
}

/// Checks a password against a PHC string; a malformed hash is treated as a mismatch.
pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(phc).is_ok_and(|hash| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

#[async_trait]
pub trait Users: Send + Sync {
    /// `Conflict` when the email is taken.
    async fn register(&self, registration: ValidRegistration) -> DomainResult<User>;
    /// `Unauthenticated` for an unknown email or a wrong password (the same answer for both).
    /// `from` is the client's address where the caller knows it (the process that accepted
    /// the client's connection; see `api::extract::ClientAddress`), for the failed-login
    /// throttle per address; `None` is counted per account only.
    async fn login(
        &self,
        credentials: &Credentials,
        from: Option<std::net::IpAddr>,
    ) -> DomainResult<Session>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(email: &str, password: &str, name: &str) -> Registration {
        Registration {
            email: email.into(),
            password: password.into(),
            name: name.into(),
        }
    }

    #[test]
    fn registration_normalizes_the_email() {
        let valid = registration("  Ada@Example.COM ", "long enough", "Ada")
            .validate()
            .unwrap();
        assert_eq!(valid.email, "ada@example.com");
    }

    #[test]
    fn registration_rejects_bad_emails_short_passwords_and_empty_names() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "a@b@c.de",
        ] {
            assert!(
                registration(bad, "long enough", "Ada").validate().is_err(),
                "{bad}"
            );
        }
        assert!(
            registration("ada@example.com", "short", "Ada")
                .validate()
                .is_err()
        );
        assert!(
            registration("ada@example.com", &"p".repeat(129), "Ada")
                .validate()
                .is_err()
        );
        assert!(
            registration("ada@example.com", "long enough", "  ")
                .validate()
                .is_err()
        );
        assert!(
            registration("ada@example.com", "long enough", &"n".repeat(101))
                .validate()
                .is_err()
        );
    }

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
        assert!(!verify_password("correct horse", "not a phc string"));
    }
}
