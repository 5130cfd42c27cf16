//! `RetentionSweeper`: on an interval, applies the retention [`policy`]
//! (`super::policy`): conversations past their store's retention and
//! accounts past their deletion grace get an erasure request (journaled,
//! with a receipt, like any other); technical data past the usage horizon
//! is dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix::prelude::*;

use super::{Action, Category, Horizon, Privacy, PrivacyMetrics, Rule};
use crate::storage::erasure::{ErasureCounts, ErasureScope};
use crate::storage::retention::{Due, Horizons};
use crate::storage::{Storage, StorageError};

/// Erasure requests are filed in batches of at most this many
/// conversations.
const BATCH: usize = 500;

/// Run a sweep now (tests; operators wait for the interval).
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct SweepNow;

/// What the next sweep would do, as counts by category: the dry run.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "Result<RetentionPreview, String>")]
pub struct Preview;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RetentionPreview {
    pub conversations: u64,
    pub messages: u64,
    pub technical_data: u64,
    pub accounts: u64,
}

pub struct RetentionSweeper {
    privacy: Privacy,
    rules: Vec<Rule>,
    metrics: PrivacyMetrics,
    interval: Duration,
    running: bool,
    pub(crate) injected_panics: Arc<AtomicUsize>,
}

impl RetentionSweeper {
    pub fn new(
        privacy: Privacy,
        rules: Vec<Rule>,
        metrics: PrivacyMetrics,
        interval: Duration,
    ) -> Self {
        Self {
            privacy,
            rules,
            metrics,
            interval,
            running: false,
            injected_panics: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Makes the next `n` sweeps panic (for the supervisor's test).
    pub fn panics(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.injected_panics)
    }

    fn horizons(rules: &[Rule], now_ms: u64) -> Horizons {
        let mut horizons = Horizons {
            technical_before_ms: 0,
            accounts_deleted_by_secs: 0,
        };
        for rule in rules {
            match (rule.category, rule.horizon) {
                (Category::TechnicalData, Horizon::Months(months)) => {
                    horizons.technical_before_ms = super::months_before(now_ms, months);
                }
                (Category::DeletedAccounts, Horizon::Days(_)) => {
                    horizons.accounts_deleted_by_secs = now_ms / 1000;
                }
                _ => {}
            }
        }
        horizons
    }

    fn due(storage: &Storage, rules: &[Rule], now_ms: u64) -> Result<Due, StorageError> {
        let mut due = storage.retention_due(now_ms, Self::horizons(rules, now_ms))?;
        let applies = |category| rules.iter().any(|r| r.category == category);
        if !applies(Category::Conversations) {
            due.conversations.clear();
        }
        if !applies(Category::TechnicalData) {
            due.technical.clear();
        }
        if !applies(Category::DeletedAccounts) {
            due.accounts.clear();
        }
        Ok(due)
    }

    fn sweep(&mut self, ctx: &mut Context<Self>) {
        if self.running {
            return;
        }
        self.running = true;
        let privacy = self.privacy.clone();
        let rules = self.rules.clone();
        let panics = Arc::clone(&self.injected_panics);
        let work = async move {
            let now = privacy.clock().now_ms();
            let due = {
                let rules = rules.clone();
                let storage = privacy.storage().clone();
                tokio::task::spawn_blocking(move || {
                    let injected = panics
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    if injected {
                        panic!("an injected fault in the retention sweep");
                    }
                    Self::due(&storage, &rules, now)
                })
                .await
                .map_err(|e| format!("the retention sweep panicked: {e}"))?
                .map_err(|e| e.to_string())?
            };
            apply(&privacy, &rules, due)
                .await
                .map_err(|e| e.to_string())
        };
        ctx.spawn(work.into_actor(self).map(|outcome, sweeper, _| {
            sweeper.running = false;
            if let Err(error) = outcome {
                sweeper.metrics.sweeps_failed.inc();
                tracing::error!(%error, "a retention sweep failed; it runs again on the next tick");
            }
        }));
    }
}

/// Files the erasures and drops the technical data `due` names.
async fn apply(privacy: &Privacy, rules: &[Rule], due: Due) -> Result<(), StorageError> {
    let acts = |category| {
        rules
            .iter()
            .filter(|r| r.category == category)
            .map(|r| r.action)
            .collect::<Vec<_>>()
    };
    if acts(Category::Conversations).contains(&Action::Erase) {
        for (store, conversations) in due.conversations {
            for batch in conversations.chunks(BATCH) {
                privacy
                    .erase(ErasureScope::Retention {
                        store: store.clone(),
                        conversations: batch.to_vec(),
                    })
                    .await?;
            }
        }
    }
    if acts(Category::TechnicalData).contains(&Action::DropTechnicalData) {
        for (store, conversations) in due.technical {
            let dropped = privacy
                .storage()
                .blocking(move |storage| storage.drop_technical(&store, &conversations))
                .await?;
            tracing::info!(
                conversations = dropped,
                "technical data past its horizon dropped"
            );
        }
    }
    if acts(Category::DeletedAccounts).contains(&Action::Erase) {
        for account in due.accounts {
            privacy.erase(ErasureScope::Account { account }).await?;
        }
    }
    Ok(())
}

impl Actor for RetentionSweeper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.interval, |sweeper, ctx| sweeper.sweep(ctx));
    }
}

impl Supervised for RetentionSweeper {
    fn restarting(&mut self, _: &mut Context<Self>) {
        tracing::warn!("the retention sweeper restarts");
        self.running = false;
    }
}

impl Handler<SweepNow> for RetentionSweeper {
    type Result = ();

    fn handle(&mut self, _: SweepNow, ctx: &mut Context<Self>) {
        self.sweep(ctx);
    }
}

impl Handler<Preview> for RetentionSweeper {
    type Result = ResponseFuture<Result<RetentionPreview, String>>;

    fn handle(&mut self, _: Preview, _: &mut Context<Self>) -> Self::Result {
        let privacy = self.privacy.clone();
        let rules = self.rules.clone();
        Box::pin(async move {
            let now = privacy.clock().now_ms();
            privacy
                .storage()
                .blocking(move |storage| {
                    let due = Self::due(storage, &rules, now)?;
                    let mut preview = RetentionPreview {
                        technical_data: due.technical.iter().map(|(_, c)| c.len() as u64).sum(),
                        accounts: due.accounts.len() as u64,
                        ..RetentionPreview::default()
                    };
                    for (store, conversations) in due.conversations {
                        let counts: ErasureCounts =
                            storage.erasure_preview(&ErasureScope::Retention {
                                store,
                                conversations,
                            })?;
                        preview.conversations += counts.conversations;
                        preview.messages += counts.messages;
                    }
                    Ok(preview)
                })
                .await
                .map_err(|e| e.to_string())
        })
    }
}
