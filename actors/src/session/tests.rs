//! A session against an in-memory log whose flushes are slow or fail, and
//! a model that notes when it was asked: the reply starts while the
//! shopper's message is flushed, yet nothing of it reaches the client
//! before the ack; a message whose flush fails is refused and forgotten.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::sync::mpsc::UnboundedSender;

use super::*;
use crate::catalog::{Branding, Currency, StoreProfile};
use crate::events::{Hello, PROTOCOL_VERSION, ServerEvent};
use crate::ids::{ConversationId, SessionId};
use crate::language::Language;
use crate::log::{ConversationMeta, LogError, StoredMessage};
use crate::model::{ChatModel, ChunkStream, FinishReason, ModelChunk, ModelError};
use crate::prompt::{Prompt, Role};
use crate::reply::RetryPolicy;

const SHOP: &str = "https://shop.example";

/// The session's events, into a channel the test reads.
struct ChannelOutbox(mpsc::Sender<ServerEvent>);

impl Outbox for ChannelOutbox {
    fn push(&mut self, event: ServerEvent) -> Result<(), OutboxError> {
        self.0.try_send(event).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => OutboxError::Full,
            mpsc::error::TrySendError::Closed(_) => OutboxError::Closed,
        })
    }
}

#[derive(Default)]
struct MemoryLog {
    appended: Mutex<Vec<StoredMessage>>,
    fail_flushes: AtomicBool,
    /// The next durable shopper message finds the storage busy.
    busy_once: AtomicBool,
    flushes_started: Mutex<Vec<Instant>>,
}

impl ConversationLog for MemoryLog {
    fn find_session(
        &self,
        _: &StoreId,
        _: SessionId,
    ) -> Result<Option<ConversationMeta>, LogError> {
        Ok(None)
    }

    fn open_conversation(&self, _: &ConversationMeta) -> Result<(), LogError> {
        Ok(())
    }

    fn append(&self, _: &StoreId, message: &StoredMessage) -> Result<(), LogError> {
        self.appended.lock().expect("lock").push(message.clone());
        Ok(())
    }

    fn append_durable(
        &self,
        store: &StoreId,
        message: &StoredMessage,
    ) -> BoxFuture<'static, Result<(), LogError>> {
        if self.busy_once.swap(false, Ordering::SeqCst) {
            return Box::pin(async { Err(LogError::Busy) });
        }
        match self.append(store, message) {
            Ok(()) => self.flush(),
            Err(error) => Box::pin(async move { Err(error) }),
        }
    }

    fn history(
        &self,
        _: &StoreId,
        _: ConversationId,
        _: usize,
    ) -> Result<Vec<StoredMessage>, LogError> {
        Ok(Vec::new())
    }

    fn flush(&self) -> BoxFuture<'static, Result<(), LogError>> {
        self.flushes_started
            .lock()
            .expect("lock")
            .push(Instant::now());
        let fail = self.fail_flushes.load(Ordering::SeqCst);
        Box::pin(async move {
            // A disk that takes its time.
            tokio::time::sleep(Duration::from_millis(150)).await;
            if fail {
                Err(LogError::Failed("the disk is gone".into()))
            } else {
                Ok(())
            }
        })
    }
}

#[derive(Default)]
struct NotingModel {
    asked: Mutex<Vec<(Instant, Arc<Prompt>)>>,
    /// A pause between the reply's two tokens.
    pause: Mutex<Duration>,
    /// The next reply's stream panics after its first token (a bug in a
    /// provider's adapter).
    panic_once: AtomicBool,
}

impl ChatModel for NotingModel {
    fn name(&self) -> &'static str {
        "noting"
    }

    fn start(&self, prompt: Arc<Prompt>) -> BoxFuture<'static, Result<ChunkStream, ModelError>> {
        self.asked
            .lock()
            .expect("lock")
            .push((Instant::now(), prompt));
        let pause = *self.pause.lock().expect("lock");
        let panics = self.panic_once.swap(false, Ordering::SeqCst);
        let chunks = futures_util::stream::iter([
            ModelChunk::Text("Here".into()),
            ModelChunk::Text(" you are.".into()),
            ModelChunk::Finished(FinishReason::Stop),
        ])
        .enumerate()
        .then(move |(i, chunk)| async move {
            if i == 1 {
                tokio::time::sleep(pause).await;
                assert!(!panics, "the adapter's bug");
            }
            Ok::<_, ModelError>(chunk)
        });
        Box::pin(async move { Ok(Box::pin(chunks) as ChunkStream) })
    }
}

struct Rig {
    log: Arc<MemoryLog>,
    model: Arc<NotingModel>,
    desk: crate::desk::DeskHandle,
    inbound: UnboundedSender<ClientEvent>,
    outbound: mpsc::Receiver<ServerEvent>,
}

fn settings() -> SessionSettings {
    SessionSettings {
        heartbeat_interval: Duration::from_secs(15),
        client_timeout: Duration::from_secs(45),
        hello_timeout: Duration::from_secs(10),
        max_message_chars: 2000,
        messages_per_minute: NonZeroU32::new(100).expect("non-zero"),
        history_tokens: 2000,
        history_messages: 50,
        retrieval_limit: 6,
        query_rewrite: None,
        max_protocol_errors: 20,
        retry: RetryPolicy {
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
            budget: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(5),
        },
    }
}

fn start_session() -> Rig {
    let store = StoreId::parse("s").expect("valid id");
    let profile = StoreProfile {
        id: store.clone(),
        name: "S".into(),
        url: SHOP.into(),
        instructions: String::new(),
        default_language: Language::En,
        currency: Currency::parse("EUR").expect("known"),
        allowed_origins: vec![SHOP.into()],
        synonyms: Vec::new(),
        branding: Branding::default(),
        retention_days: None,
    };
    let log = Arc::new(MemoryLog::default());
    let model = Arc::new(NotingModel::default());
    let desk = crate::desk::Desks::new(
        actix::Arbiter::current(),
        log.clone(),
        crate::desk::DeskSettings::default(),
        Arc::default(),
    )
    .of(&store);
    let deps = SessionDeps {
        desk: desk.clone(),
        store,
        catalog: StoreCatalog::new(profile, Vec::new()).start(),
        log: log.clone(),
        models: Arc::new(crate::provider::Models::only(model.clone())),
        rates: Arc::new(crate::limits::ClientRates::new(1000, 1000)),
        live: LiveSessions::default(),
        tasks: crate::tasks::Tasks::default(),
        metrics: Arc::default(),
        settings: Arc::new(settings()),
    };
    let connection = Connection {
        origin: Some(SHOP.into()),
        ..Connection::default()
    };
    let (inbound, events) = mpsc::unbounded_channel();
    let (out, outbound) = mpsc::channel(64);
    let events = futures_util::stream::unfold(events, |mut rx| async move {
        rx.recv().await.map(|event| (event, rx))
    });
    WidgetSession::create(|ctx| {
        ctx.add_stream(events);
        WidgetSession::new(deps, connection, Box::new(ChannelOutbox(out)), None)
    });
    Rig {
        log,
        model,
        desk,
        inbound,
        outbound,
    }
}

impl Rig {
    fn send(&self, event: ClientEvent) {
        self.inbound.send(event).expect("the session is running");
    }

    async fn next(&mut self) -> ServerEvent {
        tokio::time::timeout(Duration::from_secs(5), self.outbound.recv())
            .await
            .expect("an event in time")
            .expect("the session is running")
    }

    async fn hello(&mut self) -> ConversationId {
        self.send(ClientEvent::Hello(Hello {
            version: PROTOCOL_VERSION,
            ..Hello::default()
        }));
        match self.next().await {
            ServerEvent::Ready {
                conversation_id, ..
            } => conversation_id,
            other => panic!("expected ready, got {other:?}"),
        }
    }

    fn message(&self, client_id: &str, text: &str) {
        self.send(ClientEvent::Message {
            client_id: client_id.into(),
            text: text.into(),
        });
    }
}

#[actix_rt::test]
async fn the_reply_starts_during_the_flush_but_shows_only_after_the_ack() {
    let mut rig = start_session();
    rig.hello().await;
    rig.message("c1", "a tent please");
    let first = rig.next().await;
    let acked_at = Instant::now();
    assert!(
        matches!(&first, ServerEvent::Ack { client_id, .. } if client_id == "c1"),
        "the ack comes first: {first:?}"
    );
    let mut text = String::new();
    loop {
        match rig.next().await {
            ServerEvent::Token { text: t, .. } => text.push_str(&t),
            ServerEvent::Done { .. } => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(text, "Here you are.");
    let flushed_from = rig.log.flushes_started.lock().expect("lock")[0];
    let asked_at = rig.model.asked.lock().expect("lock")[0].0;
    assert!(
        asked_at < acked_at && asked_at >= flushed_from,
        "the model was asked while the message was being flushed"
    );
    // A resend while acknowledged is acknowledged again, not stored twice.
    rig.message("c1", "a tent please");
    assert!(matches!(rig.next().await, ServerEvent::Ack { .. }));
    let stored_shopper = rig
        .log
        .appended
        .lock()
        .expect("lock")
        .iter()
        .filter(|m| m.role == Role::Shopper)
        .count();
    assert_eq!(stored_shopper, 1);
}

#[actix_rt::test]
async fn a_resend_during_the_flush_gets_one_ack_after_it() {
    let mut rig = start_session();
    rig.hello().await;
    rig.message("c1", "a lamp");
    rig.message("c1", "a lamp");
    assert!(matches!(rig.next().await, ServerEvent::Ack { .. }));
    let mut acks = 0;
    loop {
        match rig.next().await {
            ServerEvent::Ack { .. } => acks += 1,
            ServerEvent::Done { .. } => break,
            _ => {}
        }
    }
    assert_eq!(acks, 0, "one ack for the message and its resend");
    assert_eq!(rig.model.asked.lock().expect("lock").len(), 1);
}

#[actix_rt::test]
async fn a_message_whose_flush_fails_is_refused_and_its_reply_never_shown() {
    let mut rig = start_session();
    // The reply is still streaming when the flush fails.
    *rig.model.pause.lock().expect("lock") = Duration::from_millis(400);
    rig.hello().await;
    rig.log.fail_flushes.store(true, Ordering::SeqCst);
    rig.message("c1", "a stove");
    match rig.next().await {
        ServerEvent::Error(error) => {
            assert_eq!(error.code, ErrorCode::StorageFailed);
            assert_eq!(error.client_id.as_deref(), Some("c1"));
        }
        other => panic!("expected storage_failed, got {other:?}"),
    }
    // The reply the model started for it never reaches the client, and is
    // withdrawn before it records anything.
    let quiet = tokio::time::timeout(Duration::from_millis(600), rig.outbound.recv()).await;
    assert!(quiet.is_err(), "nothing follows the refusal: {quiet:?}");
    let recorded_replies = rig
        .log
        .appended
        .lock()
        .expect("lock")
        .iter()
        .filter(|m| m.role == Role::Assistant)
        .count();
    assert_eq!(recorded_replies, 0, "the withdrawn reply recorded nothing");
    *rig.model.pause.lock().expect("lock") = Duration::ZERO;

    // The session goes on, and the refused message is not in the next prompt.
    rig.log.fail_flushes.store(false, Ordering::SeqCst);
    rig.message("c2", "a kettle");
    assert!(matches!(rig.next().await, ServerEvent::Ack { client_id, .. } if client_id == "c2"));
    loop {
        if let ServerEvent::Done { .. } = rig.next().await {
            break;
        }
    }
    let asked = rig.model.asked.lock().expect("lock");
    let last = &asked.last().expect("asked").1;
    assert_eq!(last.message, "a kettle");
    assert!(
        last.history.iter().all(|turn| turn.text != "a stove"),
        "{:?}",
        last.history
    );
}

#[actix_rt::test]
async fn a_message_sent_during_a_reply_is_answered_next_with_that_reply_before_it() {
    let mut rig = start_session();
    *rig.model.pause.lock().expect("lock") = Duration::from_millis(400);
    rig.hello().await;
    rig.message("c1", "a tent please");
    assert!(matches!(rig.next().await, ServerEvent::Ack { .. }));
    assert!(matches!(rig.next().await, ServerEvent::Token { .. }));
    // The first reply is still streaming.
    rig.message("c2", "and a lamp");
    let mut done = 0;
    while done < 2 {
        if let ServerEvent::Done { .. } = rig.next().await {
            done += 1;
        }
    }
    let asked = rig.model.asked.lock().expect("lock");
    assert_eq!(asked.len(), 2);
    let second = &asked[1].1;
    assert_eq!(second.message, "and a lamp");
    let history: Vec<(Role, &str)> = second
        .history
        .iter()
        .map(|turn| (turn.role, turn.text.as_str()))
        .collect();
    assert_eq!(
        history,
        [
            (Role::Shopper, "a tent please"),
            (Role::Assistant, "Here you are.")
        ]
    );
}

#[actix_rt::test]
async fn a_reply_task_that_panics_ends_its_reply_and_frees_the_session() {
    let mut rig = start_session();
    rig.model.panic_once.store(true, Ordering::SeqCst);
    rig.hello().await;
    rig.message("c1", "a tent please");
    assert!(matches!(rig.next().await, ServerEvent::Ack { .. }));
    assert!(matches!(rig.next().await, ServerEvent::Token { .. }));
    match rig.next().await {
        ServerEvent::Error(error) => {
            assert_eq!(error.code, ErrorCode::ModelFailed, "{error:?}");
            assert!(error.reply_id.is_some());
        }
        other => panic!("expected the reply's error, got {other:?}"),
    }
    // The session is free for the next message, and the partial reply was
    // recorded as incomplete.
    rig.message("c2", "and a lamp");
    assert!(matches!(rig.next().await, ServerEvent::Ack { .. }));
    loop {
        if let ServerEvent::Done { .. } = rig.next().await {
            break;
        }
    }
    let appended = rig.log.appended.lock().expect("lock");
    let partial = appended
        .iter()
        .find(|m| m.role == Role::Assistant && m.reply.as_ref().is_some_and(|r| r.incomplete))
        .expect("the partial reply is stored");
    assert_eq!(partial.text, "Here");
}

#[actix_rt::test]
async fn a_busy_storage_refuses_the_message_and_the_same_message_goes_through_again() {
    let mut rig = start_session();
    rig.hello().await;
    rig.log.busy_once.store(true, Ordering::SeqCst);
    rig.message("c1", "a tent");
    match rig.next().await {
        ServerEvent::Error(error) => {
            assert_eq!(error.code, ErrorCode::StorageBusy);
            assert_eq!(error.client_id.as_deref(), Some("c1"));
            assert!(error.retry_after.is_some());
        }
        other => panic!("expected storage_busy, got {other:?}"),
    }
    // Sent again with the same client id, it is stored and answered once.
    rig.message("c1", "a tent");
    assert!(matches!(rig.next().await, ServerEvent::Ack { client_id, .. } if client_id == "c1"));
    loop {
        if let ServerEvent::Done { .. } = rig.next().await {
            break;
        }
    }
    let shopper_messages = rig
        .log
        .appended
        .lock()
        .expect("lock")
        .iter()
        .filter(|m| m.role == Role::Shopper)
        .count();
    assert_eq!(shopper_messages, 1);
}

#[actix_rt::test]
async fn a_takeover_stops_the_reply_and_the_agent_answers_until_hand_back() {
    use crate::desk::{Agent, AgentSays, HandBack, Join, TakeOver, Watch, Watcher};
    let mut rig = start_session();
    *rig.model.pause.lock().expect("lock") = Duration::from_millis(2000);
    let conversation = rig.hello().await;
    rig.message("c1", "a tent please");
    assert!(matches!(rig.next().await, ServerEvent::Ack { .. }));
    assert!(matches!(rig.next().await, ServerEvent::Token { .. }));

    let (watcher, _inbox) = Watcher::channel(64);
    let id = watcher.id();
    let agent = Agent {
        id: "ada".into(),
        name: "Ada".into(),
    };
    let (_joined, list) = rig
        .desk
        .addr
        .send(Join {
            watcher,
            agent,
            may_act: true,
        })
        .await
        .expect("the desk runs");
    assert_eq!(list.len(), 1);
    let watch = Watch {
        watcher: id,
        conversation: Some(conversation),
    };
    rig.desk
        .addr
        .send(watch)
        .await
        .expect("runs")
        .expect("live");
    let take = TakeOver {
        watcher: id,
        conversation,
    };
    rig.desk
        .addr
        .send(take)
        .await
        .expect("runs")
        .expect("taken");

    // The reply stops at once (its second token was 2 s away) and is
    // stored as it stood, marked taken over.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match rig.next().await {
            event @ (ServerEvent::Done { .. } | ServerEvent::AgentJoined { .. }) => {
                seen.push(event)
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(seen.iter().any(|e| matches!(
        e,
        ServerEvent::Done {
            finish: FinishReason::TakenOver,
            ..
        }
    )));
    assert!(
        seen.iter()
            .any(|e| matches!(e, ServerEvent::AgentJoined { name } if name == "Ada"))
    );
    let partial = rig
        .log
        .appended
        .lock()
        .expect("lock")
        .iter()
        .find(|m| m.role == Role::Assistant)
        .cloned()
        .expect("the partial reply is stored");
    assert_eq!(partial.text, "Here");
    let outcome = partial.reply.expect("a reply");
    assert!(outcome.incomplete);
    assert_eq!(outcome.finish, Some(FinishReason::TakenOver));

    // The next message goes to the person, not the model.
    rig.message("c2", "are you a person?");
    assert!(matches!(rig.next().await, ServerEvent::Ack { .. }));
    let says = AgentSays {
        watcher: id,
        conversation,
        client_id: "a1".into(),
        text: "Yes, I am Ada from the shop.".into(),
    };
    rig.desk
        .addr
        .send(says)
        .await
        .expect("runs")
        .expect("stored");
    match rig.next().await {
        ServerEvent::AgentMessage { name, text, .. } => {
            assert_eq!(name, "Ada");
            assert_eq!(text, "Yes, I am Ada from the shop.");
        }
        other => panic!("expected the agent's message, got {other:?}"),
    }
    assert_eq!(rig.model.asked.lock().expect("lock").len(), 1);

    let back = HandBack {
        watcher: id,
        conversation,
    };
    rig.desk
        .addr
        .send(back)
        .await
        .expect("runs")
        .expect("handed back");
    assert!(matches!(
        rig.next().await,
        ServerEvent::HandedBack { idle: false }
    ));
    *rig.model.pause.lock().expect("lock") = Duration::ZERO;
    rig.message("c3", "thanks, and a lamp?");
    assert!(matches!(rig.next().await, ServerEvent::Ack { .. }));
    loop {
        if let ServerEvent::Done { .. } = rig.next().await {
            break;
        }
    }
    let asked = rig.model.asked.lock().expect("lock");
    assert_eq!(asked.len(), 2, "the assistant answers again");
    let history = &asked[1].1.history;
    assert!(
        history
            .iter()
            .any(|turn| turn.role == Role::Agent && turn.text.contains("Ada from the shop")),
        "the person's words are in the model's history: {history:?}"
    );
}
