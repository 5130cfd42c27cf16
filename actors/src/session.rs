//! `WidgetSession`: one actor per shopper socket. The HTTP edge starts it
//! with the socket's decoded inbound events as a stream and the socket's
//! [`Outbox`] for outbound events. It greets, persists each shopper message durably
//! before acknowledging it, starts one reply at a time and relays the
//! reply's events. It ends on close, transport error, hello or heartbeat
//! timeout, repeated misuse, a reader too slow for its frames, or shutdown;
//! its [`Registration`] deregisters it in every case.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Context, Handler, StreamHandler,
    WrapFuture,
};
use futures_util::StreamExt;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::mpsc;

use crate::catalog::StoreProfile;
use crate::events::{
    ClientEvent, ErrorCode, ErrorEvent, Hello, HistoryEntry, PROTOCOL_VERSION, ServerEvent,
};
use crate::ids::{ConversationId, MessageId, SessionId, StoreId};
use crate::language::{Language, detect};
use crate::live::{LiveSessions, Registration, Replaced, Shutdown};
use crate::log::{ClientClass, ConversationLog, ConversationMeta, StoredMessage, now_ms};
use crate::model::{ChatModel, ModelError};
use crate::outbox::{Outbox, OutboxError};
use crate::prompt::{Prompt, Role, Turn, bounded_history};
use crate::reply::{self, ReplyEvent, ReplyFeed, ReplyJob, RetryPolicy};
use crate::store::{FindProducts, Found, GetProfile, StoreCatalog};

/// Longest client message id accepted.
pub const MAX_CLIENT_ID_BYTES: usize = 64;
/// Client message ids remembered for idempotent resends.
const REMEMBERED_CLIENT_IDS: usize = 64;

/// Limits and timings for widget sessions, from configuration.
#[derive(Clone, Debug)]
pub struct SessionSettings {
    pub heartbeat_interval: Duration,
    pub client_timeout: Duration,
    pub hello_timeout: Duration,
    pub max_message_chars: usize,
    pub messages_per_minute: NonZeroU32,
    /// Token budget for history in the prompt.
    pub history_tokens: usize,
    /// Messages loaded when a session resumes.
    pub history_messages: usize,
    /// Products retrieved per turn.
    pub retrieval_limit: usize,
    /// Frames that could not be understood before the session is closed.
    pub max_protocol_errors: u32,
    pub retry: RetryPolicy,
}

/// What every session of a store shares.
#[derive(Clone)]
pub struct SessionDeps {
    pub store: StoreId,
    pub catalog: Addr<StoreCatalog>,
    pub log: Arc<dyn ConversationLog>,
    pub model: Arc<dyn ChatModel>,
    pub live: LiveSessions,
    pub settings: Arc<SessionSettings>,
}

/// Facts about the shopper's connection, already anonymised.
#[derive(Clone, Debug, Default)]
pub struct Connection {
    pub ip: Option<String>,
    pub client: ClientClass,
    /// The page's origin, from the socket request's Origin header.
    pub origin: Option<String>,
    /// The Host the request reached the node with.
    pub host: Option<String>,
}

/// One shopper's live chat over one socket.
pub struct WidgetSession {
    deps: SessionDeps,
    connection: Connection,
    out: Box<dyn Outbox>,
    phase: Phase,
    last_seen: Instant,
    protocol_errors: u32,
    limiter: DefaultDirectRateLimiter,
    registration: Option<Registration>,
    reply: Option<ActiveReply>,
    /// A shopper message arrived while a reply was running.
    turn_waiting: bool,
    /// Client ids of shopper messages stored but not yet flushed (not yet
    /// acknowledged).
    unflushed: Vec<String>,
    held: Option<HeldReply>,
    closing: bool,
}

enum Phase {
    AwaitingHello,
    /// The hello is being answered; frames wait for it.
    Greeting,
    Ready(Box<Chat>),
}

struct Chat {
    meta: ConversationMeta,
    /// Whether the conversation record exists in storage yet.
    opened: bool,
    history: Vec<Turn>,
    acked: VecDeque<(String, MessageId)>,
    /// The shopper's newest message.
    last_shopper: Option<MessageId>,
    /// The last reply failed; the shopper may ask for it again.
    failed: bool,
}

struct ActiveReply {
    id: MessageId,
    text: String,
}

/// A reply started while its message was still being flushed: its events
/// wait here until the message's ack is out.
struct HeldReply {
    reply_id: MessageId,
    answers: MessageId,
    events: mpsc::Receiver<ReplyEvent>,
}

impl WidgetSession {
    pub fn new(deps: SessionDeps, connection: Connection, out: Box<dyn Outbox>) -> Self {
        let limiter = RateLimiter::direct(Quota::per_minute(deps.settings.messages_per_minute));
        Self {
            deps,
            connection,
            out,
            phase: Phase::AwaitingHello,
            last_seen: Instant::now(),
            protocol_errors: 0,
            limiter,
            registration: None,
            reply: None,
            turn_waiting: false,
            unflushed: Vec::new(),
            held: None,
            closing: false,
        }
    }

    fn send(&mut self, ctx: &mut Context<Self>, event: ServerEvent) {
        if self.closing {
            return;
        }
        match self.out.push(event) {
            Ok(()) => {}
            Err(OutboxError::Full) => {
                // The shopper's client reads slower than we write; holding
                // frames without bound is not an option, and a reply in
                // progress is recorded by its own task.
                tracing::warn!(store = %self.deps.store, "closing session: outgoing buffer full");
                self.closing = true;
                ctx.stop();
            }
            Err(OutboxError::Closed) => {
                self.closing = true;
                ctx.stop();
            }
        }
    }

    fn error(&mut self, ctx: &mut Context<Self>, error: ErrorEvent) {
        self.send(ctx, ServerEvent::Error(error));
    }

    /// Tells the client why, closes the socket and stops.
    fn close(&mut self, ctx: &mut Context<Self>, code: ErrorCode, message: &str) {
        self.error(ctx, ErrorEvent::new(code, message));
        self.send(
            ctx,
            ServerEvent::Close {
                code: code.closing(),
                reason: code.as_str(),
            },
        );
        self.closing = true;
        ctx.stop();
    }

    fn on_hello(&mut self, hello: Hello, ctx: &mut Context<Self>) {
        if !matches!(self.phase, Phase::AwaitingHello) {
            self.protocol_error(
                ctx,
                ErrorEvent::new(ErrorCode::DuplicateHello, "hello was already received"),
            );
            return;
        }
        if hello.version != PROTOCOL_VERSION {
            let message = format!(
                "protocol version {} is not supported; this node speaks {PROTOCOL_VERSION}",
                hello.version
            );
            self.close(ctx, ErrorCode::UnsupportedVersion, &message);
            return;
        }
        self.phase = Phase::Greeting;
        // Frames after the hello wait until it is answered.
        ctx.wait(self.deps.catalog.send(GetProfile).into_actor(self).map(
            move |profile, act, ctx| match profile {
                Ok(profile) => act.greet(hello, &profile, ctx),
                Err(_) => act.close(
                    ctx,
                    ErrorCode::UnknownStore,
                    "the store is no longer served",
                ),
            },
        ));
    }

    fn greet(&mut self, hello: Hello, profile: &StoreProfile, ctx: &mut Context<Self>) {
        let (origin, host) = (&self.connection.origin, &self.connection.host);
        if !profile.allows_origin(origin.as_deref(), host.as_deref()) {
            tracing::info!(store = %self.deps.store, origin = ?origin, "origin refused");
            self.close(
                ctx,
                ErrorCode::OriginNotAllowed,
                "this site may not open the store's assistant",
            );
            return;
        }
        let store_language = profile.default_language;
        let browser_language = hello.language.as_deref().and_then(Language::from_tag);
        let resumed = hello
            .session_id
            .as_deref()
            .and_then(SessionId::parse)
            .map(|id| self.deps.log.find_session(&self.deps.store, id))
            .transpose();
        let resumed = match resumed {
            Ok(found) => found.flatten(),
            Err(error) => {
                tracing::error!(%error, "session lookup failed");
                self.error(
                    ctx,
                    ErrorEvent::new(
                        ErrorCode::StorageFailed,
                        "the earlier conversation could not be loaded; starting a new one",
                    ),
                );
                None
            }
        };
        let (chat, history, unanswered) = match resumed {
            Some(meta) => self.resume(meta, ctx),
            None => {
                let meta = ConversationMeta {
                    store: self.deps.store.clone(),
                    conversation: ConversationId::new(),
                    session: SessionId::new(),
                    started_at_ms: now_ms(),
                    language: browser_language.unwrap_or(store_language),
                    page_url: hello.page_url,
                    referrer: hello.referrer,
                    client: self.connection.client.clone(),
                    ip: self.connection.ip.clone(),
                };
                let chat = Chat {
                    meta,
                    opened: false,
                    history: Vec::new(),
                    acked: VecDeque::new(),
                    last_shopper: None,
                    failed: false,
                };
                (chat, Vec::new(), false)
            }
        };
        // The conversation is this connection's now; a reply still running
        // for it (the socket dropped, or the shopper changed pages) is
        // followed from where the client's copy stops. A reply already in
        // the history is complete there.
        let live = self.deps.live.clone();
        let me = ctx.address().recipient();
        let pending = self
            .registration
            .as_mut()
            .and_then(|registration| live.attach(registration, chat.meta.session, me))
            .filter(|feed| !history.iter().any(|h| h.message_id == feed.reply_id()));
        let ready = ServerEvent::Ready {
            session_id: chat.meta.session,
            conversation_id: chat.meta.conversation,
            resumed: chat.opened,
            language: chat.meta.language,
            history,
            pending_reply: pending.as_ref().map(|feed| feed.reply_id()),
        };
        tracing::info!(
            store = %self.deps.store,
            conversation = %chat.meta.conversation,
            resumed = chat.opened,
            "session ready"
        );
        let last_shopper = chat.last_shopper;
        self.phase = Phase::Ready(Box::new(chat));
        self.send(ctx, ready);
        if let Some(feed) = pending {
            let from = match hello.resume {
                Some(resume) if resume.reply_id == feed.reply_id().to_string() => {
                    resume.last_seq.map_or(0, |seq| seq.saturating_add(1))
                }
                _ => 0,
            };
            self.follow(&feed, from, ctx);
            // The reply answers an earlier message: the newest is due next.
            self.turn_waiting = Some(feed.answers()) != last_shopper;
        } else if unanswered {
            // Acknowledged, but its reply never started (the socket or the
            // node went away first).
            self.start_reply(ctx);
        }
    }

    /// Follows a running reply from token `from`: what the client missed
    /// first (its tokens folded into one frame, however many there were),
    /// then the rest as it comes.
    fn follow(&mut self, feed: &ReplyFeed, from: u32, ctx: &mut Context<Self>) {
        let reply_id = feed.reply_id();
        let (catchup, events) = feed.follow(from);
        self.reply = Some(ActiveReply {
            id: reply_id,
            text: catchup.shown,
        });
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
            let token = ServerEvent::Token {
                reply_id,
                seq,
                text: missed,
            };
            self.show_token(token, ctx);
        }
        for end in ends {
            self.on_reply_event(reply_id, end, ctx);
        }
        self.listen(reply_id, events, ctx);
    }

    /// Sends a token frame of the reply this session shows, keeping its
    /// text for the conversation's history.
    fn show_token(&mut self, token: ServerEvent, ctx: &mut Context<Self>) {
        if let (Some(reply), ServerEvent::Token { text, .. }) = (&mut self.reply, &token) {
            reply.text.push_str(text);
        }
        self.send(ctx, token);
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

    fn resume(
        &mut self,
        meta: ConversationMeta,
        ctx: &mut Context<Self>,
    ) -> (Chat, Vec<HistoryEntry>, bool) {
        let limit = self.deps.settings.history_messages;
        let stored = match self
            .deps
            .log
            .history(&self.deps.store, meta.conversation, limit)
        {
            Ok(stored) => stored,
            Err(error) => {
                tracing::error!(%error, "history load failed");
                self.error(
                    ctx,
                    ErrorEvent::new(ErrorCode::StorageFailed, "the history could not be loaded"),
                );
                Vec::new()
            }
        };
        let mut acked = VecDeque::new();
        let last_shopper = stored
            .iter()
            .rev()
            .find(|m| m.role == Role::Shopper)
            .map(|m| m.id);
        let unanswered = stored.last().is_some_and(|m| m.role == Role::Shopper);
        let failed = stored
            .last()
            .and_then(|m| m.reply.as_ref())
            .is_some_and(|r| r.incomplete);
        let mut history = Vec::with_capacity(stored.len());
        let mut entries = Vec::with_capacity(stored.len());
        for message in stored {
            if let Some(client_id) = &message.client_id {
                acked.push_back((client_id.clone(), message.id));
            }
            history.push(Turn {
                role: message.role,
                text: message.text.clone(),
            });
            let (incomplete, cards) = message
                .reply
                .map_or((false, Vec::new()), |r| (r.incomplete, r.cards));
            entries.push(HistoryEntry {
                message_id: message.id,
                role: message.role,
                text: message.text,
                incomplete,
                cards,
            });
        }
        while acked.len() > REMEMBERED_CLIENT_IDS {
            acked.pop_front();
        }
        let chat = Chat {
            meta,
            opened: true,
            history,
            acked,
            last_shopper,
            failed,
        };
        (chat, entries, unanswered)
    }

    fn on_message(&mut self, client_id: String, text: String, ctx: &mut Context<Self>) {
        let settings = Arc::clone(&self.deps.settings);
        let Phase::Ready(chat) = &mut self.phase else {
            let error = ErrorEvent::new(ErrorCode::HelloRequired, "send hello first");
            self.protocol_error(ctx, error);
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
        if self.unflushed.contains(&client_id) {
            return;
        }
        if let Some((_, message_id)) = chat.acked.iter().find(|(id, _)| *id == client_id) {
            let ack = ServerEvent::Ack {
                client_id,
                message_id: *message_id,
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
            take_turn(&self.limiter, settings.messages_per_minute).err()
        };
        if let Some(mut error) = refusal {
            error.client_id = Some(client_id);
            self.error(ctx, error);
            return;
        }
        chat.meta.language = detect(text, chat.meta.language);
        let message = StoredMessage {
            id: MessageId::new(),
            conversation: chat.meta.conversation,
            role: Role::Shopper,
            text: text.to_owned(),
            at_ms: now_ms(),
            client_id: Some(client_id.clone()),
            reply: None,
        };
        if !chat.opened
            && let Err(error) = self.deps.log.open_conversation(&chat.meta)
        {
            tracing::error!(%error, "conversation not stored");
            let mut error = ErrorEvent::new(
                ErrorCode::StorageFailed,
                "the message could not be stored; send it again",
            );
            error.client_id = Some(client_id);
            self.error(ctx, error);
            return;
        }
        chat.opened = true;
        // The message joins the conversation now, so that its reply starts
        // (retrieval, the model's request) while it is written and flushed
        // (away from this thread); the ack, and every frame of that reply,
        // wait until it is on disk.
        chat.history.push(Turn {
            role: Role::Shopper,
            text: message.text.clone(),
        });
        let answered_before = chat.last_shopper.replace(message.id);
        self.unflushed.push(client_id.clone());
        let stored = self.deps.log.append_durable(&self.deps.store, &message);
        ctx.spawn(stored.into_actor(self).map(move |flushed, act, ctx| {
            act.unflushed.retain(|id| *id != client_id);
            match flushed {
                Ok(()) => {
                    if let Phase::Ready(chat) = &mut act.phase {
                        chat.acked.push_back((client_id.clone(), message.id));
                        if chat.acked.len() > REMEMBERED_CLIENT_IDS {
                            chat.acked.pop_front();
                        }
                    }
                    act.send(
                        ctx,
                        ServerEvent::Ack {
                            client_id,
                            message_id: message.id,
                        },
                    );
                }
                Err(error) => {
                    tracing::error!(%error, "shopper message not stored");
                    act.forget_message(&message, answered_before);
                    let mut error = ErrorEvent::new(
                        ErrorCode::StorageFailed,
                        "the message could not be stored; send it again",
                    );
                    error.client_id = Some(client_id);
                    act.error(ctx, error);
                }
            }
            act.release_held_reply(ctx);
        }));
        self.start_reply(ctx);
    }

    /// Takes back a message whose flush failed: it was never acknowledged,
    /// and a reply started for it is not shown.
    fn forget_message(&mut self, message: &StoredMessage, answered_before: Option<MessageId>) {
        if let Phase::Ready(chat) = &mut self.phase {
            if let Some(at) = chat
                .history
                .iter()
                .rposition(|t| t.role == Role::Shopper && t.text == message.text)
            {
                chat.history.remove(at);
            }
            if chat.last_shopper == Some(message.id) {
                chat.last_shopper = answered_before;
            }
        }
        if let Some(held) = self.held.take_if(|held| held.answers == message.id) {
            tracing::warn!(reply = %held.reply_id, "reply to an unstored message not shown");
            self.reply = None;
            self.turn_waiting = false;
        }
    }

    /// Shows a reply held back while its message was being flushed, once
    /// no flush is pending.
    fn release_held_reply(&mut self, ctx: &mut Context<Self>) {
        if self.unflushed.is_empty()
            && let Some(held) = self.held.take()
        {
            self.listen(held.reply_id, held.events, ctx);
        }
    }

    /// Starts a reply to the shopper's newest message, or notes that one is
    /// due once the running reply ends.
    fn start_reply(&mut self, ctx: &mut Context<Self>) {
        if self.reply.is_some() {
            self.turn_waiting = true;
            return;
        }
        let Phase::Ready(chat) = &mut self.phase else {
            return;
        };
        chat.failed = false;
        let Some(query) = chat
            .history
            .iter()
            .rev()
            .find(|t| t.role == Role::Shopper)
            .map(|t| t.text.clone())
        else {
            return;
        };
        let reply_id = MessageId::new();
        self.reply = Some(ActiveReply {
            id: reply_id,
            text: String::new(),
        });
        let find = FindProducts {
            query,
            language: chat.meta.language,
            limit: self.deps.settings.retrieval_limit,
        };
        ctx.spawn(
            self.deps
                .catalog
                .send(find)
                .into_actor(self)
                .map(move |found, act, ctx| match found {
                    Ok(found) => act.launch_reply(reply_id, found, ctx),
                    Err(_) => act.end_reply(
                        ctx,
                        ServerEvent::Error(ErrorEvent {
                            reply_id: Some(reply_id),
                            ..ErrorEvent::new(
                                ErrorCode::ModelUnavailable,
                                "the store's catalog is not available",
                            )
                        }),
                    ),
                }),
        );
    }

    fn launch_reply(&mut self, reply_id: MessageId, found: Found, ctx: &mut Context<Self>) {
        let Phase::Ready(chat) = &self.phase else {
            return;
        };
        let settings = &self.deps.settings;
        let (message, earlier) = match chat.history.split_last() {
            Some((last, earlier)) => (last.text.clone(), earlier),
            None => return,
        };
        let prompt = Prompt {
            store_name: found.profile.name.clone(),
            store_url: found.profile.url.clone(),
            instructions: found.profile.instructions.clone(),
            language: chat.meta.language,
            products: found.hits.into_iter().map(|hit| hit.product).collect(),
            history: bounded_history(earlier, settings.history_tokens),
            message,
        };
        let job = ReplyJob {
            model: Arc::clone(&self.deps.model),
            log: Arc::clone(&self.deps.log),
            prompt: Arc::new(prompt),
            store: self.deps.store.clone(),
            conversation: chat.meta.conversation,
            reply_id,
            policy: settings.retry.clone(),
        };
        let answers = chat.last_shopper.unwrap_or_default();
        let (feed, events) = ReplyFeed::new(reply_id, answers);
        let published = self
            .registration
            .as_ref()
            .is_some_and(|registration| self.deps.live.publish(registration, &feed));
        if !published {
            // Another connection took the conversation over; it answers.
            self.reply = None;
            return;
        }
        reply::spawn(job, feed);
        if self.unflushed.is_empty() {
            self.listen(reply_id, events, ctx);
        } else {
            self.held = Some(HeldReply {
                reply_id,
                answers,
                events,
            });
        }
    }

    /// Answers the shopper's last message again after a failed reply.
    fn on_retry(&mut self, ctx: &mut Context<Self>) {
        let busy = self.reply.is_some();
        let Phase::Ready(chat) = &mut self.phase else {
            let error = ErrorEvent::new(ErrorCode::HelloRequired, "send hello first");
            self.protocol_error(ctx, error);
            return;
        };
        if busy || !chat.failed {
            let message = if busy {
                "a reply is on its way"
            } else {
                "the last reply did not fail"
            };
            self.error(ctx, ErrorEvent::new(ErrorCode::NothingToRetry, message));
            return;
        }
        if let Err(error) = take_turn(&self.limiter, self.deps.settings.messages_per_minute) {
            self.error(ctx, error);
            return;
        }
        // The interrupted answer stays stored, marked incomplete; the new
        // one answers the same message.
        if chat
            .history
            .last()
            .is_some_and(|t| t.role == Role::Assistant)
        {
            chat.history.pop();
        }
        self.start_reply(ctx);
    }

    /// Sends the reply's last frame, keeps its text as history and starts
    /// the next reply if a message came in meanwhile.
    fn end_reply(&mut self, ctx: &mut Context<Self>, last: ServerEvent) {
        if let Some(reply) = self.reply.take()
            && let Phase::Ready(chat) = &mut self.phase
            && !reply.text.is_empty()
        {
            chat.history.push(Turn {
                role: Role::Assistant,
                text: reply.text,
            });
        }
        self.send(ctx, last);
        if std::mem::take(&mut self.turn_waiting) {
            self.start_reply(ctx);
        }
    }

    fn protocol_error(&mut self, ctx: &mut Context<Self>, error: ErrorEvent) {
        self.protocol_errors += 1;
        if self.protocol_errors > self.deps.settings.max_protocol_errors {
            self.close(
                ctx,
                ErrorCode::TooManyErrors,
                "too many frames that could not be understood",
            );
        } else {
            self.error(ctx, error);
        }
    }
}

/// Spends one of the session's messages a minute (a message or a retry),
/// or says when the next one is allowed.
fn take_turn(limiter: &DefaultDirectRateLimiter, per_minute: NonZeroU32) -> Result<(), ErrorEvent> {
    limiter.check().map_err(|not_until| ErrorEvent {
        retry_after: Some(not_until.wait_time_from(DefaultClock::default().now())),
        ..ErrorEvent::new(
            ErrorCode::RateLimited,
            format!("at most {per_minute} messages a minute"),
        )
    })
}

impl Actor for WidgetSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.registration = Some(self.deps.live.register(ctx.address().recipient()));
        let settings = Arc::clone(&self.deps.settings);
        ctx.run_later(settings.hello_timeout, |act, ctx| {
            if matches!(act.phase, Phase::AwaitingHello) {
                act.close(ctx, ErrorCode::HelloTimeout, "no hello received in time");
            }
        });
        ctx.run_interval(settings.heartbeat_interval, |act, ctx| {
            if act.last_seen.elapsed() > act.deps.settings.client_timeout {
                act.close(
                    ctx,
                    ErrorCode::HeartbeatTimeout,
                    "the client stopped answering heartbeats",
                );
            } else {
                act.send(ctx, ServerEvent::TransportPing);
            }
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        tracing::debug!(store = %self.deps.store, "session stopped");
    }
}

impl StreamHandler<ClientEvent> for WidgetSession {
    fn handle(&mut self, event: ClientEvent, ctx: &mut Context<Self>) {
        self.last_seen = Instant::now();
        match event {
            ClientEvent::Hello(hello) => self.on_hello(hello, ctx),
            ClientEvent::Message { client_id, text } => self.on_message(client_id, text, ctx),
            ClientEvent::Retry => self.on_retry(ctx),
            ClientEvent::Ping { nonce } => self.send(ctx, ServerEvent::Pong { nonce }),
            ClientEvent::TransportPing(payload) => {
                self.send(ctx, ServerEvent::TransportPong(payload));
            }
            ClientEvent::Alive => {}
            ClientEvent::Invalid { code, message } => {
                self.protocol_error(ctx, ErrorEvent::new(code, message));
            }
            ClientEvent::Broken { code, message } => self.close(ctx, code, &message),
            ClientEvent::Closed => {
                self.closing = true;
                ctx.stop();
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl WidgetSession {
    fn on_reply_event(&mut self, reply_id: MessageId, event: ReplyEvent, ctx: &mut Context<Self>) {
        if self.reply.as_ref().is_none_or(|reply| reply.id != reply_id) {
            // A reply this session no longer follows.
            return;
        }
        match event {
            ReplyEvent::Token { seq, text } => self.show_token(
                ServerEvent::Token {
                    reply_id,
                    seq,
                    text,
                },
                ctx,
            ),
            ReplyEvent::Finished { cards, finish } => {
                if !cards.is_empty() {
                    self.send(ctx, ServerEvent::Products { reply_id, cards });
                }
                self.end_reply(ctx, ServerEvent::Done { reply_id, finish });
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
                if let Phase::Ready(chat) = &mut self.phase {
                    chat.failed = true;
                }
                let event = ErrorEvent {
                    retry_after,
                    reply_id: Some(reply_id),
                    ..ErrorEvent::new(code, message)
                };
                self.end_reply(ctx, ServerEvent::Error(event));
            }
        }
    }
}

impl StreamHandler<(MessageId, ReplyEvent)> for WidgetSession {
    fn handle(&mut self, (reply_id, event): (MessageId, ReplyEvent), ctx: &mut Context<Self>) {
        self.on_reply_event(reply_id, event, ctx);
    }

    /// A reply's stream ending is not the session's end.
    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl Handler<Shutdown> for WidgetSession {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        self.close(
            ctx,
            ErrorCode::ServerShutdown,
            "the node is restarting; reconnect shortly",
        );
    }
}

impl Handler<Replaced> for WidgetSession {
    type Result = ();

    fn handle(&mut self, _: Replaced, ctx: &mut Context<Self>) {
        // The reply in flight goes on and is followed by the newer socket.
        self.reply = None;
        self.close(
            ctx,
            ErrorCode::SessionReplaced,
            "the conversation continued in another window",
        );
    }
}

#[cfg(test)]
mod tests;
