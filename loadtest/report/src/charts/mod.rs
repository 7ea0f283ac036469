//! The report's charts. Each is a [`Plot`]: a description of what to draw on any plotters
//! backend, rendered twice by [`Charts::save`] — an SVG (inlined into `report.html`) and a
//! PNG (beside `report.md`, for a git forge) — so the two never disagree.

mod bars;
mod capacity;
mod cost;
mod deploys;
mod faults;
mod heatmap;
mod nines;
mod spectrum;
mod throughput;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use plotters::prelude::*;

pub(crate) use capacity::HockeyStick;
pub(crate) use cost::{HopTax, ProcessBars, Resources, ScaleBars};
pub(crate) use deploys::{DeployTimeline, DeployTimes};
pub(crate) use faults::{FaultRow, FaultTimeline};
pub(crate) use heatmap::BlastRadius;
pub(crate) use nines::Nines;
pub(crate) use spectrum::SpectrumChart;
pub(crate) use throughput::{Latency, Run, Throughput};

use super::theme::{self, Area, DrawResult};

/// Something the report draws, on whichever backend.
pub(crate) trait Plot {
    /// Width and height in pixels (PNG) and user units (SVG).
    fn size(&self) -> (u32, u32) {
        (theme::WIDTH, theme::HEIGHT)
    }

    /// Draws everything below the title, which [`Charts::save`] draws.
    fn draw<DB: DrawingBackend>(&self, area: &Area<DB>) -> DrawResult<DB>;
}

/// A chart as the report pages use it.
#[derive(Clone, Debug)]
pub(crate) struct Figure {
    /// The file name without extension, under `charts/`.
    pub stem: String,
    pub title: String,
    /// The SVG text, for `report.html`.
    pub svg: String,
}

/// How the charts look: dark for a projector in a dark room.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ChartTheme {
    #[default]
    Light,
    /// Every color's lightness inverted, its hue and saturation kept: white paper becomes
    /// near-black, black text near-white, and the monolith stays blue and the microservices
    /// orange. Done on the finished picture rather than with a second palette, so no chart
    /// can forget a color.
    Dark,
}

/// Writes charts into a folder.
pub(crate) struct Charts {
    dir: PathBuf,
    theme: ChartTheme,
    /// The size of a one-row chart (`shoplab report --size`); `None`: [`theme::WIDTH`] x
    /// [`theme::HEIGHT`].
    size: Option<(u32, u32)>,
}

impl Charts {
    pub fn new(dir: &Path) -> anyhow::Result<Charts> {
        Charts::styled(dir, None, ChartTheme::Light)
    }

    /// Charts whose one-row size is `size` (taller charts keep their height in proportion),
    /// in `theme`.
    pub fn styled(
        dir: &Path,
        size: Option<(u32, u32)>,
        theme: ChartTheme,
    ) -> anyhow::Result<Charts> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        theme::register_fonts();
        Ok(Charts {
            dir: dir.to_owned(),
            theme,
            size,
        })
    }

    /// `plot`'s own size, scaled so a one-row chart gets the size asked for.
    fn size_of(&self, plot: &impl Plot) -> (u32, u32) {
        let (width, height) = plot.size();
        match self.size {
            None => (width, height),
            Some((asked_width, asked_height)) => (
                scale(width, asked_width, theme::WIDTH),
                scale(height, asked_height, theme::HEIGHT),
            ),
        }
    }

    /// Renders `plot` under `title` as `<stem>.svg` and `<stem>.png`.
    pub fn save(&self, stem: &str, title: &str, plot: &impl Plot) -> anyhow::Result<Figure> {
        let size = self.size_of(plot);
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
            render(&root, title, plot).map_err(|error| anyhow::anyhow!("draw {stem}: {error}"))?;
            root.present()
                .map_err(|error| anyhow::anyhow!("draw {stem}: {error}"))?;
        }
        if self.theme == ChartTheme::Dark {
            // The browser's equivalent of `invert_lightness` below.
            svg = svg.replacen(
                "<svg ",
                "<svg style=\"filter: invert(1) hue-rotate(180deg)\" ",
                1,
            );
        }
        let svg_path = self.dir.join(format!("{stem}.svg"));
        std::fs::write(&svg_path, &svg).with_context(|| format!("write {}", svg_path.display()))?;

        let mut pixels = vec![0u8; size.0 as usize * size.1 as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
            render(&root, title, plot).map_err(|error| anyhow::anyhow!("draw {stem}: {error}"))?;
            root.present()
                .map_err(|error| anyhow::anyhow!("draw {stem}: {error}"))?;
        }
        if self.theme == ChartTheme::Dark {
            invert_lightness(&mut pixels);
        }
        let png_path = self.dir.join(format!("{stem}.png"));
        write_png(&png_path, size, &pixels)
            .with_context(|| format!("write {}", png_path.display()))?;
        Ok(Figure {
            stem: stem.to_owned(),
            title: title.to_owned(),
            svg,
        })
    }
}

/// Inverts every RGB pixel's HSL lightness and keeps its hue and saturation: in HSL,
/// `L = (max + min) / 2`, and `c + 1 - (max + min)` moves each channel so that `L` becomes
/// `1 - L` with the channels' differences (hue, chroma) unchanged.
fn invert_lightness(pixels: &mut [u8]) {
    for pixel in pixels.chunks_exact_mut(3) {
        let max = pixel.iter().copied().max().unwrap_or(0) as i32;
        let min = pixel.iter().copied().min().unwrap_or(0) as i32;
        for channel in pixel.iter_mut() {
            *channel = (*channel as i32 + 255 - max - min).clamp(0, 255) as u8;
        }
    }
}

/// `value` scaled by `asked / default`, rounded.
fn scale(value: u32, asked: u32, default: u32) -> u32 {
    (u64::from(value) * u64::from(asked) / u64::from(default).max(1)) as u32
}

fn render<DB: DrawingBackend>(root: &Area<DB>, title: &str, plot: &impl Plot) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let below = root
        .margin(14, 10, 10, 10)
        .titled(title, theme::title_style())?;
    plot.draw(&below)
}

/// RGB pixels to a PNG file. plotters can encode PNGs itself through the `image` crate; the
/// `png` crate alone is a much smaller dependency.
fn write_png(path: &Path, (width, height): (u32, u32), pixels: &[u8]) -> anyhow::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Balanced);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(pixels)?;
    writer.finish()?;
    Ok(())
}

/// The largest of `values` (at least `floor`), with `headroom` on top: an axis's upper end.
pub(crate) fn axis_max(values: impl IntoIterator<Item = f64>, floor: f64, headroom: f64) -> f64 {
    values
        .into_iter()
        .filter(|value| value.is_finite())
        .fold(floor, f64::max)
        * headroom
}

#[cfg(test)]
mod tests {
    use super::invert_lightness;

    #[test]
    fn the_dark_theme_inverts_lightness_and_keeps_the_builds_hues() {
        // White paper, black text, mid grey, pure red, the monolith's blue.
        let mut pixels = vec![
            255, 255, 255, 0, 0, 0, 100, 100, 100, 255, 0, 0, 31, 119, 180,
        ];
        invert_lightness(&mut pixels);
        assert_eq!(
            pixels,
            vec![
                0, 0, 0, 255, 255, 255, 155, 155, 155, 255, 0, 0, 75, 163, 224
            ]
        );
    }
}
