//! The HTTP face of the shop, written once.
//!
//! `public::router` is the public API; the monolith mounts it over in-process contexts and
//! the gateway mounts it over HTTP clients, so any difference in the numbers comes from the
//! boundary, not from the handlers. `admin` and `ops` are mounted by every shop process;
//! `server` runs a router on a bound listener until told to stop; `traceparent` carries a
//! request's W3C trace context across every hop.

pub mod admin;
pub mod cli;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod public;
pub mod server;
pub mod settings;
pub mod telemetry;
pub mod traceparent;

pub use error::ApiError;
pub use settings::{CheckoutMode, Settings};
