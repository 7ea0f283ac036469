//! `shoplab report` and `shoplab diff`: the command-line side of the report.

use std::path::PathBuf;

use anyhow::Context as _;

#[derive(Clone, Debug, clap::Args)]
pub struct ReportArgs {
    /// A run's results.json, or the run's folder (reports/<run-id>/).
    pub results: PathBuf,
    /// Where to write report.html, report.md and charts/ (default: the run's folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Clone, Debug, clap::Args)]
pub struct DiffArgs {
    /// The earlier run: its folder or its results.json.
    pub run_a: PathBuf,
    /// The later run: its folder or its results.json.
    pub run_b: PathBuf,
    /// Where to write diff.html, diff.md and charts/ (default:
    /// reports/diff-<run A>-vs-<run B>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Compare runs of different platforms, profiles, databases or machines anyway (the
    /// page lists what differs); without it such runs are refused.
    #[arg(long)]
    pub force: bool,
}

pub fn run_report(args: ReportArgs) -> anyhow::Result<()> {
    let results = super::load(&args.results)?;
    let out = args.out.unwrap_or_else(|| {
        super::results_file(&args.results)
            .parent()
            .map(|dir| dir.to_owned())
            .unwrap_or_default()
    });
    let out = if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    };
    super::write(&out, &results).context("write the report")?;
    println!(
        "wrote {} and {}",
        out.join("report.html").display(),
        out.join("report.md").display()
    );
    Ok(())
}

pub fn run_diff(args: DiffArgs) -> anyhow::Result<()> {
    let run_a = super::load(&args.run_a)?;
    let run_b = super::load(&args.run_b)?;
    let differences = super::diff::differences(&run_a, &run_b);
    anyhow::ensure!(
        args.force || differences.is_empty(),
        "runs {} and {} were not made alike, so their numbers do not compare: {}; \
         pass --force to compare them anyway",
        run_a.run_id,
        run_b.run_id,
        differences.join("; ")
    );
    let out = args.out.unwrap_or_else(|| {
        PathBuf::from("reports").join(format!("diff-{}-vs-{}", run_a.run_id, run_b.run_id))
    });
    super::write_diff(&out, &run_a, &run_b).context("write the diff")?;
    println!(
        "wrote {} and {}",
        out.join("diff.html").display(),
        out.join("diff.md").display()
    );
    Ok(())
}
