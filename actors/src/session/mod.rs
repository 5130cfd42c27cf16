//! `WidgetSession`: one actor per shopper socket. The HTTP edge starts it
//! with the socket's decoded inbound events as a stream and the socket's
//! [`Outbox`] for outbound events. It ends on close, transport error, hello
//! or heartbeat timeout, repeated misuse, a reader too slow for its frames,
//! or shutdown; its [`Registration`] deregisters it in every case.
//!
//! The actor shell lives here: its fields, its timers, the dispatch of
//! what arrives, and the ways out. The conversation it holds is a plain
//! type ([`state::Conversation`]); each phase has its own file:
//!
//! - [`greeting`]: the hello, a new or resumed conversation, following a
//!   reply still in flight.
//! - [`turn`]: a shopper message made durable before its ack, a retry, the
//!   start of a reply.
//! - [`in_flight`]: a reply's events on their way to the socket, held back
//!   while its message is flushed.
//! - [`handover`]: the store's desk: a person taking the conversation over
//!   and handing it back, their messages and typing, the shopper's typing
//!   and requests for a person.

mod greeting;
mod handover;
mod in_flight;
mod state;
mod turn;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, Addr, AsyncContext, Context, Handler, StreamHandler};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use self::in_flight::HeldReply;
use self::state::Conversation;
use crate::desk::{DeskHandle, Presence};
use crate::events::{ClientEvent, ErrorCode, ErrorEvent, ServerEvent};
use crate::ids::{MessageId, StoreId};
use crate::limits::{ClientId, ClientRates, Slot};
use crate::live::{LiveSessions, Registration, Replaced, Shutdown};
use crate::log::{ClientClass, ConversationLog};
use crate::metrics::{CodeLabel, Metrics, ReasonLabel};
use crate::outbox::{Outbox, OutboxError};
use crate::provider::Models;
use crate::reply::{ReplyEvent, RetryPolicy};
use crate::store::StoreCatalog;
use crate::tasks::Tasks;

/// Longest client message id accepted.
pub const MAX_CLIENT_ID_BYTES: usize = 64;

/// Limits and timings for widget sessions, from configuration.
#[derive(Clone, Debug)]
pub struct SessionSettings {
    /// How often the session pings its client.
    pub heartbeat_interval: Duration,
    /// Silence after which the client is taken for gone.
    pub client_timeout: Duration,
    /// Longest wait for the hello.
    pub hello_timeout: Duration,
    /// Longest shopper message, in characters.
    pub max_message_chars: usize,
    /// Shopper messages (and retries) a session may send a minute.
    pub messages_per_minute: NonZeroU32,
    /// Token budget for history in the prompt.
    pub history_tokens: usize,
    /// Messages loaded when a session resumes.
    pub history_messages: usize,
    /// Products retrieved per turn.
    pub retrieval_limit: usize,
    /// The budget of a query rewrite by the provider before each reply;
    /// `None`: the shopper's words are searched as they are.
    pub query_rewrite: Option<Duration>,
    /// Frames that could not be understood before the session is closed.
    pub max_protocol_errors: u32,
    /// How replies retry a failing model.
    pub retry: RetryPolicy,
}

/// What every session of a store shares.
#[derive(Clone)]
pub struct SessionDeps {
    pub store: StoreId,
    /// The store's actor: its profile and catalog.
    pub catalog: Addr<StoreCatalog>,
    pub log: Arc<dyn ConversationLog>,
    /// The provider, the offline fallback, the breaker and store budgets.
    pub models: Arc<Models>,
    /// Per-client rates across sockets.
    pub rates: Arc<ClientRates>,
    pub live: LiveSessions,
    /// The store's desk: who watches, who holds which conversation.
    pub desk: DeskHandle,
    /// Where reply tasks run.
    pub tasks: Tasks,
    pub metrics: Arc<Metrics>,
    pub settings: Arc<SessionSettings>,
}

/// Facts about the shopper's connection, already anonymised.
#[derive(Clone, Debug, Default)]
pub struct Connection {
    /// The client's address, anonymised (IPv4 /24, IPv6 /48).
    pub ip: Option<String>,
    pub client: ClientClass,
    /// The page's origin, from the socket request's Origin header.
    pub origin: Option<String>,
    /// The Host the request reached the node with.
    pub host: Option<String>,
    /// The client as per-client limits count it, if its address is known.
    pub limit_key: Option<ClientId>,
}

/// Where a session is in its life.
enum Phase {
    /// Connected; nothing but a hello is accepted.
    AwaitingHello,
    /// The hello is being answered; frames wait for it.
    Greeting,
    /// The conversation is open.
    Ready(Box<Conversation>),
}

/// One shopper's live chat over one socket.
pub struct WidgetSession {
    /// What every session of the store shares.
    deps: SessionDeps,
    /// The shopper's connection, anonymised.
    connection: Connection,
    /// The socket's sending side.
    out: Box<dyn Outbox>,
    /// Where the session is in its life, with its conversation once open.
    phase: Phase,
    /// The last sign of life from the client, for the heartbeat.
    last_seen: Instant,
    /// Frames that could not be understood so far.
    protocol_errors: u32,
    /// The session's messages a minute.
    limiter: DefaultDirectRateLimiter,
    /// This session in the node's registry; dropped with the session.
    registration: Option<Registration>,
    /// A reply started while its message was being flushed; its events
    /// wait here until no flush is pending.
    held: Option<HeldReply>,
    /// The socket is closing or gone: nothing more is sent.
    closing: bool,
    /// The conversation on the store's desk while the session holds it.
    presence: Option<Presence>,
    /// When the shopper's typing was last passed to the desk.
    typing_told: Option<Instant>,
    /// Why the session ends, for the metrics: an error code, or
    /// `client_closed`, `socket_gone`, `slow_client`.
    ended: &'static str,
    /// The session's log span: its store, and a short session id once the
    /// hello is answered.
    span: tracing::Span,
    /// The session's place among the client's and the node's open
    /// sessions; freed with the session.
    _slot: Option<Slot>,
}

impl WidgetSession {
    pub fn new(
        deps: SessionDeps,
        connection: Connection,
        out: Box<dyn Outbox>,
        slot: Option<Slot>,
    ) -> Self {
        let limiter = RateLimiter::direct(Quota::per_minute(deps.settings.messages_per_minute));
        let span = tracing::info_span!(
            "session",
            store = %deps.store,
            session = tracing::field::Empty
        );
        Self {
            ended: "socket_gone",
            span,
            _slot: slot,
            deps,
            connection,
            out,
            phase: Phase::AwaitingHello,
            last_seen: Instant::now(),
            protocol_errors: 0,
            limiter,
            registration: None,
            held: None,
            closing: false,
            presence: None,
            typing_told: None,
        }
    }

    /// The open conversation, once the hello is answered.
    fn conversation(&mut self) -> Option<&mut Conversation> {
        match &mut self.phase {
            Phase::Ready(conversation) => Some(conversation),
            _ => None,
        }
    }

    fn send(&mut self, ctx: &mut Context<Self>, event: ServerEvent) {
        if self.closing {
            return;
        }
        if let ServerEvent::Error(error) = &event {
            let code = CodeLabel {
                code: error.code.as_str(),
            };
            self.deps.metrics.errors.get_or_create(&code).inc();
        }
        match self.out.push(event) {
            Ok(()) => {}
            Err(OutboxError::Full) => {
                // The shopper's client reads slower than we write; holding
                // frames without bound is not an option, and a reply in
                // progress is recorded by its own task.
                tracing::warn!("closing session: outgoing buffer full");
                self.ended = "slow_client";
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

    /// Tells the client why, closes the socket with the code's close code
    /// and stops.
    fn close(&mut self, ctx: &mut Context<Self>, code: ErrorCode, message: &str) {
        self.ended = code.as_str();
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

    /// A frame that needs an open conversation arrived before it.
    fn hello_required(&mut self, ctx: &mut Context<Self>) {
        let error = ErrorEvent::new(ErrorCode::HelloRequired, "send hello first");
        self.protocol_error(ctx, error);
    }
}

impl WidgetSession {
    /// Spends one of the session's messages a minute (a message or a
    /// retry), and one of its client's across all its sockets, or says when
    /// the next one is allowed.
    fn take_turn(&self) -> Result<(), ErrorEvent> {
        let per_minute = self.deps.settings.messages_per_minute;
        self.limiter.check().map_err(|not_until| ErrorEvent {
            retry_after: Some(not_until.wait_time_from(DefaultClock::default().now())),
            ..ErrorEvent::new(
                ErrorCode::RateLimited,
                format!("at most {per_minute} messages a minute"),
            )
        })?;
        if let Some(client) = self.connection.limit_key {
            self.deps
                .rates
                .message(client)
                .map_err(|spent| ErrorEvent {
                    retry_after: Some(spent.retry_after),
                    ..ErrorEvent::new(
                        ErrorCode::RateLimited,
                        format!("at most {} messages a minute from one address", spent.limit),
                    )
                })?;
        }
        Ok(())
    }
}

impl Actor for WidgetSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.registration = Some(self.deps.live.register(ctx.address().recipient()));
        self.deps.metrics.sessions_opened.inc();
        // Registered after the node told every session to close: it closes
        // itself (the flag is set before sessions are told).
        if self.deps.tasks.is_stopping() {
            let _span = self.span.clone().entered();
            self.close(
                ctx,
                ErrorCode::ServerShutdown,
                "the node is restarting; reconnect shortly",
            );
            return;
        }
        let settings = Arc::clone(&self.deps.settings);
        ctx.run_later(settings.hello_timeout, |act, ctx| {
            let _span = act.span.clone().entered();
            if matches!(act.phase, Phase::AwaitingHello) {
                act.close(ctx, ErrorCode::HelloTimeout, "no hello received in time");
            }
        });
        ctx.run_interval(settings.heartbeat_interval, |act, ctx| {
            let _span = act.span.clone().entered();
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
        let _span = self.span.clone().entered();
        let reason = ReasonLabel { reason: self.ended };
        self.deps
            .metrics
            .sessions_closed
            .get_or_create(&reason)
            .inc();
        tracing::debug!(reason = self.ended, "session stopped");
    }
}

impl StreamHandler<ClientEvent> for WidgetSession {
    fn handle(&mut self, event: ClientEvent, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        self.last_seen = Instant::now();
        match event {
            ClientEvent::Hello(hello) => self.on_hello(hello, ctx),
            ClientEvent::Message { client_id, text } => self.on_message(client_id, text, ctx),
            ClientEvent::Retry => self.on_retry(ctx),
            ClientEvent::Typing => self.on_typing(ctx),
            ClientEvent::RequestHuman => self.on_request_human(ctx),
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
                self.ended = "client_closed";
                self.closing = true;
                ctx.stop();
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl StreamHandler<(MessageId, ReplyEvent)> for WidgetSession {
    fn handle(&mut self, (reply_id, event): (MessageId, ReplyEvent), ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        self.on_reply_event(reply_id, event, ctx);
    }

    /// A reply's stream ending is not the session's end.
    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl Handler<Shutdown> for WidgetSession {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        self.close(
            ctx,
            ErrorCode::ServerShutdown,
            "the node is restarting; reconnect shortly",
        );
    }
}

impl Handler<Replaced> for WidgetSession {
    type Result = ();

    fn handle(&mut self, replaced: Replaced, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        // The reply in flight goes on and is followed by the newer socket,
        // unless the conversation was erased: then it was stopped.
        if let Some(conversation) = self.conversation() {
            conversation.let_go_of_reply();
        }
        self.held = None;
        if replaced.erased {
            if let Some(presence) = self.presence.as_mut() {
                presence.erased();
            }
            self.close(
                ctx,
                ErrorCode::ConversationErased,
                "this conversation was deleted",
            );
        } else {
            self.close(
                ctx,
                ErrorCode::SessionReplaced,
                "the conversation continued in another window",
            );
        }
    }
}

#[cfg(test)]
mod tests;
