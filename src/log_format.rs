//! Log lines that name the instance. Several OnCall instances behind a load balancer usually log to one place
//! (journald, a collector); with `[instance] id` set, every line starts with `[<id>]` so a line can be traced to
//! the instance that wrote it. A single instance with no id configured logs as before.

use std::fmt;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{DefaultFields, Format, Full, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

pub struct WithInstance {
    prefix: Option<String>,
    inner: Format<Full>,
}

impl WithInstance {
    /// `id`: the configured `[instance] id` (empty: no prefix).
    pub fn new(id: &str, ansi: bool) -> WithInstance {
        let id = id.trim();
        WithInstance { prefix: (!id.is_empty()).then(|| format!("[{id}] ")), inner: Format::default().with_ansi(ansi) }
    }
}

impl<S, N> FormatEvent<S, N> for WithInstance
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
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
