//! Saving and deleting a store's knowledge pages, for the store API and the
//! dashboard alike: the page is checked, stored (flushed), and the store's
//! passages rebuilt off the actor's thread and installed in its actor, so
//! the next question is answered from the pages as they now are.

use mikabot_actors::ids::StoreId;
use mikabot_actors::knowledge::{Knowledge, Page, PageProblem};
use mikabot_actors::language::Language;
use mikabot_actors::store::InstallKnowledge;

use crate::http::AppState;
use crate::storage::{PageSaved, StorageError};

/// Why a page was not saved.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("{0}")]
    Invalid(PageProblem),
    /// The store was deleted meanwhile.
    #[error("the store no longer exists")]
    StoreGone,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Saves a page (created or replaced) and installs the store's new passages.
pub async fn save(
    state: &AppState,
    store: &StoreId,
    language: Language,
    page: Page,
) -> Result<PageSaved, SaveError> {
    page.validate().map_err(SaveError::Invalid)?;
    // Held through the reinstall too: two saves install their passages in
    // the order they stored them.
    let changing = state.profile_changes.lock().await;
    let id = store.clone();
    let saved = state
        .write_for_store(&changing, store, move |storage| {
            storage.save_page(&id, &page)
        })
        .await?
        .ok_or(SaveError::StoreGone)?;
    if saved == PageSaved::TooMany {
        return Err(SaveError::Invalid(PageProblem::TooManyPages));
    }
    reinstall(state, store, language).await?;
    Ok(saved)
}

/// Deletes a page; whether it existed.
pub async fn delete(
    state: &AppState,
    store: &StoreId,
    language: Language,
    slug: &str,
) -> Result<bool, StorageError> {
    let changing = state.profile_changes.lock().await;
    let (id, slug) = (store.clone(), slug.to_owned());
    let existed = state
        .write_for_store(&changing, store, move |storage| {
            storage.delete_page(&id, &slug)
        })
        .await?
        .unwrap_or(false);
    if existed {
        reinstall(state, store, language).await?;
    }
    Ok(existed)
}

/// Rebuilds a store's passages from its stored pages and installs them in
/// its actor (also when the store's language changed). Callers hold
/// `profile_changes`, so installs follow the order of the saves.
pub async fn reinstall(
    state: &AppState,
    store: &StoreId,
    language: Language,
) -> Result<(), StorageError> {
    let Some(actor) = state.stores.get(store) else {
        // No actor serves the store: its next start loads the pages.
        return Ok(());
    };
    let id = store.clone();
    let knowledge = state
        .storage
        .blocking(move |storage| Ok(Knowledge::build(&storage.pages(&id)?, language)))
        .await?;
    if actor.send(InstallKnowledge(knowledge)).await.is_err() {
        tracing::error!(%store, "store actor gone; pages not installed");
    }
    Ok(())
}
