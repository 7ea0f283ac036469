//! The sections on load: throughput, latency, what serving costs, and the hop tax.

use crate::charts::{Charts, HopTax, Latency, Nines, ProcessBars, Resources, Run, Throughput};
use crate::document::{Block, Cell, Document, Tone};
use crate::figures::{self, PERCENTILES, count, ms, percent, throughput as levels};
use crate::theme::{Stroke, build_label};
use loadtest_results::Results;
use loadtest_results::component::Build;

use super::{NOT_MEASURED, spread_cell, with_spread};

pub(super) fn throughput(
    document: &mut Document,
    results: &Results,
    charts: &Charts,
) -> anyhow::Result<()> {
    let builds: Vec<_> = Build::BOTH
        .into_iter()
        .map(|build| (build, levels(results, build)))
        .filter(|(_, levels)| !levels.is_empty())
        .collect();
    if builds.is_empty() {
        for (id, title) in [
            ("throughput", "Throughput"),
            ("latency", "Latency, raw and corrected"),
            ("resources", "Cost: CPU and memory"),
        ] {
            document.section(id, title);
            document.paragraph("The throughput sweep did not run.");
        }
        return Ok(());
    }
    document.section("throughput", "Throughput");
    document.paragraph(format!(
        "Each build alone on the shop's cores, driven straight (no front door) by closed-loop \
         Goose users for {} s per level, {} per level; the line is the median.",
        results.profile.level_duration.as_secs(),
        count(results.profile.repeats, "repeat", "repeats")
    ));
    let plot = Throughput {
        runs: vec![Run {
            label: None,
            stroke: Stroke::Solid,
            builds: builds.clone(),
        }],
        repeats: results.profile.repeats,
    };
    document.push(Block::Figure(charts.save(
        "throughput",
        "Throughput against load",
        &plot,
    )?));
    let mut rows = Vec::new();
    for (build, levels) in &builds {
        for level in levels {
            rows.push(vec![
                Cell::plain(build_label(*build)),
                Cell::plain(level.users.to_string()),
                Cell::plain(with_spread(&level.requests_per_s, "req/s")),
                Cell::plain(percent(level.error_rate)),
                Cell::plain(ms(level.raw_ms[0])),
                Cell::plain(ms(level.raw_ms[1])),
                Cell::plain(ms(level.raw_ms[2])),
                Cell::plain(ms(level.corrected_ms[2])),
                if level.generator_limited {
                    Cell::toned(
                        format!("{} (saturated)", percent(level.generator_share)),
                        Tone::Warn,
                    )
                } else {
                    Cell::plain(percent(level.generator_share))
                },
            ]);
        }
    }
    document.table(
        &[
            "build",
            "users",
            "successful throughput",
            "errors",
            "p50",
            "p95",
            "p99",
            "p99 CO-corrected",
            "generator CPU",
        ],
        rows,
    );

    generators_table(document, results);

    document.section("latency", "Latency, raw and corrected");
    document.paragraph(
        "Goose is closed loop: a slow answer delays that user's next request, so the raw \
         percentiles miss the requests that would have been sent meanwhile (coordinated \
         omission). The corrected percentiles back-fill them at the user's usual cadence. \
         They are Goose's, over its latency buckets and over every request (it keeps failures \
         with successes; a level with failures is warned of), so they can read a little \
         under the raw ones, which are exact and of successes only: a back-filled request \
         takes less than the slow answer it stands behind.",
    );
    let plot = Latency {
        builds: builds.clone(),
    };
    document.push(Block::Figure(charts.save(
        "latency",
        "Latency percentiles: raw and CO-corrected",
        &plot,
    )?));
    let nines = Nines {
        builds: builds.clone(),
    };
    if nines.has_data() {
        document.paragraph(
            "The whole distribution of successful requests' latency (raw, from the HDR \
             histogram of each level, median of the repeats at each point): every step to the \
             right is one more nine, so the tail is as wide as the body.",
        );
        document.push(Block::Figure(charts.save(
            "latency-nines",
            "Latency distribution of successful requests (nines)",
            &nines,
        )?));
    }
    let mut rows = Vec::new();
    for (build, levels) in &builds {
        for level in levels {
            let mut row = vec![
                Cell::plain(build_label(*build)),
                Cell::plain(level.users.to_string()),
            ];
            for index in 0..PERCENTILES.len() {
                row.push(Cell::plain(format!(
                    "{} / {}",
                    ms(level.raw_ms[index]),
                    ms(level.corrected_ms[index])
                )));
            }
            rows.push(row);
        }
    }
    document.table(
        &[
            "build",
            "users",
            "p50 raw / corrected",
            "p95 raw / corrected",
            "p99 raw / corrected",
        ],
        rows,
    );

    document.section("resources", "Cost: CPU and memory");
    let measured = builds
        .iter()
        .flat_map(|(_, levels)| levels)
        .any(|level| level.cpu_per_1k.is_some() || level.peak_rss_mib.is_some());
    if !measured {
        document.paragraph(format!(
            "Not measured: the {} target reads no CPU or memory of the shop's processes (on \
             Kubernetes that would take a metrics server, whose windows are longer than a load \
             level). No figure stands in for the missing ones.",
            results.settings.target
        ));
        return Ok(());
    }
    document.paragraph(
        "What serving costs: CPU seconds of all the shop's processes per 1 000 successful \
         requests, and the peak of their summed resident memory, per load level.",
    );
    document.push(Block::Figure(charts.save(
        "resources",
        "Cost model: CPU per request and memory",
        &Resources {
            builds: builds.clone(),
        },
    )?));
    let mut rows = Vec::new();
    for (build, levels) in &builds {
        for level in levels {
            rows.push(vec![
                Cell::plain(build_label(*build)),
                Cell::plain(level.users.to_string()),
                spread_cell(level.cpu_per_1k.as_ref(), "CPU s", NOT_MEASURED),
                match build {
                    Build::Monolith => Cell::toned("none: in-process calls", Tone::Muted),
                    Build::Micro => spread_cell(level.hops_per_request.as_ref(), "", NOT_MEASURED),
                },
                spread_cell(level.peak_rss_mib.as_ref(), "MiB", NOT_MEASURED),
            ]);
        }
    }
    document.table(
        &[
            "build",
            "users",
            "CPU per 1 000 successful requests",
            "hops per request",
            "peak memory",
        ],
        rows,
    );
    if let Some((monolith, micro)) = crate::summary::top_level(results)
        && let Some(hop) = figures::hop_cpu(&monolith, &micro)
    {
        document.paragraph(format!(
            "What a hop costs in CPU: at {} users each request made {:.2} calls between the \
             microservices' processes (hop attempts, retries included, counted by every \
             caller), and the microservices spent {:.0} µs more CPU per request than the \
             monolith: about {:.0} µs of CPU per hop, caller, callee and kernel together, on \
             this machine. All of the difference is charged to the hops, the gateway's own \
             routing and the saga's extra writes included.",
            micro.users, hop.hops_per_request, hop.extra_us, hop.per_hop_us,
        ));
    }
    // Per process at the highest level both builds ran (where the boundary costs most).
    let top = builds
        .iter()
        .filter_map(|(_, levels)| levels.last().map(|level| level.users))
        .min();
    let per_process: Vec<_> = builds
        .iter()
        .filter_map(|(build, levels)| {
            let level = levels.iter().find(|level| Some(level.users) == top)?;
            // The lab's front door is not the shop: the sweep drives each build straight.
            let processes: Vec<_> = level
                .processes
                .iter()
                .filter(|process| process.process != "front-door")
                .cloned()
                .collect();
            (!processes.is_empty()).then_some((*build, processes))
        })
        .collect();
    if let (Some(users), false) = (top, per_process.is_empty()) {
        document.paragraph(
            "The same cost split by process: which service spends the CPU and holds the memory \
             (CPU per 1 000 of the level's successful requests; memory resident at the level's \
             end; the lab's front door, idle here, left out).",
        );
        document.push(Block::Figure(charts.save(
            "resources-per-process",
            "CPU and memory per process",
            &ProcessBars {
                users,
                builds: per_process,
            },
        )?));
    }
    Ok(())
}

/// Where the load came from several generators the platform placed (`compare --generators
/// N`): each one's node, share, start and CPU per level, so a reader sees that the start was
/// agreed, the requests split evenly and no generator was the bottleneck. Nothing when the
/// lab's own process was the generator.
fn generators_table(document: &mut Document, results: &Results) {
    let mut rows = Vec::new();
    for build in Build::BOTH {
        for level in figures::levels(results, build) {
            for generator in &level.generators {
                let busy = generator.cpu_share
                    > loadtest_results::experiments::throughput::GENERATOR_LIMIT;
                rows.push(vec![
                    Cell::plain(build_label(build)),
                    Cell::plain(level.users.to_string()),
                    Cell::plain(level.repeat.to_string()),
                    Cell::plain(generator.generator.clone()),
                    Cell::plain(generator.share.clone()),
                    Cell::plain(format!("+{} ms", generator.started_after_ms)),
                    Cell::plain(format!("{:.1} s", generator.wall_s)),
                    Cell::plain(generator.requests.to_string()),
                    if busy {
                        Cell::toned(
                            format!("{} (saturated)", percent(generator.cpu_share)),
                            Tone::Warn,
                        )
                    } else {
                        Cell::plain(percent(generator.cpu_share))
                    },
                ]);
            }
        }
    }
    if rows.is_empty() {
        return;
    }
    document.paragraph(
        "The load came from several generators, each a task the platform placed on a node of \
         its own with its share of the users; they started at one agreed instant and their \
         results were merged exactly (HDR histograms added, records joined on one clock), so \
         the figures above are the whole load's. Each generator's CPU is its own process's \
         (getrusage) over its wall time and the cores it was given; the level's generator CPU \
         above is the busiest one's.",
    );
    document.table(
        &[
            "build",
            "users",
            "repeat",
            "generator (task on node)",
            "share",
            "started",
            "ran",
            "requests",
            "CPU",
        ],
        rows,
    );
}

pub(super) fn hop_tax(
    document: &mut Document,
    results: &Results,
    charts: &Charts,
) -> anyhow::Result<()> {
    document.section("hop-tax", "Hop tax");
    let Some(calibration) = &results.calibration else {
        document.paragraph("Not measured in this run: the results carry no calibration.");
        return Ok(());
    };
    let hop = &calibration.hop;
    document.paragraph(format!(
        "Medians of {} requests sent one at a time (no queueing): the loopback HTTP round trip \
         (an endpoint that does nothing), the shop's work (the monolith's product list minus \
         that), and one service boundary (the same route through the gateway minus the \
         catalog service asked directly for that page, the two measured in the same rounds).",
        hop.requests
    ));
    let plot = HopTax {
        null_us: hop.null_us,
        monolith_us: hop.monolith_us,
        service_us: hop.service_us,
        gateway_us: hop.gateway_us,
    };
    document.push(Block::Figure(charts.save(
        "hop-tax",
        "Hop tax: the parts of one service boundary",
        &plot,
    )?));
    let part = |us: i64| format!("{us} µs");
    document.table(
        &["part", "time"],
        vec![
            vec![
                Cell::plain("loopback HTTP round trip"),
                Cell::plain(part(hop.null_us as i64)),
            ],
            vec![
                Cell::plain("the shop's work (monolith − loopback)"),
                Cell::plain(part(hop.monolith_us as i64 - hop.null_us as i64)),
            ],
            vec![
                Cell::plain("one service boundary (gateway − catalog service)"),
                Cell::plain(part(hop.boundary_us())),
            ],
            vec![
                Cell::plain("catalog service asked directly"),
                Cell::plain(part(hop.service_us as i64)),
            ],
        ],
    );
    let null = &calibration.null_endpoint;
    document.paragraph(format!(
        "The generator's ceiling: {:.0} req/s at {} users against the endpoint that does nothing \
         (p50 {}), using {} of its cores — a throughput near it measures the generator, not the shop.",
        null.requests_per_s,
        null.users,
        ms(null.latency.p50_us as f64 / 1000.0),
        percent(null.generator_cpu_share)
    ));
    Ok(())
}
