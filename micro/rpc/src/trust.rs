//! Zero trust between services, on the wire: every internal call carries the caller's
//! service token (`domain::trust`) in [`SERVICE_TOKEN_HEADER`]; the callee checks it in
//! [`crate::inbound`] (mounted on every service's internal routes by `micro-kit`), and the
//! callers each route serves are its [`Rule`], listed beside the route in this crate's module
//! of its context, where the client that calls it is too.
//!
//! - no token, a malformed, forged or expired one, one for another service, or one from an
//!   issuer whose key the callee does not hold: 401 `unauthenticated`;
//! - a valid token from a caller the route does not serve: 403 `forbidden`.
//!
//! Both are answered before the handler runs, so a refused call changes nothing.

use api::ApiError;
use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use domain::trust::{Identity, Peer};
use domain::{Context, DomainError};

/// The header a service token travels in (named in `domain::trust`, which the lab's
/// calibration reads too).
pub const SERVICE_TOKEN_HEADER: &str = domain::trust::TOKEN_HEADER;

/// Who made the request, once [`crate::inbound`] verified its token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller(pub Peer);

/// The gateway, caller of every public route's context.
pub const GATEWAY: Peer = Peer::Gateway;
/// Orders, the saga's driver: caller of cart, catalog, inventory and payments.
pub const ORDERS: Peer = Peer::Service(Context::Orders);

/// `request` with its verified caller recorded, or the 401 (no valid token) or 403 (a route
/// that does not serve this caller) that refuses it (boxed: the refusal is the rare path).
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
    if let Some(refused) = refuse(caller, &request) {
        return Err(refused);
    }
    request.extensions_mut().insert(Caller(caller));
    Ok(request)
}

/// Who may call one internal route. Each context's module lists its routes' rules beside
/// them (`ACCESS`), and [`crate::inbound`] looks the matched route up in [`RULES`].
///
/// A table read by the one layer every internal route has already, rather than a layer per
/// route: each axum layer costs a boxed clone of the route stack per request, and the
/// per-route `only` layers this replaced cost about 4,000 instructions a hop (callgrind,
/// `bench/hop-instructions.sh`).
pub struct Rule {
    method: Method,
    /// The route's template as the router matched it (`MatchedPath`).
    path: &'static str,
    callers: &'static [Peer],
}

impl Rule {
    pub const fn new(method: Method, path: &'static str, callers: &'static [Peer]) -> Rule {
        Rule {
            method,
            path,
            callers,
        }
    }
}

/// Every context's rules; paths are unique across contexts (`/internal/<context>/...`).
pub const RULES: [&[Rule]; 7] = [
    crate::cart::ACCESS,
    crate::catalog::ACCESS,
    crate::inventory::ACCESS,
    crate::orders::ACCESS,
    crate::payments::ACCESS,
    crate::recommendations::ACCESS,
    crate::users::ACCESS,
];

/// The 403 for a verified `caller` that the matched route does not serve, or `None` when it
/// does. A route with no rule serves no one: a route added without saying who calls it
/// fails closed.
pub(crate) fn refuse(caller: Peer, request: &Request) -> Option<Box<Response>> {
    let method = request.method();
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let callers = path.and_then(|path| {
        RULES
            .iter()
            .flat_map(|rules| rules.iter())
            .find(|rule| rule.path == path && rule.method == method)
            .map(|rule| rule.callers)
    });
    if callers.is_some_and(|callers| callers.contains(&caller)) {
        return None;
    }
    Some(Box::new(
        ApiError(DomainError::Forbidden(format!(
            "{caller} may not call {method} {}",
            request.uri().path()
        )))
        .into_response(),
    ))
}

#[cfg(test)]
mod tests {
    use super::RULES;

    #[test]
    fn every_rule_is_one_internal_route_with_callers() {
        let rules: Vec<_> = RULES.iter().flat_map(|rules| rules.iter()).collect();
        for (index, rule) in rules.iter().enumerate() {
            assert!(rule.path.starts_with("/internal/"), "{}", rule.path);
            assert!(!rule.callers.is_empty(), "{} serves no one", rule.path);
            let again = rules[index + 1..]
                .iter()
                .any(|other| other.path == rule.path && other.method == rule.method);
            assert!(!again, "{} {} has two rules", rule.method, rule.path);
        }
    }
}
