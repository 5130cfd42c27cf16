//! The live desk in the dashboard: the page (`/dashboard/stores/{store}/live`)
//! and its WebSocket (`…/desk/socket`, `docs/desk-protocol.md`).
//!
//! The socket is refused before the upgrade unless the request carries a
//! live dashboard session of a member of the store and comes from the
//! node's own origin (`server.public_url`), so no other site can open it
//! with the owner's cookie. Each socket is one task on its HTTP worker: it
//! joins the store's desk as a watcher with a bounded queue, forwards the
//! desk's events to the socket, and turns the client's frames into desk
//! requests. The role is checked per action (viewers only watch) and the
//! membership again every [`RECHECK_EVERY`]; a watcher that reads too
//! slowly is dropped by the desk and told to reload.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseReason};
use futures_util::StreamExt;
use governor::{Quota, RateLimiter};
use mikabot_actors::desk::{
    Agent, AgentSays, AgentTyping, DeskHandle, DeskRefusal, HandBack, Join, TakeOver, Watch,
    Watcher,
};
use mikabot_actors::ids::{ConversationId, MessageId, StoreId};
use mikabot_actors::log::ConversationLog;

use super::desk_wire::{
    self as wire, ConversationFrame, DeskFrame, MessageFrame, ServerFrame, close,
};
use super::pages::{Chrome, LivePage, render};
use super::stores::{head, member};
use super::visitor::Visitor;
use super::{DashError, ok};
use crate::accounts::{AccountId, Role};
use crate::http::AppState;
use crate::http::error::{ApiCode, ApiError};

/// How often the node pings a desk client, and how long it waits for any
/// sign of life.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(15);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(45);

/// Longest wait for one frame to leave before the client is taken for
/// stuck.
const WRITE_TIMEOUT: Duration = Duration::from_secs(20);

/// How often the socket checks that its account may still watch.
const RECHECK_EVERY: Duration = Duration::from_secs(30);

/// Frames a desk client may send a second.
const FRAMES_PER_SECOND: u32 = 20;

/// Messages of a conversation sent when a watcher opens it.
const HISTORY_MESSAGES: usize = 200;

/// `GET /dashboard/stores/{store}/live`: the live desk page.
pub async fn page(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let (me, profile, role) = member(&visitor, &state, &path, Role::Agent)?;
    let html = render(&LivePage {
        chrome: Chrome::of(&visitor, format!("{}: live", profile.name)),
        store: head(&profile),
        role_is_owner: role == Role::Owner,
        may_act: role >= Role::Agent,
        you: me.account.name.clone(),
    })?;
    Ok(ok(visitor, html))
}

/// Refuses a desk socket before its upgrade.
fn refuse(code: ApiCode, message: &str) -> actix_web::Error {
    ApiError::new(code, message).into()
}

/// `GET /dashboard/stores/{store}/desk/socket`.
pub async fn socket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, actix_web::Error> {
    let origin_ok = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|origin| origin.eq_ignore_ascii_case(&state.public_origin));
    if !origin_ok {
        return Err(refuse(
            ApiCode::OriginNotAllowed,
            "the desk socket opens only from the dashboard's own pages",
        ));
    }
    let visitor = Visitor::of(&req, &state)?;
    // Watching shows what shoppers write: agents and owners only, as the
    // conversation pages.
    let (me, profile, role) = match member(&visitor, &state, &path, Role::Agent) {
        Ok(found) => found,
        Err(DashError::SignIn(_) | DashError::Deleted) => {
            return Err(refuse(
                ApiCode::SignInRequired,
                "sign in to the dashboard first",
            ));
        }
        Err(DashError::Forbidden) => {
            return Err(refuse(
                ApiCode::RoleTooLow,
                "watching conversations needs the agent or owner role",
            ));
        }
        Err(error) => return Err(error.into()),
    };
    let Ok((response, session, stream)) = actix_ws::handle(&req, body) else {
        return Err(refuse(
            ApiCode::WebsocketRequired,
            "this endpoint speaks WebSocket: send an Upgrade: websocket request",
        ));
    };
    let stream = stream
        .max_frame_size(wire::MAX_FRAME_BYTES * 2)
        .aggregate_continuations()
        .max_continuation_size(wire::MAX_FRAME_BYTES * 2);
    let watcher = Seat {
        store: profile.id.clone(),
        desk: state.desks.of(&profile.id),
        account: me.account.id,
        digest: me.digest,
        agent: Agent {
            id: me.account.id.to_string(),
            name: me.account.name.as_str().into(),
        },
        role,
        state: state.clone(),
    };
    actix_web::rt::spawn(watcher.run(session, stream));
    Ok(response)
}

/// One desk socket's task.
struct Seat {
    store: StoreId,
    desk: DeskHandle,
    account: AccountId,
    /// The dashboard session's cookie digest, to see it end.
    digest: [u8; 32],
    agent: Agent,
    role: Role,
    state: web::Data<AppState>,
}

/// What the socket shows of the conversation it has open.
#[derive(Default)]
struct Open {
    conversation: Option<ConversationId>,
    /// Messages (and finished replies) the history already showed: their
    /// events are dropped.
    shown: HashSet<MessageId>,
}

impl Open {
    /// Whether an event about `conversation` and message or reply `id`
    /// was already in the history frame.
    fn seen(&self, conversation: &ConversationId, id: &MessageId) -> bool {
        self.conversation.as_ref() == Some(conversation) && self.shown.contains(id)
    }
}

enum Step {
    Go,
    Close(u16, &'static str),
}

impl Seat {
    async fn run(
        self,
        mut session: actix_ws::Session,
        mut stream: actix_ws::AggregatedMessageStream,
    ) {
        let settings = self.state.desks.settings().clone();
        let (watcher, mut inbox) = Watcher::channel(settings.watcher_buffer);
        let watcher_id = watcher.id();
        let join = Join {
            watcher,
            agent: self.agent.clone(),
            may_act: self.role >= Role::Agent,
        };
        let Ok((joined, list)) = self.desk.addr.send(join).await else {
            let _ = session.close(None).await;
            return;
        };
        let ready = ServerFrame::Ready {
            store_id: self.store.as_str(),
            you: wire::You {
                name: &self.agent.name,
                role: self.role.as_str(),
                may_act: self.role >= Role::Agent,
            },
            conversations: list.iter().map(ConversationFrame::from).collect(),
            idle_return_secs: settings.idle_return.as_secs_f64(),
        };
        let mut open = Open::default();
        let limiter = RateLimiter::direct(Quota::per_second(
            NonZeroU32::new(FRAMES_PER_SECOND).unwrap_or(NonZeroU32::MIN),
        ));
        let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
        let mut recheck = tokio::time::interval(RECHECK_EVERY);
        recheck.reset();
        let mut last_seen = Instant::now();
        let stopping = self.state.tasks.clone();
        let mut step = send(&mut session, &ready).await;
        while let Step::Go = step {
            step = tokio::select! {
                () = inbox.too_slow.cancelled() => {
                    let _ = error(&mut session, "too_slow", "this page fell behind; reload it", None, None).await;
                    Step::Close(close::TOO_SLOW, "too_slow")
                }
                event = inbox.events.recv() => match event {
                    Some(event) => self.forward(&mut session, &open, &event).await,
                    None => Step::Close(close::TOO_SLOW, "too_slow"),
                },
                frame = stream.next() => {
                    last_seen = Instant::now();
                    // Every frame counts, pings and binary ones too.
                    let limited = matches!(frame, Some(Ok(_))) && limiter.check().is_err();
                    match frame {
                        Some(Ok(_)) if limited => {
                            send_error(&mut session, "rate_limited", &format!("at most {FRAMES_PER_SECOND} frames a second"), None).await
                        }
                        Some(Ok(AggregatedMessage::Text(text))) => {
                            self.on_frame(&mut session, &mut open, watcher_id, &text).await
                        }
                        Some(Ok(AggregatedMessage::Binary(_))) => {
                            send_error(&mut session, "invalid_frame", "frames are JSON text", None).await
                        }
                        Some(Ok(AggregatedMessage::Ping(payload))) => {
                            timed(session.pong(&payload)).await
                        }
                        Some(Ok(AggregatedMessage::Pong(_))) => Step::Go,
                        Some(Ok(AggregatedMessage::Close(_))) | None => Step::Close(1000, "closed"),
                        Some(Err(_)) => Step::Close(1002, "protocol_error"),
                    }
                }
                _ = heartbeat.tick() => {
                    if last_seen.elapsed() > CLIENT_TIMEOUT {
                        let _ = error(&mut session, "heartbeat_timeout", "no answer to the node's pings", None, None).await;
                        Step::Close(close::HEARTBEAT_TIMEOUT, "heartbeat_timeout")
                    } else {
                        timed(session.ping(b"")).await
                    }
                }
                _ = recheck.tick() => self.still_allowed(&mut session).await,
                () = stopping.stopping() => {
                    let _ = error(&mut session, "server_shutdown", "the node is restarting", None, None).await;
                    Step::Close(close::SHUTDOWN, "server_shutdown")
                }
            };
        }
        drop(joined);
        if let Step::Close(code, reason) = step {
            if code == close::TOO_SLOW {
                self.state.metrics.desk_watchers_dropped.inc();
            }
            let closing = session.close(Some(CloseReason {
                code: code.into(),
                description: Some(reason.to_owned()),
            }));
            let _ = tokio::time::timeout(WRITE_TIMEOUT, closing).await;
        }
    }

    /// Whether the account may still watch this store: its session, its
    /// account and its role (agent or owner) are re-read.
    async fn still_allowed(&self, session: &mut actix_ws::Session) -> Step {
        let (store, account, digest) = (self.store.clone(), self.account, self.digest);
        let allowed = self
            .state
            .storage
            .blocking(move |storage| {
                let signed_in = storage
                    .session(&digest)?
                    .is_some_and(|s| s.account == account);
                let active = storage
                    .account(account)?
                    .is_some_and(|a| a.deleted_at.is_none() && !a.suspended);
                let acting = storage
                    .member_role(&store, account)?
                    .is_some_and(|role| role >= Role::Agent);
                Ok(signed_in && active && acting)
            })
            .await;
        match allowed {
            Ok(true) => Step::Go,
            Ok(false) => {
                let _ = error(
                    session,
                    "access_revoked",
                    "your access to this store ended",
                    None,
                    None,
                )
                .await;
                Step::Close(close::ACCESS_REVOKED, "access_revoked")
            }
            // A storage hiccup does not end the socket; the next check will tell.
            Err(error) => {
                tracing::warn!(%error, "desk access check failed");
                Step::Go
            }
        }
    }

    /// Sends a desk event, unless the open conversation's history already
    /// showed it.
    async fn forward(
        &self,
        session: &mut actix_ws::Session,
        open: &Open,
        event: &mikabot_actors::desk::DeskEvent,
    ) -> Step {
        use mikabot_actors::desk::DeskEvent;
        let repeated = match event {
            DeskEvent::Message {
                conversation,
                message,
            } => open.seen(conversation, &message.id),
            DeskEvent::Tokens {
                conversation,
                reply_id,
                ..
            }
            | DeskEvent::ReplyDone {
                conversation,
                reply_id,
                ..
            }
            | DeskEvent::ReplyFailed {
                conversation,
                reply_id,
            } => open.seen(conversation, reply_id),
            _ => false,
        };
        if repeated {
            return Step::Go;
        }
        send(session, &wire::event_frame(event)).await
    }

    async fn on_frame(
        &self,
        session: &mut actix_ws::Session,
        open: &mut Open,
        watcher: u64,
        text: &str,
    ) -> Step {
        let frame = match wire::decode(text) {
            Ok(frame) => frame,
            Err((code, message)) => return send_error(session, code, &message, None).await,
        };
        let conversation_of = |raw: &str| ConversationId::parse(raw);
        match frame {
            DeskFrame::Ping { nonce } => {
                send(
                    session,
                    &ServerFrame::Pong {
                        nonce: nonce.as_deref(),
                    },
                )
                .await
            }
            DeskFrame::Watch { conversation_id } => {
                let conversation = match conversation_id.as_deref().map(conversation_of) {
                    None => None,
                    Some(Some(id)) => Some(id),
                    Some(None) => return bad_id(session).await,
                };
                self.watch(session, open, watcher, conversation).await
            }
            DeskFrame::TakeOver { conversation_id } => {
                let Some(conversation) = conversation_of(&conversation_id) else {
                    return bad_id(session).await;
                };
                if let Step::Close(code, reason) = self.still_allowed(session).await {
                    return Step::Close(code, reason);
                }
                let taken = self
                    .desk
                    .addr
                    .send(TakeOver {
                        watcher,
                        conversation,
                    })
                    .await;
                self.answer(session, taken, "take_over", conversation, None)
                    .await
            }
            DeskFrame::HandBack { conversation_id } => {
                let Some(conversation) = conversation_of(&conversation_id) else {
                    return bad_id(session).await;
                };
                if let Step::Close(code, reason) = self.still_allowed(session).await {
                    return Step::Close(code, reason);
                }
                let back = self
                    .desk
                    .addr
                    .send(HandBack {
                        watcher,
                        conversation,
                    })
                    .await;
                self.answer(session, back, "hand_back", conversation, None)
                    .await
            }
            DeskFrame::Typing { conversation_id } => {
                let Some(conversation) = conversation_of(&conversation_id) else {
                    return bad_id(session).await;
                };
                match self
                    .desk
                    .addr
                    .send(AgentTyping {
                        watcher,
                        conversation,
                    })
                    .await
                {
                    Ok(Ok(())) => Step::Go,
                    Ok(Err(refusal)) => refused(session, &refusal, None).await,
                    Err(_) => Step::Close(close::SHUTDOWN, "server_shutdown"),
                }
            }
            DeskFrame::Message {
                conversation_id,
                client_id,
                text,
            } => {
                let Some(conversation) = conversation_of(&conversation_id) else {
                    return bad_id(session).await;
                };
                if client_id.is_empty() || client_id.len() > wire::MAX_CLIENT_ID_BYTES {
                    let message =
                        format!("client_id must be 1 to {} bytes", wire::MAX_CLIENT_ID_BYTES);
                    return send_error(session, "invalid_frame", &message, None).await;
                }
                if let Step::Close(code, reason) = self.still_allowed(session).await {
                    return Step::Close(code, reason);
                }
                let says = AgentSays {
                    watcher,
                    conversation,
                    client_id: client_id.clone(),
                    text,
                };
                match self.desk.addr.send(says).await {
                    Ok(Ok(id)) => {
                        let sent = ServerFrame::Sent {
                            client_id: &client_id,
                            message_id: id.to_string(),
                        };
                        send(session, &sent).await
                    }
                    Ok(Err(refusal)) => {
                        if let DeskRefusal::Storage(error) = &refusal {
                            tracing::error!(%error, "agent message not stored");
                        }
                        refused(session, &refusal, Some(&client_id)).await
                    }
                    Err(_) => Step::Close(close::SHUTDOWN, "server_shutdown"),
                }
            }
        }
    }

    /// Opens a conversation: the desk sends its events from now on, then
    /// the stored history goes out, and events it already covers are
    /// dropped.
    async fn watch(
        &self,
        session: &mut actix_ws::Session,
        open: &mut Open,
        watcher: u64,
        conversation: Option<ConversationId>,
    ) -> Step {
        *open = Open::default();
        let watched = match self
            .desk
            .addr
            .send(Watch {
                watcher,
                conversation,
            })
            .await
        {
            Ok(Ok(line)) => line,
            Ok(Err(refusal)) => return refused(session, &refusal, None).await,
            Err(_) => return Step::Close(close::SHUTDOWN, "server_shutdown"),
        };
        let frame = ServerFrame::Watching {
            conversation: watched.as_ref().map(ConversationFrame::from),
        };
        if let Step::Close(code, reason) = send(session, &frame).await {
            return Step::Close(code, reason);
        }
        let Some(conversation) = conversation else {
            return Step::Go;
        };
        let store = self.store.clone();
        let history = self
            .state
            .storage
            .blocking(move |storage| {
                ConversationLog::history(storage, &store, conversation, HISTORY_MESSAGES)
                    .map_err(|e| crate::storage::StorageError::Interrupted(e.to_string()))
            })
            .await;
        let messages = match history {
            Ok(messages) => messages,
            Err(error) => {
                tracing::error!(%error, "desk history not loaded");
                return send_error(
                    session,
                    "storage_failed",
                    "the history could not be loaded",
                    None,
                )
                .await;
            }
        };
        open.conversation = Some(conversation);
        open.shown = messages.iter().map(|m| m.id).collect();
        let frame = ServerFrame::History {
            conversation_id: conversation.to_string(),
            messages: messages.iter().map(MessageFrame::from).collect(),
        };
        send(session, &frame).await
    }

    async fn answer(
        &self,
        session: &mut actix_ws::Session,
        result: Result<Result<(), DeskRefusal>, actix::MailboxError>,
        action: &'static str,
        conversation: ConversationId,
        client_id: Option<&str>,
    ) -> Step {
        match result {
            Ok(Ok(())) => {
                let done = ServerFrame::Done {
                    action,
                    conversation_id: conversation.to_string(),
                };
                send(session, &done).await
            }
            Ok(Err(refusal)) => refused(session, &refusal, client_id).await,
            Err(_) => Step::Close(close::SHUTDOWN, "server_shutdown"),
        }
    }
}

async fn send(session: &mut actix_ws::Session, frame: &ServerFrame<'_>) -> Step {
    timed(session.text(frame.text())).await
}

/// A write to the socket; a client that stopped reading altogether must
/// not hold this task past [`WRITE_TIMEOUT`].
async fn timed(write: impl std::future::Future<Output = Result<(), actix_ws::Closed>>) -> Step {
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(Ok(())) => Step::Go,
        Ok(Err(_)) => Step::Close(1000, "gone"),
        Err(_) => Step::Close(close::TOO_SLOW, "too_slow"),
    }
}

async fn error(
    session: &mut actix_ws::Session,
    code: &str,
    message: &str,
    client_id: Option<&str>,
    holder: Option<&str>,
) -> Step {
    let frame = ServerFrame::Error {
        code,
        message,
        client_id,
        holder,
    };
    send(session, &frame).await
}

async fn send_error(
    session: &mut actix_ws::Session,
    code: &str,
    message: &str,
    client_id: Option<&str>,
) -> Step {
    error(session, code, message, client_id, None).await
}

async fn bad_id(session: &mut actix_ws::Session) -> Step {
    send_error(
        session,
        "invalid_frame",
        "conversation_id is not a conversation id",
        None,
    )
    .await
}

async fn refused(
    session: &mut actix_ws::Session,
    refusal: &DeskRefusal,
    client_id: Option<&str>,
) -> Step {
    if let DeskRefusal::NotJoined = refusal {
        // The desk dropped this watcher: it fell behind.
        let _ = error(
            session,
            "too_slow",
            "this page fell behind; reload it",
            None,
            None,
        )
        .await;
        return Step::Close(close::TOO_SLOW, "too_slow");
    }
    let holder = match refusal {
        DeskRefusal::HeldBy(name) => Some(name.as_ref()),
        _ => None,
    };
    let message = match refusal {
        // Storage's own words stay in the log.
        DeskRefusal::Storage(_) => "the message was not stored; send it again".to_owned(),
        other => other.to_string(),
    };
    error(
        session,
        wire::refusal_code(refusal),
        &message,
        client_id,
        holder,
    )
    .await
}
