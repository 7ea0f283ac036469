//! Extractors that answer bad input in the shop's error shape instead of axum's plain text.

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use domain::users::UserId;
use domain::{DomainError, Shop};
use serde::de::DeserializeOwned;

use crate::ApiError;

/// The client's address, for the failed-login throttle per address: the IP address of the
/// peer that opened the connection this process accepted (`api::server::serve` puts it on
/// every request), `None` where a router runs without that server (tests calling it
/// directly).
///
/// What "address" means: the process that accepts the client's connection — the monolith,
/// or the gateway, which passes it on to `users` — sees the client's own address when
/// nothing stands between them. No forwarding header (`Forwarded`, `X-Forwarded-For`,
/// `x-shoplab-client-addr`) is read here: at the public port anyone can write one, so
/// believing it would let a guesser choose a fresh address per guess. Behind a proxy (the
/// lab's front door, a container engine's port proxy, an ingress) the address is the
/// proxy's, and every client behind it shares one count; the lab's own clients all come
/// from 127.0.0.1 anyway and send no wrong password. A deployment behind a proxy limits per
/// address at that proxy, which sees the real one (see ARCHITECTURE.md, "Failed logins").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddress(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0.ip()),
        ))
    }
}

/// JSON body: malformed syntax or a missing JSON content type is 400; a body that is not a
/// JSON object, or has wrong types, missing or unknown fields, is 422; a body over the limit
/// is 413.
///
/// Hand-written rather than `axum::Json` with a mapped rejection, for two reasons: serde's
/// single pass reports some syntax errors as data errors (an unknown field seen before the
/// broken end of `{"email":`), and derived structs also accept JSON arrays (`["a","b","c"]`
/// would register a user). Parsing into a `Value` first separates the two kinds of error,
/// and the object check closes the array door.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(request.headers()) {
            return Err(ApiError(DomainError::BadRequest(
                "expected a JSON body with Content-Type: application/json".into(),
            )));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                ApiError(match rejection.status() {
                    StatusCode::PAYLOAD_TOO_LARGE => {
                        DomainError::PayloadTooLarge("request body is too large".into())
                    }
                    _ => DomainError::BadRequest("could not read the request body".into()),
                })
            })?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|error| {
            ApiError(DomainError::BadRequest(format!("malformed JSON: {error}")))
        })?;
        if !value.is_object() {
            return Err(ApiError(DomainError::Invalid(
                "the body must be a JSON object".into(),
            )));
        }
        T::deserialize(value)
            .map(ApiJson)
            .map_err(|error| ApiError(DomainError::Invalid(format!("invalid body: {error}"))))
    }
}

fn has_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Path parameters: a value of the wrong type (`/api/orders/abc`) is 400.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| ApiPath(value))
            .map_err(|rejection: PathRejection| {
                ApiError(DomainError::BadRequest(rejection.body_text()))
            })
    }
}

/// Query string: a value of the wrong type (`?page=abc`) is 400.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|rejection: QueryRejection| {
                ApiError(DomainError::BadRequest(rejection.body_text()))
            })
    }
}

/// The user behind `Authorization: Bearer <token>`, verified locally with the shop's keys.
pub struct AuthUser(pub UserId);

impl FromRequestParts<Shop> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, shop: &Shop) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)
            .ok_or_else(|| DomainError::Unauthenticated("missing bearer token".into()))?;
        Ok(AuthUser(shop.tokens.verify(token)?))
    }
}

/// The token of an `Authorization: Bearer <token>` header, if there is one.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = header.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}
