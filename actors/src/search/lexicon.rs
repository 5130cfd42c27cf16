//! Bilingual lexicons between every two supported languages, and the
//! compound splitting of Dutch and German words, for search across
//! languages: a shopper's words reach a catalog written in another language
//! through their translations.
//!
//! The lexicons are compiled by `scripts/lexicon.py` from the FreeDict
//! dictionaries, WikDict's among them, and the emoji names of Unicode CLDR
//! (`actors/data/lexicon/README.md` has their sources and licences), into
//! `actors/data/lexicon/*.tsv.gz` and compiled into the binary. A pair's
//! translations come from its own dictionaries first, with the emoji names
//! after their first three, then from pivot languages that agree (marked
//! `~`; search counts them less). Each lexicon is decompressed and folded the
//! first time a search needs it, then kept as one string with a sorted line
//! index.

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

macro_rules! source {
    ($from:ident, $to:ident, $name:literal) => {
        (
            Language::$from,
            Language::$to,
            include_bytes!(concat!("../../data/lexicon/", $name, ".tsv.gz")),
        )
    };
}

/// The compiled lexicons, by `(from, to)`: every ordered pair of the six
/// languages.
const SOURCES: [(Language, Language, &[u8]); 30] = [
    source!(En, Nl, "en-nl"),
    source!(En, Fr, "en-fr"),
    source!(En, De, "en-de"),
    source!(En, Es, "en-es"),
    source!(En, It, "en-it"),
    source!(Nl, En, "nl-en"),
    source!(Nl, Fr, "nl-fr"),
    source!(Nl, De, "nl-de"),
    source!(Nl, Es, "nl-es"),
    source!(Nl, It, "nl-it"),
    source!(Fr, En, "fr-en"),
    source!(Fr, Nl, "fr-nl"),
    source!(Fr, De, "fr-de"),
    source!(Fr, Es, "fr-es"),
    source!(Fr, It, "fr-it"),
    source!(De, En, "de-en"),
    source!(De, Nl, "de-nl"),
    source!(De, Fr, "de-fr"),
    source!(De, Es, "de-es"),
    source!(De, It, "de-it"),
    source!(Es, En, "es-en"),
    source!(Es, Nl, "es-nl"),
    source!(Es, Fr, "es-fr"),
    source!(Es, De, "es-de"),
    source!(Es, It, "es-it"),
    source!(It, En, "it-en"),
    source!(It, Nl, "it-nl"),
    source!(It, Fr, "it-fr"),
    source!(It, De, "it-de"),
    source!(It, Es, "it-es"),
];

static LOADED: [OnceLock<Lexicon>; 30] = [const { OnceLock::new() }; 30];

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

    /// The translations of a folded head, best first, each with whether it
    /// was found only through pivot languages (marked `~` in the file);
    /// empty if unknown.
    pub fn get(&self, head: &str) -> impl Iterator<Item = (&str, bool)> {
        let found = self
            .lines
            .binary_search_by(|line| self.slice(line.head).cmp(head))
            .ok()
            .map(|i| self.slice(self.lines[i].translations));
        found
            .into_iter()
            .flat_map(|t| t.split('|'))
            .map(|t| match t.strip_prefix('~') {
                Some(pivoted) => (pivoted, true),
                None => (t, false),
            })
    }

    /// Whether a folded word is a head.
    pub fn contains(&self, head: &str) -> bool {
        self.lines
            .binary_search_by(|line| self.slice(line.head).cmp(head))
            .is_ok()
    }

    /// The translations of a folded word, trying its base forms when the
    /// word itself is not a head ("schoenen" is looked up as "schoen"): the
    /// first form a dictionary of the pair translates, else the first one
    /// pivots reach (French "noire" is only a pivoted "quarter note", while
    /// the dictionaries give "noir" as "black").
    pub fn lookup(&self, word: &str, language: Language) -> Vec<(&str, bool)> {
        let mut pivoted_only: Option<Vec<(&str, bool)>> = None;
        for form in base_forms(word, language) {
            let found: Vec<(&str, bool)> = self.get(&form).collect();
            if found.iter().any(|(_, pivoted)| !pivoted) {
                return found;
            }
            if pivoted_only.is_none() && !found.is_empty() {
                pivoted_only = Some(found);
            }
        }
        pivoted_only.unwrap_or_default()
    }

    /// Whether a folded word or one of its base forms is a head, as a
    /// compound's part: a form shorter than a part may be is not counted
    /// (a tail "enen" is not the Dutch "en").
    pub fn knows(&self, word: &str, language: Language) -> bool {
        base_forms(word, language)
            .iter()
            .any(|form| form.len() >= MIN_PART_LEN && self.contains(form))
    }
}

/// The lexicon from `from` to `to`, loaded on first use; `None` when the
/// two are one language.
pub fn lexicon(from: Language, to: Language) -> Option<&'static Lexicon> {
    let position = SOURCES
        .iter()
        .position(|(f, t, _)| *f == from && *t == to)?;
    Some(LOADED[position].get_or_init(|| Lexicon::load(SOURCES[position].2)))
}

/// Loads the lexicons searches of a catalog written in `catalog` use, if
/// not yet loaded: every language into it, and every language into English
/// (the fallback through English, and the parts of Dutch and German
/// compounds). A store calls it on a blocking thread as its catalog loads,
/// so a node holds only the pairs its stores' languages need: all thirty
/// take about 40 MB, those into English about 9 MB.
pub fn load_for(catalog: Language) {
    for from in Language::ALL {
        let _ = lexicon(from, catalog);
        let _ = lexicon(from, Language::En);
    }
}

/// The translations of a folded word or two-word phrase from one language
/// into another, best first, at most [`MAX_CANDIDATES`], each with its
/// rank among them and whether it came through a pivot language: the
/// pair's own lexicon first, and for a word it lacks between two languages
/// other than English, through English.
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
        for (text, pivoted) in direct.lookup(word, from) {
            push(text, pivoted, &mut out);
        }
    }
    if !out.is_empty() || from == Language::En || to == Language::En {
        return out;
    }
    // A word the pair's own lexicon lacks may still be in the two English
    // ones (the English dictionaries are the largest).
    let (Some(into_english), Some(from_english)) =
        (lexicon(from, Language::En), lexicon(Language::En, to))
    else {
        return out;
    };
    for (english, _) in into_english
        .lookup(word, from)
        .into_iter()
        .take(PIVOT_WIDTH)
    {
        for (text, _) in from_english
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
/// came through a pivot language (when the lexicon was compiled, or through
/// English as it was looked up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translated {
    pub rank: usize,
    pub pivot: bool,
}

/// A folded word and the forms a dictionary lists it under, most likely
/// first: plural and inflected endings removed; for a Dutch or German
/// compound's verb part the infinitive ("wandel" → "wandelen"); in French,
/// Spanish and Italian the masculine of a feminine adjective ("seca" →
/// "seco"), the word a diminutive is made from ("molinillo" → "molino",
/// "tazzine" → "tazza") and the verb of a participle or an agent noun
/// ("hidratante" → "hidratar", "espumador" → "espumar"). A lookup takes the
/// first form that is a head, so a word the dictionary lists is never read
/// as another.
pub fn base_forms(word: &str, language: Language) -> Vec<String> {
    let mut forms = vec![word.to_owned()];
    let mut add = |form: String| {
        if form.chars().count() >= 2 && !forms.contains(&form) {
            forms.push(form);
        }
    };
    let strip = |ending: &str| word.strip_suffix(ending).map(str::to_owned);
    // Each (ending, replacement) in order, applied to the word as written.
    let replace = |pairs: &[(&str, &str)], add: &mut dyn FnMut(String)| {
        for (ending, base) in pairs {
            if let Some(stem) = word.strip_suffix(ending)
                && stem.chars().count() >= 2
            {
                add(format!("{stem}{base}"));
            }
        }
    };
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
            replace(FRENCH_FORMS, &mut add);
        }
        Language::Es => {
            for ending in ["es", "s"] {
                if let Some(stem) = strip(ending) {
                    add(stem);
                }
            }
            replace(SPANISH_FORMS, &mut add);
        }
        Language::It => {
            for (ending, singular) in [
                ("chi", "co"),
                ("ghi", "go"),
                ("che", "ca"),
                ("ghe", "ga"),
                ("i", "o"),
                ("i", "e"),
                ("e", "a"),
            ] {
                if let Some(stem) = strip(ending) {
                    add(format!("{stem}{singular}"));
                }
            }
            replace(ITALIAN_FORMS, &mut add);
        }
    }
    forms
}

/// French feminines and plurals of adjectives ("noires" → "noir",
/// "chaleureuse" → "chaleureux"), and present participles ("chauffant" →
/// "chauffer").
const FRENCH_FORMS: &[(&str, &str)] = &[
    ("euses", "eux"),
    ("euse", "eux"),
    ("ives", "if"),
    ("ive", "if"),
    ("elles", "el"),
    ("elle", "el"),
    ("ennes", "en"),
    ("enne", "en"),
    ("es", ""),
    ("e", ""),
    ("antes", "er"),
    ("ante", "er"),
    ("ants", "er"),
    ("ant", "er"),
];

/// Spanish feminines ("seca" → "seco"), diminutives ("molinillo" →
/// "molino"),
/// participles ("hidratante" → "hidratar") and agent nouns ("espumador" →
/// "espumar").
const SPANISH_FORMS: &[(&str, &str)] = &[
    ("as", "o"),
    ("a", "o"),
    ("illos", "o"),
    ("illas", "a"),
    ("illo", "o"),
    ("illa", "a"),
    ("itos", "o"),
    ("itas", "a"),
    ("ito", "o"),
    ("ita", "a"),
    ("antes", "ar"),
    ("ante", "ar"),
    ("ientes", "ir"),
    ("iente", "ir"),
    ("entes", "er"),
    ("ente", "er"),
    ("adores", "ar"),
    ("adoras", "ar"),
    ("adora", "ar"),
    ("ador", "ar"),
];

/// Italian feminines and plurals of adjectives ("nere" → "nero"),
/// diminutives ("tazzine" → "tazza"), participles ("decalcificante" →
/// "decalcificare") and agent nouns ("macinatore" → "macinare").
const ITALIAN_FORMS: &[(&str, &str)] = &[
    ("a", "o"),
    ("e", "o"),
    ("ine", "a"),
    ("ina", "a"),
    ("ini", "o"),
    ("ino", "o"),
    ("ette", "a"),
    ("etta", "a"),
    ("etti", "o"),
    ("etto", "o"),
    ("anti", "are"),
    ("ante", "are"),
    ("enti", "ere"),
    ("ente", "ere"),
    ("ente", "ire"),
    ("trici", "re"),
    ("trice", "re"),
    ("tori", "re"),
    ("tore", "re"),
];

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
    fn everyday_objects_are_called_what_their_emoji_names_call_them() {
        // The dictionaries know Spanish "zapatilla" as a slipper only; the
        // emoji names call the running shoe a "zapatilla deportiva".
        let shoe = english_of("zapatilla", Language::Es);
        assert_eq!(shoe.first().map(String::as_str), Some("slipper"));
        assert!(shoe.contains(&"shoe".to_owned()), "{shoe:?}");
        // A word the dictionaries do not list gains no head of its own: its
        // inflections still reach the form they list.
        let child = english_of("ninos", Language::Es);
        assert!(child.contains(&"child".to_owned()), "{child:?}");
        let woman = english_of("mujeres", Language::Es);
        assert!(woman.contains(&"woman".to_owned()), "{woman:?}");
        // Names only pivots reached before are the pair's own now.
        for (word, from, english) in [
            ("telefono movil", Language::Es, "mobile phone"),
            ("ordinateur portable", Language::Fr, "laptop"),
            ("teddybar", Language::De, "teddy bear"),
        ] {
            let found = translate(word, from, Language::En);
            assert!(
                found.iter().any(|(t, how)| t == english && !how.pivot),
                "{word}: {found:?}"
            );
        }
        // Between two languages other than English too, and as the pair's
        // own translation where only pivots reached it before.
        let french = lexicon(Language::Es, Language::Fr).expect("shipped");
        let shoe: Vec<(&str, bool)> = french.get("zapatilla").collect();
        assert!(shoe.contains(&("chaussure", false)), "{shoe:?}");
        let spanish = translate("ordinateur portable", Language::Fr, Language::Es);
        assert!(
            spanish
                .iter()
                .any(|(t, how)| t == "ordenador portatil" && !how.pivot),
            "{spanish:?}"
        );
    }

    #[test]
    fn feminines_diminutives_and_participles_reach_their_heads() {
        // Dictionaries list the masculine, the plain word and the verb.
        assert!(english_of("seca", Language::Es).contains(&"dry".to_owned()));
        assert!(english_of("externas", Language::Es).contains(&"external".to_owned()));
        assert!(english_of("tazzine", Language::It).contains(&"cup".to_owned()));
        assert!(english_of("nere", Language::It).contains(&"black".to_owned()));
        assert!(english_of("chaudes", Language::Fr).contains(&"warm".to_owned()));
        let spanish = base_forms("hidratante", Language::Es);
        assert!(spanish.contains(&"hidratar".to_owned()), "{spanish:?}");
        let spanish = base_forms("molinillo", Language::Es);
        assert!(spanish.contains(&"molino".to_owned()), "{spanish:?}");
        let italian = base_forms("macinatore", Language::It);
        assert!(italian.contains(&"macinare".to_owned()), "{italian:?}");
        // A head is read as itself, not as another word's form: Spanish
        // "mochila" stays a backpack, not a "mochilo".
        assert_eq!(base_forms("mochila", Language::Es)[0], "mochila");
        assert!(english_of("mochila", Language::Es).contains(&"backpack".to_owned()));
    }

    #[test]
    fn a_form_the_dictionaries_translate_goes_before_one_only_pivots_reach() {
        // "noire" is a head only pivots reach ("quarter note"); the
        // dictionaries translate "noir", so "noires" is black.
        let french = lexicon(Language::Fr, Language::En).expect("shipped");
        let noire: Vec<(&str, bool)> = french.get("noire").collect();
        assert!(noire.iter().all(|(_, pivoted)| *pivoted), "{noire:?}");
        let noires = french.lookup("noires", Language::Fr);
        assert!(noires.contains(&("black", false)), "{noires:?}");
        // With no form a dictionary translates, the pivoted one is used.
        let italian = lexicon(Language::It, Language::En).expect("shipped");
        let jacket = italian.lookup("giacche", Language::It);
        assert!(jacket.contains(&("jacket", true)), "{jacket:?}");
    }

    #[test]
    fn every_pair_translates_directly_and_falls_back_through_english() {
        let german: Vec<String> = translate("coffee", Language::En, Language::De)
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert!(german.contains(&"kaffee".to_owned()), "{german:?}");
        // Dutch to French has its own lexicon: its first translations are
        // the dictionaries' own, not pivoted.
        let french = translate("koffie", Language::Nl, Language::Fr);
        assert!(french.iter().any(|(t, _)| t == "cafe"), "{french:?}");
        assert!(!french[0].1.pivot, "{french:?}");
        let spanish = translate("cafetera", Language::Es, Language::Nl);
        assert!(
            spanish.iter().any(|(t, _)| t.starts_with("koffie")),
            "{spanish:?}"
        );
        assert!(translate("koffie", Language::Nl, Language::Nl).is_empty());
    }

    #[test]
    fn pivoted_translations_fill_gaps_of_the_small_dictionaries_and_are_marked() {
        // The Italian dictionary has no "giacca"; two pivot languages agree
        // on jacket.
        let jacket = translate("giacca", Language::It, Language::En);
        assert!(
            jacket.iter().any(|(t, how)| t == "jacket" && how.pivot),
            "{jacket:?}"
        );
        // A head the direct dictionary has keeps its own senses first.
        let skin = translate("haut", Language::De, Language::En);
        assert_eq!(
            skin.first().map(|(t, how)| (t.as_str(), how.pivot)),
            Some(("skin", false))
        );
        assert!(
            skin.iter()
                .skip_while(|(_, how)| !how.pivot)
                .all(|(_, how)| how.pivot)
        );
    }

    #[test]
    fn a_pair_lexicon_without_the_word_falls_back_through_english() {
        let direct = lexicon(Language::Nl, Language::Fr).expect("shipped");
        let english = lexicon(Language::Nl, Language::En).expect("shipped");
        // A Dutch head the Dutch-French lexicon lacks but the Dutch-English
        // one has, found by scanning rather than named (the lists change
        // when they are rebuilt).
        let missing = english
            .lines
            .iter()
            .map(|line| english.slice(line.head))
            .find(|head| {
                !head.contains(' ')
                    && !direct.contains(head)
                    && !translate(head, Language::Nl, Language::Fr).is_empty()
            })
            .expect("some Dutch word reaches French only through English");
        let found = translate(missing, Language::Nl, Language::Fr);
        assert!(
            found.iter().all(|(_, how)| how.pivot),
            "{missing}: {found:?}"
        );
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
