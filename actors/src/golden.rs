//! Golden conversations: a store's list of shopper questions, each with
//! what its answer must do (show a product, answer in a language, keep the
//! cards' prices in a range, hand over to a person). [`replay`] asks one
//! question against the store's current catalog, pages, instructions and
//! model, the way a shopper's first message is answered, and checks the
//! answer; nothing is stored as a conversation. An owner replays the list
//! after a new feed or new instructions and sees what changed before
//! shoppers do.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::catalog::ProductCard;
use crate::cite::Citations;
use crate::desk::asks_for_human;
use crate::ids::StoreId;
use crate::knowledge::sources_line;
use crate::language::{Language, detect};
use crate::metrics::Metrics;
use crate::model::{ChatModel, ModelChunk, ModelError};
use crate::prompt::{Prompt, estimated_tokens};
use crate::provider::Models;
use crate::reply::{ProbeGuard, reply_cards};
use crate::retrieval::{Ask, Rewrite, retrieve};
use crate::store::StoreCatalog;

/// Most golden questions a store keeps.
pub const MAX_GOLDENS: usize = 100;
/// Longest question, in characters.
pub const MAX_QUESTION_CHARS: usize = 500;
/// Most products, and most mentions, one question expects.
pub const MAX_EXPECTED: usize = 20;
/// Longest product id or mention expected, in characters.
pub const MAX_EXPECTED_CHARS: usize = 200;
/// Longest a replayed answer may take.
pub const REPLAY_TIMEOUT: Duration = Duration::from_secs(60);

/// One question and what its answer must do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Golden {
    pub question: String,
    /// The language the shopper writes in (detected from the question when
    /// absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
    #[serde(default)]
    pub expect: Expect,
}

/// What an answer must do; every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Product ids that must each get a card.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub products: Vec<String>,
    /// The language the answer must be written in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
    /// Every card's price must lie within these bounds (minor units,
    /// inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_price: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<i64>,
    /// Words the answer must contain (case and accents ignored): "60 days".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<String>,
    /// The question must be handed over to a person from the store.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub handover: bool,
}

/// What is wrong with one question.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuestionProblem {
    #[error("the question is empty")]
    Empty,
    #[error("longer than {MAX_QUESTION_CHARS} characters")]
    TooLong,
    #[error("min_price is above max_price")]
    PriceRange,
    #[error("a price is below 0")]
    NegativePrice,
    #[error("at most {MAX_EXPECTED} products, each 1 to {MAX_EXPECTED_CHARS} characters")]
    Products,
    #[error("at most {MAX_EXPECTED} mentions, each 1 to {MAX_EXPECTED_CHARS} characters")]
    Mentions,
}

/// Why a list of golden questions was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GoldenProblem {
    /// Question `n` (from 1) is wrong.
    #[error("question {0}: {1}")]
    Question(usize, QuestionProblem),
    #[error("at most {MAX_GOLDENS} questions")]
    TooMany,
}

/// Checks one question.
pub fn check_question(golden: &Golden) -> Result<(), QuestionProblem> {
    if golden.question.trim().is_empty() {
        return Err(QuestionProblem::Empty);
    }
    if golden.question.chars().count() > MAX_QUESTION_CHARS {
        return Err(QuestionProblem::TooLong);
    }
    let expect = &golden.expect;
    if let (Some(lo), Some(hi)) = (expect.min_price, expect.max_price)
        && lo > hi
    {
        return Err(QuestionProblem::PriceRange);
    }
    if [expect.min_price, expect.max_price]
        .iter()
        .flatten()
        .any(|price| *price < 0)
    {
        return Err(QuestionProblem::NegativePrice);
    }
    let fits = |words: &[String]| {
        words.len() <= MAX_EXPECTED
            && words
                .iter()
                .all(|w| !w.trim().is_empty() && w.chars().count() <= MAX_EXPECTED_CHARS)
    };
    if !fits(&expect.products) {
        return Err(QuestionProblem::Products);
    }
    if !fits(&expect.mentions) {
        return Err(QuestionProblem::Mentions);
    }
    Ok(())
}

/// Checks a list before it replaces the stored one.
pub fn validate(goldens: &[Golden]) -> Result<(), GoldenProblem> {
    if goldens.len() > MAX_GOLDENS {
        return Err(GoldenProblem::TooMany);
    }
    for (i, golden) in goldens.iter().enumerate() {
        check_question(golden).map_err(|problem| GoldenProblem::Question(i + 1, problem))?;
    }
    Ok(())
}

/// One expectation checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// `product`, `language`, `price`, `mentions` or `handover`.
    pub what: String,
    pub passed: bool,
    /// What was expected and what came, in words.
    pub detail: String,
}

/// A replayed answer and its checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub question: String,
    pub text: String,
    /// The ids of the cards shown, in order.
    pub cards: Vec<String>,
    pub handed_over: bool,
    pub checks: Vec<Check>,
    /// Set when the model failed; the checks then fail too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.checks.iter().all(|c| c.passed)
    }
}

/// What changed for one question between two runs, in words; empty when
/// nothing did (or there is no earlier run).
pub fn changes(before: Option<&Outcome>, now: &Outcome) -> Vec<String> {
    let Some(before) = before else {
        return Vec::new();
    };
    let mut out = Vec::new();
    match (before.passed(), now.passed()) {
        (true, false) => out.push("now fails".to_owned()),
        (false, true) => out.push("now passes".to_owned()),
        _ => {}
    }
    let gone: Vec<&String> = before
        .cards
        .iter()
        .filter(|c| !now.cards.contains(c))
        .collect();
    let new: Vec<&String> = now
        .cards
        .iter()
        .filter(|c| !before.cards.contains(c))
        .collect();
    if !new.is_empty() {
        out.push(format!("new cards: {}", join(&new)));
    }
    if !gone.is_empty() {
        out.push(format!("cards gone: {}", join(&gone)));
    }
    if before.handed_over != now.handed_over {
        out.push(if now.handed_over {
            "now hands over".to_owned()
        } else {
            "no longer hands over".to_owned()
        });
    }
    if out.is_empty() && before.text != now.text {
        out.push("the wording changed".to_owned());
    }
    out
}

fn join(ids: &[&String]) -> String {
    ids.iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a store's golden questions are asked: as its shoppers' are.
#[derive(Clone, Copy, Debug)]
pub struct ReplaySettings {
    pub retrieval_limit: usize,
    /// The budget of a query rewrite by the provider; `None`: none asked.
    pub query_rewrite: Option<Duration>,
    /// The language of a question that names none and shows none.
    pub store_language: Language,
}

/// Asks one golden question of the store as a shopper's first message is
/// asked (the same retrieval, prompt, model, references and cards; the
/// store's model budget applies and is charged) and checks the answer.
pub async fn replay(
    catalog: &Addr<StoreCatalog>,
    models: &Models,
    store: &StoreId,
    golden: &Golden,
    settings: ReplaySettings,
    metrics: &Metrics,
) -> Outcome {
    let chosen = models.choose(store);
    // A replay that takes the half-open breaker's probe settles it, as a
    // reply does, or gives it back.
    let mut probe = ProbeGuard {
        breaker: chosen.probe.then_some(&models.breaker),
    };
    let language = golden
        .language
        .unwrap_or_else(|| detect(&golden.question, settings.store_language));
    let handed_over = asks_for_human(&golden.question);
    let rewrite = Rewrite::for_reply(&chosen, settings.query_rewrite);
    let ask = Ask {
        message: &golden.question,
        earlier: None,
        language,
        limit: settings.retrieval_limit,
        rewrite,
    };
    let answered = match retrieve(catalog, ask, metrics).await {
        Ok(retrieved) => {
            let rewrite_spent = retrieved.spent;
            let prompt = Arc::new(retrieved.prompt(language, Vec::new(), &golden.question));
            let answered = tokio::time::timeout(
                REPLAY_TIMEOUT,
                answer(chosen.model.as_ref(), Arc::clone(&prompt)),
            )
            .await
            .unwrap_or(Err(ModelError::Timeout));
            models.settle(&chosen, answered.as_ref().map(|_| ()));
            probe.breaker = None;
            answered.map(|(text, cards, spent)| (text, cards, spent + rewrite_spent))
        }
        Err(error) => Err(error),
    };
    let (text, cards, error) = match answered {
        Ok((text, cards, spent)) => {
            if chosen.degraded.is_none() {
                models.budgets.spend(store, spent);
            }
            (text, cards, None)
        }
        Err(error) => {
            tracing::warn!(%store, %error, "golden question not answered");
            (String::new(), Vec::new(), Some(for_owners(&error)))
        }
    };
    let checks = check(&golden.expect, &text, &cards, handed_over, language);
    Outcome {
        question: golden.question.clone(),
        text,
        cards: cards.iter().map(|c| c.id.0.clone()).collect(),
        handed_over,
        checks,
        error,
    }
}

/// What an owner is told of a failed answer: the kind of failure and the
/// provider's status, never its details (they name the provider's address
/// and may echo the request).
fn for_owners(error: &ModelError) -> String {
    let what = match error {
        ModelError::RateLimited { .. } => "the model provider is rate limiting",
        ModelError::Unavailable { .. } => "the model provider is unavailable",
        ModelError::Timeout => "the model provider did not answer in time",
        ModelError::Rejected { .. } => "the model provider refused the request",
    };
    match error.status() {
        Some(status) => format!("{what} (HTTP {status})"),
        None => what.to_owned(),
    }
}

/// The model's answer to `prompt`, its cards and what it cost.
async fn answer(
    model: &dyn ChatModel,
    prompt: Arc<Prompt>,
) -> Result<(String, Vec<ProductCard>, u64), ModelError> {
    let mut stream = model.start(Arc::clone(&prompt)).await?;
    let mut citations = Citations::new();
    let mut text = String::new();
    let (mut streamed, mut usage) = (0_u64, None);
    while let Some(chunk) = stream.next().await {
        match chunk? {
            ModelChunk::Text(piece) => {
                streamed += 1;
                text.push_str(&citations.push(piece));
            }
            ModelChunk::Usage(u) => usage = Some(u),
            ModelChunk::Show(references) => citations.show(&references),
            ModelChunk::Finished(_) => {}
        }
    }
    text.push_str(&citations.finish());
    if let Some(line) = sources_line(&prompt.passages, citations.sources(), prompt.language) {
        text.push_str(&line);
    }
    let cards = reply_cards(&prompt, &text, citations.cited());
    // What the provider counted, else the same estimate replies use.
    let spent = usage.map_or_else(
        || {
            (estimated_tokens(&prompt.system_text()) + estimated_tokens(&prompt.message)) as u64
                + streamed
        },
        |u| u.prompt_tokens.saturating_add(u.completion_tokens),
    );
    Ok((text, cards, spent))
}

/// The expectations checked against an answer.
fn check(
    expect: &Expect,
    text: &str,
    cards: &[ProductCard],
    handed_over: bool,
    asked_in: Language,
) -> Vec<Check> {
    let mut checks = Vec::new();
    for id in &expect.products {
        let shown = cards.iter().any(|c| c.id.0 == *id);
        checks.push(Check {
            what: "product".into(),
            passed: shown,
            detail: if shown {
                format!("{id} shown")
            } else {
                format!("{id} not shown")
            },
        });
    }
    if let Some(wanted) = expect.language {
        // Short answers say little: the language asked in is the fallback.
        let got = detect(text, asked_in);
        checks.push(Check {
            what: "language".into(),
            passed: got == wanted,
            detail: format!("expected {}, answered in {}", wanted.code(), got.code()),
        });
    }
    if expect.min_price.is_some() || expect.max_price.is_some() {
        let outside: Vec<&ProductCard> = cards
            .iter()
            .filter(|c| {
                expect.min_price.is_some_and(|lo| c.price.minor < lo)
                    || expect.max_price.is_some_and(|hi| c.price.minor > hi)
            })
            .collect();
        checks.push(Check {
            what: "price".into(),
            passed: outside.is_empty(),
            detail: if outside.is_empty() {
                format!("{} cards within the range", cards.len())
            } else {
                let names: Vec<String> = outside
                    .iter()
                    .map(|c| format!("{} at {}", c.id.0, c.price))
                    .collect();
                format!("outside the range: {}", names.join(", "))
            },
        });
    }
    let folded = crate::search::analysis::fold(text);
    for words in &expect.mentions {
        let found = folded.contains(&crate::search::analysis::fold(words));
        checks.push(Check {
            what: "mentions".into(),
            passed: found,
            detail: if found {
                format!("mentions \u{201c}{words}\u{201d}")
            } else {
                format!("does not mention \u{201c}{words}\u{201d}")
            },
        });
    }
    if expect.handover {
        checks.push(Check {
            what: "handover".into(),
            passed: handed_over,
            detail: if handed_over {
                "handed over to a person".into()
            } else {
                "not handed over".into()
            },
        });
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(cards: &[&str], passed: bool) -> Outcome {
        Outcome {
            question: "q".into(),
            text: "t".into(),
            cards: cards.iter().map(|c| (*c).to_owned()).collect(),
            handed_over: false,
            checks: vec![Check {
                what: "product".into(),
                passed,
                detail: String::new(),
            }],
            error: None,
        }
    }

    #[test]
    fn changes_between_runs_are_said_in_words() {
        let before = outcome(&["a", "b"], true);
        assert!(changes(None, &before).is_empty());
        assert!(changes(Some(&before), &before).is_empty());
        let now = outcome(&["b", "c"], false);
        assert_eq!(
            changes(Some(&before), &now),
            ["now fails", "new cards: c", "cards gone: a"]
        );
        let mut reworded = before.clone();
        reworded.text = "other".into();
        assert_eq!(changes(Some(&before), &reworded), ["the wording changed"]);
    }

    #[test]
    fn lists_are_checked_before_they_are_kept() {
        let golden = |q: &str| Golden {
            question: q.into(),
            language: None,
            expect: Expect::default(),
        };
        assert_eq!(validate(&[golden("a tent")]), Ok(()));
        assert_eq!(
            validate(&[golden("ok"), golden("  ")]),
            Err(GoldenProblem::Question(2, QuestionProblem::Empty))
        );
        let long = "x".repeat(MAX_QUESTION_CHARS + 1);
        assert_eq!(
            validate(&[golden(&long)]),
            Err(GoldenProblem::Question(1, QuestionProblem::TooLong))
        );
        let mut bad = golden("a tent");
        bad.expect.min_price = Some(200);
        bad.expect.max_price = Some(100);
        assert_eq!(
            validate(&[bad]),
            Err(GoldenProblem::Question(1, QuestionProblem::PriceRange))
        );
        let many = vec![golden("q"); MAX_GOLDENS + 1];
        assert_eq!(validate(&many), Err(GoldenProblem::TooMany));
        let mut negative = golden("a tent");
        negative.expect.max_price = Some(-1);
        assert_eq!(
            validate(&[negative]),
            Err(GoldenProblem::Question(1, QuestionProblem::NegativePrice))
        );
        let mut empty_mention = golden("a tent");
        empty_mention.expect.mentions = vec![" ".into()];
        assert_eq!(
            validate(&[golden("ok"), empty_mention]),
            Err(GoldenProblem::Question(2, QuestionProblem::Mentions)),
            "an empty mention would always pass"
        );
        let mut flood = golden("a tent");
        flood.expect.products = vec!["tent-01".into(); MAX_EXPECTED + 1];
        assert_eq!(
            validate(&[flood]),
            Err(GoldenProblem::Question(1, QuestionProblem::Products))
        );
        // Unknown fields are refused, so a typo is not silently ignored.
        let typo =
            serde_json::from_str::<Golden>(r#"{"question": "q", "expect": {"prodcts": []}}"#);
        assert!(typo.is_err());
    }
}
