//! The node's log: `tracing` events to stdout, filtered by `log.filter`, as
//! text or JSON (`log.format`). Sessions and replies log inside spans that
//! carry the store and a short session or reply id, so one conversation can
//! be followed; nothing logs message text, raw client addresses or secrets.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Installs the process's log subscriber. Call once, first thing.
pub fn init(log: &LogSettings) {
    let builder = tracing_subscriber::fmt().with_env_filter(EnvFilter::new(&log.filter));
    match log.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}
