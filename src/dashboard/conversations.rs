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
    CardRow, Chrome, ConversationPage, ConversationRow, Conversations, Errors, Found, ListFilters,
    MessageRow, PrivacyPage, ReceiptRow, render,
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
    url.map(mikabot_actors::page::path_of).unwrap_or_default()
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct ListQuery {
    before: Option<String>,
    /// First and last day shown (`YYYY-MM-DD`, UTC), inclusive.
    from: String,
    to: String,
    /// A language code, or "" for all.
    language: String,
    /// `yes`, `no` or "" (either): a person from the store took part (wrote
    /// in it, or stopped a reply by taking it over).
    taken_over: String,
    /// `yes`, `no` or "": the assistant showed products.
    products: String,
    /// Words the conversation's messages contain (any case).
    q: String,
}

/// Conversations a list request looks at at most (newest first) before it
/// answers with what it found and a link to go on.
const MAX_EXAMINED: usize = 2000;

/// Longest free-text filter, in characters (the form's `maxlength`).
const MAX_QUERY_CHARS: usize = 200;

/// A list filter, checked.
struct Filter {
    from_ms: Option<u64>,
    to_ms: Option<u64>,
    language: Option<mikabot_actors::language::Language>,
    taken_over: Option<bool>,
    products: Option<bool>,
    words: Vec<String>,
}

impl Filter {
    fn of(query: &ListQuery) -> Result<Self, DashError> {
        let day = |raw: &str, end: bool| -> Result<Option<u64>, DashError> {
            if raw.trim().is_empty() {
                return Ok(None);
            }
            let days = crate::accounts::days_from_date(raw.trim()).ok_or(DashError::BadForm)?;
            let start = days * 86_400_000;
            Ok(Some(if end { start + 86_400_000 - 1 } else { start }))
        };
        let yes_no = |raw: &str| match raw {
            "" => Ok(None),
            "yes" => Ok(Some(true)),
            "no" => Ok(Some(false)),
            _ => Err(DashError::BadForm),
        };
        if query.q.chars().count() > MAX_QUERY_CHARS {
            return Err(DashError::BadForm);
        }
        Ok(Self {
            from_ms: day(&query.from, false)?,
            to_ms: day(&query.to, true)?,
            language: match query.language.as_str() {
                "" => None,
                code => Some(
                    mikabot_actors::language::Language::ALL
                        .into_iter()
                        .find(|l| l.code() == code)
                        .ok_or(DashError::BadForm)?,
                ),
            },
            taken_over: yes_no(&query.taken_over)?,
            products: yes_no(&query.products)?,
            words: query
                .q
                .split_whitespace()
                .take(8)
                .map(str::to_lowercase)
                .collect(),
        })
    }

    /// Whether only the conversation's record is needed to decide.
    fn needs_messages(&self) -> bool {
        self.taken_over.is_some() || self.products.is_some() || !self.words.is_empty()
    }

    fn admits_meta(&self, meta: &mikabot_actors::log::ConversationMeta) -> bool {
        self.from_ms.is_none_or(|from| meta.started_at_ms >= from)
            && self.to_ms.is_none_or(|to| meta.started_at_ms <= to)
            && self.language.is_none_or(|l| meta.language == l)
    }

    fn admits_messages(&self, messages: &[mikabot_actors::log::StoredMessage]) -> bool {
        let taken = messages.iter().any(|m| {
            m.role == Speaker::Agent
                || m.reply.as_ref().is_some_and(|r| {
                    r.finish == Some(mikabot_actors::model::FinishReason::TakenOver)
                })
        });
        let products = messages
            .iter()
            .any(|m| m.reply.as_ref().is_some_and(|r| !r.cards.is_empty()));
        let text: Vec<String> = messages.iter().map(|m| m.text.to_lowercase()).collect();
        self.taken_over.is_none_or(|want| want == taken)
            && self.products.is_none_or(|want| want == products)
            && self
                .words
                .iter()
                .all(|word| text.iter().any(|t| t.contains(word.as_str())))
    }
}

/// One page of a store's conversations that pass `filter`, newest first,
/// older than `before`; and where to go on from, if more may match.
fn filtered(
    storage: &crate::storage::Storage,
    store: &mikabot_actors::ids::StoreId,
    mut before: Option<ConversationId>,
    filter: &Filter,
) -> Result<
    (
        Vec<mikabot_actors::log::ConversationMeta>,
        Option<ConversationId>,
    ),
    StorageError,
> {
    let mut found = Vec::new();
    let mut examined = 0;
    loop {
        let batch = storage.conversations_of_store(store, before, PAGE)?;
        let exhausted = batch.len() < PAGE;
        for meta in batch {
            examined += 1;
            before = Some(meta.conversation);
            if !filter.admits_meta(&meta) {
                continue;
            }
            if filter.needs_messages() {
                // The text is sealed: each conversation is opened to look.
                let messages =
                    ConversationLog::history(storage, store, meta.conversation, usize::MAX)
                        .map_err(|e| StorageError::Interrupted(e.to_string()))?;
                if !filter.admits_messages(&messages) {
                    continue;
                }
            }
            found.push(meta);
            if found.len() == PAGE {
                return Ok((found, before));
            }
        }
        if exhausted {
            return Ok((found, None));
        }
        if examined >= MAX_EXAMINED {
            return Ok((found, before));
        }
    }
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
    let filter = Filter::of(&query)?;
    let id = profile.id.clone();
    let (found, next) = state
        .storage
        .blocking(move |storage| filtered(storage, &id, before, &filter))
        .await
        .map_err(DashError::internal)?;
    let query = query.into_inner();
    let next = next.map(|after| {
        let pairs = [
            ("before", after.to_string()),
            ("from", query.from.clone()),
            ("to", query.to.clone()),
            ("language", query.language.clone()),
            ("taken_over", query.taken_over.clone()),
            ("products", query.products.clone()),
            ("q", query.q.clone()),
        ];
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    });
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
        filters: ListFilters {
            from: query.from,
            to: query.to,
            language: query.language,
            taken_over: query.taken_over,
            products: query.products,
            q: query.q,
        },
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
                Speaker::Agent => "agent",
            },
            who: match m.role {
                Speaker::Shopper => "Shopper".to_owned(),
                Speaker::Assistant => "Assistant".to_owned(),
                Speaker::Agent => m.author.clone().unwrap_or_else(|| "Store".to_owned()),
            },
            at: time_of(m.at_ms),
            incomplete: m.reply.as_ref().is_some_and(|r| r.incomplete),
            finish: m
                .reply
                .as_ref()
                .and_then(|r| r.finish)
                .filter(|f| *f != mikabot_actors::model::FinishReason::Stop)
                .map(|f| f.as_str()),
            cards: m
                .reply
                .as_ref()
                .map(|r| {
                    r.cards
                        .iter()
                        .map(|card| CardRow {
                            name: card.name.clone(),
                            price: format!(
                                "{} {}",
                                card.price.decimal(),
                                card.price.currency.code()
                            ),
                            url: (card.url.starts_with("https://")
                                || card.url.starts_with("http://"))
                            .then(|| card.url.clone()),
                        })
                        .collect()
                })
                .unwrap_or_default(),
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
    erase_listed(&state, &profile.id, vec![conversation]).await?;
    Ok(visitor.redirect(&format!("/dashboard/stores/{}/conversations", profile.id)))
}

/// Erases conversations of `store` through the erasure worker, if every
/// one of them is there: one that is not this store's (or no longer
/// exists) refuses them all, so a stale or forged list deletes nothing.
async fn erase_listed(
    state: &AppState,
    store: &mikabot_actors::ids::StoreId,
    conversations: Vec<ConversationId>,
) -> Result<(), DashError> {
    let (id, wanted) = (store.clone(), conversations.clone());
    let all_here = state
        .storage
        .blocking(move |storage| {
            for conversation in wanted {
                if storage.conversation_meta(&id, conversation)?.is_none() {
                    return Ok(false);
                }
            }
            Ok(true)
        })
        .await
        .map_err(DashError::internal)?;
    if !all_here {
        return Err(DashError::NotFound);
    }
    let scope = match conversations.as_slice() {
        [conversation] => ErasureScope::Conversation {
            store: store.clone(),
            conversation: *conversation,
        },
        _ => ErasureScope::Selection {
            store: store.clone(),
            conversations,
        },
    };
    state
        .privacy
        .erase(scope)
        .await
        .map_err(DashError::internal)?;
    Ok(())
}

/// Conversations one selection may delete.
const MAX_SELECTION: usize = 500;

/// `POST /dashboard/stores/{store}/conversations/delete`: the checked
/// conversations of the list (`id` repeated), through the erasure worker.
pub async fn delete_selection(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let (_, profile, _) = member(&visitor, &state, &path, Role::Owner)?;
    let pairs: Vec<(String, String)> = form(&body)?;
    let csrf = pairs
        .iter()
        .find(|(k, _)| k == "csrf")
        .map_or("", |(_, v)| v.as_str());
    visitor.check_csrf(&req, &state, csrf)?;
    let mut conversations = Vec::new();
    for (_, raw) in pairs.iter().filter(|(k, _)| k == "id") {
        let id = ConversationId::parse(raw).ok_or(DashError::BadForm)?;
        if !conversations.contains(&id) {
            conversations.push(id);
        }
    }
    if conversations.is_empty() || conversations.len() > MAX_SELECTION {
        return Err(DashError::BadForm);
    }
    erase_listed(&state, &profile.id, conversations).await?;
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
