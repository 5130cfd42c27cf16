//! `GET /v1/widget/ws?store=ID`: the shopper's socket. Upgrades with
//! actix-ws, refuses unknown stores and address floods with a close code,
//! then hands the socket to one `WidgetSession` actor: inbound frames are
//! decoded into events on the way in, and a writer task owning the socket
//! encodes the actor's events from a bounded channel on the way out.

use std::net::IpAddr;

use actix::{Actor, AsyncContext};
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseReason, ProtocolError};
use futures_util::StreamExt;
use mikabot_actors::events::{ClientEvent, ErrorCode, ErrorEvent, ServerEvent, close_code};
use mikabot_actors::ids::StoreId;
use mikabot_actors::session::{Connection, SessionDeps, WidgetSession};
use tokio::sync::mpsc;

use crate::http::AppState;
use crate::http::client::{anonymise, classify};
use crate::protocol::{self, Outgoing};

/// Frames larger than this end the connection (close 1009); frames between
/// the protocol limit and this get a `frame_too_large` error and the
/// connection stays.
fn transport_limit(max_frame_bytes: usize) -> usize {
    max_frame_bytes.saturating_mul(4).max(64 * 1024)
}

fn store_param(req: &HttpRequest) -> Option<StoreId> {
    let query =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok()?;
    StoreId::parse(query.get("store")?).ok()
}

fn client_ip(req: &HttpRequest, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for
        && let Some(ip) = req
            .connection_info()
            .realip_remote_addr()
            .and_then(|s| s.parse::<IpAddr>().ok())
    {
        return Some(ip);
    }
    req.peer_addr().map(|addr| addr.ip())
}

/// The socket handler.
pub async fn socket(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let Ok((response, session, stream)) = actix_ws::handle(&req, body) else {
        return Ok(
            HttpResponse::BadRequest().json(serde_json::json!({"error": {
                "code": "websocket_required",
                "message": "this endpoint speaks WebSocket: send an Upgrade: websocket request",
            }})),
        );
    };
    let ip = client_ip(&req, state.trust_forwarded_for);

    let catalog = store_param(&req).and_then(|id| state.stores.get(&id).map(|addr| (id, addr)));
    let Some((store, catalog)) = catalog else {
        refuse(
            session,
            ErrorEvent::new(ErrorCode::UnknownStore, "no such store on this node"),
            close_code::UNKNOWN_STORE,
        );
        return Ok(response);
    };
    if let Some(ip) = ip
        && let Err(not_until) = state.new_sessions.check_key(&ip)
    {
        let mut error = ErrorEvent::new(
            ErrorCode::TooManySessions,
            "too many new sessions from this address; retry later",
        );
        error.retry_after = Some(not_until.wait_time_from(governor::clock::Clock::now(
            &governor::clock::DefaultClock::default(),
        )));
        refuse(session, error, close_code::TOO_MANY_SESSIONS);
        return Ok(response);
    }

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
    };
    let deps = SessionDeps {
        store,
        catalog,
        log: state.log.clone(),
        model: state.model.clone(),
        live: state.live.clone(),
        settings: state.session_settings.clone(),
    };
    let (tx, rx) = mpsc::channel(state.outgoing_buffer);
    actix_web::rt::spawn(write_frames(session, rx));

    let max_frame_bytes = state.max_frame_bytes;
    let limit = transport_limit(max_frame_bytes);
    let inbound = stream
        .max_frame_size(limit)
        .aggregate_continuations()
        .max_continuation_size(limit)
        .map(move |item| inbound_event(item, max_frame_bytes));
    WidgetSession::create(|ctx| {
        ctx.add_stream(inbound);
        WidgetSession::new(deps, connection, tx)
    });
    Ok(response)
}

/// Tells the client why and closes, without starting a session.
fn refuse(mut session: actix_ws::Session, error: ErrorEvent, code: u16) {
    let reason = error.code.as_str();
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
        Err(ProtocolError::Overflow) => ClientEvent::Broken {
            code: ErrorCode::FrameTooLarge,
            close: close_code::MESSAGE_TOO_BIG,
            message: "the frame is far above the size limit".into(),
        },
        Err(error) => ClientEvent::Broken {
            code: ErrorCode::ProtocolError,
            close: close_code::PROTOCOL_ERROR,
            message: format!("WebSocket protocol error: {error}"),
        },
    }
}

/// Owns the socket's sending half: encodes each event and writes it, in
/// order, until a close or until the session drops its sender.
async fn write_frames(mut session: actix_ws::Session, mut events: mpsc::Receiver<ServerEvent>) {
    while let Some(event) = events.recv().await {
        let sent = match protocol::encode(&event) {
            Outgoing::Text(text) => session.text(text).await,
            Outgoing::Ping => session.ping(b"").await,
            Outgoing::Pong(payload) => session.pong(&payload).await,
            Outgoing::Close { code, reason } => {
                let _ = session
                    .close(Some(CloseReason {
                        code: code.into(),
                        description: Some(reason.to_owned()),
                    }))
                    .await;
                return;
            }
        };
        if sent.is_err() {
            return;
        }
    }
    let _ = session.close(None).await;
}
