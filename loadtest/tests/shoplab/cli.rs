//! The command line's promises: what is refused before anything runs (a dead or smaller shop,
//! an unwritable folder, a bad gate, `--repeat 0`, a workshop's bad topology, runs made
//! differently), the exit code and
//! message of a failed gate, `load --json`, and every flag under the right help heading.

use std::process::Output;
use std::time::Duration;

use loadtest_results::component::Build;
use loadtest_results::load::LoadSummary;
use serde_json::{Value, json};

use crate::support::{SEED, shoplab_binary, start_target};

/// Runs `shoplab <args>` to its end (killed after `deadline`, a guard against a hang, not a
/// measure of speed).
async fn shoplab(args: &[&str], deadline: Duration) -> Output {
    let command = tokio::process::Command::new(shoplab_binary())
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(deadline, command)
        .await
        .unwrap_or_else(|_| panic!("shoplab {args:?} did not finish within {deadline:?}"))
        .expect("run shoplab")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A loopback URL nothing listens on: a port the kernel handed out and that was closed.
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = listener.local_addr().expect("its address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn load_against_a_dead_url_exits_non_zero_before_sending_any_load() {
    let url = dead_url();
    let output = shoplab(
        &["load", "--base-url", &url, "--duration", "30"],
        Duration::from_secs(60),
    )
    .await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("{url}/ready")) && stderr.contains("nothing was measured"),
        "the error does not name the readiness check: {stderr}"
    );
    assert!(
        !stdout.contains("requests in"),
        "a load was measured: {stdout}"
    );
}

#[tokio::test]
async fn load_asking_for_more_products_than_the_shop_serves_is_refused_naming_both_numbers() {
    let target = start_target(Build::Monolith).await;
    let served: Value = reqwest::get(format!("{}/api/products", target.url()))
        .await
        .expect("the catalogue answers")
        .json()
        .await
        .expect("JSON");
    let served = served["total"].as_u64().expect("a total");
    let asked = (served + 1).to_string();
    let output = shoplab(
        &["load", "--base-url", target.url(), "--products", &asked],
        Duration::from_secs(60),
    )
    .await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("--products {asked}")) && stderr.contains(&format!("({served})")),
        "the error does not name both numbers: {stderr}"
    );
    assert!(!text(&output.stdout).contains("requests in"));
    target.stop().await.expect("the target stops");
}

#[tokio::test]
async fn a_load_whose_gate_fails_exits_4_naming_it_and_writes_its_summary_as_json() {
    let target = start_target(Build::Monolith).await;
    let folder = tempfile::tempdir().expect("temp dir");
    let json_path = folder.path().join("load.json");
    let seed = SEED.to_string();
    let output = shoplab(
        &[
            "load",
            "--base-url",
            target.url(),
            "--users",
            "2",
            "--duration",
            "2",
            "--products",
            "20",
            "--seeded-users",
            "2",
            "--seed",
            &seed,
            // An error rate is never below 0 %: this gate must fail.
            "--fail-if",
            "error_rate>=0%",
            // No request of a healthy shop takes an hour: this one must pass.
            "--fail-if",
            "p99>3600s",
            "--json",
            json_path.to_str().expect("a UTF-8 path"),
        ],
        Duration::from_secs(90),
    )
    .await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(4), "{stdout}\n{stderr}");
    assert!(stdout.contains("FAIL error_rate>=0%: run = "), "{stdout}");
    assert!(stdout.contains("PASS p99>3600s: run = "), "{stdout}");
    assert!(stdout.contains("PASS error_rate>1%: run = "), "{stdout}");

    let summary: LoadSummary =
        serde_json::from_slice(&std::fs::read(&json_path).expect("--json was written"))
            .expect("--json holds a LoadSummary");
    assert!(!summary.passed);
    let gates: Vec<(&str, bool)> = summary
        .gates
        .iter()
        .map(|verdict| (verdict.gate.as_str(), verdict.passed))
        .collect();
    assert_eq!(
        gates,
        [
            ("error_rate>=0%", false),
            ("p99>3600s", true),
            ("error_rate>1%", true)
        ]
    );
    assert!(summary.successes > 0, "{summary:?}");
    assert_eq!(summary.requests, summary.successes + summary.failures);
    let latency = summary.latency_of_successes.expect("latency of successes");
    assert!(latency.p50_us <= latency.p99_us && latency.p99_us <= latency.max_us);
    let routes: usize = summary
        .transactions
        .iter()
        .map(|route| route.requests)
        .sum();
    assert_eq!(routes, summary.requests, "every request is in one route");
    target.stop().await.expect("the target stops");
}

#[tokio::test]
async fn bad_gates_are_refused_as_usage_errors_naming_the_bad_part() {
    for (args, named) in [
        (
            vec!["compare", "--quick", "--fail-if", "p98>1ms"],
            "\"p98\" is not a measure",
        ),
        (
            vec!["compare", "--quick", "--fail-if", "micro.p99>200"],
            "needs a unit",
        ),
        (
            vec![
                "load",
                "--base-url",
                "http://127.0.0.1:9",
                "--fail-if",
                "ratio.p99>3",
            ],
            "both builds",
        ),
        (
            vec![
                "load",
                "--base-url",
                "http://127.0.0.1:9",
                "--max-error-rate",
                "lots",
            ],
            "\"lots\" is not an error rate",
        ),
    ] {
        let output = shoplab(&args, Duration::from_secs(30)).await;
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn workshop_refuses_a_bad_topology_before_anything_starts_naming_what_is_wrong() {
    for (args, code, says) in [
        (
            &[
                "workshop",
                "--port",
                "0",
                "--topologies",
                "monolith,catalog+users",
            ][..],
            2,
            "no process hosts",
        ),
        (
            &["workshop", "--port", "0", "--topologies", "coarse,coarse"][..],
            2,
            "named twice",
        ),
        (
            &[
                "workshop",
                "--port",
                "0",
                "--arch",
                "micro",
                "--topologies",
                "coarse",
            ][..],
            2,
            "cannot be used with",
        ),
        (
            &[
                "workshop",
                "--port",
                "0",
                "--target",
                "kubernetes",
                "--topologies",
                "coarse",
            ][..],
            1,
            "runs on --target local, compose, swarm only",
        ),
    ] {
        let output = shoplab(args, Duration::from_secs(30)).await;
        let stdout = text(&output.stdout);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        // Refused before the page or any build started.
        assert!(!stdout.contains("workshop: http"), "{args:?}: {stdout}");
        assert!(
            !stderr.contains("starting the topology"),
            "{args:?}: {stderr}"
        );
    }
}

#[tokio::test]
async fn compare_refuses_repeat_0_as_a_usage_error() {
    let output = shoplab(
        &["compare", "--quick", "--repeat", "0"],
        Duration::from_secs(30),
    )
    .await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--repeat") && stderr.contains("'0'"),
        "{stderr}"
    );
}

#[tokio::test]
async fn compare_with_an_unwritable_out_fails_before_starting_anything() {
    let output = shoplab(
        &["compare", "--quick", "--out", "/proc/x"],
        Duration::from_secs(60),
    )
    .await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("--out /proc/x") && stderr.contains("nothing was started"),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "compare printed a run: {stdout}");
}

/// The headings of a `--help` page, in order, each with the long flags listed under it.
fn help_sections(help: &str) -> Vec<(String, Vec<String>)> {
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in help.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            sections.push((line.trim_end_matches(':').to_owned(), Vec::new()));
        } else if let Some((_, flags)) = sections.last_mut()
            && let Some(flag) = line
                .split_whitespace()
                .find(|word| word.starts_with("--"))
                .filter(|_| line.starts_with("  ") && line.trim_start().starts_with('-'))
        {
            flags.push(flag.trim_end_matches(',').to_owned());
        }
    }
    sections
}

#[tokio::test]
async fn compare_help_lists_every_flag_under_its_own_heading_with_the_platforms_last() {
    let output = shoplab(&["compare", "--help"], Duration::from_secs(30)).await;
    let help = text(&output.stdout);
    assert!(output.status.success(), "{help}");
    let sections = help_sections(&help);
    let heading_of = |flag: &str| {
        sections
            .iter()
            .find(|(_, flags)| flags.iter().any(|listed| listed == flag))
            .map(|(heading, _)| heading.as_str())
            .unwrap_or_else(|| panic!("{flag} is not in compare --help:\n{help}"))
    };
    for flag in [
        "--quick",
        "--experiments",
        "--repeat",
        "--seed",
        "--db",
        "--out",
        "--logs",
        "--fail-if",
        "--process-cpu",
        "--process-memory",
    ] {
        let heading = heading_of(flag);
        assert!(
            !heading.contains("target") && heading != "Platform",
            "{flag} is listed under {heading:?}:\n{help}"
        );
    }
    assert_eq!(heading_of("--target"), "Platform");
    for (heading, flags) in &sections {
        if heading == "Kubernetes target" {
            assert!(
                flags.iter().all(|flag| flag.starts_with("--kube")),
                "{flags:?}"
            );
        }
        if heading == "Compose target" {
            assert!(
                flags
                    .iter()
                    .all(|flag| flag.starts_with("--compose") || flag == "--image-tag"),
                "{flags:?}"
            );
        }
    }
    let headings: Vec<&str> = sections
        .iter()
        .map(|(heading, _)| heading.as_str())
        .filter(|heading| *heading != "Exit codes")
        .collect();
    let platform = headings
        .iter()
        .position(|heading| *heading == "Platform")
        .expect("a Platform heading");
    assert!(
        headings[platform..]
            .iter()
            .all(|heading| *heading == "Platform" || heading.ends_with("target")),
        "a heading after the platform groups: {headings:?}"
    );
    assert!(help.contains("Exit codes:"), "{help}");
}

#[tokio::test]
async fn serve_monolith_neither_lists_nor_takes_the_micro_only_upstream_flag() {
    let output = shoplab(&["serve", "monolith", "--help"], Duration::from_secs(30)).await;
    let help = text(&output.stdout);
    assert!(output.status.success(), "{help}");
    assert!(help.contains("--port"), "{help}");
    assert!(!help.contains("--upstream"), "{help}");

    let output = shoplab(
        &[
            "serve",
            "monolith",
            "--port",
            "0",
            "--upstream",
            "catalog=http://127.0.0.1:9",
        ],
        Duration::from_secs(30),
    )
    .await;
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "the monolith took --upstream");
    assert!(stderr.contains("--upstream"), "{stderr}");
}

/// A small results.json of a throughput experiment only: `rates[build]` holds one
/// requests-per-second figure per repeat of the one load level.
fn results(run_id: &str, target: &str, database: &str, rates: [&[f64]; 2]) -> Value {
    let outcomes: Vec<Value> = Build::BOTH
        .iter()
        .zip(rates)
        .map(|(build, rates)| {
            let levels: Vec<Value> = rates
                .iter()
                .enumerate()
                .map(|(repeat, rate)| {
                    json!({
                        "users": 8, "repeat": repeat + 1, "requests": (rate * 10.0) as u64,
                        "requests_per_s": rate, "errors": 0, "error_rate": 0.0,
                        "raw": {"p50_us": 1000, "p95_us": 4000, "p99_us": 8000, "max_us": 9000},
                        "corrected": {"p50_us": 1000, "p95_us": 4000, "p99_us": 8000, "max_us": 9000},
                        "sut_cpu_s": 5.0, "sut_peak_rss_mib": 100.0, "requests_per_sut_cpu_s": rate / 0.5,
                        "generator_cpu_s": 1.0, "generator_cpu_share": 0.1, "generator_limited": false,
                        "timeline": {"slice_ms": 1000, "slices": []}
                    })
                })
                .collect();
            json!({
                "build": build.as_str(),
                "findings": {"experiment": "throughput", "levels": levels},
                "invariants": {"valid": true, "invariants": [],
                               "maybe_applied": {"keys": 0, "applied": 0, "not_applied": 0}},
                "quiescent": true, "duration_s": 10.0, "requests": 1000
            })
        })
        .collect();
    json!({
        "schema_version": loadtest_results::SCHEMA_VERSION,
        "run_id": run_id, "started_at_unix_ms": 0, "duration_s": 30.0,
        "profile": {"name": "quick", "levels": [8], "level_duration": 10000,
                    "repeats": rates[0].len(), "scale_duration": 3000, "steady_users": 8,
                    "storm": 10, "faults": [], "fault_before": 750, "fault_during": 1250,
                    "fault_after": 1250, "calibration": 2000},
        "settings": {"target": target, "database": database, "seed": 42, "products": 1000,
                     "users": 100, "stock": 1000000, "browse_weight": 4, "buy_weight": 1,
                     "request_timeout_ms": 5000,
                     "pinning": {"cores": 2, "generator_cpus": [1], "sut_cpus": [0]},
                     "resource_limits": {"asked": {"cpu_cores": null, "memory_mib": null},
                                         "enforced": {"cpu_cores": null, "memory_mib": null},
                                         "unavailable": null, "sut_cpus": [0]},
                     "env": []},
        "environment": {"shoplab_version": "0.1.0", "git_sha": "0".repeat(40),
                        "cpu_model": "Test CPU", "cores": 2, "os": "Linux", "kernel": "6",
                        "rustc": "rustc", "crates": []},
        "calibration": null,
        "experiments": outcomes,
        "valid": true
    })
}

/// Writes run A and run B, runs `shoplab diff A B [extra]`, and returns its output and the
/// diff.md it wrote (empty when none).
async fn diff(run_a: &Value, run_b: &Value, extra: &[&str]) -> (Output, String) {
    let folder = tempfile::tempdir().expect("temp dir");
    let (path_a, path_b) = (folder.path().join("a.json"), folder.path().join("b.json"));
    std::fs::write(&path_a, run_a.to_string()).expect("write run A");
    std::fs::write(&path_b, run_b.to_string()).expect("write run B");
    let out = folder.path().join("diff");
    let mut args = vec![
        "diff",
        path_a.to_str().expect("UTF-8"),
        path_b.to_str().expect("UTF-8"),
        "--out",
        out.to_str().expect("UTF-8"),
    ];
    args.extend_from_slice(extra);
    let output = shoplab(&args, Duration::from_secs(60)).await;
    let markdown = std::fs::read_to_string(out.join("diff.md")).unwrap_or_default();
    (output, markdown)
}

/// The rows of a diff.md's throughput key figure, one per build (`| throughput at 8 users`,
/// or however the key figure is worded, as long as it names throughput at a load).
fn throughput_rows(markdown: &str) -> Vec<&str> {
    markdown
        .lines()
        .filter(|line| line.starts_with("| ") && line.contains("throughput at "))
        .collect()
}

#[tokio::test]
async fn diff_refuses_runs_of_different_platforms_unless_forced_and_then_says_so() {
    let local = results("run-local", "local", "sqlite", [&[1000.0], &[800.0]]);
    let compose = results("run-compose", "compose", "sqlite", [&[400.0], &[300.0]]);
    let (output, markdown) = diff(&local, &compose, &[]).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("platform: A local, B compose") && stderr.contains("--force"),
        "{stderr}"
    );
    assert!(markdown.is_empty(), "a refused diff wrote a page");

    let postgres = results(
        "run-pg",
        "local",
        "postgres://postgres@127.0.0.1:5432",
        [&[1000.0], &[800.0]],
    );
    let (output, _) = diff(&local, &postgres, &[]).await;
    assert!(
        text(&output.stderr).contains("database: A sqlite, B postgres://"),
        "{}",
        text(&output.stderr)
    );

    let (output, markdown) = diff(&local, &compose, &["--force"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        markdown.contains("the runs differ (platform: A local, B compose)"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| compose |"),
        "no platform column: {markdown}"
    );
}

#[tokio::test]
async fn diff_gives_no_verdict_from_one_run_each_nor_from_overlapping_repeats() {
    // B is 60 % slower on both builds, from one run each: no verdict.
    let run_a = results("run-a", "local", "sqlite", [&[1000.0], &[800.0]]);
    let run_b = results("run-b", "local", "sqlite", [&[400.0], &[320.0]]);
    let (output, markdown) = diff(&run_a, &run_b, &[]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let rows = throughput_rows(&markdown);
    assert_eq!(rows.len(), 2, "{markdown}");
    for row in rows {
        assert!(row.contains("one run each: no verdict"), "{row}");
        assert!(!row.contains("worse") && !row.contains("better"), "{row}");
    }

    // Three repeats a side this noisy: a change in the medians, but the ratio's 95 % interval
    // holds ×1, so still no verdict.
    let run_a = results(
        "run-a",
        "local",
        "sqlite",
        [&[900.0, 1000.0, 1100.0], &[700.0, 800.0, 900.0]],
    );
    let run_b = results(
        "run-b",
        "local",
        "sqlite",
        [&[600.0, 700.0, 950.0], &[500.0, 600.0, 750.0]],
    );
    let (_, markdown) = diff(&run_a, &run_b, &[]).await;
    for row in throughput_rows(&markdown) {
        assert!(
            row.contains("within the noise of the repeats: no verdict"),
            "{row}"
        );
    }

    // Repeats far enough apart for the interval to leave out ×1: now the change is a verdict.
    let run_b = results(
        "run-b",
        "local",
        "sqlite",
        [&[500.0, 550.0, 600.0], &[400.0, 450.0, 500.0]],
    );
    let (_, markdown) = diff(&run_a, &run_b, &[]).await;
    let rows = throughput_rows(&markdown);
    assert_eq!(rows.len(), 2, "{markdown}");
    for row in rows {
        assert!(row.contains(", worse"), "{row}");
    }
}
