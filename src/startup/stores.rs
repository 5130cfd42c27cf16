//! The threads store actors live on, and how each store's actor starts.
//! Store actors run on their own arbiters (one per core), never on an HTTP
//! worker or the main thread: a search, an index swap or a catalog load
//! there delays no socket. Each actor reads its catalog and knowledge pages
//! from storage and
//! builds its index on a blocking thread when it starts, and again when its
//! supervisor restarts it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use actix::{Addr, Arbiter, ArbiterHandle, Supervisor};
use mikabot_actors::catalog::StoreProfile;
use mikabot_actors::store::{CatalogLoader, StoreCatalog, StoreContent, Stores};

use crate::storage::Storage;

/// The arbiters store actors are spread over.
pub struct StoreThreads {
    handles: Vec<ArbiterHandle>,
    /// Taken when the node stops.
    arbiters: Mutex<Vec<Arbiter>>,
    next: AtomicUsize,
}

impl StoreThreads {
    /// `count` arbiters (at least one). Must run inside an actix system.
    pub fn new(count: usize) -> Self {
        let arbiters: Vec<Arbiter> = (0..count.max(1)).map(|_| Arbiter::new()).collect();
        Self {
            handles: arbiters.iter().map(Arbiter::handle).collect(),
            arbiters: Mutex::new(arbiters),
            next: AtomicUsize::new(0),
        }
    }

    /// Starts `profile`'s store actor on the next arbiter; it loads its
    /// catalog from `storage` before it handles any message.
    pub fn start(
        &self,
        profile: StoreProfile,
        storage: &Storage,
        stores: &Stores,
    ) -> Addr<StoreCatalog> {
        let id = profile.id.clone();
        let storage = storage.clone();
        let load: CatalogLoader = Arc::new(move || {
            Ok(StoreContent {
                products: storage.catalog(&id).map_err(|e| e.to_string())?,
                // A page that cannot be read costs the store its pages,
                // never its products.
                pages: storage.pages(&id).unwrap_or_else(|error| {
                    tracing::error!(store = %id, %error, "knowledge pages not loaded");
                    Vec::new()
                }),
            })
        });
        let catalog = StoreCatalog::loading(profile, load, stores);
        let at = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        // Supervised: a store actor that stops after a panicking search is
        // restarted, and reloads its catalog.
        Supervisor::start_in_arbiter(&self.handles[at], move |_| catalog)
    }

    /// Stops the arbiters and waits for their threads to end.
    pub fn stop(&self) {
        let arbiters =
            std::mem::take(&mut *self.arbiters.lock().unwrap_or_else(PoisonError::into_inner));
        for arbiter in &arbiters {
            arbiter.stop();
        }
        for arbiter in arbiters {
            if arbiter.join().is_err() {
                tracing::error!("a store thread panicked while stopping");
            }
        }
    }
}
