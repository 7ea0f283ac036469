//! The lab's results schema: the types `results.json` and `history.jsonl` are made of, and
//! nothing else. The report depends on this crate alone, so it renders a results file from
//! any platform and any version; the lab fills these types in.
//!
//! A serialized type is an interface: change a field's meaning or remove one and
//! [`SCHEMA_VERSION`] goes up; add an optional field and older files still load.

pub mod analysis;
pub mod calibration;
pub mod component;
pub mod experiments;
pub mod gates;
pub mod history;
pub mod invariants;
pub mod latency;
pub mod load;
pub mod profile;
pub mod resources;
pub mod stats;

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use calibration::Calibration;
use experiments::Outcome;
use profile::Profile;
use resources::{Pinning, ProcessLimits};

/// Bumped whenever a field changes meaning or goes away.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Results {
    pub schema_version: u32,
    pub run_id: String,
    pub started_at_unix_ms: u128,
    pub duration_s: f64,
    pub profile: Profile,
    pub settings: RunSettings,
    pub environment: Environment,
    /// The generator's ceiling and the parts of one hop, measured in this run; `None` when
    /// it could not be measured (the reason is in the log).
    pub calibration: Option<Calibration>,
    pub experiments: Vec<Outcome>,
    /// Every invariant held after every experiment on both builds.
    pub valid: bool,
}

impl Results {
    /// The run without the outcomes of topologies between the two builds: what every
    /// comparison of the monolith with the microservices reads (the report's sections, the
    /// gates), since such a topology is recorded as the micro build with its spec beside.
    pub fn builds_only(&self) -> Results {
        let mut results = self.clone();
        results.experiments.retain(|outcome| outcome.is_build());
        results
    }

    /// Whether the run measured a topology between the builds, or more than two: then the
    /// report has a spectrum.
    pub fn has_spectrum(&self) -> bool {
        let mut names: Vec<&str> = self
            .experiments
            .iter()
            .map(|outcome| outcome.topology_name())
            .collect();
        names.sort_unstable();
        names.dedup();
        names.len() > 2 || self.experiments.iter().any(|outcome| !outcome.is_build())
    }

    /// `quick profile, 116 s, on 2 cores (AMD EPYC); the load generator on CPU [1], the shop
    /// on CPU [0]; database: sqlite` — how the run was made, in one line.
    pub fn headline(&self) -> String {
        format!(
            "{} profile on the {} target{}, {:.0} s, on {} cores ({}); the load generator on CPU {:?}, the shop on CPU {:?}; database: {}",
            self.profile.name,
            self.settings.target,
            self.settings
                .platform_detail
                .as_deref()
                .map(|detail| format!(" ({detail})"))
                .unwrap_or_default(),
            self.duration_s,
            self.environment.cores,
            self.environment.cpu_model,
            self.settings.pinning.generator_cpus,
            self.settings.pinning.sut_cpus,
            self.settings.database,
        )
    }
}

/// The settings of the run that are not in the profile.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunSettings {
    pub target: String,
    /// `sqlite` or the PostgreSQL server (password redacted).
    pub database: String,
    pub seed: u64,
    pub products: u32,
    pub users: u32,
    pub stock: i64,
    pub browse_weight: usize,
    pub buy_weight: usize,
    pub request_timeout_ms: u64,
    pub pinning: Pinning,
    pub resource_limits: ResourceLimits,
    /// The `SHOPLAB_*` settings given to every process.
    pub env: Vec<(String, String)>,
    /// The settings every shop process started from (`api::Settings`: its defaults, then
    /// the `SHOPLAB_*` environment it inherited), without the secrets and the per-process
    /// database and seed: checkout mode, pools, timeouts, the resilience of every hop.
    /// Absent from runs older than this field.
    #[serde(default)]
    pub shop: Option<serde_json::Value>,
    /// The platform beyond its name: a cluster's nodes and where its database lives. Absent
    /// on a platform with nothing to add, and from runs older than this field.
    #[serde(default)]
    pub platform_detail: Option<String>,
}

/// The CPU and memory the shop's processes were given: the same for both builds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResourceLimits {
    /// Per-process limits the run asked for (`--process-cpu`, `--process-memory`).
    pub asked: ProcessLimits,
    /// What was in force: `asked`, or none where this machine could not enforce them.
    pub enforced: ProcessLimits,
    /// Why `asked` was not enforced.
    pub unavailable: Option<String>,
    /// The cores every shop process of either build may run on (see `pinning`).
    pub sut_cpus: Vec<usize>,
}

impl ResourceLimits {
    /// `CPU 0.50 cores, no memory limit per process (cgroups); on CPUs [0]`.
    pub fn describe(&self) -> String {
        let mut text = format!("{}; on CPUs {:?}", self.enforced.describe(), self.sut_cpus);
        if let Some(reason) = &self.unavailable {
            write!(text, "; asked for {}: {reason}", self.asked.describe()).ok();
        }
        text
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Environment {
    pub shoplab_version: String,
    /// The commit the lab's binary was built from (`unknown` outside a git checkout).
    pub git_sha: String,
    /// Whether the binary's source differed from that commit (uncommitted changes to a
    /// tracked file, documents and reports not counted); absent outside a git checkout and
    /// in runs from before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_dirty: Option<bool>,
    pub cpu_model: String,
    pub cores: usize,
    pub os: String,
    pub kernel: String,
    /// The compiler that built the lab.
    pub rustc: String,
    pub crates: Vec<(String, String)>,
}

impl Environment {
    /// The commit, short, and whether the build had changes of its own: `f053539f496d`,
    /// `f053539f496d + uncommitted changes`.
    pub fn built_from(&self) -> String {
        let commit: String = self.git_sha.chars().take(12).collect();
        match self.git_dirty {
            Some(true) => format!("{commit} + uncommitted changes"),
            _ => commit,
        }
    }
}
