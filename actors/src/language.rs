//! The languages the assistant answers in, and how a shopper's language is
//! chosen: the text they wrote when it is long enough to tell, else the
//! browser's language, else the store's default.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use whatlang::{Detector, Lang};

/// A language the assistant can answer in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    En,
    Nl,
    Fr,
    De,
    Es,
    It,
}

/// Below this many letters an unreliable statistical detection is ignored.
const MIN_LETTERS_FOR_STATISTICS: usize = 20;
/// The least whatlang confidence trusted for text that is long enough.
const MIN_CONFIDENCE: f64 = 0.3;

/// Function words of shopper questions, per language (same order as
/// [`Language::ALL`]). Statistical detection is weak on the few words
/// shoppers type ("une veste", "a rain jacket please"); these words are not.
const FUNCTION_WORDS: [&[&str]; 6] = [
    &[
        "a", "an", "the", "i", "im", "i'm", "you", "your", "do", "does", "have", "has", "need",
        "want", "looking", "for", "with", "under", "below", "please", "some", "any", "what",
        "which", "is", "are", "my", "me", "show", "sell", "cheap", "thanks", "hi",
    ],
    &[
        "een", "de", "het", "ik", "je", "jij", "jullie", "u", "zoek", "graag", "voor", "met",
        "onder", "heb", "hebben", "hebt", "mijn", "wat", "welke", "is", "zijn", "niet", "goedkoop",
        "bedankt", "hoi", "iets", "kun", "kunt", "verkopen",
    ],
    &[
        "un", "une", "le", "la", "les", "je", "cherche", "pour", "moins", "des", "du", "avec",
        "vous", "avez", "est", "sont", "mon", "ma", "quel", "quelle", "merci", "bonjour", "pas",
        "cher", "voudrais", "de", "en", "et", "au", "aux",
    ],
    &[
        "ich", "suche", "eine", "ein", "einen", "der", "die", "das", "für", "unter", "mit",
        "haben", "sie", "ist", "sind", "mein", "meine", "welche", "nicht", "danke", "günstig",
        "möchte", "brauche",
    ],
    &[
        "una", "el", "los", "las", "busco", "para", "con", "tienen", "quiero", "menos", "es",
        "son", "mi", "gracias", "hola", "barato", "necesito", "de", "del", "por", "la", "al", "en",
        "y",
    ],
    &[
        "una",
        "il",
        "lo",
        "gli",
        "cerco",
        "per",
        "con",
        "avete",
        "vorrei",
        "meno",
        "sono",
        "mio",
        "mia",
        "grazie",
        "ciao",
        "economico",
        "ho",
        "bisogno",
        "di",
        "da",
        "del",
        "della",
        "sotto",
    ],
];

impl Language {
    pub const ALL: [Language; 6] = [
        Language::En,
        Language::Nl,
        Language::Fr,
        Language::De,
        Language::Es,
        Language::It,
    ];

    /// ISO 639-1 code.
    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Nl => "nl",
            Language::Fr => "fr",
            Language::De => "de",
            Language::Es => "es",
            Language::It => "it",
        }
    }

    /// The language's own name, as used in prompts.
    pub fn english_name(self) -> &'static str {
        match self {
            Language::En => "English",
            Language::Nl => "Dutch",
            Language::Fr => "French",
            Language::De => "German",
            Language::Es => "Spanish",
            Language::It => "Italian",
        }
    }

    /// Reads a BCP 47 tag such as `nl-BE` or `fr`; unknown languages are `None`.
    pub fn from_tag(tag: &str) -> Option<Self> {
        let primary = tag.split(['-', '_']).next()?.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|l| l.code() == primary)
    }

    fn from_whatlang(lang: Lang) -> Option<Self> {
        match lang {
            Lang::Eng => Some(Language::En),
            Lang::Nld => Some(Language::Nl),
            Lang::Fra => Some(Language::Fr),
            Lang::Deu => Some(Language::De),
            Lang::Spa => Some(Language::Es),
            Lang::Ita => Some(Language::It),
            _ => None,
        }
    }
}

/// Restricted to the supported languages; built once.
static DETECTOR: LazyLock<Detector> = LazyLock::new(|| {
    Detector::with_allowlist(vec![
        Lang::Eng,
        Lang::Nld,
        Lang::Fra,
        Lang::Deu,
        Lang::Spa,
        Lang::Ita,
    ])
});

/// The language whose function words appear most, if one clearly leads.
fn by_function_words(text: &str) -> Option<Language> {
    let lower = text.to_lowercase();
    let mut scores = [0_u32; 6];
    for word in lower.split(|c: char| !(c.is_alphabetic() || c == '\'')) {
        for (score, words) in scores.iter_mut().zip(FUNCTION_WORDS) {
            if words.contains(&word) {
                *score += 1;
            }
        }
        // Letters only one of the languages writes: Spanish ñ, German ß.
        for (letter, language) in [('ñ', Language::Es), ('ß', Language::De)] {
            if word.contains(letter)
                && let Some(i) = Language::ALL.iter().position(|l| *l == language)
            {
                scores[i] += 1;
            }
        }
    }
    let best = *scores.iter().max()?;
    let leaders: Vec<usize> = (0..scores.len()).filter(|&i| scores[i] == best).collect();
    match leaders.as_slice() {
        [only] if best > 0 => Some(Language::ALL[*only]),
        _ => None,
    }
}

/// Detects the language a shopper wrote in, restricted to the supported
/// ones. Returns `fallback` (the conversation's language so far) when the
/// text is too short or ambiguous to tell.
pub fn detect(text: &str, fallback: Language) -> Language {
    let statistical = DETECTOR.detect(text);
    if let Some(info) = &statistical
        && info.is_reliable()
        && let Some(language) = Language::from_whatlang(info.lang())
    {
        return language;
    }
    if let Some(language) = by_function_words(text) {
        return language;
    }
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    match statistical {
        Some(info)
            if letters >= MIN_LETTERS_FOR_STATISTICS && info.confidence() >= MIN_CONFIDENCE =>
        {
            Language::from_whatlang(info.lang()).unwrap_or(fallback)
        }
        _ => fallback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_tags_map_to_languages() {
        assert_eq!(Language::from_tag("nl-BE"), Some(Language::Nl));
        assert_eq!(Language::from_tag("DE"), Some(Language::De));
        assert_eq!(Language::from_tag("pt-BR"), None);
    }

    #[test]
    fn shopper_sentences_are_detected_in_each_language() {
        let cases = [
            ("I am looking for a warm winter jacket", Language::En),
            ("Ik zoek een warme winterjas voor mijn vrouw", Language::Nl),
            ("Je cherche une veste chaude pour l'hiver", Language::Fr),
            ("Ich suche eine warme Jacke für den Winter", Language::De),
        ];
        for (text, expected) in cases {
            assert_eq!(detect(text, Language::It), expected, "{text}");
        }
    }

    #[test]
    fn short_shopper_phrases_are_detected_by_their_function_words() {
        let cases = [
            ("a rain jacket please", Language::En),
            ("rain jacket under 100 euro", Language::En),
            ("een regenjas graag", Language::Nl),
            ("une veste", Language::Fr),
            ("Ich suche Kopfhörer", Language::De),
            ("busco una mochila", Language::Es),
            ("cerco uno zaino", Language::It),
        ];
        for (text, expected) in cases {
            assert_eq!(detect(text, Language::En), expected, "{text}");
        }
    }

    #[test]
    fn words_several_languages_share_do_not_decide_alone() {
        // "de" is Dutch, French and Spanish: a letter only Spanish writes
        // decides, and a shared word alone leaves the conversation's language.
        assert_eq!(detect("botas de montaña", Language::En), Language::Es);
        assert_eq!(detect("Straße", Language::En), Language::De);
        assert_eq!(detect("sac de voyage", Language::Fr), Language::Fr);
        assert_eq!(detect("bolsa de viaje", Language::Es), Language::Es);
    }

    #[test]
    fn ambiguous_or_bare_words_keep_the_conversation_language() {
        for text in ["ok", "tent", "in black?", "hallo", "yoga mat"] {
            assert_eq!(detect(text, Language::Fr), Language::Fr, "{text}");
        }
    }
}
