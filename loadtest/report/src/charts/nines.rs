//! The latency distribution of successful requests from the HDR histograms, as a "nines"
//! plot: the x axis spreads the tail (50 %, 90 %, 99 %, 99.9 % equally apart), the y axis is
//! logarithmic, so the body and the tail of both builds are readable in one picture.

use plotters::prelude::*;

use super::Plot;
use crate::figures::LevelFigures;
use crate::theme::{self, Area, DrawResult, LegendEntry, Mark, Stroke, build_color, build_label};
use loadtest_results::component::Build;

/// Per build, the lowest and the highest load level's distribution.
pub(crate) struct Nines {
    pub builds: Vec<(Build, Vec<LevelFigures>)>,
}

impl Nines {
    /// Whether any level recorded a distribution (results from before it was recorded have
    /// none, and then there is no chart).
    pub fn has_data(&self) -> bool {
        self.builds
            .iter()
            .flat_map(|(_, levels)| levels)
            .any(|level| !level.nines.is_empty())
    }

    /// (build, level, stroke): the top level solid, the lowest dotted.
    fn lines(&self) -> Vec<(Build, &LevelFigures, Stroke)> {
        let mut lines = Vec::new();
        for (build, levels) in &self.builds {
            let with: Vec<&LevelFigures> = levels
                .iter()
                .filter(|level| !level.nines.is_empty())
                .collect();
            if let Some(top) = with.last() {
                lines.push((*build, *top, Stroke::Solid));
            }
            if with.len() > 1
                && let Some(low) = with.first()
            {
                lines.push((*build, *low, Stroke::Dotted));
            }
        }
        lines
    }
}

/// Where a quantile sits on the x axis: its count of nines, `-log10(1 - q)`; the maximum is
/// half a nine past the last quantile before it.
fn positions(nines: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = Vec::new();
    for (quantile, ms) in nines {
        let x = if *quantile >= 1.0 {
            points.last().map_or(0.0, |(x, _)| x + 0.5)
        } else {
            -(1.0 - quantile).log10()
        };
        points.push((x, ms.max(0.001)));
    }
    points
}

impl Plot for Nines {
    fn draw<DB: DrawingBackend>(&self, area: &Area<DB>) -> DrawResult<DB> {
        let (strip, plot) = area.split_vertically(56);
        let lines = self.lines();
        let entries: Vec<LegendEntry> = lines
            .iter()
            .map(|(build, level, stroke)| LegendEntry {
                label: format!("{} at {} users", build_label(*build), level.users),
                mark: Mark::Line(build_color(*build), *stroke),
            })
            .collect();
        theme::legend(&strip, &entries)?;
        let all: Vec<Vec<(f64, f64)>> = lines
            .iter()
            .map(|(_, level, _)| positions(&level.nines))
            .collect();
        let x_max = all.iter().flatten().map(|(x, _)| *x).fold(1.0, f64::max) + 0.2;
        let y_min = all
            .iter()
            .flatten()
            .map(|(_, ms)| *ms)
            .fold(f64::INFINITY, f64::min)
            .min(1.0)
            * 0.8;
        let y_max = all.iter().flatten().map(|(_, ms)| *ms).fold(1.0, f64::max) * 1.5;
        let mut chart = theme::log_latency_chart(
            &plot,
            None,
            x_max,
            (y_min, y_max),
            &theme::LogAxes {
                x_desc: "share of successful requests at or below the latency (the last point: max)",
                y_desc: "latency (ms, log scale)",
                x_tick: &|nines| percentile_label(*nines),
                x_ticks: 8,
            },
        )?;
        for ((build, _, stroke), points) in lines.iter().zip(all) {
            theme::draw_line(&mut chart, points, build_color(*build), *stroke, true)?;
        }
        Ok(())
    }
}

/// `0 %`, `90 %`, `99.9 %` for a count of nines; other positions get no label.
fn percentile_label(nines: f64) -> String {
    let rounded = nines.round();
    if (nines - rounded).abs() > 0.01 {
        return String::new();
    }
    match rounded as i32 {
        0 => "0 %".to_owned(),
        1 => "90 %".to_owned(),
        2 => "99 %".to_owned(),
        count => format!("99.{} %", "9".repeat((count - 2).max(0) as usize)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_nine_is_one_step_along_the_axis_and_the_maximum_half_a_step_further() {
        let points = positions(&[
            (0.5, 1.0),
            (0.9, 2.0),
            (0.99, 4.0),
            (0.999, 9.0),
            (1.0, 20.0),
        ]);
        let xs: Vec<f64> = points
            .iter()
            .map(|(x, _)| (x * 1000.0).round() / 1000.0)
            .collect();
        assert_eq!(xs, vec![0.301, 1.0, 2.0, 3.0, 3.5]);
        assert_eq!(percentile_label(3.0), "99.9 %");
        assert_eq!(percentile_label(1.0), "90 %");
        assert_eq!(percentile_label(1.5), "");
    }
}
