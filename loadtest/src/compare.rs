//! `shoplab compare`: the experiments on both builds, same load, same seed, one after the
//! other on the same cores; then the results folder.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use domain::Topology;
use loadtest_lab::calibration::Calibrator;
use loadtest_lab::experiments::{self, Experiment, Kind};
use loadtest_lab::journeys::Shopfront;
use loadtest_lab::load::LoadPlan;
use loadtest_platform::{PlatformArgs, Target, TargetSettings};
use loadtest_platform::{cgroup, pinning};
use loadtest_results::component::Build;
use loadtest_results::gates::Gate;
use loadtest_results::profile::Profile;
use loadtest_results::resources::{Pinning, ProcessLimits};
use loadtest_results::{ResourceLimits, Results, RunSettings};

/// The flags of `shoplab compare`, under a heading each; the platform groups come last.
#[derive(Clone, Debug, clap::Args)]
pub struct CompareArgs {
    /// The short profile (CI, workshops): 2 load levels x 5 s, a capacity ramp of at most 9
    /// steps x 2 s, 3 faults, a storm of 10.
    #[arg(long, help_heading = "What to run")]
    pub quick: bool,
    /// Which experiments, comma-separated (default: throughput,deploy,faults,scale, and
    /// nodes on a platform with nodes to lose and drain).
    #[arg(long, value_delimiter = ',', help_heading = "What to run")]
    pub experiments: Option<Vec<Kind>>,
    /// The topologies to run, one after the other: presets (monolith, satellites,
    /// browse-buy, coarse, micro) or specs (`catalog+recommendations,inventory,...`, each
    /// naming all seven contexts), comma-separated. A topology between the two builds runs
    /// on --target local, every experiment but scale (a deploy or fault of a context hits its
    /// group's process).
    #[arg(
        long,
        value_name = "TOPOLOGY",
        value_parser = parse_topologies,
        default_value = "monolith,micro",
        help_heading = "What to run"
    )]
    pub topologies: Topologies,
    /// Repeats of each throughput level, at least 1 (default: 1 quick, 3 full).
    #[arg(
        long,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..),
        help_heading = "What to run"
    )]
    pub repeat: Option<usize>,
    /// The CPU quota the scale experiment holds each shop process to, the added replica
    /// too (cgroups; local target). Default: the profile's, 0.1 of a core (see
    /// `loadtest_results::profile::SCALE_QUOTA_CORES` for why); 0: none.
    #[arg(long, value_name = "CORES", value_parser = quota_cores, help_heading = "What to run")]
    pub scale_quota: Option<f64>,
    /// The share of calls the fault matrix's `errors` cells fail, comma-separated: each
    /// context's `errors` cell runs once per rate, each its own cell (0.01–1, the fault
    /// catalogue's range). Default: the profile's, 0.5 quick, 0.3,0.5,0.7 on inventory full.
    #[arg(
        long,
        value_name = "RATE",
        value_delimiter = ',',
        value_parser = error_rate,
        help_heading = "What to run"
    )]
    pub error_rates: Vec<f64>,
    /// Seed of the data and of nothing else: the journeys draw their own random numbers.
    #[arg(long, default_value_t = 42, help_heading = "What to run")]
    pub seed: u64,
    /// `sqlite` (files in a temporary folder) or a PostgreSQL server
    /// (`postgres://user@host:port`; each build gets databases of the run's own,
    /// `shoplab_run_<build>_<random>_*`, dropped when it stops, or by the next run on the
    /// server when a killed run could not).
    #[arg(long, default_value = "sqlite", help_heading = "What to run")]
    pub db: String,
    /// The run's folder (default `reports/<run-id>/`); created and tested for writing
    /// before anything is measured.
    #[arg(long, help_heading = "Output")]
    pub out: Option<PathBuf>,
    /// Forward the shop's own logs to stderr.
    #[arg(long, help_heading = "Output")]
    pub logs: bool,
    /// Fail (exit 4) when a threshold is crossed, repeatable. On each build: `p99>200ms`,
    /// `p50>=20ms`, `error_rate>1%`, `throughput<500` (successful req/s); on one build:
    /// `micro.p99>150ms`; across builds, micro ÷ monolith: `ratio.p99>3`. Read from the
    /// throughput experiment's highest load level (median over repeats); latencies are of
    /// successful requests only.
    #[arg(long, value_name = "GATE", value_parser = Gate::parse, help_heading = "Gates")]
    pub fail_if: Vec<Gate>,
    /// Hold every shop process (the monolith, each service, the gateway) to this many cores
    /// of CPU time (cgroup v1 CFS quota; 0.5 = half a core). Default: no quota; both builds
    /// share the cores the system under test is pinned to. Local target only.
    #[arg(long, value_name = "CORES", value_parser = positive_cores, help_heading = "Process limits")]
    pub process_cpu: Option<f64>,
    /// Hold every shop process to this much memory (cgroup v1 `memory.limit_in_bytes`); a
    /// process past it is OOM-killed and restarted by the lab. Default: no limit. Local
    /// target only.
    #[arg(
        long,
        value_name = "MIB",
        value_parser = clap::value_parser!(u64).range(32..),
        help_heading = "Process limits"
    )]
    pub process_memory: Option<u64>,
    #[command(flatten, next_help_heading = "Platform")]
    pub platform: PlatformArgs,
}

/// How a `compare` ended, for the exit code: invariants first, then gates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ending {
    /// Every invariant held after every experiment on both builds.
    pub invariants_held: bool,
    /// Every `--fail-if` gate passed.
    pub gates_passed: bool,
}

/// The topologies `--topologies` names, in its order.
#[derive(Clone, Debug)]
pub struct Topologies(pub Vec<Topology>);

/// Splits `--topologies` into topologies as the workshop's `--topologies` does
/// (`domain::topology::parse_list`: a spec's own commas stay its own).
fn parse_topologies(text: &str) -> Result<Topologies, String> {
    domain::topology::parse_list(text).map(Topologies)
}

fn positive_cores(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(cores) if cores >= 0.01 && cores.is_finite() => Ok(cores),
        _ => Err(format!(
            "{text:?} is not a number of cores >= 0.01 (0.5 = half a core)"
        )),
    }
}

/// A quota in cores, or 0 for none.
fn quota_cores(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(0.0) => Ok(0.0),
        _ => positive_cores(text),
    }
}

/// One `--error-rates` value, checked against the fault catalogue's range for `errors` (the
/// admin API's own check), so a bad rate is a usage error before anything starts.
fn error_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a share of calls (0.01–1)"))?;
    domain::faults::validate("errors", &serde_json::json!({ "rate": rate }))
        .map(|_| rate)
        .map_err(|error| error.to_string())
}

/// Runs everything and says whether every invariant held and every gate passed. Bad flags
/// and an unwritable `--out` are errors before anything is started or measured.
pub async fn run(args: CompareArgs) -> anyhow::Result<Ending> {
    let started = Instant::now();
    let started_at_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let run_id = run_id(started_at_unix_ms);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports").join(&run_id));
    let mut profile = if args.quick {
        Profile::quick()
    } else {
        Profile::full()
    };
    if let Some(repeat) = args.repeat {
        profile.repeats = repeat;
    }
    if let Some(cores) = args.scale_quota {
        profile.scale_quota_cores = (cores > 0.0).then_some(cores);
    }
    if !args.error_rates.is_empty() {
        profile.set_error_rates(&args.error_rates);
    }
    // A fault cell the catalogue refuses (a rate out of range) is refused here, before
    // anything is started, rather than at its injection minutes into the run.
    profile
        .check()
        .map_err(anyhow::Error::msg)
        .context("the profile's fault matrix")?;

    let pinning = Pinning::plan();
    let env = pinning::apply(&pinning).context("pin the generator")?;
    let postgres = match args.db.as_str() {
        "sqlite" => None,
        url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Some(url.to_owned())
        }
        other => anyhow::bail!("--db takes sqlite or postgres://user@host:port, not {other:?}"),
    };
    let asked = ProcessLimits {
        cpu_cores: args.process_cpu,
        memory_mib: args.process_memory,
    };
    // The container platforms take their limits and databases from their own files
    // (docker-compose.yml, deploy/kubernetes/): a flag the run would silently ignore is
    // refused instead.
    let platform = loadtest_platform::registration(&args.platform.target)?;
    let mut kinds = args.experiments.clone().unwrap_or_else(|| {
        let mut kinds = vec![Kind::Throughput, Kind::Deploy, Kind::Faults, Kind::Scale];
        if platform.has_nodes {
            kinds.push(Kind::Nodes);
        }
        kinds
    });
    kinds.sort();
    kinds.dedup();
    anyhow::ensure!(
        platform.has_nodes || !kinds.contains(&Kind::Nodes),
        "--experiments nodes needs a platform with nodes to lose and drain (--target swarm); \
         the {} platform runs on this one machine",
        platform.name
    );
    let topologies = &args.topologies.0;
    for topology in topologies {
        loadtest_platform::check_topology(platform, topology)?;
        if Build::of_topology(topology).is_none() {
            // Scale adds one more replica of the busiest process under a CPU quota on every
            // process; a topology between the builds runs one process per group, with
            // neither replicas nor quotas (`loadtest_platform::local::topology`).
            anyhow::ensure!(
                !kinds.contains(&Kind::Scale),
                "--experiments scale cannot run on the topology {topology} yet: it adds a \
                 replica of the busiest process under a CPU quota on every process, and the lab \
                 runs a topology between the builds as one process per group, without replicas \
                 or quotas; run it on monolith and micro"
            );
        }
    }
    let generators = usize::from(args.platform.generators);
    if generators > 0 {
        anyhow::ensure!(
            platform.places_generators,
            "--generators places load generators on a cluster's nodes (--target swarm or \
             kubernetes); the {} platform has none",
            platform.name
        );
        anyhow::ensure!(
            platform.name != "swarm"
                || args.platform.swarm.swarm_manager.is_some()
                || generators <= usize::from(args.platform.swarm.swarm_nodes),
            "--generators {generators} needs a node each; --swarm-nodes is {}",
            args.platform.swarm.swarm_nodes
        );
        anyhow::ensure!(
            kinds.contains(&Kind::Throughput),
            "--generators drives the throughput sweep, which --experiments leaves out"
        );
    }
    anyhow::ensure!(
        platform.takes_process_limits || asked.is_none(),
        "--process-cpu and --process-memory hold the local target's processes; on \
         --target {} each container's limits come from its own file",
        platform.name
    );
    anyhow::ensure!(
        platform.takes_database_server || postgres.is_none(),
        "--db postgres://... is the local target's; the containers' PostgreSQL variant \
         is deploy/docker/postgres.yml"
    );
    // Limits this machine cannot enforce are recorded as such, and the run goes on without
    // them rather than measuring something other than what it says.
    let unavailable = cgroup::check_available(&asked)
        .err()
        .map(|error| format!("unavailable: {error:#}"));
    let limits = if unavailable.is_some() {
        ProcessLimits::default()
    } else {
        asked
    };
    let settings = TargetSettings {
        program: std::env::current_exe().context("find the shoplab executable")?,
        postgres: postgres.clone(),
        seed: args.seed,
        products: 1_000,
        users: 100,
        stock: 1_000_000,
        env: env.clone(),
        forward_logs: args.logs,
        limits,
        platform: args.platform.target.clone(),
        compose: loadtest_platform::compose::ComposeSettings {
            // A topology's generated compose file, beside the results it produced.
            generated: Some(out.clone()),
            ..args.platform.compose.settings(pinning.sut_cpus.clone())
        },
        kubernetes: args.platform.kubernetes.settings(),
        swarm: args
            .platform
            .swarm
            .settings(&args.platform.compose, args.platform.generators),
    };
    let mut run_settings = RunSettings {
        target: args.platform.target.clone(),
        database: match (postgres.as_deref(), platform.database) {
            (Some(url), _) => loadtest_platform::local::supervisor::redact(url),
            (None, Some(own)) => own.to_owned(),
            (None, None) => "sqlite".into(),
        },
        seed: settings.seed,
        products: settings.products,
        users: settings.users,
        stock: settings.stock,
        browse_weight: 4,
        buy_weight: 1,
        request_timeout_ms: 5_000,
        pinning: pinning.clone(),
        resource_limits: ResourceLimits {
            asked,
            enforced: limits,
            unavailable,
            sut_cpus: pinning.sut_cpus.clone(),
        },
        env,
        shop: Some(shop_settings()?),
        platform_detail: None,
    };

    // The last check before anything is started: the folder the results go to.
    writable_folder(&out)?;

    let bars = MultiProgress::new();
    let overall = bars.add(ProgressBar::new((topologies.len() * kinds.len()) as u64));
    overall.set_style(
        ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    overall.enable_steady_tick(Duration::from_millis(200));
    let mut outcomes = Vec::new();
    let mut calibrator = Calibrator::default();
    let mut history = Vec::new();
    for topology in topologies {
        // Every message names the topology: `monolith` and `micro` for the two builds.
        let build = topology;
        overall.set_message(format!("starting {build}"));
        let mut target = Target::start_topology(topology, &settings).await?;
        run_settings.platform_detail = run_settings.platform_detail.or(target.describe());
        target.reset(&settings).await?;
        // The calibration's null endpoint is the lab's front door, on the shop's cores: a
        // platform without one (a cluster) has no calibration (the report says so) rather
        // than one measured against something else.
        if let Err(why) = target.calibration_urls().await {
            overall.println(format!("{build}: no calibration: {why:#}"));
        } else {
            overall.set_message(format!("{build}: calibrating (null endpoint, hop ladder)"));
            let users = profile.levels.iter().copied().max().unwrap_or(16);
            calibrator
                .measure(
                    &mut target,
                    users,
                    profile.calibration,
                    pinning.generator_cores(),
                )
                .await
                .with_context(|| format!("calibrate on {build}"))?;
        }
        for kind in &kinds {
            let bar = bars.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("     {spinner} {prefix:<22} {elapsed:>4} {msg}")
                    .expect("valid template"),
            );
            bar.set_prefix(format!("{build} {}", kind.as_str()));
            bar.enable_steady_tick(Duration::from_millis(120));
            overall.set_message(format!("{build}: {}", kind.as_str()));
            bar.set_message("resetting the data");
            let reset = target.reset(&settings).await?;
            let shop = Shopfront {
                products: reset.products,
                users: reset.users,
                first_user: 0,
                password: reset.user_password.clone(),
                browse_weight: run_settings.browse_weight,
                buy_weight: run_settings.buy_weight,
            };
            // The throughput sweep goes straight to the build; the experiments that replace
            // or break the public process go through the front door.
            let base_url = match kind {
                Kind::Throughput => target.direct_url(),
                _ => target.url(),
            };
            let template = LoadPlan {
                base_url: base_url.to_owned(),
                users: profile.steady_users,
                duration: profile.level_duration,
                rate: None,
                request_timeout: Duration::from_millis(run_settings.request_timeout_ms),
            };
            let experiment = Experiment {
                target: &mut target,
                profile: &profile,
                shop,
                template,
                generator_cores: pinning.generator_cores(),
                sut_cores: pinning.sut_cores(),
                generators,
                seed: settings.seed,
                progress: &bar,
                history: Vec::new(),
            };
            let (outcome, records) = experiments::run(*kind, experiment)
                .await
                .with_context(|| format!("{} on {build}", kind.as_str()))?;
            bar.finish_with_message(format!(
                "done: {} requests, invariants {}",
                outcome.requests,
                if outcome.invariants.valid {
                    "hold"
                } else {
                    "VIOLATED"
                }
            ));
            history.push((build.to_string(), kind.as_str().to_owned(), records));
            outcomes.push(outcome);
            overall.inc(1);
        }
        overall.set_message(format!("stopping {build}"));
        target.stop().await?;
    }
    overall.finish_with_message("done");

    let valid = outcomes.iter().all(|outcome| outcome.invariants.valid);
    let results = Results {
        schema_version: loadtest_results::SCHEMA_VERSION,
        run_id,
        started_at_unix_ms,
        duration_s: started.elapsed().as_secs_f64(),
        profile,
        settings: run_settings,
        environment: crate::environment::stamp(pinning.cores),
        calibration: calibrator.finish(),
        experiments: outcomes,
        valid,
    };
    loadtest_report::folder::write(&out, &results, &history)?;
    loadtest_report::write(&out, &results).context("write the report")?;
    print!("{}", loadtest_report::summary_text(&results));
    println!(
        "written to {}; open {} in a browser",
        out.display(),
        out.join("report.html").display()
    );
    let verdicts: Vec<_> = args
        .fail_if
        .iter()
        // The gates compare the two builds; a topology between them is the spectrum's.
        .flat_map(|gate| gate.evaluate_results(&results.builds_only()))
        .collect();
    if !verdicts.is_empty() {
        println!("gates:");
        for verdict in &verdicts {
            println!("  {verdict}");
        }
    }
    Ok(Ending {
        invariants_held: valid,
        gates_passed: verdicts.iter().all(|verdict| verdict.passed),
    })
}

/// Creates the run's folder and writes and removes a file in it, so a folder the run could
/// not write fails now rather than after the whole run has been measured.
fn writable_folder(out: &std::path::Path) -> anyhow::Result<()> {
    let refuse = |what: &str| {
        format!(
            "--out {}: cannot {what}; nothing was started",
            out.display()
        )
    };
    std::fs::create_dir_all(out).with_context(|| refuse("create the folder"))?;
    let probe = out.join(".shoplab-write-probe");
    std::fs::write(&probe, b"probe").with_context(|| refuse("write in the folder"))?;
    std::fs::remove_file(&probe).with_context(|| refuse("remove a file from the folder"))?;
    Ok(())
}

/// The settings every shop process starts from, as `results.json` records them: what the
/// processes inherit (defaults, then this environment's `SHOPLAB_*`), without the secrets the
/// lab generates per run and the database and seed each process is given on its command line.
fn shop_settings() -> anyhow::Result<serde_json::Value> {
    let settings = api::Settings::load(None, serde_json::Map::new())
        .context("read the shop's settings from the environment")?;
    let mut value = serde_json::to_value(settings)?;
    if let Some(fields) = value.as_object_mut() {
        for per_run in [
            "db",
            "admin_token",
            "metrics_token",
            "token_secret",
            "service_key",
            "service_public_keys",
            "seed",
        ] {
            fields.remove(per_run);
        }
    }
    Ok(value)
}

/// `2026-11-25T07-55-03Z`: UTC, sortable, safe in a path.
fn run_id(unix_ms: u128) -> String {
    chrono::DateTime::from_timestamp_millis(unix_ms as i64)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H-%M-%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::{parse_topologies, run_id};

    #[test]
    fn topologies_split_into_presets_and_specs_whose_own_commas_stay_theirs() {
        let topologies = parse_topologies(
            "monolith,catalog+inventory,cart+orders+payments+users+recommendations,micro",
        )
        .expect("parses");
        let names: Vec<String> = topologies.0.iter().map(ToString::to_string).collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert_eq!(
            (names[0].as_str(), names[2].as_str()),
            ("monolith", "micro")
        );
        let between = &topologies.0[1];
        assert_eq!(between.groups().len(), 2, "{between}");
        assert!(between.preset().is_none(), "{between}");
    }

    #[test]
    fn a_topology_list_with_a_spec_left_short_or_a_preset_twice_is_refused() {
        let short = parse_topologies("monolith,catalog+inventory").expect_err("short spec");
        assert!(short.contains("cart"), "{short}");
        let twice = parse_topologies("micro,monolith,micro").expect_err("twice");
        assert!(
            twice.contains("micro") && twice.contains("twice"),
            "{twice}"
        );
    }

    #[test]
    fn run_ids_are_utc_timestamps_safe_in_a_path() {
        assert_eq!(run_id(0), "1970-01-01T00-00-00Z");
        assert_eq!(run_id(1_795_594_503_000), "2026-11-25T08-15-03Z");
    }
}
