//! The per-message persistence path: a shopper message written to sled and
//! made durable by the storage thread (`append_durable`), as a session
//! does before its ack. One writer
//! at a time, and many at once (as many sessions would), in messages per
//! second. `cargo bench --bench persistence`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mikabot::storage::{Storage, StorageOptions};
use mikabot_actors::ids::{ConversationId, MessageId, SessionId, StoreId};
use mikabot_actors::language::Language;
use mikabot_actors::log::{ClientClass, ConversationLog, ConversationMeta, StoredMessage, now_ms};
use mikabot_actors::prompt::Role;

const CACHE_BYTES: u64 = 256 * 1024 * 1024;

fn conversation(storage: &Storage, store: &StoreId) -> ConversationId {
    let meta = ConversationMeta {
        store: store.clone(),
        conversation: ConversationId::new(),
        session: SessionId::new(),
        started_at_ms: now_ms(),
        language: Language::En,
        page_url: Some("https://shop.example/p/1".into()),
        referrer: None,
        client: ClientClass::default(),
        ip: Some("192.0.2.0".into()),
    };
    storage
        .open_conversation(&meta)
        .unwrap_or_else(|e| panic!("open conversation: {e}"));
    meta.conversation
}

/// One shopper message appended and made durable.
async fn persist(storage: &Storage, store: &StoreId, conversation: ConversationId, n: usize) {
    let message = StoredMessage {
        author: None,
        id: MessageId::new(),
        conversation,
        role: Role::Shopper,
        text: format!("Do you have a waterproof rain jacket in navy, size M? ({n})"),
        at_ms: now_ms(),
        client_id: Some(format!("c{n}")),
        reply: None,
    };
    storage
        .append_durable(store, &message)
        .await
        .unwrap_or_else(|e| panic!("append: {e}"));
}

/// `writers` concurrent writers, each persisting `per_writer` messages one
/// after another. Returns messages per second.
async fn run(storage: Arc<Storage>, writers: usize, per_writer: usize) -> f64 {
    let store = StoreId::parse("bench").unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(writers);
    let local = tokio::task::LocalSet::new();
    for _ in 0..writers {
        let storage = Arc::clone(&storage);
        let store = store.clone();
        let conversation = conversation(&storage, &store);
        tasks.push(local.spawn_local(async move {
            for n in 0..per_writer {
                persist(&storage, &store, conversation, n).await;
            }
        }));
    }
    local
        .run_until(async {
            for task in tasks {
                task.await.unwrap_or_else(|e| panic!("writer: {e}"));
            }
        })
        .await;
    (writers * per_writer) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));

    let mut criterion = criterion::Criterion::default()
        .sample_size(200)
        .configure_from_args();
    {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let storage =
            Storage::open(&StorageOptions::in_dir(dir.path()).with_cache_bytes(CACHE_BYTES))
                .unwrap_or_else(|e| panic!("open: {e}"));
        let store = StoreId::parse("bench").unwrap_or_else(|e| panic!("{e}"));
        let conversation = conversation(&storage, &store);
        let mut n = 0;
        criterion.bench_function("one_message_durable", |b| {
            b.iter(|| {
                n += 1;
                runtime.block_on(persist(&storage, &store, conversation, n));
            })
        });
    }
    criterion.final_summary();
    println!("| writers | messages | durable messages/s | time per message (one writer) |");
    println!("|---:|---:|---:|---:|");
    for (writers, per_writer) in [(1, 2_000), (16, 500), (64, 300), (256, 100)] {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let storage = Arc::new(
            Storage::open(&StorageOptions::in_dir(dir.path()).with_cache_bytes(CACHE_BYTES))
                .unwrap_or_else(|e| panic!("open: {e}")),
        );
        let rate = runtime.block_on(run(storage, writers, per_writer));
        let per_message = if writers == 1 {
            format!(
                "{:.0} µs",
                Duration::from_secs_f64(1.0 / rate).as_secs_f64() * 1e6
            )
        } else {
            "-".into()
        };
        println!(
            "| {writers} | {} | {rate:.0} | {per_message} |",
            writers * per_writer
        );
    }
}
