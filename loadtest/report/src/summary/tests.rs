//! The verdicts and warnings on crafted results: the committed fixture's settings and
//! environment, with experiments built here to make one claim hold or break.

use domain::Context;

use super::*;
use loadtest_results::analysis::{Timeline, WindowStats};
use loadtest_results::experiments::deploy::{Deploy, Deploys, Storm};
use loadtest_results::experiments::faults::{Cell, Phases};
use loadtest_results::experiments::nodes::{NodeEvent, Nodes};
use loadtest_results::experiments::scale::{
    Added, Gain, Half, NotReplicated, Quota, ReplicaSpread, Scale, Utilisation,
};
use loadtest_results::experiments::throughput::Level;
use loadtest_results::experiments::{Findings, Outcome};
use loadtest_results::invariants::{CheckReport, InvariantResult};
use loadtest_results::latency::Percentiles;
use loadtest_results::profile::{FaultCell, FaultKind};
use loadtest_results::resources::ProcessUsage;

/// The fixture with `experiments` instead of its own.
fn results(experiments: Vec<Outcome>) -> Results {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../results/fixtures/results-quick.json"
    );
    let mut results = crate::load(std::path::Path::new(path)).expect("the fixture loads");
    results.calibration = None;
    results.experiments = experiments;
    results
}

fn outcome(build: Build, findings: Findings) -> Outcome {
    Outcome {
        build,
        topology: None,
        findings,
        invariants: CheckReport {
            valid: true,
            invariants: Vec::new(),
            maybe_applied: None,
        },
        quiescent: true,
        duration_s: 1.0,
        requests: 100,
    }
}

fn faults(build: Build, cells: Vec<Cell>) -> Outcome {
    outcome(
        build,
        Findings::Faults {
            cells,
            timeline: Timeline::default(),
        },
    )
}

fn cell(kind: FaultKind, blast_radius: f64) -> Cell {
    Cell {
        fault: FaultCell::new(kind, Context::Payments),
        process: "payments".into(),
        injected_at_ms: 1_000,
        healed_at_ms: 2_500,
        journeys: Vec::new(),
        blast_radius,
        degraded_steps: Vec::new(),
        time_to_recover_ms: Some(250),
        restarts: 0,
        healed_in_ms: None,
        error: None,
        applied: true,
        note: None,
        attempts_per_call: None,
        hop_calls: None,
    }
}

fn level(users: usize, repeat: usize, requests_per_s: f64, generator_limited: bool) -> Level {
    let latency = Percentiles {
        p50_us: 2_000,
        p95_us: 5_000,
        p99_us: 9_000,
        max_us: 20_000,
    };
    Level {
        users,
        repeat,
        requests: (requests_per_s * 10.0) as usize,
        requests_per_s,
        errors: 0,
        error_rate: 0.0,
        raw: latency,
        nines: Vec::new(),
        corrected: latency,
        sut_cpu_s: Some(5.0),
        sut_peak_rss_mib: Some(40.0),
        processes: Vec::new(),
        hops: None,
        requests_per_sut_cpu_s: Some(requests_per_s * 2.0),
        generator_cpu_s: 9.0,
        generator_cpu_share: if generator_limited { 0.93 } else { 0.4 },
        generator_limited,
        generators: Vec::new(),
        timeline: Timeline::default(),
    }
}

fn sweep(build: Build, levels: Vec<Level>) -> Outcome {
    outcome(
        build,
        Findings::Throughput {
            levels,
            capacity: None,
        },
    )
}

fn verdict(results: &Results, claim: &str) -> Verdict {
    verdicts(results)
        .into_iter()
        .find(|verdict| verdict.claim == claim)
        .expect("every claim has a verdict")
}

#[test]
fn a_kill_the_platform_healed_by_itself_is_timed_in_the_self_healing_verdict() {
    let healed = |build, ms| {
        let mut cell = cell(FaultKind::Kill, 0.2);
        cell.restarts = 1;
        cell.healed_in_ms = ms;
        faults(build, vec![cell])
    };
    let results = results(vec![
        healed(Build::Monolith, Some(3_400)),
        healed(Build::Micro, Some(3_600)),
    ]);
    let healing = verdict(&results, "self-healing");
    assert_eq!(healing.status, Status::Holds, "{}", healing.evidence);
    assert!(
        healing
            .evidence
            .contains("running again 3600 ms after the fault")
            && healing
                .evidence
                .contains("running again 3400 ms after the fault"),
        "{}",
        healing.evidence
    );
    // Where the lab restarted the process itself, no platform heal is claimed.
    let results = results_of_lab_restarts();
    let healing = verdict(&results, "self-healing");
    assert!(
        !healing.evidence.contains("running again"),
        "{}",
        healing.evidence
    );
}

fn results_of_lab_restarts() -> Results {
    let restarted = |build| {
        let mut cell = cell(FaultKind::Kill, 0.2);
        cell.restarts = 1;
        faults(build, vec![cell])
    };
    results(vec![restarted(Build::Monolith), restarted(Build::Micro)])
}

#[test]
fn a_fault_that_takes_the_whole_monolith_and_nothing_of_micro_means_fault_isolation_holds() {
    let results = results(vec![
        faults(Build::Monolith, vec![cell(FaultKind::Latency, 1.0)]),
        faults(Build::Micro, vec![cell(FaultKind::Latency, 0.0)]),
    ]);
    let isolation = verdict(&results, "fault isolation");
    assert_eq!(isolation.status, Status::Holds, "{}", isolation.evidence);
    assert!(
        isolation
            .evidence
            .contains("0 % of the journey steps on the microservices"),
        "{}",
        isolation.evidence
    );
    assert!(
        isolation.evidence.contains("100 % on the monolith"),
        "{}",
        isolation.evidence
    );
}

#[test]
fn micro_degrading_more_than_the_monolith_means_fault_isolation_does_not_hold() {
    let results = results(vec![
        faults(Build::Monolith, vec![cell(FaultKind::Errors, 0.2)]),
        faults(Build::Micro, vec![cell(FaultKind::Errors, 0.6)]),
    ]);
    let isolation = verdict(&results, "fault isolation");
    assert_eq!(isolation.status, Status::DoesNotHold);
    assert!(
        isolation
            .evidence
            .contains("the monolith contained these faults better")
    );
}

#[test]
fn a_fault_not_in_force_on_one_build_is_not_compared_and_is_a_warning() {
    let mut unavailable = cell(FaultKind::DbDown, 0.0);
    unavailable.applied = false;
    unavailable.error = Some("unavailable: SQLite is embedded in the process".into());
    let results = results(vec![
        faults(Build::Monolith, vec![cell(FaultKind::DbDown, 1.0)]),
        faults(Build::Micro, vec![unavailable]),
    ]);
    assert_eq!(
        verdict(&results, "fault isolation").status,
        Status::NotTested
    );
    let warnings = warnings(&results);
    assert!(
        warnings.iter().any(|warning| warning
            == "1 fault unavailable on this machine on the microservices (db_down · payments): \
                SQLite is embedded in the process."),
        "{warnings:#?}"
    );
}

#[test]
fn a_journey_failing_before_its_fault_is_a_warning_naming_the_cell() {
    let window = |requests: usize, ok: usize| WindowStats {
        requests,
        ok,
        fast_errors: requests - ok,
        timeouts: 0,
        success_rate: (requests > 0).then(|| ok as f64 / requests as f64),
        latency: Percentiles::default(),
    };
    let phases = |journey: &str, before: WindowStats| Phases {
        journey: journey.into(),
        before,
        during: window(10, 0),
        after: window(10, 10),
    };
    let mut kill = cell(FaultKind::Kill, 0.3);
    kill.journeys = vec![
        phases("browse", window(100, 100)),
        phases("buy", window(50, 0)),
    ];
    let mut latency = cell(FaultKind::Latency, 0.0);
    latency.journeys = vec![phases("buy", window(0, 0))];
    let results = results(vec![
        faults(Build::Monolith, vec![cell(FaultKind::Kill, 0.3)]),
        faults(Build::Micro, vec![kill, latency]),
    ]);
    let warnings = warnings(&results);
    let failing: Vec<_> = warnings
        .iter()
        .filter(|warning| warning.contains("before its fault was injected"))
        .collect();
    assert_eq!(failing.len(), 1, "{warnings:#?}");
    assert!(
        failing[0].contains("On the microservices")
            && failing[0].contains("buy in kill · payments (0 %)")
            && failing[0].contains("buy in latency · payments (no request)")
            && !failing[0].contains("browse"),
        "{}",
        failing[0]
    );
    // Neither micro cell is judged: the kill's 30 % and the latency's 0 % (of a shop that
    // sent no buy before it) say nothing of either fault, so no pair is left to compare.
    let isolation = verdict(&results, "fault isolation");
    assert_eq!(
        isolation.status,
        Status::NotTested,
        "{}",
        isolation.evidence
    );
    // Nor a mean for either build: the monolith's kill alone would be compared with nothing.
    assert_eq!(super::mean_blast_radius(&results, Build::Micro), None);
    assert_eq!(super::mean_blast_radius(&results, Build::Monolith), None);
}

#[test]
fn a_saturated_generator_gives_a_warning_naming_the_level_and_the_build() {
    let results = results(vec![
        sweep(Build::Monolith, vec![level(16, 1, 900.0, false)]),
        sweep(Build::Micro, vec![level(16, 1, 400.0, true)]),
    ]);
    let warnings = warnings(&results);
    let saturated: Vec<_> = warnings
        .iter()
        .filter(|warning| warning.contains("saturated"))
        .collect();
    assert_eq!(saturated.len(), 1, "{warnings:#?}");
    assert!(
        saturated[0].contains("at 16 users on the microservices (it used 93 % of its cores)"),
        "{}",
        saturated[0]
    );
}

#[test]
fn repeats_more_than_ten_percent_apart_are_flagged_as_noisy_and_close_ones_are_not() {
    let results = results(vec![
        sweep(
            Build::Monolith,
            vec![level(8, 1, 1000.0, false), level(8, 2, 1030.0, false)],
        ),
        sweep(
            Build::Micro,
            vec![level(8, 1, 500.0, false), level(8, 2, 600.0, false)],
        ),
    ]);
    let noisy: Vec<_> = warnings(&results)
        .into_iter()
        .filter(|warning| warning.starts_with("Noisy"))
        .collect();
    assert_eq!(noisy.len(), 1, "{noisy:#?}");
    assert!(
        noisy[0]
            .contains("the successful throughput of the microservices at 8 users varied by 18 %"),
        "{}",
        noisy[0]
    );
}

#[test]
fn the_throughput_ratio_carries_the_spread_of_the_repeats() {
    let results = results(vec![
        sweep(
            Build::Monolith,
            vec![level(4, 1, 45.0, false), level(4, 2, 55.0, false)],
        ),
        sweep(
            Build::Micro,
            vec![level(4, 1, 90.0, false), level(4, 2, 110.0, false)],
        ),
    ]);
    let figures = key_figures(&results);
    let throughput = figures
        .iter()
        .find(|figure| figure.name == "successful throughput at 4 users")
        .expect("throughput");
    let ratio = throughput.ratio().expect("a ratio");
    assert!((ratio.estimate.median - 2.0).abs() < 1e-9);
    // Welch on logs: both sides have the log sd s = (ln 110 - ln 90) / √2 = 0.14190 over two
    // repeats, so se = √(s²/2 + s²/2) = s, df = 2, t = 4.303: ×2 · e^±0.61059 = ×1.086–×3.683.
    let (low, high) = ratio.estimate.interval().expect("two repeats each");
    assert!((low - 1.086).abs() < 0.001, "{low}");
    assert!((high - 3.683).abs() < 0.001, "{high}");
    assert!(ratio.distinguishable(), "the interval leaves out ×1");
}

#[test]
fn a_target_that_reads_no_cpu_or_memory_gets_no_figure_for_them_and_no_verdict_on_cost() {
    let unmetered = |requests_per_s| Level {
        sut_cpu_s: None,
        sut_peak_rss_mib: None,
        requests_per_sut_cpu_s: None,
        ..level(4, 1, requests_per_s, false)
    };
    let results = results(vec![
        sweep(Build::Monolith, vec![unmetered(100.0)]),
        sweep(Build::Micro, vec![unmetered(50.0)]),
    ]);
    let figures = key_figures(&results);
    for name in [
        "CPU per 1 000 successful requests at 4 users",
        "peak memory at 4 users",
    ] {
        let figure = figures
            .iter()
            .find(|figure| figure.name == name)
            .expect("the figure has a row");
        assert!(
            figure.monolith.is_none() && figure.micro.is_none(),
            "{name}"
        );
        assert_eq!(figure.absent, "not measured");
        assert!(figure.ratio().is_none(), "{name}");
    }
    let cost = verdict(&results, "the cost of each hop");
    assert!(
        cost.evidence.contains("CPU not measured") && !cost.evidence.contains("its CPU per"),
        "{}",
        cost.evidence
    );
    // Half the monolith's throughput still decides it, without a CPU figure.
    assert_eq!(cost.status, Status::Holds);
}

#[test]
fn the_hop_cost_verdict_charges_the_extra_cpu_per_request_to_the_hops_counted() {
    // The monolith: 1 000 requests for 5 CPU s (5 ms each); the microservices: 500 requests
    // for the same 5 CPU s (10 ms each) over 1 000 hops (2 per request): 2 500 µs a hop.
    let monolith = sweep(Build::Monolith, vec![level(4, 1, 100.0, false)]);
    let counted = Level {
        hops: Some(1_000),
        ..level(4, 1, 50.0, false)
    };
    let with_hops = results(vec![monolith.clone(), sweep(Build::Micro, vec![counted])]);
    let cost = verdict(&with_hops, "the cost of each hop");
    assert!(
        cost.evidence.contains(
            "×2.00 its CPU per request (2.00 hops per request, about 2500 µs of CPU each)"
        ),
        "{}",
        cost.evidence
    );
    // Uncounted hops (a target whose processes the lab cannot scrape) give no per-hop figure.
    let uncounted = Level {
        hops: None,
        ..level(4, 1, 50.0, false)
    };
    let without = results(vec![monolith, sweep(Build::Micro, vec![uncounted])]);
    let cost = verdict(&without, "the cost of each hop");
    assert!(
        cost.evidence.contains("×2.00 its CPU per request")
            && !cost.evidence.contains("hops per request"),
        "{}",
        cost.evidence
    );
}

#[test]
fn a_violated_invariant_is_the_first_warning_with_its_first_example() {
    let mut broken = sweep(Build::Micro, vec![level(4, 1, 100.0, false)]);
    broken.invariants = CheckReport {
        valid: false,
        invariants: vec![InvariantResult {
            id: "I2".into(),
            name: "no oversell".into(),
            checked: true,
            violations: 3,
            first_example: Some("product 7: sold 12 of 10".into()),
        }],
        maybe_applied: None,
    };
    let warnings = warnings(&results(vec![broken]));
    assert!(warnings[0].starts_with("Invariant I2 (no oversell) was violated 3× on the microservices during throughput; first: product 7: sold 12 of 10"), "{warnings:#?}");
}

#[test]
fn rolling_deploys_without_failures_on_both_builds_hold_and_say_it_is_no_advantage() {
    let deploys = |component: &str, storm_failed: usize| {
        Findings::Deploy(Deploys {
            each: ["recreate", "rolling"]
                .into_iter()
                .map(|strategy| Deploy {
                    component: component.into(),
                    strategy: strategy.into(),
                    started_at_ms: 1_000,
                    time_to_ready_ms: 400,
                    requests: 200,
                    failed_requests: if strategy == "recreate" { 20 } else { 0 },
                    error: None,
                })
                .collect(),
            storm: Storm {
                deploys: 10,
                started_at_ms: 9_000,
                strategy: "rolling".into(),
                duration_ms: 8_000,
                requests: 2_000,
                failed_requests: storm_failed,
                median_time_to_ready_ms: 500,
            },
            timeline: Timeline::default(),
        })
    };
    // The key figure counts the storm's rolling deploys with the others.
    let stormy = results(vec![
        outcome(Build::Monolith, deploys("monolith", 2)),
        outcome(Build::Micro, deploys("catalog", 0)),
    ]);
    let figures = key_figures(&stormy);
    let failed = figures
        .iter()
        .find(|figure| figure.name == "rolling deploys and the storm: failed requests")
        .expect("the rolling deploys' row");
    assert_eq!(
        (
            failed.monolith.as_ref().map(|m| m.median),
            failed.micro.as_ref().map(|m| m.median)
        ),
        (Some(2.0), Some(0.0))
    );
    let results = results(vec![
        outcome(Build::Monolith, deploys("monolith", 0)),
        outcome(Build::Micro, deploys("catalog", 0)),
    ]);
    let rolling = verdict(&results, "no-downtime rolling update");
    assert_eq!(rolling.status, Status::Holds);
    assert!(
        rolling.evidence.contains("no advantage of either build"),
        "{}",
        rolling.evidence
    );
    // The same share of failures for one service as for the whole monolith: no gain.
    assert_eq!(
        verdict(&results, "independent deploy").status,
        Status::DoesNotHold
    );
}

#[test]
fn scaling_on_a_one_core_shop_is_not_tested_whatever_the_speedup() {
    let half = |replicas, requests_per_s| Half {
        warm_up_s: 0.0,
        replicas,
        requests_per_s,
        error_rate: 0.0,
        latency: Percentiles::default(),
        sut_cpu_s: Some(10.0),
        requests_per_sut_cpu_s: Some(requests_per_s / 10.0),
    };
    let scale = Scale {
        component: "catalog".into(),
        users: 16,
        before: half(1, 500.0),
        after: half(2, 800.0),
        speedup: 1.6,
        sut_cores: 1,
        cpu_by_process: Vec::new(),
        spread: None,
        quota: Quota::default(),
        utilisation: Vec::new(),
        added: Vec::new(),
        not_replicated: Vec::new(),
        gain: None,
    };
    let mut results = results(vec![outcome(
        Build::Micro,
        Findings::Scale(Box::new(scale.clone())),
    )]);
    assert_eq!(
        verdict(&results, "independent scaling").status,
        Status::NotTested
    );
    results.experiments = vec![outcome(
        Build::Micro,
        Findings::Scale(Box::new(Scale {
            sut_cores: 4,
            ..scale
        })),
    )];
    assert_eq!(
        verdict(&results, "independent scaling").status,
        Status::Holds
    );
}

#[test]
fn under_a_cpu_quota_scaling_is_judged_on_one_core_and_without_one_it_says_why_not() {
    let half = |replicas, requests_per_s| Half {
        warm_up_s: 0.0,
        replicas,
        requests_per_s,
        error_rate: 0.0,
        latency: Percentiles::default(),
        sut_cpu_s: Some(1.0),
        requests_per_sut_cpu_s: Some(requests_per_s),
    };
    let added = Added {
        process: "catalog#2".into(),
        cpu_cores: Some(0.1),
        rss_mib: Some(25.0),
    };
    let (before, after) = (half(1, 200.0), half(2, 320.0));
    let gain = Gain::of(&before, &after, std::slice::from_ref(&added));
    let scale = Scale {
        component: "catalog".into(),
        users: 16,
        before,
        after,
        speedup: 1.6,
        sut_cores: 1,
        cpu_by_process: Vec::new(),
        spread: None,
        quota: Quota {
            cores: Some(0.1),
            note: Some("cpu.cfs_quota_us=10000".into()),
            unavailable: None,
        },
        utilisation: vec![
            Utilisation {
                process: "catalog".into(),
                replicas: 1,
                cpu_s: 0.29,
                utilisation: 0.97,
            },
            Utilisation {
                process: "gateway".into(),
                replicas: 1,
                cpu_s: 0.2,
                utilisation: 0.67,
            },
        ],
        added: vec![added],
        not_replicated: Vec::new(),
        gain: Some(gain),
    };
    let claim = "independent scaling";
    let quota = results(vec![outcome(
        Build::Micro,
        Findings::Scale(Box::new(scale.clone())),
    )]);
    let found = verdict(&quota, claim);
    assert_eq!(found.status, Status::Holds, "{}", found.evidence);
    for said in [
        "0.10 cores",
        "97 %",
        "+1200 req/s per added core",
        "+4.8 per added MiB",
    ] {
        assert!(found.evidence.contains(said), "{said}: {}", found.evidence);
    }
    // The same speed-up with no quota on one core says nothing, and says why.
    let unavailable = results(vec![outcome(
        Build::Micro,
        Findings::Scale(Box::new(Scale {
            quota: Quota {
                cores: None,
                note: None,
                unavailable: Some("unavailable: no cgroup v1 controller".into()),
            },
            utilisation: Vec::new(),
            ..scale
        })),
    )]);
    let found = verdict(&unavailable, claim);
    assert_eq!(found.status, Status::NotTested);
    assert!(
        found
            .evidence
            .contains("unavailable: no cgroup v1 controller"),
        "{}",
        found.evidence
    );
}

#[test]
fn load_balancing_holds_on_an_even_spread_on_every_build_and_is_untested_where_none_was_counted() {
    let half = |replicas| Half {
        warm_up_s: 0.0,
        replicas,
        requests_per_s: 500.0,
        error_rate: 0.0,
        latency: Percentiles::default(),
        sut_cpu_s: None,
        requests_per_sut_cpu_s: None,
    };
    let scale = |counts: Option<[u64; 2]>| {
        Findings::Scale(Box::new(Scale {
            component: "catalog".into(),
            users: 16,
            before: half(1),
            after: half(2),
            speedup: 1.0,
            sut_cores: 2,
            cpu_by_process: Vec::new(),
            spread: counts.map(|[a, b]| ReplicaSpread {
                counted_by: "the gateway".into(),
                replicas: vec![("10.0.0.1:8080".into(), a), ("10.0.0.2:8080".into(), b)],
            }),
            quota: Quota::default(),
            utilisation: Vec::new(),
            added: Vec::new(),
            not_replicated: Vec::new(),
            gain: None,
        }))
    };
    let claim = "load balancing over replicas";
    let even = results(vec![
        outcome(Build::Monolith, scale(Some([520, 480]))),
        outcome(Build::Micro, scale(Some([500, 500]))),
    ]);
    let found = verdict(&even, claim);
    assert_eq!(found.status, Status::Holds, "{}", found.evidence);
    assert!(found.evidence.contains("52 % / 48 %"), "{}", found.evidence);
    // One build with 70 % on one replica is past the 60 % an even spread allows.
    let skewed = results(vec![
        outcome(Build::Monolith, scale(Some([520, 480]))),
        outcome(Build::Micro, scale(Some([700, 300]))),
    ]);
    assert_eq!(verdict(&skewed, claim).status, Status::DoesNotHold);
    let uncounted = results(vec![outcome(Build::Micro, scale(None))]);
    assert_eq!(verdict(&uncounted, claim).status, Status::NotTested);
}

#[test]
fn a_spread_just_past_the_rule_reads_past_it_and_a_speedup_beyond_linear_is_warned_of() {
    let half = |replicas, requests_per_s, p50_us| Half {
        warm_up_s: 0.0,
        replicas,
        requests_per_s,
        error_rate: 0.0,
        latency: Percentiles {
            p50_us,
            ..Percentiles::default()
        },
        sut_cpu_s: None,
        requests_per_sut_cpu_s: None,
    };
    // The sample run's monolith: 1653 and 1093 responses, ×2.47 from a second process.
    let scale = |speedup: f64| {
        Findings::Scale(Box::new(Scale {
            component: "monolith".into(),
            users: 16,
            before: half(1, 214.0, 95_295),
            after: half(2, 214.0 * speedup, 3_997),
            speedup,
            sut_cores: 1,
            cpu_by_process: Vec::new(),
            spread: Some(ReplicaSpread {
                counted_by: "the lab's front door".into(),
                replicas: vec![("a".into(), 1653), ("b".into(), 1093)],
            }),
            quota: Quota {
                cores: Some(0.1),
                note: None,
                unavailable: None,
            },
            utilisation: Vec::new(),
            added: Vec::new(),
            not_replicated: Vec::new(),
            gain: None,
        }))
    };
    let superlinear = results(vec![outcome(Build::Monolith, scale(2.47))]);
    let found = verdict(&superlinear, "load balancing over replicas");
    assert_eq!(found.status, Status::DoesNotHold);
    // 1.204 rounded to 1.20 would read as meeting the 1.20 it failed.
    assert!(
        found.evidence.contains("imbalance 1.204"),
        "{}",
        found.evidence
    );
    let warned: Vec<String> = warnings(&superlinear)
        .into_iter()
        .filter(|warning| warning.starts_with("The scale experiment"))
        .collect();
    assert_eq!(warned.len(), 1, "{warned:?}");
    for said in [
        "×2.47",
        "×2.00",
        "95.3 ms before",
        "4.00 ms after",
        "0.10 cores",
    ] {
        assert!(warned[0].contains(said), "{said}: {}", warned[0]);
    }
    // Within 10 % of linear: nothing to warn of.
    let linear = results(vec![outcome(Build::Monolith, scale(2.15))]);
    assert!(
        !warnings(&linear)
            .iter()
            .any(|warning| warning.starts_with("The scale experiment")),
    );
}

#[test]
fn throughput_latency_and_cpu_are_of_successes_and_a_level_without_one_has_no_latency() {
    let half_failed = Level {
        errors: 5_000,
        error_rate: 0.5,
        ..level(8, 1, 1000.0, false)
    };
    // A dead build: every request refused fast, its recorded latency of no success is zero.
    let dead = Level {
        errors: 10_000,
        error_rate: 1.0,
        raw: Percentiles::default(),
        corrected: Percentiles::default(),
        ..level(8, 1, 1000.0, false)
    };
    let results = results(vec![
        sweep(Build::Monolith, vec![half_failed]),
        sweep(Build::Micro, vec![dead]),
    ]);
    let monolith = crate::figures::throughput(&results, Build::Monolith);
    assert_eq!(monolith[0].requests_per_s.median, 500.0);
    // 5 CPU s for 5 000 successes: the 5 000 failed requests do not make one cheaper.
    let cpu = monolith[0].cpu_per_1k.as_ref().expect("a CPU figure");
    assert_eq!(cpu.median, 1.0);
    let micro = crate::figures::throughput(&results, Build::Micro);
    assert_eq!(micro[0].requests_per_s.median, 0.0);
    assert!(micro[0].raw[2].is_none(), "no success, no p99");
    assert!(
        micro[0].cpu_per_1k.is_none(),
        "no success, no CPU per success"
    );
    let figures = key_figures(&results);
    let p99 = figures
        .iter()
        .find(|figure| figure.name == "p99 latency at 8 users")
        .expect("p99 row");
    assert!(p99.micro.is_none() && p99.monolith.is_some());
}

#[test]
fn one_run_claims_no_spread_and_no_agreement() {
    let results = results(vec![
        sweep(Build::Monolith, vec![level(8, 1, 1000.0, false)]),
        sweep(Build::Micro, vec![level(8, 1, 400.0, false)]),
    ]);
    let figures = key_figures(&results);
    let throughput = figures
        .iter()
        .find(|figure| figure.name == "successful throughput at 8 users")
        .expect("throughput");
    let ratio = throughput.ratio().expect("a ratio");
    assert!(ratio.estimate.interval().is_none());
    assert!(!ratio.distinguishable());
    assert_eq!(ratio.describe(), "×0.40 (one run: no interval)");
    let cell = crate::sections::with_spread(throughput.monolith.as_ref().expect("one"), "req/s");
    assert_eq!(cell, "1000 req/s");
    let hop = verdicts(&results)
        .into_iter()
        .find(|verdict| verdict.claim == "the cost of each hop")
        .expect("hop verdict");
    assert!(
        hop.evidence.contains("one run: no spread"),
        "{}",
        hop.evidence
    );
    assert!(
        warnings(&results)
            .iter()
            .all(|warning| !warning.starts_with("Noisy"))
    );
}

#[test]
fn a_level_with_failures_is_warned_about_and_a_clean_one_is_not() {
    let failing = Level {
        errors: 300,
        error_rate: 0.03,
        ..level(16, 1, 1000.0, false)
    };
    let results = results(vec![
        sweep(Build::Monolith, vec![level(16, 1, 1000.0, false)]),
        sweep(Build::Micro, vec![failing]),
    ]);
    let failed: Vec<String> = warnings(&results)
        .into_iter()
        .filter(|warning| warning.contains("of its requests"))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(
        failed[0].starts_with("The microservices at 16 users failed 3 %"),
        "{}",
        failed[0]
    );
}

/// A capacity ramp whose steps met the SLO up to `met` steps, each offering twice the last.
fn ramp(build: Build, met: usize, steps: usize) -> Outcome {
    use loadtest_results::experiments::capacity::{
        Arrivals, Capacity, CapacityPlan, CapacityStep, Ramp, Slo,
    };
    let plan = CapacityPlan {
        start_per_s: 10.0,
        factor: 2.0,
        max_steps: steps,
        step_duration: std::time::Duration::from_secs(2),
        arrivals: Arrivals::Poisson,
        max_in_flight: 64,
        slo: Slo::default(),
        refine_steps: 0,
    };
    let steps: Vec<CapacityStep> = (0..steps)
        .map(|index| CapacityStep {
            offered_per_s: plan.rate(index),
            due: 20,
            started: 20,
            dropped: 0,
            requests: 60,
            errors: 0,
            ok_per_s: plan.rate(index) * 3.0,
            p50_us: Some(2_000),
            p99_us: Some(if index < met { 50_000 } else { 400_000 }),
            generator_cpu_share: 0.1,
            generator_limited: false,
            met: index < met,
            missed: Vec::new(),
        })
        .collect();
    let sustained_per_s = met.checked_sub(1).map(|last| plan.rate(last));
    outcome(
        build,
        Findings::Throughput {
            levels: Vec::new(),
            capacity: Some(Capacity {
                plan,
                ramps: vec![Ramp {
                    repeat: 1,
                    steps,
                    sustained_per_s,
                    stopped: String::new(),
                    logged_in_first: None,
                }],
                sustained: None,
                sustained_requests_per_s: None,
            }),
        },
    )
}

#[test]
fn capacity_is_the_first_key_figure_the_successes_of_the_last_step_within_the_slo() {
    // Monolith: 10, 20, 40 met and 80 missed; micro: its first step missed.
    let results = results(vec![ramp(Build::Monolith, 3, 4), ramp(Build::Micro, 0, 2)]);
    let figures = key_figures(&results);
    let capacity = &figures[0];
    assert!(capacity.name.starts_with("capacity at p99 ≤ 100 ms"));
    assert!(
        !capacity.name.contains("floor"),
        "both ramps missed a step: {}",
        capacity.name
    );
    assert_eq!(
        capacity.monolith.as_ref().map(|spread| spread.median),
        Some(120.0)
    );
    assert!(
        capacity.micro.is_none(),
        "a ramp that never met the SLO has no capacity"
    );
}

#[test]
fn a_capacity_ramp_that_never_missed_or_missed_at_once_is_a_warning() {
    let results = results(vec![ramp(Build::Monolith, 3, 3), ramp(Build::Micro, 0, 1)]);
    let warnings = warnings(&results);
    assert!(
        warnings
            .iter()
            .any(|warning| warning.contains("ramp of the monolith")
                && warning.contains("at least 40")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|warning| warning.contains("ramp of the microservices")
                && warning.contains("first step")),
        "{warnings:?}"
    );
    let capacity = &key_figures(&results)[0];
    assert!(
        capacity
            .name
            .ends_with("; monolith's is a floor: its ramp ran out of steps"),
        "{}",
        capacity.name
    );
}

#[test]
fn capacity_ramps_a_step_apart_are_flagged_noisy_and_agreeing_ones_are_not() {
    // Monolith: one ramp met 40/s (120 ok req/s), another only 20/s (60): 67 % apart.
    let two_ramps = |build, met: [usize; 2]| {
        let mut outcome = ramp(build, met[0], 4);
        let second = ramp(build, met[1], 4);
        if let (
            Findings::Throughput {
                capacity: Some(capacity),
                ..
            },
            Findings::Throughput {
                capacity: Some(other),
                ..
            },
        ) = (&mut outcome.findings, second.findings)
        {
            let mut ramp = other.ramps[0].clone();
            ramp.repeat = 2;
            capacity.ramps.push(ramp);
        }
        outcome
    };
    let results = results(vec![
        two_ramps(Build::Monolith, [3, 2]),
        two_ramps(Build::Micro, [2, 2]),
    ]);
    let noisy: Vec<String> = warnings(&results)
        .into_iter()
        .filter(|warning| warning.starts_with("Noisy: the capacity"))
        .collect();
    assert_eq!(noisy.len(), 1, "{noisy:?}");
    assert!(
        noisy[0].contains("of the monolith") && noisy[0].contains("(60 to 120 successful req/s"),
        "{noisy:?}"
    );
}

fn node_event(kind: &str, failed_requests: usize) -> NodeEvent {
    NodeEvent {
        kind: kind.into(),
        node: "worker-1".into(),
        tasks: vec!["catalog".into(), "gateway".into()],
        started_at_ms: 2_000,
        recovered_ms: 9_000,
        requests: 5_000,
        failed_requests,
        error: None,
    }
}

fn nodes(build: Build, events: Vec<NodeEvent>) -> Outcome {
    outcome(
        build,
        Findings::Nodes(Nodes {
            nodes: 3,
            database_node: Some("manager".into()),
            events,
            timeline: Timeline::default(),
        }),
    )
}

#[test]
fn a_drain_is_clean_only_with_no_failed_request_and_the_spares_make_it_mixed_not_held() {
    let claim = "drains a node without downtime";
    let outage = results(vec![
        nodes(
            Build::Monolith,
            vec![node_event("loss", 3), node_event("drain", 1)],
        ),
        nodes(Build::Micro, vec![node_event("drain", 700)]),
    ]);
    let judged = verdict(&outage, claim);
    assert_eq!(
        judged.status,
        Status::DoesNotHold,
        "one failed request of 5000 is downtime for a planned drain: {judged:?}"
    );

    let spared = results(vec![
        nodes(
            Build::Monolith,
            vec![node_event("drain", 20), node_event("drain-with-spares", 0)],
        ),
        nodes(
            Build::Micro,
            vec![node_event("drain", 700), node_event("drain-with-spares", 0)],
        ),
    ]);
    let judged = verdict(&spared, claim);
    assert_eq!(judged.status, Status::Mixed, "{judged:?}");
    assert!(
        judged
            .evidence
            .contains("micro (drain-with-spares): 2 task(s) of worker-1")
            && judged.evidence.contains("0 of 5000 requests failed"),
        "the evidence names each drain: {}",
        judged.evidence
    );

    // The loss verdict reads only the loss: 3 of 5000 is under its 1 %.
    let loss = verdict(&outage, "survives the loss of a node");
    assert_eq!(loss.status, Status::Holds, "{loss:?}");
}

/// An `errors` cell on inventory at `rate`, its blast radius telling the cells apart.
fn errors_cell(rate: f64, blast_radius: f64) -> Cell {
    Cell {
        fault: FaultCell::errors(Context::Inventory, rate).expect("a rate in range"),
        process: "inventory".into(),
        ..cell(FaultKind::Errors, blast_radius)
    }
}

#[test]
fn each_error_rate_is_its_own_row_and_chart_labelled_with_its_rate_and_an_old_cell_is_the_50_percent_one()
 {
    // The monolith's 50 % cell as results.json held it before the rate was recorded.
    let mut old = serde_json::to_value(errors_cell(0.5, 0.25)).expect("a cell");
    old.as_object_mut().expect("an object").remove("rate");
    let old: Cell = serde_json::from_value(old).expect("an old cell reads");
    let results = results(vec![
        faults(
            Build::Monolith,
            vec![errors_cell(0.3, 0.125), old, errors_cell(0.7, 0.375)],
        ),
        faults(
            Build::Micro,
            vec![
                errors_cell(0.3, 0.5),
                errors_cell(0.5, 0.625),
                errors_cell(0.7, 0.75),
            ],
        ),
    ]);
    let pairs = figures::fault_pairs(&results);
    let found: Vec<(String, Option<f64>, Option<f64>)> = pairs
        .iter()
        .map(|pair| {
            let radius = |build| pair.cell(build).map(|cell: &Cell| cell.blast_radius);
            (pair.name(), radius(Build::Monolith), radius(Build::Micro))
        })
        .collect();
    assert_eq!(
        found,
        [
            ("errors 30 % · inventory".to_owned(), Some(0.125), Some(0.5)),
            (
                "errors 50 % · inventory".to_owned(),
                Some(0.25),
                Some(0.625)
            ),
            (
                "errors 70 % · inventory".to_owned(),
                Some(0.375),
                Some(0.75)
            ),
        ],
        "one pair per rate, each with the same rate on both builds"
    );
    let text = text::summary(&results);
    for label in ["errors 30 %", "errors 50 %", "errors 70 %"] {
        assert!(text.contains(label), "{label} in the summary:\n{text}");
    }

    let dir = tempfile::tempdir().expect("a folder");
    crate::write(dir.path(), &results).expect("the report is written");
    let markdown = std::fs::read_to_string(dir.path().join("report.md")).expect("report.md");
    for (label, stem) in [
        ("errors 30 % · inventory", "fault-errors-30pct-inventory"),
        ("errors 50 % · inventory", "fault-errors-50pct-inventory"),
        ("errors 70 % · inventory", "fault-errors-70pct-inventory"),
    ] {
        let rows = markdown
            .lines()
            .filter(|line| line.starts_with(&format!("| {label} |")))
            .count();
        assert_eq!(rows, 2, "a row per build for {label}:\n{markdown}");
        assert!(
            dir.path()
                .join("charts")
                .join(format!("{stem}.png"))
                .exists(),
            "{stem}.png"
        );
    }
    crate::csv::write(dir.path(), &results).expect("the CSV files are written");
    let csv = std::fs::read_to_string(dir.path().join("faults.csv")).expect("faults.csv");
    assert!(csv.lines().next().unwrap_or("").contains(",rate,"), "{csv}");
}

#[test]
fn tied_bottlenecks_scaled_together_are_named_priced_per_every_added_quota_and_one_left_out_says_why()
 {
    let half = |replicas, requests_per_s| Half {
        warm_up_s: 0.0,
        replicas,
        requests_per_s,
        error_rate: 0.0,
        latency: Percentiles::default(),
        sut_cpu_s: Some(1.0),
        requests_per_sut_cpu_s: Some(requests_per_s),
    };
    let used = |process: &str, utilisation: f64| Utilisation {
        process: process.into(),
        replicas: 1,
        cpu_s: utilisation * 0.3,
        utilisation,
    };
    let added = vec![
        Added {
            process: "catalog#2".into(),
            cpu_cores: Some(0.1),
            rss_mib: Some(20.0),
        },
        Added {
            process: "gateway#2".into(),
            cpu_cores: Some(0.1),
            rss_mib: Some(30.0),
        },
    ];
    // +160 successful req/s over two quotas of 0.1 and 50 MiB.
    let (before, after) = (half(1, 200.0), half(2, 360.0));
    let gain = Gain::of(&before, &after, &added);
    let scale = Scale {
        component: "catalog".into(),
        users: 16,
        before,
        after,
        speedup: 1.8,
        sut_cores: 1,
        cpu_by_process: Vec::new(),
        spread: None,
        quota: Quota {
            cores: Some(0.1),
            note: None,
            unavailable: None,
        },
        utilisation: vec![
            used("catalog", 1.0),
            used("gateway", 0.99),
            used("orders", 0.95),
            used("cart", 0.4),
        ],
        added,
        not_replicated: vec![NotReplicated {
            process: "orders".into(),
            why: "no room: tied for the bottleneck, but the shop's 1 core already held 10 quotas"
                .into(),
        }],
        gain: Some(gain),
    };
    let results = results(vec![outcome(
        Build::Micro,
        Findings::Scale(Box::new(scale)),
    )]);
    let found = verdict(&results, "independent scaling");
    for said in [
        "2 more processes, one replica of each tied bottleneck (catalog#2 + gateway#2)",
        "+800 req/s per added core",
        "+3.2 per added MiB",
        "orders got none (no room:",
    ] {
        assert!(found.evidence.contains(said), "{said}: {}", found.evidence);
    }

    let dir = tempfile::tempdir().expect("a folder");
    crate::write(dir.path(), &results).expect("the report is written");
    // Markdown escapes `#`; the process names read as written.
    let markdown = std::fs::read_to_string(dir.path().join("report.md"))
        .expect("report.md")
        .replace("\\#", "#");
    for said in [
        "| microservices | 1 × catalog, 1 × gateway | — |",
        "| microservices | 2 × catalog, 2 × gateway | catalog#2 + gateway#2 |",
        "The microservices added 2 processes (catalog#2 + gateway#2), so their figures are per \
         the 2 quotas",
        "| microservices | catalog#2 + gateway#2 | 0.20 | 50.0 | ×1.80 | +160 | +800 req/s | +3.2 req/s |",
        "orders | no room:",
    ] {
        assert!(markdown.contains(said), "{said}:\n{markdown}");
    }
    let text = text::summary(&results);
    assert!(
        text.contains("+1 replica of catalog#2 + gateway#2"),
        "{text}"
    );
    assert!(text.contains("not replicated: orders (no room:"), "{text}");
}

/// A throughput sweep on a topology between the builds, recorded as the micro build with
/// its name beside.
fn sweep_on(topology: &str, levels: Vec<Level>) -> Outcome {
    Outcome {
        topology: Some(topology.to_owned()),
        ..sweep(Build::Micro, levels)
    }
}

#[test]
fn a_topology_between_the_builds_goes_to_the_spectrum_and_never_into_the_builds_comparison() {
    let two = results(vec![
        sweep(Build::Monolith, vec![level(16, 1, 900.0, false)]),
        sweep(Build::Micro, vec![level(16, 1, 300.0, false)]),
    ]);
    assert!(!two.has_spectrum(), "the two builds alone have no spectrum");

    let mut between = level(16, 1, 500.0, false);
    between.processes = vec![
        ProcessUsage {
            process: "browse".into(),
            cpu_s: 2.0,
            rss_mib: 60.0,
        },
        ProcessUsage {
            process: "front-door".into(),
            cpu_s: 7.0,
            rss_mib: 99.0,
        },
    ];
    let three = results(vec![
        sweep(Build::Monolith, vec![level(16, 1, 900.0, false)]),
        sweep_on("browse-buy", vec![between]),
        sweep(Build::Micro, vec![level(16, 1, 300.0, false)]),
    ]);
    assert!(three.has_spectrum());
    // The micro build's figures are the micro preset's, not browse-buy's.
    let micro = crate::figures::throughput(&three.builds_only(), Build::Micro);
    assert_eq!(micro.len(), 1);
    assert_eq!(micro[0].requests_per_s.median, 300.0);

    let points = crate::sections::spectrum::points(&three);
    let placed: Vec<(&str, usize)> = points
        .iter()
        .map(|point| (point.topology.as_str(), point.processes))
        .collect();
    assert_eq!(placed, [("monolith", 1), ("browse-buy", 3), ("micro", 8)]);
    // browse-buy's CPU and memory are its own processes', the front door left out: 2 CPU s
    // over its 5 000 requests, and 60 MiB.
    let cpu = points[1].cpu_ms_per_request.as_ref().expect("cpu");
    assert!((cpu.median - 0.4).abs() < 1e-9, "{cpu:?}");
    assert_eq!(points[1].memory_mib.as_ref().map(|m| m.median), Some(60.0));
}

/// A topology's deploy experiment: a rolling deploy of each named process, `failed` requests
/// failed in the one of `payments_process`.
fn deploys_on(topology: &str, payments_process: &str, others: &[&str], failed: usize) -> Outcome {
    let roll = |component: &str, failed_requests: usize| Deploy {
        component: component.into(),
        strategy: "rolling".into(),
        started_at_ms: 1_000,
        time_to_ready_ms: 400,
        requests: 300,
        failed_requests,
        error: None,
    };
    let mut each: Vec<Deploy> = others.iter().map(|other| roll(other, 7)).collect();
    each.push(roll(payments_process, failed));
    // A recreate of the same process is not the roll: its failures are not counted.
    each.push(Deploy {
        strategy: "recreate".into(),
        ..roll(payments_process, 99)
    });
    Outcome {
        topology: Some(topology.to_owned()),
        ..outcome(
            Build::of_topology(&domain::Topology::parse(topology).expect("a topology"))
                .unwrap_or(Build::Micro),
            Findings::Deploy(Deploys {
                each,
                storm: Storm {
                    deploys: 0,
                    started_at_ms: 0,
                    strategy: "rolling".into(),
                    duration_ms: 0,
                    requests: 0,
                    failed_requests: 0,
                    median_time_to_ready_ms: 0,
                },
                timeline: Timeline::default(),
            }),
        )
    }
}

/// A topology's fault experiment: a kill and the errors fault with these blast radii, and a
/// kill that was not in force (which counts for nothing).
fn faults_on(topology: &str, kill: f64, errors: f64) -> Outcome {
    let not_applied = Cell {
        applied: false,
        ..cell(FaultKind::Kill, 1.0)
    };
    Outcome {
        topology: Some(topology.to_owned()),
        ..faults(
            Build::of_topology(&domain::Topology::parse(topology).expect("a topology"))
                .unwrap_or(Build::Micro),
            vec![
                cell(FaultKind::Kill, kill),
                cell(FaultKind::Errors, errors),
                not_applied,
            ],
        )
    }
}

#[test]
fn the_spectrum_places_blast_radius_and_the_payments_roll_by_processes_and_says_where_each_claim_flips()
 {
    let results = results(vec![
        deploys_on("monolith", "monolith", &[], 4),
        faults_on("monolith", 1.0, 0.5),
        deploys_on(
            "coarse",
            "checkout",
            &["storefront", "stock", "accounts"],
            0,
        ),
        faults_on("coarse", 0.25, 0.5),
        deploys_on("micro", "payments", &["catalog", "orders"], 0),
        faults_on("micro", 0.25, 0.25),
    ]);
    assert!(results.has_spectrum());
    let points = crate::sections::spectrum::points(&results);
    let placed: Vec<(&str, usize)> = points
        .iter()
        .map(|point| (point.topology.as_str(), point.processes))
        .collect();
    assert_eq!(placed, [("monolith", 1), ("coarse", 5), ("micro", 8)]);
    let shares: Vec<(String, usize, f64, f64)> = points
        .iter()
        .map(|point| {
            let roll = point.payments_roll.as_ref().expect("a payments roll");
            (
                roll.process.clone(),
                roll.contexts,
                (roll.share_percent * 10.0).round() / 10.0,
                roll.failed.median,
            )
        })
        .collect();
    assert_eq!(
        shares,
        [
            ("monolith".to_owned(), 7, 100.0, 4.0),
            ("checkout".to_owned(), 3, 42.9, 0.0),
            ("payments".to_owned(), 1, 14.3, 0.0),
        ]
    );
    // The kill not in force is left out: coarse's kill is its one applied cell's 25 %.
    let kills: Vec<Option<f64>> = points
        .iter()
        .map(|point| point.blast_kill.as_ref().map(|spread| spread.median))
        .collect();
    assert_eq!(kills, [Some(100.0), Some(25.0), Some(25.0)]);
    assert!(points.iter().all(|point| point.capacity.is_none()));

    let lines: Vec<String> = crate::sections::spectrum::verdicts(&points)
        .into_iter()
        .map(|(_, line)| line)
        .collect();
    let line = |claim: &str| {
        lines
            .iter()
            .find(|line| line.starts_with(&format!("{claim}:")))
            .unwrap_or_else(|| panic!("no verdict on {claim}: {lines:?}"))
            .clone()
    };
    assert_eq!(
        line("independent deploy"),
        "independent deploy: a payments change restarts 100 % of the shop at 1 process \
         (monolith), 43 % at 5 (coarse), 14 % at 8 (micro); flips at 5 processes (coarse)."
    );
    assert_eq!(
        line("no-downtime deploy"),
        "no-downtime deploy: the payments roll failed 4 requests at 1 process (monolith), 0 at \
         5 (coarse), 0 at 8 (micro); flips at 5 processes (coarse)."
    );
    assert!(
        line("fault isolation (kill)").ends_with("flips at 5 processes (coarse)."),
        "{lines:?}"
    );
    // The errors fault degraded as much on coarse as on the monolith: it flips at micro.
    assert!(
        line("fault isolation (partial errors)").ends_with("flips at 8 processes (micro)."),
        "{lines:?}"
    );
    // Nothing measured, nothing claimed.
    assert!(
        !lines
            .iter()
            .any(|line| line.starts_with("the boundary costs")),
        "{lines:?}"
    );
}

#[test]
fn a_flip_that_does_not_hold_further_along_the_spectrum_names_where_it_does_not() {
    // The sample spectrum's kills: browse-buy keeps recommendations apart from the product
    // pages, coarse puts it with catalog, so its kill takes the product pages down.
    let kill = results_of_kills(&[
        ("monolith", 1.0),
        ("browse-buy", 0.8),
        ("coarse", 1.0),
        ("micro", 0.0),
    ]);
    assert!(
        kill.ends_with(
            "flips at 3 processes (browse-buy), yet not at 5 (coarse): not by the number of \
             processes alone."
        ),
        "{kill}"
    );
    // Every point past the flip holding: nothing more is said.
    let monotone = results_of_kills(&[("monolith", 1.0), ("browse-buy", 0.8), ("micro", 0.0)]);
    assert!(
        monotone.ends_with("flips at 3 processes (browse-buy)."),
        "{monotone}"
    );
}

fn results_of_kills(kills: &[(&str, f64)]) -> String {
    let results = results(
        kills
            .iter()
            .map(|(topology, kill)| faults_on(topology, *kill, 0.2))
            .collect(),
    );
    let points = crate::sections::spectrum::points(&results);
    crate::sections::spectrum::verdicts(&points)
        .into_iter()
        .map(|(_, line)| line)
        .find(|line| line.starts_with("fault isolation (kill):"))
        .expect("a verdict on a kill")
}

#[test]
fn a_rate_flips_only_beyond_ten_percent_and_a_figure_equal_everywhere_says_it_does_not_flip() {
    let sweep_of = |topology: &str, p99_us: u64| {
        let mut at = level(16, 1, 500.0, false);
        at.raw.p99_us = p99_us;
        Outcome {
            topology: Some(topology.to_owned()),
            ..sweep(Build::Micro, vec![at])
        }
    };
    let mut monolith = sweep_of("monolith", 10_000);
    monolith.build = Build::Monolith;
    let results = results(vec![
        monolith,
        sweep_of("satellites", 10_900),
        sweep_of("micro", 12_000),
    ]);
    let points = crate::sections::spectrum::points(&results);
    let lines: Vec<String> = crate::sections::spectrum::verdicts(&points)
        .into_iter()
        .map(|(_, line)| line)
        .collect();
    let p99 = lines
        .iter()
        .find(|line| line.starts_with("the boundary costs latency:"))
        .expect("a p99 verdict");
    // +9 % at satellites is within the margin; +20 % at micro is not.
    assert!(
        p99.contains("10.0 ms at 1 process (monolith), 10.9 at 4 (satellites), 12.0 at 8 (micro)"),
        "{p99}"
    );
    assert!(p99.ends_with("flips at 8 processes (micro)."), "{p99}");
    // Memory is 40 MiB at every point.
    let memory = lines
        .iter()
        .find(|line| line.starts_with("the boundary costs memory:"))
        .expect("a memory verdict");
    assert!(
        memory.ends_with("the same at every point, so it does not flip."),
        "{memory}"
    );
}

#[test]
fn the_spectrum_names_the_fault_cells_its_blast_radius_columns_are_made_of() {
    let mut results = results(Vec::new());
    results.profile = loadtest_results::profile::Profile::quick();
    let quick = crate::sections::spectrum::blast_cells(&results).expect("a kill and errors");
    assert_eq!(
        quick,
        "The cells behind those two columns: kill · recommendations for a kill, errors 50 % · \
         inventory for errors."
    );
    results.profile = loadtest_results::profile::Profile::full();
    let full = crate::sections::spectrum::blast_cells(&results).expect("kills and errors");
    assert!(
        full.contains("errors 30 % · inventory, errors 50 % · inventory, errors 70 % · inventory")
            && full.ends_with("the point is their median and the whisker their range."),
        "{full}"
    );
    results.profile.faults.clear();
    assert_eq!(crate::sections::spectrum::blast_cells(&results), None);
}
