//! What a run writes into its folder: `results.json` (versioned, with every setting and the
//! environment stamp), `history.jsonl` (every request), CSV files per experiment, and a
//! plain-text `summary.txt` (also printed).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::analysis::Timeline;
use super::calibration::Calibration;
use super::cgroup::ProcessLimits;
use super::experiments::{Findings, Outcome};
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
    const LOCK: &str = include_str!("../../../Cargo.lock");
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
    write_csv(dir, results)?;
    std::fs::write(dir.join("summary.txt"), summary(results)).context("write summary.txt")?;
    Ok(())
}

fn timeline_rows(
    csv: &mut String,
    build: &str,
    experiment: &str,
    timeline: &Timeline,
) -> std::fmt::Result {
    for slice in &timeline.slices {
        writeln!(
            csv,
            "{build},{experiment},{},{},{},{},{},{},{},{}",
            slice.t_ms,
            timeline.slice_ms,
            slice.journey,
            slice.ok,
            slice.fail,
            slice.maybe_applied,
            slice.p50_us,
            slice.p99_us
        )?;
    }
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

fn write_csv(dir: &Path, results: &Results) -> anyhow::Result<()> {
    let mut throughput = String::from(
        "build,users,repeat,requests,requests_per_s,error_rate,p50_us,p95_us,p99_us,\
         corrected_p50_us,corrected_p99_us,sut_cpu_s,sut_peak_rss_mib,requests_per_sut_cpu_s,\
         generator_cpu_share,generator_limited\n",
    );
    let mut faults = String::from(
        "build,kind,context,process,journey,before_success,during_success,after_success,\
         before_p99_us,during_p99_us,after_p99_us,blast_radius,time_to_recover_ms,restarts\n",
    );
    let mut scaling = String::from(
        "build,component,users,replicas,requests_per_s,error_rate,p99_us,sut_cpu_s,requests_per_sut_cpu_s\n",
    );
    let mut deploys =
        String::from("build,component,strategy,time_to_ready_ms,requests,failed_requests\n");
    let mut timeline = String::from(
        "build,experiment,t_ms,slice_ms,journey,ok,fail,maybe_applied,p50_us,p99_us\n",
    );
    let rate = |rate: Option<f64>| rate.map_or(String::new(), |rate| format!("{rate:.4}"));
    for outcome in &results.experiments {
        let build = outcome.build.as_str();
        match &outcome.findings {
            Findings::Throughput { levels } => {
                for level in levels {
                    writeln!(
                        throughput,
                        "{build},{},{},{},{:.1},{:.4},{},{},{},{},{},{:.3},{:.1},{:.1},{:.3},{}",
                        level.users,
                        level.repeat,
                        level.requests,
                        level.requests_per_s,
                        level.error_rate,
                        level.raw.p50_us,
                        level.raw.p95_us,
                        level.raw.p99_us,
                        level.corrected.p50_us,
                        level.corrected.p99_us,
                        level.sut_cpu_s,
                        level.sut_peak_rss_mib,
                        level.requests_per_sut_cpu_s,
                        level.generator_cpu_share,
                        level.generator_limited
                    )?;
                    let experiment = format!("throughput-{}u-r{}", level.users, level.repeat);
                    timeline_rows(&mut timeline, build, &experiment, &level.timeline)?;
                }
            }
            Findings::Faults {
                cells,
                timeline: slices,
            } => {
                timeline_rows(&mut timeline, build, "faults", slices)?;
                for cell in cells {
                    for phases in &cell.journeys {
                        writeln!(
                            faults,
                            "{build},{},{},{},{},{},{},{},{},{},{},{:.3},{},{}",
                            cell.kind.as_str(),
                            cell.context,
                            cell.process,
                            phases.journey,
                            rate(phases.before.success_rate),
                            rate(phases.during.success_rate),
                            rate(phases.after.success_rate),
                            phases.before.latency.p99_us,
                            phases.during.latency.p99_us,
                            phases.after.latency.p99_us,
                            cell.blast_radius,
                            cell.time_to_recover_ms
                                .map_or(String::new(), |ms| ms.to_string()),
                            cell.restarts
                        )?;
                    }
                }
            }
            Findings::Scale(scale) => {
                for half in [&scale.before, &scale.after] {
                    writeln!(
                        scaling,
                        "{build},{},{},{},{:.1},{:.4},{},{:.3},{:.1}",
                        scale.component,
                        scale.users,
                        half.replicas,
                        half.requests_per_s,
                        half.error_rate,
                        half.latency.p99_us,
                        half.sut_cpu_s,
                        half.requests_per_sut_cpu_s
                    )?;
                }
            }
            Findings::Deploy(found) => {
                timeline_rows(&mut timeline, build, "deploy", &found.timeline)?;
                for deploy in &found.each {
                    writeln!(
                        deploys,
                        "{build},{},{},{},{},{}",
                        deploy.component,
                        deploy.strategy,
                        deploy.time_to_ready_ms,
                        deploy.requests,
                        deploy.failed_requests
                    )?;
                }
            }
        }
    }
    for (name, text) in [
        ("throughput.csv", throughput),
        ("faults.csv", faults),
        ("deploys.csv", deploys),
        ("scale.csv", scaling),
        ("timeline.csv", timeline),
    ] {
        std::fs::write(dir.join(name), text).with_context(|| format!("write {name}"))?;
    }
    Ok(())
}

/// The plain-text summary: what a reader wants first, with how it was measured.
pub fn summary(results: &Results) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "shoplab compare — run {} ({} profile, {:.0} s)\n{} cores ({}), generator on CPU {:?}, shop on CPU {:?}; {}\nlimits: {}",
        results.run_id,
        results.profile.name,
        results.duration_s,
        results.environment.cores,
        results.environment.cpu_model,
        results.settings.pinning.generator_cpus,
        results.settings.pinning.sut_cpus,
        results.settings.database,
        results.settings.resource_limits.describe(),
    );
    if let Some(calibration) = &results.calibration {
        let null = &calibration.null_endpoint;
        let hop = &calibration.hop;
        let _ = writeln!(
            text,
            "\ncalibration\n  null endpoint: {:.0} req/s at {} users (p50 {:.2} ms), generator CPU {:.0} %: {}\n  one request at a time, medians of {}: loopback \
             round trip {} us; monolith list {} us; catalog service alone {} us; through the \
             gateway {} us (one boundary: +{} us)",
            null.requests_per_s,
            null.users,
            null.latency.p50_us as f64 / 1000.0,
            null.generator_cpu_share * 100.0,
            if null.generator_limited {
                "the most this generator drives here"
            } else {
                "the server side set this pace (its core was busy), the generator can drive more"
            },
            hop.requests,
            hop.null_us,
            hop.monolith_us,
            hop.service_us,
            hop.gateway_us,
            hop.gateway_us as i64 - hop.monolith_us as i64,
        );
    }
    for outcome in &results.experiments {
        let build = outcome.build.as_str();
        match &outcome.findings {
            Findings::Throughput { levels } => {
                let _ = writeln!(
                    text,
                    "\nthroughput — {build} (closed loop; latency raw / CO-corrected)"
                );
                let _ = writeln!(
                    text,
                    "  {:>5} {:>9} {:>7} {:>9} {:>9} {:>11} {:>9} {:>8} {:>10}",
                    "users",
                    "req/s",
                    "errors",
                    "p50 ms",
                    "p99 ms",
                    "p99 CO ms",
                    "shop CPU",
                    "RSS MiB",
                    "generator"
                );
                for level in levels {
                    let _ = writeln!(
                        text,
                        "  {:>5} {:>9.0} {:>6.2}% {:>9.2} {:>9.2} {:>11.2} {:>8.1}s {:>8.0} {:>9.0}%{}",
                        level.users,
                        level.requests_per_s,
                        level.error_rate * 100.0,
                        level.raw.p50_us as f64 / 1000.0,
                        level.raw.p99_us as f64 / 1000.0,
                        level.corrected.p99_us as f64 / 1000.0,
                        level.sut_cpu_s,
                        level.sut_peak_rss_mib,
                        level.generator_cpu_share * 100.0,
                        if level.generator_limited {
                            "  ! generator-limited"
                        } else {
                            ""
                        }
                    );
                }
            }
            Findings::Scale(scale) => {
                let _ = writeln!(
                    text,
                    "\nscale — {build} (+1 replica of {}, {} users, through the front door; the shop has {} core(s))",
                    scale.component, scale.users, scale.sut_cores
                );
                for half in [&scale.before, &scale.after] {
                    let _ = writeln!(
                        text,
                        "  {} replica(s): {:>7.0} req/s, p99 {:>7.2} ms, {:>6.1} CPU s, {:>6.0} req per CPU s",
                        half.replicas,
                        half.requests_per_s,
                        half.latency.p99_us as f64 / 1000.0,
                        half.sut_cpu_s,
                        half.requests_per_sut_cpu_s
                    );
                }
                let _ = writeln!(text, "  speedup x{:.2}", scale.speedup);
            }
            Findings::Deploy(found) => {
                let _ = writeln!(
                    text,
                    "\ndeploy — {build} (under steady load, through the front door; failed = from the deploy's start to 500 ms after)"
                );
                for deploy in &found.each {
                    let _ = writeln!(
                        text,
                        "  {:<16} {:<9} ready in {:>5} ms, {:>5} of {:>6} requests failed{}",
                        deploy.component,
                        deploy.strategy,
                        deploy.time_to_ready_ms,
                        deploy.failed_requests,
                        deploy.requests,
                        deploy
                            .error
                            .as_deref()
                            .map(|error| format!(" ({})", first_line(error)))
                            .unwrap_or_default()
                    );
                }
                let storm = &found.storm;
                let _ = writeln!(
                    text,
                    "  storm of {} deploys in {:.1} s: {} of {} requests failed, median ready in {} ms",
                    storm.deploys,
                    storm.duration_ms as f64 / 1000.0,
                    storm.failed_requests,
                    storm.requests,
                    storm.median_time_to_ready_ms
                );
            }
            Findings::Faults { cells, .. } => {
                let _ = writeln!(
                    text,
                    "\nfaults — {build} (success before → during → after; blast radius = share of route templates degraded)"
                );
                for cell in cells {
                    let journeys: Vec<String> = cell
                        .journeys
                        .iter()
                        .map(|phases| {
                            let pct = |rate: Option<f64>| {
                                rate.map_or("-".into(), |rate| format!("{:.0}%", rate * 100.0))
                            };
                            format!(
                                "{} {}→{}→{}",
                                phases.journey,
                                pct(phases.before.success_rate),
                                pct(phases.during.success_rate),
                                pct(phases.after.success_rate)
                            )
                        })
                        .collect();
                    let _ = writeln!(
                        text,
                        "  {:<8} {:<16} radius {:>4.0}%  recover {:>6}  {}{}",
                        cell.kind.as_str(),
                        cell.context,
                        cell.blast_radius * 100.0,
                        cell.time_to_recover_ms
                            .map_or("never".into(), |ms| format!("{ms} ms")),
                        journeys.join(", "),
                        cell.error
                            .as_deref()
                            .map(|error| format!(" ({})", first_line(error)))
                            .unwrap_or_default()
                    );
                }
            }
        }
        let broken: Vec<String> = outcome
            .invariants
            .invariants
            .iter()
            .filter(|invariant| invariant.violations > 0)
            .map(|invariant| format!("{} x{}", invariant.id, invariant.violations))
            .collect();
        let _ = writeln!(
            text,
            "  invariants: {}{}",
            if broken.is_empty() {
                "all hold".to_owned()
            } else {
                format!("VIOLATED {}", broken.join(", "))
            },
            if outcome.quiescent {
                ""
            } else {
                " (not quiescent: a reservation was still held)"
            }
        );
    }
    let _ = writeln!(
        text,
        "\nverdict: {}",
        if results.valid {
            "every invariant held on both builds"
        } else {
            "an invariant was violated (see results.json)"
        }
    );
    text
}

/// The first line of a message, at most 100 characters, for the summary.
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default();
    match line.char_indices().nth(100) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_owned(),
    }
}
