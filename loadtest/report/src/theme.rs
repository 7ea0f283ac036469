//! How every chart looks: the embedded font, one color per build (the same in every chart),
//! one line style per journey, text sizes readable on a slide, and the legend strip that
//! sits above the plots so it never covers data.

use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::combinators::LogCoord;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use loadtest_results::component::Build;

/// The family every chart asks for; [`register_fonts`] maps it to the embedded DejaVu Sans.
/// SVG files name it too, so a browser draws them with its own sans-serif font.
pub(crate) const FONT: &str = "sans-serif";

/// The monolith is blue and the microservices orange in every chart.
pub const MONOLITH: RGBColor = RGBColor(31, 119, 180);
pub const MICRO: RGBColor = RGBColor(235, 115, 10);
/// The fault window's shading, and the deploy strategies' spans.
pub(crate) const FAULT: RGBColor = RGBColor(214, 39, 40);
pub(crate) const HEAL: RGBColor = RGBColor(30, 130, 30);
pub(crate) const ROLLING: RGBColor = RGBColor(44, 160, 44);
pub(crate) const ROLLBACK: RGBColor = RGBColor(148, 103, 189);
pub(crate) const NEUTRAL: RGBColor = RGBColor(120, 120, 120);
pub(crate) const TEXT: RGBColor = RGBColor(30, 30, 30);

/// PNG and SVG size of a one-row chart: wide enough for a slide, the font sizes below
/// chosen for it.
pub(crate) const WIDTH: u32 = 1400;
pub(crate) const HEIGHT: u32 = 800;

pub(crate) type Area<DB> = DrawingArea<DB, Shift>;
pub(crate) type DrawResult<DB> =
    Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// How a line is drawn: journeys differ by style, builds by color.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stroke {
    Solid,
    Dashed,
    Dotted,
}

/// What a legend entry shows before its label.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mark {
    Line(RGBColor, Stroke),
    /// A filled box: a bar's color, a shaded window.
    Fill(RGBColor, f64),
    /// A box drawn as an outline only.
    Outline(RGBColor),
}

#[derive(Clone, Debug)]
pub(crate) struct LegendEntry {
    pub label: String,
    pub mark: Mark,
}

/// Makes the embedded DejaVu Sans the chart font. Without it, text on a PNG has no font
/// (plotters is built without system-font support so it cannot pick one up by accident).
pub(crate) fn register_fonts() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        const REGULAR: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
        const BOLD: &[u8] = include_bytes!("../assets/fonts/DejaVuSans-Bold.ttf");
        // Both are valid TrueType files checked into the repository; a failure here is a
        // broken checkout, which the report tests catch.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, REGULAR);
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, BOLD);
    });
}

pub(crate) fn build_color(build: Build) -> RGBColor {
    match build {
        Build::Monolith => MONOLITH,
        Build::Micro => MICRO,
    }
}

/// The build as the charts name it.
pub(crate) fn build_label(build: Build) -> &'static str {
    match build {
        Build::Monolith => "monolith",
        Build::Micro => "microservices",
    }
}

/// Journeys in the order they first appear get solid, dashed, then dotted lines.
pub(crate) fn journey_stroke(index: usize) -> Stroke {
    match index {
        0 => Stroke::Solid,
        1 => Stroke::Dashed,
        _ => Stroke::Dotted,
    }
}

pub(crate) fn title_style() -> TextStyle<'static> {
    bold(34)
}

/// A panel's own caption (one build, one measure).
pub(crate) fn panel_style() -> TextStyle<'static> {
    bold(24)
}

/// The bold face at `size`. Built with `FontDesc::new`: plotters' `FontDesc::style` changes
/// the style's name but keeps the regular face's glyphs.
fn bold(size: u32) -> TextStyle<'static> {
    FontDesc::new(FontFamily::Name(FONT), f64::from(size), FontStyle::Bold).color(&TEXT)
}

/// Axis descriptions ("requests per second").
pub(crate) fn axis_style() -> TextStyle<'static> {
    (FONT, 22).into_font().color(&TEXT)
}

/// Tick labels and legend labels.
pub(crate) fn label_style() -> TextStyle<'static> {
    (FONT, 20).into_font().color(&TEXT)
}

/// Text inside a plot: values on heatmap cells, notes.
pub(crate) fn small_style() -> TextStyle<'static> {
    (FONT, 17).into_font().color(&TEXT)
}

/// The look of every chart's axes: readable labels, a light grid at the labelled ticks
/// only (the finer grid plotters adds by default makes a PNG look like graph paper).
pub(crate) fn mesh<X: Ranged, Y: Ranged, DB: DrawingBackend>(
    mesh: &mut plotters::chart::MeshStyle<'_, '_, X, Y, DB>,
) {
    mesh.axis_desc_style(axis_style())
        .label_style(label_style())
        .max_light_lines(0)
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(222, 222, 222));
}

/// What a log-latency chart writes along its axes.
pub(crate) struct LogAxes<'a> {
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    /// The x axis's tick label.
    pub x_tick: &'a dyn Fn(&f64) -> String,
    /// How many ticks plotters may put along x.
    pub x_ticks: usize,
}

/// A chart with a linear x axis and a log-scale latency axis, as [`log_latency_chart`] builds.
pub(crate) type LogLatencyChart<'a, DB> =
    ChartContext<'a, DB, Cartesian2d<RangedCoordf64, LogCoord<f64>>>;

/// The chart every latency-on-a-log-axis figure is drawn on (the throughput panels, the
/// nines, the capacity curve), so they read alike: x from 0 to `x_max`, latency in ms from
/// `y_min` to `y_max` on a log scale labelled at 1, 2 and 5 of each decade, the mesh drawn.
pub(crate) fn log_latency_chart<'a, DB: DrawingBackend>(
    area: &'a Area<DB>,
    caption: Option<&str>,
    x_max: f64,
    (y_min, y_max): (f64, f64),
    axes: &LogAxes<'_>,
) -> Result<LogLatencyChart<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut builder = ChartBuilder::on(area);
    if let Some(caption) = caption {
        builder.caption(caption, panel_style());
    }
    let mut chart = builder
        .margin(20)
        .margin_right(40)
        .x_label_area_size(70)
        .y_label_area_size(110)
        .build_cartesian_2d(0f64..x_max, (y_min..y_max).log_scale())?;
    let mut grid = chart.configure_mesh();
    mesh(&mut grid);
    grid.x_desc(axes.x_desc)
        .y_desc(axes.y_desc)
        .x_labels(axes.x_ticks)
        .x_label_formatter(axes.x_tick)
        .y_label_formatter(&|ms| log_tick(*ms))
        .draw()?;
    Ok(chart)
}

/// A log axis's label at 1, 2 and 5 of each decade, none between (plotters puts a tick at
/// every integer multiple, which crowds the labels).
pub(crate) fn log_tick(value: f64) -> String {
    if value <= 0.0 {
        return String::new();
    }
    let decade = 10f64.powf(value.log10().floor());
    let mantissa = value / decade;
    if [1.0, 2.0, 5.0]
        .iter()
        .any(|wanted| (mantissa - wanted).abs() < 0.01)
    {
        short_number(value)
    } else {
        String::new()
    }
}

/// An axis label: no more digits than the axis needs.
pub(crate) fn short_number(value: f64) -> String {
    if value.abs() >= 100.0 || value == 0.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// A tick label on an axis spanning `span`: as many decimals as the span needs, and no
/// "-0".
pub(crate) fn tick(value: f64, span: f64) -> String {
    let decimals = if span >= 10.0 {
        0
    } else if span >= 1.0 {
        1
    } else {
        2
    };
    let text = format!("{value:.decimals$}");
    match text.strip_prefix('-') {
        Some(rest)
            if rest
                .chars()
                .all(|character| character == '0' || character == '.') =>
        {
            rest.to_owned()
        }
        _ => text,
    }
}

/// `style` in another color (plotters' own `TextStyle::color` wants a color that lives as
/// long as the font name, which a computed color does not).
pub(crate) fn colored(style: TextStyle<'static>, color: RGBColor) -> TextStyle<'static> {
    TextStyle {
        color: color.to_backend_color(),
        ..style
    }
}

/// The style of a line of `color`, `width` pixels wide.
pub(crate) fn line(color: RGBColor, width: u32) -> ShapeStyle {
    color.stroke_width(width)
}

/// Draws `points` as a line in `stroke` style, with a marker on each point.
pub(crate) fn draw_line<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    points: Vec<(X::ValueType, Y::ValueType)>,
    color: RGBColor,
    stroke: Stroke,
    markers: bool,
) -> DrawResult<DB>
where
    DB: DrawingBackend,
    X: Ranged,
    Y: Ranged,
    X::ValueType: Clone + 'static,
    Y::ValueType: Clone + 'static,
{
    let style = line(color, 3);
    match stroke {
        Stroke::Solid => {
            chart.draw_series(LineSeries::new(points.clone(), style))?;
        }
        Stroke::Dashed => {
            chart.draw_series(DashedLineSeries::new(points.clone(), 12, 7, style))?;
        }
        Stroke::Dotted => {
            chart.draw_series(DashedLineSeries::new(points.clone(), 3, 5, style))?;
        }
    }
    if markers {
        chart.draw_series(
            points
                .into_iter()
                .map(|point| Circle::new(point, 5, color.filled())),
        )?;
    }
    Ok(())
}

/// Draws the entries side by side, centered in `strip` (wrapping onto a second row when
/// they do not fit one).
pub(crate) fn legend<DB: DrawingBackend>(
    strip: &Area<DB>,
    entries: &[LegendEntry],
) -> DrawResult<DB> {
    const SAMPLE: i32 = 44;
    const GAP: i32 = 34;
    let style = label_style();
    let (width, height) = strip.dim_in_pixel();
    let mut sized = Vec::new();
    for entry in entries {
        let (text_width, _) = strip.estimate_text_size(&entry.label, &style)?;
        sized.push((entry, SAMPLE + 10 + text_width as i32));
    }
    // Greedy rows: as many entries as fit the strip's width.
    let mut rows: Vec<Vec<(&LegendEntry, i32)>> = vec![Vec::new()];
    let mut used = 0;
    for (entry, entry_width) in sized {
        let row = rows.last_mut().expect("one row");
        if !row.is_empty() && used + GAP + entry_width > width as i32 - 20 {
            rows.push(Vec::new());
            used = 0;
        }
        used += if used == 0 { 0 } else { GAP } + entry_width;
        rows.last_mut().expect("one row").push((entry, entry_width));
    }
    let row_height = height as i32 / rows.len().max(1) as i32;
    for (index, row) in rows.iter().enumerate() {
        let total: i32 =
            row.iter().map(|(_, width)| width).sum::<i32>() + GAP * (row.len() as i32 - 1);
        let mut x = (width as i32 - total) / 2;
        let y = row_height * index as i32 + row_height / 2;
        for (entry, entry_width) in row {
            draw_mark(strip, entry.mark, (x, y), SAMPLE)?;
            strip.draw(&Text::new(
                entry.label.clone(),
                (x + SAMPLE + 10, y),
                style.pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
            x += entry_width + GAP;
        }
    }
    Ok(())
}

fn draw_mark<DB: DrawingBackend>(
    area: &Area<DB>,
    mark: Mark,
    (x, y): (i32, i32),
    width: i32,
) -> DrawResult<DB> {
    match mark {
        Mark::Line(color, Stroke::Solid) => {
            area.draw(&PathElement::new(
                vec![(x, y), (x + width, y)],
                line(color, 3),
            ))?;
        }
        Mark::Line(color, stroke) => {
            let (dash, gap) = if stroke == Stroke::Dashed {
                (12, 7)
            } else {
                (3, 5)
            };
            let mut from = x;
            while from < x + width {
                let to = (from + dash).min(x + width);
                area.draw(&PathElement::new(vec![(from, y), (to, y)], line(color, 3)))?;
                from = to + gap;
            }
        }
        Mark::Fill(color, opacity) => {
            area.draw(&Rectangle::new(
                [(x, y - 11), (x + width, y + 11)],
                color.mix(opacity).filled(),
            ))?;
        }
        Mark::Outline(color) => {
            area.draw(&Rectangle::new(
                [(x, y - 11), (x + width, y + 11)],
                color.stroke_width(3),
            ))?;
        }
    }
    Ok(())
}

/// A message in the middle of an area that has no data to draw.
pub(crate) fn empty_note<DB: DrawingBackend>(area: &Area<DB>, message: &str) -> DrawResult<DB> {
    let (width, height) = area.dim_in_pixel();
    area.draw(&Text::new(
        message.to_owned(),
        (width as i32 / 2, height as i32 / 2),
        axis_style()
            .color(&NEUTRAL)
            .pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_have_the_decimals_their_axis_needs_and_no_negative_zero() {
        assert_eq!(tick(1500.0, 2000.0), "1500");
        assert_eq!(tick(0.5, 4.0), "0.5");
        assert_eq!(tick(-0.0001, 4.0), "0.0");
        assert_eq!(tick(0.25, 0.6), "0.25");
    }

    /// Dark pixels of `text` drawn in `style` on a white bitmap.
    fn ink(text: &str, style: &TextStyle<'static>) -> usize {
        let mut pixels = vec![255u8; 400 * 80 * 3];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, (400, 80)).into_drawing_area();
            root.draw(&Text::new(text.to_owned(), (10, 10), style.clone()))
                .expect("text draws");
            root.present().expect("present");
        }
        pixels
            .chunks_exact(3)
            .filter(|pixel| pixel[0] < 128)
            .count()
    }

    #[test]
    fn the_embedded_font_draws_text_and_bold_is_heavier_than_regular() {
        // Before any style is built: a style looks its face up when it is made.
        register_fonts();
        let regular = ink("Throughput", &(FONT, 34).into_font().color(&TEXT));
        let bold = ink("Throughput", &title_style());
        assert!(regular > 300, "regular text left {regular} dark pixels");
        assert!(
            bold > regular * 5 / 4,
            "bold {bold} vs regular {regular} dark pixels"
        );
    }
}
