//! Throughput against load, with the spread of the repeats, and latency percentiles raw
//! against coordinated-omission-corrected. [`Throughput`] also overlays two runs for
//! `shoplab diff`.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Plot, axis_max};
use crate::figures::LevelFigures;
use crate::theme::{self, Area, DrawResult, LegendEntry, Mark, Stroke, build_color, build_label};
use loadtest_results::component::Build;

/// One run's throughput levels per build.
#[derive(Clone, Debug)]
pub(crate) struct Run {
    /// Appended to the build's name in the legend (`run A`); none for a single run.
    pub label: Option<String>,
    pub stroke: Stroke,
    pub builds: Vec<(Build, Vec<LevelFigures>)>,
}

/// Successful requests per second against users: medians as the line, the 95 % interval of
/// the repeats (Student t of the mean) as a band and whiskers; one run draws neither.
pub(crate) struct Throughput {
    pub runs: Vec<Run>,
    pub repeats: usize,
}

/// Latency percentiles against users, raw and corrected, one panel per percentile.
pub(crate) struct Latency {
    pub builds: Vec<(Build, Vec<LevelFigures>)>,
}

impl Plot for Throughput {
    fn draw<DB: DrawingBackend>(&self, area: &Area<DB>) -> DrawResult<DB> {
        let (strip, plot) = area.split_vertically(56);
        let mut entries = Vec::new();
        for run in &self.runs {
            for (build, _) in &run.builds {
                entries.push(LegendEntry {
                    label: named(*build, run.label.as_deref(), "median"),
                    mark: Mark::Line(build_color(*build), run.stroke),
                });
            }
        }
        if self.repeats > 1 {
            entries.push(LegendEntry {
                label: format!("95 % CI of the mean of {} repeats", self.repeats),
                mark: Mark::Fill(theme::NEUTRAL, 0.25),
            });
        }
        let limited = self
            .runs
            .iter()
            .flat_map(|run| &run.builds)
            .flat_map(|(_, levels)| levels)
            .any(|level| level.generator_limited);
        if limited {
            entries.push(LegendEntry {
                label: "generator-limited level".into(),
                mark: Mark::Outline(theme::FAULT),
            });
        }
        theme::legend(&strip, &entries)?;

        let all = || {
            self.runs
                .iter()
                .flat_map(|run| &run.builds)
                .flat_map(|(_, levels)| levels)
        };
        let x_max = axis_max(all().map(|level| level.users as f64), 1.0, 1.08);
        let y_max = axis_max(
            all().map(|level| interval(level).map_or(level.requests_per_s.max, |(_, high)| high)),
            1.0,
            1.12,
        );
        let mut chart = ChartBuilder::on(&plot)
            .margin(20)
            .margin_right(40)
            .x_label_area_size(70)
            .y_label_area_size(110)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
        let mut mesh = chart.configure_mesh();
        theme::mesh(&mut mesh);
        mesh.x_desc("concurrent users (closed loop: each waits for its answer)")
            .y_desc("successful requests per second")
            .x_label_formatter(&|users| theme::tick(*users, x_max))
            .y_label_formatter(&|rate| theme::tick(*rate, y_max))
            .draw()?;
        for run in &self.runs {
            for (build, levels) in &run.builds {
                let color = build_color(*build);
                let spread = levels.iter().all(|level| interval(level).is_some());
                if spread && levels.len() > 1 {
                    let band: Vec<(f64, f64)> = levels
                        .iter()
                        .filter_map(|level| Some((level.users as f64, interval(level)?.0)))
                        .chain(
                            levels
                                .iter()
                                .rev()
                                .filter_map(|level| Some((level.users as f64, interval(level)?.1))),
                        )
                        .collect();
                    chart.draw_series(std::iter::once(Polygon::new(band, color.mix(0.15))))?;
                }
                for level in levels.iter().filter(|_| spread) {
                    let x = level.users as f64;
                    let Some((low, high)) = interval(level) else {
                        continue;
                    };
                    let cap = x_max / 150.0;
                    for path in [
                        vec![(x, low), (x, high)],
                        vec![(x - cap, low), (x + cap, low)],
                        vec![(x - cap, high), (x + cap, high)],
                    ] {
                        chart.draw_series(std::iter::once(PathElement::new(
                            path,
                            color.stroke_width(2),
                        )))?;
                    }
                }
                let medians = levels
                    .iter()
                    .map(|level| (level.users as f64, level.requests_per_s.median))
                    .collect();
                theme::draw_line(&mut chart, medians, color, run.stroke, true)?;
                // One run: each median's value, for a reader who wants the number.
                if self.runs.len() == 1 {
                    let style = theme::colored(theme::label_style(), color)
                        .pos(Pos::new(HPos::Center, VPos::Bottom));
                    chart.draw_series(levels.iter().map(|level| {
                        let median = level.requests_per_s.median;
                        EmptyElement::at((level.users as f64, median))
                            + Text::new(format!("{median:.0}"), (0, -14), style.clone())
                    }))?;
                }
                chart.draw_series(levels.iter().filter(|level| level.generator_limited).map(
                    |level| {
                        Circle::new(
                            (level.users as f64, level.requests_per_s.median),
                            11,
                            theme::FAULT.stroke_width(3),
                        )
                    },
                ))?;
            }
        }
        Ok(())
    }
}

impl Plot for Latency {
    fn draw<DB: DrawingBackend>(&self, area: &Area<DB>) -> DrawResult<DB> {
        let (strip, plots) = area.split_vertically(56);
        let mut entries = Vec::new();
        for (build, _) in &self.builds {
            for (kind, stroke) in [("raw", Stroke::Solid), ("CO-corrected", Stroke::Dashed)] {
                entries.push(LegendEntry {
                    label: format!("{} {kind}", build_label(*build)),
                    mark: Mark::Line(build_color(*build), stroke),
                });
            }
        }
        theme::legend(&strip, &entries)?;
        let panels = plots.split_evenly((1, 2));
        // p50 and p99: the body and the tail; p95 is in the tables.
        for (panel, percentile) in panels.iter().zip([0, 2]) {
            let x_max = axis_max(
                self.builds
                    .iter()
                    .flat_map(|(_, levels)| levels)
                    .map(|level| level.users as f64),
                1.0,
                1.08,
            );
            // A log axis: the corrected tail can be ten times the raw one, and on a linear
            // axis the raw line would lie flat on the floor. Zero (no success) is left out.
            let y_min = self
                .builds
                .iter()
                .flat_map(|(_, levels)| levels)
                .flat_map(|level| [level.raw_ms[percentile], level.corrected_ms[percentile]])
                .filter(|ms| *ms > 0.0)
                .fold(f64::INFINITY, f64::min)
                .min(1.0)
                * 0.7;
            let y_max = axis_max(
                self.builds
                    .iter()
                    .flat_map(|(_, levels)| levels)
                    .flat_map(|level| [level.raw_ms[percentile], level.corrected_ms[percentile]]),
                0.1,
                1.12,
            );
            let caption = match percentile {
                0 => "p50: the typical request",
                _ => "p99: 1 request in 100 is slower",
            };
            let mut chart = theme::log_latency_chart(
                panel,
                Some(caption),
                x_max,
                (y_min, y_max),
                &theme::LogAxes {
                    x_desc: "concurrent users",
                    y_desc: "latency of successes (ms, log, median of repeats)",
                    x_tick: &|users| theme::tick(*users, x_max),
                    x_ticks: 10,
                },
            )?;
            for (build, levels) in &self.builds {
                let color = build_color(*build);
                let raw = levels
                    .iter()
                    .filter(|level| level.raw_ms[percentile] > 0.0)
                    .map(|level| (level.users as f64, level.raw_ms[percentile]))
                    .collect();
                let corrected = levels
                    .iter()
                    .filter(|level| level.corrected_ms[percentile] > 0.0)
                    .map(|level| (level.users as f64, level.corrected_ms[percentile]))
                    .collect();
                theme::draw_line(&mut chart, raw, color, Stroke::Solid, true)?;
                theme::draw_line(&mut chart, corrected, color, Stroke::Dashed, true)?;
            }
        }
        Ok(())
    }
}

/// A level's 95 % interval of successful requests per second, clipped at zero; `None` for
/// one run.
fn interval(level: &LevelFigures) -> Option<(f64, f64)> {
    level
        .requests_per_s
        .estimate
        .interval()
        .map(|(low, high)| (low.max(0.0), high))
}

/// `monolith, run A — median`.
fn named(build: Build, run: Option<&str>, what: &str) -> String {
    match run {
        Some(run) => format!("{} ({run}) — {what}", build_label(build)),
        None => format!("{} — {what}", build_label(build)),
    }
}
