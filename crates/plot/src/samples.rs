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

/// PNG bytes of a grey image.
pub fn encode_png(img: &GrayImage) -> Result<Vec<u8>, PlotError> {
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .map_err(|e| PlotError::Encode(e.to_string()))?;
    Ok(bytes)
}
