//! Exports (access and portability): a store's settings, catalog and
//! conversations with their messages, streamed as one JSON document with
//! bounded memory; an account's own data. The schemas are in
//! `docs/privacy.md`, "Exports".

use std::io::Write;

use mikabot_actors::catalog::{Corner, Product, StoreProfile};
use mikabot_actors::ids::StoreId;
use mikabot_actors::log::{ConversationLog, ConversationMeta, StoredMessage};
use mikabot_actors::prompt::Role;
use serde_json::{Value, json};

use crate::accounts::Account;
use crate::storage::{Storage, StorageError};

/// The schema names, versioned.
pub const STORE_SCHEMA: &str = "mikabot.store-export/1";
pub const ACCOUNT_SCHEMA: &str = "mikabot.account-export/1";
pub const CONVERSATION_SCHEMA: &str = "mikabot.conversation-export/1";

/// Conversations read from storage at a time.
const PAGE: usize = 100;

fn io(error: std::io::Error) -> StorageError {
    StorageError::Interrupted(format!("writing the export: {error}"))
}

fn put(out: &mut impl Write, value: &Value) -> Result<(), StorageError> {
    serde_json::to_writer(&mut *out, value).map_err(|e| io(e.into()))
}

pub fn profile_json(profile: &StoreProfile) -> Value {
    json!({
        "id": profile.id.as_str(),
        "name": profile.name,
        "url": profile.url,
        "instructions": profile.instructions,
        "default_language": profile.default_language.code(),
        "currency": profile.currency.code(),
        "allowed_origins": profile.allowed_origins,
        "synonyms": profile.synonyms,
        "retention_days": profile.retention_days,
        "branding": {
            "color": profile.branding.color,
            "title": profile.branding.title,
            "avatar_url": profile.branding.avatar_url,
            "greeting": profile.branding.greeting,
            "position": match profile.branding.position {
                Corner::Left => "left",
                Corner::Right => "right",
            },
        },
    })
}

pub fn product_json(product: &Product) -> Value {
    json!({
        "id": product.id.0,
        "name": product.name,
        "brand": product.brand,
        "category": product.category,
        "description": product.description,
        "tags": product.tags,
        "price_minor": product.price.minor,
        "price_max_minor": product.price_max,
        "currency": product.price.currency.code(),
        "image_url": product.image_url,
        "url": product.url,
        "in_stock": product.in_stock,
    })
}

pub fn message_json(message: &StoredMessage) -> Value {
    json!({
        "id": message.id.to_string(),
        "role": match message.role {
            Role::Shopper => "shopper",
            Role::Assistant => "assistant",
            Role::Agent => "agent",
        },
        "author": message.author,
        "text": message.text,
        "at_ms": message.at_ms,
        "incomplete": message.reply.as_ref().map(|r| r.incomplete),
        "product_ids": message.reply.as_ref().map(|r| r.cards.iter().map(|c| c.id.0.clone()).collect::<Vec<_>>()),
    })
}

pub fn conversation_json(meta: &ConversationMeta, messages: Option<&[StoredMessage]>) -> Value {
    let mut value = json!({
        "id": meta.conversation.to_string(),
        "started_at_ms": meta.started_at_ms,
        "language": meta.language.code(),
        "page_url": meta.page_url,
        "referrer": meta.referrer,
        "browser": meta.client.browser,
        "device": meta.client.device,
        "address": meta.ip,
    });
    if let Some(messages) = messages {
        value["messages"] = messages.iter().map(message_json).collect();
    }
    value
}

/// A conversation with its messages and its rights' state: restricted, and
/// when its shopper objected.
pub fn full_conversation(
    storage: &Storage,
    meta: &ConversationMeta,
    messages: &[StoredMessage],
) -> Result<Value, StorageError> {
    let mut value = conversation_json(meta, Some(messages));
    value["restricted"] = storage
        .is_restricted(&meta.store, meta.conversation)?
        .into();
    value["objected_at_ms"] = storage.objection(&meta.store, meta.session)?.into();
    Ok(value)
}

fn history(storage: &Storage, meta: &ConversationMeta) -> Result<Vec<StoredMessage>, StorageError> {
    ConversationLog::history(storage, &meta.store, meta.conversation, usize::MAX)
        .map_err(|e| StorageError::Interrupted(e.to_string()))
}

/// Writes a store's export to `out`: settings, catalog, knowledge pages and
/// golden questions, then every
/// conversation that is not erased, newest first, with its messages. At
/// most one page of conversations is held at a time.
pub fn export_store(
    storage: &Storage,
    store: &StoreId,
    now_ms: u64,
    mut out: impl Write,
) -> Result<(), StorageError> {
    let profile = storage
        .store(store)?
        .ok_or_else(|| StorageError::Interrupted("no such store".into()))?;
    write!(
        out,
        "{{\"schema\":\"{STORE_SCHEMA}\",\"exported_at_ms\":{now_ms},\"store\":"
    )
    .map_err(io)?;
    put(&mut out, &profile_json(&profile))?;
    out.write_all(b",\"catalog\":[").map_err(io)?;
    let mut first = true;
    storage.for_each_product(store, |product| {
        if !std::mem::take(&mut first) {
            out.write_all(b",").map_err(io)?;
        }
        put(&mut out, &product_json(&product))
    })?;
    out.write_all(b"],\"pages\":").map_err(io)?;
    let pages: Vec<Value> = storage
        .pages(store)?
        .iter()
        .map(|p| {
            json!({
                "slug": p.slug, "title": p.title, "url": p.url,
                "body": p.body, "updated_at_ms": p.updated_ms,
            })
        })
        .collect();
    put(&mut out, &Value::Array(pages))?;
    out.write_all(b",\"golden\":").map_err(io)?;
    let goldens = serde_json::to_value(storage.goldens(store)?).unwrap_or_default();
    put(&mut out, &goldens)?;
    out.write_all(b",\"conversations\":[").map_err(io)?;
    let mut before = None;
    let mut first = true;
    loop {
        let page = storage.conversations_of_store(store, before, PAGE)?;
        for meta in &page {
            if !std::mem::take(&mut first) {
                out.write_all(b",").map_err(io)?;
            }
            let messages = history(storage, meta)?;
            put(&mut out, &full_conversation(storage, meta, &messages)?)?;
        }
        if page.len() < PAGE {
            break;
        }
        before = page.last().map(|m| m.conversation);
    }
    out.write_all(b"]}").map_err(io)?;
    out.flush().map_err(io)
}

/// An account's own data: its profile and its memberships (never a
/// password hash).
pub fn export_account(
    storage: &Storage,
    account: &Account,
    now_ms: u64,
) -> Result<Value, StorageError> {
    let stores: Vec<Value> = storage
        .stores_of(account.id)?
        .into_iter()
        .map(|(store, role)| json!({"store": store.as_str(), "role": role.as_str()}))
        .collect();
    Ok(json!({
        "schema": ACCOUNT_SCHEMA,
        "exported_at_ms": now_ms,
        "account": {
            "id": account.id.0.to_string(),
            "name": account.name,
            "email": account.email,
            "language": account.language.code(),
            "created_at": account.created,
            "verified": account.verified,
            "deleted_at": account.deleted_at,
        },
        "stores": stores,
    }))
}

/// A shopper's own conversation, for the widget's download.
pub fn export_conversation(
    storage: &Storage,
    meta: &ConversationMeta,
    now_ms: u64,
) -> Result<Value, StorageError> {
    let messages = history(storage, meta)?;
    let mut conversation = full_conversation(storage, meta, &messages)?;
    // The shopper's own id, in their own copy only: it is the secret that
    // opens the conversation, so store exports never hold it.
    conversation["session_id"] = meta.session.to_string().into();
    Ok(json!({
        "schema": CONVERSATION_SCHEMA,
        "exported_at_ms": now_ms,
        "store": meta.store.as_str(),
        "conversation": conversation,
    }))
}
