//! `users` over HTTP.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use domain::DomainResult;
use domain::users::{Credentials, Registration, Session, User, Users, ValidRegistration};
use reqwest::Method;

use api::ApiError;
use api::extract::ApiJson;

use crate::trust::{GATEWAY, only};
use crate::upstream::{Idempotency, Upstream};

/// Registration and log-in serve the public API: the gateway is the one caller.
pub fn routes(users: Arc<dyn Users>) -> Router {
    Router::new()
        .route("/internal/users", only(&[GATEWAY], post(register)))
        .route("/internal/sessions", only(&[GATEWAY], post(log_in)))
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

async fn log_in(
    State(users): State<Arc<dyn Users>>,
    ApiJson(credentials): ApiJson<Credentials>,
) -> Result<Json<Session>, ApiError> {
    Ok(Json(users.login(&credentials).await?))
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

    async fn login(&self, credentials: &Credentials) -> DomainResult<Session> {
        self.0
            .call(
                Method::POST,
                "/internal/sessions",
                Some(credentials),
                Idempotency::Idempotent,
            )
            .await
    }
}
