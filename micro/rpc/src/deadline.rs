//! The caller's deadline, passed down every hop: each attempt sends what is left of its
//! time limit as `x-shoplab-deadline-ms` (whole milliseconds remaining, like gRPC's
//! `grpc-timeout`: relative, so the two processes' clocks need not agree), and the service
//! that receives it keeps it for the request it serves, so its own hops wait no longer than
//! its caller does (`min(hop timeout, time left)` per attempt, see `upstream/hop.rs`).
//!
//! A request whose deadline has already passed is answered 503 at once, without running
//! the handler: whoever sent it has stopped waiting, so any work done for it would be load
//! without a reader. A malformed header is a 422 `invalid`, like any other bad input.
//!
//! Work that must finish whether or not anyone waits (a saga's compensation) runs
//! [`without_deadline`].

use std::time::{Duration, Instant};

use api::ApiError;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use domain::DomainError;

/// Milliseconds the caller still waits, as a non-negative integer.
pub const DEADLINE_HEADER: &str = "x-shoplab-deadline-ms";

tokio::task_local! {
    static DEADLINE: Option<Instant>;
}

/// When the caller of the request this task serves stops waiting, if it said.
pub fn current() -> Option<Instant> {
    DEADLINE.try_with(|deadline| *deadline).ok().flatten()
}

/// Runs `future` with `deadline` as the caller's (what [`layer`] does for every request
/// that carries the header; tests use it to call a client as if from inside a request).
pub async fn scope<F: Future>(deadline: Instant, future: F) -> F::Output {
    DEADLINE.scope(Some(deadline), future).await
}

/// Runs `future` with no caller's deadline, inside a request that has one.
pub async fn without_deadline<F: Future>(future: F) -> F::Output {
    DEADLINE.scope(None, future).await
}

/// Middleware for a service's internal routes: refuses an expired deadline with a 503,
/// a malformed one with a 422, and runs the request inside the deadline it carries. (The
/// services mount [`crate::inbound`], which does this after the caller's check in one layer.)
pub async fn layer(request: Request, next: Next) -> Response {
    match read(&request) {
        Err(refused) => *refused,
        Ok(None) => next.run(request).await,
        Ok(Some(deadline)) => scope(deadline, next.run(request)).await,
    }
}

/// The deadline `request` carries, if any; the answer that refuses it when it is malformed
/// or has passed (boxed: the refusal is the rare path, the `Ok` the common one).
pub(crate) fn read(request: &Request) -> Result<Option<Instant>, Box<Response>> {
    let Some(value) = request.headers().get(DEADLINE_HEADER) else {
        return Ok(None);
    };
    let milliseconds = value
        .to_str()
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
        .ok_or_else(|| {
            Box::new(
                ApiError(DomainError::Invalid(format!(
                    "{DEADLINE_HEADER} must be a whole number of milliseconds"
                )))
                .into_response(),
            )
        })?;
    if milliseconds == 0 {
        return Err(Box::new(
            ApiError(DomainError::Unavailable(
                "the caller's deadline has passed".into(),
            ))
            .into_response(),
        ));
    }
    // Beyond any hop's timeout, the number only says "no hurry"; clamped so the addition
    // cannot overflow an `Instant`.
    let left = Duration::from_millis(milliseconds.min(24 * 3600 * 1000));
    Ok(Some(Instant::now() + left))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_deadline_is_visible_inside_its_scope_only_and_can_be_lifted() {
        assert_eq!(current(), None);
        let deadline = Instant::now() + Duration::from_secs(1);
        let (inside, lifted) = scope(deadline, async {
            (current(), without_deadline(async { current() }).await)
        })
        .await;
        assert_eq!(inside, Some(deadline));
        assert_eq!(lifted, None);
    }
}
