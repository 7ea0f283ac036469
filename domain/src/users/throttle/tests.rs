//! The throttle's rule on its own clock (no sleeps), and the wrapper around a `users` that
//! counts the passwords it is asked to verify.

use std::sync::atomic::{AtomicU32, Ordering};

use super::*;
use crate::users::UserId;

const WINDOW: Duration = Duration::from_secs(60);

fn fail(throttle: &LoginThrottle, account: &str, now: Instant) {
    let mut attempt = throttle.begin_at(account, now).expect("admitted");
    attempt.end(Outcome::Failed, now);
}

fn retry_after(answer: DomainResult<Attempt<'_>>) -> u64 {
    match answer {
        Err(DomainError::RateLimited {
            retry_after_secs, ..
        }) => retry_after_secs,
        Err(other) => panic!("refused with {other:?}"),
        Ok(_) => panic!("admitted"),
    }
}

#[test]
fn after_the_limit_of_failures_the_account_is_refused_until_its_window_ends() {
    let throttle = LoginThrottle::new(3, WINDOW);
    let start = Instant::now();
    for second in 0..3 {
        fail(
            &throttle,
            "ada@example.com",
            start + Duration::from_secs(second),
        );
    }
    let later = start + Duration::from_secs(10);
    assert_eq!(retry_after(throttle.begin_at("ada@example.com", later)), 50);
    // Another account is not touched by this one's failures.
    assert!(throttle.begin_at("grace@example.com", later).is_ok());
    // The window runs from the first failure, and then the account is admitted again.
    let end = start + WINDOW;
    assert!(throttle.begin_at("ada@example.com", end).is_ok());
}

#[test]
fn failures_in_an_ended_window_do_not_count_towards_the_next() {
    let throttle = LoginThrottle::new(3, WINDOW);
    let start = Instant::now();
    fail(&throttle, "ada@example.com", start);
    fail(&throttle, "ada@example.com", start + Duration::from_secs(1));
    let next = start + WINDOW + Duration::from_secs(1);
    fail(&throttle, "ada@example.com", next);
    fail(&throttle, "ada@example.com", next);
    assert!(throttle.begin_at("ada@example.com", next).is_ok());
}

#[test]
fn a_successful_login_clears_the_count() {
    let throttle = LoginThrottle::new(3, WINDOW);
    let now = Instant::now();
    fail(&throttle, "ada@example.com", now);
    fail(&throttle, "ada@example.com", now);
    let mut attempt = throttle.begin_at("ada@example.com", now).unwrap();
    attempt.end(Outcome::Succeeded, now);
    assert_eq!(throttle.accounts(), 0, "a clean account is not held");
    fail(&throttle, "ada@example.com", now);
    fail(&throttle, "ada@example.com", now);
    assert!(throttle.begin_at("ada@example.com", now).is_ok());
}

#[test]
fn attempts_in_flight_count_against_the_limit_until_they_finish() {
    let throttle = LoginThrottle::new(3, WINDOW);
    let now = Instant::now();
    let first = throttle.begin_at("ada@example.com", now).unwrap();
    let _second = throttle.begin_at("ada@example.com", now).unwrap();
    let _third = throttle.begin_at("ada@example.com", now).unwrap();
    // A fourth concurrent guess would be one verification past the limit.
    assert_eq!(retry_after(throttle.begin_at("ada@example.com", now)), 1);
    // One that ends without saying anything about the password frees its place.
    drop(first);
    assert!(throttle.begin_at("ada@example.com", now).is_ok());
}

#[test]
fn a_limit_of_zero_never_refuses() {
    let throttle = LoginThrottle::new(0, WINDOW);
    let now = Instant::now();
    for _ in 0..100 {
        fail(&throttle, "ada@example.com", now);
    }
    assert!(throttle.begin_at("ada@example.com", now).is_ok());
    assert_eq!(throttle.accounts(), 0);
}

#[test]
fn accounts_whose_window_ended_are_swept_out_as_the_map_grows() {
    let throttle = LoginThrottle::new(3, WINDOW);
    let start = Instant::now();
    for index in 0..PRUNE_FLOOR {
        fail(&throttle, &format!("user{index}@example.com"), start);
    }
    assert_eq!(throttle.accounts(), PRUNE_FLOOR);
    let later = start + WINDOW + Duration::from_secs(1);
    fail(&throttle, "new@example.com", later);
    assert_eq!(throttle.accounts(), 1);
}

/// A `users` whose one account's password is `right`, counting the passwords it verifies.
#[derive(Default)]
struct OneAccount {
    verified: AtomicU32,
}

#[async_trait]
impl Users for OneAccount {
    async fn register(&self, _registration: ValidRegistration) -> DomainResult<User> {
        Err(DomainError::Forbidden("not in this test".into()))
    }

    async fn login(&self, credentials: &Credentials) -> DomainResult<Session> {
        self.verified.fetch_add(1, Ordering::SeqCst);
        if credentials.email == "ada@example.com" && credentials.password == "right" {
            let user_id: UserId = 1;
            Ok(Session {
                token: "t".into(),
                expires_at: 0,
                user_id,
            })
        } else {
            Err(DomainError::Unauthenticated(
                "wrong email or password".into(),
            ))
        }
    }
}

fn credentials(email: &str, password: &str) -> Credentials {
    Credentials {
        email: email.into(),
        password: password.into(),
    }
}

#[tokio::test]
async fn a_locked_account_refuses_even_the_right_password_without_verifying_it() {
    let users = ThrottledUsers::new(OneAccount::default(), LoginThrottle::new(3, WINDOW));
    for _ in 0..3 {
        let answer = users.login(&credentials("ada@example.com", "wrong")).await;
        assert!(matches!(answer, Err(DomainError::Unauthenticated(_))));
    }
    // The email is normalized first, so a change of case is the same account.
    let answer = users.login(&credentials(" ADA@example.com", "right")).await;
    assert!(
        matches!(answer, Err(DomainError::RateLimited { retry_after_secs, .. }) if retry_after_secs > 0),
        "{answer:?}"
    );
    assert_eq!(users.users.verified.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn an_unknown_email_is_locked_like_a_known_one() {
    let users = ThrottledUsers::new(OneAccount::default(), LoginThrottle::new(2, WINDOW));
    for _ in 0..2 {
        let _ = users.login(&credentials("nobody@example.com", "x")).await;
    }
    let answer = users.login(&credentials("nobody@example.com", "x")).await;
    assert!(matches!(answer, Err(DomainError::RateLimited { .. })));
}

#[tokio::test]
async fn a_success_between_failures_keeps_the_account_open() {
    let users = ThrottledUsers::new(OneAccount::default(), LoginThrottle::new(2, WINDOW));
    for _ in 0..5 {
        let _ = users.login(&credentials("ada@example.com", "wrong")).await;
        users
            .login(&credentials("ada@example.com", "right"))
            .await
            .expect("one failure, then the right password");
    }
}
