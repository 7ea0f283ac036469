//! The blast radius as a heatmap: one row per fault, one column per journey (how it fared
//! during the fault) plus the share of route templates that did worse; the monolith's grid
//! beside the microservices'.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::Plot;
use crate::figures::{FaultPair, ms, percent};
use crate::theme::{self, Area, DrawResult, LegendEntry, Mark, build_color, build_label};
use loadtest_results::analysis::degraded;
use loadtest_results::component::Build;
use loadtest_results::experiments::faults::Cell;

pub(crate) struct BlastRadius<'a> {
    pub pairs: Vec<FaultPair<'a>>,
    pub journeys: Vec<String>,
}

const CALM: RGBColor = RGBColor(236, 246, 236);
const SLOWER: RGBColor = RGBColor(250, 190, 80);
const FAILING: RGBColor = RGBColor(200, 30, 30);
const NOT_MEASURED: RGBColor = RGBColor(225, 225, 225);
const HEADER: i32 = 64;
/// Room under the grid for the two lines that say how to read it.
const NOTES: i32 = 90;

impl Plot for BlastRadius<'_> {
    fn size(&self) -> (u32, u32) {
        (theme::WIDTH, (260 + 60 * self.pairs.len() as u32).max(700))
    }

    fn draw<DB: DrawingBackend>(&self, area: &Area<DB>) -> DrawResult<DB> {
        let (strip, grid) = area.split_vertically(56);
        theme::legend(
            &strip,
            &[
                legend("as before", CALM),
                legend("slower: p99 > 2× before + 50 ms", SLOWER),
                legend("failing (darker: more failed)", FAILING),
                legend("not measured", NOT_MEASURED),
            ],
        )?;
        let (width, height) = grid.dim_in_pixel();
        let rows = self.pairs.len().max(1) as i32;
        let row_height = ((height as i32 - HEADER - NOTES) / rows).min(120);
        let columns = self.journeys.len() as i32 + 1;
        let label = theme::label_style();
        // As wide as the longest fault's name (`net_latency · recommendations`).
        let mut labels_width = 120;
        for pair in &self.pairs {
            let (text_width, _) = grid.estimate_text_size(&pair.name(), &label)?;
            labels_width = labels_width.max(text_width as i32 + 24);
        }
        let panel_width = (width as i32 - labels_width - 30 - 16) / 2;
        let column_width = panel_width / columns;
        let cell_text = theme::label_style();
        for (index, pair) in self.pairs.iter().enumerate() {
            let y = HEADER + index as i32 * row_height + row_height / 2;
            grid.draw(&Text::new(
                pair.name(),
                (labels_width - 12, y),
                label.pos(Pos::new(HPos::Right, VPos::Center)),
            ))?;
        }
        for (panel, build) in Build::BOTH.into_iter().enumerate() {
            let left = labels_width + panel as i32 * (panel_width + 30);
            let color = build_color(build);
            grid.draw(&Text::new(
                build_label(build),
                (left + panel_width / 2, 4),
                theme::colored(theme::panel_style(), color).pos(Pos::new(HPos::Center, VPos::Top)),
            ))?;
            grid.draw(&Rectangle::new(
                [(left, 34), (left + columns * column_width, 38)],
                color.filled(),
            ))?;
            let headers = self
                .journeys
                .iter()
                .map(String::as_str)
                .chain(["steps degraded"]);
            for (column, header) in headers.enumerate() {
                grid.draw(&Text::new(
                    header.to_owned(),
                    (
                        left + column as i32 * column_width + column_width / 2,
                        HEADER - 6,
                    ),
                    cell_text.pos(Pos::new(HPos::Center, VPos::Bottom)),
                ))?;
            }
            for (index, pair) in self.pairs.iter().enumerate() {
                let top = HEADER + index as i32 * row_height;
                let cells = self.row(pair.cell(build));
                for (column, (fill, lines)) in cells.into_iter().enumerate() {
                    let x0 = left + column as i32 * column_width;
                    grid.draw(&Rectangle::new(
                        [
                            (x0 + 2, top + 2),
                            (x0 + column_width - 2, top + row_height - 2),
                        ],
                        fill.filled(),
                    ))?;
                    let ink = if luminance(fill) < 0.45 {
                        WHITE
                    } else {
                        theme::TEXT
                    };
                    let line_height = 25;
                    let first = top + row_height / 2 - (lines.len() as i32 - 1) * line_height / 2;
                    for (number, line) in lines.into_iter().enumerate() {
                        grid.draw(&Text::new(
                            line,
                            (x0 + column_width / 2, first + number as i32 * line_height),
                            theme::colored(cell_text.clone(), ink)
                                .pos(Pos::new(HPos::Center, VPos::Center)),
                        ))?;
                    }
                }
            }
        }
        let notes_top = HEADER + rows * row_height + 24;
        for (index, note) in [
            "Journey columns: share answered 2xx during the fault, p99 of the successes; err = fast errors, t/o = time-outs.",
            "Steps degraded (the blast radius): the share of route templates that did worse than before the fault.",
        ]
        .into_iter()
        .enumerate()
        {
            grid.draw(&Text::new(
                note,
                (labels_width, notes_top + index as i32 * 28),
                label.pos(Pos::new(HPos::Left, VPos::Top)),
            ))?;
        }
        Ok(())
    }
}

impl BlastRadius<'_> {
    /// The fill and text of every column of one cell's row.
    fn row(&self, cell: Option<&Cell>) -> Vec<(RGBColor, Vec<String>)> {
        let columns = self.journeys.len() + 1;
        let Some(cell) = cell.filter(|cell| cell.applied) else {
            return vec![(NOT_MEASURED, vec!["n/a".to_owned()]); columns];
        };
        let mut row: Vec<(RGBColor, Vec<String>)> = self
            .journeys
            .iter()
            .map(|journey| {
                let Some(phases) = cell
                    .journeys
                    .iter()
                    .find(|phases| &phases.journey == journey)
                else {
                    return (NOT_MEASURED, vec!["no requests".to_owned()]);
                };
                let (before, during) = (&phases.before, &phases.during);
                let drop = match (before.success_rate, during.success_rate) {
                    (Some(before), Some(during)) => (before - during).max(0.0),
                    (Some(_), None) => 1.0,
                    _ => 0.0,
                };
                let fill = if drop > 0.02 {
                    blend(RGBColor(250, 225, 225), FAILING, drop)
                } else if degraded(before, during) {
                    SLOWER
                } else {
                    CALM
                };
                let ok = during.success_rate.map_or("no answer".to_owned(), |rate| {
                    format!("{} ok", percent(rate))
                });
                // Of successful requests; a window without one has no latency to show (short
                // words: a cell is narrow).
                let p99 = during.success_latency().map_or_else(
                    || "no success: no p99".to_owned(),
                    |latency| format!("p99 {}", ms(latency.p99_us as f64 / 1000.0)),
                );
                let mut lines = vec![ok, p99];
                // Failures counted apart: fast errors (refused, 5xx) and time-outs.
                if during.fast_errors + during.timeouts > 0 {
                    lines.push(format!(
                        "{} err · {} t/o",
                        during.fast_errors, during.timeouts
                    ));
                }
                (fill, lines)
            })
            .collect();
        let radius = cell.blast_radius;
        let fill = if radius > 0.0 {
            blend(RGBColor(250, 225, 225), FAILING, radius)
        } else {
            CALM
        };
        row.push((fill, vec![percent(radius), "of steps".to_owned()]));
        row
    }
}

fn legend(label: &str, color: RGBColor) -> LegendEntry {
    LegendEntry {
        label: label.to_owned(),
        mark: Mark::Fill(color, 1.0),
    }
}

/// The color `share` of the way from `from` to `to`.
fn blend(from: RGBColor, to: RGBColor, share: f64) -> RGBColor {
    let share = share.clamp(0.0, 1.0);
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * share).round() as u8;
    RGBColor(mix(from.0, to.0), mix(from.1, to.1), mix(from.2, to.2))
}

/// Perceived brightness, 0 (black) to 1 (white): dark fills get white text.
fn luminance(color: RGBColor) -> f64 {
    (0.299 * color.0 as f64 + 0.587 * color.1 as f64 + 0.114 * color.2 as f64) / 255.0
}
