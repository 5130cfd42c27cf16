//! Model providers behind the actors' [`ChatModel`] port: an
//! OpenAI-compatible streaming client and the built-in offline responder.

mod offline;
mod openai;
mod tools;

use std::sync::Arc;
use std::time::Duration;

use mikabot_actors::limits::StoreBudgets;
use mikabot_actors::model::ChatModel;
use mikabot_actors::provider::{Breaker, Models};
pub use offline::OfflineResponder;
pub use openai::OpenAiModel;

use crate::config::Settings;

/// The models the settings ask for: the provider, the offline responder it
/// falls back to, its breaker and the stores' daily budgets.
pub fn from_settings(settings: &Settings) -> anyhow::Result<Models> {
    let offline: Arc<dyn ChatModel> = Arc::new(OfflineResponder::new(Duration::from_millis(
        settings.offline.token_delay_ms,
    )));
    if !settings.model.uses_openai() {
        return Ok(Models::only(offline));
    }
    Ok(Models {
        primary: Arc::new(OpenAiModel::new(&settings.model)?),
        fallback: offline,
        breaker: Breaker::new(
            settings.model.breaker_failures,
            Duration::from_secs(settings.model.breaker_cooldown_secs),
        ),
        budgets: StoreBudgets::new(settings.limits.store_daily_tokens),
    })
}
