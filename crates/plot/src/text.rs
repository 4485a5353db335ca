//! Text with each glyph where its font puts it.
//!
//! plotters 0.3.7 draws `ab_glyph` text by placing every glyph's pixels at the pen position
//! without the glyph's left bearing (`px_bounds().min.x`), which opens gaps inside words
//! ("ep och", "ob jective"). [`GlyphText`] wraps a backend and draws text itself with the same
//! font (`ab_glyph` rasterises the glyphs), the same layout box, anchor and rotation, but
//! each glyph at its pen position plus its bearing; everything else goes to the wrapped
//! backend unchanged.

use std::sync::OnceLock;

use ab_glyph::{point, Font, FontRef, ScaleFont};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};

/// The one font of every picture (the same bytes registered with plotters).
fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    FONT.get_or_init(|| {
        FontRef::try_from_slice(epaint_default_fonts::UBUNTU_LIGHT)
            .expect("the embedded font parses")
    })
}

/// `(x, y, coverage)` of the pixels of `text` at size `size`, relative to the layout box's
/// top left corner as plotters lays it out (baseline at half the size below the glyph tops'
/// reference, as plotters' own drawing does).
fn glyph_pixels(text: &str, size: f32) -> Vec<(i32, i32, f32)> {
    let scaled = font().as_scaled(size);
    let mut pixels = Vec::new();
    let mut pen = 0.0f32;
    let mut prev = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            pen += scaled.kern(p, id);
        }
        let glyph = id.with_scale_and_position(scaled.scale(), point(pen, 0.0));
        if let Some(outline) = scaled.outline_glyph(glyph) {
            let bounds = outline.px_bounds();
            let (x0, y0) = (bounds.min.x as i32, (size / 2.0 + bounds.min.y) as i32);
            outline.draw(|x, y, coverage| pixels.push((x0 + x as i32, y0 + y as i32, coverage)));
        }
        pen += scaled.h_advance(id);
        prev = Some(id);
    }
    pixels
}

/// A backend whose text is drawn by [`glyph_pixels`].
pub(crate) struct GlyphText<B>(pub B);

impl<B: DrawingBackend> DrawingBackend for GlyphText<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.blit_bitmap(pos, size, src)
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        // Placement exactly as plotters' default `draw_text`, from its own layout box.
        let ((min_x, min_y), (max_x, max_y)) = style
            .layout_box(text)
            .map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
        let (width, height) = (max_x - min_x, max_y - min_y);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -width,
            HPos::Center => -width / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let transform = style.transform();
        let (w, h) = self.get_size();
        for (x, y, coverage) in glyph_pixels(text, style.size() as f32) {
            let (x, y) = transform.transform(x + dx - min_x, y + dy - min_y);
            let (x, y) = (pos.0 + x, pos.1 + y);
            if x >= 0 && x < w as i32 && y >= 0 && y < h as i32 {
                let pixel = BackendColor {
                    alpha: color.alpha * coverage as f64,
                    rgb: color.rgb,
                };
                self.0.draw_pixel((x, y), pixel)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Widths of the runs of columns no glyph covers, left to right.
    fn gaps(text: &str) -> Vec<i32> {
        let pixels = glyph_pixels(text, 16.0);
        let lo = pixels.iter().map(|p| p.0).min().unwrap();
        let hi = pixels.iter().map(|p| p.0).max().unwrap();
        let mut out = Vec::new();
        let mut run = 0;
        for x in lo..=hi {
            if pixels.iter().any(|p| p.0 == x && p.2 > 0.1) {
                if run > 0 {
                    out.push(run);
                }
                run = 0;
            } else {
                run += 1;
            }
        }
        out
    }

    #[test]
    fn the_letters_of_a_word_are_evenly_spaced() {
        // At the legend's size every letter of these words stands apart by 1-2 pixels.
        // plotters' own layout (no bearing) overlapped some letters and left a hole after
        // others: `baseline` gave gaps [1, 1, 2, 2], `epoch` gave [2] ("ep och").
        assert_eq!(gaps("baseline"), [1; 7]);
        let epoch = gaps("epoch");
        assert_eq!(epoch.len(), 4, "{epoch:?}");
        assert!(epoch.iter().all(|&g| (1..=2).contains(&g)), "{epoch:?}");
        // A space is wider than any gap between letters.
        assert!(gaps("D loss")[0] >= 4);
    }
}
