//! Tests of the monolith as a real process: what only a process can show (abort, signals,
//! CPU and memory burned by faults, a crash mid-checkout) and what the contract cannot see
//! (what a checkout lets run beside it while the payment provider answers, what it leaves
//! behind). The API itself is covered by the contract suite.

/// Checkout around a slow or failing payment provider, in both checkout modes, and after a
/// crash between the split checkout's two transactions.
mod checkout;
/// Connections as an attacker holds them, against a process with few descriptors.
mod connections;
mod faults;
mod lifecycle;
/// `/metrics` as a scraper sees it: format, build info, pool gauges.
mod metrics;
mod process;
/// The token secret across restarts: kept in the database, or configured.
mod token_secret;
