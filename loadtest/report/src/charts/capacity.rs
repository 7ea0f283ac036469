//! The hockey stick: latency against throughput under open-loop load, per build, with the
//! SLO as a line and the knee — the last step that met it, the build's capacity — marked.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Plot, axis_max};
use crate::theme::{self, Area, DrawResult, LegendEntry, Mark, Stroke, build_color, build_label};
use loadtest_results::component::Build;
use loadtest_results::experiments::capacity::Capacity;

/// Every build's capacity ramps.
pub(crate) struct HockeyStick<'a> {
    pub builds: Vec<(Build, &'a Capacity)>,
    pub slo_ms: f64,
}

/// One step as a point: successful requests per second, p50 and p99 in ms.
struct Point {
    ok_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    knee: bool,
}

fn points(capacity: &Capacity) -> Vec<Vec<Point>> {
    capacity
        .ramps
        .iter()
        .map(|ramp| {
            // Refining steps run after the first miss, between lower rates: drawn in the
            // order of their rates, not of their runs.
            let mut steps: Vec<_> = ramp.steps.iter().collect();
            steps.sort_by(|a, b| a.offered_per_s.total_cmp(&b.offered_per_s));
            steps
                .into_iter()
                .filter_map(|step| {
                    // A step without a success has no latency to draw; the table says so.
                    Some(Point {
                        ok_per_s: step.ok_per_s,
                        p50_ms: step.p50_us? as f64 / 1000.0,
                        p99_ms: step.p99_us? as f64 / 1000.0,
                        knee: ramp.sustained_per_s == Some(step.offered_per_s),
                    })
                })
                .collect()
        })
        .collect()
}

impl Plot for HockeyStick<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &Area<DB>) -> DrawResult<DB> {
        let (strip, plot) = area.split_vertically(56);
        let mut entries = Vec::new();
        for (build, _) in &self.builds {
            for (kind, stroke) in [("p99", Stroke::Solid), ("p50", Stroke::Dotted)] {
                entries.push(LegendEntry {
                    label: format!("{} {kind}", build_label(*build)),
                    mark: Mark::Line(build_color(*build), stroke),
                });
            }
        }
        entries.push(LegendEntry {
            label: format!("SLO: p99 ≤ {:.0} ms", self.slo_ms),
            mark: Mark::Line(theme::FAULT, Stroke::Dashed),
        });
        entries.push(LegendEntry {
            label: "knee: highest rate within the SLO".into(),
            mark: Mark::Outline(theme::TEXT),
        });
        theme::legend(&strip, &entries)?;
        let all: Vec<(Build, Vec<Vec<Point>>)> = self
            .builds
            .iter()
            .map(|(build, capacity)| (*build, points(capacity)))
            .collect();
        let every = || all.iter().flat_map(|(_, ramps)| ramps).flatten();
        if every().next().is_none() {
            return theme::empty_note(&plot, "no step had a successful request");
        }
        let x_max = axis_max(every().map(|point| point.ok_per_s), 1.0, 1.1);
        let y_min = every()
            .map(|point| point.p50_ms)
            .fold(self.slo_ms, f64::min)
            .max(0.01)
            * 0.7;
        let y_max = axis_max(every().map(|point| point.p99_ms), self.slo_ms, 1.6);
        let mut chart = theme::log_latency_chart(
            &plot,
            None,
            x_max,
            (y_min, y_max),
            &theme::LogAxes {
                x_desc: "successful requests per second (open loop, offered rate rising)",
                y_desc: "latency from due time (ms, log scale)",
                x_tick: &|rate| theme::tick(*rate, x_max),
                x_ticks: 10,
            },
        )?;
        chart.draw_series(DashedLineSeries::new(
            [(0.0, self.slo_ms), (x_max, self.slo_ms)],
            10,
            6,
            theme::line(theme::FAULT, 2),
        ))?;
        for (build, ramps) in &all {
            let color = build_color(*build);
            for ramp in ramps {
                let p99 = ramp.iter().map(|p| (p.ok_per_s, p.p99_ms)).collect();
                let p50 = ramp.iter().map(|p| (p.ok_per_s, p.p50_ms)).collect();
                theme::draw_line(&mut chart, p99, color, Stroke::Solid, true)?;
                theme::draw_line(&mut chart, p50, color, Stroke::Dotted, false)?;
                let style = theme::colored(theme::label_style(), color)
                    .pos(Pos::new(HPos::Center, VPos::Bottom));
                for knee in ramp.iter().filter(|point| point.knee) {
                    chart.draw_series([EmptyElement::at((knee.ok_per_s, knee.p99_ms))
                        + Circle::new((0, 0), 13, theme::TEXT.stroke_width(3))
                        + Text::new(
                            format!("{:.0} req/s", knee.ok_per_s),
                            (0, -20),
                            style.clone(),
                        )])?;
                }
            }
        }
        Ok(())
    }
}
