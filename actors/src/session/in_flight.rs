//! A reply in flight: its task is started and published as the
//! conversation's reply, its events are relayed to the socket (held back
//! while a shopper message is still being flushed), and its end joins the
//! conversation's history and starts a waiting turn. A session that
//! resumes a conversation follows its reply from the client's last token:
//! the missed tokens folded into one frame, then the rest as they come.

use std::sync::Arc;

use actix::{AsyncContext, Context};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::WidgetSession;
use crate::desk::ReplyStarted;
use crate::events::{ErrorCode, ErrorEvent, ServerEvent};
use crate::ids::MessageId;
use crate::live::{LiveSessions, Registration};
use crate::model::ModelError;
use crate::reply::{self, ReplyEvent, ReplyFeed, ReplyJob};

/// A reply started while its message was still being flushed: its events
/// wait here until the message's ack is out.
pub(super) struct HeldReply {
    reply_id: MessageId,
    events: mpsc::Receiver<ReplyEvent>,
    feed: Arc<ReplyFeed>,
    /// Ends the reply unrecorded, should its message not be stored.
    withdraw: CancellationToken,
}

impl HeldReply {
    /// The held reply's message could not be stored: the reply stops,
    /// records nothing and is no longer the conversation's reply in flight.
    pub(super) fn withdraw(self, live: &LiveSessions, registration: Option<&Registration>) {
        self.withdraw.cancel();
        if let Some(registration) = registration {
            live.withdraw(registration, &self.feed);
        }
    }
}

impl WidgetSession {
    /// Starts the reply's task and shows its events, or holds them while a
    /// shopper message is being flushed.
    pub(super) fn launch(&mut self, job: ReplyJob, answers: MessageId, ctx: &mut Context<Self>) {
        let reply_id = job.reply_id;
        let withdraw = job.withdrawn.clone();
        let (feed, events) =
            ReplyFeed::new(reply_id, answers, withdraw.clone(), job.taken_over.clone());
        let published = self
            .registration
            .as_ref()
            .is_some_and(|registration| self.deps.live.publish(registration, &feed));
        if !published {
            // Another connection took the conversation over; it answers.
            if let Some(conversation) = self.conversation() {
                conversation.let_go_of_reply();
            }
            return;
        }
        let conversation = job.conversation;
        reply::spawn(job, Arc::clone(&feed), &self.deps.tasks);
        self.deps.desk.addr.do_send(ReplyStarted {
            conversation,
            feed: Arc::clone(&feed),
        });
        let flushing = self.conversation().is_some_and(|c| c.flushing());
        if flushing {
            self.held = Some(HeldReply {
                reply_id,
                events,
                feed,
                withdraw,
            });
        } else {
            self.listen(reply_id, events, ctx);
        }
    }

    /// Shows a reply held back while its message was being flushed, once
    /// no flush is pending.
    pub(super) fn release_held_reply(&mut self, ctx: &mut Context<Self>) {
        let flushing = self.conversation().is_some_and(|c| c.flushing());
        if !flushing && let Some(held) = self.held.take() {
            self.listen(held.reply_id, held.events, ctx);
        }
    }

    /// Follows a running reply from token `from`: what the client missed
    /// first (its tokens folded into one frame, however many there were),
    /// then the rest as it comes.
    pub(super) fn follow(&mut self, feed: &Arc<ReplyFeed>, from: u32, ctx: &mut Context<Self>) {
        let reply_id = feed.reply_id();
        let (catchup, events) = feed.follow(from);
        if let Some(conversation) = self.conversation() {
            conversation.follow_reply(reply_id, feed.answers(), catchup.shown);
        }
        // The feed gives the missed tokens in order, then the reply's end
        // if it has ended.
        let (mut missed, mut last_seq, mut ends) = (String::new(), None, Vec::new());
        for event in catchup.events {
            match event {
                ReplyEvent::Token { seq, text } => {
                    missed.push_str(&text);
                    last_seq = Some(seq);
                }
                end => ends.push(end),
            }
        }
        if let Some(seq) = last_seq {
            self.show_token(reply_id, seq, missed, ctx);
        }
        for end in ends {
            self.on_reply_event(reply_id, end, ctx);
        }
        self.listen(reply_id, events, ctx);
    }

    fn listen(
        &mut self,
        reply_id: MessageId,
        events: mpsc::Receiver<ReplyEvent>,
        ctx: &mut Context<Self>,
    ) {
        let events = futures_util::stream::unfold(events, |mut rx| async move {
            rx.recv().await.map(|event| (event, rx))
        })
        .map(move |event| (reply_id, event));
        ctx.add_stream(events);
    }

    /// Sends a token frame of the reply this session shows, keeping its
    /// text for the conversation's history.
    fn show_token(&mut self, reply_id: MessageId, seq: u32, text: String, ctx: &mut Context<Self>) {
        if let Some(conversation) = self.conversation() {
            conversation.reply_text(reply_id, &text);
        }
        let token = ServerEvent::Token {
            reply_id,
            seq,
            text,
        };
        self.send(ctx, token);
    }

    pub(super) fn on_reply_event(
        &mut self,
        reply_id: MessageId,
        event: ReplyEvent,
        ctx: &mut Context<Self>,
    ) {
        let shown = self
            .conversation()
            .and_then(|c| c.showing())
            .is_some_and(|showing| showing == reply_id);
        if !shown {
            // A reply this session no longer follows.
            return;
        }
        match event {
            ReplyEvent::Token { seq, text } => self.show_token(reply_id, seq, text, ctx),
            ReplyEvent::Finished { cards, finish } => {
                if !cards.is_empty() {
                    self.send(ctx, ServerEvent::Products { reply_id, cards });
                }
                self.end_reply(reply_id, false, ServerEvent::Done { reply_id, finish }, ctx);
            }
            ReplyEvent::Failed {
                error,
                after_tokens,
            } => {
                let (code, message) = if after_tokens {
                    (
                        ErrorCode::ModelFailed,
                        "the reply was interrupted; what arrived is kept",
                    )
                } else {
                    (
                        ErrorCode::ModelUnavailable,
                        "the assistant is unavailable right now; try again shortly",
                    )
                };
                let retry_after = match error {
                    ModelError::RateLimited { retry_after } => retry_after,
                    _ => None,
                };
                let event = ErrorEvent {
                    retry_after,
                    reply_id: Some(reply_id),
                    ..ErrorEvent::new(code, message)
                };
                self.end_reply(reply_id, true, ServerEvent::Error(event), ctx);
            }
        }
    }

    /// Sends the reply's last frame, keeps its text as history and starts
    /// the next reply if a message came in meanwhile.
    fn end_reply(
        &mut self,
        reply_id: MessageId,
        failed: bool,
        last: ServerEvent,
        ctx: &mut Context<Self>,
    ) {
        let history_tokens = self.deps.settings.history_tokens;
        let (next, forgotten) = self.conversation().map_or((false, 0), |c| {
            let next = c.end_reply(reply_id, failed);
            (next, c.trim(history_tokens))
        });
        self.deps.metrics.history_trimmed.inc_by(forgotten as u64);
        self.send(ctx, last);
        if next {
            self.start_reply(ctx);
        }
    }
}
