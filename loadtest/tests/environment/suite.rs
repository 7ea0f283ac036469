//! `shoplab suite` end to end on real runs: a suite of two databases (SQLite and the
//! PostgreSQL server) × compare's two builds, quick throughput only — the smallest real runs
//! that prove a combined report, kept cells, and a changed file refused.

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

/// What proves a cell was not run again: its results' run id and its log's modification time.
fn fingerprint(cell: &Path) -> (String, SystemTime) {
    let results = loadtest_report::load(cell).expect("the cell's results read");
    let modified = std::fs::metadata(cell.join("compare.log"))
        .and_then(|metadata| metadata.modified())
        .expect("the cell has its log");
    (results.run_id, modified)
}

pub async fn a_suite_of_two_databases_runs_every_cell_then_keeps_them_and_refuses_a_changed_file(
    server: String,
) {
    let folder = tempfile::tempdir().expect("temp dir");
    let file = folder.path().join("databases.toml");
    let out = folder.path().join("out");
    std::fs::write(&file, suite_file(&server, 42)).expect("write the suite file");

    let first = suite(&file, &out).await;
    let said = text(&first);
    assert!(first.status.success(), "the suite runs: {said}");
    assert!(
        said.contains("2 cells") && said.contains("2 to run"),
        "the plan comes first: {said}"
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
