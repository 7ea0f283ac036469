//! `shoplab`, the glue: the one crate that knows every other. The command line ([`cli`])
//! maps each subcommand onto the crate that does the work:
//!
//! - `compare` ([`compare`]): a platform (`loadtest-platform`) runs each build, the
//!   experiments (`loadtest-lab`) drive it, the checker (`loadtest-check`) audits it, and
//!   the report (`loadtest-report`) renders what they found (`loadtest-results`);
//! - `serve micro`, `serve topology` and the hidden `service <name>` ([`micro`],
//!   [`topology`], [`service`]): every process of both builds and of any topology between
//!   them from this one executable, so nothing else has to be built;
//! - `suite` ([`suite`]): a matrix of `compare` runs from a TOML file, each a child
//!   process, resumable, with one combined report;
//! - `workshop`, `load`, `check`, `report`, `diff`: thin calls into their crates.

pub mod cli;
pub mod compare;
mod environment;
mod micro;
mod service;
mod suite;
mod topology;
