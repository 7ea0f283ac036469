//! `shoplab suite FILE`: every cell of a matrix (databases × targets × topologies ×
//! repeats, under one set of load settings) as its own `shoplab compare` child process, each
//! with its own folder and full report, then one combined report over them.
//!
//! A child process per cell, not a call into `compare::run`: a cell that crashes, hangs up
//! its platform or exits on a violated invariant cannot take the suite down, and its folder
//! is exactly what `shoplab compare --out` would have written by hand.
//!
//! - `file` — the suite file, checked whole before anything runs;
//! - `report` — `suite.md` and `suite.html` from the cells' `results.json`.

mod file;
mod report;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use file::{Cell, Suite};

/// The flags of `shoplab suite`.
#[derive(Clone, Debug, clap::Args)]
pub struct SuiteArgs {
    /// The suite file (TOML): the axes, the load settings and the repeats. See
    /// docs/suites/ for examples.
    pub file: PathBuf,
    /// The suite's folder (default `reports/suites/<file name>/`): a folder per cell under
    /// `cells/`, the manifest, `suite.md` and `suite.html`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Start over: remove the cells of an earlier run in the folder, even of a suite file
    /// that has changed since.
    #[arg(long)]
    pub fresh: bool,
}

/// What the suite folder remembers of the file it ran, to refuse mixing two suites' cells.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Manifest {
    file: String,
    fingerprint: String,
    settings: serde_json::Value,
}

/// Written by the suite beside a cell's results once its compare exited having written
/// everything (0, or 3 for a violated invariant: both exit after the report is written).
/// Without it the cell is not finished, whatever else its folder holds.
#[derive(Debug, Serialize, Deserialize)]
struct Finished {
    exit_code: i32,
    duration_s: f64,
}

/// Why a cell did not finish: the suite goes on to the next cell after a failure, and stops
/// after an interruption.
enum Stop {
    Interrupted(anyhow::Error),
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for Stop {
    fn from(error: anyhow::Error) -> Stop {
        Stop::Failed(error)
    }
}

/// The file a cell's compare writes its whole output to.
pub(crate) const CELL_LOG: &str = "compare.log";
const MANIFEST: &str = "suite.json";
const FINISHED: &str = "cell.json";

/// Runs the suite. Errors before the first cell for a bad file or a folder of another
/// suite; after the last cell, with the combined report written, when a cell failed.
/// `Ok(false)`: every cell ran and an invariant was violated in one.
pub async fn run(args: SuiteArgs) -> anyhow::Result<bool> {
    let suite = file::read(&args.file)?;
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args.file.file_stem().unwrap_or_default();
        PathBuf::from("reports").join("suites").join(stem)
    });
    let cells = suite.cells();
    prepare_folder(&out, &args, &suite)?;

    let finished: Vec<bool> = cells
        .iter()
        .map(|cell| is_finished(&cell_dir(&out, cell)))
        .collect();
    let to_run = finished.iter().filter(|done| !**done).count();
    println!(
        "suite {}: {} cells ({} databases × {} targets × {} topologies × {} repeats), {} to \
         run, {} kept from an earlier run; compare {}",
        args.file.display(),
        cells.len(),
        suite.databases.len(),
        suite.targets.len(),
        suite.topologies.as_ref().map_or(1, Vec::len),
        suite.repeats,
        to_run,
        cells.len() - to_run,
        cells.first().map(shown_args).unwrap_or_default(),
    );
    for (cell, done) in cells.iter().zip(&finished) {
        println!("  {} {}", if *done { "kept" } else { "run " }, cell.name);
    }

    let program = std::env::current_exe().context("find the shoplab executable")?;
    let bar = ProgressBar::new(to_run as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut failed = Vec::new();
    for (cell, done) in cells.iter().zip(&finished) {
        if *done {
            continue;
        }
        bar.set_message(cell.name.clone());
        match run_cell(&program, &out, cell).await {
            Ok(()) => {}
            Err(Stop::Interrupted(error)) => {
                bar.abandon();
                return Err(error.context(format!("cell {}", cell.name)));
            }
            Err(Stop::Failed(error)) => {
                // Printed past the bar, which draws nothing when stderr is not a terminal.
                bar.suspend(|| eprintln!("{}: {error:#}", cell.name));
                failed.push(cell.name.clone());
            }
        }
        bar.inc(1);
    }
    bar.finish_with_message("done");

    let rows = report::write(&out, &cells).context("write the suite's report")?;
    println!(
        "written to {}; open {} in a browser",
        out.display(),
        out.join("suite.html").display()
    );
    anyhow::ensure!(
        failed.is_empty(),
        "{} of {} cells failed ({}); each one's {CELL_LOG} says why, and the next run of the \
         suite runs them again",
        failed.len(),
        cells.len(),
        failed.join(", ")
    );
    Ok(rows.iter().all(|row| row.invariants_held != Some(false)))
}

/// The folder of one cell.
fn cell_dir(out: &Path, cell: &Cell) -> PathBuf {
    out.join("cells").join(&cell.name)
}

/// compare's flags with the database's password hidden.
fn shown_args(cell: &Cell) -> String {
    let mut shown = cell.args.clone();
    if let Some(index) = shown.iter().position(|arg| arg == "--db") {
        shown[index + 1] = "<database>".to_owned();
    }
    shown.join(" ")
}

/// Creates the suite's folder, or checks that the one there belongs to this suite file
/// (settings unchanged); `--fresh` clears the cells of whatever ran there before.
fn prepare_folder(out: &Path, args: &SuiteArgs, suite: &Suite) -> anyhow::Result<()> {
    let manifest = Manifest {
        file: args.file.display().to_string(),
        fingerprint: suite.fingerprint(),
        settings: shown_settings(suite)?,
    };
    let path = out.join(MANIFEST);
    if args.fresh {
        for ours in ["cells", MANIFEST, "suite.md", "suite.html"] {
            let path = out.join(ours);
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match removed {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    return Err(error).with_context(|| format!("remove {}", path.display()));
                }
                _ => {}
            }
        }
    } else if path.exists() {
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        let earlier: Manifest = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a suite manifest", path.display()))?;
        anyhow::ensure!(
            earlier.fingerprint == manifest.fingerprint,
            "{} holds the cells of suite file {} with other settings than {} has now; \
             nothing was started. Run with --fresh to replace them, or give another --out",
            out.display(),
            earlier.file,
            args.file.display()
        );
    } else {
        anyhow::ensure!(
            !out.join("cells").exists(),
            "{} holds cells but no {MANIFEST}, so which suite they belong to is unknown; \
             nothing was started. Run with --fresh to replace them, or give another --out",
            out.display()
        );
    }
    std::fs::create_dir_all(out.join("cells"))
        .with_context(|| format!("create {}", out.display()))?;
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest)?)
        .with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

/// The settings as the manifest shows them to a reader: the databases without passwords,
/// since a suite's folder is made to be shared. The fingerprint covers the full URLs.
fn shown_settings(suite: &Suite) -> anyhow::Result<serde_json::Value> {
    let mut settings = serde_json::to_value(suite)?;
    settings["databases"] = suite
        .databases
        .iter()
        .map(|database| serde_json::Value::from(database.shown()))
        .collect();
    Ok(settings)
}

/// A cell is finished when the suite recorded its compare's ending and its results load.
fn is_finished(dir: &Path) -> bool {
    dir.join(FINISHED).is_file() && loadtest_report::load(dir).is_ok()
}

/// Runs one cell's compare from scratch, its output into the cell's log.
async fn run_cell(program: &Path, out: &Path, cell: &Cell) -> Result<(), Stop> {
    // A suite stopped by SIGINT or SIGTERM stops its cell's compare too (whose own children
    // die with it), rather than leave it measuring alone; the cell runs again next time.
    // Listened for before the child exists, so no signal finds the suite without a handler.
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("listen for SIGTERM")?;
    let dir = cell_dir(out, cell);
    // A folder left by an interrupted run holds part of a run: it is replaced, not resumed.
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let log = std::fs::File::create(dir.join(CELL_LOG)).context("create the cell's log")?;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(program)
        .arg("compare")
        .args(&cell.args)
        .arg("--out")
        .arg(&dir)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().context("share the cell's log")?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("start shoplab compare")?;
    let status = tokio::select! {
        status = child.wait() => status.context("wait for shoplab compare")?,
        _ = interrupt.recv() => {
            child.kill().await.context("stop the cell's compare")?;
            return Err(Stop::Interrupted(anyhow::anyhow!(
                "interrupted (SIGINT); the cell runs again on the next run of the suite"
            )));
        }
        _ = terminate.recv() => {
            child.kill().await.context("stop the cell's compare")?;
            return Err(Stop::Interrupted(anyhow::anyhow!(
                "interrupted (SIGTERM); the cell runs again on the next run of the suite"
            )));
        }
    };
    let exit_code = status.code().unwrap_or(-1);
    // 0 and 3 (an invariant violated) are the two endings after which compare has written
    // every file of its folder; anything else left a partial folder.
    if exit_code != 0 && exit_code != crate::cli::EXIT_INVARIANT_VIOLATED {
        return Err(Stop::Failed(anyhow::anyhow!(
            "compare ended with {status}; see {}",
            dir.join(CELL_LOG).display()
        )));
    }
    loadtest_report::load(&dir).context("read the cell's results")?;
    let finished = Finished {
        exit_code,
        duration_s: started.elapsed().as_secs_f64(),
    };
    std::fs::write(
        dir.join(FINISHED),
        serde_json::to_vec_pretty(&finished).context("encode the cell's ending")?,
    )
    .context("record the cell as finished")?;
    Ok(())
}
