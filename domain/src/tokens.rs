//! Signed bearer tokens (HS256 JWT) carrying the user id and an expiry.
//!
//! `users` signs them at log-in; the public router verifies them locally, so in the
//! microservices build the gateway needs no call to `users` per request.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::users::{Session, UserId};
use crate::{DomainError, DomainResult};

#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl_secs: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
}

impl TokenKeys {
    pub fn new(secret: &[u8], ttl_secs: i64) -> TokenKeys {
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl_secs,
        }
    }

    pub fn issue(&self, user_id: UserId) -> DomainResult<Session> {
        let expires_at = crate::now_ms() / 1000 + self.ttl_secs;
        self.issue_expiring_at(user_id, expires_at)
    }

    /// Issues a token with an explicit expiry; tests use it to mint expired tokens.
    pub fn issue_expiring_at(&self, user_id: UserId, expires_at: i64) -> DomainResult<Session> {
        let claims = Claims {
            sub: user_id.to_string(),
            exp: expires_at,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|error| DomainError::Internal(format!("sign token: {error}")))?;
        Ok(Session {
            token,
            expires_at,
            user_id,
        })
    }

    /// The user a token was issued to; `Unauthenticated` when it is forged, malformed or
    /// expired (no leeway: an expired token is expired).
    pub fn verify(&self, token: &str) -> DomainResult<UserId> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(
            |error| match error.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    DomainError::Unauthenticated("token expired".into())
                }
                _ => DomainError::Unauthenticated("invalid token".into()),
            },
        )?;
        data.claims
            .sub
            .parse()
            .map_err(|_| DomainError::Unauthenticated("invalid token".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_with_its_own_secret_only() {
        let keys = TokenKeys::new(b"secret-one", 3600);
        let session = keys.issue(7).unwrap();
        assert_eq!(keys.verify(&session.token).unwrap(), 7);
        let other = TokenKeys::new(b"secret-two", 3600);
        assert!(other.verify(&session.token).is_err());
    }

    #[test]
    fn an_expired_token_is_refused() {
        let keys = TokenKeys::new(b"secret", 3600);
        let expired = keys
            .issue_expiring_at(7, crate::now_ms() / 1000 - 5)
            .unwrap();
        assert_eq!(
            keys.verify(&expired.token),
            Err(DomainError::Unauthenticated("token expired".into()))
        );
    }
}
