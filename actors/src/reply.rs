//! One reply's generation, run as its own task so it outlives the shopper's
//! socket: it retrieves the turn's products from the store's catalog,
//! builds the prompt, calls the model, retries before the first token,
//! keeps every event in the reply's [`ReplyFeed`] and hands it to whichever
//! session follows the reply now, and records the reply (complete, or
//! partial and marked incomplete) whatever happens.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use std::panic::AssertUnwindSafe;

use futures_util::{FutureExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use actix::Addr;

use crate::catalog::ProductCard;
use crate::cite::Citations;
use crate::claims;
use crate::desk::{DeskEvent, Watcher};
use crate::ids::{ConversationId, MessageId, StoreId};
use crate::knowledge::sources_line;
use crate::language::Language;
use crate::log::{ConversationLog, ReplyOutcome, StoredMessage, now_ms};
use crate::metrics::{FinishLabel, Metrics, ReasonLabel};
use crate::model::{ChatModel, FinishReason, ModelChunk, ModelError, Usage};
use crate::prompt::{Prompt, Role, Turn, bounded_history, estimated_tokens};
use crate::provider::{Chosen, Models};
use crate::retrieval::{Ask, Rewrite, retrieve};
use crate::search::analysis::{fold, is_stopword, tokens};
use crate::store::StoreCatalog;
use crate::tasks::Tasks;

/// Events of one reply, from its task to its session.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyEvent {
    Token {
        seq: u32,
        text: String,
    },
    /// The reply is complete and stored; `cards` may be empty.
    Finished {
        cards: Vec<ProductCard>,
        finish: FinishReason,
    },
    /// The reply failed. Any partial text is stored marked incomplete.
    Failed {
        error: ModelError,
        after_tokens: bool,
    },
}

/// How a reply retries a failing model before its first token.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Delay before the first retry; doubles each attempt.
    pub base_delay: Duration,
    /// Longest delay between attempts.
    pub max_delay: Duration,
    /// Total time a reply may spend on retries before giving up.
    pub budget: Duration,
    /// Longest wait for the model's answer to start, and between chunks.
    pub idle_timeout: Duration,
}

impl RetryPolicy {
    /// Exponential backoff with jitter: a random delay in the upper half of
    /// the doubled window, and never less than the provider's Retry-After.
    fn delay(&self, attempt: u32, error: &ModelError) -> Duration {
        let window = self
            .base_delay
            .saturating_mul(2_u32.saturating_pow(attempt))
            .min(self.max_delay);
        let jittered = window.mul_f64(0.5 + fastrand::f64() * 0.5);
        match error {
            ModelError::RateLimited {
                retry_after: Some(after),
            } => jittered.max(*after),
            _ => jittered,
        }
    }
}

/// Everything one reply needs.
pub struct ReplyJob {
    /// The provider, the offline fallback, the breaker and the budgets.
    pub models: Arc<Models>,
    pub log: Arc<dyn ConversationLog>,
    /// The store's catalog, searched for the turn's products.
    pub catalog: Addr<StoreCatalog>,
    pub store: StoreId,
    pub conversation: ConversationId,
    pub reply_id: MessageId,
    /// The language to answer in.
    pub language: Language,
    /// The shopper message being answered.
    pub message: String,
    /// What was said before it, oldest first; bounded to `history_tokens`
    /// for the prompt.
    pub earlier: Vec<Turn>,
    pub history_tokens: usize,
    /// Products retrieved for the turn.
    pub retrieval_limit: usize,
    /// The budget of a query rewrite by the provider; `None`: none asked.
    pub query_rewrite: Option<Duration>,
    pub policy: RetryPolicy,
    pub metrics: Arc<Metrics>,
    /// When the reply began (the time to first token counts from here).
    pub began: Instant,
    /// The span of the session that started the reply; the reply's own
    /// span is its child.
    pub span: tracing::Span,
    /// Cancelled when the message it answers could not be stored: the
    /// reply then ends at once and records nothing.
    pub withdrawn: CancellationToken,
    /// Cancelled when a person from the store takes the conversation over:
    /// the reply stops, and what it had is recorded as `taken_over`.
    pub taken_over: CancellationToken,
}

impl ReplyJob {
    /// Retrieves the turn's products (with a query rewrite when the node
    /// asks for one and `chosen` is the provider) and builds the prompt;
    /// also answers what the rewrite cost, in tokens.
    async fn prompt(&self, chosen: &Chosen) -> Result<(Prompt, u64), ModelError> {
        // A restricted conversation's earlier messages stay out of every
        // prompt; when that cannot be read, they stay out too.
        let history = if self
            .log
            .restricted(&self.store, self.conversation)
            .unwrap_or(true)
        {
            Vec::new()
        } else {
            bounded_history(&self.earlier, self.history_tokens)
        };
        let rewrite = Rewrite::for_reply(chosen, self.query_rewrite);
        let ask = Ask {
            message: &self.message,
            earlier: history
                .iter()
                .rev()
                .find(|turn| turn.role == Role::Shopper)
                .map(|turn| turn.text.as_str()),
            language: self.language,
            limit: self.retrieval_limit,
            rewrite,
        };
        let retrieved = retrieve(&self.catalog, ask, &self.metrics).await?;
        let spent = retrieved.spent;
        let prompt = retrieved.prompt(self.language, history, &self.message);
        Ok((prompt, spent))
    }
}

/// Events buffered between a reply task and its session.
const REPLY_EVENT_BUFFER: usize = 64;

/// One reply's events as they happen, kept while the reply runs (and a
/// little after) so a shopper whose socket dropped can catch up from the
/// last token they saw. At most one session follows a feed at a time; the
/// handover is exact: every event reaches the follower either in the
/// catch-up or through its channel, never both and never neither.
pub struct ReplyFeed {
    reply_id: MessageId,
    /// The shopper message this reply answers.
    answers: MessageId,
    ended: watch::Receiver<()>,
    state: Mutex<FeedState>,
    /// The reply's withdrawal: cancelled, the reply stops and is not
    /// recorded.
    withdraw: CancellationToken,
    /// Cancelled when a person from the store takes the conversation
    /// over: the reply stops and what it had is recorded, `taken_over`.
    taken_over: CancellationToken,
}

struct FeedState {
    /// Every token's text, concatenated; `ends[seq]` is where token `seq` ends.
    text: String,
    ends: Vec<u32>,
    /// The reply's last event, once it has ended.
    last: Option<ReplyEvent>,
    follower: Option<mpsc::Sender<ReplyEvent>>,
    /// Watchers on the desk following the reply, each by its conversation;
    /// they are offered every event without waiting.
    taps: Vec<(ConversationId, Watcher)>,
    /// Dropped by the reply task when it ends however it ends.
    end_signal: Option<watch::Sender<()>>,
}

/// What a session following a reply from token `from_seq` must show first.
#[derive(Debug, Default)]
pub struct Catchup {
    /// The text of the tokens before `from_seq`, already shown.
    pub shown: String,
    /// The events from `from_seq` on, in order.
    pub events: Vec<ReplyEvent>,
}

impl ReplyFeed {
    /// A feed for a reply about to start, followed by the caller through
    /// the receiver.
    pub fn new(
        reply_id: MessageId,
        answers: MessageId,
        withdraw: CancellationToken,
        taken_over: CancellationToken,
    ) -> (Arc<Self>, mpsc::Receiver<ReplyEvent>) {
        let (tx, rx) = mpsc::channel(REPLY_EVENT_BUFFER);
        let (end_signal, ended) = watch::channel(());
        let feed = Arc::new(Self {
            reply_id,
            answers,
            ended,
            withdraw,
            taken_over,
            state: Mutex::new(FeedState {
                text: String::new(),
                ends: Vec::new(),
                last: None,
                taps: Vec::new(),
                follower: Some(tx),
                end_signal: Some(end_signal),
            }),
        });
        (feed, rx)
    }

    pub fn reply_id(&self) -> MessageId {
        self.reply_id
    }

    /// Stops the reply where it is; nothing of it is recorded.
    pub fn withdraw(&self) {
        self.withdraw.cancel();
    }

    /// Stops the reply where it is because a person took the conversation
    /// over; what it had is recorded, marked incomplete.
    pub fn take_over(&self) {
        self.taken_over.cancel();
    }

    /// Adds a desk watcher: it is offered every token so far (folded into
    /// one event) and the reply's end if it came, then every later event,
    /// each exactly once. False when its queue had no room.
    pub(crate) fn tap(&self, conversation: ConversationId, watcher: Watcher) -> bool {
        let mut state = self.state();
        state.taps.retain(|(_, w)| w.id() != watcher.id());
        if let Some(last_seq) = state.ends.len().checked_sub(1) {
            let catchup = DeskEvent::Tokens {
                conversation,
                reply_id: self.reply_id,
                from_seq: 0,
                seq: last_seq as u32,
                text: state.text.clone(),
            };
            if !watcher.offer(catchup) {
                return false;
            }
        }
        if let Some(last) = &state.last {
            return watcher.offer(desk_event(conversation, self.reply_id, last));
        }
        state.taps.push((conversation, watcher));
        true
    }

    /// Removes a desk watcher.
    pub(crate) fn untap(&self, watcher: u64) {
        self.state().taps.retain(|(_, w)| w.id() != watcher);
    }

    pub fn answers(&self) -> MessageId {
        self.answers
    }

    fn state(&self) -> MutexGuard<'_, FeedState> {
        // The state stays consistent under every panic point: a poisoned
        // lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the caller the feed's only follower: returns what happened
    /// from token `from_seq` on, and the channel for what happens next.
    pub fn follow(&self, from_seq: u32) -> (Catchup, mpsc::Receiver<ReplyEvent>) {
        let (tx, rx) = mpsc::channel(REPLY_EVENT_BUFFER);
        let mut state = self.state();
        let from = (from_seq as usize).min(state.ends.len());
        let start_of = |seq: usize, ends: &[u32]| {
            if seq == 0 { 0 } else { ends[seq - 1] as usize }
        };
        let mut catchup = Catchup {
            shown: state.text[..start_of(from, &state.ends)].to_owned(),
            events: Vec::with_capacity(state.ends.len() - from + 1),
        };
        for seq in from..state.ends.len() {
            let text = state.text[start_of(seq, &state.ends)..state.ends[seq] as usize].to_owned();
            catchup.events.push(ReplyEvent::Token {
                seq: seq as u32,
                text,
            });
        }
        catchup.events.extend(state.last.clone());
        state.follower = Some(tx);
        (catchup, rx)
    }

    /// Whether any token was emitted.
    fn has_tokens(&self) -> bool {
        !self.state().ends.is_empty()
    }

    /// Resolves once the reply has ended (recorded, or its task gone).
    pub async fn ended(&self) {
        let mut ended = self.ended.clone();
        // Nothing is ever sent: the only change is the sender's drop.
        while ended.changed().await.is_ok() {}
    }

    /// Keeps the event and returns the follower to hand it to.
    fn keep(&self, event: &ReplyEvent) -> Option<mpsc::Sender<ReplyEvent>> {
        let mut state = self.state();
        match event {
            ReplyEvent::Token { text, .. } => {
                state.text.push_str(text);
                let end = u32::try_from(state.text.len()).unwrap_or(u32::MAX);
                state.ends.push(end);
            }
            last => state.last = Some(last.clone()),
        }
        // Offered under the lock, so a watcher tapping in now gets this
        // event either in its catch-up or here, never both.
        let reply_id = self.reply_id;
        state.taps.retain(|(conversation, watcher)| {
            watcher.offer(desk_event(*conversation, reply_id, event))
        });
        if !matches!(event, ReplyEvent::Token { .. }) {
            state.taps.clear();
        }
        state.follower.clone()
    }

    /// Forgets a follower that stopped listening, unless another took over.
    fn unfollow(&self, gone: &mpsc::Sender<ReplyEvent>) {
        let mut state = self.state();
        if state
            .follower
            .as_ref()
            .is_some_and(|f| f.same_channel(gone))
        {
            state.follower = None;
        }
    }

    /// Keeps the event and hands it to the follower, if any listens.
    async fn emit(&self, event: ReplyEvent) {
        if let Some(follower) = self.keep(&event)
            && follower.send(event).await.is_err()
        {
            self.unfollow(&follower);
        }
    }
}

/// A reply's event as a desk watcher sees it.
fn desk_event(conversation: ConversationId, reply_id: MessageId, event: &ReplyEvent) -> DeskEvent {
    match event {
        ReplyEvent::Token { seq, text } => DeskEvent::Tokens {
            conversation,
            reply_id,
            from_seq: *seq,
            seq: *seq,
            text: text.clone(),
        },
        ReplyEvent::Finished { cards, finish } => DeskEvent::ReplyDone {
            conversation,
            reply_id,
            finish: *finish,
            cards: cards.clone(),
        },
        ReplyEvent::Failed { .. } => DeskEvent::ReplyFailed {
            conversation,
            reply_id,
        },
    }
}

/// Starts the reply as one of the node's `tasks`; its events go to `feed`.
/// A stopping node lets it finish, or cuts it at the shutdown timeout:
/// what it generated is then recorded, marked incomplete.
pub fn spawn(job: ReplyJob, feed: Arc<ReplyFeed>, tasks: &Tasks) {
    let end_signal = feed.state().end_signal.take();
    let cut = tasks.clone();
    let span = tracing::info_span!(parent: &job.span, "reply", reply = %short_id(&job.reply_id));
    tasks.spawn(
        async move {
            // A bug below (in a provider's adapter, say) must not leave the
            // session waiting for an end that never comes: the reply ends
            // with an error, and what it had is recorded by the recorder's
            // drop on the way out.
            let ran = AssertUnwindSafe(run(job, &feed, &cut)).catch_unwind().await;
            if ran.is_err() {
                tracing::error!("the reply task panicked; the reply ends with an error");
                let after_tokens = feed.has_tokens();
                feed.emit(ReplyEvent::Failed {
                    error: ModelError::unavailable("the reply stopped unexpectedly"),
                    after_tokens,
                })
                .await;
            }
            drop(end_signal);
        }
        .instrument(span),
    );
}

/// The last eight hex digits of an id (random in v4 and v7 ids alike):
/// enough to follow one session or reply through the log, too little to
/// stand for it.
pub fn short_id(id: &impl std::fmt::Display) -> String {
    let digits: Vec<char> = id.to_string().chars().filter(|c| *c != '-').collect();
    digits[digits.len().saturating_sub(8)..].iter().collect()
}

/// Stores the reply when it ends. Dropped without `finish` (the runtime
/// stopped, the task panicked), it stores what was generated as incomplete.
struct Recorder {
    log: Arc<dyn ConversationLog>,
    store: StoreId,
    conversation: ConversationId,
    reply_id: MessageId,
    text: String,
    recorded: bool,
    /// Tokens streamed from the model (the notice of a degraded reply is
    /// not one), and what the provider said the request cost.
    streamed: u64,
    usage: Option<Usage>,
    /// Takes the product references out of the model's text.
    citations: Citations,
}

impl Recorder {
    fn message(&mut self, outcome: ReplyOutcome) -> StoredMessage {
        self.recorded = true;
        StoredMessage {
            author: None,
            id: self.reply_id,
            conversation: self.conversation,
            role: Role::Assistant,
            text: std::mem::take(&mut self.text),
            at_ms: now_ms(),
            client_id: None,
            reply: Some(outcome),
        }
    }

    /// Stores the reply here and now (the drop path).
    fn record(&mut self, outcome: ReplyOutcome) -> Result<(), crate::log::LogError> {
        let message = self.message(outcome);
        self.log.append(&self.store, &message)
    }

    /// Stores the reply and waits until it is on disk, without making this
    /// thread wait on the disk.
    async fn record_durably(&mut self, outcome: ReplyOutcome) -> Result<(), crate::log::LogError> {
        let message = self.message(outcome);
        self.log.record_durably(&self.store, &message).await
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if !self.recorded && !self.text.is_empty() {
            let outcome = ReplyOutcome {
                finish: None,
                incomplete: true,
                cards: Vec::new(),
            };
            if let Err(error) = self.record(outcome) {
                tracing::error!(%error, reply = %self.reply_id, "partial reply lost");
            }
        }
    }
}

/// Tells the breaker a probe ended without an outcome, unless it had one.
pub(crate) struct ProbeGuard<'a> {
    pub(crate) breaker: Option<&'a crate::provider::Breaker>,
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if let Some(breaker) = self.breaker {
            breaker.probe_abandoned();
        }
    }
}

/// Counts a reply in flight while it lives, and how it ended.
struct InFlight<'a> {
    metrics: &'a Metrics,
    finish: &'static str,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        tracing::debug!(finish = self.finish, "reply ended");
        self.metrics.replies_in_flight.dec();
        let finish = FinishLabel {
            finish: self.finish,
        };
        self.metrics.replies.get_or_create(&finish).inc();
    }
}

async fn run(job: ReplyJob, feed: &ReplyFeed, tasks: &Tasks) {
    job.metrics.replies_in_flight.inc();
    let mut in_flight = InFlight {
        metrics: &job.metrics,
        // What a task dropped mid-way (the runtime stopped) counts as.
        finish: "interrupted",
    };
    let chosen = job.models.choose(&job.store);
    let mut probe = ProbeGuard {
        breaker: chosen.probe.then_some(&job.models.breaker),
    };
    let prompt = tokio::select! {
        prompt = job.prompt(&chosen) => prompt,
        () = tasks.cut() => Err(ModelError::unavailable("the node stopped before the reply began")),
        () = job.withdrawn.cancelled() => {
            in_flight.finish = "withdrawn";
            return;
        }
        () = job.taken_over.cancelled() => {
            in_flight.finish = "taken_over";
            feed.emit(ReplyEvent::Finished { cards: Vec::new(), finish: FinishReason::TakenOver }).await;
            return;
        }
    };
    let prompt = match prompt {
        Ok((prompt, rewrite_spent)) => {
            if chosen.degraded.is_none() && rewrite_spent > 0 {
                job.models.budgets.spend(&job.store, rewrite_spent);
            }
            Arc::new(prompt)
        }
        Err(error) => {
            tracing::warn!(%error, "reply failed before the model was asked");
            in_flight.finish = "failed";
            feed.emit(ReplyEvent::Failed {
                error,
                after_tokens: false,
            })
            .await;
            return;
        }
    };
    if let Some(degraded) = chosen.degraded {
        let reason = ReasonLabel {
            reason: degraded.as_str(),
        };
        job.metrics.replies_degraded.get_or_create(&reason).inc();
    }
    tracing::debug!(
        products = prompt.products.len(),
        model = chosen.model.name(),
        degraded = chosen.degraded.map(|d| d.as_str()),
        "reply started"
    );
    let mut recorder = Recorder {
        log: Arc::clone(&job.log),
        store: job.store.clone(),
        conversation: job.conversation,
        reply_id: job.reply_id,
        text: String::new(),
        recorded: false,
        streamed: 0,
        usage: None,
        citations: Citations::new(),
    };
    let outcome = tokio::select! {
        outcome = generate(&job, &chosen, &mut probe, &prompt, feed, &mut recorder) => outcome,
        () = tasks.cut() => {
            in_flight.finish = "cut";
            Err(ModelError::unavailable("the node stopped before the reply ended"))
        }
        () = job.withdrawn.cancelled() => {
            // It answers a message that was never stored; what the provider
            // generated for it is still paid for.
            recorder.recorded = true;
            in_flight.finish = "withdrawn";
            if chosen.degraded.is_none() {
                job.models.budgets.spend(&job.store, spent_tokens(&prompt, &recorder));
            }
            return;
        }
        // Dropping the generation drops the model's stream: the provider
        // sees the request cancelled.
        () = job.taken_over.cancelled() => Ok(FinishReason::TakenOver),
    };
    if chosen.degraded.is_none() {
        job.models
            .budgets
            .spend(&job.store, spent_tokens(&prompt, &recorder));
    }
    match outcome {
        Ok(FinishReason::TakenOver) => {
            in_flight.finish = "taken_over";
            if !recorder.text.is_empty() {
                let stored = recorder
                    .record_durably(ReplyOutcome {
                        finish: Some(FinishReason::TakenOver),
                        incomplete: true,
                        cards: Vec::new(),
                    })
                    .await;
                if let Err(error) = stored {
                    tracing::error!(%error, "taken-over reply not stored");
                }
            }
            let finish = FinishReason::TakenOver;
            feed.emit(ReplyEvent::Finished {
                cards: Vec::new(),
                finish,
            })
            .await;
        }
        Ok(finish) => {
            in_flight.finish = finish.as_str();
            let cards = reply_cards(&prompt, &recorder.text, recorder.citations.cited());
            let stored = recorder
                .record_durably(ReplyOutcome {
                    finish: Some(finish),
                    incomplete: false,
                    cards: cards.clone(),
                })
                .await;
            if let Err(error) = stored {
                tracing::error!(%error, "reply not stored");
            }
            feed.emit(ReplyEvent::Finished { cards, finish }).await;
        }
        Err(error) => {
            let after_tokens = !recorder.text.is_empty();
            if in_flight.finish != "cut" {
                in_flight.finish = if after_tokens {
                    "interrupted"
                } else {
                    "failed"
                };
            }
            if after_tokens {
                let stored = recorder
                    .record_durably(ReplyOutcome {
                        finish: None,
                        incomplete: true,
                        cards: Vec::new(),
                    })
                    .await;
                if let Err(e) = stored {
                    tracing::error!(error = %e, "partial reply not stored");
                }
            }
            tracing::warn!(%error, after_tokens, "reply failed");
            feed.emit(ReplyEvent::Failed {
                error,
                after_tokens,
            })
            .await;
        }
    }
}

/// What a reply cost the store: the provider's count when it gave one,
/// else an estimate (the prompt's text, and one token a streamed chunk).
fn spent_tokens(prompt: &Prompt, recorder: &Recorder) -> u64 {
    match recorder.usage {
        Some(usage) => usage.prompt_tokens.saturating_add(usage.completion_tokens),
        None if recorder.streamed == 0 && recorder.text.is_empty() => 0,
        None => {
            let history: usize = prompt
                .history
                .iter()
                .map(|turn| estimated_tokens(&turn.text))
                .sum();
            let asked = estimated_tokens(&prompt.system_text())
                + history
                + estimated_tokens(&prompt.message);
            (asked as u64).saturating_add(recorder.streamed)
        }
    }
}

/// Runs attempts until one finishes, a failure may not be retried, or the
/// retry budget is spent. A degraded reply starts with its notice.
async fn generate(
    job: &ReplyJob,
    chosen: &Chosen,
    probe: &mut ProbeGuard<'_>,
    prompt: &Arc<Prompt>,
    feed: &ReplyFeed,
    recorder: &mut Recorder,
) -> Result<FinishReason, ModelError> {
    let started = Instant::now();
    let mut seq = 0_u32;
    let mut attempt = 0_u32;
    if let Some(degraded) = chosen.degraded {
        let notice = format!("{}\n\n", degraded.notice(prompt.language));
        recorder.text.push_str(&notice);
        feed.emit(ReplyEvent::Token { seq, text: notice }).await;
        seq += 1;
    }
    loop {
        let attempt_result =
            attempt_once(job, chosen.model.as_ref(), prompt, feed, recorder, &mut seq).await;
        job.metrics
            .model_request(chosen.model.name(), attempt_result.as_ref().map(|_| ()));
        job.models
            .settle(chosen, attempt_result.as_ref().map(|_| ()));
        if chosen.degraded.is_none() {
            probe.breaker = None;
        }
        let error = match attempt_result {
            Ok(finish) => return Ok(finish),
            Err(error) => error,
        };
        // Once a token has reached the shopper a retry would repeat or
        // contradict it: the failure ends the reply. A probe that failed
        // reopened the breaker: the provider is left alone.
        if seq > 0 || !error.is_retryable() || chosen.probe {
            return Err(error);
        }
        let delay = job.policy.delay(attempt, &error);
        if started.elapsed().saturating_add(delay) > job.policy.budget {
            return Err(error);
        }
        tracing::info!(%error, attempt, delay_ms = delay.as_millis() as u64, "retrying model");
        job.metrics.model_retries.inc();
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

async fn attempt_once(
    job: &ReplyJob,
    model: &dyn ChatModel,
    prompt: &Arc<Prompt>,
    feed: &ReplyFeed,
    recorder: &mut Recorder,
    seq: &mut u32,
) -> Result<FinishReason, ModelError> {
    let idle = job.policy.idle_timeout;
    let asked = Instant::now();
    let mut stream = tokio::time::timeout(idle, model.start(Arc::clone(prompt)))
        .await
        .map_err(|_| ModelError::Timeout)??;
    let mut finish = None;
    // A retry starts over: nothing of a failed attempt was shown.
    recorder.citations = Citations::new();
    loop {
        let next = tokio::time::timeout(idle, stream.next())
            .await
            .map_err(|_| ModelError::Timeout)?;
        match next {
            Some(Ok(ModelChunk::Text(text))) => {
                // References and the space before them never reach the
                // shopper; a chunk that was only that is not a token.
                let text = recorder.citations.push(text);
                if text.is_empty() {
                    continue;
                }
                if recorder.streamed == 0 {
                    job.metrics
                        .first_token(job.began.elapsed(), asked.elapsed());
                }
                recorder.text.push_str(&text);
                feed.emit(ReplyEvent::Token { seq: *seq, text }).await;
                job.metrics.tokens_streamed.inc();
                recorder.streamed += 1;
                *seq += 1;
            }
            Some(Ok(ModelChunk::Finished(reason))) => finish = Some(reason),
            // The last report counts: a provider may send running totals.
            Some(Ok(ModelChunk::Usage(usage))) => recorder.usage = Some(usage),
            Some(Ok(ModelChunk::Show(references))) => recorder.citations.show(&references),
            Some(Err(error)) => return Err(error),
            None => {
                let finish = finish.ok_or_else(|| {
                    ModelError::unavailable("the stream ended without a finish reason")
                })?;
                let mut rest = recorder.citations.finish();
                recorder.text.push_str(&rest);
                let cited = cited_places(prompt, &recorder.text, &recorder.citations);
                if let Some(correction) = claims::check(&recorder.text, &cited, prompt.language) {
                    for claim in &correction.claims {
                        let reason = ReasonLabel {
                            reason: claim.as_str(),
                        };
                        job.metrics.replies_corrected.get_or_create(&reason).inc();
                    }
                    recorder.text.push_str(&correction.text);
                    rest.push_str(&correction.text);
                }
                if let Some(line) = sources_line(
                    &prompt.passages,
                    recorder.citations.sources(),
                    prompt.language,
                ) {
                    recorder.text.push_str(&line);
                    rest.push_str(&line);
                }
                if !rest.is_empty() {
                    feed.emit(ReplyEvent::Token {
                        seq: *seq,
                        text: rest,
                    })
                    .await;
                    *seq += 1;
                }
                return Ok(finish);
            }
        }
    }
}

/// The products a reply cites, each with where it stood in the text; from
/// a model that cites nothing, the one product it names, if it names one.
fn cited_places(
    prompt: &Prompt,
    text: &str,
    citations: &Citations,
) -> Vec<(Arc<crate::catalog::Product>, usize)> {
    let cited: Vec<_> = citations
        .places()
        .iter()
        .filter_map(|(n, at)| {
            let product = prompt.products.get(n.checked_sub(1)?)?;
            Some((Arc::clone(product), *at))
        })
        .collect();
    if !cited.is_empty() || !citations.cited().is_empty() {
        return cited;
    }
    let cards = recommended_cards(prompt, text);
    let [card] = cards.as_slice() else {
        return Vec::new();
    };
    prompt
        .products
        .iter()
        .find(|p| p.id == card.id)
        .map(|p| vec![(Arc::clone(p), text.find(p.name.as_str()).unwrap_or(0))])
        .unwrap_or_default()
}

/// The cards of a finished reply, built from catalog records only: the
/// products it cited by reference, in the order it cited them (a reference
/// to a product not retrieved for the turn is no card); from a model that
/// cites nothing, the products it names (see [`recommended_cards`]).
pub fn reply_cards(prompt: &Prompt, reply: &str, cited: &[usize]) -> Vec<ProductCard> {
    if cited.is_empty() {
        return recommended_cards(prompt, reply);
    }
    let mut cards: Vec<ProductCard> = Vec::new();
    for product in cited
        .iter()
        .filter_map(|n| n.checked_sub(1).and_then(|i| prompt.products.get(i)))
    {
        if !cards.iter().any(|c| c.id == product.id) {
            cards.push(product.card());
        }
    }
    cards
}

/// Products named in a reply whose model does not cite: by exact name, in
/// the order the reply names them; failing that, by most of their name's
/// words (a paraphrase: "the navy Nordwind rain jacket"), the closest few.
pub fn recommended_cards(prompt: &Prompt, reply: &str) -> Vec<ProductCard> {
    let folded_reply = fold(reply);
    let mut found: Vec<(usize, ProductCard)> = prompt
        .products
        .iter()
        .filter_map(|p| {
            let name = fold(&p.name);
            folded_reply.find(&name).map(|at| (at, p.card()))
        })
        .collect();
    if found.is_empty() {
        return paraphrased(prompt, &folded_reply);
    }
    found.sort_by_key(|(at, _)| *at);
    found.into_iter().map(|(_, card)| card).collect()
}

/// Share of a product's name words a paraphrase must use.
const PARAPHRASE_COVERAGE: f32 = 0.75;
/// Most cards found by paraphrase.
const MAX_PARAPHRASED: usize = 3;

fn paraphrased(prompt: &Prompt, folded_reply: &str) -> Vec<ProductCard> {
    let singular = |w: &str| {
        w.strip_suffix('s')
            .filter(|s| s.len() >= 3)
            .unwrap_or(w)
            .to_owned()
    };
    let said: Vec<String> = tokens(folded_reply).map(singular).collect();
    let mut scored: Vec<(f32, usize, ProductCard)> = prompt
        .products
        .iter()
        .filter_map(|p| {
            let name = fold(&p.name);
            let words: Vec<String> = tokens(&name)
                .filter(|w| w.len() >= 3 && !is_stopword(w))
                .map(singular)
                .collect();
            if words.len() < 2 {
                return None;
            }
            let positions: Vec<usize> = words
                .iter()
                .filter_map(|w| said.iter().position(|s| s == w))
                .collect();
            let coverage = positions.len() as f32 / words.len() as f32;
            let first = positions.iter().min().copied()?;
            (coverage >= PARAPHRASE_COVERAGE).then(|| (coverage, first, p.card()))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let best = scored.first().map_or(0.0, |s| s.0);
    scored
        .into_iter()
        .filter(|s| s.0 >= best)
        .take(MAX_PARAPHRASED)
        .map(|(_, _, card)| card)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(seq: u32) -> ReplyEvent {
        ReplyEvent::Token {
            seq,
            text: format!("t{seq} "),
        }
    }

    fn finished() -> ReplyEvent {
        ReplyEvent::Finished {
            cards: Vec::new(),
            finish: FinishReason::Stop,
        }
    }

    #[actix_rt::test]
    async fn a_follower_catches_up_from_its_seq_and_the_old_one_hears_nothing_more() {
        let (feed, mut first) = ReplyFeed::new(
            MessageId::new(),
            MessageId::new(),
            CancellationToken::new(),
            CancellationToken::new(),
        );
        for seq in 0..5 {
            feed.emit(token(seq)).await;
        }
        let (catchup, mut second) = feed.follow(3);
        assert_eq!(catchup.shown, "t0 t1 t2 ");
        assert_eq!(catchup.events, vec![token(3), token(4)]);
        feed.emit(token(5)).await;
        feed.emit(finished()).await;
        for seq in 0..5 {
            assert_eq!(first.recv().await, Some(token(seq)));
        }
        assert!(first.try_recv().is_err(), "the first follower was let go");
        assert_eq!(second.recv().await, Some(token(5)));
        assert_eq!(second.recv().await, Some(finished()));

        // After the end, a follower gets everything from its seq and the end.
        let (late, _) = feed.follow(5);
        assert_eq!(late.events, vec![token(5), finished()]);
        let (beyond, _) = feed.follow(99);
        assert_eq!(beyond.shown, "t0 t1 t2 t3 t4 t5 ");
        assert_eq!(beyond.events, vec![finished()]);
    }

    #[actix_rt::test]
    async fn joining_while_tokens_flow_loses_and_repeats_nothing() {
        const TOKENS: u32 = 2000;
        for round in 0..20_u32 {
            // The first follower has gone, as a dropped socket's session has.
            let (feed, _) = ReplyFeed::new(
                MessageId::new(),
                MessageId::new(),
                CancellationToken::new(),
                CancellationToken::new(),
            );
            let producer = Arc::clone(&feed);
            let writer = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("a runtime");
                runtime.block_on(async {
                    for seq in 0..TOKENS {
                        producer.emit(token(seq)).await;
                    }
                    producer.emit(finished()).await;
                });
            });
            // Join at a different point of the stream each round.
            while feed.state().ends.len() < (round as usize) * 90 {
                std::thread::yield_now();
            }
            let (catchup, mut rx) = feed.follow(0);
            assert!(catchup.shown.is_empty());
            let mut seen: Vec<u32> = Vec::new();
            let mut ended = false;
            let mut events: std::collections::VecDeque<ReplyEvent> = catchup.events.into();
            while !ended {
                let event = match events.pop_front() {
                    Some(event) => event,
                    None => match rx.recv().await {
                        Some(event) => event,
                        None => break,
                    },
                };
                match event {
                    ReplyEvent::Token { seq, .. } => seen.push(seq),
                    _ => ended = true,
                }
            }
            writer.join().expect("the writer finished");
            assert!(ended, "round {round}: the end arrived");
            assert_eq!(seen, (0..TOKENS).collect::<Vec<_>>(), "round {round}");
        }
    }
}
