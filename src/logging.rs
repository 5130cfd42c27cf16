//! The node's log: `tracing` events to stdout, filtered by `log.filter`, as
//! text or JSON (`log.format`). Sessions and replies log inside spans that
//! carry the store and a short session or reply id, so one conversation can
//! be followed; nothing logs message text, raw client addresses or secrets.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Installs the process's log subscriber, and a panic hook that logs where
/// a panic happened but not its message (which can quote input: a
/// shopper's words, a feed's row). Call once, first thing.
pub fn init(log: &LogSettings) {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(%location, "a task panicked; it was caught where it ran");
    }));
    // async-openai logs a provider's whole answer when it cannot read it,
    // and answers carry what the shopper wrote: never logged.
    let filter = format!("{},async_openai=off", log.filter);
    let builder = tracing_subscriber::fmt().with_env_filter(EnvFilter::new(&filter));
    match log.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}
