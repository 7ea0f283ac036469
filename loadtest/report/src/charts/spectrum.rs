//! The spectrum: eight panels (capacity, CPU per request, p99, memory; the blast radius of a
//! kill and of the partial errors fault; the share of the shop a payments change restarts,
//! and the requests its rolling deploy failed), each with the number of processes along x
//! and one labelled point per topology, a whisker from the smallest to the largest repeat
//! where there were several.

use plotters::prelude::*;

use super::{Plot, axis_max};
use crate::figures::Spread;
use crate::sections::spectrum::SpectrumPoint;
use crate::theme::{self, Area, DrawResult};

/// Which figure of a point a panel draws.
type Pick = fn(&SpectrumPoint) -> Option<Spread>;

pub(crate) struct SpectrumChart {
    pub points: Vec<SpectrumPoint>,
}

/// The two builds in their colours, every topology between them in one more.
fn color_of(topology: &str) -> RGBColor {
    match topology {
        "monolith" => theme::MONOLITH,
        "micro" => theme::MICRO,
        _ => theme::ROLLBACK,
    }
}

impl Plot for SpectrumChart {
    fn size(&self) -> (u32, u32) {
        (theme::WIDTH, 2200)
    }

    fn draw<DB: DrawingBackend>(&self, area: &Area<DB>) -> DrawResult<DB> {
        let panels = area.split_evenly((4, 2));
        let measures: [(&str, &str, Pick); 8] = [
            ("capacity at the SLO", "journeys per second", |point| {
                point.capacity.clone()
            }),
            ("CPU per request", "CPU ms per request", |point| {
                point.cpu_ms_per_request.clone()
            }),
            ("p99 at the highest level", "ms", |point| {
                point.p99_ms.clone()
            }),
            ("memory (RSS summed)", "MiB", |point| {
                point.memory_mib.clone()
            }),
            (
                "blast radius of a kill",
                "% of route templates degraded",
                |point| point.blast_kill.clone(),
            ),
            (
                "blast radius of the errors fault",
                "% of route templates degraded",
                |point| point.blast_errors.clone(),
            ),
            (
                "a payments change restarts",
                "% of the shop's contexts",
                |point| {
                    point
                        .payments_roll
                        .as_ref()
                        .and_then(|roll| Spread::of([roll.share_percent]))
                },
            ),
            (
                "failed requests in the payments roll",
                "requests",
                |point| point.payments_roll.as_ref().map(|roll| roll.failed.clone()),
            ),
        ];
        for (panel, (caption, y_desc, pick)) in panels.iter().zip(measures) {
            // A count of requests is whole: a panel of zeros still gets an axis up to one.
            let floor = if y_desc == "requests" { 1.0 } else { 1e-3 };
            self.panel(panel, caption, y_desc, pick, floor)?;
        }
        Ok(())
    }
}

impl SpectrumChart {
    fn panel<DB: DrawingBackend>(
        &self,
        area: &Area<DB>,
        caption: &str,
        y_desc: &str,
        pick: Pick,
        floor: f64,
    ) -> DrawResult<DB> {
        let values: Vec<(&SpectrumPoint, Spread)> = self
            .points
            .iter()
            .filter_map(|point| pick(point).map(|spread| (point, spread)))
            .collect();
        if values.is_empty() {
            return theme::empty_note(area, &format!("{caption}: not measured"));
        }
        let y_max = axis_max(values.iter().map(|(_, spread)| spread.max), floor, 1.25);
        let mut chart = ChartBuilder::on(area)
            .caption(caption, theme::panel_style())
            .margin(10)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(0.5f64..9.0f64, 0f64..y_max)?;
        let mut mesh = chart.configure_mesh();
        theme::mesh(&mut mesh);
        mesh.x_desc("processes")
            .y_desc(y_desc)
            .x_labels(8)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| theme::tick(*y, y_max))
            .draw()?;
        for (point, spread) in &values {
            let x = point.processes as f64;
            let color = color_of(&point.topology);
            if spread.samples > 1 {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(x, spread.min), (x, spread.max)],
                    theme::line(color, 2),
                )))?;
            }
            chart.draw_series(std::iter::once(Circle::new(
                (x, spread.median),
                7,
                color.filled(),
            )))?;
            // The label beside its point, so points at one x (topologies of as many
            // processes) stay apart by their height.
            chart.draw_series(std::iter::once(
                EmptyElement::at((x, spread.median))
                    + Text::new(point.topology.clone(), (10, -22), theme::small_style()),
            ))?;
        }
        Ok(())
    }
}
