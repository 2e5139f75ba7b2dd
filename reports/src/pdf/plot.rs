//! A plotters drawing backend over a printpdf page: the PDF's charts are drawn by the same
//! plotters code as the SVG ones, as vector lines, rectangles and text in the embedded font.

use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
    FontTransform,
};
use printpdf::path::PaintMode;
use printpdf::{Color, IndirectFontRef, Line, Mm, PdfLayerReference, Point, Pt, Rect, Rgb, TextMatrix};

/// Draws into the rectangle of a page whose lower-left corner is `origin` (mm), `size` pixels
/// wide and high at `mm_per_px`.
pub struct PdfBackend<'a> {
    pub layer: &'a PdfLayerReference,
    pub font: &'a IndirectFontRef,
    pub origin: (f32, f32),
    pub size: (u32, u32),
    pub mm_per_px: f32,
}

const MM_PER_PT: f32 = 0.352_778;

impl PdfBackend<'_> {
    fn point(&self, (x, y): BackendCoord) -> Point {
        Point::new(
            Mm(self.origin.0 + x as f32 * self.mm_per_px),
            Mm(self.origin.1 + (self.size.1 as f32 - y as f32) * self.mm_per_px),
        )
    }

    /// The colour, its transparency blended onto the white page (PDF has no alpha here).
    fn colour(c: BackendColor) -> Option<Color> {
        let a = c.alpha.clamp(0.0, 1.0) as f32;
        let blend = |v: u8| 1.0 - a * (1.0 - f32::from(v) / 255.0);
        let (r, g, b) = c.rgb;
        (a > 0.01).then(|| Color::Rgb(Rgb::new(blend(r), blend(g), blend(b), None)))
    }

    fn stroke<S: BackendStyle>(&self, style: &S) -> bool {
        match Self::colour(style.color()) {
            Some(c) => {
                self.layer.set_outline_color(c);
                self.layer.set_outline_thickness(style.stroke_width() as f32 * self.mm_per_px / MM_PER_PT);
                true
            }
            None => false,
        }
    }
}

type Result<T = ()> = std::result::Result<T, DrawingErrorKind<std::io::Error>>;

impl DrawingBackend for PdfBackend<'_> {
    type ErrorType = std::io::Error;

    fn get_size(&self) -> (u32, u32) {
        self.size
    }

    fn ensure_prepared(&mut self) -> Result {
        Ok(())
    }

    fn present(&mut self) -> Result {
        Ok(())
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result {
        self.draw_rect(point, (point.0 + 1, point.1 + 1), &color, true)
    }

    fn draw_line<S: BackendStyle>(&mut self, from: BackendCoord, to: BackendCoord, style: &S) -> Result {
        if self.stroke(style) {
            self.layer.add_line(Line {
                points: vec![(self.point(from), false), (self.point(to), false)],
                is_closed: false,
            });
        }
        Ok(())
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        ul: BackendCoord,
        br: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result {
        let Some(c) = Self::colour(style.color()) else { return Ok(()) };
        let (a, b) = (self.point((ul.0, br.1)), self.point((br.0, ul.1)));
        let rect = Rect::new(Mm::from(a.x), Mm::from(a.y), Mm::from(b.x), Mm::from(b.y));
        if fill {
            self.layer.set_fill_color(c);
            self.layer.add_rect(rect.with_mode(PaintMode::Fill));
        } else if self.stroke(style) {
            self.layer.add_rect(rect.with_mode(PaintMode::Stroke));
        }
        Ok(())
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result {
        if self.stroke(style) {
            let points: Vec<(Point, bool)> = path.into_iter().map(|p| (self.point(p), false)).collect();
            if points.len() > 1 {
                self.layer.add_line(Line { points, is_closed: false });
            }
        }
        Ok(())
    }

    fn draw_text<T: BackendTextStyle>(&mut self, text: &str, style: &T, pos: BackendCoord) -> Result {
        let Some(c) = Self::colour(style.color()) else { return Ok(()) };
        let ((x0, y0), (x1, y1)) = style.layout_box(text).unwrap_or(((0, 0), (text.len() as i32 * 6, 12)));
        let (w, h) = ((x1 - x0) as f32, (y1 - y0) as f32);
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Center => -w / 2.0,
            HPos::Right => -w,
        };
        let dy = match anchor.v_pos {
            VPos::Top => h,
            VPos::Center => h / 2.0,
            VPos::Bottom => 0.0,
        };
        let size_pt = style.size() as f32 * self.mm_per_px / MM_PER_PT;
        let (rotation, at) = match style.transform() {
            // A quarter turn (the value axis's label): along the axis, read upwards.
            FontTransform::Rotate270 => (90.0, (pos.0 as f32 + dy, pos.1 as f32 - dx)),
            FontTransform::Rotate90 => (-90.0, (pos.0 as f32 - dy, pos.1 as f32 + dx)),
            _ => (0.0, (pos.0 as f32 + dx, pos.1 as f32 + dy)),
        };
        let p = self.point((at.0.round() as i32, at.1.round() as i32));
        self.layer.set_fill_color(c);
        self.layer.begin_text_section();
        self.layer.set_font(self.font, size_pt);
        self.layer.set_text_matrix(TextMatrix::TranslateRotate(
            Pt::from(Mm::from(p.x)),
            Pt::from(Mm::from(p.y)),
            rotation,
        ));
        self.layer.write_text(text, self.font);
        self.layer.end_text_section();
        Ok(())
    }
}
