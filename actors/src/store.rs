//! `StoreCatalog`: one actor per store, holding the store's profile and its
//! search index in memory. Start-up gives each actor a loader for its
//! catalog; the actor reads it and builds its index on a blocking thread
//! before it handles any message, so messages sent meanwhile wait instead
//! of seeing an empty catalog. The index is never the source of truth.
//! [`Stores`] finds a store's actor by id and knows whether every store has
//! loaded (the node's readiness).
//!
//! Store actors are supervised: a search that panics answers with no hits
//! and stops the actor, and its supervisor restarts it, which loads the
//! store's catalog again from storage (the source of truth) before it
//! handles the next message.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use actix::{
    Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message,
    MessageResult, WrapFuture,
};
use dashmap::DashMap;

use crate::catalog::{Product, StoreProfile};
use crate::ids::StoreId;
use crate::knowledge::{self, Knowledge, Page, PassageHit};
use crate::language::Language;
use crate::search::{Hit, SearchIndex, lexicon};

/// What a store actor serves: its catalog and its knowledge pages.
pub struct StoreContent {
    pub products: Vec<Product>,
    pub pages: Vec<Page>,
}

/// Reads a store's catalog and pages from storage; it runs on a blocking
/// thread, at start and at every restart.
pub type CatalogLoader = Arc<dyn Fn() -> Result<StoreContent, String> + Send + Sync>;

/// Holds one store's catalog and knowledge and answers searches.
pub struct StoreCatalog {
    profile: Arc<StoreProfile>,
    index: Arc<SearchIndex>,
    knowledge: Arc<Knowledge>,
    /// Where the catalog comes from, at start and at every restart.
    loader: Option<CatalogLoader>,
    /// The catalog is to be loaded when the actor (re)starts.
    load_due: bool,
    /// The first load is the one readiness waits for; a reload after a
    /// restart is not: the node stays ready while it runs.
    first_load: bool,
    /// When a restart last reloaded the catalog.
    reloaded_at: Option<std::time::Instant>,
    /// Where loading is reported (and a failed store's recovery).
    readiness: Option<Arc<Readiness>>,
    /// The next search panics (tests of the supervision).
    #[cfg(test)]
    panic_next_search: bool,
}

impl StoreCatalog {
    /// A store with its catalog at hand.
    pub fn new(profile: StoreProfile, products: Vec<Product>) -> Self {
        let index = build_index(&profile, products);
        Self {
            knowledge: Arc::new(Knowledge::build(&[], profile.default_language)),
            profile: Arc::new(profile),
            index: Arc::new(index),
            loader: None,
            load_due: false,
            first_load: false,
            reloaded_at: None,
            readiness: None,
            #[cfg(test)]
            panic_next_search: false,
        }
    }

    /// A store whose catalog `load` reads when the actor starts; `stores`
    /// learns when it is loaded (or failed to).
    pub fn loading(profile: StoreProfile, load: CatalogLoader, stores: &Stores) -> Self {
        stores.readiness.loading.fetch_add(1, Ordering::SeqCst);
        Self {
            index: Arc::new(build_index(&profile, Vec::new())),
            knowledge: Arc::new(Knowledge::build(&[], profile.default_language)),
            profile: Arc::new(profile),
            loader: Some(load),
            load_due: true,
            first_load: true,
            reloaded_at: None,
            readiness: Some(Arc::clone(&stores.readiness)),
            #[cfg(test)]
            panic_next_search: false,
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

/// A store restarted again within this long keeps its index instead of
/// reloading it: a query that panics every time must not cost a catalog
/// rebuild every time.
const RELOAD_COOLDOWN: std::time::Duration = std::time::Duration::from_secs(60);

impl actix::Supervised for StoreCatalog {
    fn restarting(&mut self, _: &mut Context<Self>) {
        let recently = self
            .reloaded_at
            .is_some_and(|at| at.elapsed() < RELOAD_COOLDOWN);
        if self.loader.is_some() && !recently {
            self.reloaded_at = Some(std::time::Instant::now());
            self.load_due = true;
        }
    }
}

impl Actor for StoreCatalog {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let (Some(load), Some(readiness)) = (self.loader.clone(), self.readiness.clone()) else {
            return;
        };
        if !std::mem::take(&mut self.load_due) {
            return;
        }
        let counted = std::mem::take(&mut self.first_load);
        let profile = Arc::clone(&self.profile);
        // The lexicons this catalog's searches use load beside the catalog,
        // on their own blocking thread, and the store serves (and counts as
        // loaded for `/readyz`) once both are in: a search runs on the
        // actor's thread and must not be the one that waits for a lexicon.
        let language = profile.default_language;
        let lexicons = tokio::task::spawn_blocking(move || lexicon::load_for(language));
        let build = async move {
            let catalog = tokio::task::spawn_blocking(move || {
                load().map(|content| {
                    let knowledge = Knowledge::build(&content.pages, profile.default_language);
                    let products = content.products.len();
                    (products, build_index(&profile, content.products), knowledge)
                })
            });
            let (built, loaded) = tokio::join!(catalog, lexicons);
            loaded.map_err(|e| format!("the lexicons did not load: {e}"))?;
            built.map_err(|e| format!("the index build stopped: {e}"))?
        };
        // Nothing else is handled until the catalog is in.
        ctx.wait(
            build
                .into_actor(self)
                .map(move |built, act, _| match built {
                    Ok((products, index, knowledge)) => {
                        act.index = Arc::new(index);
                        act.knowledge = Arc::new(knowledge);
                        tracing::info!(store = %act.profile.id, products, "store ready");
                        if counted {
                            readiness.loaded();
                        }
                    }
                    Err(problem) => {
                        tracing::error!(store = %act.profile.id, %problem, "store catalog not loaded");
                        if counted {
                            readiness.failed(&act.profile.id, problem);
                        }
                    }
                }),
        );
    }
}

/// Searches the catalog for a shopper's words.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Found")]
pub struct FindProducts {
    pub query: String,
    pub language: Language,
    pub limit: usize,
    /// A model's rewrite of the shopper's words into a query in the
    /// catalog's language: when set, the answer holds the rewrite's own
    /// hits under the shopper's filters and no passages (see
    /// [`SearchIndex::find_rewrite`](crate::search::SearchIndex::find_rewrite)).
    pub rewritten: Option<String>,
}

/// The answer to [`FindProducts`]: the store's current profile, the
/// product hits, and the passages of its pages that answer a question
/// about the shop (asked as one, or matching no product).
#[derive(Debug, Clone)]
pub struct Found {
    pub profile: Arc<StoreProfile>,
    pub hits: Vec<Hit>,
    pub passages: Vec<PassageHit>,
}

impl Handler<FindProducts> for StoreCatalog {
    type Result = MessageResult<FindProducts>;

    fn handle(&mut self, msg: FindProducts, ctx: &mut Context<Self>) -> Self::Result {
        #[cfg(test)]
        let panics = std::mem::take(&mut self.panic_next_search);
        let index = Arc::clone(&self.index);
        let knowledge = Arc::clone(&self.knowledge);
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            #[cfg(test)]
            assert!(!panics, "a bug in the search");
            if let Some(rewritten) = &msg.rewritten {
                let hits = index.find_rewrite(&msg.query, rewritten, msg.language, msg.limit);
                return (hits, Vec::new());
            }
            let hits = index.find(&msg.query, msg.language, msg.limit);
            let passages = if !knowledge.is_empty()
                && (hits.is_empty() || knowledge::asks_about_the_shop(&msg.query))
            {
                knowledge.find(&msg.query, msg.language, knowledge::PASSAGES_PER_TURN)
            } else {
                Vec::new()
            };
            (hits, passages)
        }));
        let (hits, passages) = found.unwrap_or_else(|_| {
            tracing::error!(store = %self.profile.id, "a search panicked; the store restarts");
            // The supervisor restarts the actor with its catalog reloaded.
            ctx.stop();
            (Vec::new(), Vec::new())
        });
        MessageResult(Found {
            profile: Arc::clone(&self.profile),
            hits,
            passages,
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
        if let Some(readiness) = &self.readiness {
            readiness.recovered(&self.profile.id);
        }
        self.index.len()
    }
}

/// Installs a store's knowledge, built from its pages off the actor's
/// thread; answers how many passages it holds.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct InstallKnowledge(pub Knowledge);

impl Handler<InstallKnowledge> for StoreCatalog {
    type Result = usize;

    fn handle(&mut self, msg: InstallKnowledge, _: &mut Context<Self>) -> usize {
        self.knowledge = Arc::new(msg.0);
        self.knowledge.len()
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

/// Stores still loading their catalog, and those that failed to (until a
/// catalog is installed for them).
#[derive(Default)]
struct Readiness {
    loading: AtomicUsize,
    failed: Mutex<BTreeMap<StoreId, String>>,
}

impl Readiness {
    fn loaded(&self) {
        self.loading.fetch_sub(1, Ordering::SeqCst);
    }

    fn failed(&self, store: &StoreId, problem: String) {
        self.failures().insert(store.clone(), problem);
        self.loaded();
    }

    fn recovered(&self, store: &StoreId) {
        self.failures().remove(store);
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, BTreeMap<StoreId, String>> {
        self.failed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why the node's stores are not all serving their catalogs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotLoaded {
    /// Catalogs are still being read and indexed.
    Loading { stores: usize },
    /// Some catalogs could not be loaded; these stores answer from an
    /// empty catalog.
    Failed(Vec<String>),
}

/// The stores this node serves, by id. Cheap to clone.
#[derive(Clone, Default)]
pub struct Stores {
    by_id: Arc<DashMap<StoreId, Addr<StoreCatalog>>>,
    readiness: Arc<Readiness>,
}

impl Stores {
    pub fn insert(&self, id: StoreId, catalog: Addr<StoreCatalog>) {
        self.by_id.insert(id, catalog);
    }

    /// Stops serving a store: new sessions are refused as for an unknown
    /// store, and its actor stops once the sessions holding it end.
    pub fn remove(&self, id: &StoreId) -> Option<Addr<StoreCatalog>> {
        self.readiness.recovered(id);
        self.by_id.remove(id).map(|(_, catalog)| catalog)
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

    /// Whether every store has its catalog loaded.
    pub fn loaded(&self) -> Result<(), NotLoaded> {
        // Loading first: a failure is noted before its store stops counting
        // as loading, so none slips between the two reads.
        let loading = self.readiness.loading.load(Ordering::SeqCst);
        let failed: Vec<String> = self
            .readiness
            .failures()
            .iter()
            .map(|(store, problem)| format!("store {store}: {problem}"))
            .collect();
        if loading > 0 {
            Err(NotLoaded::Loading { stores: loading })
        } else if !failed.is_empty() {
            Err(NotLoaded::Failed(failed))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Branding, Currency, Money};
    use crate::ids::ProductId;

    fn profile(id: &str) -> StoreProfile {
        StoreProfile {
            id: StoreId::parse(id).expect("valid"),
            name: "S".into(),
            url: "https://shop.example".into(),
            instructions: String::new(),
            default_language: Language::En,
            currency: Currency::parse("EUR").expect("known"),
            allowed_origins: Vec::new(),
            synonyms: Vec::new(),
            branding: Branding::default(),
            retention_days: None,
        }
    }

    fn tent() -> Product {
        Product {
            id: ProductId("tent".into()),
            name: "Alpine Tent".into(),
            brand: String::new(),
            category: "Tents".into(),
            description: String::new(),
            tags: Vec::new(),
            price: Money {
                minor: 19900,
                currency: Currency::parse("EUR").expect("known"),
            },
            price_max: None,
            image_url: String::new(),
            url: "https://shop.example/tent".into(),
            in_stock: true,
        }
    }

    #[actix_rt::test]
    async fn a_search_sent_while_the_catalog_loads_waits_for_it() {
        let stores = Stores::default();
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let wait = Mutex::new(wait);
        let load: CatalogLoader = Arc::new(move || {
            // Holds the load until the test has sent its search.
            let _ = wait.lock().expect("lock").recv();
            Ok(StoreContent {
                products: vec![tent()],
                pages: Vec::new(),
            })
        });
        let actor = StoreCatalog::loading(profile("s"), load, &stores).start();
        stores.insert(StoreId::parse("s").expect("valid"), actor.clone());
        assert_eq!(stores.loaded(), Err(NotLoaded::Loading { stores: 1 }));
        let find = actor.send(FindProducts {
            query: "tent".into(),
            language: Language::En,
            limit: 5,
            rewritten: None,
        });
        release.send(()).expect("the loader waits");
        let found = find.await.expect("the actor answers");
        assert_eq!(found.hits.len(), 1, "the search saw the loaded catalog");
        assert_eq!(stores.loaded(), Ok(()));
    }

    #[actix_rt::test]
    async fn questions_about_the_shop_get_passages_of_its_pages_beside_products() {
        let stores = Stores::default();
        let load: CatalogLoader = Arc::new(|| {
            Ok(StoreContent {
                products: vec![tent()],
                pages: vec![Page {
                    slug: "returns".into(),
                    title: "Returns".into(),
                    body: "Return any tent within 30 days for a full refund.".into(),
                    url: String::new(),
                    updated_ms: 0,
                }],
            })
        });
        let actor = StoreCatalog::loading(profile("s"), load, &stores).start();
        let ask = |query: &str| FindProducts {
            query: query.into(),
            language: Language::En,
            limit: 5,
            rewritten: None,
        };
        let found = actor
            .send(ask("can I return a tent?"))
            .await
            .expect("answers");
        assert_eq!(found.hits.len(), 1);
        assert_eq!(found.passages.len(), 1, "asked about returns");
        let found = actor.send(ask("an alpine tent")).await.expect("answers");
        assert_eq!((found.hits.len(), found.passages.len()), (1, 0));
        // Pages replaced later: the new ones answer.
        let knowledge = Knowledge::build(&[], Language::En);
        assert_eq!(
            actor
                .send(InstallKnowledge(knowledge))
                .await
                .expect("answers"),
            0
        );
        let found = actor
            .send(ask("can I return a tent?"))
            .await
            .expect("answers");
        assert!(found.passages.is_empty());
    }

    #[actix_rt::test]
    async fn a_catalog_that_fails_to_load_is_reported_and_the_store_answers_empty() {
        let stores = Stores::default();
        let load: CatalogLoader = Arc::new(|| Err("unreadable".into()));
        let actor = StoreCatalog::loading(profile("s"), load, &stores).start();
        let found = actor
            .send(FindProducts {
                query: "tent".into(),
                language: Language::En,
                limit: 5,
                rewritten: None,
            })
            .await
            .expect("the actor answers");
        assert!(found.hits.is_empty());
        assert_eq!(
            stores.loaded(),
            Err(NotLoaded::Failed(vec!["store s: unreadable".into()]))
        );
        // A catalog installed later (an import) makes the store whole.
        let profile = profile("s");
        let index = build_index(&profile, vec![tent()]);
        let installed = actor
            .send(InstallCatalog { profile, index })
            .await
            .expect("the actor answers");
        assert_eq!(installed, 1);
        assert_eq!(stores.loaded(), Ok(()));
    }

    /// Makes the actor's next search panic.
    struct PanicNextSearch;

    impl Message for PanicNextSearch {
        type Result = ();
    }

    impl Handler<PanicNextSearch> for StoreCatalog {
        type Result = ();

        fn handle(&mut self, _: PanicNextSearch, _: &mut Context<Self>) {
            self.panic_next_search = true;
        }
    }

    #[actix_rt::test]
    async fn a_search_that_panics_restarts_the_store_with_its_catalog_reloaded() {
        let stores = Stores::default();
        let loads = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&loads);
        let load: CatalogLoader = Arc::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(StoreContent {
                products: vec![tent()],
                pages: Vec::new(),
            })
        });
        let catalog = StoreCatalog::loading(profile("s"), load, &stores);
        let actor = actix::Supervisor::start(move |_| catalog);
        let find = || FindProducts {
            query: "tent".into(),
            language: Language::En,
            limit: 5,
            rewritten: None,
        };
        assert_eq!(actor.send(find()).await.expect("answers").hits.len(), 1);
        actor.send(PanicNextSearch).await.expect("answers");
        let during = actor.send(find()).await.expect("answers despite the panic");
        assert!(during.hits.is_empty());
        // The same address serves again, from a reloaded catalog.
        assert_eq!(actor.send(find()).await.expect("answers").hits.len(), 1);
        assert_eq!(
            loads.load(Ordering::SeqCst),
            2,
            "loaded again at the restart"
        );
        assert_eq!(stores.loaded(), Ok(()));
    }
}
