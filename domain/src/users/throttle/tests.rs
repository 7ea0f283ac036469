//! The throttle's rules (per account, per address) on their own clock (no sleeps), and the
//! wrapper around a `users` that counts the passwords it is asked to verify.

use std::sync::atomic::{AtomicU32, Ordering};

use super::*;
use crate::users::UserId;

/// Throttled per account only (`limit`), as the older tests here assume.
fn per_account(limit: u32) -> LoginThrottles {
    LoginThrottles::new(
        LoginThrottle::new(limit, WINDOW),
        LoginThrottle::per_address(0, WINDOW),
    )
}

/// Throttled per address (`limit`), with a per-account limit that is never met here.
fn per_address(limit: u32) -> LoginThrottles {
    LoginThrottles::new(
        LoginThrottle::new(1000, WINDOW),
        LoginThrottle::per_address(limit, WINDOW),
    )
}

fn address(text: &str) -> Option<IpAddr> {
    Some(text.parse().unwrap())
}

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

    async fn login(
        &self,
        credentials: &Credentials,
        _from: Option<IpAddr>,
    ) -> DomainResult<Session> {
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
    let users = ThrottledUsers::new(OneAccount::default(), per_account(3));
    for _ in 0..3 {
        let answer = users
            .login(&credentials("ada@example.com", "wrong"), None)
            .await;
        assert!(matches!(answer, Err(DomainError::Unauthenticated(_))));
    }
    // The email is normalized first, so a change of case is the same account.
    let answer = users
        .login(&credentials(" ADA@example.com", "right"), None)
        .await;
    assert!(
        matches!(answer, Err(DomainError::RateLimited { retry_after_secs, .. }) if retry_after_secs > 0),
        "{answer:?}"
    );
    assert_eq!(users.users.verified.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn an_unknown_email_is_locked_like_a_known_one() {
    let users = ThrottledUsers::new(OneAccount::default(), per_account(2));
    for _ in 0..2 {
        let _ = users
            .login(&credentials("nobody@example.com", "x"), None)
            .await;
    }
    let answer = users
        .login(&credentials("nobody@example.com", "x"), None)
        .await;
    assert!(matches!(answer, Err(DomainError::RateLimited { .. })));
}

#[tokio::test]
async fn a_success_between_failures_keeps_the_account_open() {
    let users = ThrottledUsers::new(OneAccount::default(), per_account(2));
    for _ in 0..5 {
        let _ = users
            .login(&credentials("ada@example.com", "wrong"), None)
            .await;
        users
            .login(&credentials("ada@example.com", "right"), None)
            .await
            .expect("one failure, then the right password");
    }
}

#[tokio::test]
async fn failures_from_one_address_lock_it_for_every_account_and_not_other_addresses() {
    let users = ThrottledUsers::new(OneAccount::default(), per_address(3));
    let guesser = address("203.0.113.7");
    // Credential stuffing: one guess on each of many accounts.
    for index in 0..3 {
        let answer = users
            .login(
                &credentials(&format!("user{index}@example.com"), "x"),
                guesser,
            )
            .await;
        assert!(matches!(answer, Err(DomainError::Unauthenticated(_))));
    }
    let refused = users
        .login(&credentials("ada@example.com", "right"), guesser)
        .await;
    match refused {
        Err(DomainError::RateLimited {
            message,
            retry_after_secs,
        }) => {
            assert!(message.contains("from this address"), "{message}");
            assert!(retry_after_secs > 0);
        }
        other => panic!("not refused: {other:?}"),
    }
    assert_eq!(users.users.verified.load(Ordering::SeqCst), 3);
    // Another address, and a call that names none, are not touched.
    users
        .login(
            &credentials("ada@example.com", "right"),
            address("198.51.100.1"),
        )
        .await
        .expect("another address logs in");
    users
        .login(&credentials("ada@example.com", "right"), None)
        .await
        .expect("no address: counted per account only");
}

#[tokio::test]
async fn successes_from_one_address_neither_count_nor_clear_its_failures() {
    let users = ThrottledUsers::new(OneAccount::default(), per_address(3));
    let office = address("192.0.2.10");
    for _ in 0..2 {
        let _ = users
            .login(&credentials("bob@example.com", "x"), office)
            .await;
    }
    // Many more successful logins than the limit: none counts, and none clears the two
    // failures (or a guesser with one right password could wipe the count of the others).
    for _ in 0..10 {
        users
            .login(&credentials("ada@example.com", "right"), office)
            .await
            .expect("a success is never refused below the limit");
    }
    let _ = users
        .login(&credentials("bob@example.com", "x"), office)
        .await;
    let answer = users
        .login(&credentials("ada@example.com", "right"), office)
        .await;
    assert!(
        matches!(answer, Err(DomainError::RateLimited { .. })),
        "{answer:?}"
    );
}

#[test]
fn logins_in_flight_from_one_address_do_not_count_against_it() {
    // The lab's load generator logs every simulated user in from 127.0.0.1 at once.
    let throttle = LoginThrottle::per_address(3, WINDOW);
    let now = Instant::now();
    let in_flight: Vec<_> = (0..100)
        .map(|_| throttle.begin_at("127.0.0.1", now).expect("admitted"))
        .collect();
    drop(in_flight);
    assert_eq!(throttle.accounts(), 0, "nothing left once they end");
}

#[test]
fn an_ipv6_client_is_counted_by_its_64_and_a_mapped_ipv4_one_as_ipv4() {
    let key = |text: &str| address_key(text.parse().unwrap());
    assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::9"));
    assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
    assert_eq!(key("::ffff:203.0.113.7"), key("203.0.113.7"));
    assert_eq!(key("203.0.113.7"), "203.0.113.7");
}

#[test]
fn clearing_forgets_every_count() {
    let throttles = per_account(2);
    let now = Instant::now();
    fail(&throttles.accounts, "ada@example.com", now);
    fail(&throttles.accounts, "ada@example.com", now);
    assert!(throttles.accounts.begin_at("ada@example.com", now).is_err());
    throttles.clear();
    assert!(throttles.accounts.begin_at("ada@example.com", now).is_ok());
}
