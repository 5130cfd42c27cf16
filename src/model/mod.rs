//! Model providers behind the actors' [`ChatModel`] port: an
//! OpenAI-compatible streaming client and the built-in offline responder.

mod offline;
mod openai;

use std::sync::Arc;
use std::time::Duration;

use mikabot_actors::model::ChatModel;
pub use offline::OfflineResponder;
pub use openai::OpenAiModel;

use crate::config::Settings;

/// The provider the settings ask for.
pub fn from_settings(settings: &Settings) -> anyhow::Result<Arc<dyn ChatModel>> {
    if settings.model.uses_openai() {
        Ok(Arc::new(OpenAiModel::new(&settings.model)?))
    } else {
        Ok(Arc::new(OfflineResponder::new(Duration::from_millis(
            settings.offline.token_delay_ms,
        ))))
    }
}
