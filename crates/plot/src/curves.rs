//! Loss curves: D loss, G loss, D(x) and D(G(z)) per epoch, one line per run, as four panels.

use std::sync::Once;

use gan_rundir::EpochMeans;
use image::RgbImage;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::text::GlyphText;
use crate::PlotError;

/// Font family registered from bytes compiled into the binary.
pub(crate) const FONT: &str = "sans-serif";

/// Makes the embedded font available to plotters (once per process).
pub(crate) fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, epaint_default_fonts::UBUNTU_LIGHT)
            .map_err(|_| ())
            .expect("the embedded font parses");
    });
}

/// One run's per-epoch means.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub label: String,
    pub means: Vec<EpochMeans>,
}

impl Curve {
    /// Per-epoch means of a loss log.
    pub fn from_losses(label: &str, rows: &[gan_rundir::LossRow]) -> Curve {
        Curve {
            label: label.to_string(),
            means: gan_rundir::epoch_means(rows),
        }
    }
}

/// Picks one column of the per-epoch means.
type Column = fn(&EpochMeans) -> f64;

const WIDTH: u32 = 1400;
const HEIGHT: u32 = 900;

/// The four panels as PNG bytes.
pub fn loss_panels(curves: &[Curve], title: &str) -> Result<Vec<u8>, PlotError> {
    register_font();
    let mut buf = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root =
            GlyphText(BitMapBackend::with_buffer(&mut buf, (WIDTH, HEIGHT))).into_drawing_area();
        let err =
            |e: DrawingAreaErrorKind<_>| PlotError::Encode(format!("drawing the loss plot: {e:?}"));
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled(title, (FONT, 28)).map_err(err)?;
        let panels = root.split_evenly((2, 2));
        let series: [(&str, &str, Column); 4] = [
            (
                "D loss: mean log D(x) + mean log(1 - D(G(z)))",
                "d_loss",
                |m| m.d_loss,
            ),
            ("G loss (objective G maximises)", "g_loss", |m| m.g_loss),
            ("D(x): mean output on real images", "D(x)", |m| m.d_real),
            ("D(G(z)): mean output on generated images", "D(G(z))", |m| {
                m.d_fake
            }),
        ];
        for (panel, (caption, y_label, pick)) in panels.iter().zip(series) {
            draw_panel(panel, curves, caption, y_label, pick).map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    let img = RgbImage::from_raw(WIDTH, HEIGHT, buf).expect("buffer has the image's size");
    crate::encode_png(&img)
}

/// Distinct colours for up to ten runs, then they repeat.
pub(crate) fn colour(i: usize) -> RGBColor {
    const C: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    C[i % C.len()]
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    curves: &[Curve],
    caption: &str,
    y_label: &str,
    pick: Column,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let finite = |v: &f64| v.is_finite();
    // x is the epoch as the console and the sample pictures number it (0-based); whole
    // numbers, so the axis only ticks whole epochs.
    let x = |m: &EpochMeans| m.epoch as i64;
    let x_max = curves
        .iter()
        .flat_map(|c| c.means.iter().map(x))
        .max()
        .unwrap_or(0)
        .max(1);
    let (mut lo, mut hi) = curves
        .iter()
        .flat_map(|c| c.means.iter().map(pick).filter(finite))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 20))
        .margin(12)
        .margin_right(28)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0..x_max, (lo - pad)..(hi + pad))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_label)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    for (i, c) in curves.iter().enumerate() {
        let colour = colour(i);
        let points: Vec<(i64, f64)> = c
            .means
            .iter()
            .map(|m| (x(m), pick(m)))
            .filter(|(_, y)| y.is_finite())
            .collect();
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
            .label(c.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    Ok(())
}
