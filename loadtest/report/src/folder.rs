//! What a run writes into its folder besides the report: `results.json` (versioned, with
//! every setting and the environment stamp), `history.jsonl` (every request), CSV files per
//! experiment ([`crate::csv`]), and a plain-text `summary.txt` (also printed).

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use loadtest_results::Results;
use loadtest_results::history::RequestRecord;

use crate::summary::text::summary;

/// Writes every file of the run into `dir`.
pub fn write(
    dir: &Path,
    results: &Results,
    history: &[(String, String, Vec<RequestRecord>)],
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let json = serde_json::to_vec_pretty(results)?;
    std::fs::write(dir.join("results.json"), json).context("write results.json")?;
    write_history(&dir.join("history.jsonl"), history)?;
    crate::csv::write(dir, results)?;
    std::fs::write(dir.join("summary.txt"), summary(results)).context("write summary.txt")?;
    Ok(())
}

/// One line per request, with the build and experiment it belongs to.
fn write_history(
    path: &Path,
    history: &[(String, String, Vec<RequestRecord>)],
) -> anyhow::Result<()> {
    #[derive(Serialize)]
    struct Line<'a> {
        build: &'a str,
        experiment: &'a str,
        #[serde(flatten)]
        record: &'a RequestRecord,
    }
    let file = std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    for (build, experiment, records) in history {
        for record in records {
            serde_json::to_writer(
                &mut out,
                &Line {
                    build,
                    experiment,
                    record,
                },
            )?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
}
