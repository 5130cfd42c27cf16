//! Store profiles and catalogs. A catalog is written as a new generation
//! (`store \0 generation(4) id`) in bounded chunks; one insert then makes it
//! current, and the old generation is deleted. A crash at any point leaves
//! the old catalog or the new one; generations left behind are swept at
//! start-up.

use std::collections::{BTreeMap, HashMap};

use mikabot_actors::catalog::{Product, StoreProfile};
use mikabot_actors::ids::StoreId;

use super::records::{ProductV1, StoreV1};
use super::{Storage, StorageError, codec, keys};

/// Products written per batch: one batch for a whole large catalog costs
/// sled about ten times the catalog's size in memory.
pub(super) const CATALOG_CHUNK: usize = 4096;

fn generation_of(bytes: Option<sled::IVec>) -> u32 {
    bytes
        .and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok())
        .map_or(0, u32::from_be_bytes)
}

impl Storage {
    /// Creates or updates a store's profile.
    pub fn put_store(&self, profile: &StoreProfile) -> Result<(), StorageError> {
        let key = keys::store(&profile.id);
        let value = codec::plain(&StoreV1::from(profile));
        self.stores.insert(key, value)?;
        Ok(())
    }

    /// Every store's profile.
    pub fn stores(&self) -> Result<Vec<StoreProfile>, StorageError> {
        self.stores
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                std::str::from_utf8(&key)
                    .ok()
                    .and_then(|id| StoreId::parse(id).ok())
                    .ok_or_else(|| StorageError::Corrupt {
                        tree: "stores",
                        problem: "a key is not a store id".into(),
                    })?;
                codec::open_plain::<StoreV1, _>("stores", &value)
            })
            .collect()
    }

    /// One store's profile.
    pub fn store(&self, id: &StoreId) -> Result<Option<StoreProfile>, StorageError> {
        let key = keys::store(id);
        self.stores
            .get(key)?
            .map(|v| codec::open_plain::<StoreV1, _>("stores", &v))
            .transpose()
    }

    fn generation(&self, store: &StoreId) -> Result<u32, StorageError> {
        Ok(generation_of(self.generations.get(keys::store(store))?))
    }

    /// Hands each product of a store's catalog to `each`, in product-id
    /// order, without holding the catalog in memory.
    pub fn for_each_product(
        &self,
        store: &StoreId,
        mut each: impl FnMut(Product) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let generation = self.generation(store)?;
        for entry in self
            .products
            .scan_prefix(keys::generation(store, generation))
        {
            let (_, value) = entry?;
            each(codec::open_plain::<ProductV1, _>("products", &value)?)?;
        }
        Ok(())
    }

    /// How many products a store's catalog holds (keys counted, nothing
    /// decoded).
    pub fn catalog_len(&self, store: &StoreId) -> Result<usize, StorageError> {
        let generation = self.generation(store)?;
        let mut count = 0;
        for key in self
            .products
            .scan_prefix(keys::generation(store, generation))
            .keys()
        {
            key?;
            count += 1;
        }
        Ok(count)
    }

    /// A store's catalog, in product-id order.
    pub fn catalog(&self, store: &StoreId) -> Result<Vec<Product>, StorageError> {
        let generation = self.generation(store)?;
        self.products
            .scan_prefix(keys::generation(store, generation))
            .map(|entry| {
                let (_, value) = entry?;
                codec::open_plain::<ProductV1, _>("products", &value)
            })
            .collect()
    }

    /// Replaces a store's whole catalog. Written as a new generation in
    /// chunks and made current in one step: a crash leaves the old catalog
    /// or the new one, never a mix.
    pub fn replace_catalog(
        &self,
        store: &StoreId,
        products: &[Product],
    ) -> Result<(), StorageError> {
        let old = self.generation(store)?;
        let new = old.wrapping_add(1);
        self.delete_generation(store, new)?;
        for chunk in products.chunks(CATALOG_CHUNK) {
            let mut batch = sled::Batch::default();
            for product in chunk {
                let key = keys::product(store, new, &product.id.0);
                let value = codec::plain(&ProductV1::from(product));
                batch.insert(key, value);
            }
            self.products.apply_batch(batch)?;
        }
        // The new generation must be on disk before it becomes current.
        self.db.flush()?;
        self.generations
            .insert(keys::store(store), &new.to_be_bytes())?;
        self.delete_generation(store, old)?;
        Ok(())
    }

    /// Adds or updates products by id, keeping the others; as atomic as
    /// [`replace_catalog`](Self::replace_catalog). Returns the catalog now
    /// stored.
    pub fn upsert_products(
        &self,
        store: &StoreId,
        products: &[Product],
    ) -> Result<Vec<Product>, StorageError> {
        let mut merged: BTreeMap<String, Product> = self
            .catalog(store)?
            .into_iter()
            .map(|p| (p.id.0.clone(), p))
            .collect();
        for product in products {
            merged.insert(product.id.0.clone(), product.clone());
        }
        let merged: Vec<Product> = merged.into_values().collect();
        self.replace_catalog(store, &merged)?;
        Ok(merged)
    }

    fn delete_generation(&self, store: &StoreId, generation: u32) -> Result<(), StorageError> {
        let prefix = keys::generation(store, generation);
        loop {
            let keys: Vec<sled::IVec> = self
                .products
                .scan_prefix(&prefix)
                .keys()
                .take(CATALOG_CHUNK)
                .collect::<Result<_, _>>()?;
            if keys.is_empty() {
                return Ok(());
            }
            self.remove_products(&keys)?;
        }
    }

    /// Removes product rows in batches of [`CATALOG_CHUNK`].
    fn remove_products(&self, keys: &[sled::IVec]) -> Result<(), StorageError> {
        for chunk in keys.chunks(CATALOG_CHUNK) {
            let mut batch = sled::Batch::default();
            for key in chunk {
                batch.remove(key.clone());
            }
            self.products.apply_batch(batch)?;
        }
        Ok(())
    }

    /// Deletes catalog generations a crash left behind; returns how many
    /// products were removed.
    pub fn sweep_catalogs(&self) -> Result<usize, StorageError> {
        let current: HashMap<Vec<u8>, u32> = self
            .generations
            .iter()
            .map(|entry| {
                let (store, generation) = entry?;
                Ok((store.to_vec(), generation_of(Some(generation))))
            })
            .collect::<Result<_, sled::Error>>()?;
        let mut stale: Vec<sled::IVec> = Vec::new();
        for entry in self.products.iter().keys() {
            let key = entry?;
            let Some((store, generation)) = keys::product_generation(&key) else {
                continue;
            };
            let expected = current.get(store).copied().unwrap_or(0);
            if generation != expected {
                stale.push(key);
            }
        }
        self.remove_products(&stale)?;
        Ok(stale.len())
    }
}

#[cfg(test)]
mod tests {
    use mikabot_actors::catalog::{Currency, Money};
    use mikabot_actors::ids::ProductId;

    use super::*;
    use crate::storage::StorageOptions;

    fn product(id: &str) -> Product {
        Product {
            id: ProductId(id.into()),
            name: format!("Product {id}"),
            brand: String::new(),
            category: String::new(),
            description: String::new(),
            tags: Vec::new(),
            price: Money {
                minor: 100,
                currency: Currency::parse("EUR").expect("EUR"),
            },
            price_max: None,
            image_url: String::new(),
            url: format!("https://shop.example/{id}"),
            in_stock: true,
        }
    }

    #[test]
    fn catalogs_replace_upsert_and_sweep_by_generation() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open(&StorageOptions::in_dir(dir.path())).expect("open");
        let shop = StoreId::parse("shop").expect("valid");
        let many: Vec<Product> = (0..CATALOG_CHUNK + 10)
            .map(|i| product(&format!("p{i:05}")))
            .collect();
        storage.replace_catalog(&shop, &many).expect("replace");
        assert_eq!(
            storage.catalog(&shop).expect("catalog").len(),
            CATALOG_CHUNK + 10
        );
        storage
            .replace_catalog(&shop, &many[..3])
            .expect("replace again");
        assert_eq!(storage.catalog(&shop).expect("catalog").len(), 3);
        storage
            .upsert_products(&shop, &[product("p00001"), product("new")])
            .expect("upsert");
        let ids: Vec<_> = storage
            .catalog(&shop)
            .expect("catalog")
            .into_iter()
            .map(|p| p.id.0)
            .collect();
        assert_eq!(ids, ["new", "p00000", "p00001", "p00002"]);
        // A crash between writing a generation and making it current leaves
        // rows that the sweep removes, while the current catalog stays.
        let orphan = keys::product(&shop, 99, "ghost");
        let value = codec::plain(&ProductV1::from(&product("ghost")));
        storage.products.insert(orphan, value).expect("insert");
        assert_eq!(storage.sweep_catalogs().expect("sweep"), 1);
        assert_eq!(storage.catalog(&shop).expect("catalog").len(), 4);
        assert_eq!(storage.products.len(), 4, "old generations are gone");
    }

    #[test]
    fn an_unreadable_product_is_reported_with_its_tree() {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open(&StorageOptions::in_dir(dir.path())).expect("open");
        let shop = StoreId::parse("shop").expect("valid");
        storage
            .products
            .insert(keys::product(&shop, 0, "broken"), &b"{\"id\":"[..])
            .expect("insert");
        match storage.catalog(&shop) {
            Err(StorageError::Corrupt {
                tree: "products", ..
            }) => {}
            other => panic!("expected a corrupt product, got {other:?}"),
        }
    }
}
