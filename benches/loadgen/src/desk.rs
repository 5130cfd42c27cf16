//! Owners watching under load: the stores `chat` spreads its shoppers over,
//! and watchers on the live desk socket of each. A watcher follows one
//! conversation at a time; when the reply it reads ends it moves to another
//! conversation whose reply is streaming (joining mid-reply, as an owner
//! clicking down the list does), so both the catch-up and the live tokens
//! are exercised. Every live token is matched to the model's own write of
//! it, as the shoppers' are.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mikabot_test_support::Owner;
use mikabot_test_support::model::FakeOpenAi;
use mikabot_test_support::shopper::{Connect, Failure, Shopper};
use serde::Serialize;
use serde_json::{Value, json};

use crate::report::{Counts, Summary, add};
use crate::{STORE, Target, node::RunningNode};

/// The dashboard's origin for a run with watchers (`server.public_url`;
/// the desk socket accepts no other).
pub const DASHBOARD_ORIGIN: &str = "http://loadgen.localhost";

/// The ids of `count` stores: the demo store, then `load-2`, `load-3`, ….
pub fn store_ids(count: usize) -> Vec<String> {
    (1..=count.max(1))
        .map(|n| {
            if n == 1 {
                STORE.to_owned()
            } else {
                format!("load-{n}")
            }
        })
        .collect()
}

/// The demo owner, signed in (its password is in the node's data
/// directory).
async fn demo_owner(node: &RunningNode) -> anyhow::Result<Owner> {
    let dir = node
        .data_dir
        .as_ref()
        .context("watchers and extra stores need a node the load generator starts")?;
    let options = mikabot::storage::StorageOptions::in_dir(dir);
    let file = options.data_dir.join(mikabot::demo::DEMO_PASSWORD_FILE);
    let password = std::fs::read_to_string(&file)
        .with_context(|| format!("reading the demo owner's password from {}", file.display()))?;
    let mut owner = Owner::new(node.addr.port());
    let page = owner
        .sign_in("demo@mikabot.localhost", password.trim())
        .await;
    anyhow::ensure!(
        page.status == 303,
        "the demo owner could not sign in ({}): {}",
        page.status,
        page.body
    );
    Ok(owner)
}

/// The demo catalog as a generic JSON feed, for the extra stores.
fn demo_feed() -> anyhow::Result<Vec<u8>> {
    let id = mikabot_actors::ids::StoreId::parse(STORE)?;
    let (_, products) = mikabot::demo::demo_store(id, "https://shop.example")?;
    let rows: Vec<Value> = products
        .iter()
        .map(|p| {
            json!({
                "id": p.id.0,
                "name": p.name,
                "brand": p.brand,
                "category": p.category,
                "description": p.description,
                "tags": p.tags.join(", "),
                "price": format!("{}.{:02}", p.price.minor / 100, p.price.minor % 100),
                "currency": p.price.currency.code(),
                "image": p.image_url,
                "url": p.url,
                "availability": if p.in_stock { "in stock" } else { "out of stock" },
            })
        })
        .collect();
    Ok(serde_json::to_vec(&rows)?)
}

/// Creates the stores after the demo store through the dashboard, as their
/// owner would, each with the demo catalog.
pub async fn create_stores(node: &RunningNode, ids: &[String]) -> anyhow::Result<()> {
    if ids.len() <= 1 {
        return Ok(());
    }
    let mut owner = demo_owner(node).await?;
    let feed = demo_feed()?;
    for id in ids.iter().filter(|id| *id != STORE) {
        owner.get("/dashboard/stores/new").await;
        let url = format!("https://{id}.example");
        let page = owner
            .post(
                "/dashboard/stores/new",
                &[
                    ("name", id),
                    ("id", id),
                    ("url", &url),
                    ("language", "en"),
                    ("currency", "EUR"),
                ],
            )
            .await;
        anyhow::ensure!(page.status == 303, "creating store {id}: {}", page.status);
        owner.get(&format!("/dashboard/stores/{id}")).await;
        let page = owner
            .put(&format!("/dashboard/stores/{id}/catalog"), feed.clone())
            .await;
        anyhow::ensure!(
            page.status == 200,
            "importing the catalog of {id}: {} {}",
            page.status,
            page.body
        );
    }
    Ok(())
}

/// A signed-in dashboard session per watcher (the cookie header).
pub async fn watcher_sessions(node: &RunningNode, count: usize) -> anyhow::Result<Vec<String>> {
    let mut cookies = Vec::with_capacity(count);
    for _ in 0..count {
        let owner = demo_owner(node).await?;
        let cookie: Vec<String> = owner
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        cookies.push(cookie.join("; "));
    }
    Ok(cookies)
}

/// The widget socket of each store.
pub(crate) fn targets(shopper: &Target, node: &RunningNode, ids: &[String]) -> Vec<Target> {
    ids.iter()
        .map(|id| Target {
            url: node.ws_url(id),
            origin: shopper.origin.clone(),
        })
        .collect()
}

/// One reply a watcher read: its tag, the bytes the catch-up covered and
/// when each live token arrived (its end offset in the reply's text).
#[derive(Debug)]
pub struct WatchedReply {
    tag: u64,
    caught_up: usize,
    received: Vec<(usize, Instant)>,
}

#[derive(Debug, Default)]
pub struct WatcherResult {
    pub connected: bool,
    pub replies: Vec<WatchedReply>,
    pub joins_mid_reply: u64,
    pub tokens: u64,
    /// The node closed the watcher as too slow (4001).
    pub dropped: bool,
    pub errors: Counts,
}

fn tag_in(text: &str) -> Option<u64> {
    text.rsplit_once('#')?.1.trim().parse().ok()
}

fn id_of(frame: &Value, field: &str) -> Option<String> {
    frame[field].as_str().map(str::to_owned)
}

/// What a watcher knows and reads.
#[derive(Default)]
struct Watch {
    /// Conversation → whether its reply is streaming.
    replying: HashMap<String, bool>,
    watched: Option<String>,
    /// The watched conversation's reply was streaming when the watch began:
    /// its first `tokens` frame is the catch-up.
    joined_mid_reply: bool,
    tag: Option<u64>,
    reply: Option<(String, WatchedReply)>,
}

impl Watch {
    fn note(&mut self, conversation: &Value) {
        if let Some(id) = id_of(conversation, "conversation_id") {
            let replying = conversation["state"] == "assistant_replying";
            self.replying.insert(id, replying);
        }
    }

    /// Another conversation whose reply streams, if any.
    fn next_to_watch(&self) -> Option<String> {
        let candidates: Vec<&String> = self
            .replying
            .iter()
            .filter(|(id, replying)| **replying && Some(*id) != self.watched.as_ref())
            .map(|(id, _)| id)
            .collect();
        (!candidates.is_empty()).then(|| candidates[fastrand::usize(..candidates.len())].clone())
    }
}

/// Opens another conversation whose reply streams, if there is one.
async fn move_on(watch: &mut Watch, socket: &mut Shopper) -> Result<(), Failure> {
    let Some(next) = watch.next_to_watch() else {
        return Ok(());
    };
    watch.watched = Some(next.clone());
    watch.tag = None;
    socket
        .try_send_json(&json!({"type": "watch", "conversation_id": next}))
        .await
}

/// One watcher on `store` until `end` (and the reply it reads then).
pub async fn watcher(
    node_addr: std::net::SocketAddr,
    store: String,
    cookie: String,
    begin: tokio::time::Instant,
    end: Instant,
) -> WatcherResult {
    let mut result = WatcherResult::default();
    let url = format!("ws://{node_addr}/dashboard/stores/{store}/desk/socket");
    let options = Connect {
        url,
        origin: Some(DASHBOARD_ORIGIN.into()),
        source: None,
        small_buffers: true,
        headers: vec![("cookie".into(), cookie)],
    };
    let mut socket = match Shopper::open(&options).await {
        Ok(socket) => socket,
        Err(failure) => {
            add(&mut result.errors, failure.label());
            return result;
        }
    };
    result.connected = true;
    tokio::time::sleep_until(begin).await;
    let mut watch = Watch::default();
    let stop_after = end + Duration::from_secs(30);
    loop {
        let frame: Value = match socket.try_next(Duration::from_secs(30)).await {
            Ok(frame) => frame,
            Err(Failure::Closed { code: 4001, .. }) => {
                result.dropped = true;
                break;
            }
            Err(failure) => {
                add(&mut result.errors, failure.label());
                break;
            }
        };
        let now = Instant::now();
        let about_watched = watch.watched.is_some()
            && frame["conversation_id"].as_str() == watch.watched.as_deref();
        match frame["type"].as_str().unwrap_or("") {
            "ready" => {
                for conversation in frame["conversations"].as_array().into_iter().flatten() {
                    watch.note(conversation);
                }
            }
            "conversation" => watch.note(&frame["conversation"]),
            "conversation_ended" => {
                if let Some(id) = id_of(&frame, "conversation_id") {
                    watch.replying.remove(&id);
                    if watch.watched.as_ref() == Some(&id) {
                        watch.watched = None;
                        watch.reply = None;
                    }
                }
            }
            "watching" => {
                watch.joined_mid_reply = frame["conversation"]["state"] == "assistant_replying";
                result.joins_mid_reply += u64::from(watch.joined_mid_reply);
            }
            "history" if about_watched => {
                watch.tag = frame["messages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .rev()
                    .find(|m| m["role"] == "shopper")
                    .and_then(|m| m["text"].as_str())
                    .and_then(tag_in);
            }
            "message" if about_watched && frame["message"]["role"] == "shopper" => {
                watch.tag = frame["message"]["text"].as_str().and_then(tag_in);
            }
            "tokens" if about_watched => {
                let reply_id = id_of(&frame, "reply_id").unwrap_or_default();
                let text_len = frame["text"].as_str().map_or(0, str::len);
                let fresh = watch.reply.as_ref().is_none_or(|(id, _)| *id != reply_id);
                if fresh {
                    let catch_up = std::mem::take(&mut watch.joined_mid_reply);
                    let Some(tag) = watch.tag else {
                        add(&mut result.errors, "untagged_reply".into());
                        continue;
                    };
                    let reply = WatchedReply {
                        tag,
                        caught_up: if catch_up { text_len } else { 0 },
                        received: Vec::with_capacity(128),
                    };
                    watch.reply = Some((reply_id, reply));
                    if catch_up {
                        continue;
                    }
                } else if frame["from_seq"] != frame["seq"] {
                    add(&mut result.errors, "catch_up_mid_reply".into());
                }
                if let Some((_, reply)) = watch.reply.as_mut() {
                    let length = reply.received.last().map_or(reply.caught_up, |r| r.0) + text_len;
                    reply.received.push((length, now));
                    result.tokens += 1;
                }
            }
            "reply_done" | "reply_failed" if about_watched => {
                if let Some((_, reply)) = watch.reply.take() {
                    result.replies.push(reply);
                }
                if Instant::now() >= end {
                    break;
                }
                if let Err(failure) = move_on(&mut watch, &mut socket).await {
                    add(&mut result.errors, failure.label());
                    break;
                }
            }
            "error" => add(
                &mut result.errors,
                frame["code"].as_str().unwrap_or("error").to_owned(),
            ),
            _ => {}
        }
        if watch.watched.is_none()
            && let Err(failure) = move_on(&mut watch, &mut socket).await
        {
            add(&mut result.errors, failure.label());
            break;
        }
        if Instant::now() >= stop_after {
            break;
        }
    }
    socket.close().await;
    result
}

/// What the watchers saw, for the chat report.
#[derive(Clone, Debug, Serialize)]
pub struct WatchersReport {
    pub watchers: usize,
    pub connected: usize,
    pub replies_watched: u64,
    /// Watches that began while the reply streamed (a catch-up frame, then
    /// the live tokens).
    pub joins_mid_reply: u64,
    pub tokens_received: u64,
    /// Model wrote a chunk → the watcher received that token (live tokens
    /// only; the catch-up is one frame).
    pub added_latency_per_token: Summary,
    pub dropped_as_too_slow: u64,
    pub errors: Counts,
}

/// Matches each watched reply's live tokens to the model's timeline.
pub fn summarize(
    watchers: usize,
    results: Vec<WatcherResult>,
    model: &FakeOpenAi,
) -> WatchersReport {
    let mut per_token = Vec::new();
    let mut errors = Counts::new();
    let (mut connected, mut replies, mut joins, mut tokens, mut dropped) = (0, 0, 0, 0, 0);
    for result in results {
        connected += usize::from(result.connected);
        joins += result.joins_mid_reply;
        tokens += result.tokens;
        dropped += u64::from(result.dropped);
        for (code, n) in result.errors {
            *errors.entry(code).or_default() += n;
        }
        for reply in result.replies {
            replies += 1;
            let Some(timeline) = model.timeline(reply.tag) else {
                add(&mut errors, "untimed_reply".into());
                continue;
            };
            let mut r = 0;
            for &(end, written) in timeline.chunks.iter().filter(|c| c.0 > reply.caught_up) {
                while r < reply.received.len() && reply.received[r].0 < end {
                    r += 1;
                }
                let Some(&(_, seen)) = reply.received.get(r) else {
                    break;
                };
                per_token.push(seen.saturating_duration_since(written).as_nanos() as u64);
            }
        }
    }
    WatchersReport {
        watchers,
        connected,
        replies_watched: replies,
        joins_mid_reply: joins,
        tokens_received: tokens,
        added_latency_per_token: Summary::of(per_token),
        dropped_as_too_slow: dropped,
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_ids_start_with_the_demo_store() {
        assert_eq!(store_ids(1), vec!["demo"]);
        assert_eq!(store_ids(3), vec!["demo", "load-2", "load-3"]);
        assert_eq!(store_ids(0), vec!["demo"]);
    }

    #[test]
    fn a_tag_is_read_from_the_end_of_a_message() {
        assert_eq!(tag_in("Show me a tent #16777217"), Some(16_777_217));
        assert_eq!(tag_in("no tag here"), None);
        assert_eq!(tag_in("a #b"), None);
    }

    #[test]
    fn the_demo_feed_is_a_json_array_of_every_demo_product() {
        let feed: Vec<Value> = serde_json::from_slice(&demo_feed().expect("a feed")).expect("JSON");
        assert!(feed.len() >= 200, "{} rows", feed.len());
        assert!(
            feed.iter()
                .all(|row| row["price"].as_str().is_some_and(|p| p.contains('.')))
        );
    }
}
