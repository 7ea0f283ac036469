//! Zero trust between services, on the wire: every internal call carries the caller's
//! service token (`domain::trust`) in [`SERVICE_TOKEN_HEADER`]; the callee checks it in
//! [`authenticate`] (mounted on every service's internal routes by `micro-kit`) and each
//! route group names the callers it serves with [`only`], beside the route in this crate's
//! module of its context, where the client that calls it is too.
//!
//! - no token, a malformed, forged or expired one, one for another service, or one from an
//!   issuer whose key the callee does not hold: 401 `unauthenticated`;
//! - a valid token from a caller the route does not serve: 403 `forbidden`.
//!
//! Both are answered before the handler runs, so a refused call changes nothing.

use std::sync::Arc;

use api::ApiError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use domain::trust::{Identity, Peer};
use domain::{Context, DomainError};

/// The header a service token travels in (named in `domain::trust`, which the lab's
/// calibration reads too).
pub const SERVICE_TOKEN_HEADER: &str = domain::trust::TOKEN_HEADER;

/// Who made the request, once [`authenticate`] verified its token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller(pub Peer);

/// The gateway, caller of every public route's context.
pub const GATEWAY: Peer = Peer::Gateway;
/// Orders, the saga's driver: caller of cart, catalog, inventory and payments.
pub const ORDERS: Peer = Peer::Service(Context::Orders);

/// Middleware for a service's internal routes: verifies the service token with this
/// process's identity and records the caller for [`only`]; 401 when there is no valid one.
/// (The services mount [`crate::inbound`], which does this and reads the deadline in one
/// layer.)
pub async fn authenticate(
    State(identity): State<Arc<Identity>>,
    request: Request,
    next: Next,
) -> Response {
    match admit(&identity, request) {
        Ok(request) => next.run(request).await,
        Err(refused) => *refused,
    }
}

/// `request` with its verified caller recorded, or the 401 that refuses it (boxed: the
/// refusal is the rare path).
pub(crate) fn admit(identity: &Identity, mut request: Request) -> Result<Request, Box<Response>> {
    let token = request
        .headers()
        .get(SERVICE_TOKEN_HEADER)
        .and_then(|value| value.to_str().ok());
    let Some(token) = token else {
        return Err(Box::new(
            ApiError(DomainError::Unauthenticated(format!(
                "an internal call needs a service token ({SERVICE_TOKEN_HEADER})"
            )))
            .into_response(),
        ));
    };
    let caller = identity
        .verify(token)
        .map_err(|error| Box::new(ApiError(error).into_response()))?;
    request.extensions_mut().insert(Caller(caller));
    Ok(request)
}

/// `route`, served to `callers` only: anyone else authenticated gets 403, anyone not
/// authenticated 401.
pub fn only<S: Clone + Send + Sync + 'static>(
    callers: &'static [Peer],
    route: MethodRouter<S>,
) -> MethodRouter<S> {
    route.route_layer(axum::middleware::from_fn_with_state(callers, allowed))
}

async fn allowed(State(callers): State<&'static [Peer]>, request: Request, next: Next) -> Response {
    match request.extensions().get::<Caller>() {
        Some(Caller(caller)) if callers.contains(caller) => next.run(request).await,
        Some(Caller(caller)) => ApiError(DomainError::Forbidden(format!(
            "{caller} may not call {} {}",
            request.method(),
            request.uri().path()
        )))
        .into_response(),
        // Not behind `authenticate`: refuse rather than serve an unknown caller.
        None => ApiError(DomainError::Unauthenticated(format!(
            "an internal call needs a service token ({SERVICE_TOKEN_HEADER})"
        )))
        .into_response(),
    }
}
