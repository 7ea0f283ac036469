//! The lab's report, rendered from a run's `results.json` alone: `report.html` (one
//! self-contained page, charts inlined as SVG), `report.md` (for a git forge, PNG charts
//! beside it) and `charts/*.svg` + `charts/*.png`. `shoplab diff` compares two runs the same
//! way (`diff.html`, `diff.md`).
//!
//! - `figures` — the numbers, folded over repeats and paired across builds;
//! - `summary` — key figures, a verdict per claim, the warnings;
//! - `sections` — the report as blocks (`document`), rendered by `html` and `markdown`;
//!   `diff` does the same for two runs;
//! - `charts` — each chart drawn with plotters, in the look of `theme`;
//! - `folder` — the run's other files: results.json, history.jsonl, CSV (`csv`), summary.txt;
//! - `command` — `shoplab report` and `shoplab diff`.

mod charts;
mod command;
mod csv;
mod diff;
mod document;
mod figures;
pub mod folder;
mod html;
mod markdown;
mod sections;
mod summary;
pub mod theme;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde_json::Value;

use loadtest_results::{Results, SCHEMA_VERSION};

pub use charts::ChartTheme;
pub use command::{DiffArgs, ReportArgs, run_diff, run_report};
pub use diff::write_diff;
pub use summary::text::summary as summary_text;

/// Reads a run's results: `path` is the run's folder or its `results.json`. Fails with a
/// message saying what is wrong when the file is missing, not JSON, or of another schema
/// version.
pub fn load(path: &Path) -> anyhow::Result<Results> {
    let file = results_file(path);
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    match value.get("schema_version").and_then(Value::as_u64) {
        None => bail!(
            "{} has no schema_version: it is not a results file of shoplab compare",
            file.display()
        ),
        Some(version) if version != u64::from(SCHEMA_VERSION) => bail!(
            "{} has results schema version {version}, and this shoplab reads version \
             {SCHEMA_VERSION}: render it with the shoplab that wrote it, or run shoplab \
             compare again",
            file.display()
        ),
        Some(_) => {}
    }
    serde_json::from_value(value).with_context(|| {
        format!(
            "{} does not match results schema version {SCHEMA_VERSION}",
            file.display()
        )
    })
}

/// Writes `report.html`, `report.md` and `charts/` into `run_dir`. The pages depend on
/// `results` alone, except that the raw files are linked only when they are in `run_dir`.
pub fn write(run_dir: &Path, results: &Results) -> anyhow::Result<()> {
    write_styled(run_dir, results, None, ChartTheme::Light)
}

/// [`write`] with every one-row chart `size` pixels (`shoplab report --size 1920x1080`;
/// taller charts keep their proportion) in `theme` (`--theme dark`).
pub fn write_styled(
    run_dir: &Path,
    results: &Results,
    size: Option<(u32, u32)>,
    theme: ChartTheme,
) -> anyhow::Result<()> {
    let charts = charts::Charts::styled(&run_dir.join("charts"), size, theme)?;
    let document = sections::report(results, run_dir, &charts)?;
    write_pages(run_dir, "report", &document)
}

/// `<name>.html` and `<name>.md` of `document` in `dir`.
fn write_pages(dir: &Path, name: &str, document: &document::Document) -> anyhow::Result<()> {
    for (extension, text) in [
        ("html", html::render(document)),
        ("md", markdown::render(document)),
    ] {
        let path = dir.join(format!("{name}.{extension}"));
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

/// The `results.json` of a run folder, or the file itself.
fn results_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("results.json")
    } else {
        path.to_owned()
    }
}
