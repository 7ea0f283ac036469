//! One fault cell on both builds: per journey, the success rate and the p99 of every slice
//! of the timeline, the fault window shaded and the heal marked. The monolith's row sits
//! above the microservices' with the same axes, so the two read as one picture.

use std::ops::Range;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::Plot;
use crate::figures::{first_line, slice_middle_s, success_rate};
use crate::theme::{
    self, Area, DrawResult, LegendEntry, Mark, Stroke, build_color, build_label, journey_stroke,
};
use loadtest_results::analysis::{Slice, Timeline};
use loadtest_results::component::Build;
use loadtest_results::experiments::faults::Cell;

pub(crate) struct FaultTimeline<'a> {
    /// One row per build, in the order given.
    pub rows: Vec<FaultRow<'a>>,
    /// Every journey of the run, by name: the index decides the line style.
    pub journeys: Vec<String>,
    /// The quiet window before the fault and the window after the heal, from the profile.
    pub before_ms: u64,
    pub after_ms: u64,
}

pub(crate) struct FaultRow<'a> {
    pub build: Build,
    pub cell: Option<&'a Cell>,
    pub timeline: Option<&'a Timeline>,
}

#[derive(Clone, Copy, PartialEq)]
enum Measure {
    SuccessRate,
    P99,
}

impl FaultRow<'_> {
    /// The slices around the cell's fault, when it was applied.
    fn slices(&self, before_ms: u64, after_ms: u64) -> Option<(&Cell, &Timeline, Vec<&Slice>)> {
        let (cell, timeline) = (self.cell?, self.timeline?);
        if !cell.applied {
            return None;
        }
        let from = cell.injected_at_ms.saturating_sub(before_ms);
        let to = cell.healed_at_ms + after_ms;
        let slices = timeline
            .slices
            .iter()
            .filter(|slice| slice.t_ms >= from && slice.t_ms < to)
            .collect();
        Some((cell, timeline, slices))
    }
}

impl Plot for FaultTimeline<'_> {
    fn size(&self) -> (u32, u32) {
        (theme::WIDTH, 170 + 420 * self.rows.len() as u32)
    }

    fn draw<DB: DrawingBackend>(&self, area: &Area<DB>) -> DrawResult<DB> {
        let (strip, plots) = area.split_vertically(56);
        let mut entries: Vec<LegendEntry> = self
            .journeys
            .iter()
            .enumerate()
            .map(|(index, journey)| LegendEntry {
                label: format!("{journey} journey"),
                mark: Mark::Line(theme::NEUTRAL, journey_stroke(index)),
            })
            .collect();
        entries.push(LegendEntry {
            label: "fault in force".into(),
            mark: Mark::Fill(theme::FAULT, 0.15),
        });
        entries.push(LegendEntry {
            label: "healed".into(),
            mark: Mark::Line(theme::HEAL, Stroke::Dashed),
        });
        theme::legend(&strip, &entries)?;

        let windows: Vec<_> = self
            .rows
            .iter()
            .filter_map(|row| row.slices(self.before_ms, self.after_ms))
            .collect();
        let heal_s = |cell: &Cell| (cell.healed_at_ms - cell.injected_at_ms) as f64 / 1000.0;
        let x_min = -(self.before_ms as f64) / 1000.0;
        let x_max = windows
            .iter()
            .map(|(cell, _, _)| heal_s(cell) + self.after_ms as f64 / 1000.0)
            .fold(1.0, f64::max);
        let p99_max = windows
            .iter()
            .flat_map(|(_, _, slices)| {
                slices
                    .iter()
                    .filter(|slice| slice.ok > 0)
                    .map(|slice| slice.p99_us as f64 / 1000.0)
            })
            .fold(1.0, f64::max)
            * 1.1;

        let cells = plots.split_evenly((self.rows.len().max(1), 2));
        for (index, row) in self.rows.iter().enumerate() {
            for (column, measure) in [Measure::SuccessRate, Measure::P99].into_iter().enumerate() {
                let panel = &cells[index * 2 + column];
                let y_max = match measure {
                    Measure::SuccessRate => 105.0,
                    Measure::P99 => p99_max,
                };
                self.panel(panel, row, measure, x_min..x_max, y_max)?;
            }
        }
        Ok(())
    }
}

impl FaultTimeline<'_> {
    fn panel<DB: DrawingBackend>(
        &self,
        panel: &Area<DB>,
        row: &FaultRow<'_>,
        measure: Measure,
        x_range: Range<f64>,
        y_max: f64,
    ) -> DrawResult<DB> {
        let caption = format!(
            "{} — {}",
            build_label(row.build),
            match measure {
                Measure::SuccessRate => "success rate",
                Measure::P99 => "p99 latency",
            }
        );
        let Some((cell, timeline, slices)) = row.slices(self.before_ms, self.after_ms) else {
            return not_applied(panel, &caption, row);
        };
        let color = build_color(row.build);
        let x_span = x_range.end - x_range.start;
        let note_x = x_range.start + x_span * 0.02;
        let mut chart = ChartBuilder::on(panel)
            .caption(caption, theme::panel_style())
            .margin(12)
            .margin_right(26)
            .x_label_area_size(60)
            .y_label_area_size(90)
            .build_cartesian_2d(x_range, 0f64..y_max)?;
        let mut mesh = chart.configure_mesh();
        theme::mesh(&mut mesh);
        mesh.x_desc("seconds from the injection")
            .y_desc(match measure {
                Measure::SuccessRate => "requests answered 2xx (%)",
                Measure::P99 => "p99 of successes (ms)",
            })
            .x_label_formatter(&|seconds| theme::tick(*seconds, x_span))
            .y_label_formatter(&|value| theme::tick(*value, y_max))
            .draw()?;
        let heal = (cell.healed_at_ms - cell.injected_at_ms) as f64 / 1000.0;
        chart.draw_series(std::iter::once(Rectangle::new(
            [(0.0, 0.0), (heal, y_max)],
            theme::FAULT.mix(0.15).filled(),
        )))?;
        chart.draw_series(DashedLineSeries::new(
            vec![(heal, 0.0), (heal, y_max)],
            10,
            6,
            theme::HEAL.stroke_width(3),
        ))?;
        let mut unanswered = false;
        for (index, journey) in self.journeys.iter().enumerate() {
            let journey_slices = slices.iter().filter(|slice| &slice.journey == journey);
            let x = |slice: &Slice| slice_middle_s(slice, timeline.slice_ms, cell.injected_at_ms);
            match measure {
                Measure::SuccessRate => {
                    let points = journey_slices
                        .filter_map(|slice| {
                            success_rate(slice).map(|rate| (x(slice), rate * 100.0))
                        })
                        .collect();
                    theme::draw_line(&mut chart, points, color, journey_stroke(index), false)?;
                }
                Measure::P99 => {
                    // The p99 is of successful requests; a slice without one has no latency,
                    // so the line breaks there and a cross on the floor says so, instead of
                    // a dead shop's fast refusals reading as a fast p99.
                    let mut segment: Vec<(f64, f64)> = Vec::new();
                    for slice in journey_slices {
                        if slice.ok > 0 {
                            segment.push((x(slice), slice.p99_us as f64 / 1000.0));
                            continue;
                        }
                        unanswered = true;
                        chart.draw_series(std::iter::once(Cross::new(
                            (x(slice), y_max * 0.02),
                            7,
                            theme::FAULT.stroke_width(3),
                        )))?;
                        let done = std::mem::take(&mut segment);
                        theme::draw_line(&mut chart, done, color, journey_stroke(index), false)?;
                    }
                    theme::draw_line(&mut chart, segment, color, journey_stroke(index), false)?;
                }
            }
        }
        if unanswered {
            let style = theme::colored(theme::label_style(), theme::FAULT);
            chart.draw_series(std::iter::once(Text::new(
                "crosses on the floor: no successful request in that slice",
                (note_x, y_max * 0.97),
                style,
            )))?;
        }
        Ok(())
    }
}

/// A panel for a build on which the cell measured nothing: the reason instead of a plot.
fn not_applied<DB: DrawingBackend>(
    panel: &Area<DB>,
    caption: &str,
    row: &FaultRow<'_>,
) -> DrawResult<DB> {
    let inner = panel.titled(caption, theme::panel_style())?;
    let reason = match row.cell {
        None => "this fault did not run on this build".to_owned(),
        Some(cell) => cell
            .error
            .as_deref()
            .map_or("the fault was not in force".to_owned(), first_line),
    };
    let (width, height) = inner.dim_in_pixel();
    inner.draw(&Rectangle::new(
        [(10, 10), (width as i32 - 10, height as i32 - 10)],
        RGBColor(245, 245, 245).filled(),
    ))?;
    let style = theme::label_style().pos(Pos::new(HPos::Center, VPos::Center));
    let mut lines = vec![format!("Not measured on the {}:", build_label(row.build))];
    lines.extend(wrap(&reason, 48));
    let top = height as i32 / 2 - (lines.len() as i32 * 28) / 2;
    for (index, line) in lines.iter().enumerate() {
        inner.draw(&Text::new(
            line.clone(),
            (width as i32 / 2, top + index as i32 * 28),
            style.clone(),
        ))?;
    }
    Ok(())
}

/// Words on lines of at most `width` characters, at most four lines.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    lines.truncate(4);
    lines
}
