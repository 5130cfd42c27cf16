//! The registry of live widget sessions. A session registers when it starts
//! and holds a [`Registration`] whose drop removes it, so a session is
//! deregistered however it ends: close, error, timeout, shutdown or panic.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actix::{Message, Recipient};
use dashmap::DashMap;

/// Asks a session to close its socket because the node is stopping.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct Shutdown;

#[derive(Default)]
struct Inner {
    sessions: DashMap<u64, Recipient<Shutdown>>,
    next: AtomicU64,
}

/// The live sessions of this node. Cheap to clone.
#[derive(Clone, Default)]
pub struct LiveSessions {
    inner: Arc<Inner>,
}

/// Proof of registration; dropping it deregisters the session.
pub struct Registration {
    id: u64,
    inner: Arc<Inner>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.inner.sessions.remove(&self.id);
    }
}

impl LiveSessions {
    /// Registers a session that can be told to shut down.
    pub fn register(&self, session: Recipient<Shutdown>) -> Registration {
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        self.inner.sessions.insert(id, session);
        Registration {
            id,
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
}
