//! The `shoplab` command line: which subcommand runs what.

use clap::{Parser, Subcommand};

use crate::micro::MicroArgs;

/// An invariant was violated after an experiment of `compare`: an order, a unit of stock or a
/// cent lost.
pub const EXIT_INVARIANT_VIOLATED: i32 = 3;
/// A `--fail-if` gate (or `load`'s `--max-error-rate`) failed.
pub const EXIT_GATE_FAILED: i32 = 4;

/// The exit codes, as `--help` states them.
const EXIT_CODES: &str = "Exit codes: 0 done, every invariant held and every gate passed; \
1 an error (bad input, a shop not ready, a folder not writable: before anything is measured \
where it can be told); 2 a bad flag; 3 an invariant was violated (compare; wins over 4); 4 a \
gate failed (--fail-if, or load's --max-error-rate).";

#[derive(Parser)]
#[command(
    name = "shoplab",
    version,
    about = "One shop built twice — a monolith and microservices — and a lab that measures both",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the experiments on both builds and write a report folder.
    ///
    /// Starts the monolith and then the microservices build as child processes on free
    /// loopback ports, drives each with the same Goose journeys (browse, buy), runs the
    /// experiments (throughput sweep, deploys under load, a fault matrix), checks the
    /// invariants after each, and writes results.json, history.jsonl, CSV files and a
    /// summary into reports/<run-id>/. Exits 3 when an invariant is violated, 4 when a
    /// --fail-if gate fails.
    ///
    /// Example: shoplab compare --quick --fail-if 'ratio.p99>3' --fail-if 'error_rate>1%'
    #[command(after_help = EXIT_CODES)]
    Compare(Box<crate::compare::CompareArgs>),
    /// Run a matrix of compare runs from a suite file, resumable, with one combined report.
    ///
    /// Each cell (database × target × topologies × repeat) is a `shoplab compare` child
    /// process with its own folder under OUT/cells/; a cell that finished is kept on the next
    /// run of the same file. Writes suite.md and suite.html. Exits 3 when an invariant was
    /// violated in a cell, 1 when a cell failed.
    ///
    /// Example: shoplab suite docs/suites/databases.toml
    Suite(crate::suite::SuiteArgs),
    /// Render a run's report again from its results.json.
    ///
    /// Writes report.html (one page, opens from disk, charts inline), report.md (for a git
    /// forge) and charts/ (every chart as SVG and PNG) into the run's folder, or into --out.
    /// Needs nothing but results.json: the same file always gives the same report. compare
    /// does this itself at the end of a run.
    ///
    /// Example: shoplab report reports/2026-11-25T08-14-20Z
    Report(loadtest_report::ReportArgs),
    /// Compare two runs: what changed in the key figures, the verdicts and the throughput.
    ///
    /// Takes two run folders (or their results.json files), A the earlier and B the later,
    /// and writes diff.html, diff.md and charts/ with both runs overlaid.
    ///
    /// Example: shoplab diff reports/2026-11-24T09-00-00Z reports/2026-11-25T08-14-20Z --out /tmp/diff
    Diff(loadtest_report::DiffArgs),
    /// Drive any running shop with the journeys and print what it answered.
    ///
    /// Checks first that GET /ready answers and that the shop serves --products products;
    /// then runs the closed-loop journeys, prints counts, the latency of successful requests
    /// (failures counted apart) and each gate, PASS or FAIL with what was measured. Exits 4
    /// when a gate fails; more than 1 % failed requests is a gate (--max-error-rate).
    ///
    /// Example: shoplab load --base-url http://127.0.0.1:8080 --users 16 --duration 30 --fail-if 'p99>200ms' --json load.json
    #[command(after_help = EXIT_CODES)]
    Load(loadtest_lab::load_command::LoadArgs),
    /// Start one build of the shop and serve until Ctrl-C.
    Serve {
        #[command(subcommand)]
        build: Build,
    },
    /// One process of the microservices build, as `serve micro` starts it.
    #[command(hide = true)]
    Service {
        /// `catalog`, `inventory`, `cart`, `orders`, `payments`, `users`,
        /// `recommendations`, several of them joined by `+` (one process hosting the group,
        /// e.g. `catalog+recommendations`), `gateway`, `monolith` or `front-door`.
        #[arg(value_parser = crate::service::parse_process)]
        name: crate::service::Process,
        /// What a group's process calls itself (its preset's group name, e.g. `core`);
        /// its contexts joined by `+` when absent.
        #[arg(long = "name", value_parser = micro_host::parse_process_name)]
        process_name: Option<String>,
        /// The gateway's admin port (the front door's control port).
        #[arg(long, default_value_t = 0)]
        admin_port: u16,
        /// The front door's first backends.
        #[arg(long)]
        backend: Vec<String>,
        #[command(flatten)]
        serve: api::cli::ServeArgs,
    },
    /// A TCP fault proxy in front of a service or a database, as the supervisor starts it
    /// for the network fault kinds (latency, reset, cut, bandwidth, database down).
    #[command(hide = true)]
    FaultProxy(loadtest_platform::sidecars::fault_proxy::FaultProxyArgs),
    /// Check a running shop's invariants (I1-I9: no order, unit of stock or cent lost).
    ///
    /// Reads the audit snapshot from /admin/audit and, with --history, the requests a load
    /// run recorded; prints one row per invariant and exits non-zero when any is violated.
    ///
    /// Example: shoplab check --base-url http://127.0.0.1:8080 --admin-token T --history history.jsonl
    Check(loadtest_check::CheckArgs),
    /// Start the build(s) and serve a live page to teach with: topology, charts, controls.
    ///
    /// Starts the chosen build(s), or any topologies between them, as child processes on
    /// loopback and serves a page (and the JSON API it uses, see docs/workshop.md) on
    /// 127.0.0.1: every process as a box coloured by health, naming the contexts it hosts,
    /// per-journey charts updated every second, load on demand, controls to kill, pause,
    /// slow down, break, deploy, roll back and scale any part, and a picker that swaps a
    /// running topology for another. Ctrl-C stops.
    ///
    /// Example: shoplab workshop --arch both --port 8088
    ///
    /// Example: shoplab workshop --topologies monolith,coarse
    Workshop(loadtest_workshop::WorkshopArgs),
    /// Print a fresh set of service keys for a compose deployment, as `export` lines.
    ///
    /// One Ed25519 key pair per process of the microservices build: docker-compose.yml
    /// gives each container its own private key (SHOPLAB_SERVICE_KEY_<NAME>) and every
    /// public key (SHOPLAB_SERVICE_PUBLIC_KEYS). The lab and `serve micro` make their own.
    ///
    /// Example: eval "$(shoplab service-keys)" && docker compose --profile micro up -d
    ServiceKeys,
}

#[derive(Subcommand)]
enum Build {
    /// The whole shop in one process over one database (SQLite by default).
    ///
    /// Example: shoplab serve monolith --port 8080 --seed 42
    // `--upstream` names the contexts a microservice calls; the monolith calls none, so it
    // is neither listed nor taken here.
    #[command(mut_arg("upstreams", |arg| arg.hide(true)))]
    Monolith {
        #[command(flatten)]
        serve: api::cli::ServeArgs,
    },
    /// One process per service plus the gateway, each over its own database.
    ///
    /// A process that exits is started again on its port (at once; a crash loop backs off
    /// up to 4 s), and its exit and restart are logged.
    ///
    /// Example: shoplab serve micro --port 8080 --replicas catalog=2
    Micro(MicroArgs),
    /// Any grouping of the contexts into processes, with the gateway in front of them.
    ///
    /// One process per group over the group's one database; contexts in one process call
    /// each other in-process, the others over HTTP. Checkout is one local transaction path
    /// where orders shares its process with cart, catalog, inventory and payments, the saga
    /// otherwise. `monolith` and `micro` start those builds.
    ///
    /// Example: shoplab serve topology catalog+recommendations,inventory,cart+orders+payments,users
    #[command(after_help = crate::topology::presets_help())]
    Topology(crate::topology::TopologyArgs),
}

/// Runs the command the flags name.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            build: Build::Monolith { serve },
        } => {
            anyhow::ensure!(
                serve.upstreams.is_empty(),
                "--upstream is for the processes of the microservices build; the monolith \
                 calls no other process"
            );
            monolith::run(&serve).await
        }
        Command::Serve {
            build: Build::Micro(args),
        } => crate::micro::serve(args).await,
        Command::Serve {
            build: Build::Topology(args),
        } => crate::topology::serve(args).await,
        Command::Service {
            name,
            process_name,
            admin_port,
            backend,
            serve,
        } => crate::service::run(name, process_name, admin_port, &backend, &serve).await,
        Command::FaultProxy(args) => loadtest_platform::sidecars::fault_proxy::run(args).await,
        Command::Check(args) => loadtest_check::run(args).await,
        Command::Compare(args) => {
            lab_logging();
            let ending = crate::compare::run(*args).await?;
            // The results are written; the exit code tells scripts and CI.
            if !ending.invariants_held {
                std::process::exit(EXIT_INVARIANT_VIOLATED);
            }
            if !ending.gates_passed {
                std::process::exit(EXIT_GATE_FAILED);
            }
            Ok(())
        }
        Command::Suite(args) => {
            if !crate::suite::run(args).await? {
                std::process::exit(EXIT_INVARIANT_VIOLATED);
            }
            Ok(())
        }
        Command::Report(args) => loadtest_report::run_report(args),
        Command::Diff(args) => loadtest_report::run_diff(args),
        Command::ServiceKeys => {
            let keys = domain::trust::Keyring::generate();
            for (name, value) in loadtest_platform::compose::compose_key_environment(&keys) {
                println!("export {name}={value}");
            }
            Ok(())
        }
        Command::Workshop(args) => {
            lab_logging();
            loadtest_workshop::run(args).await
        }
        Command::Load(args) => {
            lab_logging();
            if !loadtest_lab::load_command::run(args).await? {
                std::process::exit(EXIT_GATE_FAILED);
            }
            Ok(())
        }
    }
}

/// The lab's own log: warnings and errors to stderr (`RUST_LOG` overrides). Installed before
/// the first Goose attack, which then keeps it instead of its own stdout logger; Goose's
/// per-request warnings are left out because every request's outcome is recorded anyway.
fn lab_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,goose=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
