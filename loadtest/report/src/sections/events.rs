//! The sections on events under load: faults, deploys, and nodes lost and drained.

use crate::charts::{BlastRadius, Charts, DeployTimeline, DeployTimes, FaultRow, FaultTimeline};
use crate::document::{Block, Cell, Document, Tone};
use crate::figures::{self, count, fault_pairs, first_line, journeys, percent};
use crate::theme::build_label;
use loadtest_results::Results;
use loadtest_results::component::Build;

pub(super) fn faults(
    document: &mut Document,
    results: &Results,
    charts: &Charts,
) -> anyhow::Result<()> {
    document.section("faults", "Faults");
    let pairs = fault_pairs(results);
    if pairs.is_empty() {
        document.paragraph("The fault matrix did not run.");
        return Ok(());
    }
    let profile = &results.profile;
    document.paragraph(format!(
        "Under {} steady users, each fault in turn: {} ms quiet, {} ms with the fault in force, \
         {} ms after the heal. The blast radius is the share of journey steps (route templates) \
         that did worse during the fault: fewer successes, or a p99 over twice the one before \
         plus 50 ms.",
        profile.steady_users,
        profile.fault_before.as_millis(),
        profile.fault_during.as_millis(),
        profile.fault_after.as_millis()
    ));
    let timelines: Vec<_> = Build::BOTH
        .into_iter()
        .filter_map(|build| figures::faults(results, build).map(|(_, timeline)| timeline))
        .collect();
    let journeys = journeys(timelines.iter().copied());
    let heatmap = BlastRadius {
        pairs: pairs.clone(),
        journeys: journeys.clone(),
    };
    document.push(Block::Figure(charts.save(
        "blast-radius",
        "Blast radius: how each journey fared during each fault",
        &heatmap,
    )?));
    let mut rows = Vec::new();
    for pair in &pairs {
        for build in Build::BOTH {
            let Some(cell) = pair.cell(build) else {
                continue;
            };
            let recover = match (cell.applied, cell.time_to_recover_ms) {
                (false, _) => Cell::toned("—", Tone::Muted),
                (true, Some(ms)) => Cell::plain(format!("{ms} ms")),
                (true, None) => Cell::toned("not within the window", Tone::Bad),
            };
            rows.push(vec![
                Cell::plain(pair.name()),
                Cell::plain(build_label(build)),
                if !cell.applied {
                    Cell::toned("not in force", Tone::Muted)
                } else if !cell.judgeable() {
                    // A radius of a shop already failing reads as a contained fault.
                    Cell::toned(
                        format!(
                            "{} (not judged: failing before)",
                            percent(cell.blast_radius)
                        ),
                        Tone::Bad,
                    )
                } else {
                    Cell::toned(
                        percent(cell.blast_radius),
                        if cell.blast_radius > 0.0 {
                            Tone::Warn
                        } else {
                            Tone::Good
                        },
                    )
                },
                Cell::plain(cell.degraded_steps.join(", ")),
                recover,
                Cell::plain(match cell.healed_in_ms {
                    Some(ms) => format!("{} (the platform's, {ms} ms down)", cell.restarts),
                    None => cell.restarts.to_string(),
                }),
                match cell.attempts_per_call {
                    Some(attempts) => {
                        Cell::plain(crate::figures::attempts_per_call(attempts, cell.hop_calls))
                    }
                    None => Cell::toned("—", Tone::Muted),
                },
                Cell::plain(
                    cell.error
                        .as_deref()
                        .or(cell.note.as_deref())
                        .map(first_line)
                        .unwrap_or_default(),
                ),
            ]);
        }
    }
    document.table(
        &[
            "fault",
            "build",
            "blast radius",
            "steps degraded",
            "recovered after heal",
            "restarts",
            "retry amplification",
            "note",
        ],
        rows,
    );
    let mut folded = Vec::new();
    let slice_ms = timelines.first().map_or(0, |timeline| timeline.slice_ms);
    for pair in pairs.iter().filter(|pair| {
        Build::BOTH
            .iter()
            .any(|build| pair.cell(*build).is_some_and(|cell| cell.applied))
    }) {
        let plot = FaultTimeline {
            rows: Build::BOTH
                .into_iter()
                .map(|build| FaultRow {
                    build,
                    cell: pair.cell(build),
                    timeline: figures::faults(results, build).map(|(_, timeline)| timeline),
                })
                .collect(),
            journeys: journeys.clone(),
            before_ms: profile.fault_before.as_millis() as u64,
            after_ms: profile.fault_after.as_millis() as u64,
        };
        let title = format!(
            "Fault {}: success rate and p99 per {slice_ms} ms",
            pair.name()
        );
        folded.push(Block::Figure(charts.save(&pair.stem(), &title, &plot)?));
    }
    // A quick run's few timelines are worth seeing at once; the full matrix's dozens are
    // better opened one by one.
    document.push(Block::Fold {
        summary: format!("Timeline of each fault ({})", folded.len()),
        open: folded.len() <= 6,
        blocks: folded,
    });
    Ok(())
}

pub(super) fn deploys(
    document: &mut Document,
    results: &Results,
    charts: &Charts,
) -> anyhow::Result<()> {
    document.section("deploys", "Deploys");
    let rows: Vec<_> = Build::BOTH
        .into_iter()
        .filter_map(|build| figures::deploys(results, build).map(|deploys| (build, deploys)))
        .collect();
    if rows.is_empty() {
        document.paragraph("The deploy experiment did not run.");
        return Ok(());
    }
    document.paragraph(format!(
        "Under {} steady users through the front door: each component recreated (stop, start, \
         wait for ready), then rolled (new process first, then traffic moved), a rollback of a \
         release that never gets ready, and a storm of {} rolling deploys. Failed requests are \
         counted from a deploy's start until 250 ms before the next deploy: 1.25 s after \
         ready for a recreate (callers' breakers take a second to close again), 250 ms after \
         ready otherwise.",
        results.profile.steady_users, results.profile.storm
    ));
    document.push(Block::Figure(charts.save(
        "deploy-timeline",
        "Deploys under load: failed requests with each deploy's span",
        &DeployTimeline { rows: rows.clone() },
    )?));
    document.push(Block::Figure(charts.save(
        "deploy-times",
        "Time to ready per component and strategy",
        &DeployTimes { rows: rows.clone() },
    )?));
    let mut table = Vec::new();
    for (build, deploys) in &rows {
        for deploy in &deploys.each {
            table.push(vec![
                Cell::plain(build_label(*build)),
                Cell::plain(deploy.component.clone()),
                Cell::plain(deploy.strategy.clone()),
                Cell::plain(format!("{} ms", deploy.time_to_ready_ms)),
                Cell::toned(
                    format!("{} of {}", deploy.failed_requests, deploy.requests),
                    if deploy.failed_requests == 0 {
                        Tone::Good
                    } else {
                        Tone::Warn
                    },
                ),
                Cell::plain(deploy.error.as_deref().map(first_line).unwrap_or_default()),
            ]);
        }
        let storm = &deploys.storm;
        table.push(vec![
            Cell::plain(build_label(*build)),
            Cell::plain("storm"),
            Cell::plain(format!("{} × {}", storm.deploys, storm.strategy)),
            Cell::plain(format!(
                "median {} ms, {:.1} s in all",
                storm.median_time_to_ready_ms,
                storm.duration_ms as f64 / 1000.0
            )),
            Cell::toned(
                format!("{} of {}", storm.failed_requests, storm.requests),
                if storm.failed_requests == 0 {
                    Tone::Good
                } else {
                    Tone::Warn
                },
            ),
            Cell::plain(""),
        ]);
    }
    document.table(
        &[
            "build",
            "component",
            "strategy",
            "time to ready",
            "failed requests",
            "note",
        ],
        table,
    );
    Ok(())
}

/// The nodes experiment, where the platform has nodes: each node lost or drained, how long
/// until its tasks ran elsewhere, what failed meanwhile. Left out where it did not run.
pub(super) fn nodes(document: &mut Document, results: &Results) {
    let found: Vec<_> = results
        .experiments
        .iter()
        .filter_map(|outcome| match &outcome.findings {
            loadtest_results::experiments::Findings::Nodes(nodes) => Some((outcome, nodes)),
            _ => None,
        })
        .collect();
    let Some((_, first)) = found.first() else {
        return;
    };
    document.section("nodes", "Nodes");
    document.paragraph(format!(
        "Under {} steady users through the front door, on a cluster of {}: a worker node killed \
         as a host dies (its engine and every task on it at once), then one drained for \
         maintenance, with every component at one replica on both builds (the experiment runs \
         before scale adds one): a task on that node is down until its replacement elsewhere \
         is ready. Then one drained with spares (drain-with-spares): the node first takes no \
         new task, each service on it gets one more replica elsewhere, and only once those run \
         is the node drained; timed from the first scale-up. Time until every service ran all \
         its replicas again, none on that node; failed requests from the event until 250 ms \
         after. The database runs on the manager \
         node ({}), which is never chosen: losing it would stop every write until it came \
         back, since the data lives on that node's volume.",
        results.profile.steady_users,
        count(first.nodes, "node", "nodes"),
        first.database_node.as_deref().unwrap_or("none")
    ));
    let mut rows = Vec::new();
    for (outcome, nodes) in &found {
        for event in &nodes.events {
            rows.push(vec![
                Cell::plain(build_label(outcome.build)),
                Cell::plain(event.kind.clone()),
                Cell::plain(event.node.clone()),
                Cell::plain(event.tasks.join(", ")),
                Cell::plain(format!("{:.1} s", event.recovered_ms as f64 / 1000.0)),
                Cell::toned(
                    format!("{} of {}", event.failed_requests, event.requests),
                    if event.failed_requests == 0 {
                        Tone::Good
                    } else {
                        Tone::Warn
                    },
                ),
                Cell::plain(event.error.as_deref().map(first_line).unwrap_or_default()),
            ]);
        }
    }
    document.table(
        &[
            "build",
            "event",
            "node",
            "tasks on it",
            "all running elsewhere after",
            "failed requests",
            "note",
        ],
        rows,
    );
}
