//! Offline relevance evaluation of product search: committed judgements
//! against a catalog, scored with nDCG@10 and recall@10 through the same
//! search call the store actor makes. Three sets (see [`Set`]): the demo
//! catalog as shipped, the demo catalog with its tags stripped (English
//! text only) asked in six languages, and a catalog written in Dutch asked
//! in six languages.

use std::collections::HashMap;
use std::sync::Arc;

use mikabot_actors::catalog::Product;
use mikabot_actors::language::{Language, detect};
use mikabot_actors::search::SearchIndex;

/// The judgements shipped with the repository.
pub const QUERIES_TSV: &str = include_str!("../relevance/queries.tsv");
/// The same intents in six languages, for the demo catalog without tags.
pub const CROSSLINGUAL_DEMO_TSV: &str = include_str!("../relevance/crosslingual-demo.tsv");
/// A coffee shop's catalog written in Dutch, and its judgements.
pub const KOFFIE_CATALOG_JSON: &str = include_str!("../relevance/koffie-catalog.json");
pub const CROSSLINGUAL_KOFFIE_TSV: &str = include_str!("../relevance/crosslingual-koffie.tsv");

/// A catalog with its judged queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Set {
    /// The demo catalog as shipped (tags in six languages), `queries.tsv`.
    Demo,
    /// The demo catalog with every tag removed: English text only.
    DemoWithoutTags,
    /// The Dutch coffee catalog.
    Koffie,
}

impl Set {
    pub const ALL: [Set; 3] = [Set::Demo, Set::DemoWithoutTags, Set::Koffie];

    pub fn name(self) -> &'static str {
        match self {
            Set::Demo => "demo",
            Set::DemoWithoutTags => "demo-without-tags",
            Set::Koffie => "koffie",
        }
    }

    pub fn from_name(name: &str) -> Option<Set> {
        Set::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The set's judgements.
    pub fn judgements(self) -> Result<Vec<Judged>, JudgementError> {
        parse_judgements(match self {
            Set::Demo => QUERIES_TSV,
            Set::DemoWithoutTags => CROSSLINGUAL_DEMO_TSV,
            Set::Koffie => CROSSLINGUAL_KOFFIE_TSV,
        })
    }

    /// The set's catalog, indexed as the store actor indexes it.
    pub fn index(self) -> anyhow::Result<SearchIndex> {
        let id = mikabot_actors::ids::StoreId::parse(self.name())?;
        let (profile, mut products) = match self {
            Set::Demo | Set::DemoWithoutTags => mikabot::demo::demo_store(id, "http://localhost")?,
            Set::Koffie => mikabot::demo::store_from_json(
                id,
                "http://localhost",
                KOFFIE_CATALOG_JSON,
                Language::Nl,
            )?,
        };
        if self == Set::DemoWithoutTags {
            for product in &mut products {
                product.tags.clear();
            }
        }
        Ok(SearchIndex::build_with_synonyms(
            products.into_iter().map(Arc::new).collect(),
            profile.default_language,
            &profile.synonyms,
        ))
    }
}
/// Results considered per query.
pub const CUTOFF: usize = 10;

/// One judged query.
#[derive(Debug, Clone)]
pub struct Judged {
    pub language: Language,
    pub query: String,
    exact: Vec<Selector>,
    partial: Vec<Selector>,
}

#[derive(Debug, Clone)]
struct Selector {
    kind: Option<String>,
    word: Option<String>,
    /// Whole euros, inclusive lower and exclusive upper bound.
    min: Option<i64>,
    max: Option<i64>,
}

/// A line of the judgements that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("queries.tsv line {line}: {problem}")]
pub struct JudgementError {
    pub line: usize,
    pub problem: String,
}

impl Selector {
    fn parse(text: &str) -> Result<Self, String> {
        let (rest, price) = match text.split_once('[') {
            Some((head, tail)) => (head, Some(tail.trim_end_matches(']'))),
            None => (text, None),
        };
        let (kind, word) = match rest.split_once('{') {
            Some((kind, word)) => (kind, Some(word.trim_end_matches('}').to_lowercase())),
            None => (rest, None),
        };
        let euros = |s: &str| {
            s.trim()
                .parse::<i64>()
                .map_err(|_| format!("bad price in {text:?}"))
        };
        let (min, max) = match price {
            None => (None, None),
            Some(p) if p.starts_with('<') => (None, Some(euros(&p[1..])? * 100)),
            Some(p) if p.starts_with('>') => (Some(euros(&p[1..])? * 100 + 1), None),
            Some(p) => match p.split_once('-') {
                Some((lo, hi)) => (Some(euros(lo)? * 100), Some(euros(hi)? * 100 + 1)),
                None => return Err(format!("bad price bound in {text:?}")),
            },
        };
        Ok(Self {
            kind: (kind != "*").then(|| kind.to_owned()),
            word,
            min,
            max,
        })
    }

    fn matches(&self, product: &Product) -> bool {
        let kind = product
            .id
            .0
            .rsplit_once('-')
            .map_or(product.id.0.as_str(), |(k, _)| k);
        self.kind.as_deref().is_none_or(|k| k == kind)
            && self
                .word
                .as_deref()
                .is_none_or(|w| product.name.to_lowercase().contains(w))
            && self.min.is_none_or(|m| product.price.minor >= m)
            && self.max.is_none_or(|m| product.price.minor < m)
    }
}

/// Reads the judgements.
pub fn parse_judgements(tsv: &str) -> Result<Vec<Judged>, JudgementError> {
    let mut out = Vec::new();
    for (index, line) in tsv.lines().enumerate() {
        let line_no = index + 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |problem: String| JudgementError {
            line: line_no,
            problem,
        };
        let columns: Vec<&str> = line.split('\t').collect();
        if columns.len() < 3 {
            return Err(err("expected language, query, exact[, partial]".into()));
        }
        let language = Language::from_tag(columns[0])
            .ok_or_else(|| err(format!("unknown language {:?}", columns[0])))?;
        let selectors = |column: Option<&&str>| {
            column
                .map(|c| {
                    c.split_whitespace()
                        .map(Selector::parse)
                        .collect::<Result<Vec<_>, _>>()
                })
                .unwrap_or(Ok(Vec::new()))
                .map_err(err)
        };
        out.push(Judged {
            language,
            query: columns[1].to_owned(),
            exact: selectors(columns.get(2))?,
            partial: selectors(columns.get(3))?,
        });
    }
    Ok(out)
}

impl Judged {
    /// 2 for exact, 1 for partial, 0 otherwise.
    pub fn gain(&self, product: &Product) -> u32 {
        if self.exact.iter().any(|s| s.matches(product)) {
            2
        } else if self.partial.iter().any(|s| s.matches(product)) {
            1
        } else {
            0
        }
    }
}

/// Scores for one query.
#[derive(Debug, Clone)]
pub struct QueryScore {
    pub language: Language,
    pub query: String,
    pub ndcg: f64,
    pub recall: f64,
}

fn dcg(gains: impl Iterator<Item = u32>) -> f64 {
    gains
        .enumerate()
        .map(|(i, g)| (2_f64.powi(g as i32) - 1.0) / ((i + 2) as f64).log2())
        .sum()
}

/// Scores one query given the products a search returned, best first.
pub fn score(judged: &Judged, catalog: &[Arc<Product>], results: &[Arc<Product>]) -> QueryScore {
    let top: Vec<u32> = results
        .iter()
        .take(CUTOFF)
        .map(|p| judged.gain(p))
        .collect();
    let mut ideal: Vec<u32> = catalog
        .iter()
        .map(|p| judged.gain(p))
        .filter(|g| *g > 0)
        .collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let exact_total = ideal.iter().filter(|g| **g == 2).count();
    let ideal_dcg = dcg(ideal.into_iter().take(CUTOFF));
    let ndcg = if ideal_dcg > 0.0 {
        dcg(top.iter().copied()) / ideal_dcg
    } else {
        0.0
    };
    let exact_found = top.iter().filter(|g| **g == 2).count();
    let recall = if exact_total > 0 {
        exact_found as f64 / exact_total.min(CUTOFF) as f64
    } else {
        0.0
    };
    QueryScore {
        language: judged.language,
        query: judged.query.clone(),
        ndcg,
        recall,
    }
}

/// Runs every judged query against an index of `catalog`.
pub fn evaluate(judged: &[Judged], index: &SearchIndex) -> Vec<QueryScore> {
    judged
        .iter()
        .map(|j| {
            let language = detect(&j.query, j.language);
            let results: Vec<Arc<Product>> = index
                .find(&j.query, language, CUTOFF)
                .into_iter()
                .map(|hit| hit.product)
                .collect();
            score(j, index.products(), &results)
        })
        .collect()
}

/// Mean nDCG@10 and recall@10, overall and per language.
pub fn summary(scores: &[QueryScore]) -> Vec<(String, usize, f64, f64)> {
    let mut groups: HashMap<String, Vec<&QueryScore>> = HashMap::new();
    for s in scores {
        groups
            .entry(s.language.code().to_owned())
            .or_default()
            .push(s);
        groups.entry("all".to_owned()).or_default().push(s);
    }
    let mut rows: Vec<(String, usize, f64, f64)> = groups
        .into_iter()
        .map(|(name, group)| {
            let n = group.len() as f64;
            let ndcg = group.iter().map(|s| s.ndcg).sum::<f64>() / n;
            let recall = group.iter().map(|s| s.recall).sum::<f64>() / n;
            (name, group.len(), ndcg, recall)
        })
        .collect();
    rows.sort_by_key(|row| (row.0 != "all", row.0.clone()));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_judgements_parse_and_cover_four_languages() {
        let judged = parse_judgements(QUERIES_TSV).expect("judgements parse");
        assert!(judged.len() >= 120, "{} queries", judged.len());
        for language in [Language::En, Language::Nl, Language::Fr, Language::De] {
            assert!(judged.iter().filter(|j| j.language == language).count() >= 20);
        }
    }

    #[test]
    fn search_quality_stays_at_its_measured_level() {
        let judged = parse_judgements(QUERIES_TSV).expect("judgements parse");
        let id = mikabot_actors::ids::StoreId::parse("demo").expect("valid");
        let (profile, products) = mikabot::demo::demo_store(id, "http://localhost").expect("demo");
        let index = SearchIndex::build_with_synonyms(
            products.into_iter().map(Arc::new).collect(),
            profile.default_language,
            &profile.synonyms,
        );
        let all = summary(&evaluate(&judged, &index))
            .into_iter()
            .find(|row| row.0 == "all")
            .expect("an overall row");
        // Measured 0.905 and 0.975 when these floors were set (0.926 and
        // 0.981 with the lexicons of every pair).
        assert!(all.2 >= 0.90, "nDCG@10 fell to {:.3}", all.2);
        assert!(all.3 >= 0.97, "recall@10 fell to {:.3}", all.3);
    }

    #[test]
    fn the_cross_language_sets_ask_every_intent_in_six_languages() {
        for set in [Set::DemoWithoutTags, Set::Koffie] {
            let judged = set.judgements().expect("judgements parse");
            let count = |l: Language| judged.iter().filter(|j| j.language == l).count();
            let english = count(Language::En);
            assert!(english >= 14, "{}: {english}", set.name());
            for language in Language::ALL {
                assert_eq!(count(language), english, "{} {language:?}", set.name());
            }
            // Every exact judgement names products the catalog has.
            let index = set.index().expect("catalog");
            for j in &judged {
                assert!(
                    index.products().iter().any(|p| j.gain(p) == 2),
                    "{}",
                    j.query
                );
            }
        }
    }

    #[test]
    fn cross_language_search_stays_at_its_measured_level() {
        // Measured when these floors were set (all languages together):
        // demo without tags 0.842 / 0.932 (0.724 / 0.797 with the English
        // lexicons alone, 0.464 / 0.498 without any); the Dutch catalog
        // 0.696 / 0.893 (0.499 / 0.583 and 0.248 / 0.310).
        for (set, ndcg, recall) in [
            (Set::DemoWithoutTags, 0.83, 0.92),
            (Set::Koffie, 0.67, 0.87),
        ] {
            let judged = set.judgements().expect("judgements parse");
            let index = set.index().expect("catalog");
            let rows = summary(&evaluate(&judged, &index));
            // The target: every language within 10 % of English (on the
            // Dutch catalog English is itself a translated language).
            let english = rows.iter().find(|row| row.0 == "en").expect("English");
            for row in rows.iter().filter(|row| row.0 != "all") {
                assert!(
                    row.2 >= 0.9 * english.2,
                    "{} {}: nDCG@10 {:.3} against English {:.3}",
                    set.name(),
                    row.0,
                    row.2,
                    english.2
                );
            }
            let all = rows
                .into_iter()
                .find(|row| row.0 == "all")
                .expect("an overall row");
            assert!(
                all.2 >= ndcg,
                "{}: nDCG@10 fell to {:.3}",
                set.name(),
                all.2
            );
            assert!(
                all.3 >= recall,
                "{}: recall@10 fell to {:.3}",
                set.name(),
                all.3
            );
        }
    }

    #[test]
    fn a_perfect_ranking_scores_one_and_a_useless_one_zero() {
        let id = mikabot_actors::ids::StoreId::parse("demo").expect("valid");
        let (_, products) = mikabot::demo::demo_store(id, "http://localhost").expect("demo");
        let catalog: Vec<Arc<Product>> = products.into_iter().map(Arc::new).collect();
        let judged = &parse_judgements("en\tyoga mat\tyoga-mat\t\n").expect("parses")[0];
        let perfect: Vec<_> = catalog
            .iter()
            .filter(|p| judged.gain(p) == 2)
            .cloned()
            .collect();
        let score_perfect = score(judged, &catalog, &perfect);
        assert!((score_perfect.ndcg - 1.0).abs() < 1e-9);
        assert!((score_perfect.recall - 1.0).abs() < 1e-9);
        let useless: Vec<_> = catalog
            .iter()
            .filter(|p| judged.gain(p) == 0)
            .take(10)
            .cloned()
            .collect();
        assert_eq!(score(judged, &catalog, &useless).ndcg, 0.0);
    }
}
