//! Charts as SVG, drawn with plotters in a bundled font (DejaVu Sans, `reports/fonts/`), so
//! that the same data give the same bytes on every machine.
//!
//! A chart never stands alone: it carries a title and a description (written into the SVG
//! as `<title>` and `<desc>`, so a screen reader announces them) and its data as a table,
//! which every page and report prints beside it.

use std::sync::Once;

use plotters::prelude::*;
use serde::Serialize;

/// The bundled font, registered with plotters once.
static FONT: Once = Once::new();
const SANS: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
const SANS_BOLD: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");

/// The family every chart is drawn in.
pub const FAMILY: &str = "DejaVu Sans";

/// Registers the bundled fonts with plotters (once).
pub(crate) fn font() {
    FONT.call_once(|| {
        // A font that does not load is a broken build, caught by the tests below.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, SANS);
        let _ = plotters::style::register_font(FAMILY, FontStyle::Bold, SANS_BOLD);
    });
}

/// What a chart shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Kind {
    /// One bar per label.
    Bar,
    /// One line per series, over the labels in order.
    Line,
}

/// A chart: its words, and its data as a table (labels × series).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chart {
    /// Says what is shown (`Need-to-know findings per rule`).
    pub title: String,
    /// Says what to see in it, for those who cannot.
    pub description: String,
    /// Bar or line.
    pub kind: Kind,
    /// What the labels are (`rule`, `year`).
    pub x_label: String,
    /// What the values are, with the unit (`findings`, `days`).
    pub y_label: String,
    /// The categories, in order.
    pub labels: Vec<String>,
    /// Named series of one value per label (`None`: no value, e.g. suppressed).
    pub series: Vec<(String, Vec<Option<f64>>)>,
}

const PALETTE: [RGBColor; 4] =
    [RGBColor(0, 68, 148), RGBColor(200, 80, 0), RGBColor(0, 120, 60), RGBColor(120, 40, 140)];

impl Chart {
    /// The chart as a standalone SVG document.
    pub fn svg(&self) -> String {
        font();
        let (w, h) = (720u32, 360u32);
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, (w, h)).into_drawing_area();
            // Errors of drawing into a string cannot happen with a registered font; a chart
            // that fails still yields its table beside it.
            let _ = self.draw(&root);
            let _ = root.present();
        }
        accessible(&out, &self.title, &self.description)
    }

    /// Draws the chart on `root`, whatever the backend (SVG for pages, PDF for reports).
    pub(crate) fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let max = self.series.iter().flat_map(|(_, v)| v.iter().flatten()).fold(0.0f64, |a, &b| a.max(b));
        let top = if max <= 0.0 { 1.0 } else { max * 1.1 };
        let n = self.labels.len().max(1);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 18).into_font())
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d((0..n).into_segmented(), 0.0..top)
            .map_err(|e| e.to_string())?;
        let labels = self.labels.clone();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .x_labels(n.min(24))
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                    labels.get(*i).cloned().unwrap_or_default()
                }
                SegmentValue::Last => String::new(),
            })
            .label_style((FAMILY, 12))
            .axis_desc_style((FAMILY, 13))
            .draw()
            .map_err(|e| e.to_string())?;
        match self.kind {
            Kind::Bar => {
                // Several series of bars overlap in a label's slot: bar charts here carry one.
                for (s, (name, values)) in self.series.iter().enumerate() {
                    let colour = PALETTE[s % PALETTE.len()];
                    let bars =
                        values.iter().enumerate().filter_map(|(i, v)| v.map(|v| (i, v))).map(|(i, v)| {
                            Rectangle::new(
                                [(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), v)],
                                colour.filled(),
                            )
                        });
                    chart
                        .draw_series(bars)
                        .map_err(|e| e.to_string())?
                        .label(name.as_str())
                        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled()));
                }
            }
            Kind::Line => {
                for (s, (name, values)) in self.series.iter().enumerate() {
                    let colour = PALETTE[s % PALETTE.len()];
                    let points: Vec<(SegmentValue<usize>, f64)> = values
                        .iter()
                        .enumerate()
                        .filter_map(|(i, v)| v.map(|v| (SegmentValue::CenterOf(i), v)))
                        .collect();
                    chart
                        .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                        .map_err(|e| e.to_string())?
                        .label(name.as_str())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 14, y)], colour.stroke_width(2))
                        });
                    chart
                        .draw_series(points.into_iter().map(|p| Circle::new(p, 3, colour.filled())))
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        if self.series.len() > 1 {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK)
                .label_font((FAMILY, 12))
                .draw()
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// `svg` with a `<title>` and `<desc>` first, and the roles that make a screen reader
/// announce them.
fn accessible(svg: &str, title: &str, description: &str) -> String {
    let Some(open_end) = svg.find("<svg").and_then(|s| svg[s..].find('>').map(|e| s + e)) else {
        return svg.to_owned();
    };
    format!(
        "{} role=\"img\" aria-labelledby=\"chart-title chart-desc\">\n<title id=\"chart-title\">{}</title>\n<desc id=\"chart-desc\">{}</desc>{}",
        &svg[..open_end],
        escape(title),
        escape(description),
        &svg[open_end + 1..]
    )
}

/// Text made safe for XML and HTML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(kind: Kind) -> Chart {
        Chart {
            title: "Findings per rule".into(),
            description: "NTK-DOMAIN has the most findings".into(),
            kind,
            x_label: "rule".into(),
            y_label: "findings".into(),
            labels: vec!["NTK-DOMAIN".into(), "NTK-INVOLVED".into(), "NTK-BLOCKED".into()],
            series: vec![("2025".into(), vec![Some(12.0), Some(7.0), None])],
        }
    }

    #[test]
    fn a_chart_is_an_svg_with_its_title_description_and_labels() {
        for kind in [Kind::Bar, Kind::Line] {
            let svg = sample(kind).svg();
            assert!(svg.starts_with("<svg"), "{svg}");
            assert!(svg.contains("<title id=\"chart-title\">Findings per rule</title>"));
            assert!(svg.contains("<desc id=\"chart-desc\">NTK-DOMAIN has the most findings</desc>"));
            assert!(svg.contains("NTK-INVOLVED"), "axis labels are drawn");
            assert!(svg.contains("<rect") || svg.contains("<polyline") || svg.contains("<path"));
        }
    }

    #[test]
    fn the_same_data_give_the_same_bytes() {
        assert_eq!(sample(Kind::Bar).svg(), sample(Kind::Bar).svg());
    }

    #[test]
    fn text_is_escaped() {
        let mut c = sample(Kind::Bar);
        c.title = "<script>&".into();
        assert!(c.svg().contains("<title id=\"chart-title\">&lt;script&gt;&amp;</title>"));
    }
}
