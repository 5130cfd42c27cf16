//! The greeting phase: a hello is checked (version, the page's origin),
//! answered with a new conversation or the returning shopper's stored one,
//! and a reply still in flight for it is followed from the last token the
//! client drew. A message that was acknowledged but never answered is
//! answered now.

use actix::{ActorFutureExt, AsyncContext, Context, WrapFuture};

use super::state::{Conversation, Resumed};
use super::{Phase, WidgetSession};
use crate::catalog::StoreProfile;
use crate::desk::ConversationFacts;
use crate::events::{ErrorCode, ErrorEvent, Hello, PROTOCOL_VERSION, ServerEvent};
use crate::ids::{ConversationId, SessionId};
use crate::language::Language;
use crate::log::{ConversationMeta, now_ms};
use crate::page::{page_without_query, path_of, referrer_origin};
use crate::reply::short_id;
use crate::store::GetProfile;

impl WidgetSession {
    pub(super) fn on_hello(&mut self, hello: Hello, ctx: &mut Context<Self>) {
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
            move |profile, act, ctx| {
                let _span = act.span.clone().entered();
                match profile {
                    Ok(profile) => act.greet(hello, &profile, ctx),
                    Err(_) => {
                        act.close(
                            ctx,
                            ErrorCode::UnknownStore,
                            "the store is no longer served",
                        );
                    }
                }
            },
        ));
    }

    fn greet(&mut self, hello: Hello, profile: &StoreProfile, ctx: &mut Context<Self>) {
        let (origin, host) = (&self.connection.origin, &self.connection.host);
        if !profile.allows_origin(origin.as_deref(), host.as_deref()) {
            tracing::info!("origin refused");
            self.close(
                ctx,
                ErrorCode::OriginNotAllowed,
                "this site may not open the store's assistant",
            );
            return;
        }
        let resumed = self
            .find_conversation(&hello, ctx)
            .map(|meta| self.load(meta, ctx));
        let Resumed {
            conversation,
            entries,
            unanswered,
        } = resumed.unwrap_or_else(|| {
            let browser_language = hello.language.as_deref().and_then(Language::from_tag);
            let meta = ConversationMeta {
                store: self.deps.store.clone(),
                conversation: ConversationId::new(),
                session: SessionId::new(),
                started_at_ms: now_ms(),
                language: browser_language.unwrap_or(profile.default_language),
                page_url: hello.page_url.as_deref().and_then(page_without_query),
                referrer: hello.referrer.as_deref().and_then(referrer_origin),
                client: self.connection.client.clone(),
                ip: self.connection.ip.clone(),
            };
            Resumed {
                conversation: Conversation::start(meta),
                entries: Vec::new(),
                unanswered: false,
            }
        });
        // The conversation is this connection's now; a reply still running
        // for it (the socket dropped, or the shopper changed pages) is
        // followed from where the client's copy stops. A reply already in
        // the history is complete there.
        let live = self.deps.live.clone();
        let me = ctx.address().recipient();
        let pending = self
            .registration
            .as_mut()
            .and_then(|registration| live.attach(registration, conversation.meta.session, me))
            .filter(|feed| !entries.iter().any(|h| h.message_id == feed.reply_id()));
        let facts = ConversationFacts {
            conversation: conversation.meta.conversation,
            language: conversation.meta.language,
            page_path: conversation.meta.page_url.as_deref().map(path_of),
            device: conversation.meta.client.device.clone(),
            started_at_ms: conversation.meta.started_at_ms,
        };
        self.presence = Some(self.deps.desk.present(facts, ctx.address().recipient()));
        let agent = self
            .deps
            .desk
            .holder(&conversation.meta.conversation)
            .map(|name| name.to_string());
        let ready = ServerEvent::Ready {
            agent,
            session_id: conversation.meta.session,
            conversation_id: conversation.meta.conversation,
            resumed: conversation.opened,
            language: conversation.meta.language,
            history: entries,
            pending_reply: pending.as_ref().map(|feed| feed.reply_id()),
        };
        self.span
            .record("session", short_id(&conversation.meta.session).as_str());
        tracing::info!(resumed = conversation.opened, "session ready");
        self.phase = Phase::Ready(Box::new(conversation));
        self.send(ctx, ready);
        if let Some(feed) = pending {
            let from = match hello.resume {
                Some(resume) if resume.reply_id == feed.reply_id().to_string() => {
                    resume.last_seq.map_or(0, |seq| seq.saturating_add(1))
                }
                _ => 0,
            };
            self.follow(&feed, from, ctx);
        } else if unanswered {
            // Acknowledged, but its reply never started (the socket or the
            // node went away first).
            self.start_reply(ctx);
        }
    }

    /// The stored conversation of the session id the hello brings, if it
    /// belongs to this store.
    fn find_conversation(
        &mut self,
        hello: &Hello,
        ctx: &mut Context<Self>,
    ) -> Option<ConversationMeta> {
        let session = hello.session_id.as_deref().and_then(SessionId::parse)?;
        match self.deps.log.find_session(&self.deps.store, session) {
            Ok(found) => found,
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
        }
    }

    /// A stored conversation with its newest messages.
    fn load(&mut self, meta: ConversationMeta, ctx: &mut Context<Self>) -> Resumed {
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
        Conversation::resume(meta, stored)
    }
}
