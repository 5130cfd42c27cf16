//! The registry of live widget sessions. A session registers when it starts
//! and holds a [`Registration`] whose drop removes it, so a session is
//! deregistered however it ends: close, error, timeout, shutdown or panic.
//!
//! It is also the directory of conversations in use: which session holds a
//! conversation now (one at a time: a newer connection takes over and the
//! older one is told [`Replaced`]) and which reply is in flight for it, so a
//! shopper who reconnects, in the same tab or after a page navigation, can
//! follow the reply from the last token they saw.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix::{Message, Recipient};
use dashmap::DashMap;
use tokio::sync::watch;

use crate::ids::SessionId;
use crate::reply::ReplyFeed;
use crate::tasks::Tasks;

/// How long a finished reply stays available for catching up. Its text is
/// stored by then; this covers a reconnect racing the reply's end.
pub const FINISHED_REPLY_GRACE: Duration = Duration::from_secs(30);

/// Asks a session to close its socket because the node is stopping.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Tells a session that it no longer holds its conversation: a newer
/// connection took it over, or it was erased.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct Replaced {
    /// The conversation was erased: its reply is stopped, and the shopper
    /// starts afresh.
    pub erased: bool,
}

/// Who holds a conversation, and its reply in flight.
struct InUse {
    holder: Option<(u64, Recipient<Replaced>)>,
    feed: Option<Arc<ReplyFeed>>,
}

struct Inner {
    sessions: DashMap<u64, Recipient<Shutdown>>,
    /// How many sessions are registered, for those waiting for none.
    count: watch::Sender<usize>,
    conversations: DashMap<SessionId, InUse>,
    next: AtomicU64,
    /// Where the grace timers of finished replies run.
    tasks: Tasks,
}

impl Inner {
    fn forget_if_unused(&self, session: &SessionId) {
        self.conversations.remove_if(session, |_, used| {
            used.holder.is_none() && used.feed.is_none()
        });
    }
}

/// The live sessions of this node. Cheap to clone.
#[derive(Clone)]
pub struct LiveSessions {
    inner: Arc<Inner>,
}

impl Default for LiveSessions {
    fn default() -> Self {
        Self::new(Tasks::default())
    }
}

/// Proof of registration; dropping it deregisters the session and lets go
/// of the conversation it holds.
pub struct Registration {
    id: u64,
    holds: Option<SessionId>,
    inner: Arc<Inner>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if self.inner.sessions.remove(&self.id).is_some() {
            self.inner.count.send_modify(|live| *live -= 1);
        }
        if let Some(session) = self.holds.take() {
            if let Some(mut used) = self.inner.conversations.get_mut(&session)
                && used.holder.as_ref().is_some_and(|(id, _)| *id == self.id)
            {
                used.holder = None;
            }
            self.inner.forget_if_unused(&session);
        }
    }
}

impl LiveSessions {
    /// A registry whose timers run as `tasks`.
    pub fn new(tasks: Tasks) -> Self {
        Self {
            inner: Arc::new(Inner {
                sessions: DashMap::new(),
                count: watch::Sender::new(0),
                conversations: DashMap::new(),
                next: AtomicU64::new(0),
                tasks,
            }),
        }
    }

    /// Registers a session that can be told to shut down.
    pub fn register(&self, session: Recipient<Shutdown>) -> Registration {
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        self.inner.sessions.insert(id, session);
        self.inner.count.send_modify(|live| *live += 1);
        Registration {
            id,
            holds: None,
            inner: Arc::clone(&self.inner),
        }
    }

    /// How many sessions are live now.
    pub fn count(&self) -> usize {
        self.inner.sessions.len()
    }

    /// Tells every live session to close.
    pub fn shutdown_all(&self) {
        for entry in self.inner.sessions.iter() {
            entry.value().do_send(Shutdown);
        }
    }

    /// Resolves once no session is registered.
    pub async fn all_closed(&self) {
        let mut count = self.inner.count.subscribe();
        // The sender lives as long as `self`: waiting cannot fail.
        let _ = count.wait_for(|live| *live == 0).await;
    }

    /// Makes the registered session the holder of conversation `session`.
    /// A session holding it before is told [`Replaced`]. Returns the reply
    /// in flight for the conversation, if any.
    pub fn attach(
        &self,
        registration: &mut Registration,
        session: SessionId,
        replaced: Recipient<Replaced>,
    ) -> Option<Arc<ReplyFeed>> {
        let mut used = self.inner.conversations.entry(session).or_insert(InUse {
            holder: None,
            feed: None,
        });
        if let Some((id, previous)) = used.holder.replace((registration.id, replaced))
            && id != registration.id
        {
            previous.do_send(Replaced { erased: false });
        }
        registration.holds = Some(session);
        used.feed.clone()
    }

    /// Reaches an erased conversation in memory: its reply in flight is
    /// stopped (and never recorded), its feed dropped, and the session
    /// holding it closed.
    pub fn erase(&self, session: SessionId) {
        if let Some((_, used)) = self.inner.conversations.remove(&session) {
            if let Some(feed) = used.feed {
                feed.withdraw();
            }
            if let Some((_, holder)) = used.holder {
                holder.do_send(Replaced { erased: true });
            }
        }
    }

    /// Makes `feed` the conversation's reply in flight, if the registered
    /// session still holds the conversation; false if it was taken over.
    /// The feed is forgotten [`FINISHED_REPLY_GRACE`] after the reply ends.
    pub fn publish(&self, registration: &Registration, feed: &Arc<ReplyFeed>) -> bool {
        let Some(session) = registration.holds else {
            return false;
        };
        match self.inner.conversations.get_mut(&session) {
            Some(mut used)
                if used
                    .holder
                    .as_ref()
                    .is_some_and(|(id, _)| *id == registration.id) =>
            {
                used.feed = Some(Arc::clone(feed));
            }
            _ => return false,
        }
        let inner = Arc::clone(&self.inner);
        let feed = Arc::clone(feed);
        let tasks = self.inner.tasks.clone();
        self.inner.tasks.spawn(async move {
            // A stopping node follows no reply again: the timer ends.
            tokio::select! {
                () = async {
                    feed.ended().await;
                    tokio::time::sleep(FINISHED_REPLY_GRACE).await;
                } => {}
                () = tasks.stopping() => {}
            }
            if let Some(mut used) = inner.conversations.get_mut(&session)
                && used.feed.as_ref().is_some_and(|f| Arc::ptr_eq(f, &feed))
            {
                used.feed = None;
            }
            inner.forget_if_unused(&session);
        });
        true
    }

    /// Forgets `feed` as the conversation's reply in flight (its message
    /// could not be stored), so no reconnect follows it.
    pub fn withdraw(&self, registration: &Registration, feed: &Arc<ReplyFeed>) {
        let Some(session) = registration.holds else {
            return;
        };
        if let Some(mut used) = self.inner.conversations.get_mut(&session)
            && used.feed.as_ref().is_some_and(|f| Arc::ptr_eq(f, feed))
        {
            used.feed = None;
        }
    }
}
