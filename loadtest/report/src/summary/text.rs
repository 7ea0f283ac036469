//! The plain-text summary a run prints and writes to `summary.txt`.

use std::fmt::Write as _;

use loadtest_results::Results;
use loadtest_results::experiments::Findings;

/// The plain-text summary: what a reader wants first, with how it was measured.
pub fn summary(results: &Results) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "shoplab compare — run {}\n{}\nlimits: {}",
        results.run_id,
        results.headline(),
        results.settings.resource_limits.describe(),
    );
    if let Some(calibration) = &results.calibration {
        let null = &calibration.null_endpoint;
        let hop = &calibration.hop;
        let _ = writeln!(
            text,
            "\ncalibration\n  null endpoint: {:.0} req/s at {} users (p50 {:.2} ms), generator CPU {:.0} %: {}\n  one request at a time, medians of {}: loopback \
             round trip {} us; monolith list {} us; catalog service alone {} us; through the \
             gateway {} us (one boundary: +{} us)",
            null.requests_per_s,
            null.users,
            null.latency.p50_us as f64 / 1000.0,
            null.generator_cpu_share * 100.0,
            if null.generator_limited {
                "the most this generator drives here"
            } else {
                "the server side set this pace (its core was busy), the generator can drive more"
            },
            hop.requests,
            hop.null_us,
            hop.monolith_us,
            hop.service_us,
            hop.gateway_us,
            hop.boundary_us(),
        );
    }
    for outcome in &results.experiments {
        // The topology: the build's own preset, or one between the builds.
        let build = outcome.topology_name();
        match &outcome.findings {
            Findings::Throughput { levels, capacity } => {
                if let Some(capacity) = capacity {
                    capacity_text(&mut text, build, capacity);
                }
                let _ = writeln!(
                    text,
                    "\nthroughput — {build} (closed loop; successful requests only; latency raw / CO-corrected)"
                );
                let _ = writeln!(
                    text,
                    "  {:>5} {:>9} {:>7} {:>9} {:>9} {:>11} {:>9} {:>8} {:>10}",
                    "users",
                    "ok req/s",
                    "errors",
                    "p50 ms",
                    "p99 ms",
                    "p99 CO ms",
                    "shop CPU",
                    "RSS MiB",
                    "generator"
                );
                for level in levels {
                    let _ = writeln!(
                        text,
                        "  {:>5} {:>9.0} {:>6.2}% {:>9.2} {:>9.2} {:>11.2} {:>8}s {:>8} {:>9.0}%{}",
                        level.users,
                        crate::figures::successes_per_s(level),
                        level.error_rate * 100.0,
                        level.raw.p50_us as f64 / 1000.0,
                        level.raw.p99_us as f64 / 1000.0,
                        level.corrected.p99_us as f64 / 1000.0,
                        measured(level.sut_cpu_s, 1),
                        measured(level.sut_peak_rss_mib, 0),
                        level.generator_cpu_share * 100.0,
                        if level.generator_limited {
                            "  ! generator-limited"
                        } else {
                            ""
                        }
                    );
                }
            }
            Findings::Scale(scale) => {
                let _ = writeln!(
                    text,
                    "\nscale — {build} (+1 replica of {}, {} users, through the front door; the shop has {} core(s))",
                    scale.added_processes(),
                    scale.users,
                    scale.sut_cores
                );
                for half in [&scale.before, &scale.after] {
                    let _ = writeln!(
                        text,
                        "  {} replica(s): {:>7.0} successful req/s, p99 {:>7.2} ms, {:>6} CPU s, {:>6} req per CPU s",
                        half.replicas,
                        half.requests_per_s * (1.0 - half.error_rate),
                        half.latency.p99_us as f64 / 1000.0,
                        measured(half.sut_cpu_s, 1),
                        measured(half.requests_per_sut_cpu_s, 0)
                    );
                }
                match (&scale.quota.cores, &scale.quota.unavailable) {
                    (Some(cores), _) => {
                        let used = scale
                            .utilisation
                            .iter()
                            .map(|used| {
                                format!("{} {:.0} %", used.process, used.utilisation * 100.0)
                            })
                            .collect::<Vec<_>>()
                            .join(", ");
                        let _ = writeln!(
                            text,
                            "  each process held to {cores:.2} cores; use of the quota: {used}"
                        );
                    }
                    (None, Some(why)) => {
                        let _ = writeln!(text, "  no CPU quota: {why}");
                    }
                    (None, None) => {}
                }
                let _ = writeln!(text, "  speedup x{:.2}", scale.speedup);
                if let (false, Some(gain)) = (scale.added.is_empty(), &scale.gain) {
                    let _ = writeln!(
                        text,
                        "  added {} ({} cores, {} MiB): {:+.0} successful req/s, {} per added core, {} per added MiB",
                        scale.added_processes(),
                        measured(scale.added_cpu_cores(), 2),
                        measured(scale.added_rss_mib(), 1),
                        gain.requests_per_s,
                        measured(gain.per_cpu, 0),
                        measured(gain.per_mib, 1)
                    );
                }
                for left in &scale.not_replicated {
                    let _ = writeln!(text, "  not replicated: {} ({})", left.process, left.why);
                }
                if let Some(spread) = &scale.spread {
                    let per_replica = spread
                        .replicas
                        .iter()
                        .map(|(replica, count)| format!("{replica} {count}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let _ = writeln!(
                        text,
                        "  per replica ({}): {per_replica}; imbalance {}",
                        spread.counted_by,
                        spread
                            .imbalance()
                            .map_or_else(|| "-".to_owned(), |imbalance| format!("{imbalance:.3}"))
                    );
                }
            }
            Findings::Nodes(found) => {
                let _ = writeln!(
                    text,
                    "\nnodes — {build} (a swarm of {} node(s), the database on {}; under steady load, through the front door; failed = from the event to 250 ms after it was over)",
                    found.nodes,
                    found.database_node.as_deref().unwrap_or("no node")
                );
                for event in &found.events {
                    let _ = writeln!(
                        text,
                        "  {:<17} {:<24} {} task(s) moved in {:>6.1} s, {:>5} of {:>6} requests failed{}",
                        event.kind,
                        event.node,
                        event.tasks.len(),
                        event.recovered_ms as f64 / 1000.0,
                        event.failed_requests,
                        event.requests,
                        event
                            .error
                            .as_deref()
                            .map(|error| format!(" ({})", first_line(error)))
                            .unwrap_or_default()
                    );
                }
            }
            Findings::Deploy(found) => {
                // The two builds are deployed behind the lab's front door; a topology between
                // them has none, and the load goes to its gateway.
                let path = if outcome.is_build() {
                    "through the front door"
                } else {
                    "straight to the gateway"
                };
                let _ = writeln!(
                    text,
                    "\ndeploy — {build} (under steady load, {path}; failed = from the deploy's start to 250 ms before the next)"
                );
                for deploy in &found.each {
                    let _ = writeln!(
                        text,
                        "  {:<16} {:<9} ready in {:>5} ms, {:>5} of {:>6} requests failed{}",
                        deploy.component,
                        deploy.strategy,
                        deploy.time_to_ready_ms,
                        deploy.failed_requests,
                        deploy.requests,
                        deploy
                            .error
                            .as_deref()
                            .map(|error| format!(" ({})", first_line(error)))
                            .unwrap_or_default()
                    );
                }
                let storm = &found.storm;
                let _ = writeln!(
                    text,
                    "  storm of {} deploys in {:.1} s: {} of {} requests failed, median ready in {} ms",
                    storm.deploys,
                    storm.duration_ms as f64 / 1000.0,
                    storm.failed_requests,
                    storm.requests,
                    storm.median_time_to_ready_ms
                );
            }
            Findings::Faults { cells, .. } => {
                let _ = writeln!(
                    text,
                    "\nfaults — {build} (success before → during → after; blast radius = share of route templates degraded)"
                );
                for cell in cells {
                    let journeys: Vec<String> = cell
                        .journeys
                        .iter()
                        .map(|phases| {
                            let pct = |rate: Option<f64>| {
                                rate.map_or("-".into(), |rate| format!("{:.0}%", rate * 100.0))
                            };
                            format!(
                                "{} {}→{}→{}",
                                phases.journey,
                                pct(phases.before.success_rate),
                                pct(phases.during.success_rate),
                                pct(phases.after.success_rate)
                            )
                        })
                        .collect();
                    let _ = writeln!(
                        text,
                        "  {:<12} {:<16} radius {:>4.0}%  recover {:>6}  {}{}{}{}",
                        cell.fault.kind_label(),
                        cell.fault.context,
                        cell.blast_radius * 100.0,
                        cell.time_to_recover_ms
                            .map_or("never".into(), |ms| format!("{ms} ms")),
                        journeys.join(", "),
                        cell.healed_in_ms
                            .map(|ms| format!("; the platform healed it in {ms} ms"))
                            .unwrap_or_default(),
                        cell.attempts_per_call
                            .map(|attempts| format!(
                                "; {}",
                                crate::figures::attempts_per_call(attempts, cell.hop_calls)
                            ))
                            .unwrap_or_default(),
                        match cell.error.as_deref() {
                            Some(error) => format!(" ({})", first_line(error)),
                            None if cell.applied && !cell.judgeable() => {
                                " (not judged: a journey was failing before it)".to_owned()
                            }
                            None => String::new(),
                        }
                    );
                }
            }
        }
        let broken: Vec<String> = outcome
            .invariants
            .invariants
            .iter()
            .filter(|invariant| invariant.violations > 0)
            .map(|invariant| format!("{} x{}", invariant.id, invariant.violations))
            .collect();
        let _ = writeln!(
            text,
            "  invariants: {}{}",
            if broken.is_empty() {
                "all hold".to_owned()
            } else {
                format!("VIOLATED {}", broken.join(", "))
            },
            if outcome.quiescent {
                ""
            } else {
                " (not quiescent: a reservation was still held)"
            }
        );
    }
    if results.has_spectrum() {
        let points = crate::sections::spectrum::points(results);
        let verdicts = crate::sections::spectrum::verdicts(&points);
        if !verdicts.is_empty() {
            let _ = writeln!(text, "\nspectrum — where each claim flips");
            for (_, line) in verdicts {
                let _ = writeln!(text, "  {line}");
            }
        }
    }
    let _ = writeln!(
        text,
        "\nverdict: {}",
        if results.valid {
            "every invariant held on both builds"
        } else {
            "an invariant was violated (see results.json)"
        }
    );
    text
}

/// The first line of a message, at most 100 characters, for the summary.
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default();
    match line.char_indices().nth(100) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_owned(),
    }
}

/// A measured figure to `places` decimals, or `n/a` where the target could not measure it.
fn measured(value: Option<f64>, places: usize) -> String {
    crate::figures::figure(value, places, "n/a")
}

/// The capacity search of one build: its capacity, then every step.
fn capacity_text(
    text: &mut String,
    build: &str,
    capacity: &loadtest_results::experiments::capacity::Capacity,
) {
    let slo = &capacity.plan.slo;
    let at_least = if capacity.is_lower_bound() {
        "at least "
    } else {
        ""
    };
    let figure = |estimate: Option<&loadtest_results::stats::Estimate>| {
        estimate.map_or_else(
            || "below the first step".to_owned(),
            |estimate| format!("{at_least}{}", estimate.describe(0)),
        )
    };
    let _ = writeln!(
        text,
        "\ncapacity — {build} (open loop, {} arrivals; SLO p99 ≤ {:.0} ms, errors ≤ {:.0} %, drops ≤ {:.0} %; latency of successes from due time)\n  capacity {} journeys/s, {} ok req/s",
        capacity.plan.arrivals.as_str(),
        slo.p99_ms,
        slo.max_error_rate * 100.0,
        slo.max_drop_rate * 100.0,
        figure(capacity.sustained.as_ref()),
        figure(capacity.sustained_requests_per_s.as_ref()),
    );
    for ramp in &capacity.ramps {
        for step in &ramp.steps {
            let latency = |us: Option<u64>| {
                us.map_or_else(
                    || "none".to_owned(),
                    |us| format!("{:.2}", us as f64 / 1000.0),
                )
            };
            let _ = writeln!(
                text,
                "  repeat {} {:>7.0}/s offered: {:>6} of {:>6} started, {:>7.0} ok req/s, errors {:>5.2}%, p50 {:>8} ms, p99 {:>8} ms, generator {:>3.0}%  {}",
                ramp.repeat,
                step.offered_per_s,
                step.started,
                step.due,
                step.ok_per_s,
                step.error_rate() * 100.0,
                latency(step.p50_us),
                latency(step.p99_us),
                step.generator_cpu_share * 100.0,
                if step.met {
                    "met".to_owned()
                } else {
                    format!("missed: {}", step.missed.join(", "))
                }
            );
        }
    }
}
