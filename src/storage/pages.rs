//! A store's knowledge pages, in the `pages` tree under `store \0 slug`.
//! Shop text the owner wrote (not personal data), kept in the clear and
//! removed with the store. A save is flushed before it is answered.

use std::sync::Mutex;

use mikabot_actors::ids::StoreId;
use mikabot_actors::knowledge::{MAX_PAGES, Page};

use super::records::PageV1;
use super::{Storage, StorageError, codec, keys};

/// Page saves one at a time, so two saves cannot both pass the page limit.
static SAVES: Mutex<()> = Mutex::new(());

/// What saving a page did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSaved {
    Created,
    Replaced,
    /// Refused: the store has [`MAX_PAGES`] pages and this one is new.
    TooMany,
}

impl Storage {
    /// A store's pages, by slug.
    pub fn pages(&self, store: &StoreId) -> Result<Vec<Page>, StorageError> {
        self.pages
            .scan_prefix(keys::store_prefix(store))
            .map(|entry| {
                let (_, value) = entry?;
                codec::open_plain::<PageV1, _>("pages", &value)
            })
            .collect()
    }

    /// One page.
    pub fn page(&self, store: &StoreId, slug: &str) -> Result<Option<Page>, StorageError> {
        self.pages
            .get(keys::page(store, slug))?
            .map(|v| codec::open_plain::<PageV1, _>("pages", &v))
            .transpose()
    }

    /// Creates or replaces a page (already validated), within the limit of
    /// pages per store, and flushes it.
    pub fn save_page(&self, store: &StoreId, page: &Page) -> Result<PageSaved, StorageError> {
        let _one_at_a_time = SAVES
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = keys::page(store, &page.slug);
        let exists = self.pages.contains_key(&key)?;
        if !exists {
            let count = self
                .pages
                .scan_prefix(keys::store_prefix(store))
                .keys()
                .take(MAX_PAGES)
                .count();
            if count >= MAX_PAGES {
                return Ok(PageSaved::TooMany);
            }
        }
        self.pages.insert(key, codec::plain(&PageV1::from(page)))?;
        self.pages.flush()?;
        Ok(if exists {
            PageSaved::Replaced
        } else {
            PageSaved::Created
        })
    }

    /// Deletes a page; whether it existed.
    pub fn delete_page(&self, store: &StoreId, slug: &str) -> Result<bool, StorageError> {
        let existed = self.pages.remove(keys::page(store, slug))?.is_some();
        self.pages.flush()?;
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageOptions;

    fn temp_storage() -> (tempfile::TempDir, Storage) {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open(&StorageOptions::in_dir(dir.path())).expect("open");
        (dir, storage)
    }

    fn page(slug: &str) -> Page {
        Page {
            slug: slug.into(),
            title: format!("Page {slug}"),
            body: "Text".into(),
            url: String::new(),
            updated_ms: 1,
        }
    }

    #[test]
    fn pages_are_saved_listed_replaced_and_deleted_per_store() {
        let (_dir, storage) = temp_storage();
        let shop = StoreId::parse("shop").expect("valid");
        let other = StoreId::parse("shop-2").expect("valid");
        assert_eq!(
            storage.save_page(&shop, &page("returns")).expect("write"),
            PageSaved::Created
        );
        assert_eq!(
            storage.save_page(&shop, &page("faq")).expect("write"),
            PageSaved::Created
        );
        assert_eq!(
            storage.save_page(&other, &page("faq")).expect("write"),
            PageSaved::Created
        );
        let mut changed = page("faq");
        changed.body = "New text".into();
        assert_eq!(
            storage.save_page(&shop, &changed).expect("write"),
            PageSaved::Replaced
        );
        let slugs: Vec<String> = storage
            .pages(&shop)
            .expect("list")
            .into_iter()
            .map(|p| p.slug)
            .collect();
        assert_eq!(slugs, ["faq", "returns"]);
        assert_eq!(storage.page(&shop, "faq").expect("read"), Some(changed));
        assert_eq!(
            storage.page(&other, "faq").expect("read"),
            Some(page("faq"))
        );
        assert!(storage.delete_page(&shop, "faq").expect("write"));
        assert!(!storage.delete_page(&shop, "faq").expect("write"));
        assert_eq!(storage.pages(&other).expect("list").len(), 1);
    }

    #[test]
    fn a_store_keeps_at_most_its_limit_of_pages_but_may_replace_them() {
        let (_dir, storage) = temp_storage();
        let shop = StoreId::parse("shop").expect("valid");
        for n in 0..MAX_PAGES {
            let saved = storage.save_page(&shop, &page(&format!("p{n}")));
            assert_eq!(saved.expect("write"), PageSaved::Created);
        }
        assert_eq!(
            storage.save_page(&shop, &page("one-more")).expect("write"),
            PageSaved::TooMany
        );
        assert_eq!(
            storage.save_page(&shop, &page("p3")).expect("write"),
            PageSaved::Replaced
        );
        assert_eq!(storage.pages(&shop).expect("list").len(), MAX_PAGES);
        assert_eq!(storage.page(&shop, "one-more").expect("read"), None);
    }
}
