//! An in-memory BM25F-style index over a store's products.
//!
//! Field weights put the name above brand, category and tags, and those
//! above the description. Every token is indexed in its folded form and as
//! its stem in each supported language, so a Dutch tag matches a Dutch
//! plural even in an English catalog. A query word reaches a product through
//! its best variant: the word or its stem (full weight), a store synonym, the
//! tail of a Germanic compound ("Rucksack" in "Wanderrucksack"), a
//! completion of the last word being typed, or a spelling one edit away.
//! Across languages a word also matches through its translations into the
//! catalog's language ([`lexicon`]), each counting less than the shopper's
//! own word, and Dutch and German compounds match their parts both ways:
//! the catalog's "Kaffeemühle" is indexed under "kaffee" and "muhle" too,
//! and the shopper's "espressomachine" looks for "espresso" and "machine".
//! Filters understood from the words (price, stock, category) apply exactly.

use std::collections::HashMap;
use std::sync::Arc;

use crate::catalog::Product;
use crate::language::Language;
use crate::search::analysis::{Stemmers, fold, is_stopword, tokens};
use crate::search::lexicon::{self, MAX_PARTS, Translated, split_compound, translate};
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
/// How much a product counts when the shopper named a kind of product
/// (a word of some category) and this product is of none of the kinds
/// named, in its category or its name: "waterproof rain jacket" must not
/// list a waterproof speaker among the jackets because both are
/// waterproof, while "sleeping bag" still finds the sleeping bags of the
/// camping category although "bag" names the bags.
const OFF_INTENT_FACTOR: f32 = 0.3;
/// How much a catalog compound's part weighs against the whole word
/// ("Kaffeemühle" is indexed under "kaffee" and "muhle" too, at this weight).
const PART_WEIGHT: f32 = 0.5;
/// How much a part of the shopper's compound counts ("espressomachine"
/// finding "espresso machine").
const PART_FACTOR: f32 = 0.8;
/// How much a translation of the shopper's word counts, by its rank among
/// the word's translations: always below the shopper's own words.
const TRANSLATION_FACTORS: [f32; 4] = [0.7, 0.6, 0.55, 0.5];
/// Further factor for a translation through English, and for one from a
/// language other than the shopper's (tried only for a word the catalog
/// does not know, in case the language was guessed wrong).
const PIVOT_FACTOR: f32 = 0.85;
const OTHER_LANGUAGE_FACTOR: f32 = 0.8;
/// Most ways one query word may match (itself, its parts, translations).
const MAX_ALTERNATIVES: usize = 12;
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

/// Rank fusion's damping: how much the first places outweigh the next.
const FUSION_K: f32 = 10.0;

/// Two rankings of the same catalog merged by reciprocal rank fusion (a
/// product both find rises); a hit's score is its fused one, ties go to
/// the first ranking's order.
pub fn fuse(first: Vec<Hit>, second: Vec<Hit>, limit: usize) -> Vec<Hit> {
    let mut fused: Vec<(f32, usize, Hit)> = Vec::with_capacity(first.len() + second.len());
    for (list, hits) in [first, second].into_iter().enumerate() {
        for (rank, hit) in hits.into_iter().enumerate() {
            let share = 1.0 / (FUSION_K + rank as f32 + 1.0);
            match fused
                .iter_mut()
                .find(|(_, _, h)| h.product.id == hit.product.id)
            {
                Some((score, _, _)) => *score += share,
                None => fused.push((share, list * 1000 + rank, hit)),
            }
        }
    }
    fused.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    fused
        .into_iter()
        .take(limit)
        .map(|(score, _, hit)| Hit {
            product: hit.product,
            score,
        })
        .collect()
}

/// One product containing a term, with the term's BM25 weight in it
/// (saturation and length normalisation precomputed; idf applied at query
/// time).
#[derive(Clone, Copy, Debug)]
struct Posting {
    doc: u32,
    weight: f32,
}

/// The search index of one store. Immutable once built: a catalog change
/// builds a new index and swaps it in whole.
pub struct SearchIndex {
    products: Vec<Arc<Product>>,
    /// Term text to term id.
    term_ids: HashMap<Box<str>, u32>,
    /// Term id to text.
    terms: Vec<Box<str>>,
    /// Term id to its postings, in document order.
    postings: Vec<Vec<Posting>>,
    /// Term id to its inverse document frequency.
    idf: Vec<f32>,
    /// Term id to its largest posting weight (MaxScore's upper bound).
    max_weight: Vec<f32>,
    language: Language,
    stemmers: Stemmers,
    /// Term ids sorted by text, for completions.
    sorted: Vec<u32>,
    /// Terms reversed, sorted, for compound tails.
    reversed: Vec<(Box<str>, u32)>,
    /// Terms by their first two letters and length, and by their last two
    /// letters and length, for spelling corrections: one edit to a word of
    /// four or more letters leaves its first two or its last two intact.
    spelling: HashMap<SpellingKey, Vec<u32>>,
    /// Folded synonym groups: a word to the other words of its groups.
    synonyms: HashMap<String, Vec<String>>,
    /// Distinct categories with their stemmed words.
    categories: Vec<(String, Vec<String>)>,
    /// Product (document) to its index in `categories` (`u32::MAX`: none).
    category_of: Vec<u32>,
    /// Product to the term ids of its name's words, sorted.
    name_terms: Vec<Box<[u32]>>,
    minor_digits: u32,
}

/// The kinds of product a query names (see [`SearchIndex::intent`]).
struct Intent {
    /// Per category: named.
    categories: Vec<bool>,
    /// The term ids of the naming words.
    terms: Vec<u32>,
}

/// A spelling bucket: the first (or last) two letters and the length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum SpellingKey {
    Head(char, char, usize),
    Tail(char, char, usize),
}

fn spelling_keys(word: &str, length: usize) -> Option<[SpellingKey; 2]> {
    let mut chars = word.chars();
    let (a, b) = (chars.next()?, chars.next()?);
    let mut back = word.chars().rev();
    let (z, y) = (back.next()?, back.next()?);
    Some([
        SpellingKey::Head(a, b, length),
        SpellingKey::Tail(y, z, length),
    ])
}

/// A position in one term's postings during a search.
struct TermCursor<'a> {
    postings: &'a [Posting],
    at: usize,
    /// The term's idf times how much this variant counts.
    idf: f32,
    /// Which of its word's ways of matching this term serves, and which
    /// word of that way: `alternative * MAX_PARTS + part`.
    slot: usize,
}

impl TermCursor<'_> {
    fn doc(&self) -> Option<u32> {
        self.postings.get(self.at).map(|p| p.doc)
    }

    /// Moves to the first posting at or after `doc` (galloping, then binary search).
    fn seek(&mut self, doc: u32) {
        let rest = &self.postings[self.at..];
        if rest.first().is_none_or(|p| p.doc >= doc) {
            return;
        }
        let mut step = 1;
        while step < rest.len() && rest[step].doc < doc {
            step *= 2;
        }
        let end = (step + 1).min(rest.len());
        self.at += (step / 2) + rest[step / 2..end].partition_point(|p| p.doc < doc);
    }
}

/// The ways one query word may match: each a list of parts (one word, a
/// compound's parts, or a translation's words), each part a list of the
/// indexed terms it may match with how much each counts. A way scores the
/// sum of its parts' best terms; the word scores its best way.
type Alternatives = Vec<Vec<Vec<(u32, f32)>>>;

/// One query word: its variants' cursors and the most it can add.
struct WordCursor<'a> {
    variants: Vec<TermCursor<'a>>,
    /// How many ways of matching the word has.
    alternatives: usize,
    /// One way with one part: the score is the best variant's.
    single: bool,
    upper: f32,
}

impl<'a> WordCursor<'a> {
    fn new(index: &'a SearchIndex, alternatives: Alternatives) -> Self {
        let mut variants = Vec::new();
        let mut upper = 0.0_f32;
        let count = alternatives.len().min(MAX_ALTERNATIVES);
        for (alternative, parts) in alternatives.into_iter().take(count).enumerate() {
            let mut way_upper = 0.0;
            for (part, terms) in parts.into_iter().take(MAX_PARTS).enumerate() {
                let mut part_upper = 0.0_f32;
                for (term, factor) in terms {
                    let idf = index.idf[term as usize] * factor;
                    part_upper = part_upper.max(idf * index.max_weight[term as usize]);
                    variants.push(TermCursor {
                        postings: &index.postings[term as usize],
                        at: 0,
                        idf,
                        slot: alternative * MAX_PARTS + part,
                    });
                }
                way_upper += part_upper;
            }
            upper = upper.max(way_upper);
        }
        Self {
            single: count == 1 && variants.iter().all(|v| v.slot == 0),
            variants,
            alternatives: count,
            upper,
        }
    }

    fn doc(&self) -> Option<u32> {
        self.variants.iter().filter_map(TermCursor::doc).min()
    }

    /// The word's score in `doc` (its best way of matching), moving past `doc`.
    fn score_at(&mut self, doc: u32) -> f32 {
        if self.single {
            // One way of one part (most words in the catalog's language):
            // the best variant, with no table to fill.
            let mut best = 0.0_f32;
            for variant in &mut self.variants {
                variant.seek(doc);
                if let Some(posting) = variant.postings.get(variant.at)
                    && posting.doc == doc
                {
                    best = best.max(variant.idf * posting.weight);
                    variant.at += 1;
                }
            }
            return best;
        }
        let mut best = [0.0_f32; MAX_ALTERNATIVES * MAX_PARTS];
        for variant in &mut self.variants {
            variant.seek(doc);
            if let Some(posting) = variant.postings.get(variant.at)
                && posting.doc == doc
            {
                let slot = &mut best[variant.slot];
                *slot = slot.max(variant.idf * posting.weight);
                variant.at += 1;
            }
        }
        best.chunks_exact(MAX_PARTS)
            .take(self.alternatives)
            .map(|parts| parts.iter().sum::<f32>())
            .fold(0.0, f32::max)
    }
}

/// How much a translation counts, by its rank and path.
fn translation_factor(how: Translated) -> f32 {
    let factor = TRANSLATION_FACTORS[how.rank.min(TRANSLATION_FACTORS.len() - 1)];
    if how.pivot {
        factor * PIVOT_FACTOR
    } else {
        factor
    }
}

/// Whether two words are one insertion, deletion or substitution apart,
/// given their lengths in characters. Allocates nothing.
fn one_edit_apart(a: &str, a_len: usize, b: &str, b_len: usize) -> bool {
    let (short, long) = if a_len <= b_len { (a, b) } else { (b, a) };
    match a_len.abs_diff(b_len) {
        0 => {
            short
                .chars()
                .zip(long.chars())
                .filter(|(x, y)| x != y)
                .count()
                == 1
        }
        1 => {
            let mut long_chars = long.chars();
            let mut skipped = false;
            for c in short.chars() {
                let mut next = long_chars.next();
                if next != Some(c) && !skipped {
                    skipped = true;
                    next = long_chars.next();
                }
                if next != Some(c) {
                    return false;
                }
            }
            true
        }
        _ => false,
    }
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
        let mut term_ids: HashMap<Box<str>, u32> = HashMap::new();
        let mut terms: Vec<Box<str>> = Vec::new();
        let mut raw: Vec<Vec<(u32, f32)>> = Vec::new();
        // A folded token to the term ids of its variants (itself and stems)
        // and of its compound parts' variants.
        let mut variants_of: HashMap<Box<str>, (Vec<u32>, Vec<u32>)> = HashMap::new();
        // Only Dutch and German catalogs split compounds, and an empty
        // index (a store's before its catalog loads, built on the caller's
        // thread) needs no lexicon loaded.
        let compound_lexicon = (matches!(language, Language::De | Language::Nl)
            && !products.is_empty())
        .then(|| lexicon::lexicon(language, Language::En))
        .flatten();
        let known_part = |part: &str| compound_lexicon.is_some_and(|l| l.knows(part, language));
        let mut doc_len = Vec::with_capacity(products.len());
        let mut tf: Vec<(u32, f32)> = Vec::new();
        let mut name_terms: Vec<Box<[u32]>> = Vec::with_capacity(products.len());
        for (doc, product) in products.iter().enumerate() {
            tf.clear();
            let mut len = 0.0;
            let fields = [
                (product.name.as_str(), NAME_WEIGHT),
                (product.brand.as_str(), BRAND_WEIGHT),
                (product.category.as_str(), CATEGORY_WEIGHT),
                (product.description.as_str(), DESCRIPTION_WEIGHT),
            ];
            let tags = product.tags.iter().map(|t| (t.as_str(), CATEGORY_WEIGHT));
            // The name comes first: its terms are `tf[..name_end]`.
            let mut name_end = 0;
            for (field, (text, weight)) in fields.into_iter().chain(tags).enumerate() {
                if field == 1 {
                    name_end = tf.len();
                }
                let folded = fold(text);
                for token in tokens(&folded) {
                    len += weight;
                    if !variants_of.contains_key(token) {
                        let mut intern = |word: &str| -> Vec<u32> {
                            stemmers
                                .all_variants(word)
                                .into_iter()
                                .map(|variant| {
                                    *term_ids.entry(variant.as_str().into()).or_insert_with(|| {
                                        terms.push(variant.as_str().into());
                                        raw.push(Vec::new());
                                        (terms.len() - 1) as u32
                                    })
                                })
                                .collect()
                        };
                        let ids = intern(token);
                        let mut part_ids: Vec<u32> = split_compound(token, language, &known_part)
                            .into_iter()
                            .flatten()
                            .flat_map(|part| intern(&part))
                            .filter(|id| !ids.contains(id))
                            .collect();
                        part_ids.sort_unstable();
                        part_ids.dedup();
                        variants_of.insert(token.into(), (ids, part_ids));
                    }
                    if let Some((ids, part_ids)) = variants_of.get(token) {
                        tf.extend(ids.iter().map(|id| (*id, weight)));
                        tf.extend(part_ids.iter().map(|id| (*id, weight * PART_WEIGHT)));
                    }
                }
            }
            let mut in_name: Vec<u32> = tf[..name_end].iter().map(|(id, _)| *id).collect();
            in_name.sort_unstable();
            in_name.dedup();
            name_terms.push(in_name.into_boxed_slice());
            tf.sort_unstable_by_key(|(id, _)| *id);
            // Doc numbers fit u32: catalogs are bounded far below 4 billion.
            let doc = doc as u32;
            let mut i = 0;
            while i < tf.len() {
                let id = tf[i].0;
                let mut sum = 0.0;
                while i < tf.len() && tf[i].0 == id {
                    sum += tf[i].1;
                    i += 1;
                }
                raw[id as usize].push((doc, sum));
            }
            doc_len.push(len);
        }
        let avg_len = if doc_len.is_empty() {
            1.0
        } else {
            doc_len.iter().sum::<f32>() / doc_len.len() as f32
        };
        let n = products.len() as f32;
        let idf = raw
            .iter()
            .map(|list| {
                let df = list.len() as f32;
                ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
            })
            .collect();
        let postings: Vec<Vec<Posting>> = raw
            .into_iter()
            .map(|list| {
                list.into_iter()
                    .map(|(doc, tf)| {
                        let norm = 1.0 - B + B * doc_len[doc as usize] / avg_len;
                        Posting {
                            doc,
                            weight: tf * (K1 + 1.0) / (tf + K1 * norm),
                        }
                    })
                    .collect()
            })
            .collect();

        let max_weight = postings
            .iter()
            .map(|list| list.iter().fold(0.0_f32, |m, p| m.max(p.weight)))
            .collect();

        let mut sorted: Vec<u32> = (0..terms.len() as u32).collect();
        sorted.sort_unstable_by(|a, b| terms[*a as usize].cmp(&terms[*b as usize]));
        let mut reversed: Vec<(Box<str>, u32)> = terms
            .iter()
            .enumerate()
            .map(|(i, t)| (t.chars().rev().collect::<String>().into(), i as u32))
            .collect();
        reversed.sort_unstable();
        let mut spelling: HashMap<SpellingKey, Vec<u32>> = HashMap::new();
        for (i, term) in terms.iter().enumerate() {
            let length = term.chars().count();
            if length + 1 >= MIN_TYPO_LEN
                && let Some(keys) = spelling_keys(term, length)
            {
                for key in keys {
                    spelling.entry(key).or_default().push(i as u32);
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

        let mut category_ids: HashMap<&str, u32> = HashMap::new();
        let mut categories: Vec<(String, Vec<String>)> = Vec::new();
        let category_of = products
            .iter()
            .map(|p| {
                if p.category.is_empty() {
                    return u32::MAX;
                }
                *category_ids.entry(p.category.as_str()).or_insert_with(|| {
                    let folded = fold(&p.category);
                    let words = tokens(&folded)
                        .filter(|t| !is_stopword(t))
                        .map(|t| stemmers.stem(language, t))
                        .collect();
                    categories.push((p.category.clone(), words));
                    categories.len() as u32 - 1
                })
            })
            .collect();
        let minor_digits = products
            .first()
            .map_or(2, |p| p.price.currency.minor_digits());

        Self {
            products,
            term_ids,
            terms,
            postings,
            idf,
            max_weight,
            language,
            stemmers,
            sorted,
            reversed,
            spelling,
            synonyms,
            categories,
            category_of,
            name_terms,
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

    /// The language most of the catalog's text is written in.
    pub fn language(&self) -> Language {
        self.language
    }

    /// The hits of a model's rewrite of a shopper's words into a query in
    /// the catalog's language, to be [`fuse`]d with the shopper's own
    /// ([`find`](Self::find)). The shopper's filters (a price, in stock, a
    /// category they named) hold; the rewrite's apply only where the
    /// shopper set none.
    pub fn find_rewrite(
        &self,
        query: &str,
        rewritten: &str,
        query_language: Language,
        limit: usize,
    ) -> Vec<Hit> {
        let theirs = query::parse(query, self.minor_digits);
        let rewrite = query::parse(rewritten, self.minor_digits);
        let filters = Filters {
            min_price: theirs.filters.min_price.or(rewrite.filters.min_price),
            max_price: theirs.filters.max_price.or(rewrite.filters.max_price),
            in_stock_only: theirs.filters.in_stock_only || rewrite.filters.in_stock_only,
            category: self
                .named_category(&theirs.text, query_language)
                .or_else(|| self.named_category(&rewrite.text, self.language)),
        };
        self.search_filtered(&rewrite.text, self.language, &filters, limit)
    }

    /// The store category whose every word the shopper used, if any.
    fn named_category(&self, text: &str, query_language: Language) -> Option<String> {
        if self.categories.is_empty() || text.is_empty() {
            return None;
        }
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

    fn passes(&self, filters: &Filters, doc: u32) -> bool {
        let p = &self.products[doc as usize];
        filters.min_price.is_none_or(|m| p.price.minor >= m)
            && filters.max_price.is_none_or(|m| p.price.minor < m)
            && (!filters.in_stock_only || p.in_stock)
            && filters.category.as_ref().is_none_or(|c| *c == p.category)
    }

    fn hit(&self, doc: u32, score: f32) -> Hit {
        Hit {
            product: Arc::clone(&self.products[doc as usize]),
            score,
        }
    }

    /// Ranks products for already parsed words and filters.
    pub fn search_filtered(
        &self,
        text: &str,
        query_language: Language,
        filters: &Filters,
        limit: usize,
    ) -> Vec<Hit> {
        let mut words: Vec<&str> = Vec::new();
        for token in tokens(text) {
            if !is_stopword(token) && !words.contains(&token) {
                words.push(token);
            }
        }
        if words.is_empty() {
            if filters.is_empty() {
                return Vec::new();
            }
            // Only filters ("something under 20 euro"): cheapest first.
            let mut docs: Vec<u32> = (0..self.products.len() as u32)
                .filter(|d| self.passes(filters, *d))
                .collect();
            docs.sort_by_key(|d| self.products[*d as usize].price.minor);
            return docs
                .into_iter()
                .take(limit)
                .map(|d| self.hit(d, 0.0))
                .collect();
        }
        let last = words.len() - 1;
        let mut translated: Vec<String> = Vec::new();
        let mut cursors: Vec<WordCursor<'_>> = words
            .iter()
            .enumerate()
            .map(|(position, word)| {
                let next = words.get(position + 1).copied();
                let alternatives = self.alternatives(
                    word,
                    next,
                    query_language,
                    position == last,
                    &mut translated,
                );
                WordCursor::new(self, alternatives)
            })
            .filter(|w| w.upper > 0.0)
            .collect();
        let intent = self.intent(&words, &translated, query_language);
        self.max_score(&mut cursors, filters, intent.as_ref(), limit)
            .into_iter()
            .map(|(doc, score)| self.hit(doc, score))
            .collect()
    }

    /// The kinds of product the shopper named: the categories they used a
    /// word of (`jacket` names "Jackets & Coats") and those words' terms.
    /// `None` when they named none, or every category (a word all
    /// categories share says nothing).
    fn intent(
        &self,
        words: &[&str],
        translated: &[String],
        query_language: Language,
    ) -> Option<Intent> {
        if self.categories.len() < 2 {
            return None;
        }
        let mut categories = vec![false; self.categories.len()];
        let mut terms = Vec::new();
        let own = words.iter().map(|w| (*w, query_language));
        let others = translated.iter().map(|w| (w.as_str(), self.language));
        for (word, language) in own.chain(others) {
            let stems = [
                self.stemmers.stem(self.language, word),
                self.stemmers.stem(language, word),
            ];
            let mut names_a_kind = false;
            for (named, (_, needed)) in categories.iter_mut().zip(&self.categories) {
                if needed.iter().any(|w| stems.contains(w)) {
                    *named = true;
                    names_a_kind = true;
                }
            }
            if names_a_kind {
                terms.extend(stems.iter().filter_map(|s| self.term_ids.get(s.as_str())));
            }
        }
        let count = categories.iter().filter(|n| **n).count();
        (count > 0 && count < categories.len()).then_some(Intent { categories, terms })
    }

    /// How much a document counts given the kinds of product named.
    fn intent_factor(&self, intent: Option<&Intent>, doc: u32) -> f32 {
        let Some(intent) = intent else { return 1.0 };
        let category = self.category_of[doc as usize];
        let in_named_category = intent
            .categories
            .get(category as usize)
            .copied()
            .unwrap_or(false);
        let named_in_name = || {
            let name = &self.name_terms[doc as usize];
            intent.terms.iter().any(|t| name.binary_search(t).is_ok())
        };
        if in_named_category || named_in_name() {
            1.0
        } else {
            OFF_INTENT_FACTOR
        }
    }

    /// Exact top-`limit` by MaxScore, document at a time: once the
    /// `limit`-th best score exceeds what the words with the smallest upper
    /// bounds could add together, those words no longer propose candidates
    /// and are only probed (by skipping) for documents the others found.
    /// The intent factor only lowers a score, so the bounds stay bounds.
    fn max_score(
        &self,
        words: &mut [WordCursor<'_>],
        filters: &Filters,
        intent: Option<&Intent>,
        limit: usize,
    ) -> Vec<(u32, f32)> {
        if limit == 0 || words.is_empty() {
            return Vec::new();
        }
        words.sort_by(|a, b| a.upper.total_cmp(&b.upper));
        // prefix[i]: the most the words before i can add together.
        let mut prefix = Vec::with_capacity(words.len() + 1);
        prefix.push(0.0_f32);
        for word in words.iter() {
            let sum = prefix.last().copied().unwrap_or(0.0) + word.upper;
            prefix.push(sum);
        }
        let filtered = !filters.is_empty();
        let mut top: Vec<(u32, f32)> = Vec::with_capacity(limit + 1);
        let mut threshold = 0.0_f32;
        let mut essential = 0;
        while let Some(doc) = words[essential..].iter().filter_map(WordCursor::doc).min() {
            let mut score = 0.0;
            for word in &mut words[essential..] {
                score += word.score_at(doc);
            }
            for i in (0..essential).rev() {
                if score + prefix[i + 1] <= threshold {
                    break;
                }
                score += words[i].score_at(doc);
            }
            score *= self.intent_factor(intent, doc);
            let full = top.len() == limit;
            if (!full || score > threshold) && (!filtered || self.passes(filters, doc)) {
                if full {
                    // Drop the weakest (the latest document among equal scores).
                    if let Some(weakest) = (0..top.len()).min_by(|&a, &b| {
                        top[a].1.total_cmp(&top[b].1).then(top[b].0.cmp(&top[a].0))
                    }) {
                        top.swap_remove(weakest);
                    }
                }
                top.push((doc, score));
                if top.len() == limit {
                    threshold = top.iter().map(|t| t.1).fold(f32::INFINITY, f32::min);
                    while essential < words.len() && prefix[essential + 1] <= threshold {
                        essential += 1;
                    }
                }
            }
        }
        top.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        top
    }

    /// The ways a query word may match: itself (with its stems, synonyms,
    /// completions and corrections), the parts of a Dutch or German
    /// compound, and its translations into the catalog's language (with
    /// `next`, the two-word phrase it starts too). Translated words are
    /// added to `translated`, for the intent.
    fn alternatives(
        &self,
        word: &str,
        next: Option<&str>,
        query_language: Language,
        is_last: bool,
        translated: &mut Vec<String>,
    ) -> Alternatives {
        let (own, exact) = self.variants(word, query_language, is_last);
        let found = !own.is_empty();
        let mut ways: Alternatives = vec![vec![own]];
        let catalog = self.language;
        let splitting = [query_language, catalog]
            .into_iter()
            .find(|l| matches!(l, Language::De | Language::Nl));
        let parts = splitting.and_then(|language| {
            let lexicon = lexicon::lexicon(language, Language::En);
            let known = |part: &str| {
                self.term_ids.contains_key(part) || lexicon.is_some_and(|l| l.knows(part, language))
            };
            split_compound(word, language, &known)
        });
        if let Some(parts) = &parts {
            ways.push(
                parts
                    .iter()
                    .map(|part| self.terms_of(part, query_language, PART_FACTOR))
                    .collect(),
            );
        }
        let mut sources: Vec<(Language, f32)> = Vec::new();
        if query_language != catalog {
            sources.push((query_language, 1.0));
        }
        if !found {
            sources.extend(
                Language::ALL
                    .into_iter()
                    .filter(|l| *l != query_language && *l != catalog)
                    .map(|l| (l, OTHER_LANGUAGE_FACTOR)),
            );
        }
        let mut translates = false;
        for (source, source_factor) in sources {
            let phrase = next.map(|n| format!("{word} {n}"));
            let phrases = phrase.as_deref().filter(|_| source == query_language);
            for text in phrases.into_iter().chain([word]) {
                // The first translations the catalog knows, at most four.
                let mut kept = 0;
                for (translation, how) in translate(text, source, catalog) {
                    // A translation of several words counts as much as one
                    // of one word, shared among its words: "coffee pot"
                    // found as "pot" alone is weak evidence.
                    let words = tokens(&translation).count().max(1) as f32;
                    let factor = translation_factor(how) * source_factor / words;
                    let parts: Vec<Vec<(u32, f32)>> = tokens(&translation)
                        .map(|w| self.terms_of(w, catalog, factor))
                        .collect();
                    if parts.iter().all(Vec::is_empty) {
                        continue;
                    }
                    ways.push(parts);
                    translated.extend(tokens(&translation).map(str::to_owned));
                    translates = true;
                    kept += 1;
                    if kept == lexicon::MAX_TRANSLATIONS {
                        break;
                    }
                }
            }
            // A compound's parts translated one by one: "Kaffeemühle" as
            // "coffee" and "mill" or "grinder".
            if let Some(parts) = parts.as_ref().filter(|_| source == query_language) {
                ways.push(
                    parts
                        .iter()
                        .map(|part| {
                            translate(part, source, catalog)
                                .into_iter()
                                .flat_map(|(t, how)| {
                                    let factor = translation_factor(how) * PART_FACTOR;
                                    tokens(&t)
                                        .flat_map(|w| self.terms_of(w, catalog, factor))
                                        .collect::<Vec<_>>()
                                })
                                .collect()
                        })
                        .collect(),
                );
            }
        }
        // A word that translates into the catalog's words is a word of the
        // shopper's language, not a typo or the start of a catalog word:
        // Spanish "botas" is boots, not one letter from "botan(ica)".
        if translates {
            ways[0][0].truncate(exact);
        }
        ways.retain(|parts| parts.iter().any(|terms| !terms.is_empty()));
        ways
    }

    /// The indexed terms of a word taken as written (itself and its stems),
    /// each counting `factor`.
    fn terms_of(&self, word: &str, language: Language, factor: f32) -> Vec<(u32, f32)> {
        let mut out: Vec<(u32, f32)> = Vec::new();
        for candidate in [
            word.to_owned(),
            self.stemmers.stem(language, word),
            self.stemmers.stem(self.language, word),
        ] {
            if let Some(&term) = self.term_ids.get(candidate.as_str())
                && !out.iter().any(|(t, _)| *t == term)
            {
                out.push((term, factor));
            }
        }
        out
    }

    /// The indexed terms a query word may match, with how much each counts,
    /// and how many of them come first as the word itself (its stems,
    /// synonyms and compounds ending in it) rather than as a completion or
    /// correction.
    fn variants(
        &self,
        token: &str,
        query_language: Language,
        is_last: bool,
    ) -> (Vec<(u32, f32)>, usize) {
        let mut out: Vec<(u32, f32)> = Vec::new();
        let add = |term: u32, factor: f32, out: &mut Vec<(u32, f32)>| match out
            .iter_mut()
            .find(|(t, _)| *t == term)
        {
            Some((_, f)) => *f = f.max(factor),
            None => out.push((term, factor)),
        };
        let id = |text: &str| self.term_ids.get(text).copied();
        for candidate in [
            Some(token.to_owned()),
            Some(self.stemmers.stem(query_language, token)),
            Some(self.stemmers.stem(self.language, token)),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(term) = id(&candidate) {
                add(term, 1.0, &mut out);
            }
        }
        if let Some(others) = self.synonyms.get(token) {
            for other in others {
                for word in tokens(other) {
                    if let Some(term) = id(word) {
                        add(term, SYNONYM_FACTOR, &mut out);
                    }
                }
            }
        }
        let found_directly = !out.is_empty();
        let length = token.chars().count();
        if matches!(query_language, Language::De | Language::Nl) && length >= MIN_COMPOUND_TAIL {
            for term in self.with_suffix(token) {
                add(term, COMPOUND_FACTOR, &mut out);
            }
        }
        let exact = out.len();
        if found_directly {
            return (out, exact);
        }
        if is_last && length >= MIN_PREFIX_LEN {
            for term in self.with_prefix(token) {
                add(term, PREFIX_FACTOR, &mut out);
            }
        }
        if length >= MIN_TYPO_LEN {
            if let Some(term) = self.inflected_from(token) {
                add(term, INFLECTION_FACTOR, &mut out);
            }
            for term in self.one_edit_away(token) {
                add(term, TYPO_FACTOR, &mut out);
            }
        }
        (out, exact)
    }

    /// The longest indexed term that `token` extends by a short ending the
    /// stemmers did not remove (Dutch "regenjassen" from "regenjas").
    fn inflected_from(&self, token: &str) -> Option<u32> {
        let chars: Vec<char> = token.chars().collect();
        (chars.len().saturating_sub(MAX_INFLECTION_LEN)..chars.len())
            .filter(|&keep| keep >= MIN_TYPO_LEN)
            .find_map(|keep| {
                let head: String = chars[..keep].iter().collect();
                self.term_ids.get(head.as_str()).copied()
            })
    }

    /// Indexed terms that start with `prefix` (at most [`MAX_EXPANSIONS`]).
    fn with_prefix(&self, prefix: &str) -> Vec<u32> {
        let start = self
            .sorted
            .partition_point(|t| self.terms[*t as usize].as_ref() < prefix);
        self.sorted[start..]
            .iter()
            .take_while(|t| self.terms[**t as usize].starts_with(prefix))
            .take(MAX_EXPANSIONS)
            .copied()
            .collect()
    }

    /// Indexed compounds ending in `tail` with a head of 3 or more letters.
    fn with_suffix(&self, tail: &str) -> Vec<u32> {
        let reversed_tail: String = tail.chars().rev().collect();
        let start = self
            .reversed
            .partition_point(|(t, _)| t.as_ref() < reversed_tail.as_str());
        self.reversed[start..]
            .iter()
            .take_while(|(t, _)| t.starts_with(reversed_tail.as_str()))
            .filter(|(t, _)| t.chars().count() >= tail.chars().count() + 3)
            .take(MAX_EXPANSIONS)
            .map(|(_, i)| *i)
            .collect()
    }

    /// Indexed terms one insertion, deletion or substitution away that
    /// share the first letter (typos rarely hit it).
    fn one_edit_away(&self, token: &str) -> Vec<u32> {
        let token_len = token.chars().count();
        let mut found: Vec<u32> = Vec::new();
        for length in [token_len - 1, token_len, token_len + 1] {
            let Some(keys) = spelling_keys(token, length) else {
                continue;
            };
            for key in keys {
                for &term in self.spelling.get(&key).into_iter().flatten() {
                    if !found.contains(&term)
                        && one_edit_apart(token, token_len, &self.terms[term as usize], length)
                    {
                        found.push(term);
                        if found.len() == MAX_EXPANSIONS {
                            return found;
                        }
                    }
                }
            }
        }
        found
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

    /// The shopper's hits fused with the rewrite's, as a turn retrieves.
    fn with_rewrite(
        index: &SearchIndex,
        query: &str,
        rewritten: &str,
        language: Language,
    ) -> Vec<Hit> {
        let theirs = index.find(query, language, 5);
        fuse(theirs, index.find_rewrite(query, rewritten, language, 5), 5)
    }

    #[test]
    fn a_rewrite_adds_what_the_shoppers_words_miss_under_their_filters() {
        let index = index();
        // Words no lexicon maps to a product; the model's query finds it.
        let shopper = "iets voor als het giet";
        assert!(index.find(shopper, Language::Nl, 5).is_empty());
        let hits = with_rewrite(&index, shopper, "rain jacket", Language::Nl);
        assert_eq!(ids(hits)[0], "1");
        // The shopper's price limit holds for the rewrite's hits too.
        let capped = with_rewrite(&index, "iets onder 100 euro", "coat", Language::Nl);
        assert!(
            capped.iter().all(|h| h.product.price.minor < 10_000),
            "{capped:?}"
        );
        // The rewrite's own filters apply where the shopper set none.
        let theirs = with_rewrite(
            &index,
            "iets voor als het giet",
            "jacket coat under 150",
            Language::Nl,
        );
        assert_eq!(ids(theirs.clone()), ["1"], "the 200 euro coat is left out");
        let unfiltered = with_rewrite(
            &index,
            "iets voor als het giet",
            "jacket coat",
            Language::Nl,
        );
        assert!(ids(unfiltered).contains(&"2".to_owned()));
    }

    #[test]
    fn fusion_keeps_the_first_rankings_order_on_ties_and_bounds_the_list() {
        let index = index();
        let hit = |id: &str| Hit {
            product: Arc::clone(
                index
                    .products()
                    .iter()
                    .find(|p| p.id.0 == id)
                    .expect("known"),
            ),
            score: 1.0,
        };
        let fused = fuse(vec![hit("1"), hit("2")], vec![hit("3"), hit("2")], 3);
        assert_eq!(ids(fused), ["2", "1", "3"]);
        let tied = fuse(vec![hit("1")], vec![hit("3")], 5);
        assert_eq!(ids(tied), ["1", "3"]);
    }

    #[test]
    fn edit_distance_one_is_recognised_without_allocating() {
        let apart = |a: &str, b: &str| one_edit_apart(a, a.chars().count(), b, b.chars().count());
        assert!(apart("headphnes", "headphones"));
        assert!(apart("headphones", "headphnes"));
        assert!(apart("sunscren", "sunscreen"));
        assert!(apart("backpak", "backpack"));
        assert!(apart("jacket", "jackit"));
        assert!(!apart("jacket", "jacket"));
        assert!(!apart("jacket", "jckit"));
        assert!(!apart("tent", "tents!!"));
    }

    #[test]
    fn a_word_shared_across_kinds_ranks_the_named_kind_first() {
        let products = vec![
            product(
                "s",
                "Waterproof Rain Speaker",
                "Audio",
                "Waterproof Bluetooth speaker, plays on in the rain",
                60,
            ),
            product(
                "j",
                "Shell Jacket",
                "Jackets & Coats",
                "Light, for rain",
                90,
            ),
            product("k", "Down Jacket", "Jackets & Coats", "Warm", 150),
            product("c", "Rain cover", "Bags", "Keeps a backpack dry", 15),
        ];
        let index = SearchIndex::build(products, Language::En);
        // "waterproof" is everywhere in the speaker; "jacket" names a kind.
        let hits = ids(index.find("waterproof rain jacket under 100 euro", Language::En, 3));
        assert_eq!(hits.first().map(String::as_str), Some("j"), "{hits:?}");
        // Without a kind named, the words alone rank.
        let hits = ids(index.find("waterproof", Language::En, 3));
        assert_eq!(hits.first().map(String::as_str), Some("s"), "{hits:?}");
        assert_eq!(ids(index.find("speaker", Language::En, 3)), ["s"]);
    }

    /// A coffee shop whose catalog is written in one language only.
    fn coffee_shop(language: Language, names: [(&str, &str, &str); 4]) -> SearchIndex {
        let products = names
            .into_iter()
            .enumerate()
            .map(|(i, (name, category, description))| {
                product(&format!("{}", i + 1), name, category, description, 50)
            })
            .collect();
        SearchIndex::build(products, language)
    }

    #[test]
    fn shoppers_find_a_catalog_written_in_another_language() {
        let english = coffee_shop(
            Language::En,
            [
                ("Electric Kettle 1.7 l", "Kitchen", "Boils water fast"),
                ("Coffee Grinder", "Coffee", "Burr grinder for beans"),
                ("Hiking Shoe", "Shoes", "Grippy sole"),
                ("Rain Jacket", "Jackets", "Waterproof shell"),
            ],
        );
        let first = |index: &SearchIndex, query: &str, language: Language| {
            ids(index.find(query, language, 4)).first().cloned()
        };
        assert_eq!(
            first(&english, "Wasserkocher", Language::De).as_deref(),
            Some("1")
        );
        assert_eq!(
            first(&english, "Kaffeemühle", Language::De).as_deref(),
            Some("2")
        );
        assert_eq!(
            first(&english, "Regenjacke", Language::De).as_deref(),
            Some("4")
        );
        assert_eq!(
            first(&english, "une veste", Language::Fr).as_deref(),
            Some("4")
        );
        assert_eq!(
            first(&english, "zapatos", Language::Es).as_deref(),
            Some("3")
        );
        // Dutch, into English through a base form and a compound's parts.
        assert_eq!(
            first(&english, "koffiemolen", Language::Nl).as_deref(),
            Some("2")
        );
        // English into a German catalog, and Dutch into it through English.
        let german = coffee_shop(
            Language::De,
            [
                ("Wasserkocher 1,7 l", "Küche", "Kocht Wasser schnell"),
                ("Kaffeemühle", "Kaffee", "Mit Kegelmahlwerk"),
                ("Wanderschuh", "Schuhe", "Griffige Sohle"),
                ("Regenjacke", "Jacken", "Wasserdicht"),
            ],
        );
        assert_eq!(
            first(&german, "coffee grinder", Language::En).as_deref(),
            Some("2")
        );
        assert_eq!(
            first(&german, "rain jacket", Language::En).as_deref(),
            Some("4")
        );
        assert_eq!(first(&german, "koffie", Language::Nl).as_deref(), Some("2"));
    }

    #[test]
    fn a_translation_counts_less_than_the_shoppers_own_word() {
        // "coat" is the shopper's own word in one product and the
        // translation of the Dutch "jas" in both.
        let index = SearchIndex::build(
            vec![
                product("own", "Jas", "Jackets", "", 50),
                product("translated", "Coat", "Jackets", "", 50),
            ],
            Language::En,
        );
        let hits = index.find("jas", Language::Nl, 2);
        assert_eq!(ids(hits.clone()), ["own", "translated"]);
        assert!(hits[1].score < hits[0].score, "{hits:?}");
    }

    #[test]
    fn a_word_that_translates_is_not_taken_for_a_typo() {
        // Spanish "botas" is one letter from "botan", the stem of a rare
        // brand, and translates to "boot", which many products share (so
        // counts little): the translation wins all the same.
        let mut products = vec![product("brand", "Botanica hand cream", "Care", "", 20)];
        for n in 0..6 {
            products.push(product(
                &format!("boot{n}"),
                "Hiking boots",
                "Shoes",
                "",
                90,
            ));
        }
        let index = SearchIndex::build(products, Language::En);
        let hits = index.find("botas", Language::Es, 10);
        assert!(hits[0].product.id.0.starts_with("boot"), "{hits:?}");
        assert!(hits.iter().all(|h| h.product.id.0 != "brand"), "{hits:?}");
        // A word that translates to nothing the catalog has is still
        // corrected.
        let hits = index.find("botanics", Language::En, 1);
        assert_eq!(ids(hits), ["brand"]);
    }

    #[test]
    fn a_word_translated_into_two_counts_about_as_much_as_one() {
        // "cafetera" is "coffee pot", "lana" is "wool": each shopper word
        // weighs about one word, so neither product outranks the other by
        // matching two translated words for one shopper word.
        let index = SearchIndex::build(
            vec![
                product("pot", "Coffee pot", "Kitchen", "", 30),
                product("wool", "Wool blanket", "Home", "", 30),
            ],
            Language::En,
        );
        let hits = index.find("cafetera lana", Language::Es, 2);
        assert_eq!(hits.len(), 2, "{hits:?}");
        let (a, b) = (hits[0].score, hits[1].score);
        assert!(b > 0.75 * a, "{hits:?}");
    }

    #[test]
    fn compounds_match_their_parts_both_ways() {
        let dutch = coffee_shop(
            Language::Nl,
            [
                ("Koffiemolen", "Koffie", "Met conische maalschijven"),
                ("Espresso machine", "Koffie", "Vijftien bar"),
                ("Waterkoker", "Keuken", "Snel kokend water"),
                ("Theepot", "Thee", "Van porselein"),
            ],
        );
        // A part finds the catalog's compound; a compound finds the parts.
        assert_eq!(ids(dutch.find("molen", Language::Nl, 4)), ["1"]);
        assert_eq!(ids(dutch.find("espressomachine", Language::Nl, 4)), ["2"]);
        let german = coffee_shop(
            Language::De,
            [
                ("Kaffeemühle", "Kaffee", "Kegelmahlwerk"),
                ("Kaffee Bohnen", "Kaffee", "Arabica"),
                ("Wasserkocher", "Küche", "Schnell"),
                ("Teekanne", "Tee", "Porzellan"),
            ],
        );
        assert_eq!(ids(german.find("Mühle", Language::De, 4)), ["1"]);
        assert_eq!(
            ids(german.find("Kaffeebohnen", Language::De, 4))
                .first()
                .map(String::as_str),
            Some("2")
        );
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
        assert_eq!(ids(index.find("vaterproof", Language::En, 1)), ["1"]);
        assert_eq!(ids(index.find("aterproof", Language::En, 1)), ["1"]);
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
