//! `Desk`: one actor per store that knows the store's live conversations and
//! fans their events out to the owners and agents watching them, and the
//! takeover rules: one person from the store holds a conversation at a
//! time, the reply in flight stops when they take it, the shopper's
//! messages go to them until they hand back (or leave and stay away for
//! the idle time).
//!
//! Sessions tell the desk what happens (a conversation opened or left, a
//! message acknowledged, a reply started, typing, a request for a person);
//! the dashboard socket at the edge joins it as a [`Watcher`]. A watcher
//! never slows a shopper: every event reaches it through a bounded queue
//! filled with `try_send`, and a watcher whose queue is full is dropped
//! (its [`WatcherInbox::too_slow`] fires) and told by the edge to reload.
//! The tokens of a reply reach a watcher straight from the reply's
//! [`ReplyFeed`], not through this actor: the feed hands a joining watcher
//! the tokens so far and then every new one, each exactly once.
//!
//! Holds live in memory: a node that restarts hands every conversation
//! back to the assistant. [`Desks`] starts each store's desk on the desks'
//! arbiter the first time it is asked for.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorFutureExt, Addr, ArbiterHandle, AsyncContext, Context, Handler, Message, Recipient,
    ResponseActFuture, WrapFuture,
};
use dashmap::DashMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::catalog::ProductCard;
use crate::ids::{ConversationId, MessageId, StoreId};
use crate::language::Language;
use crate::log::{ConversationLog, LogError, StoredMessage, now_ms};
use crate::metrics::{Metrics, ReasonLabel};
use crate::model::FinishReason;
use crate::prompt::Role;
use crate::reply::ReplyFeed;

/// Agent message ids remembered per conversation, for idempotent resends.
const REMEMBERED_AGENT_MESSAGES: usize = 32;

/// How the desk behaves, from configuration.
#[derive(Clone, Debug)]
pub struct DeskSettings {
    /// Events a watcher may have waiting before it is dropped.
    pub watcher_buffer: usize,
    /// A held conversation whose agent has left (no desk socket open) and
    /// done nothing for this long returns to the assistant.
    pub idle_return: Duration,
    /// A conversation whose shopper left stays on the list this long (a
    /// page change reconnects within it).
    pub linger: Duration,
    /// Longest agent message, in characters.
    pub max_message_chars: usize,
}

impl Default for DeskSettings {
    fn default() -> Self {
        Self {
            watcher_buffer: 512,
            idle_return: Duration::from_secs(300),
            linger: Duration::from_secs(60),
            max_message_chars: 2000,
        }
    }
}

/// A person from the store, as the desk knows them: a stable id (their
/// account) and the name shoppers see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    pub id: String,
    pub name: Arc<str>,
}

/// Where a live conversation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveState {
    /// The assistant's reply is streaming.
    AssistantReplying,
    /// The assistant answered; the shopper may write again.
    WaitingForShopper,
    /// The shopper asked for a person and nobody took the conversation yet.
    WaitingForHuman,
    /// A person from the store holds the conversation.
    HumanActive,
}

impl LiveState {
    pub fn as_str(self) -> &'static str {
        match self {
            LiveState::AssistantReplying => "assistant_replying",
            LiveState::WaitingForShopper => "waiting_for_shopper",
            LiveState::WaitingForHuman => "waiting_for_human",
            LiveState::HumanActive => "human_active",
        }
    }
}

/// What a session says about its conversation when it opens.
#[derive(Clone, Debug, PartialEq)]
pub struct ConversationFacts {
    pub conversation: ConversationId,
    pub language: Language,
    /// The page's path, without query or host.
    pub page_path: Option<String>,
    /// `desktop`, `mobile`, `tablet`, `bot`, `other`.
    pub device: String,
    pub started_at_ms: u64,
}

/// One line of the live list.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveConversation {
    pub facts: ConversationFacts,
    pub state: LiveState,
    /// Who holds it, if someone does.
    pub holder: Option<Arc<str>>,
    /// Whether a shopper's socket is open on it now.
    pub shopper_connected: bool,
}

/// Who is typing.
#[derive(Clone, Debug, PartialEq)]
pub enum Typist {
    Shopper,
    Agent(Arc<str>),
}

/// Something a watcher is told.
#[derive(Clone, Debug, PartialEq)]
pub enum DeskEvent {
    /// A conversation appeared on the list or changed.
    Conversation(LiveConversation),
    /// A conversation left the list.
    Ended { conversation: ConversationId },
    /// A message was stored: a shopper's (acknowledged) or an agent's.
    Message {
        conversation: ConversationId,
        message: StoredMessage,
    },
    /// Tokens `from_seq..=seq` of a reply, their text concatenated.
    Tokens {
        conversation: ConversationId,
        reply_id: MessageId,
        from_seq: u32,
        seq: u32,
        text: String,
    },
    /// A reply ended and is stored.
    ReplyDone {
        conversation: ConversationId,
        reply_id: MessageId,
        finish: FinishReason,
        cards: Vec<ProductCard>,
    },
    /// A reply failed; what arrived of it is stored, marked incomplete.
    ReplyFailed {
        conversation: ConversationId,
        reply_id: MessageId,
    },
    Typing {
        conversation: ConversationId,
        who: Typist,
    },
}

/// The desk's side of a watcher's queue. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Watcher {
    id: u64,
    events: mpsc::Sender<DeskEvent>,
    too_slow: CancellationToken,
}

/// The edge's side of a watcher's queue.
pub struct WatcherInbox {
    pub events: mpsc::Receiver<DeskEvent>,
    /// Cancelled when the watcher fell so far behind that it was dropped.
    pub too_slow: CancellationToken,
}

static NEXT_WATCHER: AtomicU64 = AtomicU64::new(1);

impl Watcher {
    /// A new watcher queue holding at most `capacity` events.
    pub fn channel(capacity: usize) -> (Watcher, WatcherInbox) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let too_slow = CancellationToken::new();
        let watcher = Watcher {
            id: NEXT_WATCHER.fetch_add(1, Ordering::Relaxed),
            events: tx,
            too_slow: too_slow.clone(),
        };
        (
            watcher,
            WatcherInbox {
                events: rx,
                too_slow,
            },
        )
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// Queues an event without waiting. False when the watcher is gone or
    /// too slow: a full queue marks it too slow, and it gets nothing more.
    pub(crate) fn offer(&self, event: DeskEvent) -> bool {
        if self.too_slow.is_cancelled() {
            return false;
        }
        match self.events.try_send(event) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.too_slow.cancel();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// What the desk tells the session holding a conversation.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub enum ToShopper {
    /// A person from the store took the conversation.
    AgentJoined {
        name: Arc<str>,
    },
    /// Their message, already stored.
    AgentMessage {
        message: StoredMessage,
    },
    AgentTyping {
        name: Arc<str>,
    },
    /// The conversation is the assistant's again; `idle`: because the
    /// person left and did not come back in time.
    HandedBack {
        idle: bool,
    },
}

/// Why the desk refused a watcher's request.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DeskRefusal {
    #[error("the conversation is not live on this store")]
    NotLive,
    #[error("{0} holds this conversation")]
    HeldBy(Arc<str>),
    #[error("take the conversation over first")]
    NotHolder,
    #[error("your role on this store does not allow this")]
    RoleTooLow,
    #[error("the message is empty")]
    MessageEmpty,
    #[error("a message is at most {0} characters")]
    MessageTooLong(usize),
    #[error("the message was not stored: {0}")]
    Storage(LogError),
    #[error("the watcher is not joined")]
    NotJoined,
}

/// A store's desk: its address and the holds sessions read when they
/// route a message.
#[derive(Clone)]
pub struct DeskHandle {
    pub addr: Addr<Desk>,
    holds: Arc<DashMap<ConversationId, Arc<str>>>,
}

impl DeskHandle {
    /// Who holds the conversation now, if anyone.
    pub fn holder(&self, conversation: &ConversationId) -> Option<Arc<str>> {
        self.holds.get(conversation).map(|name| Arc::clone(&name))
    }

    /// Marks a session's presence on its conversation; the returned guard
    /// tells the desk when the session ends, however it ends.
    pub fn present(&self, facts: ConversationFacts, shopper: Recipient<ToShopper>) -> Presence {
        let id = NEXT_WATCHER.fetch_add(1, Ordering::Relaxed);
        let conversation = facts.conversation;
        self.addr.do_send(Opened { id, facts, shopper });
        Presence {
            id,
            conversation,
            desk: self.addr.clone(),
            erased: false,
        }
    }
}

/// A session's presence on the desk; dropping it tells the desk the
/// shopper left.
pub struct Presence {
    id: u64,
    conversation: ConversationId,
    desk: Addr<Desk>,
    erased: bool,
}

impl Presence {
    pub fn conversation(&self) -> ConversationId {
        self.conversation
    }

    /// The conversation was erased: it leaves the list at once.
    pub fn erased(&mut self) {
        self.erased = true;
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        self.desk.do_send(Left {
            id: self.id,
            conversation: self.conversation,
            erased: self.erased,
        });
    }
}

/// A watcher's membership of the desk; dropping it leaves.
pub struct Joined {
    watcher: u64,
    desk: Addr<Desk>,
}

impl Drop for Joined {
    fn drop(&mut self) {
        self.desk.do_send(Leave {
            watcher: self.watcher,
        });
    }
}

/// Every store's desk, started on first use.
#[derive(Clone)]
pub struct Desks {
    inner: Arc<DesksInner>,
}

struct DesksInner {
    desks: DashMap<StoreId, DeskHandle>,
    arbiter: ArbiterHandle,
    log: Arc<dyn ConversationLog>,
    settings: Arc<DeskSettings>,
    metrics: Arc<Metrics>,
}

impl Desks {
    /// Desks that run on `arbiter` and store agent messages in `log`.
    pub fn new(
        arbiter: ArbiterHandle,
        log: Arc<dyn ConversationLog>,
        settings: DeskSettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            inner: Arc::new(DesksInner {
                desks: DashMap::new(),
                arbiter,
                log,
                settings: Arc::new(settings),
                metrics,
            }),
        }
    }

    pub fn settings(&self) -> &DeskSettings {
        &self.inner.settings
    }

    /// The store's desk, started now if it is not running yet.
    pub fn of(&self, store: &StoreId) -> DeskHandle {
        if let Some(handle) = self.inner.desks.get(store) {
            return handle.clone();
        }
        self.inner
            .desks
            .entry(store.clone())
            .or_insert_with(|| {
                let holds = Arc::new(DashMap::new());
                let desk = Desk {
                    store: store.clone(),
                    log: Arc::clone(&self.inner.log),
                    settings: Arc::clone(&self.inner.settings),
                    metrics: Arc::clone(&self.inner.metrics),
                    holds: Arc::clone(&holds),
                    conversations: HashMap::new(),
                    watchers: HashMap::new(),
                };
                let addr = Desk::start_in_arbiter(&self.inner.arbiter, move |_| desk);
                DeskHandle { addr, holds }
            })
            .clone()
    }
}

/// A held conversation.
struct Hold {
    agent: Agent,
    /// The agent's last action, or when their last desk socket closed.
    last_active: Instant,
}

/// A conversation on the list.
struct Live {
    facts: ConversationFacts,
    /// The session holding it: its presence id and its address.
    shopper: Option<(u64, Recipient<ToShopper>)>,
    /// When the shopper left, while nobody is connected.
    left_at: Option<Instant>,
    /// The reply in flight.
    reply: Option<Arc<ReplyFeed>>,
    hold: Option<Hold>,
    waiting_for_human: bool,
    /// Agent messages by their client id, newest last.
    agent_messages: VecDeque<(String, MessageId)>,
}

impl Live {
    fn state(&self) -> LiveState {
        if self.hold.is_some() {
            LiveState::HumanActive
        } else if self.reply.is_some() {
            LiveState::AssistantReplying
        } else if self.waiting_for_human {
            LiveState::WaitingForHuman
        } else {
            LiveState::WaitingForShopper
        }
    }

    fn line(&self) -> LiveConversation {
        LiveConversation {
            facts: self.facts.clone(),
            state: self.state(),
            holder: self.hold.as_ref().map(|h| Arc::clone(&h.agent.name)),
            shopper_connected: self.shopper.is_some(),
        }
    }

    fn tell_shopper(&self, message: ToShopper) {
        if let Some((_, shopper)) = &self.shopper {
            shopper.do_send(message);
        }
    }
}

/// A watcher joined to the desk.
struct Seat {
    watcher: Watcher,
    agent: Agent,
    /// Agents and owners may take over and write; viewers only watch.
    may_act: bool,
    watching: Option<ConversationId>,
}

/// One store's desk.
pub struct Desk {
    store: StoreId,
    log: Arc<dyn ConversationLog>,
    settings: Arc<DeskSettings>,
    metrics: Arc<Metrics>,
    holds: Arc<DashMap<ConversationId, Arc<str>>>,
    conversations: HashMap<ConversationId, Live>,
    watchers: HashMap<u64, Seat>,
}

impl Actor for Desk {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let tick = (self.settings.idle_return / 4)
            .min(self.settings.linger / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(5));
        ctx.run_interval(tick, |desk, _| desk.tick());
    }
}

impl Desk {
    /// Sends an event to every watcher; those too slow are dropped.
    fn tell_all(&mut self, event: &DeskEvent) {
        let mut dropped = Vec::new();
        for (id, seat) in &self.watchers {
            if !seat.watcher.offer(event.clone()) {
                dropped.push(*id);
            }
        }
        self.drop_watchers(dropped);
    }

    /// Sends an event to the watchers of one conversation.
    fn tell_watchers_of(&mut self, conversation: ConversationId, event: &DeskEvent) {
        let mut dropped = Vec::new();
        for (id, seat) in &self.watchers {
            if seat.watching == Some(conversation) && !seat.watcher.offer(event.clone()) {
                dropped.push(*id);
            }
        }
        self.drop_watchers(dropped);
    }

    fn drop_watchers(&mut self, dropped: Vec<u64>) {
        // The edge sees each one's `too_slow` fire, counts it and closes
        // its socket.
        for id in dropped {
            tracing::info!(store = %self.store, "watcher too slow: dropped");
            self.leave(id);
        }
    }

    fn leave(&mut self, id: u64) {
        let Some(seat) = self.watchers.remove(&id) else {
            return;
        };
        self.metrics.desk_watchers.dec();
        if let Some(conversation) = seat.watching {
            self.untap(conversation, id);
        }
        // An agent's last socket closing starts their idle time.
        let still_here = self.watchers.values().any(|s| s.agent.id == seat.agent.id);
        if !still_here {
            for live in self.conversations.values_mut() {
                if let Some(hold) = live.hold.as_mut().filter(|h| h.agent.id == seat.agent.id) {
                    hold.last_active = Instant::now();
                }
            }
        }
    }

    fn untap(&self, conversation: ConversationId, watcher: u64) {
        if let Some(feed) = self
            .conversations
            .get(&conversation)
            .and_then(|l| l.reply.as_ref())
        {
            feed.untap(watcher);
        }
    }

    fn changed(&mut self, conversation: ConversationId) {
        if let Some(line) = self.conversations.get(&conversation).map(Live::line) {
            self.tell_all(&DeskEvent::Conversation(line));
        }
    }

    fn seat(&self, watcher: u64, acting: bool) -> Result<&Seat, DeskRefusal> {
        let seat = self.watchers.get(&watcher).ok_or(DeskRefusal::NotJoined)?;
        if acting && !seat.may_act {
            return Err(DeskRefusal::RoleTooLow);
        }
        Ok(seat)
    }

    /// Idle holds return to the assistant; conversations whose shopper
    /// left long enough ago leave the list.
    fn tick(&mut self) {
        let now = Instant::now();
        let idle = self.settings.idle_return;
        let present: Vec<String> = self.watchers.values().map(|s| s.agent.id.clone()).collect();
        let expired: Vec<ConversationId> = self
            .conversations
            .iter()
            .filter(|(_, live)| {
                live.hold.as_ref().is_some_and(|hold| {
                    !present.contains(&hold.agent.id)
                        && now.duration_since(hold.last_active) >= idle
                })
            })
            .map(|(id, _)| *id)
            .collect();
        for conversation in expired {
            tracing::info!(store = %self.store, "held conversation idle: back to the assistant");
            self.hand_back(conversation, true);
        }
        let linger = self.settings.linger;
        let gone: Vec<ConversationId> = self
            .conversations
            .iter()
            .filter(|(_, live)| {
                live.hold.is_none()
                    && live.reply.is_none()
                    && live
                        .left_at
                        .is_some_and(|left| now.duration_since(left) >= linger)
            })
            .map(|(id, _)| *id)
            .collect();
        for conversation in gone {
            self.end(conversation);
        }
    }

    fn end(&mut self, conversation: ConversationId) {
        if self.conversations.remove(&conversation).is_some() {
            self.holds.remove(&conversation);
            for seat in self.watchers.values_mut() {
                if seat.watching == Some(conversation) {
                    seat.watching = None;
                }
            }
            self.tell_all(&DeskEvent::Ended { conversation });
        }
    }

    fn hand_back(&mut self, conversation: ConversationId, idle: bool) {
        let Some(live) = self.conversations.get_mut(&conversation) else {
            return;
        };
        if live.hold.take().is_none() {
            return;
        }
        self.holds.remove(&conversation);
        live.tell_shopper(ToShopper::HandedBack { idle });
        let reason = ReasonLabel {
            reason: if idle { "idle" } else { "agent" },
        };
        self.metrics.handbacks.get_or_create(&reason).inc();
        self.changed(conversation);
    }
}

/// A session opened (or resumed) a conversation.
#[derive(Message)]
#[rtype(result = "()")]
struct Opened {
    id: u64,
    facts: ConversationFacts,
    shopper: Recipient<ToShopper>,
}

impl Handler<Opened> for Desk {
    type Result = ();

    fn handle(&mut self, opened: Opened, _: &mut Context<Self>) {
        let conversation = opened.facts.conversation;
        let live = self.conversations.entry(conversation).or_insert(Live {
            facts: opened.facts.clone(),
            shopper: None,
            left_at: None,
            reply: None,
            hold: None,
            waiting_for_human: false,
            agent_messages: VecDeque::new(),
        });
        live.facts = ConversationFacts {
            // The conversation began when it first opened.
            started_at_ms: live.facts.started_at_ms.min(opened.facts.started_at_ms),
            ..opened.facts
        };
        live.shopper = Some((opened.id, opened.shopper));
        live.left_at = None;
        self.changed(conversation);
    }
}

/// The session holding a conversation ended.
#[derive(Message)]
#[rtype(result = "()")]
struct Left {
    id: u64,
    conversation: ConversationId,
    erased: bool,
}

impl Handler<Left> for Desk {
    type Result = ();

    fn handle(&mut self, left: Left, _: &mut Context<Self>) {
        if left.erased {
            self.end(left.conversation);
            return;
        }
        let Some(live) = self.conversations.get_mut(&left.conversation) else {
            return;
        };
        // A newer session of the same conversation may have opened first.
        if live.shopper.as_ref().is_some_and(|(id, _)| *id == left.id) {
            live.shopper = None;
            live.left_at = Some(Instant::now());
            self.changed(left.conversation);
        }
    }
}

/// A reply started for a conversation.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReplyStarted {
    pub conversation: ConversationId,
    pub feed: Arc<ReplyFeed>,
}

impl Handler<ReplyStarted> for Desk {
    type Result = ();

    fn handle(&mut self, started: ReplyStarted, ctx: &mut Context<Self>) {
        let conversation = started.conversation;
        let Some(live) = self.conversations.get_mut(&conversation) else {
            return;
        };
        let feed = started.feed;
        if live.hold.is_some() {
            // Taken over while the reply was being launched.
            feed.take_over();
        }
        for seat in self.watchers.values() {
            if seat.watching == Some(conversation) {
                feed.tap(conversation, seat.watcher.clone());
            }
        }
        live.reply = Some(Arc::clone(&feed));
        let reply_id = feed.reply_id();
        ctx.spawn(
            async move { feed.ended().await }
                .into_actor(self)
                .map(move |(), desk, _| {
                    if let Some(live) = desk.conversations.get_mut(&conversation)
                        && live
                            .reply
                            .as_ref()
                            .is_some_and(|f| f.reply_id() == reply_id)
                    {
                        live.reply = None;
                        desk.changed(conversation);
                    }
                }),
        );
        self.changed(conversation);
    }
}

/// A shopper message was acknowledged.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ShopperSaid {
    pub message: StoredMessage,
}

impl Handler<ShopperSaid> for Desk {
    type Result = ();

    fn handle(&mut self, said: ShopperSaid, _: &mut Context<Self>) {
        let conversation = said.message.conversation;
        self.tell_watchers_of(
            conversation,
            &DeskEvent::Message {
                conversation,
                message: said.message,
            },
        );
    }
}

/// The shopper is typing.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ShopperTyping {
    pub conversation: ConversationId,
}

impl Handler<ShopperTyping> for Desk {
    type Result = ();

    fn handle(&mut self, typing: ShopperTyping, _: &mut Context<Self>) {
        let event = DeskEvent::Typing {
            conversation: typing.conversation,
            who: Typist::Shopper,
        };
        self.tell_watchers_of(typing.conversation, &event);
    }
}

/// The shopper asked for a person.
#[derive(Message)]
#[rtype(result = "()")]
pub struct HumanRequested {
    pub conversation: ConversationId,
}

impl Handler<HumanRequested> for Desk {
    type Result = ();

    fn handle(&mut self, request: HumanRequested, _: &mut Context<Self>) {
        if let Some(live) = self.conversations.get_mut(&request.conversation)
            && live.hold.is_none()
            && !live.waiting_for_human
        {
            live.waiting_for_human = true;
            self.metrics.humans_requested.inc();
            self.changed(request.conversation);
        }
    }
}

/// A watcher joins: it gets the list now and every change after.
#[derive(Message)]
#[rtype(result = "(Joined, Vec<LiveConversation>)")]
pub struct Join {
    pub watcher: Watcher,
    pub agent: Agent,
    pub may_act: bool,
}

impl Handler<Join> for Desk {
    type Result = actix::MessageResult<Join>;

    fn handle(&mut self, join: Join, ctx: &mut Context<Self>) -> Self::Result {
        let id = join.watcher.id;
        let mut list: Vec<LiveConversation> = self.conversations.values().map(Live::line).collect();
        list.sort_by_key(|line| std::cmp::Reverse(line.facts.started_at_ms));
        self.watchers.insert(
            id,
            Seat {
                watcher: join.watcher,
                agent: join.agent,
                may_act: join.may_act,
                watching: None,
            },
        );
        self.metrics.desk_watchers.inc();
        actix::MessageResult((
            Joined {
                watcher: id,
                desk: ctx.address(),
            },
            list,
        ))
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Leave {
    watcher: u64,
}

impl Handler<Leave> for Desk {
    type Result = ();

    fn handle(&mut self, leave: Leave, _: &mut Context<Self>) {
        self.leave(leave.watcher);
    }
}

/// A watcher opens one conversation (or closes it, with `None`): from now
/// on it gets that conversation's messages, typing, and the reply in
/// flight from its first token.
#[derive(Message)]
#[rtype(result = "Result<Option<LiveConversation>, DeskRefusal>")]
pub struct Watch {
    pub watcher: u64,
    pub conversation: Option<ConversationId>,
}

impl Handler<Watch> for Desk {
    type Result = Result<Option<LiveConversation>, DeskRefusal>;

    fn handle(&mut self, watch: Watch, _: &mut Context<Self>) -> Self::Result {
        let previous = self
            .watchers
            .get_mut(&watch.watcher)
            .ok_or(DeskRefusal::NotJoined)?
            .watching
            .take();
        if let Some(previous) = previous {
            self.untap(previous, watch.watcher);
        }
        let Some(conversation) = watch.conversation else {
            return Ok(None);
        };
        let live = self
            .conversations
            .get(&conversation)
            .ok_or(DeskRefusal::NotLive)?;
        let (line, feed) = (live.line(), live.reply.clone());
        let seat = self
            .watchers
            .get_mut(&watch.watcher)
            .ok_or(DeskRefusal::NotJoined)?;
        seat.watching = Some(conversation);
        if let Some(feed) = feed
            && !feed.tap(conversation, seat.watcher.clone())
        {
            self.drop_watchers(vec![watch.watcher]);
            return Err(DeskRefusal::NotJoined);
        }
        Ok(Some(line))
    }
}

/// An agent takes a conversation over.
#[derive(Message)]
#[rtype(result = "Result<(), DeskRefusal>")]
pub struct TakeOver {
    pub watcher: u64,
    pub conversation: ConversationId,
}

impl Handler<TakeOver> for Desk {
    type Result = Result<(), DeskRefusal>;

    fn handle(&mut self, take: TakeOver, _: &mut Context<Self>) -> Self::Result {
        let agent = self.seat(take.watcher, true)?.agent.clone();
        let live = self
            .conversations
            .get_mut(&take.conversation)
            .ok_or(DeskRefusal::NotLive)?;
        if let Some(hold) = &mut live.hold {
            if hold.agent.id == agent.id {
                hold.last_active = Instant::now();
                return Ok(());
            }
            return Err(DeskRefusal::HeldBy(Arc::clone(&hold.agent.name)));
        }
        if let Some(feed) = &live.reply {
            feed.take_over();
        }
        live.waiting_for_human = false;
        live.tell_shopper(ToShopper::AgentJoined {
            name: Arc::clone(&agent.name),
        });
        self.holds
            .insert(take.conversation, Arc::clone(&agent.name));
        live.hold = Some(Hold {
            agent,
            last_active: Instant::now(),
        });
        self.metrics.takeovers.inc();
        tracing::info!(store = %self.store, "conversation taken over");
        self.changed(take.conversation);
        Ok(())
    }
}

/// The holder hands the conversation back to the assistant.
#[derive(Message)]
#[rtype(result = "Result<(), DeskRefusal>")]
pub struct HandBack {
    pub watcher: u64,
    pub conversation: ConversationId,
}

impl Handler<HandBack> for Desk {
    type Result = Result<(), DeskRefusal>;

    fn handle(&mut self, back: HandBack, _: &mut Context<Self>) -> Self::Result {
        let agent = self.seat(back.watcher, true)?.agent.clone();
        let live = self
            .conversations
            .get(&back.conversation)
            .ok_or(DeskRefusal::NotLive)?;
        match &live.hold {
            Some(hold) if hold.agent.id == agent.id => {}
            Some(hold) => return Err(DeskRefusal::HeldBy(Arc::clone(&hold.agent.name))),
            None => return Err(DeskRefusal::NotHolder),
        }
        self.hand_back(back.conversation, false);
        Ok(())
    }
}

/// The holder is typing.
#[derive(Message)]
#[rtype(result = "Result<(), DeskRefusal>")]
pub struct AgentTyping {
    pub watcher: u64,
    pub conversation: ConversationId,
}

impl Handler<AgentTyping> for Desk {
    type Result = Result<(), DeskRefusal>;

    fn handle(&mut self, typing: AgentTyping, _: &mut Context<Self>) -> Self::Result {
        let agent = self.seat(typing.watcher, true)?.agent.clone();
        let live = self
            .conversations
            .get_mut(&typing.conversation)
            .ok_or(DeskRefusal::NotLive)?;
        let hold = live
            .hold
            .as_mut()
            .filter(|h| h.agent.id == agent.id)
            .ok_or(DeskRefusal::NotHolder)?;
        hold.last_active = Instant::now();
        live.tell_shopper(ToShopper::AgentTyping {
            name: Arc::clone(&agent.name),
        });
        let event = DeskEvent::Typing {
            conversation: typing.conversation,
            who: Typist::Agent(agent.name),
        };
        self.tell_watchers_of(typing.conversation, &event);
        Ok(())
    }
}

/// The holder writes to the shopper. The message is stored and on disk
/// before the answer (its id) and before the shopper sees it.
#[derive(Message)]
#[rtype(result = "Result<MessageId, DeskRefusal>")]
pub struct AgentSays {
    pub watcher: u64,
    pub conversation: ConversationId,
    /// The dashboard's own id for the message: a resend is stored once.
    pub client_id: String,
    pub text: String,
}

impl Handler<AgentSays> for Desk {
    type Result = ResponseActFuture<Self, Result<MessageId, DeskRefusal>>;

    fn handle(&mut self, says: AgentSays, _: &mut Context<Self>) -> Self::Result {
        let refused = |refusal| Box::pin(actix::fut::ready(Err(refusal)));
        let agent = match self.seat(says.watcher, true) {
            Ok(seat) => seat.agent.clone(),
            Err(refusal) => return refused(refusal),
        };
        let text = says.text.trim();
        let max = self.settings.max_message_chars;
        if text.is_empty() {
            return refused(DeskRefusal::MessageEmpty);
        }
        if text.chars().count() > max {
            return refused(DeskRefusal::MessageTooLong(max));
        }
        let Some(live) = self.conversations.get_mut(&says.conversation) else {
            return refused(DeskRefusal::NotLive);
        };
        match live.hold.as_mut() {
            Some(hold) if hold.agent.id == agent.id => hold.last_active = Instant::now(),
            Some(hold) => return refused(DeskRefusal::HeldBy(Arc::clone(&hold.agent.name))),
            None => return refused(DeskRefusal::NotHolder),
        }
        if let Some((_, id)) = live
            .agent_messages
            .iter()
            .find(|(client_id, _)| *client_id == says.client_id)
        {
            return Box::pin(actix::fut::ready(Ok(*id)));
        }
        let message = StoredMessage {
            id: MessageId::new(),
            conversation: says.conversation,
            role: Role::Agent,
            text: text.to_owned(),
            at_ms: now_ms(),
            client_id: Some(says.client_id.clone()),
            reply: None,
            author: Some(agent.name.to_string()),
        };
        // Remembered before the write: a resend while it is flushed gets
        // the same id and is not stored again.
        live.agent_messages
            .push_back((says.client_id.clone(), message.id));
        while live.agent_messages.len() > REMEMBERED_AGENT_MESSAGES {
            live.agent_messages.pop_front();
        }
        let stored = self.log.append_durable(&self.store, &message);
        Box::pin(stored.into_actor(self).map(move |stored, desk, _| {
            let conversation = message.conversation;
            let id = message.id;
            if let Err(error) = stored {
                if let Some(live) = desk.conversations.get_mut(&conversation) {
                    live.agent_messages.retain(|(_, m)| *m != id);
                }
                return Err(DeskRefusal::Storage(error));
            }
            if let Some(live) = desk.conversations.get_mut(&conversation) {
                live.tell_shopper(ToShopper::AgentMessage {
                    message: message.clone(),
                });
            }
            desk.tell_watchers_of(
                conversation,
                &DeskEvent::Message {
                    conversation,
                    message,
                },
            );
            Ok(id)
        }))
    }
}

/// Words by which a shopper asks for a person, in every supported
/// language; matched on whole words of the lower-cased message.
const ASKING_FOR_A_HUMAN: &[&str] = &[
    // English
    "a human",
    "real person",
    "talk to a person",
    "speak to a person",
    "speak to someone",
    "talk to someone",
    "someone from the store",
    "an agent",
    "customer service",
    // Dutch
    "een mens",
    "een medewerker",
    "met iemand spreken",
    "klantenservice",
    // French
    "un humain",
    "une vraie personne",
    "un conseiller",
    "service client",
    // German
    "einen menschen",
    "einem mitarbeiter",
    "einen mitarbeiter",
    "kundenservice",
    "mit jemandem sprechen",
    // Spanish
    "un humano",
    "una persona real",
    "un agente",
    "atención al cliente",
    // Italian
    "un umano",
    "una persona vera",
    "un operatore",
    "servizio clienti",
];

/// Whether a shopper's message asks for a person from the store.
pub fn asks_for_human(text: &str) -> bool {
    // Words separated by single spaces, lower case: phrases match on whole
    // words by their boundaries.
    let words: Vec<String> = text
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    let spaced = words.join(" ");
    ASKING_FOR_A_HUMAN.iter().any(|phrase| {
        spaced.match_indices(phrase).any(|(at, _)| {
            let end = at + phrase.len();
            (at == 0 || spaced.as_bytes()[at - 1] == b' ')
                && (end == spaced.len() || spaced.as_bytes()[end] == b' ')
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_for_a_person_are_recognised_in_every_language() {
        for text in [
            "Can I talk to a human please?",
            "ik wil een medewerker spreken",
            "je voudrais parler à un conseiller",
            "Ich möchte mit einem Mitarbeiter reden",
            "quiero hablar con un agente",
            "posso parlare con un operatore?",
        ] {
            assert!(asks_for_human(text), "{text}");
        }
        for text in [
            "a tent for two",
            "human hair brush",
            "a gift for a person who likes coffee",
        ] {
            assert!(!asks_for_human(text), "{text}");
        }
    }

    #[test]
    fn a_full_queue_marks_the_watcher_too_slow_and_stops_it() {
        let (watcher, mut inbox) = Watcher::channel(2);
        let event = DeskEvent::Ended {
            conversation: ConversationId::new(),
        };
        assert!(watcher.offer(event.clone()));
        assert!(watcher.offer(event.clone()));
        assert!(!watcher.offer(event.clone()));
        assert!(inbox.too_slow.is_cancelled());
        // Nothing more is queued once it is too slow, even with room.
        assert!(inbox.events.try_recv().is_ok());
        assert!(!watcher.offer(event));
    }
}
