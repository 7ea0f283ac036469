//! The lab's experiments: drive a build with the same load while deploying and breaking
//! parts of it, on any platform, and check that nothing was lost.
//!
//! - [`journeys`] — browse and buy, written once over a client, as Goose scenarios (closed
//!   loop), and the per-request records;
//! - [`open_loop`] — journeys arriving at a target rate (Goose has none), latency from due
//!   time, drops counted;
//! - [`load`] — one attack and what it cost the generator; [`load_command`] is `shoplab load`,
//!   [`preflight`] what it checks before its first request;
//! - [`generators`] — several `shoplab load` processes, placed by the platform, joined into
//!   one run;
//! - [`calibration`] — the generator against a null endpoint, and the hop ladder;
//! - [`experiments`] — throughput, deploy, faults, scale; each ends with the invariant
//!   checker.
//!
//! What they find is written in the schema's types (`loadtest-results`); where they run is
//! the platform's business (`loadtest-platform`), asked through the target and never named.

pub mod calibration;
pub mod experiments;
pub mod generators;
pub mod journeys;
pub mod load;
pub mod load_command;
pub mod open_loop;
pub mod preflight;
