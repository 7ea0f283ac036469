//! The lab: drive both builds with the same load while deploying and breaking parts of
//! them, check that nothing was lost, and write the results.
//!
//! - [`journeys`] — the Goose scenarios and the per-request records;
//! - [`load`] — one attack and what it cost the generator;
//! - [`target`] — a build running as child processes, and what the experiments do to it;
//! - [`experiments`] — throughput, deploy, faults; each ends with the invariant checker;
//! - [`results`] — `results.json`, `history.jsonl`, CSV, the summary;
//! - [`compare`] and [`load_command`] — the commands.

pub mod analysis;
pub mod calibration;
pub mod cgroup;
pub mod compare;
pub mod experiments;
pub mod journeys;
pub mod load;
pub mod load_command;
pub mod pinning;
pub mod profile;
pub mod results;
pub mod target;
