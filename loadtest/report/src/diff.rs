//! `shoplab diff`: two runs side by side — which run is which, the change in every key
//! figure per build, the verdicts that changed, and the throughput of both runs overlaid.
//!
//! Two runs are compared only when they were made alike: the same platform, profile,
//! database and machine ([`differences`]; `--force` overrides, and the page then lists what
//! differs). A change is called better or worse only when the spread of the repeats supports
//! it ([`distinguishable`]): with one run a side there is no spread, so no verdict.

use std::path::Path;

use super::charts::{Charts, Run, Throughput};
use super::document::{Block, Cell, Document, Tone};
use super::figures::{Spread, percent, throughput};
use super::sections::{number, spread_cell};
use super::summary::{self, KeyFigure};
use super::theme::{Stroke, build_label};
use loadtest_results::Results;
use loadtest_results::component::Build;

/// A change smaller than this share of the old value is reported as "about the same".
const SAME: f64 = 0.05;

/// What makes two runs not comparable: a different platform, profile, database or machine,
/// each as `what: A's, B's`. Empty when they were made alike.
pub fn differences(run_a: &Results, run_b: &Results) -> Vec<String> {
    let machine = |run: &Results| {
        format!(
            "{} cores, {}",
            run.environment.cores, run.environment.cpu_model
        )
    };
    [
        (
            "platform",
            run_a.settings.target.clone(),
            run_b.settings.target.clone(),
        ),
        (
            "profile",
            run_a.profile.name.clone(),
            run_b.profile.name.clone(),
        ),
        (
            "database",
            run_a.settings.database.clone(),
            run_b.settings.database.clone(),
        ),
        ("machine", machine(run_a), machine(run_b)),
    ]
    .into_iter()
    .filter(|(_, a, b)| a != b)
    .map(|(what, a, b)| format!("{what}: A {a}, B {b}"))
    .collect()
}

/// Whether the change between two figures is larger than the noise of their repeats: the 95 %
/// interval of the ratio B ÷ A (Welch on the logs, `loadtest_results::stats`) excludes ×1.
/// `None` when a side has a single run, so there is no spread to judge by.
fn distinguishable(before: &Spread, after: &Spread) -> Option<bool> {
    if before.samples < 2 || after.samples < 2 {
        return None;
    }
    Some(loadtest_results::stats::distinguishable(
        &after.values,
        &before.values,
    ))
}

/// Writes `diff.html`, `diff.md` and `charts/` comparing `run_a` (before) with `run_b`.
pub fn write_diff(out: &Path, run_a: &Results, run_b: &Results) -> anyhow::Result<()> {
    let charts = Charts::new(&out.join("charts"))?;
    let document = document(run_a, run_b, &charts)?;
    super::write_pages(out, "diff", &document)
}

fn document(run_a: &Results, run_b: &Results, charts: &Charts) -> anyhow::Result<Document> {
    let mut document = Document::new(format!(
        "shoplab diff — run {} (A) against run {} (B)",
        run_a.run_id, run_b.run_id
    ));
    document.section("runs", "The two runs");
    let describe = |name: &str, run: &Results| {
        vec![
            Cell::plain(name),
            Cell::plain(run.run_id.clone()),
            Cell::plain(run.settings.target.clone()),
            Cell::plain(run.profile.name.clone()),
            Cell::plain(run.environment.built_from()),
            Cell::plain(format!(
                "{} cores, {}",
                run.environment.cores, run.environment.cpu_model
            )),
            Cell::plain(run.settings.database.clone()),
            if run.valid {
                Cell::toned("every invariant held", Tone::Good)
            } else {
                Cell::toned("an invariant was violated", Tone::Bad)
            },
        ]
    };
    document.table(
        &[
            "",
            "run",
            "platform",
            "profile",
            "built from",
            "machine",
            "database",
            "invariants",
        ],
        vec![describe("A", run_a), describe("B", run_b)],
    );
    let differences = differences(run_a, run_b);
    if !differences.is_empty() {
        document.push(Block::List(
            differences
                .into_iter()
                .map(|difference| {
                    (
                        Tone::Warn,
                        format!(
                            "Compared although the runs differ ({difference}): a change may \
                             come from that rather than from the code."
                        ),
                    )
                })
                .collect(),
        ));
    }

    document.section("changes", "Changes in the key figures");
    document.paragraph(format!(
        "B against A, per build. Better or worse only when the change is over {} of A's value \
         and the 95 % interval of B ÷ A over the repeats (Welch's t on the logs) leaves out ×1; \
         with one run a side there is \
         no spread to tell a change from noise, so no verdict.",
        percent(SAME)
    ));
    let figures_a = summary::key_figures(run_a);
    let figures_b = summary::key_figures(run_b);
    let mut rows = Vec::new();
    for figure_b in &figures_b {
        let figure_a = figures_a.iter().find(|figure| figure.name == figure_b.name);
        for build in Build::BOTH {
            let pick = |figure: &KeyFigure| match build {
                Build::Monolith => figure.monolith.clone(),
                Build::Micro => figure.micro.clone(),
            };
            let before = figure_a.and_then(pick);
            let after = pick(figure_b);
            if before.is_none() && after.is_none() {
                continue;
            }
            rows.push(change_row(figure_b, build, before.as_ref(), after.as_ref()));
        }
    }
    document.table(&["figure", "build", "A", "B", "change"], rows);

    document.section("verdicts", "Verdicts");
    let verdicts_a = summary::verdicts(run_a);
    let rows = summary::verdicts(run_b)
        .into_iter()
        .map(|after| {
            let before = verdicts_a
                .iter()
                .find(|verdict| verdict.claim == after.claim)
                .map_or("—", |verdict| verdict.status.as_str());
            let changed = before != after.status.as_str();
            vec![
                Cell::plain(after.claim),
                Cell::plain(before),
                Cell::toned(
                    after.status.as_str(),
                    if changed { Tone::Warn } else { Tone::Plain },
                ),
                Cell::plain(after.evidence),
            ]
        })
        .collect();
    document.table(&["claim", "A", "B", "B's numbers"], rows);

    document.section("throughput", "Throughput of both runs");
    let run = |results: &Results, label: &str, stroke| Run {
        label: Some(label.to_owned()),
        stroke,
        builds: Build::BOTH
            .into_iter()
            .map(|build| (build, throughput(results, build)))
            .filter(|(_, levels)| !levels.is_empty())
            .collect(),
    };
    let plot = Throughput {
        runs: vec![
            run(run_a, "A", Stroke::Dashed),
            run(run_b, "B", Stroke::Solid),
        ],
        repeats: run_a.profile.repeats.max(run_b.profile.repeats),
    };
    document.push(Block::Figure(charts.save(
        "throughput-diff",
        "Throughput against load: run A (dashed) and run B (solid)",
        &plot,
    )?));
    document.section("warnings", "Warnings of run B");
    let warnings = summary::warnings(run_b);
    if warnings.is_empty() {
        document.paragraph("None.");
    } else {
        document.push(Block::List(
            warnings
                .into_iter()
                .map(|warning| (Tone::Warn, warning))
                .collect(),
        ));
    }
    Ok(document)
}

fn change_row(
    figure: &KeyFigure,
    build: Build,
    before: Option<&Spread>,
    after: Option<&Spread>,
) -> Vec<Cell> {
    let value = |spread: Option<&Spread>| spread_cell(spread, figure.unit, figure.absent);
    let change = match (before, after) {
        (Some(before), Some(after)) => {
            let delta = after.median - before.median;
            let relative = if before.median.abs() > f64::EPSILON {
                Some(delta / before.median.abs())
            } else {
                None
            };
            let sign = if delta < 0.0 { "−" } else { "+" };
            let unit = if figure.unit == "×" { "" } else { figure.unit };
            let amount = number(delta.abs(), unit);
            let text = match relative {
                Some(relative) => format!("{sign}{amount} {unit} ({:+.1} %)", relative * 100.0),
                None => format!("{sign}{amount} {unit}"),
            };
            let moved =
                relative.map_or(delta.abs() > f64::EPSILON, |relative| relative.abs() > SAME);
            let improved = (delta < 0.0) == figure.lower_is_better;
            match (
                delta == 0.0,
                moved,
                distinguishable(before, after),
                improved,
            ) {
                (true, _, _, _) => Cell::plain("no change"),
                (false, false, _, _) => Cell::plain(format!("{text}, about the same")),
                (false, true, None, _) if before.samples < 2 && after.samples < 2 => {
                    Cell::plain(format!("{text}; one run each: no verdict"))
                }
                (false, true, None, _) => {
                    Cell::plain(format!("{text}; one side has one run: no verdict"))
                }
                (false, true, Some(false), _) => Cell::plain(format!(
                    "{text}; within the noise of the repeats: no verdict"
                )),
                (false, true, Some(true), true) => {
                    Cell::toned(format!("{text}, better"), Tone::Good)
                }
                (false, true, Some(true), false) => {
                    Cell::toned(format!("{text}, worse"), Tone::Bad)
                }
            }
        }
        _ => Cell::toned("—", Tone::Muted),
    };
    vec![
        Cell::plain(figure.name.clone()),
        Cell::plain(build_label(build)),
        value(before),
        value(after),
        change,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread(values: &[f64]) -> Spread {
        Spread::of(values.iter().copied()).expect("values")
    }

    #[test]
    fn a_change_is_told_from_noise_only_when_the_ratios_interval_excludes_one() {
        assert_eq!(distinguishable(&spread(&[100.0]), &spread(&[40.0])), None);
        assert_eq!(
            distinguishable(&spread(&[100.0, 101.0]), &spread(&[40.0])),
            None
        );
        assert_eq!(
            distinguishable(&spread(&[98.0, 100.0, 103.0]), &spread(&[60.0, 99.0, 61.0])),
            Some(false),
            "one repeat of B equals A's: the ratio's interval holds ×1"
        );
        assert_eq!(
            distinguishable(&spread(&[98.0, 100.0, 103.0]), &spread(&[60.0, 62.0, 61.0])),
            Some(true)
        );
    }
}
