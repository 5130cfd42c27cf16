//! The model port: how a reply is generated. Two implementations live in the
//! `mikabot` crate (an OpenAI-compatible streaming client and the offline
//! responder); tests add a third through a real local HTTP server.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use futures_util::future::BoxFuture;

use crate::language::Language;
use crate::prompt::Prompt;

/// Why a model stopped generating.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// A natural end.
    Stop,
    /// The configured token limit was reached.
    Length,
    /// The provider withheld content.
    ContentFilter,
    /// A person from the store took the conversation over mid-reply; the
    /// reply stopped where it was.
    TakenOver,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::TakenOver => "taken_over",
        }
    }
}

/// One piece of a streamed reply.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelChunk {
    /// Text to show the shopper.
    Text(String),
    /// The model's own end marker.
    Finished(FinishReason),
    /// What the request cost, as the provider counts it (OpenAI sends it
    /// last, when asked to). The last one a reply sends counts (a provider
    /// may send running totals); a reply of two requests (a tool call and
    /// the answer after it) sends their sum last.
    Usage(Usage),
    /// Products the model showed through the `show_products` tool, by
    /// their reference numbers in the prompt (`P2` is 2).
    Show(Vec<usize>),
}

/// Tokens a request used, as the provider reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Usage {
    /// Two requests' usage together.
    pub fn plus(self, other: Usage) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens.saturating_add(other.prompt_tokens),
            completion_tokens: self
                .completion_tokens
                .saturating_add(other.completion_tokens),
        }
    }
}

/// The chunks of one reply. A stream that ends without `Finished` was cut.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<ModelChunk, ModelError>> + Send>>;

/// What went wrong talking to a model.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// HTTP 429; `retry_after` is the provider's `Retry-After`, if any.
    #[error("the model provider is rate limiting (retry after {retry_after:?})")]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx or 408, connection refused or reset, or a stream cut off.
    #[error("the model provider is unavailable: {detail}")]
    Unavailable {
        /// The provider's HTTP status, when it answered with one.
        status: Option<u16>,
        detail: String,
    },
    /// No answer, or no next chunk, within the configured time.
    #[error("the model provider did not answer in time")]
    Timeout,
    /// Any other refusal (bad key, unknown model, bad request): retrying
    /// would not help.
    #[error("the model provider refused the request: {detail}")]
    Rejected { status: Option<u16>, detail: String },
}

impl ModelError {
    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, ModelError::Rejected { .. })
    }

    /// Unavailable without an HTTP status: refused connections, broken
    /// streams, the node's own reasons.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        ModelError::Unavailable {
            status: None,
            detail: detail.into(),
        }
    }

    /// Whether the failure says the provider itself is in trouble (down,
    /// slow, overloaded, or refusing every request: a bad key, a missing
    /// model), rather than that one request was refused (a content filter,
    /// an over-long prompt). Only the first kind opens the breaker: a
    /// shopper must not be able to open it with words.
    pub fn is_providers_fault(&self) -> bool {
        match self {
            ModelError::RateLimited { .. }
            | ModelError::Unavailable { .. }
            | ModelError::Timeout => true,
            ModelError::Rejected { status, .. } => matches!(status, Some(401 | 403 | 404)),
        }
    }

    /// A stable name for the kind of failure (metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            ModelError::RateLimited { .. } => "rate_limited",
            ModelError::Unavailable { .. } => "unavailable",
            ModelError::Timeout => "timeout",
            ModelError::Rejected { .. } => "rejected",
        }
    }

    /// The provider's HTTP status, when it answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ModelError::RateLimited { .. } => Some(429),
            ModelError::Unavailable { status, .. } | ModelError::Rejected { status, .. } => *status,
            ModelError::Timeout => None,
        }
    }
}

/// A model that streams a reply to a prompt.
pub trait ChatModel: Send + Sync + 'static {
    /// A short name for logs (`openai`, `offline`).
    fn name(&self) -> &'static str;

    /// Starts one reply. The future fails for errors before the first byte
    /// of the answer (status codes, refused connections); the stream's
    /// items fail for errors after.
    fn start(&self, prompt: Arc<Prompt>) -> BoxFuture<'static, Result<ChunkStream, ModelError>>;

    /// Whether [`rewrite_query`](Self::rewrite_query) can be asked.
    fn rewrites_queries(&self) -> bool {
        false
    }

    /// Turns a shopper's message into a search query in the catalog's
    /// language (one short request, not streamed). Models that cannot
    /// refuse; the caller then searches the shopper's own words.
    fn rewrite_query(
        &self,
        request: QueryRequest,
    ) -> BoxFuture<'static, Result<Rewritten, ModelError>> {
        let _ = request;
        Box::pin(async {
            Err(ModelError::Rejected {
                status: None,
                detail: "this model does not rewrite queries".into(),
            })
        })
    }
}

/// What a query rewrite is asked from.
#[derive(Clone, Debug)]
pub struct QueryRequest {
    /// The shopper's newest message.
    pub message: String,
    /// The shopper's message before it, if any: what "and in blue?" refers to.
    pub earlier: Option<String>,
    /// The language the catalog is written in.
    pub catalog_language: Language,
}

/// Most words a rewritten query may have to be searched (it is asked for
/// at most eight).
pub const MAX_REWRITTEN_WORDS: usize = 12;
/// Longest rewritten query kept, in characters.
pub const MAX_REWRITTEN_CHARS: usize = 160;

/// A model's search query for a shopper's message.
#[derive(Clone, Debug, PartialEq)]
pub struct Rewritten {
    /// The query, one line, at most [`MAX_REWRITTEN_CHARS`]; empty when the
    /// model gave nothing usable.
    pub query: String,
    pub usage: Option<Usage>,
}

impl Rewritten {
    /// The query in a model's answer: its first non-empty line, without
    /// a label or quotes, bounded.
    pub fn from_answer(answer: &str, usage: Option<Usage>) -> Self {
        let line = answer
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("");
        let line = match line.split_once(':') {
            Some((label, rest)) if label.len() <= 16 && label.to_lowercase().contains("query") => {
                rest.trim()
            }
            _ => line,
        };
        let query: String = line
            .trim_matches(|c: char| matches!(c, '"' | '\'' | '`' | '“' | '”' | '«' | '»'))
            .trim()
            .chars()
            .take(MAX_REWRITTEN_CHARS)
            .collect();
        // "-": the model found no product asked for. Far more words than a
        // query has: the model did not write one (a small model echoing
        // its instructions), and its words would only dilute the search.
        let query = if query.chars().any(char::is_alphanumeric)
            && query.split_whitespace().count() <= MAX_REWRITTEN_WORDS
        {
            query
        } else {
            String::new()
        };
        Self { query, usage }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewritten_query_is_one_clean_bounded_line() {
        let q = |answer: &str| Rewritten::from_answer(answer, None).query;
        assert_eq!(q("rain jacket waterproof"), "rain jacket waterproof");
        assert_eq!(
            q("\n  \"rain jacket\"\nBecause the shopper…"),
            "rain jacket"
        );
        assert_eq!(q("Search query: espresso machine"), "espresso machine");
        assert_eq!(
            q("Note: hiking boots"),
            "Note: hiking boots",
            "only a query label is dropped"
        );
        assert_eq!(q("   "), "");
        assert_eq!(q("-"), "", "no product asked for");
        let echoed = "The kind of product and the words that matter (brand, colour, size, material, use) under 100.";
        assert_eq!(q(echoed), "", "an echo of the instructions is no query");
        assert_eq!(q(&"x".repeat(500)).chars().count(), MAX_REWRITTEN_CHARS);
    }

    #[test]
    fn only_the_providers_trouble_counts_against_it() {
        let rejected = |status| ModelError::Rejected {
            status: Some(status),
            detail: String::new(),
        };
        assert!(ModelError::Timeout.is_providers_fault());
        assert!(ModelError::RateLimited { retry_after: None }.is_providers_fault());
        assert!(ModelError::unavailable("reset").is_providers_fault());
        assert!(
            rejected(401).is_providers_fault(),
            "a bad key fails every request"
        );
        assert!(
            !rejected(400).is_providers_fault(),
            "a shopper's words, not the provider"
        );
        assert!(!rejected(422).is_providers_fault());
    }
}
