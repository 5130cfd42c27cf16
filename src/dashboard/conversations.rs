//! A store's conversations and privacy in the dashboard: the list and one
//! transcript (agents and owners), deleting one, erasing a shopper's
//! conversations by the email address or phone number they typed, or every
//! conversation, with a count first; the store's export and erasure
//! receipts (owners); an account's own export.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use mikabot_actors::ids::ConversationId;
use mikabot_actors::log::ConversationLog;
use mikabot_actors::prompt::Role as Speaker;
use serde::Deserialize;

use super::pages::{
    Chrome, ConversationPage, ConversationRow, Conversations, Errors, Found, MessageRow,
    PrivacyPage, ReceiptRow, render,
};
use super::stores::{head, member};
use super::visitor::{CsrfOnly, Visitor, form};
use super::{DashError, ok};
use crate::accounts::validate::FieldError;
use crate::accounts::{Role, format_time};
use crate::http::AppState;
use crate::storage::StorageError;
use crate::storage::contacts::Contact;
use crate::storage::erasure::ErasureScope;

/// Conversations on one page of the list.
const PAGE: usize = 50;

fn time_of(ms: u64) -> String {
    format_time(ms / 1000)
}

/// The path of a page URL, or "".
fn page_path(url: Option<&str>) -> String {
    url.and_then(|u| u.split_once("://").map(|(_, rest)| rest))
        .and_then(|rest| rest.find('/').map(|i| rest[i..].to_owned()))
        .unwrap_or_default()
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    before: Option<String>,
}

/// `GET /dashboard/stores/{store}/conversations`
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let (_, profile, role) = member(&visitor, &state, &path, Role::Agent)?;
    let before = match query.before.as_deref() {
        Some(raw) => Some(ConversationId::parse(raw).ok_or(DashError::BadForm)?),
        None => None,
    };
    let id = profile.id.clone();
    let found = state
        .storage
        .blocking(move |storage| storage.conversations_of_store(&id, before, PAGE))
        .await
        .map_err(DashError::internal)?;
    let next = (found.len() == PAGE)
        .then(|| found.last().map(|m| m.conversation.to_string()))
        .flatten();
    let rows = found
        .iter()
        .map(|meta| ConversationRow {
            id: meta.conversation.to_string(),
            started: time_of(meta.started_at_ms),
            language: meta.language.code(),
            page: page_path(meta.page_url.as_deref()),
            device: meta.client.device.clone(),
        })
        .collect();
    let html = render(&Conversations {
        chrome: Chrome::of(&visitor, format!("{}: conversations", profile.name)),
        store: head(&profile),
        role_is_owner: role == Role::Owner,
        rows,
        next,
        paged: before.is_some(),
    })?;
    Ok(ok(visitor, html))
}

/// `GET /dashboard/stores/{store}/conversations/{conversation}`
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, DashError> {
    let (raw_store, raw_id) = path.into_inner();
    let visitor = Visitor::of(&req, &state)?;
    let (_, profile, role) = member(&visitor, &state, &raw_store, Role::Agent)?;
    let conversation = ConversationId::parse(&raw_id).ok_or(DashError::NotFound)?;
    let id = profile.id.clone();
    let found = state
        .storage
        .blocking(move |storage| {
            let Some(meta) = storage.conversation_meta(&id, conversation)? else {
                return Ok(None);
            };
            let messages = ConversationLog::history(storage, &id, conversation, usize::MAX)
                .map_err(|e| StorageError::Interrupted(e.to_string()))?;
            let restricted = storage.is_restricted(&id, conversation)?;
            let objected = storage.objection(&id, meta.session)?.is_some();
            Ok(Some((meta, messages, restricted, objected)))
        })
        .await
        .map_err(DashError::internal)?;
    let (meta, messages, restricted, objected) = found.ok_or(DashError::NotFound)?;
    let messages = messages
        .into_iter()
        .map(|m| MessageRow {
            role: match m.role {
                Speaker::Shopper => "shopper",
                Speaker::Assistant => "assistant",
            },
            who: match m.role {
                Speaker::Shopper => "Shopper",
                Speaker::Assistant => "Assistant",
            },
            at: time_of(m.at_ms),
            incomplete: m.reply.as_ref().is_some_and(|r| r.incomplete),
            text: m.text,
        })
        .collect();
    let html = render(&ConversationPage {
        chrome: Chrome::of(&visitor, format!("{}: a conversation", profile.name)),
        store: head(&profile),
        role_is_owner: role == Role::Owner,
        id: meta.conversation.to_string(),
        started: time_of(meta.started_at_ms),
        language: meta.language.code(),
        page: page_path(meta.page_url.as_deref()),
        device: meta.client.device.clone(),
        restricted,
        objected,
        messages,
    })?;
    Ok(ok(visitor, html))
}

/// `POST /dashboard/stores/{store}/conversations/{conversation}/delete`
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let (raw_store, raw_id) = path.into_inner();
    let visitor = Visitor::of(&req, &state)?;
    let (_, profile, _) = member(&visitor, &state, &raw_store, Role::Owner)?;
    let body: CsrfOnly = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    let conversation = ConversationId::parse(&raw_id).ok_or(DashError::NotFound)?;
    let id = profile.id.clone();
    let exists = state
        .storage
        .blocking(move |storage| storage.conversation_meta(&id, conversation))
        .await
        .map_err(DashError::internal)?
        .is_some();
    if !exists {
        return Err(DashError::NotFound);
    }
    state
        .privacy
        .erase(ErasureScope::Conversation {
            store: profile.id.clone(),
            conversation,
        })
        .await
        .map_err(DashError::internal)?;
    Ok(visitor.redirect(&format!("/dashboard/stores/{}/conversations", profile.id)))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RestrictBody {
    csrf: String,
    /// `yes` or `no`.
    restricted: String,
}

/// `POST /dashboard/stores/{store}/conversations/{conversation}/restrict`
pub async fn restrict(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let (raw_store, raw_id) = path.into_inner();
    let visitor = Visitor::of(&req, &state)?;
    let (_, profile, _) = member(&visitor, &state, &raw_store, Role::Owner)?;
    let body: RestrictBody = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    let restricted = match body.restricted.as_str() {
        "yes" => true,
        "no" => false,
        _ => return Err(DashError::BadForm),
    };
    let conversation = ConversationId::parse(&raw_id).ok_or(DashError::NotFound)?;
    let id = profile.id.clone();
    let found = state
        .storage
        .blocking(move |storage| storage.set_restricted(&id, conversation, restricted))
        .await
        .map_err(DashError::internal)?;
    if !found {
        return Err(DashError::NotFound);
    }
    Ok(visitor.redirect(&format!(
        "/dashboard/stores/{}/conversations/{conversation}",
        profile.id
    )))
}

async fn privacy_page(
    visitor: &Visitor,
    state: &AppState,
    profile: &mikabot_actors::catalog::StoreProfile,
    kind: String,
    value: String,
    preview: Option<Found>,
    errors: Errors,
) -> Result<String, DashError> {
    let id = profile.id.clone();
    let receipts = state
        .storage
        .blocking(move |storage| storage.erasure_requests_of(&id, 50))
        .await
        .map_err(DashError::internal)?
        .into_iter()
        .map(|r| ReceiptRow {
            requested: time_of(r.requested_at_ms),
            kind: r.kind,
            state: if r.completed_at_ms.is_some() {
                "done"
            } else {
                "pending"
            },
            conversations: r.counts.conversations,
            messages: r.counts.messages,
            completed: r.completed_at_ms.map(time_of).unwrap_or_default(),
        })
        .collect();
    render(&PrivacyPage {
        chrome: Chrome::of(visitor, format!("{}: privacy", profile.name)),
        store: head(profile),
        kind,
        value,
        preview,
        errors,
        receipts,
    })
}

/// `GET /dashboard/stores/{store}/privacy`
pub async fn privacy(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let (_, profile, _) = member(&visitor, &state, &path, Role::Owner)?;
    let html = privacy_page(
        &visitor,
        &state,
        &profile,
        "email".into(),
        String::new(),
        None,
        Errors::default(),
    )
    .await?;
    Ok(ok(visitor, html))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct EraseBody {
    csrf: String,
    /// `email`, `phone` or `all`.
    kind: String,
    value: String,
    /// `yes` after the count was shown; for `all`, the store's id.
    confirm: String,
}

/// `POST /dashboard/stores/{store}/privacy/erase`: without `confirm`, the
/// count of what would go; with it, the erasure.
pub async fn erase(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let (_, profile, _) = member(&visitor, &state, &path, Role::Owner)?;
    let body: EraseBody = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    let refuse = |field: &'static str, message: &str| Errors(vec![FieldError::new(field, message)]);
    let scope = match body.kind.as_str() {
        "all" => {
            if body.confirm.trim() != profile.id.as_str() {
                let errors = refuse(
                    "confirm",
                    "type the store's id exactly to erase every conversation",
                );
                let html = privacy_page(
                    &visitor,
                    &state,
                    &profile,
                    "email".into(),
                    String::new(),
                    None,
                    errors,
                )
                .await?;
                return Ok(visitor.page(StatusCode::UNPROCESSABLE_ENTITY, html));
            }
            ErasureScope::StoreConversations {
                store: profile.id.clone(),
            }
        }
        kind @ ("email" | "phone") => {
            let contact = if kind == "email" {
                Contact::email(&body.value)
            } else {
                Contact::phone(&body.value)
            };
            let Some(contact) = contact else {
                let message = if kind == "email" {
                    "enter an email address, like jane@example.com"
                } else {
                    "enter a phone number of 8 to 15 digits"
                };
                let html = privacy_page(
                    &visitor,
                    &state,
                    &profile,
                    kind.into(),
                    body.value.clone(),
                    None,
                    refuse("value", message),
                )
                .await?;
                return Ok(visitor.page(StatusCode::UNPROCESSABLE_ENTITY, html));
            };
            let scope = ErasureScope::Contact {
                store: Some(profile.id.clone()),
                contact,
            };
            if body.confirm != "yes" {
                let counts = state
                    .privacy
                    .preview(scope)
                    .await
                    .map_err(DashError::internal)?;
                let found = Found {
                    conversations: counts.conversations,
                    messages: counts.messages,
                };
                let html = privacy_page(
                    &visitor,
                    &state,
                    &profile,
                    kind.into(),
                    body.value.clone(),
                    Some(found),
                    Errors::default(),
                )
                .await?;
                return Ok(ok(visitor, html));
            }
            scope
        }
        _ => return Err(DashError::BadForm),
    };
    let accepted = state
        .privacy
        .erase(scope)
        .await
        .map_err(DashError::internal)?;
    let mut visitor = visitor;
    visitor.notices.push(format!(
        "{} conversations are being erased.",
        accepted.counts.conversations
    ));
    let html = privacy_page(
        &visitor,
        &state,
        &profile,
        "email".into(),
        String::new(),
        None,
        Errors::default(),
    )
    .await?;
    Ok(ok(visitor, html))
}

fn attachment(response: &mut HttpResponse, name: &str) {
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
}

/// `GET /dashboard/stores/{store}/export`
pub async fn export(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let (_, profile, _) = member(&visitor, &state, &path, Role::Owner)?;
    let response = crate::http::privacy::export_response(&state, profile.id.clone());
    Ok(visitor.respond(response))
}

/// `GET /dashboard/account/export`
pub async fn account_export(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let me = visitor.require()?.clone();
    let now = state.privacy.clock().now_ms();
    let account = me.account.clone();
    let export = state
        .storage
        .blocking(move |storage| crate::privacy::export::export_account(storage, &account, now))
        .await
        .map_err(DashError::internal)?;
    let mut response = HttpResponse::Ok().json(export);
    attachment(&mut response, "account-export.json");
    Ok(visitor.respond(response))
}
