//! Charts as inline SVG, drawn on the server: no JavaScript, no network, prints fine.
//!
//! Three shapes cover the metrics page: vertical bars (requests per day, by hour), lines with
//! gaps (p50/p90 per day; a day without samples breaks the line rather than dropping to zero)
//! and horizontal bars (per person). Every text is XML-escaped here, so the result can be put
//! in a template with `| safe`. Charts scale to their container (`viewBox`, width 100%).

use std::fmt::Write;

const W: f64 = 720.0;
const H: f64 = 240.0;
// Room for tick labels such as "45 min" at the 18-unit font (style.css), which a card half a
// desktop page wide draws at about 12 px.
const LEFT: f64 = 84.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 40.0;

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// What a chart's values are: it picks the tick steps people read easily and writes the tick labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Whole things (requests): steps of 1, 2 or 5 × 10^k, never a fraction.
    Count,
    /// Durations in minutes: steps of 5, 15, 30 s, 1, 2, 5, 15, 30 min, 1, 2, 3, 6, 12 h, days.
    Minutes,
}

/// At most this many steps from 0 to the top of an axis.
const MAX_STEPS: f64 = 5.0;

impl Unit {
    /// The axis top (a whole number of steps, at least one) and the step, for values up to `max`.
    pub fn axis(self, max: f64) -> (f64, f64) {
        let max = if max.is_finite() && max > 0.0 { max } else { 0.0 };
        let step = self.steps().find(|s| max / s <= MAX_STEPS).unwrap_or(1.0);
        (step * (max / step).ceil().max(1.0), step)
    }

    fn steps(self) -> Box<dyn Iterator<Item = f64>> {
        let decades = |first: &'static [f64]| (0..).flat_map(move |k| first.iter().map(move |m| m * 10f64.powi(k)));
        match self {
            Unit::Count => Box::new(decades(&[1.0, 2.0, 5.0])),
            Unit::Minutes => {
                const FIXED: [f64; 13] = [5.0 / 60.0, 0.25, 0.5, 1.0, 2.0, 5.0, 15.0, 30.0, 60.0, 120.0, 180.0, 360.0, 720.0];
                Box::new(FIXED.into_iter().chain(decades(&[1.0, 2.0, 5.0]).map(|d| d * 1440.0)))
            }
        }
    }

    /// A value as a tick or hover label.
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::Count => format!("{v:.0}"),
            Unit::Minutes if v > 0.0 && v < 1.0 => format!("{:.0} s", v * 60.0),
            Unit::Minutes if v < 120.0 => format!("{v:.0} min"),
            Unit::Minutes if v < 2880.0 => trim(v / 60.0, "h"),
            Unit::Minutes => trim(v / 1440.0, "d"),
        }
    }
}

/// `2 h`, `1.5 h`: no decimals when there are none.
fn trim(v: f64, unit: &str) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0} {unit}")
    } else {
        format!("{v:.1} {unit}")
    }
}

fn open(out: &mut String, label: &str, height: f64) {
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {W} {height}" width="100%" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        escape(label)
    );
}

fn y_axis(out: &mut String, top: f64, step: f64, unit: Unit) {
    // Whole steps counted, not a float summed, so the last tick is exactly the top.
    let steps = (top / step).round() as u32;
    for i in 0..=steps {
        let v = step * f64::from(i);
        let y = TOP + (H - TOP - BOTTOM) * (1.0 - v / top);
        let _ = write!(out, r#"<line class="grid" x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}"/>"#, W - RIGHT);
        let _ = write!(out, r#"<text class="tick" x="{}" y="{:.1}" text-anchor="end">{}</text>"#, LEFT - 6.0, y + 6.0, escape(&unit.format(v)));
    }
}

/// Which of `n` x labels to print so they do not overlap (about 8 at most).
fn label_every(n: usize) -> usize {
    n.div_ceil(8).max(1)
}

/// Vertical bars, one per label.
pub fn bars(label: &str, labels: &[String], values: &[f64], colour: &str, unit: Unit) -> String {
    let mut out = String::new();
    open(&mut out, label, H);
    let (top, step) = unit.axis(values.iter().copied().fold(0.0, f64::max));
    y_axis(&mut out, top, step, unit);
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
            escape(&unit.format(*v))
        );
        if i % every == 0 {
            let _ = write!(out, r#"<text class="tick" x="{:.1}" y="{}" text-anchor="middle">{}</text>"#, x + slot * 0.35, H - BOTTOM + 22.0, escape(name));
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
pub fn lines(label: &str, labels: &[String], series: &[Series<'_>], unit: Unit) -> String {
    let mut out = String::new();
    open(&mut out, label, H + 24.0);
    let max = series.iter().flat_map(|s| s.values.iter().flatten().copied()).fold(0.0, f64::max);
    let (top, step) = unit.axis(max);
    y_axis(&mut out, top, step, unit);
    let n = labels.len().max(1);
    let x_at = |i: usize| if n == 1 { LEFT + (W - LEFT - RIGHT) / 2.0 } else { LEFT + (W - LEFT - RIGHT) * i as f64 / (n - 1) as f64 };
    let y_at = |v: f64| TOP + (H - TOP - BOTTOM) * (1.0 - (v / top).clamp(0.0, 1.0));
    let every = label_every(n);
    for (i, l) in labels.iter().enumerate() {
        if i % every == 0 {
            let _ = write!(out, r#"<text class="tick" x="{:.1}" y="{}" text-anchor="middle">{}</text>"#, x_at(i), H - BOTTOM + 22.0, escape(l));
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
                    // The dot, and a wider transparent target whose title shows the value on hover.
                    let (x, y) = (x_at(i), y_at(*v));
                    let _ = write!(
                        out,
                        r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{}"/><circle class="hit" cx="{x:.1}" cy="{y:.1}" r="10" fill="transparent"><title>{} {}: {}</title></circle>"#,
                        s.colour,
                        escape(s.name),
                        escape(labels.get(i).map(String::as_str).unwrap_or("")),
                        escape(&unit.format(*v))
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
        let _ = write!(out, r#"<line x1="{lx}" x2="{}" y1="{}" y2="{}" stroke="{}" stroke-width="2"{dash}/>"#, lx + 18.0, H + 14.0, H + 14.0, s.colour);
        let _ = write!(out, r#"<text class="legend" x="{}" y="{}">{}</text>"#, lx + 24.0, H + 20.0, escape(s.name));
        lx += 30.0 + 10.0 * s.name.chars().count() as f64 + 16.0;
    }
    out.push_str("</svg>");
    out
}

/// Horizontal bars with labels on the left (per-person response times).
pub fn hbars(label: &str, rows: &[(String, f64, String)], colour: &str) -> String {
    let row_h = 34.0;
    let height = TOP + row_h * rows.len().max(1) as f64 + 8.0;
    let mut out = String::new();
    open(&mut out, label, height);
    let max = rows.iter().map(|r| r.1).fold(0.0, f64::max);
    let (top, _) = Unit::Minutes.axis(max);
    let left = 200.0;
    let width = W - left - 130.0;
    for (i, (name, v, text)) in rows.iter().enumerate() {
        let y = TOP + row_h * i as f64;
        let w = width * (v / top).clamp(0.0, 1.0);
        let _ = write!(out, r#"<text class="tick" x="{}" y="{:.1}" text-anchor="end">{}</text>"#, left - 8.0, y + 22.0, escape(name));
        let _ = write!(out, r#"<rect x="{left}" y="{y:.1}" width="{w:.1}" height="{}" rx="3" fill="{colour}"/>"#, row_h - 8.0);
        let _ = write!(out, r#"<text class="tick" x="{:.1}" y="{:.1}">{}</text>"#, left + w + 6.0, y + 22.0, escape(text));
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ticks an axis prints, as its labels.
    fn ticks(unit: Unit, max: f64) -> Vec<String> {
        let (top, step) = unit.axis(max);
        (0..=(top / step).round() as u32).map(|i| unit.format(step * f64::from(i))).collect()
    }

    #[test]
    fn counts_step_by_whole_nice_numbers() {
        // Issue 18 item 10: five requests printed "0, 1, 2, 4, 5" on evenly spaced lines.
        assert_eq!(ticks(Unit::Count, 5.0), ["0", "1", "2", "3", "4", "5"]);
        assert_eq!(ticks(Unit::Count, 3.0), ["0", "1", "2", "3"]);
        assert_eq!(ticks(Unit::Count, 7.0), ["0", "2", "4", "6", "8"]);
        assert_eq!(ticks(Unit::Count, 0.0), ["0", "1"]);
        assert_eq!(ticks(Unit::Count, 180.0), ["0", "50", "100", "150", "200"]);
        for max in [0.5, 1.0, 4.0, 11.0, 26.0, 99.0, 1234.0] {
            let (top, step) = Unit::Count.axis(max);
            assert!(top >= max && step >= 1.0 && step.fract() == 0.0 && top / step <= MAX_STEPS + 1.0, "{max}: {top} {step}");
        }
    }

    #[test]
    fn durations_step_by_clock_units() {
        assert_eq!(ticks(Unit::Minutes, 40.0), ["0 min", "15 min", "30 min", "45 min"]);
        assert_eq!(ticks(Unit::Minutes, 0.6), ["0 min", "15 s", "30 s", "45 s"]);
        assert_eq!(ticks(Unit::Minutes, 200.0), ["0 min", "60 min", "2 h", "3 h", "4 h"]);
        assert_eq!(Unit::Minutes.format(90.0), "90 min");
        assert_eq!(Unit::Minutes.format(150.0), "2.5 h");
        assert_eq!(Unit::Minutes.format(4320.0), "3 d");
    }

    #[test]
    fn svg_is_escaped_and_gaps_stay_gaps() {
        let labels = vec!["<a>".to_string(), "b".into(), "c".into()];
        let svg = bars("x & y", &labels, &[1.0, 2.0, 0.0], "#123", Unit::Count);
        assert!(svg.contains("&lt;a&gt;") && svg.contains("x &amp; y") && !svg.contains("<a>"));
        let s = Series { name: "p50", colour: "#000", dashed: false, values: vec![Some(1.0), None, Some(3.0)] };
        let svg = lines("l", &labels, &[s], Unit::Count);
        assert!(!svg.contains("<polyline"), "no run of two points across the gap");
        assert_eq!(svg.matches("<circle class=\"hit\"").count(), 2);
        assert!(svg.contains("<title>p50 c: 3</title>"), "hover shows the value");
    }
}
