//! Replaying a store's golden conversations, for the store API, the
//! dashboard's button and `mikabot golden`: every question asked of the
//! store's actor and its current model, one at a time, checked, kept as the
//! last run, and compared with the run before.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mikabot_actors::golden::{self, Outcome};
use mikabot_actors::ids::StoreId;
use mikabot_actors::log::now_ms;

use actix_web::web;

use crate::http::AppState;
use crate::storage::{GoldenRun, StorageError};

/// Longest a whole replay may take; questions left after it are reported
/// as not replayed.
const RUN_BUDGET: Duration = Duration::from_secs(10 * 60);

/// One question's result with what changed since the last run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GoldenResult {
    #[serde(flatten)]
    pub outcome: Outcome,
    pub passed: bool,
    pub changes: Vec<String>,
}

/// A whole replay.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Replay {
    pub at_ms: u64,
    pub passed: usize,
    pub failed: usize,
    /// The model that answered (`offline` for the built-in responder).
    pub model: &'static str,
    pub results: Vec<GoldenResult>,
}

/// Why a replay did not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("the store is not being served")]
    NotServed,
    #[error("a replay of this store is already running")]
    Running,
    #[error("the node is replaying as many stores' questions as it runs at once")]
    Busy,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Stores with a replay running: one at a time per store, as each asks the
/// model up to a hundred questions.
#[derive(Clone, Default)]
pub struct Running(Arc<Mutex<HashSet<StoreId>>>);

impl Running {
    fn set(&self) -> std::sync::MutexGuard<'_, HashSet<StoreId>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct RunningGuard(Running, StoreId);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.set().remove(&self.1);
    }
}

/// Most replays running on a node at once (each asks the model one
/// question at a time).
pub const MAX_RUNS: usize = 4;

/// Replays every golden question of `store` and keeps the run. The run is
/// a task of its own: a client that goes away (a proxy's timeout) does not
/// stop it, and its result is kept as the store's last run either way.
pub async fn replay(state: web::Data<AppState>, store: &StoreId) -> Result<Replay, ReplayError> {
    let actor = state.stores.get(store).ok_or(ReplayError::NotServed)?;
    {
        let mut running = state.golden_runs.set();
        if running.contains(store) {
            return Err(ReplayError::Running);
        }
        if running.len() >= MAX_RUNS {
            return Err(ReplayError::Busy);
        }
        running.insert(store.clone());
    }
    let guard = RunningGuard(state.golden_runs.clone(), store.clone());
    let store = store.clone();
    let run = actix_web::rt::spawn(async move {
        let _guard = guard;
        run(&state, &store, actor).await
    });
    run.await
        .map_err(|e| ReplayError::Storage(StorageError::Interrupted(e.to_string())))?
}

async fn run(
    state: &AppState,
    store: &StoreId,
    actor: actix::Addr<mikabot_actors::store::StoreCatalog>,
) -> Result<Replay, ReplayError> {
    let id = store.clone();
    let (goldens, before, profile) = state
        .storage
        .blocking(move |s| Ok((s.goldens(&id)?, s.golden_run(&id)?, s.store(&id)?)))
        .await?;
    let language = profile.map_or(mikabot_actors::language::Language::En, |p| {
        p.default_language
    });
    let model = state.models.current(store);
    let deadline = Instant::now() + RUN_BUDGET;
    let mut results = Vec::with_capacity(goldens.len());
    for (i, question) in goldens.iter().enumerate() {
        if state.stores.get(store).is_none() {
            // Deleted meanwhile: nothing more is asked, nothing kept.
            return Err(ReplayError::NotServed);
        }
        let outcome = if Instant::now() < deadline {
            golden::replay(
                &actor,
                &state.models,
                store,
                question,
                golden::ReplaySettings {
                    retrieval_limit: state.session_settings.retrieval_limit,
                    query_rewrite: state.session_settings.query_rewrite,
                    store_language: language,
                },
                &state.metrics,
            )
            .await
        } else {
            Outcome {
                question: question.question.clone(),
                text: String::new(),
                cards: Vec::new(),
                handed_over: false,
                checks: Vec::new(),
                error: Some(format!(
                    "not replayed: the run's {} minutes were spent",
                    RUN_BUDGET.as_secs() / 60
                )),
            }
        };
        // The same question at the same place in the last run.
        let earlier = before
            .as_ref()
            .and_then(|run| run.outcomes.get(i))
            .filter(|o| o.question == outcome.question);
        results.push(GoldenResult {
            passed: outcome.passed(),
            changes: golden::changes(earlier, &outcome),
            outcome,
        });
    }
    let run = GoldenRun {
        at_ms: now_ms(),
        outcomes: results.iter().map(|r| r.outcome.clone()).collect(),
    };
    let (id, kept) = (store.clone(), run.clone());
    // A store deleted during the run keeps no run.
    let changing = state.profile_changes.lock().await;
    state
        .write_for_store(&changing, store, move |s| s.put_golden_run(&id, &kept))
        .await?;
    drop(changing);
    let passed = results.iter().filter(|r| r.passed).count();
    tracing::info!(%store, passed, failed = results.len() - passed, "golden conversations replayed");
    Ok(Replay {
        at_ms: run.at_ms,
        passed,
        failed: results.len() - passed,
        model,
        results,
    })
}
