//! `shoplab report` and `shoplab diff`: the command-line side of the report.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::charts::ChartTheme;

#[derive(Clone, Debug, clap::Args)]
pub struct ReportArgs {
    /// A run's results.json, or the run's folder (reports/<run-id>/).
    pub results: PathBuf,
    /// Where to write report.html, report.md and charts/ (default: the run's folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The size of a one-row chart in pixels, WIDTHxHEIGHT (for example 1920x1080 for a
    /// slide); taller charts keep their proportion. Default 1400x800.
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    pub size: Option<(u32, u32)>,
    /// The charts' look: `dark` inverts every color's lightness and keeps its hue (the
    /// monolith stays blue, the microservices orange), for a projector in a dark room.
    #[arg(long, value_enum, default_value_t = ChartTheme::Light)]
    pub theme: ChartTheme,
}

/// `1920x1080` as (1920, 1080); between 640x360 and 7680x4320, where the charts' fonts stay
/// readable and the PNGs of a reasonable size.
pub fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let (width, height) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("expected WIDTHxHEIGHT such as 1920x1080, got {text:?}"))?;
    let number = |part: &str| {
        part.trim()
            .parse::<u32>()
            .map_err(|_| format!("{part:?} in {text:?} is not a whole number of pixels"))
    };
    let (width, height) = (number(width)?, number(height)?);
    if !(640..=7680).contains(&width) || !(360..=4320).contains(&height) {
        return Err(format!(
            "{width}x{height} is outside 640x360 to 7680x4320, where the charts stay readable"
        ));
    }
    Ok((width, height))
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
    super::write_styled(&out, &results, args.size, args.theme).context("write the report")?;
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

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn a_size_is_width_x_height_within_readable_bounds() {
        assert_eq!(parse_size("1920x1080"), Ok((1920, 1080)));
        assert_eq!(parse_size("1280X720"), Ok((1280, 720)));
        assert!(parse_size("1920").is_err());
        assert!(parse_size("widexhigh").is_err());
        assert!(parse_size("100x100").unwrap_err().contains("outside"));
    }
}
