//! The lab's commands end to end, as a user runs them: `shoplab compare` writes a complete
//! results folder whose faults show the monolith's all-or-nothing failure, `shoplab load`
//! writes a history `shoplab check` accepts, and bad flags get errors that name them.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use loadtest_results::component::Build;
use loadtest_results::history::read_jsonl;
use serde_json::Value;

use crate::support::{SEED, start_target};

/// A debug build runs the quick faults experiment on both builds in about 25–40 s alone;
/// this leaves room for a busy machine.
const COMPARE_DEADLINE: Duration = Duration::from_secs(300);

/// Runs `shoplab <args>` to its end (killed after `deadline`).
async fn shoplab(args: &[&str], deadline: Duration) -> Output {
    let command = tokio::process::Command::new(crate::support::shoplab_binary())
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

fn non_empty_file(dir: &Path, name: &str) {
    let length = std::fs::metadata(dir.join(name))
        .unwrap_or_else(|error| panic!("{name} was not written: {error}"))
        .len();
    assert!(length > 0, "{name} is empty");
}

/// The faults cell of `build` for `kind` on `context`.
fn cell<'a>(results: &'a Value, build: &str, kind: &str, context: &str) -> &'a Value {
    results["experiments"]
        .as_array()
        .expect("experiments")
        .iter()
        .filter(|outcome| outcome["build"] == build)
        .flat_map(|outcome| {
            outcome["findings"]["cells"]
                .as_array()
                .into_iter()
                .flatten()
        })
        .find(|cell| cell["kind"] == kind && cell["context"] == context)
        .unwrap_or_else(|| panic!("no {kind} {context} cell on the {build} build"))
}

#[tokio::test]
async fn compare_quick_faults_writes_a_valid_results_folder_where_a_monolith_kill_takes_everything_down()
 {
    let _quiet = crate::support::exclusive().await;
    let out = tempfile::tempdir().expect("temp dir");
    let out_dir = out.path().join("run");
    let output = shoplab(
        &[
            "compare",
            "--quick",
            "--experiments",
            "faults",
            "--out",
            out_dir.to_str().expect("a UTF-8 path"),
        ],
        COMPARE_DEADLINE,
    )
    .await;
    assert!(
        output.status.success(),
        "shoplab compare exited with {}:\n{}\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );

    let results: Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("results.json")).expect("results.json"))
            .expect("results.json is JSON");
    assert_eq!(results["schema_version"], loadtest_results::SCHEMA_VERSION);
    // The report renders from results.json alone, so it must read back into the lab's types.
    let typed: loadtest_results::Results =
        serde_json::from_value(results.clone()).expect("results.json reads back");
    // The shop's own settings are recorded, the fairness ones with them, and no secret.
    let shop = &results["settings"]["shop"];
    assert_eq!(shop["checkout_mode"], "split", "{shop}");
    assert!(shop["hop_timeout_ms"].as_u64().is_some(), "{shop}");
    for secret in [
        "admin_token",
        "metrics_token",
        "token_secret",
        "service_key",
        "service_public_keys",
        "db",
    ] {
        assert!(shop.get(secret).is_none(), "{secret} recorded in {shop}");
    }
    let environment = &results["environment"];
    // The commit the lab was built from, as its build script found it: this test is built
    // by the same script run as the binary under test.
    let sha = environment["git_sha"].as_str().expect("a git_sha");
    assert!(
        sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()),
        "git_sha is {sha:?}"
    );
    assert_eq!(sha, env!("SHOPLAB_BUILD_COMMIT"), "{environment}");
    assert_eq!(
        environment["git_dirty"]
            .as_bool()
            .map(|dirty| dirty.to_string()),
        Some(env!("SHOPLAB_BUILD_DIRTY").to_owned()),
        "{environment}"
    );
    assert_eq!(
        environment["rustc"],
        env!("SHOPLAB_BUILD_RUSTC"),
        "{environment}"
    );
    assert!(environment["cores"].as_u64() >= Some(1), "{environment}");
    assert!(
        environment["cpu_model"]
            .as_str()
            .is_some_and(|model| !model.is_empty()),
        "{environment}"
    );

    let experiments = results["experiments"].as_array().expect("experiments");
    let mut builds: Vec<&str> = experiments
        .iter()
        .map(|outcome| outcome["build"].as_str().expect("a build"))
        .collect();
    builds.sort();
    assert_eq!(
        builds,
        ["micro", "monolith"],
        "one faults outcome per build"
    );
    for outcome in experiments {
        let build = &outcome["build"];
        assert_eq!(
            outcome["invariants"]["valid"], true,
            "invariants on {build}: {}",
            outcome["invariants"]
        );
        let checked: Vec<&str> = outcome["invariants"]["invariants"]
            .as_array()
            .expect("the checker's rows")
            .iter()
            .filter(|invariant| invariant["checked"] == true)
            .map(|invariant| invariant["id"].as_str().expect("an id"))
            .collect();
        assert_eq!(
            checked,
            ["I1", "I2", "I3", "I4", "I5", "I6", "I7", "I8", "I9"],
            "compare checks every invariant on {build}, committed stock without an order too"
        );
        assert_eq!(outcome["findings"]["experiment"], "faults");
        let cells = outcome["findings"]["cells"].as_array().expect("cells");
        assert_eq!(
            cells.len(),
            3,
            "the quick profile's three faults on {build}"
        );
        for cell in cells {
            let journeys: Vec<&str> = cell["journeys"]
                .as_array()
                .expect("journeys")
                .iter()
                .map(|phases| phases["journey"].as_str().expect("a journey"))
                .collect();
            assert_eq!(journeys, ["browse", "buy"], "{build} {}", cell["kind"]);
            for phases in cell["journeys"].as_array().into_iter().flatten() {
                for phase in ["before", "during", "after"] {
                    assert!(
                        phases[phase]["requests"].as_u64().is_some(),
                        "{build} {} {} has no {phase}: {phases}",
                        cell["kind"],
                        phases["journey"]
                    );
                }
            }
        }
    }
    assert_eq!(results["valid"], true);
    // The calibration runs in every compare, whatever the experiments.
    let calibration = typed.calibration.as_ref().expect("a calibration");
    assert!(calibration.null_endpoint.requests_per_s > 0.0);
    assert_eq!(calibration.hop.requests, 400);
    for rung in [
        calibration.hop.null_us,
        calibration.hop.monolith_us,
        calibration.hop.service_us,
        calibration.hop.gateway_us,
    ] {
        assert!(rung > 0, "{:?}", calibration.hop);
    }
    for outcome in &typed.experiments {
        let loadtest_lab::experiments::Findings::Faults { cells, timeline } = &outcome.findings
        else {
            panic!("a faults experiment found {:?}", outcome.findings);
        };
        // The timeline covers the fault windows the cells were measured in.
        let last_heal = cells
            .iter()
            .map(|cell| cell.healed_at_ms)
            .max()
            .unwrap_or(0);
        let last_slice = timeline.slices.last().map_or(0, |slice| slice.t_ms);
        assert!(
            timeline.slice_ms > 0 && last_slice >= last_heal,
            "{:?}: the timeline ends at {last_slice} ms, the last heal was at {last_heal} ms",
            outcome.build
        );
    }

    // The claim the lab exists to test: in the monolith a crash of any part is a crash of
    // everything; in the microservices build a crash of recommendations is absorbed.
    // The partial fault's cell records the share of calls it failed.
    for build in ["monolith", "micro"] {
        let errors = cell(&results, build, "errors", "inventory");
        assert_eq!(errors["rate"], 0.5, "{errors}");
    }
    let monolith_kill = cell(&results, "monolith", "kill", "recommendations");
    let micro_kill = cell(&results, "micro", "kill", "recommendations");
    for kill in [monolith_kill, micro_kill] {
        assert_eq!(
            kill["error"],
            Value::Null,
            "the kill was not carried out: {kill}"
        );
    }
    assert_eq!(monolith_kill["process"], "monolith");
    assert_eq!(micro_kill["process"], "recommendations");
    let monolith_radius = monolith_kill["blast_radius"].as_f64().expect("a radius");
    let micro_radius = micro_kill["blast_radius"].as_f64().expect("a radius");
    assert_eq!(
        monolith_radius, 1.0,
        "killing the monolith degraded only {} (a step with no request before the fault \
         never counts as degraded); per journey: {}",
        monolith_kill["degraded_steps"], monolith_kill["journeys"]
    );
    assert!(
        micro_radius < 1.0,
        "killing recommendations degraded every step of the micro build: {}; per journey: {}",
        micro_kill["degraded_steps"],
        micro_kill["journeys"]
    );

    for name in ["history.jsonl", "faults.csv", "timeline.csv", "summary.txt"] {
        non_empty_file(&out_dir, name);
    }
    let faults_csv = std::fs::read_to_string(out_dir.join("faults.csv")).unwrap();
    // A header, then a row per build, fault and journey.
    assert_eq!(faults_csv.lines().count(), 1 + 2 * 3 * 2, "{faults_csv}");
}

#[tokio::test]
async fn shoplab_load_against_a_running_monolith_writes_a_history_that_shoplab_check_accepts() {
    let target = start_target(Build::Monolith).await;
    let folder = tempfile::tempdir().expect("temp dir");
    let history = folder.path().join("history.jsonl");
    let history_arg = history.to_str().expect("a UTF-8 path");
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
            // One user per journey, so the history has checkouts for I3 and I4 to judge.
            "--browse",
            "1",
            "--buy",
            "1",
            "--history",
            history_arg,
        ],
        Duration::from_secs(60),
    )
    .await;
    assert!(
        output.status.success(),
        "shoplab load exited with {}:\n{}",
        output.status,
        text(&output.stderr)
    );
    let records = read_jsonl(&history).expect("the history reads back");
    assert!(
        records.iter().any(|record| record.journey == "browse"),
        "no browse request in the history"
    );
    let acknowledged = records
        .iter()
        .filter(|record| record.order_id.is_some())
        .count();
    assert!(acknowledged > 0, "no acknowledged checkout in the history");

    let output = shoplab(
        &[
            "check",
            "--base-url",
            target.url(),
            "--admin-token",
            target.admin_token(),
            "--history",
            history_arg,
        ],
        Duration::from_secs(60),
    )
    .await;
    let table = text(&output.stdout);
    assert!(
        output.status.success(),
        "shoplab check refused the load's history:\n{table}\n{}",
        text(&output.stderr)
    );
    assert!(
        table.contains("valid: all 9 checked invariants hold"),
        "{table}"
    );
    let audit = target.audit().await.expect("the audit");
    assert_eq!(
        audit.orders.len(),
        acknowledged,
        "every order the shop holds was acknowledged to the generator, and no more"
    );
    target.stop().await.expect("the target stops");
}

#[tokio::test]
async fn compare_with_an_unknown_database_fails_naming_the_db_flag() {
    let output = shoplab(
        &[
            "compare",
            "--quick",
            "--db",
            "mysql://x",
            "--out",
            "/nonexistent/never-written",
        ],
        Duration::from_secs(30),
    )
    .await;
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "compare accepted --db mysql://x");
    assert!(
        stderr.contains("--db"),
        "the error does not name --db:\n{stderr}"
    );
    assert!(
        stderr.contains("mysql://x"),
        "the error does not quote the value:\n{stderr}"
    );
}

#[tokio::test]
async fn compare_with_an_unknown_experiment_lists_the_valid_ones() {
    let output = shoplab(
        &["compare", "--experiments", "nope"],
        Duration::from_secs(30),
    )
    .await;
    let stderr = text(&output.stderr);
    assert!(
        !output.status.success(),
        "compare accepted --experiments nope"
    );
    assert!(stderr.contains("nope"), "{stderr}");
    for valid in ["throughput", "deploy", "faults"] {
        assert!(
            stderr.contains(valid),
            "the error does not list {valid}:\n{stderr}"
        );
    }
}

#[tokio::test]
async fn compare_refuses_resource_limits_that_make_no_sense_naming_the_flag() {
    for (flag, value) in [
        ("--process-cpu", "0"),
        ("--process-cpu", "lots"),
        ("--process-memory", "4"),
        // Outside the fault catalogue's range for errors, or not a share at all.
        ("--error-rates", "1.5"),
        ("--error-rates", "half"),
    ] {
        let output = shoplab(&["compare", flag, value], Duration::from_secs(30)).await;
        let stderr = text(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "compare {flag} {value} was not refused as a usage error:\n{stderr}"
        );
        assert!(
            stderr.contains(flag) && stderr.contains(value),
            "the error does not name {flag} {value}:\n{stderr}"
        );
    }
}

#[tokio::test]
async fn a_load_told_to_stop_ends_early_with_what_it_recorded() {
    let _quiet = crate::support::exclusive().await;
    let target = crate::support::start_target(loadtest_results::component::Build::Monolith).await;
    let shop = loadtest_lab::journeys::Shopfront {
        products: 20,
        users: 2,
        first_user: 0,
        password: format!("shoplab-{}", crate::support::SEED),
        browse_weight: 1,
        buy_weight: 0,
    };
    let plan = loadtest_lab::load::LoadPlan {
        base_url: target.url().to_owned(),
        users: 2,
        duration: Duration::from_secs(120),
        rate: None,
        request_timeout: Duration::from_secs(5),
    };
    let recorder = loadtest_lab::journeys::Recorder::new(std::time::Instant::now());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let watcher = recorder.clone();
    // Stop once the load has demonstrably run: a few requests recorded.
    let stopper = async move {
        while watcher.count() < 20 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = stop_tx.send(());
    };
    let stop = async {
        let _ = stop_rx.await;
    };
    let (run, ()) = tokio::join!(
        loadtest_lab::load::run_until(&plan, &shop, &recorder, stop),
        stopper
    );
    let run = run.expect("the load runs");
    assert!(
        run.wall_s < 60.0,
        "the load ran {:.1} s of its 120 s instead of stopping when told",
        run.wall_s
    );
    assert!(run.records.len() >= 20, "{} records", run.records.len());
    target.stop().await.expect("the target stops");
}
