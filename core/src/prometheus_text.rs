//! The Prometheus text exposition format (version 0.0.4), written by one small type.
//!
//! `/metrics` is assembled from several owners (call counters, media engine, trunks, the registrar, the
//! redirect target); each writes its families into one [`PrometheusText`], so every family gets its
//! `# HELP` and `# TYPE` line exactly once, followed by its samples, and every label value is escaped the
//! one way the format defines (backslash, double quote and line feed; in HELP text backslash and line feed).
//!
//! It formats only: it holds no registry and no counters (the owners keep their atomics), parses nothing
//! and does not speak OpenMetrics (no `# EOF`, no exemplars). The `prometheus-client` crate was measured
//! for this and not taken: it writes OpenMetrics only (counters typed without `_total`, a trailing
//! `# EOF`) and has no summary type, so `/metrics` would have changed.

use std::fmt::{self, Write};

/// The `# TYPE` of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Summary => "summary",
        }
    }
}

/// A sample's value: counts print as integers, measurements as Prometheus floats (`NaN`, `+Inf`, `-Inf`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(u64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(v)
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::Int(v as u64)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(u64::from(v))
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) => write_float(f, v),
        }
    }
}

/// Rust prints infinities as `inf`; the format wants `+Inf` / `-Inf` (and `NaN`, which Rust already writes).
fn write_float(out: &mut impl Write, v: f64) -> fmt::Result {
    if v == f64::INFINITY {
        out.write_str("+Inf")
    } else if v == f64::NEG_INFINITY {
        out.write_str("-Inf")
    } else {
        write!(out, "{v}")
    }
}

/// One `/metrics` page being written. [`PrometheusText::family`] starts a family; [`PrometheusText::finish`]
/// gives the text.
#[derive(Debug, Default)]
pub struct PrometheusText {
    out: String,
    /// Families written so far: a second `family` call with one of these names writes no second HELP/TYPE.
    families: Vec<String>,
}

impl PrometheusText {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `# HELP name help` and `# TYPE name kind`, once per name, and returns the family to add
    /// its samples to. A family's samples belong together: write them all through the one value returned.
    pub fn family<'a>(&'a mut self, name: &'a str, kind: Kind, help: &str) -> Family<'a> {
        debug_assert!(valid_name(name, true), "metric name {name:?}");
        let seen = self.families.iter().any(|f| f == name);
        debug_assert!(!seen, "family {name} written twice: its samples would be split");
        if !seen {
            self.families.push(name.to_string());
            self.out.push_str("# HELP ");
            self.out.push_str(name);
            self.out.push(' ');
            escape_into(&mut self.out, help, false);
            self.out.push_str("\n# TYPE ");
            self.out.push_str(name);
            self.out.push(' ');
            self.out.push_str(kind.as_str());
            self.out.push('\n');
        }
        Family {
            out: &mut self.out,
            name,
        }
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// The samples of one family (see [`PrometheusText::family`]).
pub struct Family<'a> {
    out: &'a mut String,
    name: &'a str,
}

impl Family<'_> {
    /// `name{labels} value` (no braces without labels).
    pub fn sample(&mut self, labels: &[(&str, &str)], value: impl Into<Value>) -> &mut Self {
        self.line("", labels, None, value.into());
        self
    }

    /// A histogram's series: one `_bucket{le=..}` per cumulative `(upper bound, count)` in `buckets`
    /// (ascending), the `+Inf` bucket (= `count`) when `buckets` does not end with it, then `_sum` and `_count`.
    pub fn histogram(&mut self, labels: &[(&str, &str)], buckets: &[(f64, u64)], sum: f64, count: u64) -> &mut Self {
        let mut le = String::new();
        for &(bound, n) in buckets {
            le.clear();
            let _ = write_float(&mut le, bound);
            self.line("_bucket", labels, Some(("le", &le)), Value::Int(n));
        }
        if !matches!(buckets.last(), Some(&(bound, _)) if bound == f64::INFINITY) {
            self.line("_bucket", labels, Some(("le", "+Inf")), Value::Int(count));
        }
        self.line("_sum", labels, None, Value::Float(sum));
        self.line("_count", labels, None, Value::Int(count));
        self
    }

    /// A summary's series: one `{quantile=..}` sample per `(quantile, value)`, then `_sum` (when known)
    /// and `_count`.
    pub fn summary(
        &mut self,
        labels: &[(&str, &str)],
        quantiles: &[(f64, Value)],
        sum: Option<f64>,
        count: u64,
    ) -> &mut Self {
        let mut q = String::new();
        for &(quantile, value) in quantiles {
            q.clear();
            let _ = write_float(&mut q, quantile);
            self.line("", labels, Some(("quantile", &q)), value);
        }
        if let Some(sum) = sum {
            self.line("_sum", labels, None, Value::Float(sum));
        }
        self.line("_count", labels, None, Value::Int(count));
        self
    }

    fn line(&mut self, suffix: &str, labels: &[(&str, &str)], extra: Option<(&str, &str)>, value: Value) {
        let out = &mut *self.out;
        out.push_str(self.name);
        out.push_str(suffix);
        let mut all = labels.iter().copied().chain(extra).peekable();
        if all.peek().is_some() {
            out.push('{');
            for (i, (label, v)) in all.enumerate() {
                debug_assert!(valid_name(label, false), "label name {label:?}");
                if i > 0 {
                    out.push(',');
                }
                out.push_str(label);
                out.push_str("=\"");
                escape_into(out, v, true);
                out.push('"');
            }
            out.push('}');
        }
        // Writing into a String cannot fail.
        let _ = writeln!(out, " {value}");
    }
}

/// Label values escape `\`, `"` and line feed; HELP text only `\` and line feed.
fn escape_into(out: &mut String, s: &str, label_value: bool) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if label_value => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*` for metric names; label names have no `:`.
fn valid_name(name: &str, metric: bool) -> bool {
    let ok = |c: char, first: bool| {
        c.is_ascii_alphabetic() || c == '_' || (metric && c == ':') || (!first && c.is_ascii_digit())
    };
    let mut chars = name.chars();
    chars.next().is_some_and(|c| ok(c, true)) && chars.all(|c| ok(c, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_and_gauge_families_get_help_and_type_once() {
        let mut m = PrometheusText::new();
        m.family("oncall_redirects_total", Kind::Counter, "INVITEs by outcome.")
            .sample(&[("result", "redirected")], 3u64)
            .sample(&[("result", "bridged")], 0u64);
        m.family("oncall_active_calls", Kind::Gauge, "Calls now.")
            .sample(&[], 2usize);
        let text = m.finish();
        assert_eq!(
            text,
            "# HELP oncall_redirects_total INVITEs by outcome.\n# TYPE oncall_redirects_total counter\n\
             oncall_redirects_total{result=\"redirected\"} 3\noncall_redirects_total{result=\"bridged\"} 0\n\
             # HELP oncall_active_calls Calls now.\n# TYPE oncall_active_calls gauge\noncall_active_calls 2\n"
        );
        for family in ["oncall_redirects_total", "oncall_active_calls"] {
            assert_eq!(text.matches(&format!("# HELP {family} ")).count(), 1);
            assert_eq!(text.matches(&format!("# TYPE {family} ")).count(), 1);
        }
    }

    #[test]
    #[cfg(not(debug_assertions))]
    fn a_family_opened_twice_writes_its_header_once() {
        let mut m = PrometheusText::new();
        m.family("x_total", Kind::Counter, "X.").sample(&[], 1u64);
        m.family("x_total", Kind::Counter, "X.").sample(&[], 2u64);
        assert_eq!(
            m.finish(),
            "# HELP x_total X.\n# TYPE x_total counter\nx_total 1\nx_total 2\n"
        );
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "written twice")]
    fn a_family_opened_twice_is_a_bug_in_debug_builds() {
        let mut m = PrometheusText::new();
        m.family("x_total", Kind::Counter, "X.");
        m.family("x_total", Kind::Counter, "X.");
    }

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        let mut m = PrometheusText::new();
        m.family(
            "oncall_trunk_registered",
            Kind::Gauge,
            "Help with a \\ and a\nnewline; \"quotes\" stay.",
        )
        .sample(&[("trunk", "a\\b\"c\nd"), ("version", "0.1.0")], true);
        assert_eq!(
            m.finish(),
            "# HELP oncall_trunk_registered Help with a \\\\ and a\\nnewline; \"quotes\" stay.\n\
             # TYPE oncall_trunk_registered gauge\n\
             oncall_trunk_registered{trunk=\"a\\\\b\\\"c\\nd\",version=\"0.1.0\"} 1\n"
        );
    }

    #[test]
    fn summary_writes_quantiles_then_count() {
        let mut m = PrometheusText::new();
        m.family("oncall_rtp_send_jitter_us", Kind::Summary, "Jitter.").summary(
            &[],
            &[(0.5, Value::Int(120)), (0.99, Value::Int(900))],
            None,
            42,
        );
        assert_eq!(
            m.finish(),
            "# HELP oncall_rtp_send_jitter_us Jitter.\n# TYPE oncall_rtp_send_jitter_us summary\n\
             oncall_rtp_send_jitter_us{quantile=\"0.5\"} 120\noncall_rtp_send_jitter_us{quantile=\"0.99\"} 900\n\
             oncall_rtp_send_jitter_us_count 42\n"
        );
    }

    #[test]
    fn histogram_writes_cumulative_buckets_inf_sum_and_count() {
        let mut m = PrometheusText::new();
        m.family("h_seconds", Kind::Histogram, "H.")
            .histogram(&[("kind", "x")], &[(0.5, 1), (2.0, 3)], 2.75, 4);
        assert_eq!(
            m.finish(),
            "# HELP h_seconds H.\n# TYPE h_seconds histogram\n\
             h_seconds_bucket{kind=\"x\",le=\"0.5\"} 1\nh_seconds_bucket{kind=\"x\",le=\"2\"} 3\n\
             h_seconds_bucket{kind=\"x\",le=\"+Inf\"} 4\nh_seconds_sum{kind=\"x\"} 2.75\nh_seconds_count{kind=\"x\"} 4\n"
        );
    }

    #[test]
    fn floats_use_the_format_spelling_of_infinity_and_nan() {
        let mut m = PrometheusText::new();
        m.family("g", Kind::Gauge, "G.")
            .sample(&[("v", "a")], f64::INFINITY)
            .sample(&[("v", "b")], f64::NEG_INFINITY)
            .sample(&[("v", "c")], f64::NAN)
            .sample(&[("v", "d")], 1.5);
        assert!(m
            .finish()
            .ends_with("g{v=\"a\"} +Inf\ng{v=\"b\"} -Inf\ng{v=\"c\"} NaN\ng{v=\"d\"} 1.5\n"));
    }
}
