//! Grouped bars on a category axis, the one shape several charts share (deploy times, the
//! cost model, scaling): plotters has no category axis that holds several bars per
//! category, so groups sit at 0, 1, 2, … and their labels are drawn under the axis.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis_max;
use crate::theme::{self, Area, DrawResult};

/// How a bar is filled: the color says the build, the fill says the variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fill {
    Solid,
    Light,
    Outline,
}

#[derive(Clone, Debug)]
pub(crate) struct Bar {
    pub value: f64,
    /// Whiskers: the spread of the repeats.
    pub range: Option<(f64, f64)>,
    pub color: RGBColor,
    pub fill: Fill,
}

#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub label: String,
    pub bars: Vec<Bar>,
}

/// Axis texts and options of one panel of grouped bars.
pub(crate) struct Axes<'a> {
    pub caption: Option<&'a str>,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    /// Print each bar's value above it.
    pub values: bool,
}

pub(crate) fn grouped_bars<DB: DrawingBackend>(
    area: &Area<DB>,
    groups: &[Group],
    axes: &Axes<'_>,
) -> DrawResult<DB> {
    let y_max = axis_max(
        groups
            .iter()
            .flat_map(|group| &group.bars)
            .map(|bar| bar.range.map_or(bar.value, |(_, high)| high.max(bar.value))),
        0.001,
        if axes.values { 1.18 } else { 1.08 },
    );
    let mut builder = ChartBuilder::on(area);
    if let Some(caption) = axes.caption {
        builder.caption(caption, theme::panel_style());
    }
    let mut chart = builder
        .margin(14)
        .margin_right(28)
        .x_label_area_size(80)
        .y_label_area_size(100)
        .build_cartesian_2d(0f64..groups.len().max(1) as f64, 0f64..y_max)?;
    let mut mesh = chart.configure_mesh();
    theme::mesh(&mut mesh);
    mesh.disable_x_mesh()
        .x_labels(0)
        .x_desc(axes.x_desc)
        .y_desc(axes.y_desc)
        .y_label_formatter(&|value| theme::tick(*value, y_max))
        .draw()?;
    let label = theme::label_style().pos(Pos::new(HPos::Center, VPos::Top));
    let value_style = theme::label_style().pos(Pos::new(HPos::Center, VPos::Bottom));
    for (index, group) in groups.iter().enumerate() {
        let center = index as f64 + 0.5;
        chart.draw_series(std::iter::once(
            EmptyElement::at((center, 0.0))
                + Text::new(group.label.clone(), (0, 10), label.clone()),
        ))?;
        let count = group.bars.len().max(1) as f64;
        let width = 0.8 / count;
        for (slot, bar) in group.bars.iter().enumerate() {
            let left = index as f64 + 0.1 + slot as f64 * width;
            let (x0, x1) = (left + width * 0.08, left + width * 0.92);
            let corners = [(x0, 0.0), (x1, bar.value)];
            let style = match bar.fill {
                Fill::Solid => bar.color.filled(),
                Fill::Light => bar.color.mix(0.45).filled(),
                Fill::Outline => bar.color.stroke_width(3),
            };
            chart.draw_series(std::iter::once(Rectangle::new(corners, style)))?;
            if bar.fill == Fill::Light {
                chart.draw_series(std::iter::once(Rectangle::new(
                    corners,
                    bar.color.stroke_width(2),
                )))?;
            }
            let middle = (x0 + x1) / 2.0;
            if let Some((low, high)) = bar.range.filter(|(low, high)| high > low) {
                let cap = width * 0.15;
                for path in [
                    vec![(middle, low), (middle, high)],
                    vec![(middle - cap, low), (middle + cap, low)],
                    vec![(middle - cap, high), (middle + cap, high)],
                ] {
                    chart.draw_series(std::iter::once(PathElement::new(
                        path,
                        theme::TEXT.stroke_width(2),
                    )))?;
                }
            }
            if axes.values {
                let top = bar.range.map_or(bar.value, |(_, high)| high.max(bar.value));
                chart.draw_series(std::iter::once(
                    EmptyElement::at((middle, top))
                        + Text::new(theme::short_number(bar.value), (0, -6), value_style.clone()),
                ))?;
            }
        }
    }
    Ok(())
}
