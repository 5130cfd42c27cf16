//! Applying a parsed feed to a store: the all-or-nothing rule, persistence
//! in sled first (on a blocking thread, never an HTTP worker), then a new
//! index built on a blocking thread and swapped into the store's actor
//! whole.

use actix::Addr;
use mikabot_actors::catalog::{Product, StoreProfile};
use mikabot_actors::search::lexicon;
use mikabot_actors::store::{InstallCatalog, StoreCatalog, build_index};
use serde::Serialize;

use crate::import::{Format, Mode, Parsed, Rejection};
use crate::storage::{Storage, StorageError};

/// Whether the feed is the whole catalog or an update to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The feed replaces the catalog.
    Replace,
    /// The feed's products are added or updated by id; others stay.
    Upsert,
}

/// What an import did, row by row.
#[derive(Clone, Debug, Serialize)]
pub struct ImportReport {
    pub format: Format,
    pub mode: Mode,
    pub scope: Scope,
    /// Rows read from the feed.
    pub rows: usize,
    /// Products written.
    pub imported: usize,
    pub rejected_count: usize,
    pub rejected: Vec<Rejection>,
    /// Products in the store's catalog afterwards (after a refused import:
    /// the catalog as it stands, unchanged).
    pub catalog_size: usize,
}

/// Why an import changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{} of {} rows were rejected; nothing was imported (fix them, or import with mode=partial)", .0.rejected_count, .0.rows)]
    Rejected(Box<ImportReport>),
    /// Every row was rejected: a partial import would empty the catalog.
    #[error("all {} rows were rejected; the catalog was left as it was", .0.rows)]
    NothingValid(Box<ImportReport>),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
}

impl ApplyError {
    /// The report of a refused import, if the refusal has one.
    pub fn report(&self) -> Option<&ImportReport> {
        match self {
            ApplyError::Rejected(report) | ApplyError::NothingValid(report) => Some(report),
            ApplyError::Storage(_) => None,
        }
    }

    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            ApplyError::Rejected(_) => "rows_rejected",
            ApplyError::NothingValid(_) => "no_valid_rows",
            ApplyError::Storage(_) => "storage_failed",
        }
    }
}

/// Applies `parsed` to `profile`'s store. With a live `catalog` actor, the
/// new index is built on a blocking thread and installed in one message.
pub async fn apply(
    storage: &Storage,
    profile: &StoreProfile,
    catalog: Option<&Addr<StoreCatalog>>,
    parsed: Parsed,
    mode: Mode,
    scope: Scope,
) -> Result<ImportReport, ApplyError> {
    let mut report = ImportReport {
        format: parsed.format,
        mode,
        scope,
        rows: parsed.rows,
        imported: 0,
        rejected_count: parsed.rejected.len(),
        rejected: parsed.rejected,
        catalog_size: 0,
    };
    let rejected = mode == Mode::AllOrNothing && report.rejected_count > 0;
    if rejected || parsed.products.is_empty() {
        // The refusal and its rows matter more than the count: a failed
        // count is logged and the refusal still answered.
        let store = profile.id.clone();
        match storage
            .blocking(move |storage| storage.catalog_len(&store))
            .await
        {
            Ok(size) => report.catalog_size = size,
            Err(error) => tracing::warn!(%error, "catalog size of a refused import not read"),
        }
        let report = Box::new(report);
        return Err(if rejected {
            ApplyError::Rejected(report)
        } else {
            ApplyError::NothingValid(report)
        });
    }
    report.imported = parsed.products.len();
    let store = profile.id.clone();
    // Thousands of writes and a flush: off this thread.
    let products = storage
        .blocking(move |storage| match scope {
            Scope::Replace => {
                storage.replace_catalog(&store, &parsed.products)?;
                Ok(parsed.products)
            }
            Scope::Upsert => storage.upsert_products(&store, &parsed.products),
        })
        .await?;
    storage.flush().await?;
    report.catalog_size = products.len();
    if let Some(catalog) = catalog {
        install(catalog, profile.clone(), products).await;
    }
    Ok(report)
}

/// Builds the index for `profile` on a blocking thread and installs both in
/// the store's actor in one message. The lexicons its searches use load on
/// that thread too, so a store whose language changed never loads one on
/// the actor's thread at its first search.
pub async fn install(catalog: &Addr<StoreCatalog>, profile: StoreProfile, products: Vec<Product>) {
    let store = profile.id.clone();
    let built = tokio::task::spawn_blocking(move || {
        lexicon::load_for(profile.default_language);
        let index = build_index(&profile, products);
        (profile, index)
    })
    .await;
    match built {
        Ok((profile, index)) => {
            if catalog
                .send(InstallCatalog { profile, index })
                .await
                .is_err()
            {
                tracing::error!(%store, "store actor gone; catalog not installed");
            }
        }
        Err(error) => tracing::error!(%error, "index build failed; the next start rebuilds it"),
    }
}
