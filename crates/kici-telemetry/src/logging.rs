//! JSON-lines logging for services: one object per line with `timestamp`, `level`, `service`,
//! `message` and the event's fields (`runId`, `jobId`, `agentId`, ...), so
//! `grep '"agent.build.info"' | jq .` works. Agent tokens (`kat_` + 64 hex) are masked in every
//! line.

use std::io::Write;
use std::sync::Mutex;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the JSON logger for `service` at `level` (`debug`, `info`, `warn`, `error`),
/// writing to stdout. Call once per process.
pub fn init(service: &'static str, level: &str) -> Result<(), String> {
    let filter = match level {
        "debug" => LevelFilter::DEBUG,
        "info" => LevelFilter::INFO,
        "warn" => LevelFilter::WARN,
        "error" => LevelFilter::ERROR,
        other => {
            return Err(format!(
                "invalid KICI_LOG_LEVEL `{other}` (hint: use debug, info, warn or error)"
            ));
        }
    };
    let layer = JsonLayer {
        service,
        out: Mutex::new(Box::new(std::io::stdout())),
    };
    tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init()
        .map_err(|err| format!("logging already initialised: {err}"))
}

struct JsonLayer {
    service: &'static str,
    out: Mutex<Box<dyn Write + Send>>,
}

impl<S: Subscriber> Layer<S> for JsonLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = FieldCollector(Map::new());
        event.record(&mut fields);
        let mut line = Map::new();
        line.insert("timestamp".into(), Value::String(now_rfc3339()));
        line.insert(
            "level".into(),
            Value::String(level_name(event.metadata().level()).into()),
        );
        line.insert("service".into(), Value::String(self.service.into()));
        if let Some(message) = fields.0.remove("message") {
            line.insert("message".into(), message);
        }
        line.extend(fields.0);
        let mut text = mask_agent_tokens(&Value::Object(line).to_string());
        text.push('\n');
        if let Ok(mut out) = self.out.lock() {
            // A log line that cannot be written has nowhere else to go.
            let _ = out.write_all(text.as_bytes());
        }
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

struct FieldCollector(Map<String, Value>);

impl Visit for FieldCollector {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_string(), Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), Value::String(format!("{value:?}")));
    }
}

fn now_rfc3339() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    kici_engine::api::format_timestamp(ms)
}

/// Replaces every `kat_` followed by 64 hex digits with `kat_***`.
pub fn mask_agent_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("kat_") {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 4..];
        let hex_len = after.bytes().take_while(u8::is_ascii_hexdigit).count();
        if hex_len >= 64 {
            out.push_str("kat_***");
            rest = &after[hex_len..];
        } else {
            out.push_str("kat_");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_tokens_are_masked() {
        let token = format!("kat_{}", "ab".repeat(32));
        assert_eq!(mask_agent_tokens(&format!("token={token} x")), "token=kat_*** x");
        assert_eq!(mask_agent_tokens("kat_short"), "kat_short");
    }
}
