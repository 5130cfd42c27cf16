//! Key layout. Everything about a store starts with `store \0`, so a store,
//! a conversation or a period is a range scan:
//!
//! | tree | key | value |
//! |---|---|---|
//! | `stores` | `store` | [`StoreV1`](super::records::StoreV1) |
//! | `catalog_generations` | `store` | current generation, u32 big-endian |
//! | `products` | `store \0 generation(4) product-id` | [`ProductV1`](super::records::ProductV1) |
//! | `pages` | `store \0 slug` | [`PageV1`](super::records::PageV1) |
//! | `goldens`, `golden_runs` | `store` | [`GoldensV1`](super::records::GoldensV1), [`GoldenRunV1`](super::records::GoldenRunV1) |
//! | `sessions` | `store \0 hmac(session)(32)` | conversation id, 16 bytes |
//! | `conversations` | `store \0 conversation(16)` | [`ConversationV1`](super::records::ConversationV1) |
//! | `messages` | `store \0 conversation(16) message(16)` | [`MessageV1`](super::records::MessageV1) |
//!
//! Conversation and message ids are time-ordered (v7), so a conversation's
//! messages, and a store's conversations, sort by time.

use mikabot_actors::ids::{ConversationId, MessageId, StoreId};

/// `store \0`: the start of every key of a store. Store ids never contain
/// NUL, so the separator keeps prefixes apart ("shop" never matches
/// "shop-2").
pub fn store_prefix(store: &StoreId) -> Vec<u8> {
    let mut key = Vec::with_capacity(store.as_str().len() + 1 + 32);
    key.extend_from_slice(store.as_str().as_bytes());
    key.push(0);
    key
}

fn key(store: &StoreId, parts: &[&[u8]]) -> Vec<u8> {
    let mut key = store_prefix(store);
    for part in parts {
        key.extend_from_slice(part);
    }
    key
}

/// The store a key starts with (`store \0 …`).
pub fn store_of(key: &[u8]) -> Option<StoreId> {
    let end = key.iter().position(|b| *b == 0)?;
    StoreId::parse(std::str::from_utf8(&key[..end]).ok()?).ok()
}

/// The conversation of a `store \0 conversation(16) …` key.
pub fn conversation_of(key: &[u8]) -> Option<ConversationId> {
    let separator = key.iter().position(|b| *b == 0)?;
    let id = key.get(separator + 1..separator + 17)?;
    <[u8; 16]>::try_from(id)
        .ok()
        .map(ConversationId::from_bytes)
}

/// A store's key in the `stores` and `catalog_generations` trees.
pub fn store(store: &StoreId) -> &[u8] {
    store.as_str().as_bytes()
}

/// A knowledge page's key.
pub fn page(store: &StoreId, slug: &str) -> Vec<u8> {
    key(store, &[slug.as_bytes()])
}

/// The prefix of every product of one catalog generation.
pub fn generation(store: &StoreId, generation: u32) -> Vec<u8> {
    key(store, &[&generation.to_be_bytes()])
}

/// One product of one catalog generation.
pub fn product(store: &StoreId, generation: u32, product: &str) -> Vec<u8> {
    key(store, &[&generation.to_be_bytes(), product.as_bytes()])
}

/// Where a product key's store ends and its generation begins: the
/// store's id and the generation, if the key has that shape.
pub fn product_generation(key: &[u8]) -> Option<(&[u8], u32)> {
    let separator = key.iter().position(|b| *b == 0)?;
    let generation = key.get(separator + 1..separator + 5)?;
    let generation = <[u8; 4]>::try_from(generation).ok()?;
    Some((&key[..separator], u32::from_be_bytes(generation)))
}

pub fn conversation(store: &StoreId, conversation: ConversationId) -> Vec<u8> {
    key(store, &[conversation.as_bytes()])
}

/// The prefix of every message of a conversation (the same bytes as the
/// conversation's own key, in another tree).
pub fn messages(store: &StoreId, conversation: ConversationId) -> Vec<u8> {
    key(store, &[conversation.as_bytes()])
}

pub fn message(store: &StoreId, conversation: ConversationId, message: MessageId) -> Vec<u8> {
    key(store, &[conversation.as_bytes(), message.as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_prefix_never_matches_a_longer_store_id() {
        let shop = StoreId::parse("shop").expect("valid");
        let shop2 = StoreId::parse("shop-2").expect("valid");
        let key = product(&shop2, 1, "p");
        assert!(!key.starts_with(&store_prefix(&shop)));
        assert_eq!(product_generation(&key), Some((&b"shop-2"[..], 1)));
        assert_eq!(product_generation(b"no separator"), None);
    }
}
