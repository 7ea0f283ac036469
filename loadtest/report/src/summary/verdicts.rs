//! A verdict per claim the lab tests, each stated with the numbers behind it — including
//! where the monolith wins or the machine cannot tell.

use super::{Status, Verdict, failed, is_service, measured, share, top_level};
use crate::figures::{self, Spread, count, fault_pairs, first_line, ms, percent};
use crate::theme::build_label;
use loadtest_results::Results;
use loadtest_results::component::Build;
use loadtest_results::experiments::deploy::{Deploy, Deploys};
use loadtest_results::experiments::faults::Cell;
use loadtest_results::experiments::scale::Scale;
use loadtest_results::profile::FaultKind;

/// The verdicts, in the order the summary lists them.
pub(crate) fn verdicts(results: &Results) -> Vec<Verdict> {
    vec![
        independent_deploy(results),
        fault_isolation(results),
        independent_scaling(results),
        load_balancing(results),
        rolling_update(results),
        rollback(results),
        self_healing(results),
        node_loss(results),
        node_drain(results),
        hop_cost(results),
    ]
}

fn independent_deploy(results: &Results) -> Verdict {
    let claim = "independent deploy";
    let Some(micro) = figures::deploys(results, Build::Micro) else {
        return not_tested(
            claim,
            "the deploy experiment did not run on the microservices",
        );
    };
    let services: Vec<&Deploy> = measured(micro, "recreate")
        .filter(|deploy| is_service(deploy))
        .collect();
    if services.is_empty() {
        return not_tested(claim, "no service was redeployed on its own");
    }
    let rolled: Vec<&Deploy> = measured(micro, "rolling")
        .filter(|deploy| is_service(deploy))
        .collect();
    let service_share = Spread::of(
        services
            .iter()
            .map(|deploy| share(deploy.failed_requests, deploy.requests)),
    )
    .map_or(0.0, |spread| spread.median);
    let service_ready = Spread::of(services.iter().map(|deploy| deploy.time_to_ready_ms as f64))
        .map_or(0.0, |spread| spread.median);
    let rolled_failed: usize = rolled.iter().map(|deploy| deploy.failed_requests).sum();
    let monolith = figures::deploys(results, Build::Monolith)
        .and_then(|deploys| measured(deploys, "recreate").next().cloned());
    let worst = services
        .iter()
        .max_by(|a, b| {
            share(a.failed_requests, a.requests).total_cmp(&share(b.failed_requests, b.requests))
        })
        .expect("at least one service");
    let mut evidence = format!(
        "each of {} services was redeployed alone while the others served: recreating one failed {} of the requests in its window (median; the worst, {}, {}), rolling one failed {rolled_failed} requests in all; a service was ready in {} (median)",
        services.len(),
        percent(service_share),
        worst.component,
        percent(share(worst.failed_requests, worst.requests)),
        ms(service_ready)
    );
    let status = match &monolith {
        Some(monolith) => {
            let monolith_share = share(monolith.failed_requests, monolith.requests);
            evidence.push_str(&format!(
                ". Recreating the whole monolith failed {} and it was ready in {}",
                percent(monolith_share),
                ms(monolith.time_to_ready_ms as f64)
            ));
            if monolith.time_to_ready_ms as f64 <= service_ready {
                evidence.push_str(
                    " — the monolith restarts as fast, it just has to restart everything",
                );
            }
            if service_share < monolith_share || (service_share == 0.0 && rolled_failed == 0) {
                Status::Holds
            } else {
                Status::DoesNotHold
            }
        }
        None if rolled_failed == 0 => Status::Holds,
        None => Status::Mixed,
    };
    judged(claim, status, evidence)
}

fn fault_isolation(results: &Results) -> Verdict {
    let claim = "fault isolation";
    let both: Vec<(f64, f64)> = fault_pairs(results)
        .iter()
        .filter_map(crate::figures::FaultPair::judged)
        .collect();
    if both.is_empty() {
        return not_tested(
            claim,
            "no fault was in force on both builds with the shop healthy before it",
        );
    }
    let count = both.len() as f64;
    let monolith = both.iter().map(|(monolith, _)| monolith).sum::<f64>() / count;
    let micro = both.iter().map(|(_, micro)| micro).sum::<f64>() / count;
    let smaller = both
        .iter()
        .filter(|(monolith, micro)| micro < monolith)
        .count();
    let larger = both
        .iter()
        .filter(|(monolith, micro)| micro > monolith)
        .count();
    let status = if micro + 0.05 < monolith {
        Status::Holds
    } else if micro > monolith + 0.05 {
        Status::DoesNotHold
    } else {
        Status::Mixed
    };
    let mut evidence = format!(
        "a fault in one context degraded {} of the journey steps on the microservices and {} on the monolith (mean blast radius over {} faults in force on both builds, each on a shop healthy before it); the radius was smaller on the microservices in {smaller} and larger in {larger}",
        percent(micro),
        percent(monolith),
        both.len()
    );
    if status == Status::DoesNotHold {
        evidence.push_str(" — the monolith contained these faults better");
    }
    judged(claim, status, evidence)
}

fn independent_scaling(results: &Results) -> Verdict {
    let claim = "independent scaling";
    let Some(micro) = figures::scale(results, Build::Micro) else {
        return not_tested(
            claim,
            "the scale experiment did not run on the microservices",
        );
    };
    let monolith = figures::scale(results, Build::Monolith)
        .map(|scale| {
            format!(
                "; one more monolith process: ×{:.2}{}",
                scale.speedup,
                per_added(scale)
            )
        })
        .unwrap_or_default();
    let bottleneck = micro
        .bottleneck()
        .map(|used| {
            format!(
                " (the bottleneck: {} of its quota in the first half)",
                percent(used.utilisation)
            )
        })
        .unwrap_or_else(|| " (the busiest service)".to_owned());
    let replicated = if micro.added.len() > 1 {
        format!(
            "{} more processes, one replica of each tied bottleneck ({})",
            micro.added.len(),
            micro.added_processes()
        )
    } else {
        format!("one more replica of {}", micro.component)
    };
    let not_replicated = micro
        .not_replicated
        .iter()
        .map(|left| format!("; {} got none ({})", left.process, first_line(&left.why)))
        .collect::<String>();
    let evidence = format!(
        "{replicated}{bottleneck} changed the microservices' throughput ×{:.2} ({:.0} → {:.0} successful req/s){}{not_replicated}{monolith}",
        micro.speedup,
        micro.before.successful_per_s(),
        micro.after.successful_per_s(),
        per_added(micro)
    );
    if let Some(cores) = micro.quota.cores {
        // Under a quota the added replica adds CPU the shop's cores had room for, whatever
        // their number: the scaling shows.
        let status = holds_if(micro.speedup >= 1.1);
        return judged(
            claim,
            status,
            format!("every process held to {cores:.2} cores of CPU; {evidence}"),
        );
    }
    if micro.sut_cores <= 1 {
        let no_quota = micro
            .quota
            .unavailable
            .as_ref()
            .map(|why| format!("; no CPU quota could make one process the bottleneck ({why})"))
            .unwrap_or_default();
        return Verdict {
            claim,
            status: Status::NotTested,
            evidence: sentence(format!(
                "{evidence}. The shop had {} core: a second replica shares it, adding contention rather than CPU, so this run cannot show scaling{no_quota}",
                micro.sut_cores
            )),
        };
    }
    let status = holds_if(micro.speedup >= 1.1);
    judged(claim, status, evidence)
}

/// `, +1234 req/s per added core, +56 per added MiB`, as far as they were measured.
fn per_added(scale: &Scale) -> String {
    let Some(gain) = &scale.gain else {
        return String::new();
    };
    let mut parts = Vec::new();
    if let Some(per_cpu) = gain.per_cpu {
        parts.push(format!("{per_cpu:+.0} req/s per added core"));
    }
    if let Some(per_mib) = gain.per_mib {
        parts.push(format!("{per_mib:+.1} per added MiB"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(", {}", parts.join(", "))
    }
}

/// The busiest replica's share over an even share up to which requests count as spread
/// evenly: with two replicas, at most 60 % on one.
const EVEN_SPREAD: f64 = 1.2;

fn load_balancing(results: &Results) -> Verdict {
    let claim = "load balancing over replicas";
    let counted: Vec<_> = Build::BOTH
        .into_iter()
        .filter_map(|build| {
            let scale = figures::scale(results, build)?;
            let spread = scale.spread.as_ref()?;
            Some((build, scale, spread, spread.imbalance()?))
        })
        .collect();
    if counted.is_empty() {
        return not_tested(
            claim,
            "no balancer counted the scale experiment's requests per replica (it did not run, \
             or the platform runs no front door)",
        );
    }
    let parts: Vec<String> = counted
        .iter()
        .map(|(build, scale, spread, imbalance)| {
            let total: u64 = spread.replicas.iter().map(|(_, count)| count).sum();
            let shares = spread
                .replicas
                .iter()
                .map(|(_, count)| percent(*count as f64 / total.max(1) as f64))
                .collect::<Vec<_>>()
                .join(" / ");
            // Three decimals: 1.204 rounded to 1.20 would read as meeting the rule it failed.
            format!(
                "{}: {shares} over {} replicas of {} (imbalance {imbalance:.3}; counted by {})",
                build_label(*build),
                spread.replicas.len(),
                scale.component,
                spread.counted_by
            )
        })
        .collect();
    let status = holds_if(
        counted
            .iter()
            .all(|(_, _, _, imbalance)| *imbalance <= EVEN_SPREAD),
    );
    judged(
        claim,
        status,
        format!(
            "{}. Even means the busiest replica got at most {EVEN_SPREAD:.2}× an even share",
            parts.join("; ")
        ),
    )
}

fn rolling_update(results: &Results) -> Verdict {
    let claim = "no-downtime rolling update";
    let Some(micro) = figures::deploys(results, Build::Micro) else {
        return not_tested(
            claim,
            "the deploy experiment did not run on the microservices",
        );
    };
    let describe = |deploys: &Deploys| {
        let requests: usize = measured(deploys, "rolling")
            .map(|deploy| deploy.requests)
            .sum();
        let storm = &deploys.storm;
        format!(
            "{} of {requests} requests failed during {}, {} of {} during a storm of {}",
            failed(deploys, "rolling"),
            count(
                measured(deploys, "rolling").count(),
                "rolling deploy",
                "rolling deploys"
            ),
            storm.failed_requests,
            storm.requests,
            storm.deploys
        )
    };
    let micro_failed = failed(micro, "rolling") + micro.storm.failed_requests;
    let status = holds_if(micro_failed == 0);
    let mut evidence = format!("microservices: {}", describe(micro));
    if let Some(monolith) = figures::deploys(results, Build::Monolith) {
        evidence.push_str(&format!("; monolith: {}", describe(monolith)));
        if failed(monolith, "rolling") + monolith.storm.failed_requests == 0 {
            evidence.push_str(" — the monolith rolls without downtime too, so this is no advantage of either build");
        }
    }
    judged(claim, status, evidence)
}

fn self_healing(results: &Results) -> Verdict {
    let claim = "self-healing";
    let crashes = |build: Build| -> Vec<&Cell> {
        figures::faults(results, build).map_or(Vec::new(), |(cells, _)| {
            cells
                .iter()
                .filter(|cell| {
                    cell.applied
                        && (matches!(cell.fault.kind, FaultKind::Kill | FaultKind::Abort)
                            || cell.restarts > 0)
                })
                .collect()
        })
    };
    let describe = |cells: &[&Cell]| {
        let recovered: Vec<f64> = cells
            .iter()
            .filter_map(|cell| cell.time_to_recover_ms)
            .map(|ms| ms as f64)
            .collect();
        let restarts: usize = cells.iter().map(|cell| cell.restarts).sum();
        let median = Spread::of(recovered.iter().copied())
            .map_or("never".to_owned(), |spread| ms(spread.median));
        // Where the platform's restart policy did the healing, how long it took.
        let by_platform = Spread::of(
            cells
                .iter()
                .filter_map(|cell| cell.healed_in_ms)
                .map(|ms| ms as f64),
        )
        .map_or(String::new(), |spread| {
            format!(
                "; the platform had the process running again {} after the fault (median)",
                ms(spread.median)
            )
        });
        (
            recovered.len(),
            format!(
                "{} of {} recovered, median {median} after the heal, {} restarted{by_platform}",
                recovered.len(),
                cells.len(),
                count(restarts, "process", "processes")
            ),
        )
    };
    let micro = crashes(Build::Micro);
    if micro.is_empty() {
        return not_tested(
            claim,
            "no process crashed or was killed on the microservices",
        );
    }
    let (recovered, text) = describe(&micro);
    let mut evidence = format!("after crashes and kills, microservices: {text}");
    let monolith = crashes(Build::Monolith);
    if !monolith.is_empty() {
        evidence.push_str(&format!("; monolith: {}", describe(&monolith).1));
    }
    let status = if recovered == micro.len() {
        Status::Holds
    } else if recovered > 0 {
        Status::Mixed
    } else {
        Status::DoesNotHold
    };
    judged(claim, status, evidence)
}

fn hop_cost(results: &Results) -> Verdict {
    let claim = "the cost of each hop";
    let Some((monolith, micro)) = top_level(results) else {
        return not_tested(claim, "the throughput sweep did not run on both builds");
    };
    let rate = micro.requests_per_s.median / monolith.requests_per_s.median.max(f64::EPSILON);
    // Whether the throughput ratio stands out of the noise of the repeats (one run: unknown).
    let rate_ratio = figures::ratio(&monolith.requests_per_s, &micro.requests_per_s);
    let (rate_text, rate_verdict) = rate_ratio.as_ref().map_or_else(
        || (format!("×{rate:.2}"), String::new()),
        |ratio| match ratio.estimate.interval() {
            Some(_) => (ratio.describe(), format!(" ({})", ratio.verdict())),
            None => (format!("×{rate:.2}"), format!(" ({})", ratio.verdict())),
        },
    );
    let noise = rate_ratio
        .as_ref()
        .is_some_and(|ratio| ratio.estimate.interval().is_some() && !ratio.distinguishable());
    // A target that reads no CPU (Kubernetes) leaves the cost out rather than guessing it.
    let cpu = match (&micro.cpu_per_1k, &monolith.cpu_per_1k) {
        (Some(micro), Some(monolith)) => Some(micro.median / monolith.median.max(f64::EPSILON)),
        _ => None,
    };
    let latency = micro.raw_ms[0] / monolith.raw_ms[0].max(f64::EPSILON);
    let cost = cpu.map_or_else(
        || "(CPU not measured on this target)".to_owned(),
        |cpu| match figures::hop_cpu(&monolith, &micro) {
            Some(hop) => format!(
                "with ×{cpu:.2} its CPU per request ({:.2} hops per request, about {:.0} µs of CPU each)",
                hop.hops_per_request, hop.per_hop_us
            ),
            None => format!("with ×{cpu:.2} its CPU per request"),
        },
    );
    let mut evidence = format!(
        "at {} users the microservices served {rate_text} the monolith's successful requests per second{rate_verdict} {cost} and ×{latency:.2} its median latency",
        monolith.users
    );
    match &results.calibration {
        Some(calibration) => {
            let hop = &calibration.hop;
            let boundary = hop.boundary_us() as f64;
            evidence.push_str(&format!(
                "; one service boundary adds {boundary:.0} µs to a request sent alone ({} of the monolith's {} µs)",
                percent(boundary / hop.monolith_us.max(1) as f64),
                hop.monolith_us
            ));
        }
        None => evidence.push_str("; the hop itself was not measured in this run"),
    }
    let status = if noise && !cpu.is_some_and(|cpu| cpu > 1.05) {
        evidence.push_str(" — the throughputs cannot be told apart at these repeats");
        Status::Mixed
    } else if cpu.is_some_and(|cpu| cpu > 1.05) || rate < 0.95 {
        evidence.push_str(" — here the monolith wins");
        Status::Holds
    } else if cpu.is_some_and(|cpu| cpu < 0.95) && rate > 1.05 {
        Status::DoesNotHold
    } else {
        Status::Mixed
    };
    judged(claim, status, evidence)
}

/// A release that never gets ready is given up and the old one keeps serving.
fn rollback(results: &Results) -> Verdict {
    let claim = "rollback of a bad release";
    let mut parts = Vec::new();
    let mut clean = 0;
    let mut tried = 0;
    for build in Build::BOTH {
        let Some(deploys) = figures::deploys(results, build) else {
            continue;
        };
        for deploy in deploys
            .each
            .iter()
            .filter(|deploy| deploy.strategy == "rollback")
        {
            tried += 1;
            match &deploy.error {
                Some(error) => parts.push(format!(
                    "{build}: {} was not rolled back ({})",
                    deploy.component,
                    error.lines().next().unwrap_or_default()
                )),
                None => {
                    if deploy.failed_requests == 0 {
                        clean += 1;
                    }
                    parts.push(format!(
                        "{build}: {} given up after {}, {} of {} requests failed meanwhile",
                        deploy.component,
                        ms(deploy.time_to_ready_ms as f64),
                        deploy.failed_requests,
                        deploy.requests
                    ));
                }
            }
        }
    }
    if tried == 0 {
        return not_tested(claim, "no bad release was deployed");
    }
    let status = match clean {
        clean if clean == tried => Status::Holds,
        0 => Status::DoesNotHold,
        _ => Status::Mixed,
    };
    judged(
        claim,
        status,
        format!(
            "a release that never gets ready, on the {} platform: {}",
            results.settings.target,
            parts.join("; ")
        ),
    )
}

/// A node dies under load: the orchestrator runs its tasks elsewhere, and nothing is lost
/// (the invariants hold) while few requests fail.
fn node_loss(results: &Results) -> Verdict {
    node_event(
        results,
        "survives the loss of a node",
        &["loss"],
        "a node killed under load",
    )
}

/// Planned maintenance: a drained node's tasks move with no failed request. Judged on the
/// plain drain and on the drain with spares together: where only the second is clean, the
/// claim is mixed, and the evidence says the spare replica is what made it so.
fn node_drain(results: &Results) -> Verdict {
    node_event(
        results,
        "drains a node without downtime",
        &["drain", "drain-with-spares"],
        "a node drained under load",
    )
}

fn node_event(results: &Results, claim: &'static str, kinds: &[&str], what: &str) -> Verdict {
    let mut parts = Vec::new();
    let mut held = Vec::new();
    for outcome in &results.experiments {
        let loadtest_results::experiments::Findings::Nodes(nodes) = &outcome.findings else {
            continue;
        };
        for event in nodes
            .events
            .iter()
            .filter(|event| kinds.contains(&event.kind.as_str()))
        {
            let build = outcome.build;
            let how = if kinds.len() > 1 {
                format!(" ({})", event.kind)
            } else {
                String::new()
            };
            if let Some(error) = &event.error {
                parts.push(format!(
                    "{build}{how}: not measured ({})",
                    error.lines().next().unwrap_or_default()
                ));
                continue;
            }
            // A drain is planned: its goal is no failed request at all. A loss may fail the
            // requests in flight on the node when it dies.
            let clean = if event.kind.starts_with("drain") {
                event.failed_requests == 0
            } else {
                share(event.failed_requests, event.requests) < 0.01
            };
            held.push(clean && outcome.invariants.valid);
            parts.push(format!(
                "{build}{how}: {} task(s) of {} ran elsewhere after {}, {} of {} requests failed, invariants {}",
                event.tasks.len(),
                event.node,
                ms(event.recovered_ms as f64),
                event.failed_requests,
                event.requests,
                if outcome.invariants.valid { "held" } else { "VIOLATED" }
            ));
        }
    }
    if parts.is_empty() {
        return not_tested(
            claim,
            &format!(
                "needs a platform with nodes (the nodes experiment, --target swarm); this run was on the {} platform",
                results.settings.target
            ),
        );
    }
    let status = if held.is_empty() {
        Status::NotTested
    } else if held.iter().all(|held| *held) {
        Status::Holds
    } else if held.iter().any(|held| *held) {
        Status::Mixed
    } else {
        Status::DoesNotHold
    };
    judged(claim, status, format!("{what}: {}", parts.join("; ")))
}

/// A verdict with its evidence as a sentence.
fn judged(claim: &'static str, status: Status, evidence: String) -> Verdict {
    Verdict {
        claim,
        status,
        evidence: sentence(evidence),
    }
}

/// Holds, or does not: a claim with no middle ground.
fn holds_if(holds: bool) -> Status {
    if holds {
        Status::Holds
    } else {
        Status::DoesNotHold
    }
}

fn not_tested(claim: &'static str, why: &str) -> Verdict {
    Verdict {
        claim,
        status: Status::NotTested,
        evidence: sentence(why.to_owned()),
    }
}

/// A capital letter at the start and a full stop at the end.
fn sentence(mut text: String) -> String {
    if let Some(first) = text.chars().next() {
        let upper: String = first.to_uppercase().collect();
        text.replace_range(..first.len_utf8(), &upper);
    }
    if !text.ends_with('.') {
        text.push('.');
    }
    text
}
