//! `StoreCatalog`: one actor per store, holding the store's profile and its
//! search index in memory. The index is rebuilt from storage at start-up and
//! is never the source of truth. [`Stores`] finds a store's actor by id.

use std::sync::Arc;

use actix::{Actor, Addr, Context, Handler, Message, MessageResult};
use dashmap::DashMap;

use crate::catalog::{Product, StoreProfile};
use crate::ids::StoreId;
use crate::language::Language;
use crate::search::{Hit, SearchIndex};

/// Holds one store's catalog and answers product searches.
pub struct StoreCatalog {
    profile: Arc<StoreProfile>,
    index: Arc<SearchIndex>,
}

impl StoreCatalog {
    pub fn new(profile: StoreProfile, products: Vec<Product>) -> Self {
        let index = build_index(&profile, products);
        Self {
            profile: Arc::new(profile),
            index: Arc::new(index),
        }
    }
}

/// The index a store's catalog gets: its language and synonyms applied.
pub fn build_index(profile: &StoreProfile, products: Vec<Product>) -> SearchIndex {
    SearchIndex::build_with_synonyms(
        products.into_iter().map(Arc::new).collect(),
        profile.default_language,
        &profile.synonyms,
    )
}

impl Actor for StoreCatalog {
    type Context = Context<Self>;
}

/// Searches the catalog for a shopper's words.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Found")]
pub struct FindProducts {
    pub query: String,
    pub language: Language,
    pub limit: usize,
}

/// The answer to [`FindProducts`]: the store's current profile and the hits.
#[derive(Debug, Clone)]
pub struct Found {
    pub profile: Arc<StoreProfile>,
    pub hits: Vec<Hit>,
}

impl Handler<FindProducts> for StoreCatalog {
    type Result = MessageResult<FindProducts>;

    fn handle(&mut self, msg: FindProducts, _: &mut Context<Self>) -> Self::Result {
        MessageResult(Found {
            profile: Arc::clone(&self.profile),
            hits: self.index.find(&msg.query, msg.language, msg.limit),
        })
    }
}

/// Installs a store's profile and a new index built for it off the actor's
/// thread. The swap is one step: a search sees the old catalog or the new
/// one, never a mix.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct InstallCatalog {
    pub profile: StoreProfile,
    pub index: SearchIndex,
}

impl Handler<InstallCatalog> for StoreCatalog {
    type Result = usize;

    fn handle(&mut self, msg: InstallCatalog, _: &mut Context<Self>) -> usize {
        self.profile = Arc::new(msg.profile);
        self.index = Arc::new(msg.index);
        self.index.len()
    }
}

/// Replaces the store's profile, keeping the index (a change that does
/// not touch how the catalog is searched: branding, allowed origins).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReplaceProfile(pub StoreProfile);

impl Handler<ReplaceProfile> for StoreCatalog {
    type Result = ();

    fn handle(&mut self, msg: ReplaceProfile, _: &mut Context<Self>) {
        self.profile = Arc::new(msg.0);
    }
}

/// Asks for the store's profile.
#[derive(Message, Debug)]
#[rtype(result = "Arc<StoreProfile>")]
pub struct GetProfile;

impl Handler<GetProfile> for StoreCatalog {
    type Result = MessageResult<GetProfile>;

    fn handle(&mut self, _: GetProfile, _: &mut Context<Self>) -> Self::Result {
        MessageResult(Arc::clone(&self.profile))
    }
}

/// The stores this node serves, by id. Cheap to clone.
#[derive(Clone, Default)]
pub struct Stores {
    by_id: Arc<DashMap<StoreId, Addr<StoreCatalog>>>,
}

impl Stores {
    pub fn insert(&self, id: StoreId, catalog: Addr<StoreCatalog>) {
        self.by_id.insert(id, catalog);
    }

    pub fn get(&self, id: &StoreId) -> Option<Addr<StoreCatalog>> {
        self.by_id.get(id).map(|entry| entry.value().clone())
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}
