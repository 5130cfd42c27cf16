//! `GET /v1/echo`: a WebSocket that echoes every message back, on the
//! widget socket's own transport (the same frame and message limits,
//! fragment reassembly, UTF-8 check and close codes). It exists to prove
//! that transport against the Autobahn test suite (`scripts/autobahn`),
//! and is served only when `server.echo_socket` is on: it is off by
//! default, and an operator has no reason to turn it on.

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseReason};
use futures_util::StreamExt;

use crate::http::AppState;
use crate::http::error::{ApiCode, ApiError};
use crate::http::frames;
use crate::http::widget::{transport, transport_failure};

/// The handler.
pub async fn echo(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    if !state.echo_socket {
        return Err(ApiError::new(ApiCode::NotFound, "no such endpoint: GET /v1/echo").into());
    }
    let body = frames::checked(&req, body).await?;
    let Ok((response, mut session, stream)) = actix_ws::handle(&req, body) else {
        return Err(ApiError::new(
            ApiCode::WebsocketRequired,
            "this endpoint speaks WebSocket: send an Upgrade: websocket request",
        )
        .into());
    };
    let mut messages = transport(stream, state.max_frame_bytes);
    actix_web::rt::spawn(async move {
        while let Some(message) = messages.next().await {
            let sent = match message {
                Ok(AggregatedMessage::Text(text)) => session.text(text).await,
                Ok(AggregatedMessage::Binary(bytes)) => session.binary(bytes).await,
                Ok(AggregatedMessage::Ping(payload)) => session.pong(&payload).await,
                Ok(AggregatedMessage::Pong(_)) => Ok(()),
                Ok(AggregatedMessage::Close(reason)) => {
                    let _ = session.close(reason).await;
                    return;
                }
                Err(error) => {
                    let (code, _) = transport_failure(&error);
                    let reason = CloseReason {
                        code: code.closing().into(),
                        description: Some(code.as_str().to_owned()),
                    };
                    let _ = session.close(Some(reason)).await;
                    return;
                }
            };
            if sent.is_err() {
                return;
            }
        }
    });
    Ok(response)
}
