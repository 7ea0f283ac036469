//! `shoplab suite` end to end on real runs: a suite of two databases (SQLite and the
//! PostgreSQL server) × compare's two builds, quick throughput only — the smallest real runs
//! that prove an interrupted cell run again, a combined report, kept cells, and a changed
//! file refused.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, SystemTime};

/// Two quick throughput cells, each both builds, in a debug build on a shared 2-core machine
/// take about a minute each; this leaves room for a busy machine.
const SUITE_DEADLINE: Duration = Duration::from_secs(600);

const CELLS: [&str; 2] = ["sqlite.local.default.r1", "postgres.local.default.r1"];

async fn suite(file: &Path, out: &Path) -> Output {
    let command = tokio::process::Command::new(crate::support::shoplab_binary())
        .arg("suite")
        .arg(file)
        .arg("--out")
        .arg(out)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(SUITE_DEADLINE, command)
        .await
        .unwrap_or_else(|_| panic!("shoplab suite did not finish within {SUITE_DEADLINE:?}"))
        .expect("run shoplab suite")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn suite_file(server: &str, seed: u64) -> String {
    format!(
        "databases = [\"sqlite\", \"{server}\"]\n\n[load]\nquick = true\n\
         experiments = [\"throughput\"]\nseed = {seed}\n"
    )
}

/// The processes whose command line names `folder`: a suite's compare and what it started.
fn processes_naming(folder: &Path) -> Vec<String> {
    let needle = folder.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .map(|line| String::from_utf8_lossy(&line).replace('\0', " "))
        .filter(|line| line.contains(&needle))
        .collect()
}

/// What proves a cell was not run again: its results' run id and its log's modification time.
fn fingerprint(cell: &Path) -> (String, SystemTime) {
    let results = loadtest_report::load(cell).expect("the cell's results read");
    let modified = std::fs::metadata(cell.join("compare.log"))
        .and_then(|metadata| metadata.modified())
        .expect("the cell has its log");
    (results.run_id, modified)
}

pub async fn a_suite_of_two_databases_reruns_an_interrupted_cell_keeps_finished_ones_and_refuses_a_changed_file(
    server: String,
) {
    // Its PostgreSQL cells make run databases the tests of `postgres.rs` would count.
    let _alone = crate::postgres::RUN_DATABASES.lock().await;
    let folder = tempfile::tempdir().expect("temp dir");
    let file = folder.path().join("databases.toml");
    let out = folder.path().join("out");
    std::fs::write(&file, suite_file(&server, 42)).expect("write the suite file");

    // Interrupted as its first cell starts: it stops that cell's compare and everything
    // compare started, and leaves a partial folder behind.
    let first_cell = out.join("cells").join(CELLS[0]);
    let interrupted = tokio::process::Command::new(crate::support::shoplab_binary())
        .arg("suite")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start shoplab suite");
    crate::support::eventually(
        Duration::from_secs(60),
        "the first cell's log",
        async || first_cell.join("compare.log").is_file(),
    )
    .await;
    let pid = interrupted.id().expect("the suite runs") as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGTERM)
        .expect("signal the suite");
    let stopped = tokio::time::timeout(SUITE_DEADLINE, interrupted.wait_with_output())
        .await
        .expect("the suite stops on SIGTERM")
        .expect("wait for the suite");
    let said = String::from_utf8_lossy(&stopped.stderr).into_owned();
    assert_eq!(stopped.status.code(), Some(1), "{said}");
    assert!(said.contains("interrupted (SIGTERM)"), "{said}");
    crate::support::eventually(
        Duration::from_secs(10),
        "no process left working for the suite",
        async || processes_naming(&out).is_empty(),
    )
    .await;
    assert!(
        loadtest_report::load(&first_cell).is_err(),
        "the interrupted cell has no results"
    );
    std::fs::write(first_cell.join("left-over"), b"partial").expect("mark the partial folder");

    let first = suite(&file, &out).await;
    let said = text(&first);
    assert!(first.status.success(), "the suite runs: {said}");
    assert!(
        said.contains("2 cells") && said.contains("2 to run"),
        "the plan comes first, and the interrupted cell is run again: {said}"
    );
    assert!(
        !first_cell.join("left-over").exists(),
        "the interrupted cell ran again from scratch"
    );
    let mut run_ids = Vec::new();
    for (cell, database) in CELLS.iter().zip(["sqlite", "postgres://"]) {
        let dir = out.join("cells").join(cell);
        let results = loadtest_report::load(&dir)
            .unwrap_or_else(|error| panic!("{cell} has its results: {error:#}"));
        assert!(
            results.settings.database.starts_with(database),
            "{cell} ran on {}",
            results.settings.database
        );
        let builds: Vec<String> = results
            .experiments
            .iter()
            .map(|outcome| outcome.build.to_string())
            .collect();
        assert_eq!(builds, ["monolith", "micro"], "{cell} ran compare's builds");
        assert!(
            dir.join("report.html").is_file(),
            "{cell} has its own report"
        );
        run_ids.push(fingerprint(&dir));
    }
    for page in ["suite.md", "suite.html"] {
        let report = std::fs::read_to_string(out.join(page))
            .unwrap_or_else(|error| panic!("{page} was written: {error}"));
        for cell in CELLS {
            assert!(
                report.contains(&format!("cells/{cell}/report.html")),
                "{page} links {cell}'s report: {report}"
            );
        }
        assert!(report.contains("micro/monolith req/s"), "{page}: {report}");
        assert!(!report.contains("no results"), "{page}: {report}");
    }

    let second = suite(&file, &out).await;
    let said = text(&second);
    assert!(second.status.success(), "the second run ends well: {said}");
    assert!(
        said.contains("0 to run, 2 kept"),
        "the second run keeps both cells: {said}"
    );
    let after: Vec<_> = CELLS
        .iter()
        .map(|cell| fingerprint(&out.join("cells").join(cell)))
        .collect();
    assert_eq!(after, run_ids, "no cell was started again");

    std::fs::write(&file, suite_file(&server, 43)).expect("change the suite file");
    let changed = suite(&file, &out).await;
    let said = text(&changed);
    assert_eq!(
        changed.status.code(),
        Some(1),
        "a changed file is refused: {said}"
    );
    assert!(
        said.contains("--fresh"),
        "the refusal says the way out: {said}"
    );
    let after: Vec<_> = CELLS
        .iter()
        .map(|cell| fingerprint(&out.join("cells").join(cell)))
        .collect();
    assert_eq!(after, run_ids, "the refused run touched no cell");
}
