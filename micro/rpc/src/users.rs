//! `users` over HTTP.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::Method;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Extension, Json, Router};
use domain::DomainResult;
use domain::users::{Credentials, Registration, Session, User, Users, ValidRegistration};
use serde::{Deserialize, Serialize};

use api::ApiError;
use api::extract::ApiJson;

use crate::trust::{Caller, GATEWAY, Rule};
use crate::upstream::{Idempotency, Upstream};

/// Who may call each route below (checked by `crate::inbound`; a route without a rule
/// serves no one).
pub const ACCESS: &[Rule] = &[
    Rule::new(Method::POST, "/internal/users", &[GATEWAY]),
    Rule::new(Method::POST, "/internal/sessions", &[GATEWAY]),
];

/// Registration and log-in serve the public API: the gateway is the one caller.
pub fn routes(users: Arc<dyn Users>) -> Router {
    Router::new()
        .route("/internal/users", post(register))
        .route("/internal/sessions", post(log_in))
        .with_state(users)
}

async fn register(
    State(users): State<Arc<dyn Users>>,
    ApiJson(registration): ApiJson<Registration>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(users.register(registration.validate()?).await?),
    ))
}

/// `POST /internal/sessions`'s body: the credentials, and the client's address as the
/// gateway saw it (it accepted the client's connection; `users` sees only the gateway's),
/// for the failed-login throttle per address.
///
/// A field of the call rather than a header: it is an argument of this one call, like the
/// email, and the hop's layers, shared by every call, need not know it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogIn {
    email: String,
    password: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_address: Option<IpAddr>,
}

async fn log_in(
    State(users): State<Arc<dyn Users>>,
    Extension(Caller(caller)): Extension<Caller>,
    ApiJson(body): ApiJson<LogIn>,
) -> Result<Json<Session>, ApiError> {
    // Believed from the gateway only, the one process that accepts clients' connections:
    // from any other caller an address could be anyone's choice. The route serves the
    // gateway alone already (`only`); this keeps the rule true if that list grows.
    let from = body.client_address.filter(|_| caller == GATEWAY);
    let credentials = Credentials {
        email: body.email,
        password: body.password,
    };
    Ok(Json(users.login(&credentials, from).await?))
}

pub struct UsersClient(pub Upstream);

#[async_trait]
impl Users for UsersClient {
    async fn register(&self, registration: ValidRegistration) -> DomainResult<User> {
        let body = Registration {
            email: registration.email,
            password: registration.password,
            name: registration.name,
        };
        // Not retried: a repeat after a lost answer would say 409 for a registration that
        // happened.
        self.0
            .call(
                Method::POST,
                "/internal/users",
                Some(&body),
                Idempotency::NotIdempotent,
            )
            .await
    }

    async fn login(
        &self,
        credentials: &Credentials,
        from: Option<IpAddr>,
    ) -> DomainResult<Session> {
        let body = LogIn {
            email: credentials.email.clone(),
            password: credentials.password.clone(),
            client_address: from,
        };
        self.0
            .call(
                Method::POST,
                "/internal/sessions",
                Some(&body),
                Idempotency::Idempotent,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use domain::DomainError;

    use super::*;
    use crate::trust::ORDERS;

    /// A `users` that records the address each log-in was counted under.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Option<IpAddr>>>);

    #[async_trait]
    impl Users for Recorder {
        async fn register(&self, _registration: ValidRegistration) -> DomainResult<User> {
            Err(DomainError::Forbidden("not in this test".into()))
        }

        async fn login(
            &self,
            _credentials: &Credentials,
            from: Option<IpAddr>,
        ) -> DomainResult<Session> {
            self.0.lock().unwrap().push(from);
            Err(DomainError::Unauthenticated(
                "wrong email or password".into(),
            ))
        }
    }

    fn body() -> LogIn {
        LogIn {
            email: "ada@example.com".into(),
            password: "not the password".into(),
            client_address: Some("203.0.113.7".parse().unwrap()),
        }
    }

    #[tokio::test]
    async fn the_client_address_is_believed_from_the_gateway_and_from_nobody_else() {
        let recorder = Arc::new(Recorder::default());
        let users: Arc<dyn Users> = recorder.clone();
        for caller in [GATEWAY, ORDERS] {
            let answer = log_in(
                State(users.clone()),
                Extension(Caller(caller)),
                ApiJson(body()),
            )
            .await;
            assert!(answer.is_err());
        }
        assert_eq!(
            *recorder.0.lock().unwrap(),
            vec![Some("203.0.113.7".parse().unwrap()), None]
        );
    }

    #[test]
    fn a_log_in_body_without_an_address_still_reads_and_unknown_fields_do_not() {
        let read: LogIn =
            serde_json::from_str(r#"{"email":"a@b.co","password":"x"}"#).expect("reads");
        assert_eq!(read.client_address, None);
        assert!(
            serde_json::from_str::<LogIn>(r#"{"email":"a@b.co","password":"x","role":"admin"}"#)
                .is_err()
        );
    }
}
