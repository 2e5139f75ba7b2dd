//! Reports as PDF: a paginated A4 document with a title page, a contents page with page
//! numbers, numbered pages, charts drawn by plotters as vector graphics (`pdf/plot.rs`), and
//! the bundled DejaVu fonts
//! embedded, made with `printpdf` (pure Rust, offline; it writes the fonts with a ToUnicode
//! map, so the text can be searched and extracted).
//!
//! Layout is done here: text is measured with the font's own advances (`ab_glyph`) and
//! wrapped; tables repeat their header on each page. The document is laid out twice: the
//! first pass learns on which page each part begins and how many pages there are, the second
//! writes the contents and the footers with them. Its identifier and dates are derived from
//! the report, never from a clock, so the same report gives the same PDF.

use ab_glyph::{Font, FontRef};
use printpdf::{
    Color, IndirectFontRef, Line, Mm, PdfDocument, PdfDocumentReference, PdfLayerReference, Point, Rgb,
};

use crate::chart::Chart;
use crate::report::{Report, ReportTable};

mod plot;

const SANS: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
const SANS_BOLD: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");

const PAGE_W: f32 = 210.0;
const PAGE_H: f32 = 297.0;
const MARGIN: f32 = 20.0;
const BOTTOM: f32 = 22.0;
const PT: f32 = 0.352_778; // mm per point

/// Renders `report` as PDF bytes.
pub fn pdf(report: &Report) -> crate::Result<Vec<u8>> {
    let render = |cause: String| crate::Error::Render { what: "the report as PDF", cause };
    let first = Layout::run(report, None).map_err(render)?;
    let second = Layout::run(report, Some((first.starts.clone(), first.pages))).map_err(render)?;
    second.finish().map_err(render)
}

struct Layout {
    doc: PdfDocumentReference,
    regular: IndirectFontRef,
    bold: IndirectFontRef,
    metrics: FontRef<'static>,
    layer: PdfLayerReference,
    y: f32,
    pages: usize,
    /// The page on which each part begins.
    starts: Vec<usize>,
    title: String,
    /// From the first pass: where parts begin, and the page count.
    known: Option<(Vec<usize>, usize)>,
}

impl Layout {
    fn run(report: &Report, known: Option<(Vec<usize>, usize)>) -> Result<Layout, String> {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let (doc, page, layer) = PdfDocument::new(&report.title, Mm(PAGE_W), Mm(PAGE_H), "content");
        // Identity and dates from the report: no clock, no randomness.
        let epoch = printpdf::OffsetDateTime::UNIX_EPOCH
            + std::time::Duration::from_secs(report.period.to.max(0) as u64 / 1_000_000);
        let id: String = format!("{:?}{}{}", report.kind, report.year, report.title)
            .bytes()
            .map(|b| format!("{:02x}", b % 255))
            .take(32)
            .collect();
        let doc =
            doc.with_document_id(id).with_creation_date(epoch).with_mod_date(epoch).with_metadata_date(epoch);
        let regular = doc.add_external_font(std::io::Cursor::new(SANS)).map_err(|e| err(&e))?;
        let bold = doc.add_external_font(std::io::Cursor::new(SANS_BOLD)).map_err(|e| err(&e))?;
        let metrics = FontRef::try_from_slice(SANS).map_err(|e| err(&e))?;
        let layer = doc.get_page(page).get_layer(layer);
        let mut l = Layout {
            doc,
            regular,
            bold,
            metrics,
            layer,
            y: PAGE_H - MARGIN,
            pages: 1,
            starts: Vec::new(),
            title: report.title.clone(),
            known,
        };
        l.title_page(report);
        l.contents(report);
        for (i, part) in report.parts.iter().enumerate() {
            l.new_page();
            l.starts.push(l.pages);
            l.text(&format!("{}. {}", i + 1, part.heading), 15.0, true);
            l.y -= 2.0;
            for p in &part.paragraphs {
                l.paragraph(p, 10.0);
            }
            for (chart, table) in &part.charts {
                l.chart(chart);
                l.table(table);
            }
            for t in &part.tables {
                l.table(t);
            }
            for (heading, text) in &part.texts {
                l.need(20.0);
                l.paragraph(heading, 9.0);
                for line in text.lines() {
                    l.paragraph(line, 7.5);
                }
                l.y -= 2.0;
            }
        }
        l.footer();
        Ok(l)
    }

    fn finish(self) -> Result<Vec<u8>, String> {
        self.doc.save_to_bytes().map_err(|e| e.to_string())
    }

    /// Width of `s` at `size` points, in millimetres.
    fn width(&self, s: &str, size: f32) -> f32 {
        let em = self.metrics.units_per_em().unwrap_or(2048.0);
        let units: f32 = s.chars().map(|c| self.metrics.h_advance_unscaled(self.metrics.glyph_id(c))).sum();
        units / em * size * PT
    }

    fn new_page(&mut self) {
        self.footer();
        let (page, layer) = self.doc.add_page(Mm(PAGE_W), Mm(PAGE_H), "content");
        self.layer = self.doc.get_page(page).get_layer(layer);
        self.pages += 1;
        self.y = PAGE_H - MARGIN;
    }

    /// The page number at the bottom of the page just finished (not on the title page).
    fn footer(&mut self) {
        if self.pages > 1 {
            let total = self.known.as_ref().map_or(String::new(), |(_, n)| format!(" of {n}"));
            let text = format!("{} · page {}{total}", self.title, self.pages);
            let w = self.width(&text, 8.0);
            self.layer.use_text(text, 8.0, Mm((PAGE_W - w) / 2.0), Mm(12.0), &self.regular);
        }
    }

    /// Starts a new page unless `mm` fit on this one.
    fn need(&mut self, mm: f32) {
        if self.y - mm < BOTTOM {
            self.new_page();
        }
    }

    fn text(&mut self, s: &str, size: f32, bold: bool) {
        let h = size * PT * 1.35;
        self.need(h);
        self.y -= h;
        let font = if bold { &self.bold } else { &self.regular };
        self.layer.use_text(s, size, Mm(MARGIN), Mm(self.y), font);
    }

    /// Wraps `s` to the text width.
    fn paragraph(&mut self, s: &str, size: f32) {
        for line in self.wrap(s, size, PAGE_W - 2.0 * MARGIN) {
            self.text(&line, size, false);
        }
        self.y -= size * PT * 0.5;
    }

    fn wrap(&self, s: &str, size: f32, width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = String::new();
        for word in s.split(' ') {
            let candidate = if line.is_empty() { word.to_owned() } else { format!("{line} {word}") };
            if self.width(&candidate, size) > width && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                line = word.to_owned();
            } else {
                line = candidate;
            }
            // A word longer than the line is cut.
            while self.width(&line, size) > width && line.chars().count() > 1 {
                let cut: String = line.chars().take(line.chars().count() * 9 / 10).collect();
                let rest: String = line.chars().skip(cut.chars().count()).collect();
                lines.push(cut);
                line = rest;
            }
        }
        if !line.is_empty() || lines.is_empty() {
            lines.push(line);
        }
        lines
    }

    fn title_page(&mut self, r: &Report) {
        self.y = PAGE_H - 70.0;
        for line in self.wrap(&r.title, 24.0, PAGE_W - 2.0 * MARGIN) {
            self.text(&line, 24.0, true);
        }
        self.y -= 4.0;
        self.paragraph(&r.subtitle, 12.0);
        self.y -= 20.0;
        for (k, v) in &r.provenance {
            self.text(k, 9.0, true);
            self.paragraph(v, 9.0);
        }
    }

    fn contents(&mut self, r: &Report) {
        self.new_page();
        self.text("Contents", 15.0, true);
        self.y -= 3.0;
        for (i, part) in r.parts.iter().enumerate() {
            let label = format!("{}. {}", i + 1, part.heading);
            let page =
                self.known.as_ref().and_then(|(s, _)| s.get(i)).map(ToString::to_string).unwrap_or_default();
            self.text(&label, 11.0, false);
            let w = self.width(&page, 11.0);
            self.layer.use_text(page, 11.0, Mm(PAGE_W - MARGIN - w), Mm(self.y), &self.regular);
        }
    }

    fn table(&mut self, t: &ReportTable) {
        let size = 8.0;
        let row_h = size * PT * 1.5;
        let n = t.columns.len().max(1);
        let avail = PAGE_W - 2.0 * MARGIN;
        // Column widths in proportion to their widest cell, each at least a tenth of the rest.
        let widest: Vec<f32> = (0..n)
            .map(|j| {
                let header = self.width(&t.columns[j], size);
                t.rows.iter().filter_map(|r| r.get(j)).map(|c| self.width(c, size)).fold(header, f32::max)
                    + 2.0
            })
            .collect();
        let total: f32 = widest.iter().sum();
        let widths: Vec<f32> =
            widest.iter().map(|w| (w / total * avail).max(avail / (n as f32 * 10.0))).collect();
        let scale = avail / widths.iter().sum::<f32>();
        let widths: Vec<f32> = widths.iter().map(|w| w * scale).collect();
        self.need(row_h * 3.0);
        self.paragraph(&t.caption, 9.5);
        let header = |l: &mut Layout| {
            l.need(row_h);
            l.y -= row_h;
            let mut x = MARGIN;
            for (j, c) in t.columns.iter().enumerate() {
                let text = l.fit(c, size, widths[j] - 1.0);
                l.layer.use_text(text, size, Mm(x), Mm(l.y), &l.bold);
                x += widths[j];
            }
            l.rule(l.y - 1.0);
        };
        header(self);
        for row in &t.rows {
            if self.y - row_h < BOTTOM {
                self.new_page();
                header(self);
            }
            self.y -= row_h;
            let mut x = MARGIN;
            for (j, c) in row.iter().enumerate().take(n) {
                let text = self.fit(c, size, widths[j] - 1.0);
                self.layer.use_text(text, size, Mm(x), Mm(self.y), &self.regular);
                x += widths[j];
            }
        }
        if t.rows.is_empty() {
            self.text("None.", size, false);
        }
        self.y -= 4.0;
    }

    /// `s` cut to `width`, with an ellipsis when cut.
    fn fit(&self, s: &str, size: f32, width: f32) -> String {
        if self.width(s, size) <= width {
            return s.to_owned();
        }
        let mut out: String = s.to_owned();
        while !out.is_empty() && self.width(&format!("{out}…"), size) > width {
            out.pop();
        }
        format!("{out}…")
    }

    fn rule(&self, y: f32) {
        self.layer.set_outline_color(Color::Rgb(Rgb::new(0.4, 0.4, 0.4, None)));
        self.layer.set_outline_thickness(0.3);
        self.layer.add_line(Line {
            points: vec![
                (Point::new(Mm(MARGIN), Mm(y)), false),
                (Point::new(Mm(PAGE_W - MARGIN), Mm(y)), false),
            ],
            is_closed: false,
        });
    }

    /// The chart, drawn by plotters (the same drawing as the SVG) into the page.
    fn chart(&mut self, c: &Chart) {
        crate::chart::font();
        let size = (720u32, 360u32);
        let mm_per_px = (PAGE_W - 2.0 * MARGIN) / size.0 as f32;
        let h = size.1 as f32 * mm_per_px;
        self.need(h + 8.0);
        {
            let backend = plot::PdfBackend {
                layer: &self.layer,
                font: &self.regular,
                origin: (MARGIN, self.y - h),
                size,
                mm_per_px,
            };
            let root = plotters::prelude::IntoDrawingArea::into_drawing_area(backend);
            // A chart that fails to draw still has its table below it.
            let _ = c.draw(&root);
        }
        self.layer.set_fill_color(Color::Rgb(Rgb::new(0.0, 0.0, 0.0, None)));
        self.y -= h + 2.0;
        self.paragraph(&c.description, 8.0);
    }
}
