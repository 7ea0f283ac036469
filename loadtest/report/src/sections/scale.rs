//! The scale section: the same load before and after one more replica of the bottleneck
//! (of each, where processes tied for it), each process under its CPU quota; what the added
//! processes bought per core and per MiB; and how the balancer spread the second half's
//! requests over the replicas.

use crate::charts::{Charts, ScaleBars};
use crate::document::{Block, Cell, Document, Tone};
use crate::figures::{self, count, ms, percent};
use crate::theme::build_label;
use loadtest_results::Results;
use loadtest_results::component::Build;
use loadtest_results::experiments::scale::{Half, Scale, TIE_FLOOR, TIE_MARGIN};

use super::NOT_MEASURED;

pub(super) fn section(
    document: &mut Document,
    results: &Results,
    charts: &Charts,
) -> anyhow::Result<()> {
    document.section("scale", "Scale");
    let builds: Vec<_> = Build::BOTH
        .into_iter()
        .filter_map(|build| figures::scale(results, build).map(|scale| (build, scale)))
        .collect();
    let Some((_, first)) = builds.first() else {
        document.paragraph("The scale experiment did not run.");
        return Ok(());
    };
    document.paragraph(format!(
        "The same load ({} users) before and after one more replica: the monolith gets a second \
         process, the microservices a second replica of their bottleneck — of each bottleneck \
         where processes tie for it (within {:.0} percentage points of the busiest, all at \
         {} of their quota or more), since scaling one of two held-back processes only moves \
         the limit to the other. The shop had {}; \
         replicas share them. {} Each half is measured after its warm-up, which ends when \
         the last buy user's login was answered: the logins (Argon2, tens of ms of CPU each) \
         all come at a half's start and are not the steady mix.",
        first.users,
        TIE_MARGIN * 100.0,
        percent(TIE_FLOOR),
        count(first.sut_cores, "core", "cores"),
        quota_sentence(first)
    ));
    let title = format!(
        "One more replica: throughput and efficiency (the shop had {})",
        count(first.sut_cores, "core", "cores")
    );
    document.push(Block::Figure(charts.save(
        "scale",
        &title,
        &ScaleBars {
            builds: builds.clone(),
        },
    )?));
    let mut rows = Vec::new();
    for (build, scale) in &builds {
        for (half, second) in [(&scale.before, false), (&scale.after, true)] {
            rows.push(vec![
                Cell::plain(build_label(*build)),
                Cell::plain(replicas(scale, half, second)),
                if second {
                    Cell::plain(scale.added_processes())
                } else {
                    Cell::toned("—", Tone::Muted)
                },
                Cell::plain(format!("{:.1} s", half.warm_up_s)),
                Cell::plain(format!("{:.0} req/s", half.successful_per_s())),
                Cell::plain(percent(half.error_rate)),
                Cell::plain(ms(half.latency.p99_us as f64 / 1000.0)),
                half.requests_per_sut_cpu_s.map_or_else(
                    || Cell::toned(NOT_MEASURED, Tone::Muted),
                    |rate| Cell::plain(format!("{rate:.0}")),
                ),
            ]);
        }
    }
    document.table(
        &[
            "build",
            "replicas",
            "added",
            "warm-up left out",
            "throughput",
            "errors",
            "p99",
            "requests per CPU s",
        ],
        rows,
    );
    utilisation(document, &builds);
    gains(document, &builds);
    not_replicated(document, &builds);
    spread(document, &builds);
    Ok(())
}

/// `2 × catalog, 2 × gateway`: each scaled process with its replicas in `half`.
fn replicas(scale: &Scale, half: &Half, second: bool) -> String {
    if scale.added.len() <= 1 {
        return format!("{} × {}", half.replicas, scale.component);
    }
    scale
        .added
        .iter()
        .map(|added| {
            let (process, replicas) = added
                .process
                .split_once('#')
                .and_then(|(process, replica)| Some((process, replica.parse::<usize>().ok()?)))
                .unwrap_or((added.process.as_str(), half.replicas));
            let replicas = if second { replicas } else { replicas - 1 };
            format!("{replicas} × {process}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Bottlenecks that got no replica, and why: said, never skipped in silence.
fn not_replicated(document: &mut Document, builds: &[(Build, &Scale)]) {
    let rows: Vec<Vec<Cell>> = builds
        .iter()
        .flat_map(|(build, scale)| {
            scale.not_replicated.iter().map(|left| {
                vec![
                    Cell::plain(build_label(*build)),
                    Cell::toned(left.process.clone(), Tone::Warn),
                    Cell::plain(left.why.clone()),
                ]
            })
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    document
        .paragraph("Tied for the bottleneck but given no replica: the gain above is without them.");
    document.table(&["build", "process", "why not"], rows);
}

/// What held the processes, in one sentence: the quota, or why there was none.
fn quota_sentence(scale: &Scale) -> String {
    match (&scale.quota.cores, &scale.quota.unavailable) {
        (Some(cores), _) => format!(
            "Every shop process, the added one too, was held to a CPU quota of {cores:.2} \
             cores (cgroups), so the bottleneck is the process that uses most of its quota, \
             and one more replica of it adds {cores:.2} cores that were there to use."
        ),
        (None, Some(why)) => format!(
            "No CPU quota held the processes ({why}): the busiest service by CPU seconds got \
             the replica."
        ),
        (None, None) => "No CPU quota was asked for: the busiest service by CPU seconds got \
                         the replica."
            .to_owned(),
    }
}

/// Each process of the first half against its quota: how the bottleneck was found.
fn utilisation(document: &mut Document, builds: &[(Build, &Scale)]) {
    let mut rows = Vec::new();
    for (build, scale) in builds {
        let Some(cores) = scale.quota.cores else {
            continue;
        };
        for used in &scale.utilisation {
            let chosen = scale.scaled(&used.process);
            let cell = |text: String| {
                if chosen {
                    Cell::toned(text, Tone::Warn)
                } else {
                    Cell::plain(text)
                }
            };
            rows.push(vec![
                Cell::plain(build_label(*build)),
                cell(used.process.clone()),
                Cell::plain(used.replicas.to_string()),
                Cell::plain(format!("{:.2}", used.cpu_s)),
                Cell::plain(format!("{cores:.2}")),
                cell(percent(used.utilisation)),
            ]);
        }
    }
    if rows.is_empty() {
        return;
    }
    document.paragraph(
        "Each process in the first half: CPU seconds over what its quota allowed in the \
         half's wall time (utilisation = CPU s ÷ (quota × replicas × wall s)). The highest is \
         the bottleneck, and got the replica (marked); processes tied with it got one each.",
    );
    document.table(
        &[
            "build",
            "process",
            "replicas",
            "CPU s",
            "quota (cores)",
            "utilisation",
        ],
        rows,
    );
}

/// What the added processes bought: successful req/s per core of quota and per MiB, of all
/// of them together.
fn gains(document: &mut Document, builds: &[(Build, &Scale)]) {
    let rows: Vec<Vec<Cell>> = builds
        .iter()
        .filter_map(|(build, scale)| {
            let gain = scale.gain.as_ref()?;
            if scale.added.is_empty() {
                return None;
            }
            let or_not = |value: Option<f64>, places: usize| {
                value.map_or_else(
                    || Cell::toned(NOT_MEASURED, Tone::Muted),
                    |value| Cell::plain(format!("{value:+.places$} req/s")),
                )
            };
            Some(vec![
                Cell::plain(build_label(*build)),
                Cell::plain(scale.added_processes()),
                scale.added_cpu_cores().map_or_else(
                    || Cell::toned("no quota", Tone::Muted),
                    |cores| Cell::plain(format!("{cores:.2}")),
                ),
                scale.added_rss_mib().map_or_else(
                    || Cell::toned(NOT_MEASURED, Tone::Muted),
                    |mib| Cell::plain(format!("{mib:.1}")),
                ),
                Cell::plain(format!("×{:.2}", scale.speedup)),
                Cell::plain(format!("{:+.0}", gain.requests_per_s)),
                or_not(gain.per_cpu, 0),
                or_not(gain.per_mib, 1),
            ])
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    let several: Vec<String> = builds
        .iter()
        .filter(|(_, scale)| scale.added.len() > 1)
        .map(|(build, scale)| {
            format!(
                "The {} added {} ({}), so their figures are per the {} quotas and the memory \
                 of all of them together.",
                build_label(*build),
                count(scale.added.len(), "process", "processes"),
                scale.added_processes(),
                scale.added.len()
            )
        })
        .collect();
    document.paragraph(format!(
        "What the added processes bought: successful requests per second after minus before, \
         per core of CPU quota they were given and per MiB of resident memory they held at the \
         end of the second half.{}",
        several
            .iter()
            .map(|sentence| format!(" {sentence}"))
            .collect::<String>()
    ));
    document.table(
        &[
            "build",
            "added",
            "CPU (cores)",
            "memory (MiB)",
            "speed-up",
            "gained req/s",
            "per added core",
            "per added MiB",
        ],
        rows,
    );
}

/// How the second half's requests fell on each replica, as the balancer counted them: an
/// even spread is what "balances load over identical replicas" claims.
fn spread(document: &mut Document, builds: &[(Build, &Scale)]) {
    let counted: Vec<_> = builds
        .iter()
        .filter_map(|(build, scale)| scale.spread.as_ref().map(|spread| (*build, spread)))
        .collect();
    if counted.is_empty() {
        document.paragraph(
            "Requests per replica: not counted (the platform runs no front door to count them).",
        );
        return;
    }
    document.paragraph(
        "Requests per replica in the second half, as the balancer in front of the replicas \
         counted them. Imbalance is the busiest replica's share over an even share: 1.00 is a \
         perfect spread; with two replicas, 2.00 is everything on one.",
    );
    let mut rows = Vec::new();
    for (build, spread) in counted {
        let total: u64 = spread.replicas.iter().map(|(_, count)| count).sum();
        let shares = spread
            .replicas
            .iter()
            .map(|(replica, count)| {
                format!(
                    "{replica}: {count} ({})",
                    percent(*count as f64 / total.max(1) as f64)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        rows.push(vec![
            Cell::plain(build_label(build)),
            Cell::plain(spread.counted_by.clone()),
            Cell::plain(if shares.is_empty() {
                "none counted".to_owned()
            } else {
                shares
            }),
            spread.imbalance().map_or_else(
                || Cell::toned(NOT_MEASURED, Tone::Muted),
                |imbalance| Cell::plain(format!("{imbalance:.3}")),
            ),
        ]);
    }
    document.table(&["build", "counted by", "per replica", "imbalance"], rows);
}
