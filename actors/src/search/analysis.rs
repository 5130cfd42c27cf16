//! Text analysis shared by indexing and querying: lowercase, accent folding,
//! tokenising, stopwords and per-language Snowball stemming.

use rust_stemmers::{Algorithm, Stemmer};
use unicode_normalization::{UnicodeNormalization, char::is_combining_mark};

use crate::language::Language;

/// Lowercases and strips accents: "Crème Brûlée" becomes "creme brulee".
pub fn fold(text: &str) -> String {
    // Most catalog and shopper text is plain ASCII: no decomposition needed.
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.nfd() {
        if is_combining_mark(c) {
            continue;
        }
        match c {
            'ß' => out.push_str("ss"),
            'æ' | 'Æ' => out.push_str("ae"),
            'œ' | 'Œ' => out.push_str("oe"),
            'ø' | 'Ø' => out.push('o'),
            _ => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// Splits folded text into word tokens.
pub fn tokens(folded: &str) -> impl Iterator<Item = &str> {
    folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
}

/// Snowball stemmers for every supported language, built once.
pub struct Stemmers {
    by_language: Vec<(Language, Stemmer)>,
}

impl Default for Stemmers {
    fn default() -> Self {
        let algorithm = |l: Language| match l {
            Language::En => Algorithm::English,
            Language::Nl => Algorithm::Dutch,
            Language::Fr => Algorithm::French,
            Language::De => Algorithm::German,
            Language::Es => Algorithm::Spanish,
            Language::It => Algorithm::Italian,
        };
        Self {
            by_language: Language::ALL
                .into_iter()
                .map(|l| (l, Stemmer::create(algorithm(l))))
                .collect(),
        }
    }
}

impl Stemmers {
    /// The distinct stems of a folded token in every supported language,
    /// the token itself first.
    pub fn all_variants(&self, token: &str) -> Vec<String> {
        let mut variants = vec![token.to_owned()];
        for (_, stemmer) in &self.by_language {
            let stem = stemmer.stem(token);
            if !variants.iter().any(|v| v == stem.as_ref()) {
                variants.push(stem.into_owned());
            }
        }
        variants
    }

    /// The stem of an already folded token.
    pub fn stem(&self, language: Language, token: &str) -> String {
        self.by_language
            .iter()
            .find(|(l, _)| *l == language)
            .map_or_else(|| token.to_owned(), |(_, s)| s.stem(token).into_owned())
    }
}

/// Words that carry no product meaning in shopper questions, folded.
const STOPWORDS: &[&str] = &[
    // en
    "a",
    "an",
    "the",
    "and",
    "or",
    "for",
    "to",
    "of",
    "in",
    "on",
    "with",
    "i",
    "im",
    "me",
    "my",
    "you",
    "your",
    "we",
    "is",
    "are",
    "am",
    "do",
    "does",
    "have",
    "has",
    "looking",
    "look",
    "want",
    "need",
    "some",
    "any",
    "something",
    "please",
    "can",
    "could",
    "would",
    "like",
    "show",
    "find",
    "get",
    "what",
    "which",
    "that",
    "this",
    "it",
    "be",
    "hi",
    "hello",
    // nl
    "de",
    "het",
    "een",
    "en",
    "of",
    "voor",
    "naar",
    "van",
    "met",
    "ik",
    "mijn",
    "je",
    "jij",
    "u",
    "uw",
    "is",
    "zijn",
    "zoek",
    "zoeken",
    "wil",
    "graag",
    "iets",
    "heb",
    "hebben",
    "hebt",
    "kan",
    "kun",
    "kunt",
    "mij",
    "die",
    "dat",
    "deze",
    "wat",
    "welke",
    "hallo",
    "hoi",
    // fr
    "le",
    "la",
    "les",
    "un",
    "une",
    "des",
    "du",
    "et",
    "ou",
    "pour",
    "avec",
    "je",
    "moi",
    "mon",
    "ma",
    "mes",
    "vous",
    "votre",
    "est",
    "sont",
    "cherche",
    "voudrais",
    "veux",
    "quelque",
    "chose",
    "bonjour",
    "salut",
    "qui",
    "que",
    "quel",
    "quelle",
    "au",
    "aux",
    // de
    "der",
    "die",
    "das",
    "ein",
    "eine",
    "einen",
    "und",
    "oder",
    "fur",
    "mit",
    "ich",
    "mich",
    "mein",
    "meine",
    "sie",
    "ihr",
    "ist",
    "sind",
    "suche",
    "mochte",
    "will",
    "etwas",
    "hallo",
    "guten",
    "tag",
    "welche",
    "was",
    "zu",
    "im",
    // es
    "el",
    "los",
    "las",
    "una",
    "unos",
    "y",
    "o",
    "para",
    "con",
    "yo",
    "mi",
    "busco",
    "quiero",
    "algo",
    "hola",
    "que",
    "por",
    // it
    "il",
    "lo",
    "gli",
    "uno",
    "e",
    "per",
    "con",
    "io",
    "cerco",
    "vorrei",
    "qualcosa",
    "ciao",
    "che",
    "di",
    "da",
];

/// True for words that should not drive retrieval.
pub fn is_stopword(folded_token: &str) -> bool {
    STOPWORDS.contains(&folded_token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_removes_accents_and_case() {
        assert_eq!(fold("Crème Brûlée"), "creme brulee");
        assert_eq!(fold("Straße Ærø"), "strasse aero");
    }

    #[test]
    fn tokens_split_on_punctuation() {
        let folded = fold("Rain-jacket, size M!");
        assert_eq!(
            tokens(&folded).collect::<Vec<_>>(),
            ["rain", "jacket", "size", "m"]
        );
    }

    #[test]
    fn stems_differ_per_language() {
        let s = Stemmers::default();
        assert_eq!(s.stem(Language::En, "jackets"), "jacket");
        assert_eq!(s.stem(Language::Nl, "schoenen"), "schoen");
    }
}
