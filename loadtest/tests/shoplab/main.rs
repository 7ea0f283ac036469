//! The `shoplab` crate's tests: the architecture rules, and the microservices build run as
//! real processes by the supervisor — started, browsed, bought from, broken and healed.

mod architecture;
mod check; // the invariant checker: crafted snapshots per invariant, and `shoplab check` end to end
mod command;
mod deployment;
mod faults;
mod netfaults; // fault proxies (latency, reset, cut, database down), a cgroup CPU limit, the lab's matrix of them
mod rolling; // rolling deploys of the public processes and of a service under load, and a rollback
mod support;
