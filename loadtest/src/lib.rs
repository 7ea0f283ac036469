//! `shoplab`, the lab's entry point, as a library: the command line ([`cli`]) and the
//! supervisor that runs the microservices build as real processes ([`supervisor`]), which
//! the load harness and the tests drive directly.

pub mod cli;
mod micro;
mod service;
pub mod supervisor;
