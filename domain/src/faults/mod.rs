//! Faults: the catalogue of every kind the lab knows (`catalogue`), and the registry of the
//! in-process kinds a process has switched on (`registry`), entered at the top of every
//! context operation.

mod catalogue;
mod registry;

pub use catalogue::{Fault, FaultSpec, Layer, ParamSpec, Range, Unit, catalogue, spec, validate};
pub use registry::{ActiveFault, FaultRequest, Faults, MAX_FAULT_DURATION_MS};
