//! `compare --topologies`: three topologies as real processes through the throughput,
//! deploy and fault experiments, each outcome naming its topology and the report drawing the
//! spectrum with where each claim flips; and what is still refused before anything starts (scale, on a topology between the builds).

use std::process::Output;
use std::time::Duration;

use loadtest_results::experiments::Findings;

/// Three topologies' quick throughput (two levels of 5 s and a capacity ramp each), deploys
/// (at most half a minute each) and three fault cells (12 s each) in a debug build, with
/// room for a busy machine.
const SPECTRUM_DEADLINE: Duration = Duration::from_secs(900);

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

#[tokio::test]
async fn compare_quick_over_three_topologies_deploys_and_breaks_each_and_draws_the_spectrum() {
    let _quiet = crate::support::exclusive().await;
    let out = tempfile::tempdir().expect("temp dir");
    let out_dir = out.path().join("run");
    let output = shoplab(
        &[
            "compare",
            "--quick",
            "--experiments",
            "throughput,deploy,faults",
            "--topologies",
            "monolith,browse-buy,micro",
            "--out",
            out_dir.to_str().expect("a UTF-8 path"),
        ],
        SPECTRUM_DEADLINE,
    )
    .await;
    assert!(
        output.status.success(),
        "shoplab compare exited with {}:\n{}\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    let results: loadtest_results::Results =
        serde_json::from_slice(&std::fs::read(out_dir.join("results.json")).expect("results"))
            .expect("results.json reads back");
    let topologies: Vec<&str> = results
        .experiments
        .iter()
        .map(|outcome| outcome.topology_name())
        .collect();
    assert_eq!(
        topologies,
        [
            "monolith",
            "monolith",
            "monolith",
            "browse-buy",
            "browse-buy",
            "browse-buy",
            "micro",
            "micro",
            "micro"
        ]
    );
    let mut refined = 0;
    for outcome in &results.experiments {
        assert!(outcome.invariants.valid, "{}", outcome.topology_name());
        let Findings::Throughput { levels, capacity } = &outcome.findings else {
            continue;
        };
        assert!(
            !levels.is_empty(),
            "{} has no level",
            outcome.topology_name()
        );
        let capacity = capacity
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no capacity ramp", outcome.topology_name()));
        // A ramp that met a step and then missed one refines between the two: the plan's
        // refining steps, each strictly between the highest rate met and the lowest missed
        // before it, and the capacity the highest rate met of them all.
        for ramp in &capacity.ramps {
            let Some(first_miss) = ramp.steps.iter().position(|step| !step.met) else {
                continue;
            };
            if first_miss == 0 {
                continue;
            }
            let refining = &ramp.steps[first_miss + 1..];
            assert_eq!(
                refining.len(),
                capacity.plan.refine_steps,
                "{}: {:?}",
                outcome.topology_name(),
                ramp.stopped
            );
            let (mut met, mut missed) = (
                ramp.steps[first_miss - 1].offered_per_s,
                ramp.steps[first_miss].offered_per_s,
            );
            for step in refining {
                assert!(
                    met < step.offered_per_s && step.offered_per_s < missed,
                    "{}: {} not between {met} and {missed}",
                    outcome.topology_name(),
                    step.offered_per_s
                );
                if step.met {
                    met = step.offered_per_s;
                } else {
                    missed = step.offered_per_s;
                }
            }
            assert_eq!(
                ramp.sustained_per_s,
                Some(met),
                "{}",
                outcome.topology_name()
            );
            refined += 1;
        }
        // Every process of the topology was metered under its own name: each group's, and
        // the gateway's where there is one.
        let topology =
            domain::Topology::parse(outcome.topology_name()).expect("a recorded topology parses");
        let mut processes: Vec<&str> = levels[0]
            .processes
            .iter()
            .map(|process| process.process.as_str())
            .collect();
        if outcome.topology_name() == "browse-buy" {
            let mut expected: Vec<String> = topology.groups().iter().map(|g| g.name()).collect();
            expected.push("gateway".to_owned());
            // In start order, the group hosting orders after the others: compared as sets.
            expected.sort();
            processes.sort_unstable();
            assert_eq!(processes, expected, "browse-buy's processes");
        }
        assert!(
            levels.iter().all(|level| level.requests > level.errors),
            "{} answered nothing at some level",
            outcome.topology_name()
        );
        assert!(outcome.invariants.valid, "{}", outcome.topology_name());
    }
    // A debug build meets the first step (20 journeys/s) and misses before the ninth
    // (2203/s): every ramp here refines.
    assert!(refined > 0, "no ramp met a step and then missed one");
    // On browse-buy a deploy or a fault names its group's process: the rolling deploy of
    // `buy` (which hosts payments) and the kill of recommendations, which is `browse`'s.
    let on_browse_buy = |wanted: fn(&Findings) -> bool| {
        results
            .experiments
            .iter()
            .find(|outcome| outcome.topology_name() == "browse-buy" && wanted(&outcome.findings))
            .map(|outcome| &outcome.findings)
            .expect("an outcome on browse-buy")
    };
    let Findings::Deploy(deploys) = on_browse_buy(|f| matches!(f, Findings::Deploy(_))) else {
        unreachable!()
    };
    let rolled: Vec<(&str, &str, bool)> = deploys
        .each
        .iter()
        .map(|deploy| {
            (
                deploy.component.as_str(),
                deploy.strategy.as_str(),
                deploy.error.is_none(),
            )
        })
        .collect();
    assert!(rolled.contains(&("buy", "rolling", true)), "{rolled:?}");
    assert!(rolled.contains(&("browse", "rolling", true)), "{rolled:?}");
    let Findings::Faults { cells, .. } = on_browse_buy(|f| matches!(f, Findings::Faults { .. }))
    else {
        unreachable!()
    };
    let kill = cells
        .iter()
        .find(|cell| cell.fault.kind == loadtest_results::profile::FaultKind::Kill)
        .expect("a kill cell");
    assert!(kill.applied, "{:?}", kill.error);
    assert_eq!(kill.process, "browse");
    assert!(kill.restarts >= 1, "the lab brought browse back: {kill:?}");
    // Retry amplification is read from every process's hop metrics, a group's too: the
    // gateway's calls into the buy group for inventory's routes.
    let errors = cells
        .iter()
        .find(|cell| cell.fault.kind == loadtest_results::profile::FaultKind::Errors)
        .expect("an errors cell");
    assert!(errors.applied, "{:?}", errors.error);
    assert!(
        errors
            .attempts_per_call
            .is_some_and(|attempts| attempts >= 1.0),
        "attempts per call into inventory on browse-buy: {:?}",
        errors.attempts_per_call
    );
    let summary = std::fs::read_to_string(out_dir.join("summary.txt")).expect("summary.txt");
    assert!(
        summary.contains(
            "independent deploy: a payments change restarts 100 % of the shop at 1 process \
             (monolith), 57 % at 3 (browse-buy), 14 % at 8 (micro); flips at 3 processes \
             (browse-buy)."
        ),
        "{summary}"
    );
    let report = std::fs::read_to_string(out_dir.join("report.md")).expect("report.md");
    assert!(
        report.contains("| browse-buy | 3 |") && report.contains("57 % (4 of 7 contexts, in buy)"),
        "no payments roll for browse-buy in the spectrum"
    );
    assert!(report.contains("The spectrum"), "no spectrum section");
    for topology in ["monolith", "browse-buy", "micro"] {
        assert!(
            report
                .lines()
                .any(|line| line.starts_with(&format!("| {topology} |"))),
            "no spectrum row for {topology}"
        );
    }
    for chart in ["spectrum.svg", "spectrum.png"] {
        let length = std::fs::metadata(out_dir.join("charts").join(chart))
            .unwrap_or_else(|error| panic!("{chart}: {error}"))
            .len();
        assert!(length > 0, "{chart} is empty");
    }
}

#[tokio::test]
async fn compare_refuses_a_bad_topology_with_its_own_error_as_a_usage_error() {
    let output = shoplab(
        &[
            "compare",
            "--quick",
            "--topologies",
            "monolith,catalog+inventory",
        ],
        Duration::from_secs(30),
    )
    .await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    // The topology's own message names a context the spec leaves out.
    assert!(stderr.contains("cart"), "{stderr}");
}

#[tokio::test]
async fn compare_refuses_scale_on_a_topology_between_the_builds_before_starting_anything() {
    let out = tempfile::tempdir().expect("temp dir");
    let out_dir = out.path().join("run");
    let output = shoplab(
        &[
            "compare",
            "--quick",
            "--experiments",
            "deploy,faults,scale",
            "--topologies",
            "monolith,coarse",
            "--out",
            out_dir.to_str().expect("a UTF-8 path"),
        ],
        Duration::from_secs(30),
    )
    .await;
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "compare accepted scale on coarse");
    assert!(
        stderr.contains("scale") && stderr.contains("coarse") && stderr.contains("replica"),
        "{stderr}"
    );
    assert!(
        !out_dir.exists(),
        "the run folder was created: something started"
    );
}
