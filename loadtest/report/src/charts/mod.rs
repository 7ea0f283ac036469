//! The report's charts. Each is a [`Plot`]: a description of what to draw on any plotters
//! backend, rendered twice by [`Charts::save`] — an SVG (inlined into `report.html`) and a
//! PNG (beside `report.md`, for a git forge) — so the two never disagree.

mod bars;
mod capacity;
mod cost;
mod deploys;
mod faults;
mod heatmap;
mod throughput;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use plotters::prelude::*;

pub(crate) use capacity::HockeyStick;
pub(crate) use cost::{HopTax, Resources, ScaleBars};
pub(crate) use deploys::{DeployTimeline, DeployTimes};
pub(crate) use faults::{FaultRow, FaultTimeline};
pub(crate) use heatmap::BlastRadius;
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

/// Writes charts into a folder.
pub(crate) struct Charts {
    dir: PathBuf,
}

impl Charts {
    pub fn new(dir: &Path) -> anyhow::Result<Charts> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        theme::register_fonts();
        Ok(Charts {
            dir: dir.to_owned(),
        })
    }

    /// Renders `plot` under `title` as `<stem>.svg` and `<stem>.png`.
    pub fn save(&self, stem: &str, title: &str, plot: &impl Plot) -> anyhow::Result<Figure> {
        let size = plot.size();
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
            render(&root, title, plot).map_err(|error| anyhow::anyhow!("draw {stem}: {error}"))?;
            root.present()
                .map_err(|error| anyhow::anyhow!("draw {stem}: {error}"))?;
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
