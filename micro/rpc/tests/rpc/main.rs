//! The internal API across a real loopback hop, one module per concern. Upstreams are real
//! axum servers on random ports; nothing waits by sleeping, everything polls with a deadline.

mod balancing;
mod breaker;
mod deadline;
mod discovery;
mod errors;
mod metrics;
mod retries;
mod support;
mod tracing;
mod trust;
