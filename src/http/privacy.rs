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
use mikabot_actors::log::{ConversationLog, ConversationMeta, StoredMessage};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::AppState;
use super::catalog::{operator_json, stored_profile};
use super::error::{ApiCode, ApiError};
use super::operator::authorised_for_store;
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

fn conversation_json(meta: &ConversationMeta) -> Value {
    json!({
        "id": meta.conversation.to_string(),
        "session_id": meta.session.to_string(),
        "started_at_ms": meta.started_at_ms,
        "language": meta.language.code(),
        "page_url": meta.page_url,
        "referrer": meta.referrer,
        "browser": meta.client.browser,
        "device": meta.client.device,
        "address": meta.ip,
    })
}

pub(crate) fn message_json(message: &StoredMessage) -> Value {
    json!({
        "id": message.id.to_string(),
        "role": match message.role {
            mikabot_actors::prompt::Role::Shopper => "shopper",
            mikabot_actors::prompt::Role::Assistant => "assistant",
        },
        "text": message.text,
        "at_ms": message.at_ms,
        "incomplete": message.reply.as_ref().map(|r| r.incomplete),
        "cards": message.reply.as_ref().map(|r| r.cards.iter().map(|c| c.id.0.clone()).collect::<Vec<_>>()),
    })
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
    let conversations: Vec<Value> = found.iter().map(conversation_json).collect();
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
            Ok(Some((meta, messages)))
        })
        .await
        .map_err(ApiError::internal)?;
    let Some((meta, messages)) = found else {
        return Err(not_found());
    };
    let mut body = conversation_json(&meta);
    body["messages"] = messages.iter().map(message_json).collect();
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
