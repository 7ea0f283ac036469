//! What each build costs: CPU seconds per 1 000 requests and peak memory per load level
//! (the cost model), requests per second before and after one more replica (scaling), and
//! the parts of one service boundary (the hop tax).

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::Plot;
use super::bars::{self, Axes, Bar, Fill, Group};
use crate::figures::{LevelFigures, ProcessFigures, Spread};
use crate::theme::{self, Area, DrawResult, LegendEntry, Mark, build_color, build_label};
use loadtest_results::component::Build;
use loadtest_results::experiments::scale::{Half, Scale};

/// CPU per 1 000 requests and peak RSS, per level and build.
pub(crate) struct Resources {
    pub builds: Vec<(Build, Vec<LevelFigures>)>,
}

/// CPU per 1 000 requests and resident memory of each process, at one load level.
pub(crate) struct ProcessBars {
    pub users: usize,
    pub builds: Vec<(Build, Vec<ProcessFigures>)>,
}

/// Requests per second (and per CPU second) with one replica and with one more.
pub(crate) struct ScaleBars<'a> {
    pub builds: Vec<(Build, &'a Scale)>,
}

/// Medians of sequential requests, in microseconds: the calibration's hop ladder.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HopTax {
    pub null_us: u64,
    pub monolith_us: u64,
    pub service_us: u64,
    pub gateway_us: u64,
}

fn build_legend(builds: impl IntoIterator<Item = Build>) -> Vec<LegendEntry> {
    builds
        .into_iter()
        .map(|build| LegendEntry {
            label: build_label(build).to_owned(),
            mark: Mark::Fill(build_color(build), 1.0),
        })
        .collect()
}

impl Plot for Resources {
    fn draw<DB: DrawingBackend>(&self, area: &Area<DB>) -> DrawResult<DB> {
        let (strip, plots) = area.split_vertically(56);
        let mut entries = build_legend(self.builds.iter().map(|(build, _)| *build));
        // Whiskers, and their legend entry, only where there were repeats to draw them from:
        // one run has no spread, and a legend must not promise what the chart does not show.
        let repeats = self
            .builds
            .iter()
            .flat_map(|(_, levels)| levels)
            .flat_map(|level| [&level.cpu_per_1k, &level.peak_rss_mib])
            .flatten()
            .map(|spread| spread.samples)
            .max()
            .unwrap_or(1);
        if repeats > 1 {
            entries.push(LegendEntry {
                label: format!("whiskers: 95 % CI of the mean of {repeats} repeats (Student t)"),
                mark: Mark::Line(theme::TEXT, theme::Stroke::Solid),
            });
        } else {
            entries.push(LegendEntry {
                label: "one run: no spread".into(),
                mark: Mark::Fill(theme::NEUTRAL, 0.0),
            });
        }
        theme::legend(&strip, &entries)?;
        let panels = plots.split_evenly((1, 2));
        let mut users: Vec<usize> = self
            .builds
            .iter()
            .flat_map(|(_, levels)| levels.iter().map(|level| level.users))
            .collect();
        users.sort_unstable();
        users.dedup();
        let groups = |pick: &dyn Fn(&LevelFigures) -> Option<Spread>| -> Vec<Group> {
            users
                .iter()
                .map(|users| Group {
                    label: format!("{users} users"),
                    bars: self
                        .builds
                        .iter()
                        .filter_map(|(build, levels)| {
                            let level = levels.iter().find(|level| level.users == *users)?;
                            let spread = pick(level)?;
                            Some(Bar {
                                value: spread.median,
                                range: spread
                                    .estimate
                                    .interval()
                                    .map(|(low, high)| (low.max(0.0), high)),
                                color: build_color(*build),
                                fill: Fill::Solid,
                            })
                        })
                        .collect(),
                })
                .collect()
        };
        bars::grouped_bars(
            &panels[0],
            &groups(&|level| level.cpu_per_1k.clone()),
            &Axes {
                caption: Some("CPU per 1 000 successful requests (all the shop's processes)"),
                x_desc: "load level",
                y_desc: "CPU seconds",
                values: true,
            },
        )?;
        bars::grouped_bars(
            &panels[1],
            &groups(&|level| level.peak_rss_mib.clone()),
            &Axes {
                caption: Some("peak memory (summed RSS of the shop's processes)"),
                x_desc: "load level",
                y_desc: "MiB",
                values: true,
            },
        )
    }
}

impl Plot for ProcessBars {
    fn size(&self) -> (u32, u32) {
        (theme::WIDTH, 1100)
    }

    fn draw<DB: DrawingBackend>(&self, area: &Area<DB>) -> DrawResult<DB> {
        let (strip, plots) = area.split_vertically(56);
        theme::legend(
            &strip,
            &build_legend(self.builds.iter().map(|(build, _)| *build)),
        )?;
        // One panel above the other: a build of nine processes needs the full width for its
        // names.
        let panels = plots.split_evenly((2, 1));
        let groups = |pick: &dyn Fn(&ProcessFigures) -> f64| -> Vec<Group> {
            self.builds
                .iter()
                .flat_map(|(build, processes)| {
                    processes.iter().map(move |process| Group {
                        label: process.process.clone(),
                        bars: vec![Bar {
                            value: pick(process),
                            range: None,
                            color: build_color(*build),
                            fill: Fill::Solid,
                        }],
                    })
                })
                .collect()
        };
        let cpu_caption = format!(
            "CPU per 1 000 successful requests, per process, at {} users",
            self.users
        );
        bars::grouped_bars(
            &panels[0],
            &groups(&|process| process.cpu_per_1k),
            &Axes {
                caption: Some(&cpu_caption),
                x_desc: "process",
                y_desc: "CPU seconds",
                values: true,
            },
        )?;
        let memory_caption = format!(
            "resident memory at the level's end, at {} users",
            self.users
        );
        bars::grouped_bars(
            &panels[1],
            &groups(&|process| process.rss_mib),
            &Axes {
                caption: Some(&memory_caption),
                x_desc: "process",
                y_desc: "MiB",
                values: true,
            },
        )
    }
}

impl Plot for ScaleBars<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &Area<DB>) -> DrawResult<DB> {
        let (strip, plots) = area.split_vertically(56);
        let mut entries = build_legend(self.builds.iter().map(|(build, _)| *build));
        entries.push(LegendEntry {
            label: "light: one replica · solid: one more replica".into(),
            mark: Mark::Fill(theme::NEUTRAL, 0.45),
        });
        theme::legend(&strip, &entries)?;
        let panels = plots.split_evenly((1, 2));
        let groups = |pick: &dyn Fn(&Half) -> Option<f64>| -> Vec<Group> {
            self.builds
                .iter()
                .map(|(build, scale)| Group {
                    label: format!("{} (+1 {})", build_label(*build), scale.component),
                    bars: [(&scale.before, Fill::Light), (&scale.after, Fill::Solid)]
                        .into_iter()
                        .filter_map(|(half, fill)| {
                            Some(Bar {
                                value: pick(half)?,
                                range: None,
                                color: build_color(*build),
                                fill,
                            })
                        })
                        .collect(),
                })
                .collect()
        };
        bars::grouped_bars(
            &panels[0],
            &groups(&|half| Some(half.requests_per_s)),
            &Axes {
                caption: Some("throughput"),
                x_desc: "build (the component that got a replica)",
                y_desc: "requests per second",
                values: true,
            },
        )?;
        let efficiency = groups(&|half| half.requests_per_sut_cpu_s);
        let measured = efficiency.iter().any(|group| !group.bars.is_empty());
        bars::grouped_bars(
            &panels[1],
            &efficiency,
            &Axes {
                caption: Some(if measured {
                    "efficiency"
                } else {
                    "efficiency: not measured on this target"
                }),
                x_desc: "build (the component that got a replica)",
                y_desc: "requests per CPU second",
                values: true,
            },
        )
    }
}

/// The hop tax's parts, each a share of a stacked bar.
const LOOPBACK: RGBColor = RGBColor(160, 160, 160);

impl Plot for HopTax {
    fn size(&self) -> (u32, u32) {
        (theme::WIDTH, 700)
    }

    fn draw<DB: DrawingBackend>(&self, area: &Area<DB>) -> DrawResult<DB> {
        let (strip, plot) = area.split_vertically(56);
        theme::legend(
            &strip,
            &[
                entry("loopback HTTP round trip", LOOPBACK),
                entry("the shop's work", theme::MONOLITH),
                entry("one service boundary (gateway → service hop)", theme::MICRO),
            ],
        )?;
        let null = self.null_us as f64;
        let work = (self.monolith_us as f64 - null).max(0.0);
        let service_work = (self.service_us as f64 - null).max(0.0);
        let hop = (self.gateway_us as f64 - self.service_us as f64).max(0.0);
        // Top to bottom; each row is its parts from left to right.
        let rows: [(&str, Vec<(f64, RGBColor)>); 4] = [
            ("an endpoint that does nothing", vec![(null, LOOPBACK)]),
            (
                "monolith: GET /api/products",
                vec![(null, LOOPBACK), (work, theme::MONOLITH)],
            ),
            (
                "catalog service, asked directly",
                vec![(null, LOOPBACK), (service_work, theme::MONOLITH)],
            ),
            (
                "microservices: through the gateway",
                vec![
                    (null, LOOPBACK),
                    (service_work, theme::MONOLITH),
                    (hop, theme::MICRO),
                ],
            ),
        ];
        let totals: Vec<f64> = rows
            .iter()
            .map(|(_, parts)| parts.iter().map(|(us, _)| us).sum())
            .collect();
        let x_max = totals.iter().copied().fold(1.0, f64::max) * 1.2;
        let mut chart = ChartBuilder::on(&plot)
            .margin(16)
            .margin_right(40)
            .x_label_area_size(70)
            .y_label_area_size(390)
            .build_cartesian_2d(0f64..x_max, 0f64..rows.len() as f64)?;
        let mut mesh = chart.configure_mesh();
        theme::mesh(&mut mesh);
        mesh.disable_y_mesh()
            .y_labels(0)
            .x_desc("median time of one request, sent one at a time (µs)")
            .x_label_formatter(&|us| theme::tick(*us, x_max))
            .draw()?;
        let label = theme::label_style().pos(Pos::new(HPos::Right, VPos::Center));
        let inside = theme::label_style().pos(Pos::new(HPos::Center, VPos::Center));
        let after = theme::label_style().pos(Pos::new(HPos::Left, VPos::Center));
        for (index, ((name, parts), total)) in rows.iter().zip(&totals).enumerate() {
            let middle = rows.len() as f64 - index as f64 - 0.5;
            chart.draw_series(std::iter::once(
                EmptyElement::at((0.0, middle))
                    + Text::new(name.to_string(), (-14, 0), label.clone()),
            ))?;
            let mut left = 0.0;
            for (us, color) in parts {
                let corners = [(left, middle - 0.3), (left + us, middle + 0.3)];
                chart.draw_series(std::iter::once(Rectangle::new(corners, color.filled())))?;
                if *us / x_max > 0.07 {
                    let ink = if *color == LOOPBACK {
                        theme::TEXT
                    } else {
                        WHITE
                    };
                    chart.draw_series(std::iter::once(
                        EmptyElement::at((left + us / 2.0, middle))
                            + Text::new(
                                format!("{us:.0} µs"),
                                (0, 0),
                                theme::colored(inside.clone(), ink),
                            ),
                    ))?;
                }
                left += us;
            }
            chart.draw_series(std::iter::once(
                EmptyElement::at((*total, middle))
                    + Text::new(format!("{total:.0} µs"), (10, 0), after.clone()),
            ))?;
        }
        Ok(())
    }
}

fn entry(label: &str, color: RGBColor) -> LegendEntry {
    LegendEntry {
        label: label.to_owned(),
        mark: Mark::Fill(color, 1.0),
    }
}
