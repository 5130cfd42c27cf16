//! An in-memory BM25F-style index over a store's products. Field weights put
//! the name above brand and category, and those above the description. Every
//! token is indexed in its folded form and as its stem in the catalog's
//! language; a query token matches through its folded form or its stem in the
//! query's or the catalog's language, whichever scores best.

use std::collections::HashMap;
use std::sync::Arc;

use crate::catalog::Product;
use crate::language::Language;
use crate::search::analysis::{Stemmers, fold, is_stopword, tokens};

/// BM25 term-frequency saturation.
const K1: f32 = 1.2;
/// BM25 length normalisation.
const B: f32 = 0.75;
/// Field weights.
const NAME_WEIGHT: f32 = 3.0;
const BRAND_WEIGHT: f32 = 2.0;
const CATEGORY_WEIGHT: f32 = 2.0;
const DESCRIPTION_WEIGHT: f32 = 1.0;

/// One product found by a search, with its score.
#[derive(Clone, Debug)]
pub struct Hit {
    pub product: Arc<Product>,
    pub score: f32,
}

/// The search index of one store. Immutable once built: a catalog change
/// builds a new index and swaps it in whole.
pub struct SearchIndex {
    products: Vec<Arc<Product>>,
    postings: HashMap<Box<str>, Vec<(u32, f32)>>,
    doc_len: Vec<f32>,
    avg_len: f32,
    language: Language,
    stemmers: Stemmers,
}

impl SearchIndex {
    /// Builds the index for a catalog whose text is mostly in `language`.
    pub fn build(products: Vec<Arc<Product>>, language: Language) -> Self {
        let stemmers = Stemmers::default();
        let mut postings: HashMap<Box<str>, Vec<(u32, f32)>> = HashMap::new();
        let mut doc_len = Vec::with_capacity(products.len());
        for (doc, product) in products.iter().enumerate() {
            let mut tf: HashMap<String, f32> = HashMap::new();
            let mut len = 0.0;
            let fields = [
                (product.name.as_str(), NAME_WEIGHT),
                (product.brand.as_str(), BRAND_WEIGHT),
                (product.category.as_str(), CATEGORY_WEIGHT),
                (product.description.as_str(), DESCRIPTION_WEIGHT),
            ];
            let tags = product.tags.iter().map(|t| (t.as_str(), CATEGORY_WEIGHT));
            for (text, weight) in fields.into_iter().chain(tags) {
                let folded = fold(text);
                for token in tokens(&folded) {
                    len += weight;
                    let stem = stemmers.stem(language, token);
                    if stem != token {
                        *tf.entry(stem).or_default() += weight;
                    }
                    *tf.entry(token.to_owned()).or_default() += weight;
                }
            }
            doc_len.push(len);
            // Doc numbers fit u32: catalogs are bounded far below 4 billion.
            let doc = doc as u32;
            for (term, weight) in tf {
                postings
                    .entry(term.into_boxed_str())
                    .or_default()
                    .push((doc, weight));
            }
        }
        let avg_len = if doc_len.is_empty() {
            1.0
        } else {
            doc_len.iter().sum::<f32>() / doc_len.len() as f32
        };
        Self {
            products,
            postings,
            doc_len,
            avg_len,
            language,
            stemmers,
        }
    }

    pub fn len(&self) -> usize {
        self.products.len()
    }

    pub fn is_empty(&self) -> bool {
        self.products.is_empty()
    }

    /// The products in catalog order.
    pub fn products(&self) -> &[Arc<Product>] {
        &self.products
    }

    /// The best `limit` products for a shopper's words, best first.
    pub fn search(&self, query: &str, query_language: Language, limit: usize) -> Vec<Hit> {
        let folded = fold(query);
        let mut scores: HashMap<u32, f32> = HashMap::new();
        let mut seen_tokens: Vec<&str> = Vec::new();
        for token in tokens(&folded) {
            if is_stopword(token) || seen_tokens.contains(&token) {
                continue;
            }
            seen_tokens.push(token);
            let mut variants = vec![token.to_owned()];
            for language in [query_language, self.language] {
                let stem = self.stemmers.stem(language, token);
                if !variants.contains(&stem) {
                    variants.push(stem);
                }
            }
            // A token counts once per product: through its best variant.
            let mut best: HashMap<u32, f32> = HashMap::new();
            for variant in &variants {
                let Some(list) = self.postings.get(variant.as_str()) else {
                    continue;
                };
                let idf = self.idf(list.len());
                for &(doc, tf) in list {
                    let norm = 1.0 - B + B * self.doc_len[doc as usize] / self.avg_len;
                    let score = idf * tf * (K1 + 1.0) / (tf + K1 * norm);
                    let entry = best.entry(doc).or_default();
                    if score > *entry {
                        *entry = score;
                    }
                }
            }
            for (doc, score) in best {
                *scores.entry(doc).or_default() += score;
            }
        }
        let mut hits: Vec<(u32, f32)> = scores.into_iter().collect();
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        hits.into_iter()
            .take(limit)
            .map(|(doc, score)| Hit {
                product: Arc::clone(&self.products[doc as usize]),
                score,
            })
            .collect()
    }

    fn idf(&self, doc_freq: usize) -> f32 {
        let n = self.products.len() as f32;
        let df = doc_freq as f32;
        ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Currency, Money};
    use crate::ids::ProductId;

    fn product(id: &str, name: &str, category: &str, description: &str) -> Arc<Product> {
        Arc::new(Product {
            id: ProductId(id.into()),
            name: name.into(),
            brand: "Acme".into(),
            category: category.into(),
            description: description.into(),
            tags: Vec::new(),
            price: Money {
                minor: 1000,
                currency: Currency::parse("EUR").expect("EUR is known"),
            },
            image_url: format!("https://shop.example/{id}.jpg"),
            url: format!("https://shop.example/{id}"),
            in_stock: true,
        })
    }

    fn index() -> SearchIndex {
        SearchIndex::build(
            vec![
                product(
                    "1",
                    "Waterproof rain jacket",
                    "Jackets",
                    "Light shell for wet days",
                ),
                product(
                    "2",
                    "Wool winter coat",
                    "Jackets",
                    "Warm coat, keeps the rain out",
                ),
                product(
                    "3",
                    "Trail running shoes",
                    "Shoes",
                    "Grippy soles for muddy trails",
                ),
                product("4", "Crème hydratante", "Beauté", "Soin du visage"),
            ],
            Language::En,
        )
    }

    #[test]
    fn name_matches_rank_above_description_matches() {
        let hits = index().search("rain", Language::En, 10);
        let ids: Vec<_> = hits.iter().map(|h| h.product.id.0.as_str()).collect();
        assert_eq!(ids, ["1", "2"]);
    }

    #[test]
    fn plural_and_accents_still_match() {
        let index = index();
        assert_eq!(
            index.search("running shoe", Language::En, 1)[0]
                .product
                .id
                .0,
            "3"
        );
        assert_eq!(index.search("creme", Language::Fr, 1)[0].product.id.0, "4");
    }

    #[test]
    fn stopwords_alone_find_nothing() {
        assert!(
            index()
                .search("I am looking for the", Language::En, 10)
                .is_empty()
        );
    }
}
