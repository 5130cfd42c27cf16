//! The privacy API of a store, for its owners' tools (a store API token)
//! and the operator (the operator token):
//!
//! - `GET /v1/stores/{store}/conversations`: conversations, newest first.
//! - `GET /v1/stores/{store}/conversations/{id}`: one, with its messages.
//! - `DELETE /v1/stores/{store}/conversations/{id}`: erases it.
//! - `POST /v1/stores/{store}/erasures`: erases a selection, every
//!   conversation, one shopper session's, or those in which a shopper
//!   typed an email address or phone number; `"dry_run": true` only counts.
//! - `GET /v1/stores/{store}/erasures/{id}`: a request, pending or done
//!   (its receipt).
//!
//! An erasure is answered `202` once it is durable and hidden; the worker
//! carries it out shortly after.

use actix_web::{HttpRequest, HttpResponse, web};
use mikabot_actors::ids::{ConversationId, SessionId, StoreId};
use mikabot_actors::log::ConversationLog;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::AppState;
use super::catalog::{operator_json, stored_profile};
use super::error::{ApiCode, ApiError};
use super::operator::authorised_for_store;
use crate::privacy::export::conversation_json;
use crate::storage::contacts::Contact;
use crate::storage::erasure::{ErasureCounts, ErasureRequest, ErasureScope};

/// Conversations a listing gives at most.
const MAX_PAGE: usize = 200;
/// Conversations one selection may name.
const MAX_SELECTION: usize = 1000;
const MAX_ERASURE_BODY_BYTES: usize = 64 * 1024;

fn not_found() -> ApiError {
    ApiError::new(ApiCode::NotFound, "no such conversation in this store")
}

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::new(ApiCode::InvalidErasure, message.to_owned()).detail("field", field)
}

fn store_of(req: &HttpRequest, state: &AppState, raw: &str) -> Result<StoreId, ApiError> {
    authorised_for_store(req, state, raw)?;
    Ok(stored_profile(state, raw)?.id)
}

#[derive(Deserialize)]
pub struct Page {
    limit: Option<usize>,
    before: Option<String>,
}

/// `GET /v1/stores/{store}/conversations?limit=&before=`
pub async fn list(
    req: HttpRequest,
    path: web::Path<String>,
    page: web::Query<Page>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let store = store_of(&req, &state, &path)?;
    let limit = page.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let before = match &page.before {
        Some(raw) => Some(ConversationId::parse(raw).ok_or_else(|| {
            ApiError::new(ApiCode::InvalidBody, "before: expected a conversation id")
        })?),
        None => None,
    };
    let found = state
        .storage
        .blocking(move |storage| storage.conversations_of_store(&store, before, limit))
        .await
        .map_err(ApiError::internal)?;
    let next = (found.len() == limit)
        .then(|| found.last().map(|m| m.conversation.to_string()))
        .flatten();
    let conversations: Vec<Value> = found.iter().map(|m| conversation_json(m, None)).collect();
    Ok(HttpResponse::Ok().json(json!({"conversations": conversations, "next_before": next})))
}

fn conversation_id(raw: &str) -> Result<ConversationId, ApiError> {
    ConversationId::parse(raw).ok_or_else(not_found)
}

/// `GET /v1/stores/{store}/conversations/{id}`
pub async fn show(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (raw_store, raw_id) = path.into_inner();
    let store = store_of(&req, &state, &raw_store)?;
    let conversation = conversation_id(&raw_id)?;
    let found = state
        .storage
        .blocking(move |storage| {
            let Some(meta) = storage.conversation_meta(&store, conversation)? else {
                return Ok(None);
            };
            let messages = ConversationLog::history(storage, &store, conversation, usize::MAX)
                .map_err(|e| crate::storage::StorageError::Interrupted(e.to_string()))?;
            crate::privacy::export::full_conversation(storage, &meta, &messages).map(Some)
        })
        .await
        .map_err(ApiError::internal)?;
    let Some(body) = found else {
        return Err(not_found());
    };
    Ok(HttpResponse::Ok().json(body))
}

fn accepted(id: Uuid, counts: ErasureCounts) -> HttpResponse {
    HttpResponse::Accepted().json(json!({
        "request_id": id.to_string(),
        "state": "accepted",
        "counts": counts,
    }))
}

/// `DELETE /v1/stores/{store}/conversations/{id}`
pub async fn erase_one(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (raw_store, raw_id) = path.into_inner();
    let store = store_of(&req, &state, &raw_store)?;
    let conversation = conversation_id(&raw_id)?;
    let exists = {
        let store = store.clone();
        state
            .storage
            .blocking(move |storage| storage.conversation_meta(&store, conversation))
            .await
            .map_err(ApiError::internal)?
            .is_some()
    };
    if !exists {
        return Err(not_found());
    }
    let done = state
        .privacy
        .erase(ErasureScope::Conversation {
            store,
            conversation,
        })
        .await
        .map_err(ApiError::internal)?;
    Ok(accepted(done.id, done.counts))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasureBody {
    /// `selection`, `all_conversations`, `session`, `email`, `phone`.
    scope: String,
    #[serde(default)]
    conversations: Vec<String>,
    session: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

fn scope_of(store: StoreId, body: &ErasureBody) -> Result<ErasureScope, ApiError> {
    match body.scope.as_str() {
        "selection" => {
            if body.conversations.is_empty() || body.conversations.len() > MAX_SELECTION {
                return Err(invalid(
                    "conversations",
                    "expected 1 to 1000 conversation ids",
                ));
            }
            let conversations = body
                .conversations
                .iter()
                .map(|raw| ConversationId::parse(raw))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid("conversations", "a conversation id is not a UUID"))?;
            Ok(ErasureScope::Selection {
                store,
                conversations,
            })
        }
        "all_conversations" => Ok(ErasureScope::StoreConversations { store }),
        "session" => {
            let session = body
                .session
                .as_deref()
                .and_then(SessionId::parse)
                .ok_or_else(|| invalid("session", "expected a shopper session id"))?;
            Ok(ErasureScope::Session { store, session })
        }
        "email" => {
            let contact = body
                .email
                .as_deref()
                .and_then(Contact::email)
                .ok_or_else(|| invalid("email", "expected an email address"))?;
            Ok(ErasureScope::Contact {
                store: Some(store),
                contact,
            })
        }
        "phone" => {
            let contact = body
                .phone
                .as_deref()
                .and_then(Contact::phone)
                .ok_or_else(|| invalid("phone", "expected a phone number of 8 to 15 digits"))?;
            Ok(ErasureScope::Contact {
                store: Some(store),
                contact,
            })
        }
        _ => Err(invalid(
            "scope",
            "expected selection, all_conversations, session, email or phone",
        )),
    }
}

/// `POST /v1/stores/{store}/erasures`
pub async fn erase(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let expected = "{\"scope\": \"selection|all_conversations|session|email|phone\", ...}";
    let body: ErasureBody =
        operator_json(&req, &state, body, MAX_ERASURE_BODY_BYTES, expected, &path).await?;
    let store = stored_profile(&state, &path)?.id;
    let scope = scope_of(store, &body)?;
    if body.dry_run {
        let counts = state
            .privacy
            .preview(scope)
            .await
            .map_err(ApiError::internal)?;
        return Ok(HttpResponse::Ok().json(json!({"dry_run": true, "counts": counts})));
    }
    let done = state
        .privacy
        .erase(scope)
        .await
        .map_err(ApiError::internal)?;
    Ok(accepted(done.id, done.counts))
}

pub(crate) fn request_json(request: &ErasureRequest) -> Value {
    json!({
        "request_id": request.id.to_string(),
        "kind": request.kind,
        "state": if request.completed_at_ms.is_some() { "done" } else { "pending" },
        "requested_at_ms": request.requested_at_ms,
        "completed_at_ms": request.completed_at_ms,
        "counts": request.counts,
    })
}

/// `GET /v1/stores/{store}/erasures/{id}`
pub async fn erasure(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (raw_store, raw_id) = path.into_inner();
    let store = store_of(&req, &state, &raw_store)?;
    let missing = || ApiError::new(ApiCode::NotFound, "no such erasure request for this store");
    let id = Uuid::parse_str(&raw_id).map_err(|_| missing())?;
    let request = state
        .storage
        .blocking(move |storage| storage.erasure(id))
        .await
        .map_err(ApiError::internal)?
        .filter(|r| r.store.as_deref() == Some(store.as_str()))
        .ok_or_else(missing)?;
    Ok(HttpResponse::Ok().json(request_json(&request)))
}

/// Hands what a backup writes to the response, in chunks: the node holds
/// at most a few chunks of it in memory, whatever the database's size.
pub(crate) struct ChannelWriter {
    chunks: tokio::sync::mpsc::Sender<Result<web::Bytes, std::io::Error>>,
    buffer: Vec<u8>,
}

const CHUNK_BYTES: usize = 64 * 1024;

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = web::Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK_BYTES),
        ));
        self.chunks
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client left"))
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Streams the chunks a blocking writer sends as a response body.
pub(crate) fn streamed(
    write: impl FnOnce(&mut ChannelWriter) -> Result<(), String> + Send + 'static,
    content_type: &'static str,
) -> HttpResponse {
    let (chunks, receiver) = tokio::sync::mpsc::channel(4);
    let failed = chunks.clone();
    tokio::task::spawn_blocking(move || {
        let mut writer = ChannelWriter {
            chunks,
            buffer: Vec::with_capacity(CHUNK_BYTES),
        };
        let outcome = write(&mut writer)
            .and_then(|()| std::io::Write::flush(&mut writer).map_err(|e| e.to_string()));
        if let Err(error) = outcome {
            tracing::warn!(%error, "a streamed download ended early");
            // The client sees the body end short of its trailer.
            let _ = failed.blocking_send(Err(std::io::Error::other("the download failed")));
        }
    });
    let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    HttpResponse::Ok()
        .content_type(content_type)
        .streaming(body)
}

/// `POST /v1/operator/backup`: a consistent backup of the whole database,
/// streamed (`mikabot backup`).
pub async fn backup(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    super::operator::authorised(&req, &state)?;
    let storage = state.storage.clone();
    Ok(streamed(
        move |writer| {
            let summary = storage.write_backup(writer).map_err(|e| e.to_string())?;
            tracing::info!(
                entries = summary.entries,
                bytes = summary.bytes,
                "backup written"
            );
            Ok(())
        },
        "application/octet-stream",
    ))
}

/// `GET /v1/stores/{store}/export`: the store's settings, catalog and
/// conversations, streamed as JSON (`docs/privacy.md`, "Exports").
pub async fn export(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let store = store_of(&req, &state, &path)?;
    Ok(export_response(&state, store))
}

/// A store's export as a download.
pub(crate) fn export_response(state: &AppState, store: StoreId) -> HttpResponse {
    let storage = state.storage.clone();
    let now = state.privacy.clock().now_ms();
    let name = format!("attachment; filename=\"{}-export.json\"", store.as_str());
    let mut response = streamed(
        move |writer| {
            crate::privacy::export::export_store(&storage, &store, now, writer)
                .map_err(|e| e.to_string())
        },
        "application/json",
    );
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&name) {
        response
            .headers_mut()
            .insert(actix_web::http::header::CONTENT_DISPOSITION, value);
    }
    response
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestrictionBody {
    restricted: bool,
}

/// `POST /v1/stores/{store}/conversations/{id}/restriction` with
/// `{"restricted": true|false}`: kept, but out of every prompt and any
/// analytics, or back.
pub async fn restriction(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (raw_store, raw_id) = path.into_inner();
    let body: RestrictionBody = operator_json(
        &req,
        &state,
        body,
        1024,
        "{\"restricted\": true|false}",
        &raw_store,
    )
    .await?;
    let store = stored_profile(&state, &raw_store)?.id;
    let conversation = conversation_id(&raw_id)?;
    let restricted = body.restricted;
    let changed = state
        .storage
        .blocking(move |storage| storage.set_restricted(&store, conversation, restricted))
        .await
        .map_err(ApiError::internal)?;
    if !changed {
        return Err(not_found());
    }
    Ok(HttpResponse::Ok().json(json!({"restricted": restricted})))
}

/// `GET /v1/operator/retention/preview`: what the next retention sweep
/// would remove, as counts by category (the dry run).
pub async fn retention_preview(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    super::operator::authorised(&req, &state)?;
    let preview = state
        .retention
        .send(crate::privacy::retention::Preview)
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(json!({"dry_run": true, "counts": preview})))
}
