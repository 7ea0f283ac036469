//! Deploys under load: the failed requests of every slice with each deploy's span (start to
//! ready) shaded by strategy, one row per build; and the time to ready of every component
//! by strategy.

use std::collections::BTreeMap;

use plotters::prelude::*;
use plotters::style::FontTransform;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::Plot;
use super::bars::{self, Axes, Bar, Fill, Group};
use crate::theme::{
    self, Area, DrawResult, LegendEntry, Mark, build_color, build_label, empty_note,
};
use loadtest_results::component::Build;
use loadtest_results::experiments::deploy::Deploys;

pub(crate) struct DeployTimeline<'a> {
    pub rows: Vec<(Build, &'a Deploys)>,
}

pub(crate) struct DeployTimes<'a> {
    pub rows: Vec<(Build, &'a Deploys)>,
}

/// The strategies in the order the lab runs them, with how the charts draw each.
const STRATEGIES: [(&str, RGBColor, Fill); 3] = [
    ("recreate", theme::FAULT, Fill::Solid),
    ("rolling", theme::ROLLING, Fill::Light),
    ("rollback", theme::ROLLBACK, Fill::Outline),
];

fn strategy_color(strategy: &str) -> RGBColor {
    STRATEGIES
        .iter()
        .find(|(name, _, _)| *name == strategy)
        .map_or(theme::NEUTRAL, |(_, color, _)| *color)
}

impl Plot for DeployTimeline<'_> {
    fn size(&self) -> (u32, u32) {
        (theme::WIDTH, 170 + 380 * self.rows.len() as u32)
    }

    fn draw<DB: DrawingBackend>(&self, area: &Area<DB>) -> DrawResult<DB> {
        let (strip, plots) = area.split_vertically(56);
        let mut entries: Vec<LegendEntry> = self
            .rows
            .iter()
            .map(|(build, _)| LegendEntry {
                label: format!("failed requests, {}", build_label(*build)),
                mark: Mark::Fill(build_color(*build), 1.0),
            })
            .collect();
        for (strategy, color, _) in STRATEGIES {
            entries.push(LegendEntry {
                label: format!("{strategy} (start → ready)"),
                mark: Mark::Fill(color, 0.2),
            });
        }
        entries.push(LegendEntry {
            label: "storm of rolling deploys".into(),
            mark: Mark::Fill(theme::NEUTRAL, 0.2),
        });
        theme::legend(&strip, &entries)?;

        // Failed requests (failures and maybe-applied) per slice, summed over journeys.
        let failed: Vec<BTreeMap<u64, usize>> = self
            .rows
            .iter()
            .map(|(_, deploys)| {
                let mut per_slice = BTreeMap::new();
                for slice in &deploys.timeline.slices {
                    *per_slice.entry(slice.t_ms).or_insert(0) += slice.fail + slice.maybe_applied;
                }
                per_slice
            })
            .collect();
        let x_max = self
            .rows
            .iter()
            .flat_map(|(_, deploys)| {
                let timeline_end = deploys
                    .timeline
                    .slices
                    .last()
                    .map_or(0, |slice| slice.t_ms + deploys.timeline.slice_ms);
                [
                    timeline_end,
                    deploys.storm.started_at_ms + deploys.storm.duration_ms,
                ]
            })
            .fold(1_000, u64::max) as f64
            / 1000.0;
        let most = failed
            .iter()
            .flat_map(|per_slice| per_slice.values().copied())
            .max()
            .unwrap_or(0);
        let y_max = (most as f64 * 1.25).max(4.0);
        let panels = plots.split_evenly((self.rows.len().max(1), 1));
        for ((panel, (build, deploys)), per_slice) in panels.iter().zip(&self.rows).zip(&failed) {
            let slice_s = deploys.timeline.slice_ms.max(1) as f64 / 1000.0;
            let mut chart = ChartBuilder::on(panel)
                .caption(
                    format!("{} — failed requests per slice", build_label(*build)),
                    theme::panel_style(),
                )
                .margin(12)
                .margin_right(30)
                .x_label_area_size(60)
                .y_label_area_size(90)
                .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
            let mut mesh = chart.configure_mesh();
            theme::mesh(&mut mesh);
            mesh.x_desc("seconds since the load started")
                .y_desc(format!("failed per {} ms", deploys.timeline.slice_ms))
                .x_label_formatter(&|seconds| theme::tick(*seconds, x_max))
                .y_label_formatter(&|count| theme::tick(*count, y_max))
                .draw()?;
            let storm = &deploys.storm;
            if storm.deploys > 0 {
                let from = storm.started_at_ms as f64 / 1000.0;
                let to = from + storm.duration_ms as f64 / 1000.0;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(from, 0.0), (to, y_max)],
                    theme::NEUTRAL.mix(0.16).filled(),
                )))?;
                chart.draw_series(std::iter::once(
                    EmptyElement::at(((from + to) / 2.0, y_max))
                        + Text::new(
                            format!("storm: {} rolling deploys", storm.deploys),
                            (0, 8),
                            theme::small_style().pos(Pos::new(HPos::Center, VPos::Top)),
                        ),
                ))?;
            }
            let vertical = theme::small_style()
                .transform(FontTransform::Rotate270)
                .pos(Pos::new(HPos::Right, VPos::Center));
            for deploy in &deploys.each {
                let color = strategy_color(&deploy.strategy);
                let start = deploy.started_at_ms as f64 / 1000.0;
                let ready = start + deploy.time_to_ready_ms as f64 / 1000.0;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(start, 0.0), (ready, y_max)],
                    color.mix(0.2).filled(),
                )))?;
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(start, 0.0), (start, y_max)],
                    color.stroke_width(2),
                )))?;
                chart.draw_series(std::iter::once(
                    EmptyElement::at((start, y_max))
                        + Text::new(deploy.component.clone(), (8, 10), vertical.clone()),
                ))?;
            }
            let color = build_color(*build);
            chart.draw_series(per_slice.iter().filter(|(_, count)| **count > 0).map(
                |(t_ms, count)| {
                    let x = *t_ms as f64 / 1000.0;
                    Rectangle::new([(x, 0.0), (x + slice_s, *count as f64)], color.filled())
                },
            ))?;
            if most == 0 {
                let plotting = chart.plotting_area().strip_coord_spec();
                empty_note(&plotting, "no request failed during any deploy")?;
            }
        }
        Ok(())
    }
}

impl Plot for DeployTimes<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &Area<DB>) -> DrawResult<DB> {
        let (strip, plot) = area.split_vertically(56);
        let mut entries: Vec<LegendEntry> = self
            .rows
            .iter()
            .map(|(build, _)| LegendEntry {
                label: build_label(*build).to_owned(),
                mark: Mark::Fill(build_color(*build), 1.0),
            })
            .collect();
        for (strategy, what) in [
            ("recreate", Mark::Fill(theme::NEUTRAL, 1.0)),
            ("rolling", Mark::Fill(theme::NEUTRAL, 0.45)),
            (
                "rollback of a release that never gets ready",
                Mark::Outline(theme::NEUTRAL),
            ),
        ] {
            entries.push(LegendEntry {
                label: strategy.to_owned(),
                mark: what,
            });
        }
        theme::legend(&strip, &entries)?;
        let mut groups = Vec::new();
        for (build, deploys) in &self.rows {
            let mut components: Vec<&str> = Vec::new();
            for deploy in &deploys.each {
                if !components.contains(&deploy.component.as_str()) {
                    components.push(&deploy.component);
                }
            }
            for component in components {
                let bars = STRATEGIES
                    .iter()
                    .filter_map(|(strategy, _, fill)| {
                        let deploy = deploys.each.iter().find(|deploy| {
                            deploy.component == component
                                && deploy.strategy == *strategy
                                && deploy
                                    .error
                                    .as_deref()
                                    .is_none_or(|error| !error.starts_with("not measured"))
                        })?;
                        Some(Bar {
                            value: deploy.time_to_ready_ms as f64,
                            range: None,
                            color: build_color(*build),
                            fill: *fill,
                        })
                    })
                    .collect();
                groups.push(Group {
                    label: component.to_owned(),
                    bars,
                });
            }
        }
        bars::grouped_bars(
            &plot,
            &groups,
            &Axes {
                caption: None,
                x_desc: "the component deployed",
                y_desc: "time to ready (ms)",
                values: false,
            },
        )
    }
}
