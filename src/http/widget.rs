//! `GET /v1/widget/ws?store=ID`: the shopper's socket. Upgrades with
//! actix-ws, refuses unknown stores and address floods with a close code,
//! then hands the socket to one `WidgetSession` actor: inbound frames are
//! decoded into events on the way in; on the way out the actor's
//! [`SocketOutbox`] encodes each event and hands it straight to the socket,
//! keeping a bounded backlog (tokens of one reply folded together) only
//! while the socket's own queue is full.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use actix::{Actor, AsyncContext};
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseReason, ProtocolError};
use futures_util::{FutureExt, StreamExt};
use mikabot_actors::events::{ClientEvent, ErrorCode, ErrorEvent, ServerEvent};
use mikabot_actors::ids::StoreId;
use mikabot_actors::limits::SlotRefusal;
use mikabot_actors::metrics::CodeLabel;
use mikabot_actors::outbox::{Outbox, OutboxError, fold_token};
use mikabot_actors::session::{Connection, SessionDeps, WidgetSession};

use crate::http::AppState;
use crate::http::address::ClientKey;
use crate::http::client::{anonymise, classify};
use crate::http::error::{ApiCode, ApiError};
use crate::http::frames;
use crate::protocol::{self, Outgoing};

/// Frames larger than this end the connection (close 1009); frames between
/// the protocol limit and this get a `frame_too_large` error and the
/// connection stays.
fn transport_limit(max_frame_bytes: usize) -> usize {
    max_frame_bytes.saturating_mul(4).max(64 * 1024)
}

/// Longest wait for a backlogged frame to leave; past it the connection is
/// dropped.
const DRAIN_WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// When a widget turned away from a full node may try again.
const NODE_BUSY_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

fn store_param(req: &HttpRequest) -> Option<StoreId> {
    let query =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok()?;
    StoreId::parse(query.get("store")?).ok()
}

/// The socket handler.
pub async fn socket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let body = frames::checked(&req, body).await?;
    let Ok((response, session, stream)) = actix_ws::handle(&req, body) else {
        return Err(ApiError::new(
            ApiCode::WebsocketRequired,
            "this endpoint speaks WebSocket: send an Upgrade: websocket request",
        )
        .into());
    };
    if state.tasks.is_stopping() {
        refuse(
            &state,
            session,
            ErrorEvent::new(
                ErrorCode::ServerShutdown,
                "the node is restarting; reconnect shortly",
            ),
        );
        return Ok(response);
    }
    let ip = state
        .addressing
        .client(req.peer_addr().map(|a| a.ip()), req.headers());

    let catalog = store_param(&req).and_then(|id| state.stores.get(&id).map(|addr| (id, addr)));
    let Some((store, catalog)) = catalog else {
        refuse(
            &state,
            session,
            ErrorEvent::new(ErrorCode::UnknownStore, "no such store on this node"),
        );
        return Ok(response);
    };
    let key = ip.map(|ip| state.addressing.key(ip));
    if let Some(key) = key
        && let Err(not_until) = state.new_sessions.check_key(&key)
    {
        let mut error = ErrorEvent::new(
            ErrorCode::TooManySessions,
            "too many new sessions from this address; retry later",
        );
        error.retry_after = Some(not_until.wait_time_from(governor::clock::Clock::now(
            &governor::clock::DefaultClock::default(),
        )));
        refuse(&state, session, error);
        return Ok(response);
    }
    let limit_key = key.map(ClientKey::id);
    let network = ip
        .and_then(|ip| state.addressing.network(ip))
        .map(ClientKey::id);
    let slot = match state.slots.acquire(limit_key, network) {
        Ok(slot) => slot,
        Err(refusal) => {
            let error = match refusal {
                SlotRefusal::Client { max } => ErrorEvent::new(
                    ErrorCode::TooManySessions,
                    format!("at most {max} open sessions from one address; close one first"),
                ),
                SlotRefusal::Network { max } => ErrorEvent::new(
                    ErrorCode::TooManySessions,
                    format!("at most {max} open sessions from one network; close one first"),
                ),
                SlotRefusal::Node { .. } => ErrorEvent {
                    retry_after: Some(NODE_BUSY_RETRY),
                    ..ErrorEvent::new(
                        ErrorCode::NodeBusy,
                        "the assistant is very busy right now; try again in a moment",
                    )
                },
            };
            refuse(&state, session, error);
            return Ok(response);
        }
    };

    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let connection = Connection {
        origin: header(actix_web::http::header::ORIGIN),
        host: header(actix_web::http::header::HOST),
        ip: ip.map(|ip| anonymise(ip).to_string()),
        client: classify(
            req.headers()
                .get(actix_web::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
        ),
        limit_key,
    };
    let desk = state.desks.of(&store);
    let deps = SessionDeps {
        store,
        catalog,
        log: state.log.clone(),
        models: state.models.clone(),
        rates: state.rates.clone(),
        live: state.live.clone(),
        desk,
        tasks: state.tasks.clone(),
        metrics: state.metrics.clone(),
        settings: state.session_settings.clone(),
    };
    let outbox = SocketOutbox::new(session, state.outgoing_buffer);
    let max_frame_bytes = state.max_frame_bytes;
    let inbound =
        transport(stream, max_frame_bytes).map(move |item| inbound_event(item, max_frame_bytes));
    WidgetSession::create(|ctx| {
        ctx.add_stream(inbound);
        WidgetSession::new(deps, connection, Box::new(outbox), Some(slot))
    });
    Ok(response)
}

/// Tells the client why and closes, without starting a session.
fn refuse(state: &AppState, mut session: actix_ws::Session, error: ErrorEvent) {
    let (code, reason) = (error.code.closing(), error.code.as_str());
    let label = CodeLabel { code: reason };
    state.metrics.errors.get_or_create(&label).inc();
    actix_web::rt::spawn(async move {
        if let Outgoing::Text(frame) = protocol::encode(&ServerEvent::Error(error)) {
            let _ = session.text(frame).await;
        }
        let _ = session
            .close(Some(CloseReason {
                code: code.into(),
                description: Some(reason.to_owned()),
            }))
            .await;
    });
}

fn inbound_event(
    item: Result<AggregatedMessage, ProtocolError>,
    max_frame_bytes: usize,
) -> ClientEvent {
    match item {
        Ok(AggregatedMessage::Text(text)) => protocol::decode(&text, max_frame_bytes),
        Ok(AggregatedMessage::Binary(_)) => ClientEvent::Invalid {
            code: ErrorCode::BinaryNotSupported,
            message: "frames are JSON text; binary frames are not accepted".into(),
        },
        Ok(AggregatedMessage::Ping(payload)) => ClientEvent::TransportPing(payload.to_vec()),
        Ok(AggregatedMessage::Pong(_)) => ClientEvent::Alive,
        Ok(AggregatedMessage::Close(_)) => ClientEvent::Closed,
        Err(error) => {
            let (code, message) = transport_failure(&error);
            ClientEvent::Broken { code, message }
        }
    }
}

/// The widget socket's transport: frames above the transport limit end the
/// connection, fragments are reassembled up to the same limit. The echo
/// socket uses the same.
pub(crate) fn transport(
    stream: actix_ws::MessageStream,
    max_frame_bytes: usize,
) -> actix_ws::AggregatedMessageStream {
    let limit = transport_limit(max_frame_bytes);
    stream
        .max_frame_size(limit)
        .aggregate_continuations()
        .max_continuation_size(limit)
}

/// The code a broken transport closes with: 1009 for a frame or message
/// far too large, 1007 for text that is not UTF-8, 1002 for the rest.
pub(crate) fn transport_failure(error: &ProtocolError) -> (ErrorCode, String) {
    match error {
        ProtocolError::Overflow => (
            ErrorCode::FrameTooLarge,
            "the frame is far above the size limit".into(),
        ),
        ProtocolError::Io(error) if error.kind() == std::io::ErrorKind::InvalidData => (
            ErrorCode::InvalidUtf8,
            "a text frame is not valid UTF-8".into(),
        ),
        error => (
            ErrorCode::ProtocolError,
            format!("WebSocket protocol error: {error}"),
        ),
    }
}

/// A session's way out: events go straight into actix-ws's queue for the
/// socket. When that queue is full (a client reading slowly, or a busy
/// node) they wait in a backlog, in order, drained by a task that exists
/// only while there is one; consecutive tokens of a reply are folded into
/// one frame there, so a backlog of tokens costs one frame. More than
/// `bound` waiting events means the client cannot keep up: `Full`.
pub struct SocketOutbox {
    session: Option<actix_ws::Session>,
    backlog: Option<Rc<RefCell<Backlog>>>,
    bound: usize,
}

#[derive(Default)]
struct Backlog {
    events: VecDeque<ServerEvent>,
    /// A drain task runs (it may be writing the last event taken).
    draining: bool,
    /// The socket failed while draining.
    closed: bool,
    /// The session ended: close the socket once the backlog is out.
    finish: bool,
}

enum Written {
    Sent,
    Busy(ServerEvent),
    Closed,
}

/// Encodes `event` and hands it to the socket's queue, waiting for room.
/// A close is sent through a clone: the session is spent by closing.
async fn write(
    session: &mut actix_ws::Session,
    event: &ServerEvent,
) -> Result<(), actix_ws::Closed> {
    match protocol::encode(event) {
        Outgoing::Text(text) => session.text(text).await,
        Outgoing::Ping => session.ping(b"").await,
        Outgoing::Pong(payload) => session.pong(&payload).await,
        Outgoing::Close { code, reason } => session.clone().close(close_reason(code, reason)).await,
    }
}

/// Writes `event` if the socket's queue has room now.
fn write_now(session: &mut actix_ws::Session, event: ServerEvent) -> Written {
    match write(session, &event).now_or_never() {
        Some(Ok(())) => Written::Sent,
        Some(Err(_)) => Written::Closed,
        None => Written::Busy(event),
    }
}

fn close_reason(code: u16, reason: &str) -> Option<CloseReason> {
    Some(CloseReason {
        code: code.into(),
        description: Some(reason.to_owned()),
    })
}

impl SocketOutbox {
    pub fn new(session: actix_ws::Session, bound: usize) -> Self {
        Self {
            session: Some(session),
            backlog: None,
            bound: bound.max(1),
        }
    }
}

impl Outbox for SocketOutbox {
    fn push(&mut self, event: ServerEvent) -> Result<(), OutboxError> {
        let Some(session) = &mut self.session else {
            return Err(OutboxError::Closed);
        };
        if let Some(backlog) = &self.backlog {
            let mut backlog = backlog.borrow_mut();
            if backlog.closed {
                return Err(OutboxError::Closed);
            }
            if backlog.draining {
                let unfolded = match backlog.events.back_mut() {
                    Some(last) => fold_token(last, event),
                    None => Some(event),
                };
                if let Some(event) = unfolded {
                    if backlog.events.len() >= self.bound {
                        return Err(OutboxError::Full);
                    }
                    backlog.events.push_back(event);
                }
                return Ok(());
            }
        }
        let closing = matches!(event, ServerEvent::Close { .. });
        match write_now(session, event) {
            Written::Sent if closing => {
                self.session = None;
                Ok(())
            }
            Written::Sent => Ok(()),
            Written::Closed => {
                self.session = None;
                Err(OutboxError::Closed)
            }
            Written::Busy(event) => {
                let backlog = self.backlog.get_or_insert_with(Default::default);
                {
                    let mut waiting = backlog.borrow_mut();
                    waiting.events.push_back(event);
                    waiting.draining = true;
                }
                actix_web::rt::spawn(drain(session.clone(), Rc::clone(backlog)));
                Ok(())
            }
        }
    }
}

impl Drop for SocketOutbox {
    fn drop(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        if let Some(backlog) = &self.backlog {
            let mut backlog = backlog.borrow_mut();
            if backlog.draining {
                // The drain task closes the socket after the backlog.
                backlog.finish = true;
                return;
            }
        }
        // Best effort: when the socket's queue is full the close frame is
        // dropped, and the socket still ends when its last sender goes.
        let _ = session.close(None).now_or_never();
    }
}

/// Writes the backlog, in order, waiting for room; ends when it is empty.
async fn drain(mut session: actix_ws::Session, backlog: Rc<RefCell<Backlog>>) {
    loop {
        let next = {
            let mut backlog = backlog.borrow_mut();
            match backlog.events.pop_front() {
                Some(event) => event,
                None if backlog.finish => break,
                None => {
                    backlog.draining = false;
                    return;
                }
            }
        };
        // A client that stops reading altogether would hold its
        // connection (with no session or limit slot behind it) forever.
        let sent = tokio::time::timeout(DRAIN_WRITE_TIMEOUT, write(&mut session, &next)).await;
        if !matches!(sent, Ok(Ok(()))) || matches!(next, ServerEvent::Close { .. }) {
            backlog.borrow_mut().closed = true;
            return;
        }
    }
    let _ = session.close(None).await;
}
