//! Typed, layered settings for every shop process: defaults < TOML file < `SHOPLAB_*`
//! environment < command-line flags.
//!
//! Every setting that affects fairness between the two builds (pool sizes, timeouts, the
//! simulated provider latency) lives here and is recorded with every result.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `sqlite://path/to/file.db` (created when missing), `sqlite::memory:`, or
    /// `postgres://user@host/db`.
    pub db: String,
    /// Bearer token for `/admin/*`; generated and printed at start when absent or empty.
    pub admin_token: Option<String>,
    /// Bearer token that opens `/metrics` and nothing else, for scrapers (Prometheus, the
    /// lab): a scraper's credential then cannot reset the shop or inject faults. The admin
    /// token opens `/metrics` too. Generated and printed at start when absent or empty.
    /// Read from `SHOPLAB_METRICS_TOKEN` (or the settings file), not from a flag, as the
    /// admin token is: a flag's value is visible to anyone who can list processes.
    pub metrics_token: Option<String>,
    /// HMAC secret for user tokens. When absent, the monolith generates one once and keeps it
    /// in its database (the `users` context's `token_secret` table), so a restart keeps every
    /// session; a configured secret always wins. The `users` service and the gateway need it
    /// configured: they must share it.
    pub token_secret: Option<String>,
    pub token_ttl_secs: i64,
    /// Failed logins one account may have within `login_failure_window_ms` of its first;
    /// past it every attempt on the account, a correct password included, answers 429 with
    /// `Retry-After` until the window ends, and a successful login clears the count
    /// (`domain::users::LoginThrottle`, counted by each process that verifies passwords:
    /// the monolith, the `users` service). 0 turns it off.
    pub login_failure_limit: u32,
    /// The window of `login_failure_limit`, from an account's first failed login, and of
    /// `login_failure_limit_per_address`, from an address's.
    pub login_failure_window_ms: u64,
    /// Failed logins one client address may have within `login_failure_window_ms` of its
    /// first, whatever the accounts; past it every log-in from the address answers 429 with
    /// `Retry-After` until the window ends. Successful logins neither count nor clear, and
    /// logins in flight do not count. What an address is: `api::extract::ClientAddress`
    /// (an IPv6 client is counted by its /64). 0 turns it off.
    pub login_failure_limit_per_address: u32,
    /// Microservices only: this process's own Ed25519 private key (PKCS#8, base64url). It
    /// signs the short-lived service token every internal call this process makes carries
    /// (`domain::trust`). Generated per deployment by whoever starts the build, one per
    /// process; never logged or recorded. A service or gateway without it does not start.
    pub service_key: Option<String>,
    /// Microservices only: every process's public key, `gateway=KEY,catalog=KEY,...`
    /// (base64url). A service accepts an internal call only with a token for itself signed
    /// by one of these keys, and then only from the callers its routes allow.
    pub service_public_keys: Option<String>,
    /// Wipe and seed at start with this seed (products/stock/users from `seed_*`).
    pub seed: Option<u64>,
    pub seed_products: u32,
    pub seed_stock: i64,
    pub seed_users: u32,
    /// Simulated payment-provider latency per charge.
    pub payments_latency_ms: u64,
    /// How long a held reservation lives before it is released.
    pub reservation_ttl_ms: i64,
    /// Monolith only: how checkout uses its database around the payment provider call
    /// (`split`, the default, or `single`; see [`CheckoutMode`]).
    pub checkout_mode: CheckoutMode,
    /// Monolith split checkout only: how long the payment provider may take (latency faults
    /// included) before the charge counts as failed and the checkout is compensated — the
    /// budget the microservices' hop to payments has (`hop_timeout_ms`). The single checkout
    /// has no such bound: its transaction waits as long as the provider does.
    pub payments_timeout_ms: u64,
    /// Largest request body accepted; beyond it the answer is 413.
    pub body_limit_bytes: usize,
    /// Connections in the read pool (PostgreSQL: the only pool).
    pub db_max_connections: u32,
    /// How long a request waits for a pooled connection before it answers 503.
    pub db_acquire_timeout_ms: u64,
    /// After SIGTERM/SIGINT, how long the process keeps serving with `/ready` answering 503
    /// before it stops accepting, so balancers that follow readiness move away first
    /// ([`crate::server::Stopping`]). 0 (the default) stops accepting at once: right where
    /// whoever stops the process moved its traffic away before (the lab's own rolling).
    pub shutdown_delay_ms: u64,
    /// After SIGTERM/SIGINT (and the delay), how long in-flight requests get to finish.
    pub shutdown_drain_ms: u64,
    /// How long a connection has to send a complete request head, from the moment it was
    /// accepted or the first byte of its next request arrived; then it is closed
    /// ([`crate::server::Limits`]). A head is a few hundred bytes a client writes at once, so
    /// anything slower is a slowloris holding a socket: 10 s (nginx's
    /// `client_header_timeout` is 60 s, Go servers are commonly given 5–10 s) sheds them fast
    /// and still leaves a slow mobile link time to send a full 8 KiB head.
    pub header_read_timeout_ms: u64,
    /// How long a kept-alive connection may wait, with no request in flight and no byte of
    /// the next one, before the server closes it. 60 s (a cloud load balancer's usual idle
    /// timeout; nginx's `keepalive_timeout` is 75 s) keeps a pooled connection warm across
    /// the lulls of a run. Every client of a shop server keeps pooled connections idle for
    /// at most 30 s ([`crate::server::CLIENT_POOL_IDLE`]), well under this, so a client
    /// never reuses a connection at the moment the server closes it (a request sent then
    /// fails unanswered, and a non-idempotent one cannot be retried): keep it above that.
    pub idle_timeout_ms: u64,
    /// How long a write of an answer may wait for the client to take a byte before the
    /// connection is closed ([`crate::server::Limits`]): a client that sends a request and
    /// never reads its answer would otherwise hold its connection (and its slot under
    /// `max_connections`) for ever, since a request in flight is bounded by neither timeout
    /// above. The clock runs only while the kernel's send buffer is full and restarts at
    /// every byte the client takes, so a slow reader that reads is never cut. 30 s: half
    /// nginx's `send_timeout` (60 s), three header-read timeouts; every client of the lab
    /// reads its answers at once, and a process paused by a fault is resumed well within it.
    pub response_write_timeout_ms: u64,
    /// The most connections served at once; one more is answered 503 and closed at once
    /// (see [`crate::server::Limits`] for why it is refused rather than left waiting). Also
    /// held to half the process's limit of open files, so a flood meets the cap before the
    /// process runs out of descriptors for its database, its upstreams and its logs. 1024:
    /// four times the lab's heaviest load (the open-loop ramp's 256 requests in flight, each
    /// on a connection of its own) and the scale of nginx's `worker_connections`.
    pub max_connections: usize,
    /// `text` or `json`.
    pub log_format: String,
    /// Microservices only: where each context this process calls answers, as base URLs of
    /// its replicas (`{"catalog": ["http://127.0.0.1:4101"]}`). A host may be a DNS name
    /// (`http://tasks.catalog:8080`); see `upstream_resolve_ms` for what it then stands for.
    pub upstreams: std::collections::BTreeMap<String, Vec<String>>,
    /// Microservices only: every this many milliseconds, look up the DNS names in
    /// `upstreams` and balance over one replica per address they answer; 0 (the default)
    /// never does, and a name is then one replica that the HTTP client resolves per
    /// connection. On Docker Swarm there are no service VIPs here (no IPVS), so services run
    /// with `endpoint_mode: dnsrr` and `tasks.<service>` answers one address per running
    /// task: resolving it is how a caller sees, and balances and breaks over, every task
    /// (1000 there: a moved task is found within a second, and a hop that got no answer
    /// asks for a lookup at once, at most one per 100 ms). A failed or empty answer keeps the
    /// last list. `PUT /admin/upstreams` stops it for that context (see `micro_rpc::directory`).
    pub upstream_resolve_ms: u64,
    // Microservices only, every `hop_*` below: how one process calls another. The reasons
    // for each default are in micro/README.md, "Resilience settings".
    /// One attempt, connect to last byte; shorter when the caller's deadline is nearer.
    pub hop_timeout_ms: u64,
    /// How long a hop waits for a TCP connection.
    pub hop_connect_timeout_ms: u64,
    /// Extra attempts for idempotent calls (never for the others), each one also paid for
    /// from the retry budget.
    pub hop_retries: u32,
    /// The wait before the first retry; each further one doubles, plus up to as much again
    /// at random (jitter).
    pub hop_retry_backoff_ms: u64,
    /// The longest wait between two attempts, jitter included.
    pub hop_retry_backoff_max_ms: u64,
    /// How long the retry budget remembers calls and retries (1..=60 s). Short on purpose:
    /// calls made before a fault deposit into the budget too, and a fault may spend all of
    /// the window's deposits, so the longer the window the more a fault's first seconds
    /// retry beyond the ratio (10 s gave 1.73 attempts per call in a 1.25 s fault).
    pub hop_retry_budget_ttl_ms: u64,
    /// Retries per second allowed however few calls were made. tower keeps this reserve
    /// for the whole window (`min_per_sec` x the window's seconds, spendable at once), so it
    /// is kept small: it adds `min_per_sec / calls_per_sec` to attempts per call.
    pub hop_retry_budget_min_per_sec: u32,
    /// Retries allowed per call made, on top of the minimum (0.125 = one retry per eight
    /// calls), so attempts per call stay at most `1 + ratio + min_per_sec / calls_per_sec`
    /// under a sustained fault, and at most `1 + ratio x (1 + window / fault) + ...` in a
    /// fault shorter than that (the window before it deposited too): 1.23 for the lab's
    /// 1.25 s fault. Use a ratio whose inverse is whole: tower rounds `1 / ratio` down.
    pub hop_retry_budget_ratio: f32,
    /// The sliding window over which a replica's failure rate is measured.
    pub hop_breaker_window_ms: u64,
    /// Calls the window must hold before its failure rate may open the breaker.
    pub hop_breaker_min_calls: u32,
    /// Share of failed calls in the window (0..=1) that opens a replica's breaker.
    pub hop_breaker_failure_rate: f32,
    /// Attempts in a row that got no answer at all (refused, reset, timed out) that open a
    /// replica's breaker at once.
    pub hop_breaker_no_answer_failures: u32,
    /// How long an open breaker fails calls fast before it lets one probe call through
    /// (half-open).
    pub hop_breaker_open_ms: u64,
    /// With every replica's breaker open, the share of calls in percent still sent (panic
    /// mode); 0 fails them all fast.
    pub hop_breaker_panic_percent: u32,
}

/// How the monolith's checkout spans its database transactions. Both keep every invariant
/// and the same Idempotency-Key answers; they differ in what waits for the payment provider.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckoutMode {
    /// Claim the key, quote and reserve in one write transaction; charge outside any
    /// transaction; confirm in a second one (a failed charge is compensated). Nothing holds
    /// the database while the provider answers, which is how a careful monolith is written:
    /// on SQLite the one writer would otherwise queue every other write behind the provider.
    #[default]
    Split,
    /// Everything, the provider call included, in one ACID transaction: nothing to
    /// compensate or recover, but the transaction (on SQLite, the one writer) is held across
    /// the provider call.
    Single,
}

impl CheckoutMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckoutMode::Split => "split",
            CheckoutMode::Single => "single",
        }
    }
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            db: "sqlite://shoplab-monolith.db".to_owned(),
            admin_token: None,
            metrics_token: None,
            token_secret: None,
            token_ttl_secs: 24 * 3600,
            // 10 failures per 15 minutes: room for a person who mistypes or misremembers a
            // few times, and at most 960 guesses a day on one account (the 2026-12-04 test
            // made 1,442 in 15 s). NIST SP 800-63B asks for no more than 100 in a row. The
            // lab sends no wrong password and gives each simulated user an account of its
            // own, so its load never meets the limit.
            login_failure_limit: 10,
            login_failure_window_ms: 15 * 60 * 1000,
            // 50 failures per 15 minutes from one address: five accounts' worth of the
            // per-account limit, room for a household or an office behind one NAT where
            // several people mistype at once; one address then tries at most 4,800
            // passwords a day across all accounts, where credential stuffing needs
            // thousands an hour to pay. Only failures count, so the lab's load (every
            // simulated user logs in from 127.0.0.1, all with the right password) never
            // comes near it.
            login_failure_limit_per_address: 50,
            service_key: None,
            service_public_keys: None,
            seed: None,
            seed_products: 1000,
            seed_stock: 1000,
            seed_users: 100,
            payments_latency_ms: 3,
            reservation_ttl_ms: 30_000,
            checkout_mode: CheckoutMode::Split,
            payments_timeout_ms: 2_000,
            body_limit_bytes: 64 * 1024,
            db_max_connections: 8,
            db_acquire_timeout_ms: 2_000,
            shutdown_delay_ms: 0,
            shutdown_drain_ms: 5_000,
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            response_write_timeout_ms: 30_000,
            max_connections: 1024,
            log_format: "text".to_owned(),
            upstreams: std::collections::BTreeMap::new(),
            upstream_resolve_ms: 0,
            hop_timeout_ms: 2_000,
            hop_connect_timeout_ms: 250,
            // Lab scale, chosen so a fault shows and heals within the seconds a test or a
            // chart looks at, and so a partial fault is never made worse (the reasons are in
            // micro/README.md, "Resilience settings"): two retries after 5-10 and 10-20 ms,
            // paid from a budget of one retry per eight calls plus 1 a second, counted over
            // the last second (a longer window lets a fault spend what the calm seconds
            // before it deposited, which is how a 10 s window reached 1.73 attempts per
            // call under 50 % errors; micro/README.md); a breaker that
            // opens at 80 % failures over 5 s (50 calls at least) or after 5 attempts in a
            // row without an answer, probes after 1 s, and while every breaker is open lets
            // one call in ten through.
            hop_retries: 2,
            hop_retry_backoff_ms: 5,
            hop_retry_backoff_max_ms: 100,
            hop_retry_budget_ttl_ms: 1_000,
            hop_retry_budget_min_per_sec: 1,
            hop_retry_budget_ratio: 0.125,
            hop_breaker_window_ms: 5_000,
            hop_breaker_min_calls: 50,
            hop_breaker_failure_rate: 0.8,
            hop_breaker_no_answer_failures: 5,
            hop_breaker_open_ms: 1_000,
            hop_breaker_panic_percent: 10,
        }
    }
}

impl Settings {
    /// The failed-login throttles (per account, per address) these settings describe, for
    /// the process that verifies passwords.
    pub fn login_throttles(&self) -> domain::users::LoginThrottles {
        let window = std::time::Duration::from_millis(self.login_failure_window_ms);
        domain::users::LoginThrottles::new(
            domain::users::LoginThrottle::new(self.login_failure_limit, window),
            domain::users::LoginThrottle::per_address(self.login_failure_limit_per_address, window),
        )
    }

    /// The admin token: the configured one, or (absent or empty: an empty token would match
    /// a request without one) a new one, printed — not logged, it is for whoever started
    /// `process` — and kept in these settings.
    pub fn admin_token_or_new(&mut self, process: &str) -> String {
        token_or_new(
            &mut self.admin_token,
            process,
            "admin",
            "SHOPLAB_ADMIN_TOKEN",
        )
    }

    /// The metrics token, as [`Self::admin_token_or_new`] gives the admin token.
    pub fn metrics_token_or_new(&mut self, process: &str) -> String {
        token_or_new(
            &mut self.metrics_token,
            process,
            "metrics",
            "SHOPLAB_METRICS_TOKEN",
        )
    }

    /// Defaults, then the file (when given), then `SHOPLAB_*` variables, then `overrides`
    /// (the command-line flags that were actually passed).
    pub fn load(file: Option<&Path>, overrides: impl Serialize) -> anyhow::Result<Settings> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = file {
            anyhow::ensure!(
                file.exists(),
                "settings file {} does not exist",
                file.display()
            );
            figment = figment.merge(Toml::file(file));
        }
        // Only variables that name a setting: the lab and its tests set other `SHOPLAB_*`
        // variables (test database URLs, for one) that are not for the server.
        let known: Vec<String> = match serde_json::to_value(Settings::default())? {
            serde_json::Value::Object(map) => map.keys().cloned().collect(),
            _ => Vec::new(),
        };
        let environment = Env::prefixed("SHOPLAB_")
            .filter(move |key| known.iter().any(|name| key == name.as_str()));
        let settings = figment
            .merge(environment)
            .merge(Serialized::defaults(overrides))
            .extract()?;
        Ok(settings)
    }
}

/// The token in `slot` unless it is absent or empty; else a new random one (24 bytes, hex),
/// printed for whoever started `process` and kept in `slot`.
fn token_or_new(slot: &mut Option<String>, process: &str, what: &str, variable: &str) -> String {
    if let Some(token) = slot.as_ref().filter(|token| !token.is_empty()) {
        return token.clone();
    }
    let token = hex::encode(rand::random::<[u8; 24]>());
    println!("{process} {what} token (set {variable} to choose one): {token}");
    *slot = Some(token.clone());
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let dir = std::env::temp_dir().join(format!("shoplab-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("shop.toml");
        std::fs::write(&file, "payments_latency_ms = 9\ndb_max_connections = 3\n").unwrap();
        let overrides = serde_json::json!({ "db_max_connections": 5 });
        let settings = Settings::load(Some(&file), overrides).unwrap();
        assert_eq!(settings.payments_latency_ms, 9);
        assert_eq!(settings.db_max_connections, 5);
        assert_eq!(
            settings.shutdown_drain_ms,
            Settings::default().shutdown_drain_ms
        );
    }

    #[test]
    fn checkout_mode_defaults_to_split_and_reads_single_from_the_file() {
        assert_eq!(Settings::default().checkout_mode, CheckoutMode::Split);
        let dir =
            std::env::temp_dir().join(format!("shoplab-settings-mode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("shop.toml");
        std::fs::write(&file, "checkout_mode = \"single\"\n").unwrap();
        let settings = Settings::load(Some(&file), serde_json::json!({})).unwrap();
        assert_eq!(settings.checkout_mode, CheckoutMode::Single);
        std::fs::write(&file, "checkout_mode = \"sometimes\"\n").unwrap();
        assert!(Settings::load(Some(&file), serde_json::json!({})).is_err());
    }

    #[test]
    fn an_unknown_setting_in_the_file_is_an_error() {
        let dir = std::env::temp_dir().join(format!("shoplab-settings-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("shop.toml");
        std::fs::write(&file, "pool_size = 3\n").unwrap();
        assert!(Settings::load(Some(&file), serde_json::json!({})).is_err());
    }
}
