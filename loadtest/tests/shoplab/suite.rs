//! `shoplab suite` refuses a bad suite file before any cell runs, naming the line at fault,
//! and goes on past a cell whose compare fails. The real runs are in the environment binary
//! (`environment/suite.rs`), which needs PostgreSQL.

use std::time::Duration;

/// Refusals take no measurement: the parse and the checks only.
const REFUSAL_DEADLINE: Duration = Duration::from_secs(60);

/// Runs `shoplab suite` on `text` and returns its exit code and what it said; asserts that
/// the suite's folder was not even created.
async fn refused(text: &str) -> (Option<i32>, String) {
    let folder = tempfile::tempdir().expect("temp dir");
    let file = folder.path().join("bad.toml");
    let out = folder.path().join("out");
    std::fs::write(&file, text).expect("write the suite file");
    let command = tokio::process::Command::new(crate::support::shoplab_binary())
        .arg("suite")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .env("RUST_BACKTRACE", "0")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(REFUSAL_DEADLINE, command)
        .await
        .expect("a refusal is quick")
        .expect("run shoplab suite");
    assert!(!out.exists(), "nothing was started for {text:?}");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_bad_suite_file_is_refused_with_its_line_before_any_cell_runs() {
    let load = "[load]\nquick = true\n";
    for (text, expected) in [
        (
            format!("databases = [\"sqlite\"]\ncolour = \"red\"\n{load}"),
            "line 2",
        ),
        (
            format!("databases = [\"sqlite\", \"mysql://me@db\"]\n{load}"),
            "line 1",
        ),
        (
            format!("databases = []\n{load}"),
            "the databases axis is empty",
        ),
        (
            "databases = [\"sqlite\"]\n[load]\nexperiments = [\"thruput\"]\n".to_owned(),
            "line 3",
        ),
        (
            format!("databases = [\"sqlite\"]\ntargets = [\"nowhere\"]\n{load}"),
            "no platform called \"nowhere\"",
        ),
        // A value compare's own flags refuse, caught by parsing the cell's command line.
        (
            "databases = [\"sqlite\"]\n[load]\nerror_rates = [2.0]\n".to_owned(),
            "--error-rates",
        ),
        (
            format!("databases = [\"postgres://me@db\"]\ntargets = [\"compose\"]\n{load}"),
            "brings its own database",
        ),
    ] {
        let (code, said) = refused(&text).await;
        assert_eq!(code, Some(1), "{text:?} is refused: {said}");
        assert!(
            said.contains(expected),
            "{text:?}: expected {expected:?} in {said}"
        );
    }
}

/// Until compare takes `--topologies`, a topologies axis is refused saying so; once it does,
/// the same file is refused for its other fault instead (repeats = 0), so either way nothing
/// runs, and the test follows the binary rather than a belief about it.
#[tokio::test]
async fn a_topologies_axis_is_refused_while_compare_does_not_take_topologies() {
    let help = std::process::Command::new(crate::support::shoplab_binary())
        .args(["compare", "--help"])
        .output()
        .expect("run shoplab compare --help");
    let takes = String::from_utf8_lossy(&help.stdout).contains("--topologies");
    let (code, said) = refused(
        "databases = [\"sqlite\"]\ntopologies = [\"monolith,micro\"]\nrepeats = 0\n\
         [load]\nquick = true\n",
    )
    .await;
    assert_eq!(code, Some(1), "{said}");
    if takes {
        assert!(said.contains("repeats is at least 1"), "{said}");
    } else {
        assert!(
            said.contains("line 2") && said.contains("does not take --topologies yet"),
            "{said}"
        );
    }
}

/// Two cells whose compare fails at once (a database server that refuses connections): the
/// first failure does not stop the suite, the report is still written, and since neither
/// finished, the next run runs both again.
#[tokio::test]
async fn a_failing_cell_fails_alone_and_runs_again_on_the_next_run() {
    // Ports just released: nothing listens there, so a connection is refused at once.
    let closed: Vec<u16> = (0..2)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a free port")
                .port()
        })
        .collect();
    let folder = tempfile::tempdir().expect("temp dir");
    let file = folder.path().join("dead.toml");
    let out = folder.path().join("out");
    std::fs::write(
        &file,
        format!(
            "databases = [\"postgres://shoplab@127.0.0.1:{}\", \"postgres://shoplab@127.0.0.1:{}\"]\n\
             [load]\nquick = true\nexperiments = [\"throughput\"]\n",
            closed[0], closed[1]
        ),
    )
    .expect("write the suite file");
    for run in ["first", "second"] {
        let command = tokio::process::Command::new(crate::support::shoplab_binary())
            .arg("suite")
            .arg(&file)
            .arg("--out")
            .arg(&out)
            .env("RUST_BACKTRACE", "0")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(REFUSAL_DEADLINE, command)
            .await
            .expect("failing cells end quickly")
            .expect("run shoplab suite");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(output.status.code(), Some(1), "{run} run: {said}");
        assert!(
            said.contains("2 to run"),
            "{run} run runs both cells: {said}"
        );
        assert!(said.contains("2 of 2 cells failed"), "{run} run: {said}");
        for cell in ["postgres.local.default.r1", "postgres2.local.default.r1"] {
            let log = std::fs::read_to_string(out.join("cells").join(cell).join("compare.log"))
                .unwrap_or_else(|error| panic!("{cell} ran and has its log: {error}"));
            assert!(log.contains("Connection refused"), "{cell}: {log}");
        }
        let report = std::fs::read_to_string(out.join("suite.md")).expect("suite.md written");
        assert_eq!(report.matches("no results").count(), 2, "{report}");
    }
}
