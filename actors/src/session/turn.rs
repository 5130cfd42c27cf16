//! A turn: a shopper message is checked, joins the conversation and is made
//! durable (away from this thread) while its reply already starts; the ack,
//! and every frame of that reply, wait until it is on disk. A message whose
//! flush fails is refused and leaves the conversation by its id; its reply
//! is never shown. A retry answers the last message again after a failed
//! reply. One reply runs at a time: a message during a reply is answered
//! when it ends.

use std::sync::Arc;
use std::time::Instant;

use actix::{ActorFutureExt, AsyncContext, Context, WrapFuture};
use tokio_util::sync::CancellationToken;

use super::state::{NoRetry, NoTurn};
use super::{MAX_CLIENT_ID_BYTES, Phase, WidgetSession};
use crate::desk::{ShopperSaid, asks_for_human};
use crate::events::{ErrorCode, ErrorEvent, ServerEvent};
use crate::ids::MessageId;
use crate::language::detect;
use crate::log::{LogError, StoredMessage, now_ms};

/// When a shopper whose message met a busy storage may send it again.
const STORAGE_BUSY_RETRY: std::time::Duration = std::time::Duration::from_secs(1);
use crate::prompt::Role;
use crate::reply::ReplyJob;

impl WidgetSession {
    pub(super) fn on_message(&mut self, client_id: String, text: String, ctx: &mut Context<Self>) {
        let settings = Arc::clone(&self.deps.settings);
        let Some(conversation) = self.conversation() else {
            self.hello_required(ctx);
            return;
        };
        if client_id.is_empty() || client_id.len() > MAX_CLIENT_ID_BYTES {
            let error = ErrorEvent::new(
                ErrorCode::InvalidFrame,
                format!("client_id must be 1 to {MAX_CLIENT_ID_BYTES} bytes"),
            );
            self.protocol_error(ctx, error);
            return;
        }
        // A resend of a message still being flushed gets the ack that is
        // on its way; a resend of an acknowledged one is acknowledged again.
        // Neither is stored twice.
        if conversation.is_flushing(&client_id) {
            return;
        }
        if let Some(message_id) = conversation.acknowledged(&client_id) {
            let ack = ServerEvent::Ack {
                client_id,
                message_id,
            };
            self.send(ctx, ack);
            return;
        }
        let text = text.trim();
        let refusal = if text.is_empty() {
            Some(ErrorEvent::new(
                ErrorCode::MessageEmpty,
                "the message is empty",
            ))
        } else if text.chars().count() > settings.max_message_chars {
            Some(ErrorEvent::new(
                ErrorCode::MessageTooLong,
                format!(
                    "a message is at most {} characters",
                    settings.max_message_chars
                ),
            ))
        } else {
            self.take_turn().err()
        };
        // A new conversation is one more record on disk: counted per client.
        let opening = self.conversation().is_some_and(|c| !c.opened);
        let refusal = refusal.or_else(|| {
            let client = self.connection.limit_key.filter(|_| opening)?;
            let spent = self.deps.rates.new_conversation(client).err()?;
            Some(ErrorEvent {
                retry_after: Some(spent.retry_after),
                ..ErrorEvent::new(
                    ErrorCode::TooManyConversations,
                    format!(
                        "at most {} new conversations an hour from one address; try again later",
                        spent.limit
                    ),
                )
            })
        });
        if let Some(mut error) = refusal {
            error.client_id = Some(client_id);
            self.error(ctx, error);
            return;
        }
        let Phase::Ready(conversation) = &mut self.phase else {
            return;
        };
        conversation.meta.language = detect(text, conversation.meta.language);
        let message = StoredMessage {
            author: None,
            id: MessageId::new(),
            conversation: conversation.meta.conversation,
            role: Role::Shopper,
            text: text.to_owned(),
            at_ms: now_ms(),
            client_id: Some(client_id.clone()),
            reply: None,
        };
        if !conversation.opened {
            if let Err(error) = self.deps.log.open_conversation(&conversation.meta) {
                tracing::error!(%error, "conversation not stored");
                let mut error = ErrorEvent::new(
                    ErrorCode::StorageFailed,
                    "the message could not be stored; send it again",
                );
                error.client_id = Some(client_id);
                self.error(ctx, error);
                return;
            }
            conversation.opened = true;
        }
        // The message joins the conversation now, so that its reply starts
        // (retrieval, the model's request) while it is written and flushed;
        // the ack, and every frame of that reply, wait until it is on disk.
        conversation.add_shopper_message(client_id, &message);
        let forgotten = conversation.trim(settings.history_tokens);
        self.deps.metrics.history_trimmed.inc_by(forgotten as u64);
        let stored = self.deps.log.append_durable(&self.deps.store, &message);
        let arrived = Instant::now();
        if asks_for_human(text) {
            self.request_human(message.conversation);
        }
        ctx.spawn(stored.into_actor(self).map(move |flushed, act, ctx| {
            let _span = act.span.clone().entered();
            act.message_stored(message, arrived, flushed, ctx);
        }));
        self.start_reply(ctx);
    }

    /// The flush of shopper message `id` ended: it is acknowledged, or
    /// refused and taken back.
    fn message_stored(
        &mut self,
        message: StoredMessage,
        arrived: Instant,
        flushed: Result<(), LogError>,
        ctx: &mut Context<Self>,
    ) {
        let id = message.id;
        let Some(conversation) = self.conversation() else {
            return;
        };
        match flushed {
            Ok(()) => {
                if let Some(client_id) = conversation.message_flushed(id) {
                    self.deps.desk.addr.do_send(ShopperSaid { message });
                    let metrics = &self.deps.metrics;
                    metrics.messages_acknowledged.inc();
                    metrics
                        .message_to_ack
                        .observe(arrived.elapsed().as_secs_f64());
                    let ack = ServerEvent::Ack {
                        client_id,
                        message_id: id,
                    };
                    self.send(ctx, ack);
                }
            }
            Err(error) => {
                tracing::error!(%error, "shopper message not stored");
                let client_id = conversation.unflushed_client_id(id).map(str::to_owned);
                let lost = conversation.message_lost(id);
                if lost.withdraw
                    && let Some(held) = self.held.take()
                {
                    tracing::warn!("reply to an unstored message withdrawn");
                    held.withdraw(&self.deps.live, self.registration.as_ref());
                }
                let mut error = match error {
                    LogError::Busy => ErrorEvent {
                        retry_after: Some(STORAGE_BUSY_RETRY),
                        ..ErrorEvent::new(
                            ErrorCode::StorageBusy,
                            "the node is busy and did not store the message; send it again shortly",
                        )
                    },
                    _ => ErrorEvent::new(
                        ErrorCode::StorageFailed,
                        "the message could not be stored; send it again",
                    ),
                };
                error.client_id = client_id;
                self.error(ctx, error);
                if lost.answer_now {
                    self.start_reply(ctx);
                }
            }
        }
        self.release_held_reply(ctx);
    }

    /// Answers the shopper's last message again after a failed reply.
    pub(super) fn on_retry(&mut self, ctx: &mut Context<Self>) {
        let Some(conversation) = self.conversation() else {
            self.hello_required(ctx);
            return;
        };
        let refusal = match conversation.retry() {
            Ok(()) => self.take_turn().err(),
            Err(NoRetry::Busy) => Some(ErrorEvent::new(
                ErrorCode::NothingToRetry,
                "a reply is on its way",
            )),
            Err(NoRetry::NotFailed) => Some(ErrorEvent::new(
                ErrorCode::NothingToRetry,
                "the last reply did not fail",
            )),
        };
        match refusal {
            Some(error) => self.error(ctx, error),
            None => self.start_reply(ctx),
        }
    }

    /// Starts a reply to the shopper's newest message, or notes that one is
    /// due once the running reply ends.
    pub(super) fn start_reply(&mut self, ctx: &mut Context<Self>) {
        let settings = Arc::clone(&self.deps.settings);
        let Phase::Ready(conversation) = &mut self.phase else {
            return;
        };
        // A person from the store holds the conversation: they answer.
        if self
            .deps
            .desk
            .holder(&conversation.meta.conversation)
            .is_some()
        {
            return;
        }
        let plan = match conversation.begin_reply() {
            Ok(plan) => plan,
            Err(NoTurn::Busy | NoTurn::NothingToAnswer) => return,
        };
        let job = ReplyJob {
            models: Arc::clone(&self.deps.models),
            log: Arc::clone(&self.deps.log),
            catalog: self.deps.catalog.clone(),
            store: self.deps.store.clone(),
            conversation: conversation.meta.conversation,
            reply_id: plan.reply_id,
            language: conversation.meta.language,
            message: plan.message,
            earlier: plan.earlier,
            history_tokens: settings.history_tokens,
            retrieval_limit: settings.retrieval_limit,
            query_rewrite: settings.query_rewrite,
            policy: settings.retry.clone(),
            metrics: Arc::clone(&self.deps.metrics),
            began: Instant::now(),
            span: self.span.clone(),
            withdrawn: CancellationToken::new(),
            taken_over: CancellationToken::new(),
        };
        self.launch(job, plan.answers, ctx);
    }
}
