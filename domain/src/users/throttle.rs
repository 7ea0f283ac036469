//! Failed-login throttling per account, written once for both builds: the monolith wraps
//! its in-process `users` in [`ThrottledUsers`], the microservices' `users` service wraps the
//! same implementation, and the gateway passes the 429 on as any other answer.
//!
//! The rule: once an account has `limit` failed logins within `window` of its first one,
//! every further attempt on it — a correct password included, or the lockout would tell a
//! guesser when they were right — is refused with `RateLimited` until that window ends. A
//! successful login clears the count. Attempts still being verified count as failures until
//! they finish, so a burst of concurrent guesses cannot slip more than `limit` verifications
//! past the check. Accounts are keyed by the normalized email whether or not it exists, so
//! the lockout does not tell which emails are registered.
//!
//! Written by hand rather than with `governor`: a GCRA limiter counts every request it is
//! asked about and has no per-key reset, while this rule counts only failures (known after
//! the password is verified), clears on success, and refuses without counting. The state is
//! a map of the accounts that have failures or attempts in flight, pruned as windows end.
//!
//! The count lives in the process that verifies passwords: each replica of `users` (or of
//! the monolith) counts on its own, so `n` replicas allow up to `n × limit` failures per
//! window, and a restart forgets the count. What it stops is password guessing against one
//! account; credential stuffing (one guess on each of many accounts) passes under it, and is
//! the edge's business (a limit per client address at the load balancer or ingress, which
//! sees the real address).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Credentials, Session, User, Users, ValidRegistration, normalize_email};
use crate::{DomainError, DomainResult};

/// `users` with failed logins throttled per account.
pub struct ThrottledUsers<U> {
    users: U,
    throttle: LoginThrottle,
}

/// How many failed logins an account may have per window, and the count of each account.
pub struct LoginThrottle {
    /// 0: no throttling.
    limit: u32,
    window: Duration,
    state: Mutex<State>,
}

/// One log-in attempt admitted by [`LoginThrottle::begin`]; dropped without an outcome
/// (cancelled, or an answer that says nothing about the password) it counts as neither.
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    /// `None` when throttling is off.
    account: Option<String>,
}

#[derive(Default)]
struct State {
    accounts: HashMap<String, Account>,
    /// The map's size at which expired entries are next swept out.
    prune_at: usize,
}

struct Account {
    failures: u32,
    in_flight: u32,
    /// When the window that began with the first of `failures` ends.
    window_ends: Instant,
}

#[derive(Clone, Copy)]
enum Outcome {
    Succeeded,
    Failed,
    Unknown,
}

/// A map this small is never swept; above it, a sweep whenever the map doubles.
const PRUNE_FLOOR: usize = 1024;

impl<U: Users> ThrottledUsers<U> {
    pub fn new(users: U, throttle: LoginThrottle) -> ThrottledUsers<U> {
        ThrottledUsers { users, throttle }
    }
}

#[async_trait]
impl<U: Users> Users for ThrottledUsers<U> {
    async fn register(&self, registration: ValidRegistration) -> DomainResult<User> {
        self.users.register(registration).await
    }

    async fn login(&self, credentials: &Credentials) -> DomainResult<Session> {
        let attempt = self.throttle.begin(&normalize_email(&credentials.email))?;
        let answer = self.users.login(credentials).await;
        match &answer {
            Ok(_) => attempt.succeeded(),
            Err(DomainError::Unauthenticated(_)) => attempt.failed(),
            // A fault or an unreachable database says nothing about the password.
            Err(_) => drop(attempt),
        }
        answer
    }
}

impl LoginThrottle {
    /// At most `limit` failed logins per account within `window` of the first; `limit` 0
    /// turns throttling off.
    pub fn new(limit: u32, window: Duration) -> LoginThrottle {
        LoginThrottle {
            limit,
            window,
            state: Mutex::new(State::default()),
        }
    }

    /// Admits an attempt on `account` (a normalized email), or refuses it with
    /// `RateLimited` and the seconds until the account's window ends.
    pub fn begin(&self, account: &str) -> DomainResult<Attempt<'_>> {
        self.begin_at(account, Instant::now())
    }

    fn begin_at(&self, account: &str, now: Instant) -> DomainResult<Attempt<'_>> {
        if self.limit == 0 {
            return Ok(Attempt {
                throttle: self,
                account: None,
            });
        }
        let mut state = self.lock();
        state.prune_if_large(now);
        let entry = state.accounts.entry(account.to_owned()).or_insert(Account {
            failures: 0,
            in_flight: 0,
            window_ends: now,
        });
        if entry.window_ends <= now {
            entry.failures = 0;
        }
        if entry.failures + entry.in_flight >= self.limit {
            // Locked: wait for the window. Full only because of attempts in flight: they
            // finish within a verification, so a second is enough.
            let wait = if entry.failures >= self.limit {
                entry.window_ends.saturating_duration_since(now)
            } else {
                Duration::from_secs(1)
            };
            let retry_after_secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
            return Err(DomainError::RateLimited {
                message: format!(
                    "too many failed logins for this account; try again in {retry_after_secs} s"
                ),
                retry_after_secs,
            });
        }
        entry.in_flight += 1;
        Ok(Attempt {
            throttle: self,
            account: Some(account.to_owned()),
        })
    }

    fn finish(&self, account: &str, outcome: Outcome, now: Instant) {
        let mut state = self.lock();
        let Some(entry) = state.accounts.get_mut(account) else {
            return;
        };
        entry.in_flight = entry.in_flight.saturating_sub(1);
        match outcome {
            Outcome::Succeeded => entry.failures = 0,
            Outcome::Failed => {
                if entry.failures == 0 || entry.window_ends <= now {
                    entry.failures = 0;
                    entry.window_ends = now + self.window;
                }
                entry.failures += 1;
            }
            Outcome::Unknown => {}
        }
        if entry.in_flight == 0 && (entry.failures == 0 || entry.window_ends <= now) {
            state.accounts.remove(account);
        }
    }

    /// Accounts the throttle holds (failures in an open window or attempts in flight).
    pub fn accounts(&self) -> usize {
        self.lock().accounts.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a counter map that no panic can leave half-written.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl State {
    /// Sweeps out accounts whose window ended and that have nothing in flight, once the map
    /// has doubled since the last sweep: amortized constant time per attempt, and memory
    /// bounded by the accounts that failed within one window.
    fn prune_if_large(&mut self, now: Instant) {
        if self.accounts.len() < self.prune_at.max(PRUNE_FLOOR) {
            return;
        }
        self.accounts
            .retain(|_, account| account.in_flight > 0 || account.window_ends > now);
        self.prune_at = self.accounts.len() * 2;
    }
}

impl Attempt<'_> {
    /// The password was right: the account's count starts again.
    pub fn succeeded(mut self) {
        self.end(Outcome::Succeeded, Instant::now());
    }

    /// The password (or the email) was wrong: one more failure in the account's window.
    pub fn failed(mut self) {
        self.end(Outcome::Failed, Instant::now());
    }

    fn end(&mut self, outcome: Outcome, now: Instant) {
        if let Some(account) = self.account.take() {
            self.throttle.finish(&account, outcome, now);
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.end(Outcome::Unknown, Instant::now());
    }
}

#[cfg(test)]
mod tests;
