//! What a run writes into its folder: `results.json` (versioned, with every setting and the
//! environment stamp), `history.jsonl` (every request), CSV files per experiment
//! ([`csv`]), and a plain-text `summary.txt` (also printed; [`summary`]).

mod csv;
mod summary;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

pub use summary::summary;

use super::calibration::Calibration;
use super::cgroup::ProcessLimits;
use super::experiments::Outcome;
use super::pinning::Pinning;
use super::profile::Profile;
use crate::history::RequestRecord;

/// Bumped whenever a field changes meaning or goes away.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Serialize, Deserialize)]
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
    /// `quick profile, 116 s, on 2 cores (AMD EPYC); the load generator on CPU [1], the shop
    /// on CPU [0]; database: sqlite` — how the run was made, in one line.
    pub fn headline(&self) -> String {
        format!(
            "{} profile on the {} target, {:.0} s, on {} cores ({}); the load generator on CPU {:?}, the shop on CPU {:?}; database: {}",
            self.profile.name,
            self.settings.target,
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
    /// `CPU 0.50 cores, no memory limit per process (cgroup v1); on CPUs [0]`.
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
    pub git_sha: String,
    pub cpu_model: String,
    pub cores: usize,
    pub os: String,
    pub kernel: String,
    pub rustc: String,
    pub crates: Vec<(String, String)>,
}

impl Environment {
    /// `cores`: the machine's, counted before the lab pinned itself to some of them.
    pub fn stamp(cores: usize) -> Environment {
        Environment {
            shoplab_version: env!("CARGO_PKG_VERSION").into(),
            git_sha: command_line("git", &["rev-parse", "HEAD"]),
            cpu_model: cpu_model(),
            cores,
            os: sysinfo::System::long_os_version().unwrap_or_else(|_| "unknown".into()),
            kernel: sysinfo::System::kernel_version().unwrap_or_else(|_| "unknown".into()),
            rustc: command_line("rustc", &["--version"]),
            crates: crate_versions(),
        }
    }
}

fn command_line(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The versions of the crates that decide the numbers, from the lock file this binary was
/// built with.
fn crate_versions() -> Vec<(String, String)> {
    const LOCK: &str = include_str!("../../../../Cargo.lock");
    const WANTED: [&str; 8] = [
        "goose",
        "axum",
        "hyper",
        "tokio",
        "sqlx",
        "reqwest",
        "tower",
        "serde_json",
    ];
    let mut versions = Vec::new();
    let mut name = None;
    for line in LOCK.lines() {
        if let Some(value) = line.strip_prefix("name = ") {
            name = Some(value.trim_matches('"'));
        } else if let (Some(value), Some(current)) = (line.strip_prefix("version = "), name)
            && WANTED.contains(&current)
        {
            versions.push((current.to_owned(), value.trim_matches('"').to_owned()));
        }
    }
    versions
}

/// Writes every file of the run into `dir`.
pub fn write(
    dir: &Path,
    results: &Results,
    history: &[(String, String, Vec<RequestRecord>)],
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let json = serde_json::to_vec_pretty(results)?;
    std::fs::write(dir.join("results.json"), json).context("write results.json")?;
    write_history(&dir.join("history.jsonl"), history)?;
    csv::write(dir, results)?;
    std::fs::write(dir.join("summary.txt"), summary(results)).context("write summary.txt")?;
    Ok(())
}

/// One line per request, with the build and experiment it belongs to.
fn write_history(
    path: &Path,
    history: &[(String, String, Vec<RequestRecord>)],
) -> anyhow::Result<()> {
    #[derive(Serialize)]
    struct Line<'a> {
        build: &'a str,
        experiment: &'a str,
        #[serde(flatten)]
        record: &'a RequestRecord,
    }
    let file = std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    for (build, experiment, records) in history {
        for record in records {
            serde_json::to_writer(
                &mut out,
                &Line {
                    build,
                    experiment,
                    record,
                },
            )?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// A measured figure to `places` decimals, or `absent` where the target could not measure it
/// (the CSV's empty field, the summary's `n/a`).
fn figure(value: Option<f64>, places: usize, absent: &str) -> String {
    value.map_or_else(|| absent.to_owned(), |value| format!("{value:.places$}"))
}
