//! Log lines that name the instance. Several OnCall instances behind a load balancer usually log to one place
//! (journald, a collector); with `[instance] id` set, every line starts with `[<id>]` so a line can be traced to
//! the instance that wrote it. A single instance with no id configured logs as before.
//!
//! `[log] format = "json"` writes one JSON object per line instead, for collectors that index fields (Loki,
//! Elasticsearch, journald's JSON export): `ts`, `level`, `target`, `instance` (when set), `message`, the event's
//! fields by name, and `spans` (the enclosing spans as text).

use std::fmt;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{DefaultFields, Format, Full, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

pub struct WithInstance {
    prefix: Option<String>,
    inner: Format<Full>,
    /// Some(instance id, maybe empty): JSON lines.
    json: Option<String>,
}

impl WithInstance {
    /// `id`: the configured `[instance] id` (empty: no prefix).
    pub fn new(id: &str, ansi: bool) -> WithInstance {
        let id = id.trim();
        WithInstance { prefix: (!id.is_empty()).then(|| format!("[{id}] ")), inner: Format::default().with_ansi(ansi), json: None }
    }

    /// JSON lines, each naming the instance when `id` is set.
    pub fn json(id: &str) -> WithInstance {
        WithInstance { json: Some(id.trim().to_string()), ..WithInstance::new(id, false) }
    }
}

impl<S, N> FormatEvent<S, N> for WithInstance
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        if let Some(instance) = &self.json {
            return writeln!(writer, "{}", json_line(ctx, event, instance));
        }
        if let Some(p) = &self.prefix {
            writer.write_str(p)?;
        }
        self.inner.format_event(ctx, writer, event)
    }
}

/// The field formatter the wrapped format expects.
pub fn fields() -> DefaultFields {
    DefaultFields::new()
}

fn json_line<S, N>(ctx: &FmtContext<'_, S, N>, event: &Event<'_>, instance: &str) -> serde_json::Value
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    let meta = event.metadata();
    let mut line = serde_json::Map::new();
    line.insert("ts".into(), chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true).into());
    line.insert("level".into(), meta.level().as_str().into());
    line.insert("target".into(), meta.target().into());
    if !instance.is_empty() {
        line.insert("instance".into(), instance.into());
    }
    event.record(&mut JsonFields(&mut line));
    let spans: Vec<serde_json::Value> = ctx
        .event_scope()
        .into_iter()
        .flat_map(|scope| scope.from_root())
        .map(|span| {
            let fields = span.extensions().get::<tracing_subscriber::fmt::FormattedFields<N>>().map(|f| f.to_string()).unwrap_or_default();
            if fields.is_empty() { span.name().into() } else { format!("{}{{{fields}}}", span.name()).into() }
        })
        .collect();
    if !spans.is_empty() {
        line.insert("spans".into(), spans.into());
    }
    serde_json::Value::Object(line)
}

/// An event's fields as JSON values (numbers and booleans stay typed; everything else is its Debug text).
struct JsonFields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for JsonFields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_carry_the_fields_by_name() {
        let buf = Buffer::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_ansi(false)
            .fmt_fields(fields())
            .event_format(WithInstance::json("a"))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("call", call_id = "c1@x");
            let _in = span.enter();
            tracing::warn!(calls = 3u64, caller = "+15551230000", late = true, "over the limit: \"503\"");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["instance"], "a");
        assert_eq!(line["message"], "over the limit: \"503\"");
        assert_eq!(line["calls"], 3);
        assert_eq!(line["caller"], "+15551230000");
        assert_eq!(line["late"], true);
        assert_eq!(line["spans"][0], "call{call_id=\"c1@x\"}");
        assert!(line["ts"].as_str().unwrap().ends_with('Z'));
    }
}
