//! Processes the lab runs beside a build on every platform, each a child of the lab (the
//! hidden `shoplab front-door` / `shoplab fault-proxy` subcommands), so the CPU they burn is
//! counted with the system under test, never with the load generator:
//!
//! - the front door ([`front_door`] serves, [`door`] is the lab's handle on it): the reverse
//!   proxy that owns the public port while the monolith or the gateway behind it changes;
//! - the fault proxy ([`fault_proxy`]): noxious between callers and a service, or a process
//!   and its database, for the network fault kinds.

pub mod door;
pub mod fault_proxy;
pub mod front_door;
