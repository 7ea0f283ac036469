//! The report's sections in reading order: the summary (key figures, verdicts), the
//! warnings, one section per experiment ([`load`], [`events`], [`scale`]), the invariants, the
//! environment and settings, and the raw files.

mod capacity;
mod events;
mod load;
mod scale;
pub(crate) mod spectrum;

use std::path::Path;

use serde_json::Value;

use super::charts::Charts;
use super::document::{Block, Cell, Document, Tone};
use super::figures::{Spread, first_line};
use super::summary::{self, KeyFigure, Status};
use super::theme::build_label;
use loadtest_results::Results;
use loadtest_results::component::Build;
use loadtest_results::profile::FaultCell;

/// The whole report of one run; renders its charts into `charts` on the way.
pub(crate) fn report(
    results: &Results,
    run_dir: &Path,
    charts: &Charts,
) -> anyhow::Result<Document> {
    // Every section comparing the two builds reads their outcomes only; a topology between
    // them is recorded as the micro build and belongs to the spectrum, which reads them all.
    let everything = results;
    let builds = results.builds_only();
    let results = &builds;
    let mut document = Document::new(format!("shoplab compare — run {}", results.run_id));
    document.paragraph(format!(
        "The {}. {}",
        results.headline(),
        if results.valid {
            "Every invariant held on both builds."
        } else {
            "An invariant was violated: see the warnings and the invariants."
        }
    ));
    summary_section(&mut document, results);
    warnings_section(&mut document, results);
    capacity::capacity_section(&mut document, results, charts)?;
    load::throughput(&mut document, results, charts)?;
    load::hop_tax(&mut document, results, charts)?;
    events::faults(&mut document, results, charts)?;
    events::deploys(&mut document, results, charts)?;
    scale::section(&mut document, results, charts)?;
    spectrum::section(&mut document, everything, charts)?;
    events::nodes(&mut document, results);
    invariants_section(&mut document, results);
    environment_section(&mut document, results);
    files_section(&mut document, run_dir);
    Ok(document)
}

fn summary_section(document: &mut Document, results: &Results) {
    document.section("summary", "Summary");
    document.paragraph(repeats_note(results));
    let rows = summary::key_figures(results)
        .iter()
        .map(key_figure_row)
        .collect();
    document.table(
        &["figure", "monolith", "microservices", "micro ÷ monolith"],
        rows,
    );
    document.subsection("Verdicts");
    let rows = summary::verdicts(results)
        .into_iter()
        .map(|verdict| {
            let tone = match verdict.status {
                Status::Holds => Tone::Good,
                Status::DoesNotHold => Tone::Bad,
                Status::Mixed => Tone::Warn,
                Status::NotTested => Tone::Muted,
            };
            vec![
                Cell::plain(verdict.claim),
                Cell::toned(verdict.status.as_str(), tone),
                Cell::plain(verdict.evidence),
            ]
        })
        .collect();
    document.table(&["claim", "verdict", "the numbers"], rows);
}

fn key_figure_row(figure: &KeyFigure) -> Vec<Cell> {
    let value = |spread: &Option<Spread>| spread_cell(spread.as_ref(), figure.unit, figure.absent);
    let ratio = match figure.ratio() {
        None => Cell::toned("—", Tone::Muted),
        Some(ratio) if ratio.estimate.interval().is_none() => Cell::plain(ratio.describe()),
        Some(ratio) if ratio.distinguishable() => Cell::plain(ratio.describe()),
        Some(ratio) => Cell::toned(
            format!("{}, within the noise", ratio.describe()),
            Tone::Muted,
        ),
    };
    vec![
        Cell::plain(figure.name.clone()),
        value(&figure.monolith),
        value(&figure.micro),
        ratio,
    ]
}

/// A cell whose figure the target could not measure (the Kubernetes target's CPU and memory).
pub(super) const NOT_MEASURED: &str = "not measured";

/// A figure's cell: its median and spread, or `absent`, muted, where it was not measured.
pub(crate) fn spread_cell(spread: Option<&Spread>, unit: &str, absent: &str) -> Cell {
    spread.map_or_else(
        || Cell::toned(absent, Tone::Muted),
        |spread| Cell::plain(with_spread(spread, unit)),
    )
}

/// `1234 req/s [95 % CI 1200 – 1250, n=3]`: the median with its interval when there were
/// repeats; a single run states the figure alone (no spread is claimed).
pub(crate) fn with_spread(spread: &Spread, unit: &str) -> String {
    let median = number(spread.median, unit);
    let unit = match unit {
        "×" | "" => String::new(),
        other => format!(" {other}"),
    };
    match spread.estimate.interval() {
        Some((low, high)) => format!(
            "{median}{unit} [{} – {}, n={}]",
            number(low, ""),
            number(high, ""),
            spread.samples
        ),
        None => format!("{median}{unit}"),
    }
}

/// How the summary's figures were made, by how many repeats the run has.
fn repeats_note(results: &Results) -> String {
    let repeats = results.profile.repeats;
    if repeats <= 1 {
        "One run: no spread. Each figure is of a single repeat, so no interval is given and no \
         difference between the builds can be told from the noise; run with --repeat 3 or \
         more for that. Latency and throughput are of successful requests. The ratio is \
         microservices ÷ monolith."
            .to_owned()
    } else {
        format!(
            "Medians of {repeats} repeats; in brackets the 95 % confidence interval (Student t of \
             the mean of the repeats: at a handful of repeats an interval for the median cannot \
             reach 95 %). The ratio is microservices ÷ monolith with its 95 % interval (Welch's t \
             on the logs of the repeats); a ratio whose interval holds ×1 is marked \
             \"within the noise\". Latency and throughput are of successful requests."
        )
    }
}

/// A figure with the digits its unit deserves: whole requests and percents, three
/// significant digits of milliseconds, a ratio with two decimals.
pub(crate) fn number(value: f64, unit: &str) -> String {
    match unit {
        "×" => format!("×{value:.2}"),
        "req/s" | "requests" | "%" | "MiB" | "µs" => format!("{value:.0}"),
        _ if value.abs() >= 100.0 || value == 0.0 => format!("{value:.0}"),
        _ if value.abs() >= 10.0 => format!("{value:.1}"),
        _ if value.abs() >= 1.0 => format!("{value:.2}"),
        _ => format!("{value:.3}"),
    }
}

fn warnings_section(document: &mut Document, results: &Results) {
    document.section("warnings", "Warnings");
    let warnings = summary::warnings(results);
    if warnings.is_empty() {
        document.paragraph(if results.profile.repeats > 1 {
            "None: the generator kept up, repeats agree, every invariant held and every fault was in force."
        } else {
            "None: the generator kept up, every invariant held and every fault was in force (one run: no spread, so nothing is said of noise)."
        });
        return;
    }
    document.push(Block::List(
        warnings
            .into_iter()
            .map(|warning| {
                let tone = if warning.starts_with("Invariant") {
                    Tone::Bad
                } else {
                    Tone::Warn
                };
                (tone, warning)
            })
            .collect(),
    ));
}

fn invariants_section(document: &mut Document, results: &Results) {
    document.section("invariants", "Invariants");
    document.paragraph(
        "Checked after every experiment on the audit snapshot and the request history: no order, \
         unit of stock or cent lost.",
    );
    let builds = summary::builds(results);
    let mut ids: Vec<(String, String)> = Vec::new();
    for outcome in &results.experiments {
        for invariant in &outcome.invariants.invariants {
            if !ids.iter().any(|(id, _)| *id == invariant.id) {
                ids.push((invariant.id.clone(), invariant.name.clone()));
            }
        }
    }
    let rows = ids
        .iter()
        .map(|(id, name)| {
            let mut row = vec![Cell::plain(format!("{id} {name}"))];
            for build in &builds {
                row.push(invariant_cell(results, *build, id));
            }
            row
        })
        .collect();
    let mut header = vec!["invariant"];
    header.extend(builds.iter().map(|build| build_label(*build)));
    document.table(&header, rows);
}

fn invariant_cell(results: &Results, build: Build, id: &str) -> Cell {
    let mut checked = 0;
    let mut broken: Vec<String> = Vec::new();
    let mut first = None;
    for outcome in super::figures::outcomes(results, build) {
        let Some(invariant) = outcome
            .invariants
            .invariants
            .iter()
            .find(|invariant| invariant.id == id)
        else {
            continue;
        };
        if !invariant.checked {
            continue;
        }
        checked += 1;
        if invariant.violations > 0 {
            broken.push(format!(
                "{} ×{}",
                summary::experiment_name(&outcome.findings),
                invariant.violations
            ));
            if first.is_none() {
                first = invariant.first_example.as_deref().map(first_line);
            }
        }
    }
    match (checked, broken.is_empty()) {
        (0, _) => Cell::toned("not checked", Tone::Muted),
        (_, true) => Cell::toned(
            format!("holds ({checked} of {checked} experiments)"),
            Tone::Good,
        ),
        (_, false) => Cell::toned(
            format!(
                "violated in {}; first: {}",
                broken.join(", "),
                first.unwrap_or_else(|| "no example recorded".into())
            ),
            Tone::Bad,
        ),
    }
}

fn environment_section(document: &mut Document, results: &Results) {
    document.section("environment", "Environment and settings");
    let started = chrono::DateTime::from_timestamp_millis(results.started_at_unix_ms as i64)
        .map_or_else(
            || "at an unknown time".to_owned(),
            |at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        );
    document.paragraph(format!(
        "Run {} (results schema version {}), started {started}, took {:.0} s.",
        results.run_id, results.schema_version, results.duration_s
    ));
    for (title, value) in [
        ("Environment", serde_json::to_value(&results.environment)),
        ("Settings", serde_json::to_value(&results.settings)),
        ("Profile", serde_json::to_value(&results.profile)),
    ] {
        document.subsection(title);
        let mut rows = Vec::new();
        if let Ok(value) = value {
            flatten("", &value, &mut rows);
        }
        let rows = rows
            .into_iter()
            .map(|(key, value)| vec![Cell::plain(key), Cell::plain(value)])
            .collect();
        document.table(&["setting", "value"], rows);
    }
}

/// The profile's durations are whole milliseconds in the results.
const MILLISECOND_FIELDS: [&str; 6] = [
    "level_duration",
    "scale_duration",
    "fault_before",
    "fault_during",
    "fault_after",
    "calibration",
];

/// One row per leaf of `value`, nested objects as dotted names (`pinning.sut_cpus`), so a
/// setting that changes shape still shows without the report knowing it.
fn flatten(prefix: &str, value: &Value, rows: &mut Vec<(String, String)>) {
    match value {
        Value::Object(fields) => {
            for (key, value) in fields {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&name, value, rows);
            }
        }
        leaf => {
            let key = prefix.rsplit('.').next().unwrap_or(prefix);
            rows.push((prefix.to_owned(), describe(key, leaf)));
        }
    }
}

/// A setting's value as text: strings as they are, `[name, value]` pairs as `name value`,
/// lists of plain values comma-separated, nothing as `none`, anything else as compact JSON.
fn describe(key: &str, value: &Value) -> String {
    // The profile's fault matrix, one cell as the report names it everywhere else
    // (`errors 30 % · inventory`), in results old and new.
    if key == "faults"
        && let Ok(cells) = serde_json::from_value::<Vec<FaultCell>>(value.clone())
        && !cells.is_empty()
    {
        return cells
            .iter()
            .map(FaultCell::label)
            .collect::<Vec<_>>()
            .join(", ");
    }
    match value {
        Value::Null => "none".to_owned(),
        Value::String(text) => text.clone(),
        Value::Array(items) if items.is_empty() => "none".to_owned(),
        Value::Array(items)
            if items
                .iter()
                .all(|item| !item.is_array() && !item.is_object()) =>
        {
            items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map_or_else(|| item.to_string(), str::to_owned)
                })
                .collect::<Vec<_>>()
                .join(", ")
        }
        Value::Number(number) if MILLISECOND_FIELDS.contains(&key) => format!("{number} ms"),
        Value::Array(items)
            if !items.is_empty()
                && items
                    .iter()
                    .all(|item| item.as_array().is_some_and(|pair| pair.len() == 2)) =>
        {
            items
                .iter()
                .map(|pair| {
                    let pair = pair.as_array().expect("checked above");
                    let text = |value: &Value| {
                        value
                            .as_str()
                            .map_or_else(|| value.to_string(), str::to_owned)
                    };
                    format!("{} {}", text(&pair[0]), text(&pair[1]))
                })
                .collect::<Vec<_>>()
                .join(", ")
        }
        other => other.to_string(),
    }
}

fn files_section(document: &mut Document, run_dir: &Path) {
    document.section("files", "Raw files");
    document.paragraph(
        "Everything above is rendered from results.json alone (shoplab report re-renders it); \
         history.jsonl has every request.",
    );
    let names = [
        "results.json",
        "history.jsonl",
        "summary.txt",
        "throughput.csv",
        "capacity.csv",
        "faults.csv",
        "deploys.csv",
        "scale.csv",
        "nodes.csv",
        "timeline.csv",
        "report.html",
        "report.md",
    ];
    document.push(Block::Files(
        names
            .iter()
            .map(|name| {
                // The pages are being written with this list in them.
                let present = run_dir.join(name).is_file() || name.starts_with("report.");
                ((*name).to_owned(), present.then(|| (*name).to_owned()))
            })
            .collect(),
    ));
}
