//! The suite's combined report: `suite.md` and `suite.html`, one row per cell and repeat,
//! then the medians over the repeats, each row linking the cell's own `report.html`.
//!
//! Written here rather than through `loadtest-report`'s block renderer: that one is private
//! to its crate and built for one run's results, and a suite is a table over many runs. The
//! figures are read from each cell's `results.json` through `loadtest_results`' types.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;

use loadtest_results::Results;
use loadtest_results::experiments::Findings;

use super::file::Cell;

/// One cell's figures as the report shows them.
pub(crate) struct Row {
    cell: Cell,
    /// `None`: the cell has no results (it failed, or has not run).
    pub invariants_held: Option<bool>,
    /// Per build, in the order compare ran them: capacity at the SLO (journeys/s, median of
    /// the ramps) and successful req/s at the highest throughput level (median of its repeats).
    builds: Vec<(String, Figures)>,
}

#[derive(Clone, Copy, Default)]
struct Figures {
    capacity: Option<f64>,
    throughput: Option<f64>,
}

/// Writes `suite.md` and `suite.html` into `out` and returns the rows.
pub(crate) fn write(out: &Path, cells: &[Cell]) -> anyhow::Result<Vec<Row>> {
    let rows: Vec<Row> = cells
        .iter()
        .map(|cell| {
            let results = loadtest_report::load(&out.join("cells").join(&cell.name)).ok();
            row(cell, results.as_ref())
        })
        .collect();
    let builds = build_names(&rows);
    let tables = [cell_table(&rows, &builds), median_table(&rows, &builds)];
    let title = format!("Suite: {} cells", cells.len());
    let intro = format!(
        "Load: {}. Capacity: journeys/s at the SLO (open-loop ramp); throughput: successful \
         req/s at the highest closed-loop level; ratios: each build over the monolith. A \
         figure left out (—) was not measured in that cell.",
        cells.first().map(super::shown_args).unwrap_or_default()
    );
    std::fs::write(out.join("suite.md"), markdown(&title, &intro, &tables))
        .context("write suite.md")?;
    std::fs::write(out.join("suite.html"), html(&title, &intro, &tables))
        .context("write suite.html")?;
    Ok(rows)
}

/// A table: its heading, header and rows; a cell's text, and a link where it has one.
struct Table {
    heading: &'static str,
    header: Vec<String>,
    rows: Vec<Vec<(String, Option<String>)>>,
}

fn row(cell: &Cell, results: Option<&Results>) -> Row {
    let mut builds: Vec<(String, Figures)> = Vec::new();
    for outcome in results.iter().flat_map(|results| &results.experiments) {
        let Findings::Throughput { levels, capacity } = &outcome.findings else {
            continue;
        };
        let top = levels.iter().map(|level| level.users).max();
        let rates: Vec<f64> = levels
            .iter()
            .filter(|level| Some(level.users) == top)
            .map(|level| level.requests_per_s)
            .collect();
        builds.push((
            outcome.build.to_string(),
            Figures {
                capacity: capacity
                    .as_ref()
                    .and_then(|capacity| capacity.sustained.as_ref())
                    .map(|estimate| estimate.median),
                throughput: median(&rates),
            },
        ));
    }
    Row {
        cell: cell.clone(),
        invariants_held: results.map(|results| results.valid),
        builds,
    }
}

/// Every build some cell measured, in the order first met (compare's order).
fn build_names(rows: &[Row]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (name, _) in rows.iter().flat_map(|row| &row.builds) {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// A cell's figure for `build`, and its ratio over the monolith's.
fn figure(row: &Row, build: &str, pick: fn(&Figures) -> Option<f64>) -> Option<f64> {
    row.builds
        .iter()
        .find(|(name, _)| name == build)
        .and_then(|(_, figures)| pick(figures))
}

fn ratio(row: &Row, build: &str, pick: fn(&Figures) -> Option<f64>) -> Option<f64> {
    Some(figure(row, build, pick)? / figure(row, "monolith", pick).filter(|base| *base > 0.0)?)
}

/// A column of figures: its name and how a row gives its value.
type Column<'a> = (String, Box<dyn Fn(&Row) -> Option<f64> + 'a>);

/// The columns of figures: each build's capacity and throughput, then each other build's
/// ratios over the monolith.
fn columns(builds: &[String]) -> Vec<Column<'_>> {
    let capacity: fn(&Figures) -> Option<f64> = |figures| figures.capacity;
    let throughput: fn(&Figures) -> Option<f64> = |figures| figures.throughput;
    let mut columns: Vec<Column<'_>> = Vec::new();
    for build in builds {
        columns.push((
            format!("{build} capacity"),
            Box::new(move |row| figure(row, build, capacity)),
        ));
        columns.push((
            format!("{build} req/s"),
            Box::new(move |row| figure(row, build, throughput)),
        ));
    }
    for build in builds.iter().filter(|build| *build != "monolith") {
        columns.push((
            format!("{build}/monolith capacity"),
            Box::new(move |row| ratio(row, build, capacity)),
        ));
        columns.push((
            format!("{build}/monolith req/s"),
            Box::new(move |row| ratio(row, build, throughput)),
        ));
    }
    columns
}

fn axes_header() -> Vec<String> {
    ["database", "target", "topologies"]
        .map(str::to_owned)
        .to_vec()
}

fn axes(cell: &Cell) -> Vec<(String, Option<String>)> {
    vec![
        (cell.database.shown(), None),
        (cell.target.clone(), None),
        (
            cell.topologies
                .clone()
                .unwrap_or_else(|| "monolith, micro".to_owned()),
            None,
        ),
    ]
}

fn cell_table(rows: &[Row], builds: &[String]) -> Table {
    let columns = columns(builds);
    let mut header = vec!["cell".to_owned()];
    header.extend(axes_header());
    header.extend(["repeat".to_owned(), "invariants".to_owned()]);
    header.extend(columns.iter().map(|(name, _)| name.clone()));
    let body = rows
        .iter()
        .map(|row| {
            let link = row
                .invariants_held
                .map(|_| format!("cells/{}/report.html", row.cell.name));
            let mut line = vec![(row.cell.name.clone(), link)];
            line.extend(axes(&row.cell));
            line.push((row.cell.repeat.to_string(), None));
            line.push((
                match row.invariants_held {
                    Some(true) => "held",
                    Some(false) => "VIOLATED",
                    None => "no results",
                }
                .to_owned(),
                None,
            ));
            line.extend(columns.iter().map(|(_, value)| (shown(value(row)), None)));
            line
        })
        .collect();
    Table {
        heading: "Every cell",
        header,
        rows: body,
    }
}

/// The cells grouped by their axes, repeats folded: the median and the range of each figure.
fn median_table(rows: &[Row], builds: &[String]) -> Table {
    let columns = columns(builds);
    let mut groups: BTreeMap<(String, String, String), Vec<&Row>> = BTreeMap::new();
    let mut order = Vec::new();
    for row in rows {
        let key = (
            row.cell.database.url.clone(),
            row.cell.target.clone(),
            row.cell.topologies.clone().unwrap_or_default(),
        );
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(row);
    }
    let mut header = axes_header();
    header.extend(["repeats".to_owned(), "invariants held".to_owned()]);
    header.extend(columns.iter().map(|(name, _)| name.clone()));
    let body = order
        .iter()
        .map(|key| {
            let members = &groups[key];
            let mut line = axes(&members[0].cell);
            let measured = members.iter().filter(|row| row.invariants_held.is_some());
            line.push((format!("{}", measured.clone().count()), None));
            line.push((
                format!(
                    "{} of {}",
                    measured
                        .filter(|row| row.invariants_held == Some(true))
                        .count(),
                    members.len()
                ),
                None,
            ));
            for (_, value) in &columns {
                let values: Vec<f64> = members.iter().filter_map(|row| value(row)).collect();
                let text = match (median(&values), values.len()) {
                    (None, _) => "—".to_owned(),
                    (Some(middle), 1) => number(middle),
                    (Some(middle), _) => {
                        let low = values.iter().copied().fold(f64::INFINITY, f64::min);
                        let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                        format!("{} ({}–{})", number(middle), number(low), number(high))
                    }
                };
                line.push((text, None));
            }
            line
        })
        .collect();
    Table {
        heading: "Medians over the repeats (range)",
        header,
        rows: body,
    }
}

fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        count if count % 2 == 1 => Some(sorted[middle]),
        _ => Some((sorted[middle - 1] + sorted[middle]) / 2.0),
    }
}

/// Three significant figures are all a load test's noise allows.
fn number(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn shown(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), number)
}

fn markdown(title: &str, intro: &str, tables: &[Table]) -> String {
    let escape = |text: &str| text.replace('|', "\\|");
    let mut page = format!("# {title}\n\n{intro}\n");
    for table in tables {
        page.push_str(&format!("\n## {}\n\n", table.heading));
        page.push_str(&format!("| {} |\n", table.header.join(" | ")));
        page.push_str(&format!("|{}\n", "---|".repeat(table.header.len())));
        for row in &table.rows {
            let cells: Vec<String> = row
                .iter()
                .map(|(text, link)| match link {
                    Some(link) => format!("[{}]({link})", escape(text)),
                    None => escape(text),
                })
                .collect();
            page.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
    }
    page
}

/// One self-contained page, nothing fetched, like the cells' own reports.
fn html(title: &str, intro: &str, tables: &[Table]) -> String {
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}\
         td:first-child,th:first-child{{text-align:left}}</style></head><body>\n\
         <h1>{}</h1>\n<p>{}</p>\n",
        escape(title),
        escape(title),
        escape(intro)
    );
    for table in tables {
        page.push_str(&format!("<h2>{}</h2>\n<table><tr>", escape(table.heading)));
        for name in &table.header {
            page.push_str(&format!("<th>{}</th>", escape(name)));
        }
        page.push_str("</tr>\n");
        for row in &table.rows {
            page.push_str("<tr>");
            for (text, link) in row {
                match link {
                    Some(link) => page.push_str(&format!(
                        "<td><a href=\"{}\">{}</a></td>",
                        escape(link),
                        escape(text)
                    )),
                    None => page.push_str(&format!("<td>{}</td>", escape(text))),
                }
            }
            page.push_str("</tr>\n");
        }
        page.push_str("</table>\n");
    }
    page.push_str("</body></html>\n");
    page
}
