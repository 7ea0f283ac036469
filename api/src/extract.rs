//! Extractors that answer bad input in the shop's error shape instead of axum's plain text.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use domain::users::UserId;
use domain::{DomainError, Shop};
use serde::de::DeserializeOwned;

use crate::ApiError;

/// JSON body: malformed syntax or a missing content type is 400, wrong types, missing or
/// unknown fields are 422, a body over the limit is 413.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(ApiError(json_rejection(&rejection))),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> DomainError {
    let message = rejection.body_text();
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            DomainError::PayloadTooLarge("request body is too large".into())
        }
        StatusCode::UNPROCESSABLE_ENTITY => DomainError::Invalid(message),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => DomainError::BadRequest(
            "expected a JSON body with Content-Type: application/json".into(),
        ),
        _ => DomainError::BadRequest(message),
    }
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
