//! A hand-written SVG line chart: log-scale x (levels) or linear x (time series), one
//! quantity on the left axis and another on the right (dashed). No plotting crate.

use std::fmt::Write as _;

pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub color: &'static str,
    /// Plotted against the right axis, dashed.
    pub right: bool,
}

pub struct Chart {
    pub title: String,
    /// Log-scale x with a tick per level; otherwise linear with five ticks.
    pub log_x: bool,
    pub x_label: String,
    pub left_label: String,
    pub right_label: String,
    pub series: Vec<Series>,
}

const W: f64 = 640.0;
const H: f64 = 360.0;
const L: f64 = 80.0;
const R: f64 = 80.0;
const T: f64 = 40.0;
const B: f64 = 90.0;

fn nice_max(v: f64) -> f64 {
    if v.is_nan() || v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

fn fmt_num(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

impl Chart {
    /// The chart, translated by (`dx`, `dy`), as an SVG group.
    pub fn group(&self, dx: f64, dy: f64) -> String {
        let mut s = String::new();
        let xs: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .filter(|x| *x > 0.0 || (!self.log_x && x.is_finite()))
            .collect();
        let (xmin, xmax) = xs
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(*x), b.max(*x)));
        let (xmin, xmax) = if xs.is_empty() || xmin >= xmax {
            (1.0, 10.0)
        } else {
            (xmin, xmax)
        };
        let ymax = |right: bool| {
            nice_max(
                self.series
                    .iter()
                    .filter(|s| s.right == right)
                    .flat_map(|s| s.points.iter().map(|p| p.1))
                    .filter(|y| y.is_finite())
                    .fold(0.0, f64::max),
            )
        };
        let (lmax, rmax) = (ymax(false), ymax(true));
        let px = |x: f64| {
            if self.log_x {
                L + (x.ln() - xmin.ln()) / (xmax.ln() - xmin.ln()) * (W - L - R)
            } else {
                L + (x - xmin) / (xmax - xmin) * (W - L - R)
            }
        };
        let py = |y: f64, right: bool| {
            let max = if right { rmax } else { lmax };
            H - B - (y / max) * (H - T - B)
        };
        let _ = write!(
            s,
            r#"<g transform="translate({dx},{dy})" font-family="sans-serif" font-size="11">"#
        );
        let _ = write!(
            s,
            r#"<rect width="{W}" height="{H}" fill="white"/><text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#,
            W / 2.0,
            self.title
        );
        // Axes and grid.
        let _ = write!(
            s,
            r##"<line x1="{L}" y1="{}" x2="{}" y2="{}" stroke="#333"/><line x1="{L}" y1="{T}" x2="{L}" y2="{}" stroke="#333"/><line x1="{}" y1="{T}" x2="{}" y2="{}" stroke="#333"/>"##,
            H - B,
            W - R,
            H - B,
            H - B,
            W - R,
            W - R,
            H - B
        );
        for i in 0..=4 {
            let f = f64::from(i) / 4.0;
            let y = H - B - f * (H - T - B);
            let _ = write!(
                s,
                r##"<line x1="{L}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text><text x="{}" y="{}">{}</text>"##,
                W - R,
                L - 4.0,
                y + 4.0,
                fmt_num(f * lmax),
                W - R + 4.0,
                y + 4.0,
                fmt_num(f * rmax)
            );
        }
        let mut ticks: Vec<f64> = if self.log_x {
            xs.clone()
        } else {
            (0..=5)
                .map(|i| xmin + (xmax - xmin) * f64::from(i) / 5.0)
                .collect()
        };
        ticks.sort_by(f64::total_cmp);
        ticks.dedup();
        for x in ticks {
            let _ = write!(
                s,
                r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
                px(x),
                H - B + 14.0,
                fmt_num(x)
            );
        }
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text><text transform="translate(16,{}) rotate(-90)" text-anchor="middle">{}</text><text transform="translate({},{}) rotate(90)" text-anchor="middle">{}</text>"#,
            (L + W - R) / 2.0,
            H - B + 30.0,
            self.x_label,
            (T + H - B) / 2.0,
            self.left_label,
            W - 14.0,
            (T + H - B) / 2.0,
            self.right_label
        );
        for (i, series) in self.series.iter().enumerate() {
            let points: Vec<String> = series
                .points
                .iter()
                .filter(|p| (p.0 > 0.0 || !self.log_x) && p.1.is_finite())
                .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.1, series.right)))
                .collect();
            let dash = if series.right {
                r#" stroke-dasharray="6,4""#
            } else {
                ""
            };
            let _ = write!(
                s,
                r#"<polyline fill="none" stroke="{}" stroke-width="2"{dash} points="{}"/>"#,
                series.color,
                points.join(" ")
            );
            // Time series have hundreds of points: the line alone.
            for p in points.iter().filter(|_| points.len() <= 40) {
                let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = write!(
                    s,
                    r#"<circle cx="{x}" cy="{y}" r="3" fill="{}"/>"#,
                    series.color
                );
            }
            let lx = L + (i % 2) as f64 * 260.0;
            let ly = H - B + 48.0 + (i / 2) as f64 * 16.0;
            let _ = write!(
                s,
                r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
                lx + 24.0,
                series.color,
                lx + 30.0,
                ly + 4.0,
                series.name
            );
        }
        s.push_str("</g>");
        s
    }
}

/// Charts stacked vertically in one SVG document.
pub fn document(charts: &[Chart]) -> String {
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{}" viewBox="0 0 {W} {}">"#,
        H * charts.len() as f64,
        H * charts.len() as f64
    );
    for (i, chart) in charts.iter().enumerate() {
        s.push_str(&chart.group(0.0, H * i as f64));
    }
    s.push_str("</svg>\n");
    s
}
