//! A turn's retrieval: the products and passages a reply is given. The
//! store's search runs over the shopper's own words (translated through
//! the lexicons where the catalog is in another language). When the node
//! is set to and the reply is the provider's, the model is also asked to
//! turn the message into a search query in the catalog's language, within
//! a tight budget; both are searched and fused. A rewrite that is late,
//! fails or says nothing leaves the lexicon search's result as it was.
//! Replies and golden replays retrieve through here.

use std::time::{Duration, Instant};

use actix::Addr;

use crate::language::Language;
use crate::metrics::Metrics;
use crate::model::{ChatModel, ModelError, QueryRequest};
use crate::prompt::{Prompt, Turn};
use crate::provider::Chosen;
use crate::search::analysis::fold;
use crate::search::fuse;
use crate::store::{FindProducts, Found, StoreCatalog};

/// A rewrite to ask for: the model, and how long it may take.
pub struct Rewrite<'a> {
    pub model: &'a dyn ChatModel,
    pub budget: Duration,
}

impl<'a> Rewrite<'a> {
    /// The rewrite a reply by `chosen` asks for with the node's `budget`:
    /// none when there is no budget, the reply is given offline or its
    /// model cannot rewrite.
    pub fn for_reply(chosen: &'a Chosen, budget: Option<Duration>) -> Option<Self> {
        budget
            .filter(|_| chosen.degraded.is_none() && chosen.model.rewrites_queries())
            .map(|budget| Rewrite {
                model: chosen.model.as_ref(),
                budget,
            })
    }
}

/// What one turn retrieves for.
pub struct Ask<'a> {
    pub message: &'a str,
    /// The shopper's message before it, for a rewrite's context.
    pub earlier: Option<&'a str>,
    pub language: Language,
    pub limit: usize,
    /// `None`: the shopper's words only.
    pub rewrite: Option<Rewrite<'a>>,
}

/// What a turn retrieved.
pub struct Retrieved {
    pub found: Found,
    /// Tokens the rewrite cost (the provider's count, else an estimate).
    pub spent: u64,
}

impl Retrieved {
    /// The prompt for answering `message` in `language` with what was
    /// retrieved, after `history`.
    pub fn prompt(self, language: Language, history: Vec<Turn>, message: &str) -> Prompt {
        let found = self.found;
        Prompt {
            store_name: found.profile.name.clone(),
            store_url: found.profile.url.clone(),
            instructions: found.profile.instructions.clone(),
            language,
            products: found.hits.into_iter().map(|hit| hit.product).collect(),
            passages: found.passages.into_iter().map(|hit| hit.passage).collect(),
            history,
            message: message.to_owned(),
        }
    }
}

/// How a rewrite ended, as the metrics name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RewriteOutcome {
    /// A query other than the shopper's words, searched beside them.
    Rewritten,
    /// The model gave back the shopper's words.
    Unchanged,
    /// The model gave nothing usable.
    Empty,
    /// No answer within the budget.
    Late,
    /// The request failed.
    Failed,
}

impl RewriteOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RewriteOutcome::Rewritten => "rewritten",
            RewriteOutcome::Unchanged => "unchanged",
            RewriteOutcome::Empty => "empty",
            RewriteOutcome::Late => "late",
            RewriteOutcome::Failed => "failed",
        }
    }
}

fn unavailable() -> ModelError {
    ModelError::unavailable("the store's catalog is not available")
}

/// Retrieves a turn's products and passages from `catalog`.
pub async fn retrieve(
    catalog: &Addr<StoreCatalog>,
    ask: Ask<'_>,
    metrics: &Metrics,
) -> Result<Retrieved, ModelError> {
    let find = |rewritten| FindProducts {
        query: ask.message.to_owned(),
        language: ask.language,
        limit: ask.limit,
        rewritten,
    };
    let mut found = catalog.send(find(None)).await.map_err(|_| unavailable())?;
    let Some(rewrite) = ask.rewrite else {
        return Ok(Retrieved { found, spent: 0 });
    };
    let request = QueryRequest {
        message: ask.message.to_owned(),
        earlier: ask.earlier.map(str::to_owned),
        catalog_language: found.profile.default_language,
    };
    // What the request costs, sent: the provider may bill a late one too.
    let asking = REWRITE_PROMPT_TOKENS + estimate(ask.message) + ask.earlier.map_or(0, estimate);
    let asked = Instant::now();
    let answer = tokio::time::timeout(rewrite.budget, rewrite.model.rewrite_query(request)).await;
    let (outcome, query, spent) = match answer {
        Err(_) => (RewriteOutcome::Late, None, asking),
        Ok(Err(error)) => {
            tracing::debug!(%error, "query rewrite failed");
            (RewriteOutcome::Failed, None, 0)
        }
        Ok(Ok(rewritten)) => {
            let spent = rewritten.usage.map_or_else(
                || asking + estimate(&rewritten.query),
                |usage| usage.prompt_tokens.saturating_add(usage.completion_tokens),
            );
            let outcome = if rewritten.query.is_empty() {
                RewriteOutcome::Empty
            } else if fold(&rewritten.query) == fold(ask.message) {
                RewriteOutcome::Unchanged
            } else {
                RewriteOutcome::Rewritten
            };
            let query = (outcome == RewriteOutcome::Rewritten).then_some(rewritten.query);
            (outcome, query, spent)
        }
    };
    metrics.query_rewrite(outcome.as_str(), asked.elapsed().min(rewrite.budget));
    if let Some(query) = query {
        // The rewrite adds products only: whether the shop's pages answer
        // stays decided on the shopper's words.
        let theirs = std::mem::take(&mut found.hits);
        let rewrite_hits = catalog
            .send(find(Some(query)))
            .await
            .map_err(|_| unavailable())?
            .hits;
        found.hits = fuse(theirs, rewrite_hits, ask.limit);
    }
    Ok(Retrieved { found, spent })
}

/// Instructions and overhead of a rewrite request, in estimated tokens.
const REWRITE_PROMPT_TOKENS: u64 = 120;

fn estimate(text: &str) -> u64 {
    crate::prompt::estimated_tokens(text) as u64
}
