//! The fault catalogue: every kind of fault the lab knows, specified once — its name, the
//! layer it strikes, what it does, and its parameters with units, defaults and valid ranges.
//!
//! Everything else reads this table: the admin API validates `POST /admin/faults` through
//! [`validate`], and the lab's experiments, its workshop page (which serves the table as
//! JSON) and the docs take their defaults and ranges from it. The mechanisms stay where
//! they run: in-process kinds in [`super::Faults`], the others in the lab's platforms.
//! This file holds the types, the lookups and the validation; the table itself, one spec
//! per kind, is `catalogue/kinds.rs`.
//!
//! One default per parameter. Where the lab and this crate used to disagree, the lab's
//! value won, because the experiments and the reports committed so far were built on it:
//! `latency` 300 ms (not 200), `errors` half the calls (not all), `cpu_hog` 2 threads
//! (not 1: on a 2-core machine that is every core), `leak` 64 MiB/s (not 10). Ranges are
//! the admin API's, which is what a caller could already rely on.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{DomainError, DomainResult};
use kinds::CATALOGUE;

/// One fault kind, as the catalogue specifies it.
#[derive(Clone, Debug, Serialize)]
pub struct FaultSpec {
    /// The one spelling, everywhere (snake_case): `net_latency`, `cpu_hog`.
    pub name: &'static str,
    pub layer: Layer,
    /// What it does, in one sentence.
    pub about: &'static str,
    pub params: &'static [ParamSpec],
    /// Builds the typed fault from parameters already filled and checked against `params`.
    #[serde(skip)]
    build: fn(&Filled) -> Fault,
}

/// Where a fault strikes, which decides who realizes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// The operating system's process: killed or stopped by the lab or the platform.
    Process,
    /// Inside the process that runs the context, switched through `POST /admin/faults`.
    InProcess,
    /// On the link between the callers and the context's service (a fault proxy).
    Network,
    /// A resource the platform grants the process (a CPU quota).
    Resource,
    /// Something the context depends on (its database).
    Dependency,
}

/// One parameter of a fault kind.
#[derive(Clone, Debug, Serialize)]
pub struct ParamSpec {
    pub name: &'static str,
    pub unit: Unit,
    /// Type, default and valid range (inclusive at both ends).
    #[serde(flatten)]
    pub range: Range,
    /// What it sets, in one sentence.
    pub about: &'static str,
}

/// What a parameter counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Unit {
    #[serde(rename = "ms")]
    Milliseconds,
    /// A share between 0 and 1.
    #[serde(rename = "fraction")]
    Fraction,
    #[serde(rename = "threads")]
    Threads,
    #[serde(rename = "MiB/s")]
    MebibytesPerSecond,
    #[serde(rename = "MiB")]
    Mebibytes,
    #[serde(rename = "KiB/s")]
    KibibytesPerSecond,
    #[serde(rename = "bytes")]
    Bytes,
    /// CPU cores (0.2 is a fifth of one core).
    #[serde(rename = "cores")]
    Cores,
}

/// A parameter's type with its default and its valid range, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Range {
    Whole { default: u64, min: u64, max: u64 },
    Number { default: f64, min: f64, max: f64 },
}

/// A fault with its typed parameters: what [`validate`] returns. Serialized as the kind's
/// name under `kind` beside its parameters, `{"kind":"latency","ms":300}`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    Kill,
    Pause,
    Latency { ms: u64 },
    Errors { rate: f64 },
    Hang,
    Abort,
    CpuHog { threads: u64 },
    Leak { mb_per_sec: u64, max_mb: u64 },
    NetLatency { ms: u64 },
    NetReset,
    NetCut,
    NetBandwidth { kib_per_sec: u64 },
    NetTruncate { bytes: u64 },
    CpuLimit { cores: f64 },
    DbDown,
}

/// Every fault kind the lab knows, in the order a page or a table lists them.
pub fn catalogue() -> &'static [FaultSpec] {
    CATALOGUE
}

/// The spec of the kind spelled `name`, if there is one.
pub fn spec(name: &str) -> Option<&'static FaultSpec> {
    CATALOGUE.iter().find(|spec| spec.name == name)
}

/// Checks a fault kind and its parameters (a JSON object, or null for none): fills in the
/// defaults of parameters left out, refuses unknown parameters, wrong types and values
/// outside their range, and returns the typed fault. Every refusal is
/// [`DomainError::Invalid`] naming the parameter and its range.
pub fn validate(kind: &str, params: &Value) -> DomainResult<Fault> {
    let spec = spec(kind).ok_or_else(|| {
        let known: Vec<&str> = CATALOGUE.iter().map(|spec| spec.name).collect();
        DomainError::Invalid(format!(
            "unknown fault kind {kind:?}; known kinds: {}",
            known.join(", ")
        ))
    })?;
    spec.validate(params)
}

impl FaultSpec {
    /// [`validate`] for this kind.
    pub fn validate(&self, params: &Value) -> DomainResult<Fault> {
        let none = Map::new();
        let given = match params {
            Value::Null => &none,
            Value::Object(map) => map,
            _ => {
                return Err(DomainError::Invalid(format!(
                    "{} params must be an object",
                    self.name
                )));
            }
        };
        if let Some(unknown) = given.keys().find(|key| self.param(key).is_none()) {
            let known: Vec<&str> = self.params.iter().map(|param| param.name).collect();
            return Err(DomainError::Invalid(if known.is_empty() {
                format!("{} takes no parameters, got {unknown:?}", self.name)
            } else {
                format!(
                    "{} has no parameter {unknown:?}; its parameters: {}",
                    self.name,
                    known.join(", ")
                )
            }));
        }
        let values = self
            .params
            .iter()
            .map(|param| param.check(self.name, given.get(param.name)))
            .collect::<DomainResult<Vec<_>>>()?;
        Ok((self.build)(&Filled { values }))
    }

    /// The fault with every parameter at its default.
    pub fn default_fault(&self) -> Fault {
        let values = self
            .params
            .iter()
            .map(|param| (param.name, param.range.default()))
            .collect();
        (self.build)(&Filled { values })
    }

    /// The parameter spelled `name`, if this kind has one.
    pub fn param(&self, name: &str) -> Option<&'static ParamSpec> {
        self.params.iter().find(|param| param.name == name)
    }
}

impl ParamSpec {
    /// The value given for this parameter (or its default), checked against its range.
    fn check(&self, kind: &str, given: Option<&Value>) -> DomainResult<(&'static str, Value)> {
        let refused = || {
            let (type_name, min, max) = match self.range {
                Range::Whole { min, max, .. } => {
                    ("a whole number", min.to_string(), max.to_string())
                }
                Range::Number { min, max, .. } => ("a number", min.to_string(), max.to_string()),
            };
            let got = given.map_or_else(String::new, |value| format!(", got {value}"));
            DomainError::Invalid(format!(
                "{kind} params.{} must be {type_name} between {min} and {max} ({}){got}",
                self.name,
                self.unit.as_str()
            ))
        };
        let Some(value) = given else {
            return Ok((self.name, self.range.default()));
        };
        let fits = match self.range {
            Range::Whole { min, max, .. } => value
                .as_u64()
                .is_some_and(|whole| (min..=max).contains(&whole)),
            Range::Number { min, max, .. } => value
                .as_f64()
                .is_some_and(|number| (min..=max).contains(&number)),
        };
        if fits {
            Ok((self.name, value.clone()))
        } else {
            Err(refused())
        }
    }
}

impl Range {
    fn default(self) -> Value {
        match self {
            Range::Whole { default, .. } => Value::from(default),
            Range::Number { default, .. } => Value::from(default),
        }
    }
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Milliseconds => "ms",
            Unit::Fraction => "fraction",
            Unit::Threads => "threads",
            Unit::MebibytesPerSecond => "MiB/s",
            Unit::Mebibytes => "MiB",
            Unit::KibibytesPerSecond => "KiB/s",
            Unit::Bytes => "bytes",
            Unit::Cores => "cores",
        }
    }
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Process => "process",
            Layer::InProcess => "in_process",
            Layer::Network => "network",
            Layer::Resource => "resource",
            Layer::Dependency => "dependency",
        }
    }
}

impl Fault {
    /// The kind's name, as the catalogue spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::Latency { .. } => "latency",
            Fault::Errors { .. } => "errors",
            Fault::Hang => "hang",
            Fault::Abort => "abort",
            Fault::CpuHog { .. } => "cpu_hog",
            Fault::Leak { .. } => "leak",
            Fault::NetLatency { .. } => "net_latency",
            Fault::NetReset => "net_reset",
            Fault::NetCut => "net_cut",
            Fault::NetBandwidth { .. } => "net_bandwidth",
            Fault::NetTruncate { .. } => "net_truncate",
            Fault::CpuLimit { .. } => "cpu_limit",
            Fault::DbDown => "db_down",
        }
    }

    /// The kind's spec in the catalogue.
    pub fn spec(&self) -> &'static FaultSpec {
        // Every variant has a spec: the catalogue's tests build each spec's fault and read
        // its name back, so this lookup cannot miss.
        spec(self.name()).unwrap_or_else(|| unreachable!("{} has no spec", self.name()))
    }

    /// The parameters alone, as the `params` object of `POST /admin/faults` takes them.
    pub fn params(&self) -> Value {
        let mut fields = match serde_json::to_value(self) {
            Ok(Value::Object(fields)) => fields,
            _ => Map::new(),
        };
        fields.remove("kind");
        Value::Object(fields)
    }
}

/// Parameter values after defaults were filled in and ranges checked, for `FaultSpec::build`.
struct Filled {
    values: Vec<(&'static str, Value)>,
}

impl Filled {
    fn value(&self, name: &str) -> &Value {
        // The builders ask only for their own spec's parameters, all of them filled: the
        // catalogue's tests build every spec, so a misspelt name fails there, not here.
        self.values
            .iter()
            .find(|(filled, _)| *filled == name)
            .map(|(_, value)| value)
            .unwrap_or_else(|| unreachable!("parameter {name} was not filled"))
    }

    fn whole(&self, name: &str) -> u64 {
        self.value(name).as_u64().unwrap_or_default()
    }

    fn number(&self, name: &str) -> f64 {
        self.value(name).as_f64().unwrap_or_default()
    }
}

mod kinds;

#[cfg(test)]
mod tests;
