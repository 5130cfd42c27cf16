//! Bilingual lexicons between English and each other supported language,
//! and the compound splitting of Dutch and German words, for search across
//! languages: a shopper's words reach a catalog written in another language
//! through their translations.
//!
//! The lexicons are compiled by `scripts/lexicon.py` from the FreeDict
//! dictionaries (GPL-2.0-or-later; `actors/data/lexicon/README.md`) into
//! `actors/data/lexicon/*.tsv.gz` and compiled into the binary. Each is
//! decompressed and folded the first time a search needs it, then kept as
//! one string with a sorted line index (a few MB for German, far less for
//! the others). Pairs without English go through English: Dutch to French
//! is Dutch to English, then English to French.

use std::io::Read;
use std::sync::OnceLock;

use crate::language::Language;
use crate::search::analysis::fold;

/// Most translations a lexicon lists for one word, and most a lookup
/// returns (a search then keeps the first [`MAX_TRANSLATIONS`] of them its
/// catalog knows): ambiguity is bounded.
pub const MAX_CANDIDATES: usize = 6;
pub const MAX_TRANSLATIONS: usize = 4;
/// Most English words a pivot goes through, and translations taken of each.
const PIVOT_WIDTH: usize = 2;
const PIVOT_FANOUT: usize = 3;
/// Most parts a compound splits into.
pub const MAX_PARTS: usize = 4;
/// Shortest word tried as a compound, and shortest part.
const MIN_COMPOUND_LEN: usize = 7;
/// Longest word split, in bytes: the longest compounds of everyday
/// language are far shorter, and splitting costs grow with the square of
/// the length (a shopper can send a 2,000-letter word).
const MAX_COMPOUND_LEN: usize = 40;
const MIN_PART_LEN: usize = 3;

/// The compiled lexicons, by `(from, to)`; one side is always English.
const SOURCES: [(Language, Language, &[u8]); 10] = [
    (
        Language::Nl,
        Language::En,
        include_bytes!("../../data/lexicon/nl-en.tsv.gz"),
    ),
    (
        Language::En,
        Language::Nl,
        include_bytes!("../../data/lexicon/en-nl.tsv.gz"),
    ),
    (
        Language::Fr,
        Language::En,
        include_bytes!("../../data/lexicon/fr-en.tsv.gz"),
    ),
    (
        Language::En,
        Language::Fr,
        include_bytes!("../../data/lexicon/en-fr.tsv.gz"),
    ),
    (
        Language::De,
        Language::En,
        include_bytes!("../../data/lexicon/de-en.tsv.gz"),
    ),
    (
        Language::En,
        Language::De,
        include_bytes!("../../data/lexicon/en-de.tsv.gz"),
    ),
    (
        Language::Es,
        Language::En,
        include_bytes!("../../data/lexicon/es-en.tsv.gz"),
    ),
    (
        Language::En,
        Language::Es,
        include_bytes!("../../data/lexicon/en-es.tsv.gz"),
    ),
    (
        Language::It,
        Language::En,
        include_bytes!("../../data/lexicon/it-en.tsv.gz"),
    ),
    (
        Language::En,
        Language::It,
        include_bytes!("../../data/lexicon/en-it.tsv.gz"),
    ),
];

static LOADED: [OnceLock<Lexicon>; 10] = [const { OnceLock::new() }; 10];

/// One direction of one language pair: folded heads (a word or a two-word
/// phrase) to their translations, best first.
pub struct Lexicon {
    /// The folded lines, `head\tt1|t2…\n`.
    text: String,
    /// Each line's head and translations as byte ranges, sorted by head.
    lines: Vec<Line>,
}

#[derive(Clone, Copy)]
struct Line {
    head: (u32, u32),
    translations: (u32, u32),
}

impl Lexicon {
    /// Reads one compiled lexicon. The data ships inside the binary, so a
    /// failure here is a build defect; it leaves the lexicon empty.
    fn load(compressed: &[u8]) -> Self {
        let mut raw = String::new();
        if let Err(error) = flate2::read::GzDecoder::new(compressed).read_to_string(&mut raw) {
            tracing::error!(%error, "a compiled search lexicon could not be read");
            raw.clear();
        }
        let text = fold(&raw);
        let mut lines = Vec::new();
        let mut start = 0;
        for line in text.split_inclusive('\n') {
            let at = start;
            start += line.len();
            if line.starts_with('#') {
                continue;
            }
            let body = line.trim_end_matches('\n');
            let Some(tab) = body.find('\t') else { continue };
            // The text of a compiled lexicon is a few MB: offsets fit u32.
            lines.push(Line {
                head: (at as u32, (at + tab) as u32),
                translations: ((at + tab + 1) as u32, (at + body.len()) as u32),
            });
        }
        let mut lexicon = Self { text, lines };
        let mut lines = std::mem::take(&mut lexicon.lines);
        lines.sort_by(|a, b| lexicon.slice(a.head).cmp(lexicon.slice(b.head)));
        lines.dedup_by(|a, b| lexicon.slice(a.head) == lexicon.slice(b.head));
        lexicon.lines = lines;
        lexicon
    }

    fn slice(&self, (start, end): (u32, u32)) -> &str {
        &self.text[start as usize..end as usize]
    }

    /// The translations of a folded head, best first; empty if unknown.
    pub fn get(&self, head: &str) -> impl Iterator<Item = &str> {
        let found = self
            .lines
            .binary_search_by(|line| self.slice(line.head).cmp(head))
            .ok()
            .map(|i| self.slice(self.lines[i].translations));
        found.into_iter().flat_map(|t| t.split('|'))
    }

    /// Whether a folded word is a head.
    pub fn contains(&self, head: &str) -> bool {
        self.lines
            .binary_search_by(|line| self.slice(line.head).cmp(head))
            .is_ok()
    }

    /// The translations of a folded word, trying its base forms when the
    /// word itself is not a head ("schoenen" is looked up as "schoen").
    pub fn lookup(&self, word: &str, language: Language) -> Vec<&str> {
        base_forms(word, language)
            .iter()
            .find_map(|form| {
                let found: Vec<&str> = self.get(form).collect();
                (!found.is_empty()).then_some(found)
            })
            .unwrap_or_default()
    }

    /// Whether a folded word or one of its base forms is a head.
    pub fn knows(&self, word: &str, language: Language) -> bool {
        base_forms(word, language)
            .iter()
            .any(|form| self.contains(form))
    }
}

/// The lexicon from `from` to `to`, loaded on first use; `None` unless one
/// side is English and the other is not.
pub fn lexicon(from: Language, to: Language) -> Option<&'static Lexicon> {
    let position = SOURCES
        .iter()
        .position(|(f, t, _)| *f == from && *t == to)?;
    Some(LOADED[position].get_or_init(|| Lexicon::load(SOURCES[position].2)))
}

/// Loads every lexicon now (a node calls it on a blocking thread as it
/// starts, so no store's first foreign word waits for a load on its
/// actor's thread).
pub fn load_all() {
    for (from, to, _) in SOURCES {
        let _ = lexicon(from, to);
    }
}

/// The translations of a folded word or two-word phrase from one language
/// into another, best first, at most [`MAX_CANDIDATES`], each with its
/// rank among them and whether it went through English.
pub fn translate(word: &str, from: Language, to: Language) -> Vec<(String, Translated)> {
    let mut out: Vec<(String, Translated)> = Vec::new();
    if from == to {
        return out;
    }
    let push = |text: &str, pivot: bool, out: &mut Vec<(String, Translated)>| {
        if out.len() < MAX_CANDIDATES && text != word && !out.iter().any(|(t, _)| t == text) {
            let rank = out.len();
            out.push((text.to_owned(), Translated { rank, pivot }));
        }
    };
    if let Some(direct) = lexicon(from, to) {
        for text in direct.lookup(word, from) {
            push(text, false, &mut out);
        }
        return out;
    }
    let (Some(into_english), Some(from_english)) =
        (lexicon(from, Language::En), lexicon(Language::En, to))
    else {
        return out;
    };
    for english in into_english
        .lookup(word, from)
        .into_iter()
        .take(PIVOT_WIDTH)
    {
        for text in from_english
            .lookup(english, Language::En)
            .into_iter()
            .take(PIVOT_FANOUT)
        {
            push(text, true, &mut out);
        }
    }
    out
}

/// Where a translation stands: its rank (0 is the best) and whether it
/// went through English.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translated {
    pub rank: usize,
    pub pivot: bool,
}

/// A folded word and the forms a dictionary lists it under: plural and
/// inflected endings removed, and for a Dutch or German compound's verb
/// part the infinitive ("wandel" → "wandelen").
pub fn base_forms(word: &str, language: Language) -> Vec<String> {
    let mut forms = vec![word.to_owned()];
    let mut add = |form: String| {
        if form.chars().count() >= 2 && !forms.contains(&form) {
            forms.push(form);
        }
    };
    let strip = |ending: &str| word.strip_suffix(ending).map(str::to_owned);
    match language {
        Language::En => {
            if let Some(stem) = strip("ies") {
                add(format!("{stem}y"));
            }
            for ending in ["es", "s"] {
                if let Some(stem) = strip(ending) {
                    add(stem);
                }
            }
        }
        Language::Nl => {
            for ending in ["eren", "en", "'s", "s", "e"] {
                if let Some(stem) = strip(ending) {
                    // "jassen" → "jas": a doubled consonant before -en.
                    let undoubled = undouble(&stem);
                    add(stem);
                    if let Some(u) = undoubled {
                        add(u);
                    }
                }
            }
            add(format!("{word}en"));
        }
        Language::De => {
            for ending in ["ern", "en", "er", "es", "n", "e", "s"] {
                if let Some(stem) = strip(ending) {
                    add(stem);
                }
            }
            add(format!("{word}n"));
            add(format!("{word}en"));
        }
        Language::Fr => {
            if let Some(stem) = strip("aux") {
                add(format!("{stem}al"));
            }
            for ending in ["s", "x"] {
                if let Some(stem) = strip(ending) {
                    add(stem);
                }
            }
        }
        Language::Es => {
            for ending in ["es", "s"] {
                if let Some(stem) = strip(ending) {
                    add(stem);
                }
            }
        }
        Language::It => {
            for (ending, singular) in [
                ("chi", "co"),
                ("ghi", "go"),
                ("i", "o"),
                ("i", "e"),
                ("e", "a"),
            ] {
                if let Some(stem) = strip(ending) {
                    add(format!("{stem}{singular}"));
                }
            }
        }
    }
    forms
}

/// "jass" → "jas": a word ending in a doubled consonant, undoubled.
fn undouble(stem: &str) -> Option<String> {
    let mut chars = stem.chars().rev();
    let (last, before) = (chars.next()?, chars.next()?);
    (last == before && !"aeiou".contains(last))
        .then(|| stem[..stem.len() - last.len_utf8()].to_owned())
}

/// Linking letters between the parts of a compound, longest first.
fn linkers(language: Language) -> &'static [&'static str] {
    match language {
        Language::De => &["es", "en", "er", "s", "n", "e"],
        Language::Nl => &["en", "s", "e"],
        _ => &[],
    }
}

/// The parts of a Dutch or German compound ("kaffeemuhle" → "kaffee",
/// "muhle"; "filterkoffiezetapparaat" → "filter", "koffie", "zet",
/// "apparaat"), each a word `known` accepts. `None` when the word is no
/// compound of known words, or the language does not compound.
pub fn split_compound(
    word: &str,
    language: Language,
    known: &dyn Fn(&str) -> bool,
) -> Option<Vec<String>> {
    if !matches!(language, Language::De | Language::Nl)
        || !(MIN_COMPOUND_LEN..=MAX_COMPOUND_LEN).contains(&word.len())
    {
        return None;
    }
    if !word.chars().all(|c| c.is_ascii_lowercase()) {
        return None;
    }
    split_from(word, language, known, MAX_PARTS, false)
}

/// Splits `word` into at most `budget` known parts, the longest head
/// first; the whole word counts as one part when `whole` allows it.
fn split_from(
    word: &str,
    language: Language,
    known: &dyn Fn(&str) -> bool,
    budget: usize,
    whole: bool,
) -> Option<Vec<String>> {
    if whole && word.len() >= MIN_PART_LEN && known(word) {
        return Some(vec![word.to_owned()]);
    }
    if budget < 2 {
        return None;
    }
    // ASCII only (checked by the caller): byte positions are characters.
    for at in (MIN_PART_LEN..=word.len().saturating_sub(MIN_PART_LEN)).rev() {
        let (head, tail) = word.split_at(at);
        let head_base = if known(head) {
            Some(head)
        } else {
            linkers(language).iter().find_map(|linker| {
                head.strip_suffix(linker)
                    .filter(|h| h.len() >= MIN_PART_LEN && known(h))
            })
        };
        let Some(head_base) = head_base else { continue };
        if let Some(mut rest) = split_from(tail, language, known, budget - 1, true) {
            rest.insert(0, head_base.to_owned());
            return Some(rest);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn english_of(word: &str, from: Language) -> Vec<String> {
        translate(word, from, Language::En)
            .into_iter()
            .map(|(t, _)| t)
            .collect()
    }

    #[test]
    fn every_shipped_lexicon_loads_sorted_and_nonempty() {
        for (from, to, _) in SOURCES {
            let lexicon = lexicon(from, to).expect("shipped");
            assert!(
                lexicon.lines.len() > 3_000,
                "{from:?}-{to:?}: {}",
                lexicon.lines.len()
            );
            assert!(
                lexicon
                    .lines
                    .windows(2)
                    .all(|w| { lexicon.slice(w[0].head) < lexicon.slice(w[1].head) })
            );
        }
    }

    #[test]
    fn everyday_shopping_words_translate_into_english() {
        assert!(english_of("jacke", Language::De).contains(&"jacket".to_owned()));
        assert!(english_of("schlafsack", Language::De).contains(&"sleeping bag".to_owned()));
        assert!(english_of("chaussure", Language::Fr).contains(&"shoe".to_owned()));
        assert!(english_of("mochila", Language::Es).contains(&"backpack".to_owned()));
        // Through a base form: the plural is not a head.
        assert!(english_of("schoenen", Language::Nl).contains(&"shoe".to_owned()));
        assert!(english_of("koffie", Language::Nl).contains(&"coffee".to_owned()));
    }

    #[test]
    fn english_translates_out_and_other_pairs_pivot_through_english() {
        let german: Vec<String> = translate("coffee", Language::En, Language::De)
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert!(german.contains(&"kaffee".to_owned()), "{german:?}");
        let french = translate("koffie", Language::Nl, Language::Fr);
        assert!(french.iter().any(|(t, _)| t == "cafe"), "{french:?}");
        assert!(french.iter().all(|(_, how)| how.pivot));
        assert!(translate("koffie", Language::Nl, Language::Nl).is_empty());
    }

    #[test]
    fn ambiguity_is_bounded() {
        for (from, to, _) in SOURCES {
            for word in ["bank", "set", "case", "jas", "tas", "boot", "coffee"] {
                assert!(translate(word, from, to).len() <= MAX_CANDIDATES);
            }
        }
        for word in ["jas", "tas", "koffie"] {
            assert!(translate(word, Language::Nl, Language::De).len() <= MAX_CANDIDATES);
        }
    }

    #[test]
    fn compounds_split_into_known_parts() {
        let dutch = lexicon(Language::Nl, Language::En).expect("shipped");
        let german = lexicon(Language::De, Language::En).expect("shipped");
        let known_nl = |w: &str| dutch.knows(w, Language::Nl);
        let known_de = |w: &str| german.knows(w, Language::De);
        assert_eq!(
            split_compound("koffiemolen", Language::Nl, &known_nl),
            Some(vec!["koffie".to_owned(), "molen".to_owned()])
        );
        let parts = split_compound("wandelschoenen", Language::Nl, &known_nl).expect("splits");
        assert_eq!(parts.last().map(String::as_str), Some("schoenen"));
        assert_eq!(
            split_compound("kaffeemuhle", Language::De, &known_de),
            Some(vec!["kaffee".to_owned(), "muhle".to_owned()])
        );
        // A linking -s- stays on its part, which still translates:
        // "Arbeitsschuh".
        let parts = split_compound("arbeitsschuh", Language::De, &known_de).expect("splits");
        assert_eq!(parts, ["arbeits", "schuh"]);
        assert!(!english_of("arbeits", Language::De).is_empty());
        // Not a compound language, too short, or no known parts.
        assert_eq!(split_compound("coffeemaker", Language::En, &known_nl), None);
        assert_eq!(split_compound("molen", Language::Nl, &known_nl), None);
        assert_eq!(split_compound("xqzvwkptr", Language::Nl, &known_nl), None);
        // A shopper's endless word is not tried, however splittable.
        let endless = "koffie".repeat(300);
        let tried = std::cell::Cell::new(0_u32);
        let counting = |w: &str| {
            tried.set(tried.get() + 1);
            known_nl(w)
        };
        assert_eq!(split_compound(&endless, Language::Nl, &counting), None);
        assert_eq!(tried.get(), 0);
    }

    #[test]
    fn base_forms_reach_dictionary_heads() {
        assert!(base_forms("jassen", Language::Nl).contains(&"jas".to_owned()));
        assert!(base_forms("batteries", Language::En).contains(&"battery".to_owned()));
        assert!(base_forms("scarpe", Language::It).contains(&"scarpa".to_owned()));
        assert!(base_forms("chevaux", Language::Fr).contains(&"cheval".to_owned()));
        assert!(base_forms("wander", Language::De).contains(&"wandern".to_owned()));
    }
}
