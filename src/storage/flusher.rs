//! Group commit: one thread, `mikabot-flush`, writes what the requests
//! carry, then makes everything durable with a single sled flush for every
//! request that arrived meanwhile. A request that arrives during a flush
//! waits for the next one, so its flush always covers the writes made
//! before it. Writes that come this way never make a caller's thread wait
//! on the disk. The thread holds the database weakly, so dropping the last
//! `Storage` still closes it, and it ends with the last sender.

use std::sync::Weak;
use std::sync::mpsc;
use std::time::Instant;

use prometheus_client::metrics::histogram::Histogram;

use super::StorageError;

/// Why a flush request failed, as its waiter learns it.
pub type FlushOutcome = Result<(), String>;

/// A write the storage thread makes before the flush: tree, key, value.
pub type Write = (sled::Tree, Vec<u8>, Vec<u8>);

/// A request to the storage thread: make everything written so far
/// durable, after making `writes` (if any).
pub struct FlushRequest {
    pub writes: Vec<Write>,
    pub waiter: tokio::sync::oneshot::Sender<FlushOutcome>,
    /// The request's place in the bounded queue ([`super::Storage`]'s
    /// `flush_queue`), freed when the request is answered and dropped.
    pub _place: tokio::sync::OwnedSemaphorePermit,
}

/// Starts the storage thread for `db`; requests go to the returned sender.
pub fn spawn(
    db: Weak<sled::Db>,
    flush_seconds: Histogram,
) -> Result<(mpsc::Sender<FlushRequest>, std::thread::JoinHandle<()>), StorageError> {
    let (requests, incoming) = mpsc::channel::<FlushRequest>();
    let thread = std::thread::Builder::new()
        .name("mikabot-flush".into())
        .spawn(move || {
            while let Ok(first) = incoming.recv() {
                let mut batch = vec![first];
                batch.extend(incoming.try_iter());
                commit(&db, batch, &flush_seconds);
            }
        })
        .map_err(|e| StorageError::Sled(sled::Error::Io(e)))?;
    Ok((requests, thread))
}

/// Writes a batch of requests and answers them all with one flush.
fn commit(db: &Weak<sled::Db>, batch: Vec<FlushRequest>, flush_seconds: &Histogram) {
    // Each waiter keeps its place in the queue until it is answered, so
    // the bound counts writes waiting for the disk, the flush included.
    let mut waiters = Vec::with_capacity(batch.len());
    for request in batch {
        let FlushRequest {
            writes,
            waiter,
            _place: place,
        } = request;
        let written = writes.into_iter().try_for_each(|(tree, key, value)| {
            tree.insert(key, value)
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        match written {
            Ok(()) => waiters.push((waiter, place)),
            Err(error) => {
                // The waiter may have gone (its session ended); nobody
                // else needs the answer.
                let _ = waiter.send(Err(error));
            }
        }
    }
    let started = Instant::now();
    let result = match db.upgrade() {
        Some(db) => db.flush().map(|_| ()).map_err(|e| e.to_string()),
        None => Err("the database is closed".to_owned()),
    };
    flush_seconds.observe(started.elapsed().as_secs_f64());
    for (waiter, place) in waiters {
        let _ = waiter.send(result.clone());
        drop(place);
    }
}
