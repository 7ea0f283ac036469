//! `shoplab`, the lab's entry point, as a library: the command line ([`cli`]); the
//! supervisor that runs either build as real processes ([`supervisor`]); the lab that drives
//! both with the same load while it deploys and breaks parts ([`lab`]); the request history
//! ([`history`]) and the invariant checker ([`check`]); the live page of a workshop ([`workshop`]). The tests drive them directly.

pub mod check;
pub mod cli;
pub mod history;
pub mod lab;
mod micro;
pub mod report;
mod service;
pub mod supervisor;
pub mod workshop;
