//! An in-memory BM25F-style index over a store's products.
//!
//! Field weights put the name above brand, category and tags, and those
//! above the description. Every token is indexed in its folded form and as
//! its stem in each supported language, so a Dutch tag matches a Dutch
//! plural even in an English catalog. A query word reaches a product through
//! its best variant: the word or its stem (full weight), a store synonym, the
//! tail of a Germanic compound ("Rucksack" in "Wanderrucksack"), a
//! completion of the last word being typed, or a spelling one edit away.
//! Filters understood from the words (price, stock, category) apply exactly.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::catalog::Product;
use crate::language::Language;
use crate::search::analysis::{Stemmers, fold, is_stopword, tokens};
use crate::search::query::{self, Filters};

/// BM25 term-frequency saturation.
const K1: f32 = 1.2;
/// BM25 length normalisation.
const B: f32 = 0.75;
/// Field weights.
const NAME_WEIGHT: f32 = 3.0;
const BRAND_WEIGHT: f32 = 2.0;
const CATEGORY_WEIGHT: f32 = 2.0;
const DESCRIPTION_WEIGHT: f32 = 1.0;
/// How much a looser match counts against an exact one.
const SYNONYM_FACTOR: f32 = 0.9;
const COMPOUND_FACTOR: f32 = 0.8;
const PREFIX_FACTOR: f32 = 0.8;
const TYPO_FACTOR: f32 = 0.6;
const INFLECTION_FACTOR: f32 = 0.8;
/// Longest ending an unmatched word may carry beyond an indexed term.
const MAX_INFLECTION_LEN: usize = 3;
/// Shortest word corrected for a typo, and shortest compound tail.
const MIN_TYPO_LEN: usize = 5;
const MIN_COMPOUND_TAIL: usize = 4;
/// Shortest last word completed as a prefix, and most completions tried.
const MIN_PREFIX_LEN: usize = 2;
const MAX_EXPANSIONS: usize = 16;

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
    /// Every indexed term, sorted, for completions.
    vocabulary: Vec<Box<str>>,
    /// Every indexed term reversed, sorted, for compound tails.
    reversed: Vec<(Box<str>, u32)>,
    /// Each term with one character deleted, to the terms it came from.
    deletions: HashMap<Box<str>, Vec<u32>>,
    /// Folded synonym groups: a word to the other words of its groups.
    synonyms: HashMap<String, Vec<String>>,
    /// Distinct categories with their folded words.
    categories: Vec<(String, Vec<String>)>,
    minor_digits: u32,
}

fn one_deletions(term: &str) -> Vec<String> {
    let chars: Vec<char> = term.chars().collect();
    (0..chars.len())
        .map(|skip| {
            chars
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, c)| c)
                .collect()
        })
        .collect()
}

impl SearchIndex {
    /// Builds the index for a catalog whose text is mostly in `language`.
    pub fn build(products: Vec<Arc<Product>>, language: Language) -> Self {
        Self::build_with_synonyms(products, language, &[])
    }

    /// Builds the index with the store's synonym groups (each a list of
    /// words or phrases that mean the same to its shoppers).
    pub fn build_with_synonyms(
        products: Vec<Arc<Product>>,
        language: Language,
        synonym_groups: &[Vec<String>],
    ) -> Self {
        let stemmers = Stemmers::default();
        let mut postings: HashMap<Box<str>, Vec<(u32, f32)>> = HashMap::new();
        let mut doc_len = Vec::with_capacity(products.len());
        let mut variants_of: HashMap<String, Vec<String>> = HashMap::new();
        for (doc, product) in products.iter().enumerate() {
            let mut len = 0.0;
            let fields = [
                (product.name.as_str(), NAME_WEIGHT),
                (product.brand.as_str(), BRAND_WEIGHT),
                (product.category.as_str(), CATEGORY_WEIGHT),
                (product.description.as_str(), DESCRIPTION_WEIGHT),
            ];
            let tags = product.tags.iter().map(|t| (t.as_str(), CATEGORY_WEIGHT));
            let mut doc_terms: Vec<(String, f32)> = Vec::new();
            for (text, weight) in fields.into_iter().chain(tags) {
                let folded = fold(text);
                for token in tokens(&folded) {
                    len += weight;
                    let variants = variants_of
                        .entry(token.to_owned())
                        .or_insert_with(|| stemmers.all_variants(token));
                    for variant in variants.iter() {
                        doc_terms.push((variant.clone(), weight));
                    }
                }
            }
            let mut tf: HashMap<&str, f32> = HashMap::new();
            for (term, weight) in &doc_terms {
                *tf.entry(term.as_str()).or_default() += weight;
            }
            doc_len.push(len);
            // Doc numbers fit u32: catalogs are bounded far below 4 billion.
            let doc = doc as u32;
            for (term, weight) in tf.drain() {
                match postings.get_mut(term) {
                    Some(list) => list.push((doc, weight)),
                    None => {
                        postings.insert(term.into(), vec![(doc, weight)]);
                    }
                }
            }
        }
        let avg_len = if doc_len.is_empty() {
            1.0
        } else {
            doc_len.iter().sum::<f32>() / doc_len.len() as f32
        };

        let mut vocabulary: Vec<Box<str>> = postings.keys().cloned().collect();
        vocabulary.sort_unstable();
        let mut reversed: Vec<(Box<str>, u32)> = vocabulary
            .iter()
            .enumerate()
            .map(|(i, t)| (t.chars().rev().collect::<String>().into(), i as u32))
            .collect();
        reversed.sort_unstable();
        let mut deletions: HashMap<Box<str>, Vec<u32>> = HashMap::new();
        for (i, term) in vocabulary.iter().enumerate() {
            if term.chars().count() >= MIN_TYPO_LEN {
                for deleted in one_deletions(term) {
                    deletions.entry(deleted.into()).or_default().push(i as u32);
                }
            }
        }

        let mut synonyms: HashMap<String, Vec<String>> = HashMap::new();
        for group in synonym_groups {
            let folded: Vec<String> = group.iter().map(|w| fold(w.trim())).collect();
            for word in &folded {
                let others = synonyms.entry(word.clone()).or_default();
                others.extend(folded.iter().filter(|o| *o != word).cloned());
            }
        }

        let mut seen = HashSet::new();
        let categories = products
            .iter()
            .filter(|p| !p.category.is_empty() && seen.insert(p.category.clone()))
            .map(|p| {
                let folded = fold(&p.category);
                let words = tokens(&folded)
                    .filter(|t| !is_stopword(t))
                    .map(|t| stemmers.stem(language, t))
                    .collect();
                (p.category.clone(), words)
            })
            .collect();
        let minor_digits = products
            .first()
            .map_or(2, |p| p.price.currency.minor_digits());

        Self {
            products,
            postings,
            doc_len,
            avg_len,
            language,
            stemmers,
            vocabulary,
            reversed,
            deletions,
            synonyms,
            categories,
            minor_digits,
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

    /// The best `limit` products for a shopper's words, best first, with
    /// the filters the words express applied exactly. This is the search
    /// the assistant's prompt and cards use.
    pub fn find(&self, query: &str, query_language: Language, limit: usize) -> Vec<Hit> {
        let parsed = query::parse(query, self.minor_digits);
        let mut filters = parsed.filters;
        filters.category = self.named_category(&parsed.text, query_language);
        self.search_filtered(&parsed.text, query_language, &filters, limit)
    }

    /// The store category whose every word the shopper used, if any.
    fn named_category(&self, text: &str, query_language: Language) -> Option<String> {
        let words: Vec<String> = tokens(text)
            .flat_map(|t| {
                [
                    self.stemmers.stem(self.language, t),
                    self.stemmers.stem(query_language, t),
                ]
            })
            .collect();
        self.categories
            .iter()
            .filter(|(_, needed)| !needed.is_empty() && needed.iter().all(|w| words.contains(w)))
            .max_by_key(|(_, needed)| needed.len())
            .map(|(name, _)| name.clone())
    }

    /// Ranks products for already parsed words and filters.
    pub fn search_filtered(
        &self,
        text: &str,
        query_language: Language,
        filters: &Filters,
        limit: usize,
    ) -> Vec<Hit> {
        let passes = |doc: u32| {
            let p = &self.products[doc as usize];
            filters.min_price.is_none_or(|m| p.price.minor >= m)
                && filters.max_price.is_none_or(|m| p.price.minor < m)
                && (!filters.in_stock_only || p.in_stock)
                && filters.category.as_ref().is_none_or(|c| *c == p.category)
        };
        let query_tokens: Vec<&str> = {
            let mut seen: Vec<&str> = Vec::new();
            for token in tokens(text) {
                if !is_stopword(token) && !seen.contains(&token) {
                    seen.push(token);
                }
            }
            seen
        };
        if query_tokens.is_empty() {
            if filters.is_empty() {
                return Vec::new();
            }
            // Only filters ("something under 20 euro"): cheapest first.
            let mut docs: Vec<u32> = (0..self.products.len() as u32)
                .filter(|d| passes(*d))
                .collect();
            docs.sort_by_key(|d| self.products[*d as usize].price.minor);
            return docs
                .into_iter()
                .take(limit)
                .map(|doc| Hit {
                    product: Arc::clone(&self.products[doc as usize]),
                    score: 0.0,
                })
                .collect();
        }
        let mut scores: HashMap<u32, f32> = HashMap::new();
        let last = query_tokens.len() - 1;
        for (position, token) in query_tokens.iter().enumerate() {
            let variants = self.variants(token, query_language, position == last);
            // A word counts once per product: through its best variant.
            let mut best: HashMap<u32, f32> = HashMap::new();
            for (term, factor) in &variants {
                let Some(list) = self.postings.get(term.as_str()) else {
                    continue;
                };
                let idf = self.idf(list.len());
                for &(doc, tf) in list {
                    if !passes(doc) {
                        continue;
                    }
                    let norm = 1.0 - B + B * self.doc_len[doc as usize] / self.avg_len;
                    let score = factor * idf * tf * (K1 + 1.0) / (tf + K1 * norm);
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

    /// The indexed terms a query word may match, with how much each counts.
    fn variants(&self, token: &str, query_language: Language, is_last: bool) -> Vec<(String, f32)> {
        let mut out: Vec<(String, f32)> = Vec::new();
        let add = |term: String, factor: f32, out: &mut Vec<(String, f32)>| match out
            .iter_mut()
            .find(|(t, _)| *t == term)
        {
            Some((_, f)) => *f = f.max(factor),
            None => out.push((term, factor)),
        };
        add(token.to_owned(), 1.0, &mut out);
        for language in [query_language, self.language] {
            add(self.stemmers.stem(language, token), 1.0, &mut out);
        }
        if let Some(others) = self.synonyms.get(token) {
            for other in others {
                for word in tokens(other) {
                    add(word.to_owned(), SYNONYM_FACTOR, &mut out);
                }
            }
        }
        let found_directly = out
            .iter()
            .any(|(t, _)| self.postings.contains_key(t.as_str()));
        let length = token.chars().count();
        if matches!(query_language, Language::De | Language::Nl) && length >= MIN_COMPOUND_TAIL {
            for term in self.with_suffix(token) {
                add(term, COMPOUND_FACTOR, &mut out);
            }
        }
        if is_last && length >= MIN_PREFIX_LEN {
            for term in self.with_prefix(token) {
                add(term, PREFIX_FACTOR, &mut out);
            }
        }
        if !found_directly && length >= MIN_TYPO_LEN {
            if let Some(term) = self.inflected_from(token) {
                add(term, INFLECTION_FACTOR, &mut out);
            }
            for term in self.one_edit_away(token) {
                add(term, TYPO_FACTOR, &mut out);
            }
        }
        out
    }

    /// The longest indexed term that `token` extends by a short ending the
    /// stemmers did not remove (Dutch "regenjassen" from "regenjas").
    fn inflected_from(&self, token: &str) -> Option<String> {
        let chars: Vec<char> = token.chars().collect();
        (chars.len().saturating_sub(MAX_INFLECTION_LEN)..chars.len())
            .filter(|&keep| keep >= MIN_TYPO_LEN)
            .map(|keep| chars[..keep].iter().collect::<String>())
            .find(|head| self.postings.contains_key(head.as_str()))
    }

    /// Indexed terms that start with `prefix` (at most [`MAX_EXPANSIONS`]).
    fn with_prefix(&self, prefix: &str) -> Vec<String> {
        let start = self.vocabulary.partition_point(|t| t.as_ref() < prefix);
        self.vocabulary[start..]
            .iter()
            .take_while(|t| t.starts_with(prefix))
            .filter(|t| t.as_ref() != prefix)
            .take(MAX_EXPANSIONS)
            .map(|t| t.to_string())
            .collect()
    }

    /// Indexed compounds ending in `tail` with a head of 3 or more letters.
    fn with_suffix(&self, tail: &str) -> Vec<String> {
        let reversed_tail: String = tail.chars().rev().collect();
        let start = self
            .reversed
            .partition_point(|(t, _)| t.as_ref() < reversed_tail.as_str());
        self.reversed[start..]
            .iter()
            .take_while(|(t, _)| t.starts_with(reversed_tail.as_str()))
            .filter(|(t, _)| t.chars().count() >= tail.chars().count() + 3)
            .take(MAX_EXPANSIONS)
            .map(|(_, i)| self.vocabulary[*i as usize].to_string())
            .collect()
    }

    /// Indexed terms one insertion, deletion or substitution away.
    fn one_edit_away(&self, token: &str) -> Vec<String> {
        let mut found: Vec<u32> = Vec::new();
        // The token is a term with one letter missing.
        if let Some(terms) = self.deletions.get(token) {
            found.extend(terms);
        }
        for deleted in one_deletions(token) {
            // The token has one letter too many.
            if let Ok(i) = self
                .vocabulary
                .binary_search_by(|t| t.as_ref().cmp(deleted.as_str()))
            {
                found.push(i as u32);
            }
            // One letter differs.
            if let Some(terms) = self.deletions.get(deleted.as_str()) {
                found.extend(terms);
            }
        }
        found.sort_unstable();
        found.dedup();
        found
            .into_iter()
            .take(MAX_EXPANSIONS)
            .map(|i| self.vocabulary[i as usize].to_string())
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

    fn product(
        id: &str,
        name: &str,
        category: &str,
        description: &str,
        euros: i64,
    ) -> Arc<Product> {
        Arc::new(Product {
            id: ProductId(id.into()),
            name: name.into(),
            brand: "Acme".into(),
            category: category.into(),
            description: description.into(),
            tags: Vec::new(),
            price: Money {
                minor: euros * 100,
                currency: Currency::parse("EUR").expect("EUR is known"),
            },
            price_max: None,
            image_url: format!("https://shop.example/{id}.jpg"),
            url: format!("https://shop.example/{id}"),
            in_stock: id != "2",
        })
    }

    fn index() -> SearchIndex {
        SearchIndex::build_with_synonyms(
            vec![
                product(
                    "1",
                    "Waterproof rain jacket",
                    "Jackets",
                    "Light shell for wet days",
                    90,
                ),
                product(
                    "2",
                    "Wool winter coat",
                    "Jackets",
                    "Warm coat, keeps the rain out",
                    200,
                ),
                product(
                    "3",
                    "Trail running shoes",
                    "Shoes",
                    "Grippy soles for muddy trails",
                    120,
                ),
                product("4", "Crème hydratante", "Beauté", "Soin du visage", 30),
                product(
                    "5",
                    "Wanderrucksack 35L",
                    "Bags",
                    "Rucksack für Tagestouren",
                    110,
                ),
                product("6", "Sneakers", "Shoes", "Everyday trainers", 80),
            ],
            Language::En,
            &[vec!["kicks".into(), "sneakers".into()]],
        )
    }

    fn ids(hits: Vec<Hit>) -> Vec<String> {
        hits.into_iter().map(|h| h.product.id.0.clone()).collect()
    }

    #[test]
    fn name_matches_rank_above_description_matches() {
        assert_eq!(ids(index().find("rain", Language::En, 10)), ["1", "2"]);
    }

    #[test]
    fn plural_and_accents_still_match() {
        let index = index();
        assert_eq!(ids(index.find("running shoe", Language::En, 1)), ["3"]);
        assert_eq!(ids(index.find("creme", Language::Fr, 1)), ["4"]);
    }

    #[test]
    fn stopwords_alone_find_nothing() {
        assert!(
            index()
                .find("I am looking for the", Language::En, 10)
                .is_empty()
        );
    }

    #[test]
    fn typos_prefixes_compounds_and_synonyms_match() {
        let index = index();
        assert_eq!(ids(index.find("waterprof", Language::En, 1)), ["1"]);
        assert_eq!(ids(index.find("trail runn", Language::En, 1)), ["3"]);
        assert_eq!(ids(index.find("Rucksack", Language::De, 1)), ["5"]);
        assert_eq!(ids(index.find("kicks", Language::En, 1)), ["6"]);
        assert_eq!(ids(index.find("sneakerssen", Language::Nl, 1)), ["6"]);
    }

    #[test]
    fn filters_from_the_words_apply_exactly() {
        let index = index();
        assert_eq!(
            ids(index.find("jacket under 100 euro", Language::En, 10)),
            ["1"]
        );
        // The wool coat mentions rain but is out of stock.
        assert_eq!(ids(index.find("rain", Language::En, 10)), ["1", "2"]);
        assert_eq!(ids(index.find("rain in stock", Language::En, 10)), ["1"]);
        assert_eq!(ids(index.find("shoes", Language::En, 10)), ["3", "6"]);
        assert_eq!(
            ids(index.find("something under 50 euro", Language::En, 10)),
            ["4"]
        );
    }
}
