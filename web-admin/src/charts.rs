//! Charts as inline SVG, drawn on the server: no JavaScript, no network, prints fine.
//!
//! Three shapes cover the metrics page: vertical bars (requests per day, by hour), lines with
//! gaps (p50/p90 per day; a day without samples breaks the line rather than dropping to zero)
//! and horizontal bars (per person). Every text is XML-escaped here, so the result can be put
//! in a template with `| safe`. Charts scale to their container (`viewBox`, width 100%).

use std::fmt::Write;

const W: f64 = 720.0;
const H: f64 = 240.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 36.0;

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// A "nice" axis maximum ≥ `max` (1, 2, 2.5, 5 × 10^k) and its tick step.
fn nice_max(max: f64) -> (f64, f64) {
    if !(max > 0.0) || !max.is_finite() {
        return (1.0, 0.25);
    }
    let exp = max.log10().floor();
    let base = 10f64.powf(exp);
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * base >= max {
            let top = m * base;
            return (top, top / 4.0);
        }
    }
    (10.0 * base, 2.5 * base)
}

fn open(out: &mut String, label: &str, height: f64) {
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {W} {height}" width="100%" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        escape(label)
    );
}

fn y_axis(out: &mut String, top: f64, step: f64, fmt: &dyn Fn(f64) -> String) {
    let mut v = 0.0;
    while v <= top + step / 2.0 {
        let y = TOP + (H - TOP - BOTTOM) * (1.0 - v / top);
        let _ = write!(out, r#"<line class="grid" x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}"/>"#, W - RIGHT);
        let _ = write!(out, r#"<text class="tick" x="{}" y="{:.1}" text-anchor="end">{}</text>"#, LEFT - 6.0, y + 4.0, escape(&fmt(v)));
        v += step;
    }
}

/// Which of `n` x labels to print so they do not overlap (about 12 at most).
fn label_every(n: usize) -> usize {
    n.div_ceil(12).max(1)
}

/// Vertical bars, one per label.
pub fn bars(label: &str, labels: &[String], values: &[f64], colour: &str, fmt: &dyn Fn(f64) -> String) -> String {
    let mut out = String::new();
    open(&mut out, label, H);
    let (top, step) = nice_max(values.iter().copied().fold(0.0, f64::max));
    y_axis(&mut out, top, step, fmt);
    let n = values.len().max(1);
    let slot = (W - LEFT - RIGHT) / n as f64;
    let every = label_every(n);
    for (i, v) in values.iter().enumerate() {
        let h = (H - TOP - BOTTOM) * (v / top).clamp(0.0, 1.0);
        let x = LEFT + slot * i as f64 + slot * 0.15;
        let name = labels.get(i).map(String::as_str).unwrap_or("");
        let _ = write!(
            out,
            r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" rx="2" fill="{colour}"><title>{}: {}</title></rect>"#,
            H - BOTTOM - h,
            slot * 0.7,
            escape(name),
            escape(&fmt(*v))
        );
        if i % every == 0 {
            let _ = write!(out, r#"<text class="tick" x="{:.1}" y="{}" text-anchor="middle">{}</text>"#, x + slot * 0.35, H - BOTTOM + 16.0, escape(name));
        }
    }
    out.push_str("</svg>");
    out
}

/// One line of a line chart; `None` values leave a gap.
pub struct Series<'a> {
    pub name: &'a str,
    pub colour: &'a str,
    pub dashed: bool,
    pub values: Vec<Option<f64>>,
}

/// Lines over shared x labels, with a legend.
pub fn lines(label: &str, labels: &[String], series: &[Series<'_>], fmt: &dyn Fn(f64) -> String) -> String {
    let mut out = String::new();
    open(&mut out, label, H + 24.0);
    let max = series.iter().flat_map(|s| s.values.iter().flatten().copied()).fold(0.0, f64::max);
    let (top, step) = nice_max(max);
    y_axis(&mut out, top, step, fmt);
    let n = labels.len().max(1);
    let x_at = |i: usize| if n == 1 { LEFT + (W - LEFT - RIGHT) / 2.0 } else { LEFT + (W - LEFT - RIGHT) * i as f64 / (n - 1) as f64 };
    let y_at = |v: f64| TOP + (H - TOP - BOTTOM) * (1.0 - (v / top).clamp(0.0, 1.0));
    let every = label_every(n);
    for (i, l) in labels.iter().enumerate() {
        if i % every == 0 {
            let _ = write!(out, r#"<text class="tick" x="{:.1}" y="{}" text-anchor="middle">{}</text>"#, x_at(i), H - BOTTOM + 16.0, escape(l));
        }
    }
    for s in series {
        // Split into runs of consecutive values so gaps stay gaps.
        let mut run: Vec<(f64, f64)> = Vec::new();
        let dash = if s.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let flush = |run: &mut Vec<(f64, f64)>, out: &mut String| {
            if run.len() > 1 {
                let pts: Vec<String> = run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                let _ = write!(out, r#"<polyline fill="none" stroke="{}" stroke-width="2"{dash} points="{}"/>"#, s.colour, pts.join(" "));
            }
            run.clear();
        };
        for (i, v) in s.values.iter().enumerate() {
            match v {
                Some(v) => {
                    run.push((x_at(i), y_at(*v)));
                    let _ = write!(
                        out,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"><title>{} {}: {}</title></circle>"#,
                        x_at(i),
                        y_at(*v),
                        s.colour,
                        escape(s.name),
                        escape(labels.get(i).map(String::as_str).unwrap_or("")),
                        escape(&fmt(*v))
                    );
                }
                None => flush(&mut run, &mut out),
            }
        }
        flush(&mut run, &mut out);
    }
    let mut lx = LEFT;
    for s in series {
        let dash = if s.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = write!(out, r#"<line x1="{lx}" x2="{}" y1="{}" y2="{}" stroke="{}" stroke-width="2"{dash}/>"#, lx + 18.0, H + 12.0, H + 12.0, s.colour);
        let _ = write!(out, r#"<text class="legend" x="{}" y="{}">{}</text>"#, lx + 24.0, H + 16.0, escape(s.name));
        lx += 30.0 + 7.5 * s.name.chars().count() as f64 + 16.0;
    }
    out.push_str("</svg>");
    out
}

/// Horizontal bars with labels on the left (per-person response times).
pub fn hbars(label: &str, rows: &[(String, f64, String)], colour: &str) -> String {
    let row_h = 28.0;
    let height = TOP + row_h * rows.len().max(1) as f64 + 8.0;
    let mut out = String::new();
    open(&mut out, label, height);
    let max = rows.iter().map(|r| r.1).fold(0.0, f64::max);
    let (top, _) = nice_max(max);
    let left = 170.0;
    let width = W - left - 110.0;
    for (i, (name, v, text)) in rows.iter().enumerate() {
        let y = TOP + row_h * i as f64;
        let w = width * (v / top).clamp(0.0, 1.0);
        let _ = write!(out, r#"<text class="tick" x="{}" y="{:.1}" text-anchor="end">{}</text>"#, left - 8.0, y + 17.0, escape(name));
        let _ = write!(out, r#"<rect x="{left}" y="{y:.1}" width="{w:.1}" height="{}" rx="3" fill="{colour}"/>"#, row_h - 8.0);
        let _ = write!(out, r#"<text class="tick" x="{:.1}" y="{:.1}">{}</text>"#, left + w + 6.0, y + 17.0, escape(text));
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_axes() {
        assert_eq!(nice_max(7.0), (10.0, 2.5));
        assert_eq!(nice_max(0.0), (1.0, 0.25));
        assert_eq!(nice_max(180.0), (200.0, 50.0));
    }

    #[test]
    fn svg_is_escaped_and_gaps_stay_gaps() {
        let labels = vec!["<a>".to_string(), "b".into(), "c".into()];
        let svg = bars("x & y", &labels, &[1.0, 2.0, 0.0], "#123", &|v| format!("{v}"));
        assert!(svg.contains("&lt;a&gt;") && svg.contains("x &amp; y") && !svg.contains("<a>"));
        let s = Series { name: "p50", colour: "#000", dashed: false, values: vec![Some(1.0), None, Some(3.0)] };
        let svg = lines("l", &labels, &[s], &|v| format!("{v}"));
        assert!(!svg.contains("<polyline"), "no run of two points across the gap");
        assert_eq!(svg.matches("<circle").count(), 2);
    }
}
