//! Log lines on standard error: text (values escaped for the terminal, colour only on a
//! terminal) or one JSON object per line (`--log-format json`), for journald, syslog and
//! log shippers alike.

use std::fmt::Write as _;
use std::io::IsTerminal as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use postdesk::term::line;

use crate::cli::LogFormat;

/// Install the subscriber: `POSTDESK_LOG` filters (warnings and errors by default, plus
/// the one line per message of `postdesk::delivery`).
pub(crate) fn init(format: LogFormat) {
    // Libraries' warnings about their own settings only when they are errors: an MTA
    // puts whatever a failed `ingest` prints into its bounce text.
    let filter = tracing_subscriber::EnvFilter::try_from_env("POSTDESK_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "warn,sqlx=error,{}=info",
            postdesk::Outcome::LOG_TARGET
        ))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(Format {
            json: format == LogFormat::Json,
            ansi: std::io::stderr().is_terminal(),
        })
        .try_init();
}

/// One event per line, as text or JSON.
struct Format {
    json: bool,
    ansi: bool,
}

/// An event's fields in order, as JSON values (strings stay raw; the text form escapes them).
#[derive(Default)]
struct Fields(Vec<(&'static str, serde_json::Value)>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name(), value.into()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.push((field.name(), value.into()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.push((field.name(), value.into()));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.push((field.name(), value.into()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name(), format!("{value:?}").into()));
    }
}

impl<S, N> FormatEvent<S, N> for Format
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        if self.json {
            let mut object = serde_json::Map::new();
            object.insert("time".into(), time.into());
            object.insert("level".into(), meta.level().as_str().to_lowercase().into());
            object.insert("target".into(), meta.target().into());
            for (name, value) in fields.0 {
                object.insert(name.into(), value);
            }
            return writeln!(writer, "{}", serde_json::Value::Object(object));
        }
        let level = meta.level().as_str();
        if self.ansi {
            let colour = match *meta.level() {
                Level::ERROR => "31",
                Level::WARN => "33",
                Level::INFO => "32",
                _ => "2",
            };
            write!(writer, "{time} \x1b[{colour}m{level:>5}\x1b[0m ")?;
        } else {
            write!(writer, "{time} {level:>5} ")?;
        }
        write!(writer, "{}:", meta.target())?;
        let mut out = String::new();
        for (name, value) in &fields.0 {
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            if *name == "message" {
                let _ = write!(out, " {}", line(&text));
            } else {
                let _ = write!(out, " {name}={}", quoted(&line(&text)));
            }
        }
        writeln!(writer, "{out}")
    }
}

/// `value` as is, or in double quotes when it is empty or has a space or a quote (so
/// `key=value` pairs split on spaces).
fn quoted(value: &str) -> String {
    if value.is_empty() || value.contains([' ', '"']) {
        format!("\"{}\"", value.replace('"', "\\\""))
    } else {
        value.to_string()
    }
}
