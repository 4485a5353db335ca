//! Generated digits side by side, upscaled so they read at a glance.

use image::{GrayImage, Luma};

use crate::PlotError;

const SIDE: usize = 28;

/// How to lay out a picture of digits.
#[derive(Debug, Clone, Copy)]
pub struct SampleGrid {
    /// Digits per row (the tutorial shows 10 in one row).
    pub per_row: usize,
    /// Each pixel becomes a `scale x scale` block.
    pub scale: u32,
    /// Background pixels between digits.
    pub gap: u32,
}

impl Default for SampleGrid {
    fn default() -> Self {
        SampleGrid {
            per_row: 10,
            scale: 3,
            gap: 4,
        }
    }
}

/// Draws `images` (`n x 784`, values in [0, 1]) as white digits on black, like MNIST.
pub fn sample_grid(images: &[f32], grid: SampleGrid) -> GrayImage {
    let n = images.len() / (SIDE * SIDE);
    let per_row = grid.per_row.max(1).min(n.max(1));
    let rows = n.div_ceil(per_row).max(1);
    let cell = SIDE as u32 * grid.scale;
    let width = per_row as u32 * (cell + grid.gap) + grid.gap;
    let height = rows as u32 * (cell + grid.gap) + grid.gap;
    let mut img = GrayImage::from_pixel(width, height, Luma([40]));
    for (i, digit) in images.chunks_exact(SIDE * SIDE).enumerate() {
        let x0 = grid.gap + (i % per_row) as u32 * (cell + grid.gap);
        let y0 = grid.gap + (i / per_row) as u32 * (cell + grid.gap);
        for (p, &v) in digit.iter().enumerate() {
            let level = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            let (px, py) = (
                (p % SIDE) as u32 * grid.scale,
                (p / SIDE) as u32 * grid.scale,
            );
            for dy in 0..grid.scale {
                for dx in 0..grid.scale {
                    img.put_pixel(x0 + px + dx, y0 + py + dy, Luma([level]));
                }
            }
        }
    }
    img
}

impl SampleGrid {
    /// Draws the digits as PNG bytes (callers write them atomically).
    pub fn encode_png(&self, images: &[f32]) -> Result<Vec<u8>, PlotError> {
        encode_png(&sample_grid(images, *self))
    }
}

/// PNG bytes of an image, grey or colour.
pub fn encode_png<P>(img: &image::ImageBuffer<P, Vec<u8>>) -> Result<Vec<u8>, PlotError>
where
    P: image::PixelWithColorType<Subpixel = u8>,
{
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .map_err(|e| PlotError::Encode(e.to_string()))?;
    Ok(bytes)
}

/// Pictures stacked top to bottom, each with its label on the left (e.g. each run's final
/// samples), as PNG bytes.
pub fn labelled_rows(rows: &[(String, GrayImage)]) -> Result<Vec<u8>, PlotError> {
    use plotters::prelude::*;
    crate::curves::register_font();
    const PAD: u32 = 8;
    // Room for the longest label (about 10 pixels a character at this size), no more.
    let longest = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0) as u32;
    let label_width = (longest * 10 + 3 * PAD).clamp(120, 640);
    let width = label_width + rows.iter().map(|(_, img)| img.width()).max().unwrap_or(0) + PAD;
    let height = rows
        .iter()
        .map(|(_, img)| img.height() + PAD)
        .sum::<u32>()
        .max(1)
        + PAD;
    let mut buf = vec![255u8; (width * height * 3) as usize];
    {
        let root = crate::text::GlyphText(BitMapBackend::with_buffer(&mut buf, (width, height)))
            .into_drawing_area();
        let err =
            |e: DrawingAreaErrorKind<_>| PlotError::Encode(format!("drawing the samples: {e:?}"));
        let mut y = PAD;
        for (i, (label, img)) in rows.iter().enumerate() {
            let colour = crate::curves::colour(i);
            let style = TextStyle::from((crate::curves::FONT, 18).into_font()).color(&colour);
            let text_y = (y + img.height() / 2).saturating_sub(9) as i32;
            root.draw(&Text::new(label.clone(), (PAD as i32, text_y), style))
                .map_err(err)?;
            y += img.height() + PAD;
        }
        root.present().map_err(err)?;
    }
    let mut canvas =
        image::RgbImage::from_raw(width, height, buf).expect("buffer has the image's size");
    let mut y = PAD;
    for (_, img) in rows {
        for (x, yy, p) in img.enumerate_pixels() {
            canvas.put_pixel(label_width + x, y + yy, image::Rgb([p.0[0]; 3]));
        }
        y += img.height() + PAD;
    }
    encode_png(&canvas)
}
