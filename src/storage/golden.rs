//! A store's golden conversations (`goldens`: the questions with their
//! expectations) and their last replay (`golden_runs`), each one record
//! under the store id. The owner's own test questions and the answers to
//! them: not personal data, kept in the clear, removed with the store.

use mikabot_actors::golden::{Golden, Outcome};
use mikabot_actors::ids::StoreId;

use super::records::{GoldenRunV1, GoldensV1, Invalid};
use super::{Storage, StorageError, codec, keys};

/// A store's golden questions as read.
struct GoldenList(Vec<Golden>);

impl TryFrom<GoldensV1> for GoldenList {
    type Error = Invalid;
    fn try_from(record: GoldensV1) -> Result<Self, Invalid> {
        Ok(Self(record.goldens))
    }
}

impl TryFrom<GoldenRunV1> for GoldenRun {
    type Error = Invalid;
    fn try_from(record: GoldenRunV1) -> Result<Self, Invalid> {
        Ok(Self {
            at_ms: record.at_ms,
            outcomes: record.outcomes,
        })
    }
}

/// The last replay of a store's golden conversations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoldenRun {
    pub at_ms: u64,
    /// One per question, in the list's order.
    pub outcomes: Vec<Outcome>,
}

impl Storage {
    /// A store's golden questions (none if it has no list).
    pub fn goldens(&self, store: &StoreId) -> Result<Vec<Golden>, StorageError> {
        match self.goldens.get(keys::store(store))? {
            Some(bytes) => Ok(codec::open_plain::<GoldensV1, GoldenList>("goldens", &bytes)?.0),
            None => Ok(Vec::new()),
        }
    }

    /// Replaces a store's golden questions (already validated), flushed.
    pub fn put_goldens(&self, store: &StoreId, goldens: &[Golden]) -> Result<(), StorageError> {
        let record = GoldensV1 {
            goldens: goldens.to_vec(),
        };
        self.goldens
            .insert(keys::store(store), codec::plain(&record))?;
        self.goldens.flush()?;
        Ok(())
    }

    /// The last replay, if any.
    pub fn golden_run(&self, store: &StoreId) -> Result<Option<GoldenRun>, StorageError> {
        self.golden_runs
            .get(keys::store(store))?
            .map(|bytes| codec::open_plain::<GoldenRunV1, GoldenRun>("golden_runs", &bytes))
            .transpose()
    }

    /// Keeps a replay as the last one, flushed.
    pub fn put_golden_run(&self, store: &StoreId, run: &GoldenRun) -> Result<(), StorageError> {
        let record = GoldenRunV1 {
            at_ms: run.at_ms,
            outcomes: run.outcomes.clone(),
        };
        self.golden_runs
            .insert(keys::store(store), codec::plain(&record))?;
        self.golden_runs.flush()?;
        Ok(())
    }
}
