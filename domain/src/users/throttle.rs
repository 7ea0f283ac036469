//! Failed-login throttling per account and per client address, written once for both
//! builds: the monolith wraps its in-process `users` in [`ThrottledUsers`], the
//! microservices' `users` service wraps the same implementation, and the gateway passes the
//! 429 on as any other answer.
//!
//! The rule per account: once an account has `limit` failed logins within `window` of its
//! first one, every further attempt on it — a correct password included, or the lockout
//! would tell a guesser when they were right — is refused with `RateLimited` until that
//! window ends. A successful login clears the count. Attempts still being verified count as
//! failures until they finish, so a burst of concurrent guesses cannot slip more than
//! `limit` verifications past the check. Accounts are keyed by the normalized email whether
//! or not it exists, so the lockout does not tell which emails are registered.
//!
//! The rule per address is the same with two differences. A successful login neither counts
//! nor clears: one right password among a list of stolen ones must not wipe the count of
//! the others. And attempts in flight do not count: many people log in at once from one
//! address (an office's NAT, the lab's load generator with every simulated user on
//! 127.0.0.1), and counting their logins in flight would refuse them for being many, not
//! for failing. A burst of concurrent guesses can therefore pass the limit by the attempts
//! in flight (bounded by the server's connection cap); the per-account rule still holds
//! each account. What an address is, and who may say, is [`address_key`]'s and the
//! callers' business (`api::extract::ClientAddress`).
//!
//! Written by hand rather than with `governor`: a GCRA limiter counts every request it is
//! asked about and has no per-key reset, while this rule counts only failures (known after
//! the password is verified), clears on success, and refuses without counting. The state is
//! a map of the accounts that have failures or attempts in flight, pruned as windows end.
//!
//! The count lives in the process that verifies passwords: each replica of `users` (or of
//! the monolith) counts on its own, so `n` replicas allow up to `n × limit` failures per
//! window, and a restart forgets the count, as does an admin reset of the shop
//! ([`LoginThrottles::clear`]: the accounts it counted are gone). What the per-account rule
//! stops is password guessing against one account; the per-address rule stops credential
//! stuffing (one guess on each of many accounts) from one address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Credentials, Session, User, Users, ValidRegistration, normalize_email};
use crate::{DomainError, DomainResult};

/// `users` with failed logins throttled per account and per client address.
pub struct ThrottledUsers<U> {
    users: U,
    throttles: LoginThrottles,
}

/// A process's two throttles, shared by its `users` and its admin API (whose reset forgets
/// every count).
#[derive(Clone)]
pub struct LoginThrottles {
    pub accounts: Arc<LoginThrottle>,
    pub addresses: Arc<LoginThrottle>,
}

/// How many failed logins an account (or an address) may have per window, and the count of
/// each.
pub struct LoginThrottle {
    /// 0: no throttling.
    limit: u32,
    window: Duration,
    counted: Counted,
    state: Mutex<State>,
}

/// What a throttle counts by; it decides whether attempts in flight count (see the file's
/// header) and what a refusal says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Counted {
    Account,
    Address,
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

/// The key an address is counted under: an IPv4 address as it is (an IPv4-mapped IPv6 one
/// as the IPv4 address it is), an IPv6 address by its /64 — the one network a single
/// subscriber is given and can move around in at will, so counting per /128 would count
/// nothing.
pub fn address_key(address: IpAddr) -> String {
    match address.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let [a, b, c, d, ..] = v6.segments();
            format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
        }
    }
}

impl<U: Users> ThrottledUsers<U> {
    pub fn new(users: U, throttles: LoginThrottles) -> ThrottledUsers<U> {
        ThrottledUsers { users, throttles }
    }
}

#[async_trait]
impl<U: Users> Users for ThrottledUsers<U> {
    async fn register(&self, registration: ValidRegistration) -> DomainResult<User> {
        self.users.register(registration).await
    }

    async fn login(
        &self,
        credentials: &Credentials,
        from: Option<IpAddr>,
    ) -> DomainResult<Session> {
        // The address first: a locked address is refused without touching the account.
        let address = from
            .map(|from| self.throttles.addresses.begin(&address_key(from)))
            .transpose()?;
        let account = self
            .throttles
            .accounts
            .begin(&normalize_email(&credentials.email))?;
        let answer = self.users.login(credentials, from).await;
        match &answer {
            Ok(_) => {
                account.succeeded();
                // Dropped: a success neither counts nor clears an address's failures.
                drop(address);
            }
            Err(DomainError::Unauthenticated(_)) => {
                account.failed();
                if let Some(address) = address {
                    address.failed();
                }
            }
            // A fault or an unreachable database says nothing about the password.
            Err(_) => drop((account, address)),
        }
        answer
    }
}

impl LoginThrottles {
    pub fn new(accounts: LoginThrottle, addresses: LoginThrottle) -> LoginThrottles {
        LoginThrottles {
            accounts: Arc::new(accounts),
            addresses: Arc::new(addresses),
        }
    }

    /// Forgets every count (an admin reset: the accounts counted are gone, and the lab's
    /// cases and runs each start from a shop nobody has failed to log in to).
    pub fn clear(&self) {
        self.accounts.clear();
        self.addresses.clear();
    }
}

impl LoginThrottle {
    /// At most `limit` failed logins per account within `window` of the first; `limit` 0
    /// turns throttling off.
    pub fn new(limit: u32, window: Duration) -> LoginThrottle {
        LoginThrottle::counting(Counted::Account, limit, window)
    }

    /// At most `limit` failed logins per client address (an [`address_key`]) within
    /// `window` of the first; successes and attempts in flight do not count. `limit` 0
    /// turns it off.
    pub fn per_address(limit: u32, window: Duration) -> LoginThrottle {
        LoginThrottle::counting(Counted::Address, limit, window)
    }

    fn counting(counted: Counted, limit: u32, window: Duration) -> LoginThrottle {
        LoginThrottle {
            limit,
            window,
            counted,
            state: Mutex::new(State::default()),
        }
    }

    fn clear(&self) {
        let mut state = self.lock();
        // Attempts in flight keep their entries, so their end finds them (and then removes
        // them); every count goes.
        state.accounts.retain(|_, account| account.in_flight > 0);
        for account in state.accounts.values_mut() {
            account.failures = 0;
        }
    }

    /// Admits an attempt on `account` (a normalized email, or an [`address_key`]), or
    /// refuses it with `RateLimited` and the seconds until its window ends.
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
        let in_flight = match self.counted {
            Counted::Account => entry.in_flight,
            Counted::Address => 0,
        };
        if entry.failures + in_flight >= self.limit {
            // Locked: wait for the window. Full only because of attempts in flight: they
            // finish within a verification, so a second is enough.
            let wait = if entry.failures >= self.limit {
                entry.window_ends.saturating_duration_since(now)
            } else {
                Duration::from_secs(1)
            };
            let retry_after_secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
            let whose = match self.counted {
                Counted::Account => "for this account",
                Counted::Address => "from this address",
            };
            return Err(DomainError::RateLimited {
                message: format!(
                    "too many failed logins {whose}; try again in {retry_after_secs} s"
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
