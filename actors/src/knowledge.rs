//! Store knowledge: the shop's own pages (shipping, returns, payment, FAQ,
//! opening hours), written by the owner as text or Markdown in any
//! supported language. Each page is split into passages of a few sentences
//! under their heading; the passages are searched with the product search
//! (same analysis, same cross-language matching), retrieved beside products
//! when a question is about the shop, cited by the model as `[S1]`, and
//! answered from by the offline responder.

use std::sync::Arc;

use crate::catalog::{Currency, Money, Product};
use crate::ids::ProductId;
use crate::language::Language;
use crate::search::analysis::{fold, tokens};
use crate::search::query::{self, Filters};
use crate::search::{Hit, SearchIndex};

/// Most pages a store keeps.
pub const MAX_PAGES: usize = 50;
/// Largest page body, in bytes of UTF-8.
pub const MAX_PAGE_BYTES: usize = 32 * 1024;
/// Longest page title and slug, in characters.
pub const MAX_TITLE_CHARS: usize = 120;
pub const MAX_SLUG_CHARS: usize = 64;
/// Words a passage gathers before the next paragraph starts a new one.
const PASSAGE_WORDS: usize = 90;
/// Passages given to the model for one turn.
pub const PASSAGES_PER_TURN: usize = 3;

/// One page of the shop's own text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// Its address within the store: lowercase letters, digits and `-`.
    pub slug: String,
    pub title: String,
    /// Plain text or Markdown.
    pub body: String,
    /// The page on the shop's own site, if it has one (shown with the
    /// answer as its source).
    pub url: String,
    /// When it was last saved, in milliseconds since the Unix epoch.
    pub updated_ms: u64,
}

/// Why a page was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PageProblem {
    #[error(
        "slug must be 1 to {MAX_SLUG_CHARS} lowercase letters, digits or '-', starting with a letter or digit"
    )]
    Slug,
    #[error("title is empty")]
    TitleEmpty,
    #[error("title is longer than {MAX_TITLE_CHARS} characters")]
    TitleTooLong,
    #[error("the page has no text")]
    BodyEmpty,
    #[error("the page is {size} bytes; the limit is {MAX_PAGE_BYTES}")]
    BodyTooLarge { size: usize },
    #[error("url must be empty or an http:// or https:// address")]
    Url,
    #[error("the store already has {MAX_PAGES} pages; delete one first")]
    TooManyPages,
}

impl PageProblem {
    /// The stable code of the problem, for API errors.
    pub fn code(&self) -> &'static str {
        match self {
            PageProblem::Slug => "page_slug_invalid",
            PageProblem::TitleEmpty => "page_title_empty",
            PageProblem::TitleTooLong => "page_title_too_long",
            PageProblem::BodyEmpty => "page_body_empty",
            PageProblem::BodyTooLarge { .. } => "page_too_large",
            PageProblem::Url => "page_url_invalid",
            PageProblem::TooManyPages => "too_many_pages",
        }
    }
}

/// Whether `slug` is a valid page slug.
pub fn valid_slug(slug: &str) -> bool {
    let len = slug.chars().count();
    (1..=MAX_SLUG_CHARS).contains(&len)
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-')
}

/// A slug made from a title: "Shipping & returns" → "shipping-returns".
pub fn slug_from_title(title: &str) -> String {
    let folded = fold(title);
    let mut out = String::new();
    for token in tokens(&folded) {
        let ascii: String = token.chars().filter(char::is_ascii_alphanumeric).collect();
        if ascii.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&ascii);
    }
    out.truncate(MAX_SLUG_CHARS);
    out.trim_end_matches('-').to_owned()
}

impl Page {
    /// Checks a page as written, before it replaces anything.
    pub fn validate(&self) -> Result<(), PageProblem> {
        if !valid_slug(&self.slug) {
            return Err(PageProblem::Slug);
        }
        if self.title.trim().is_empty() {
            return Err(PageProblem::TitleEmpty);
        }
        if self.title.chars().count() > MAX_TITLE_CHARS {
            return Err(PageProblem::TitleTooLong);
        }
        if self.body.len() > MAX_PAGE_BYTES {
            return Err(PageProblem::BodyTooLarge {
                size: self.body.len(),
            });
        }
        if self.body.trim().is_empty() {
            return Err(PageProblem::BodyEmpty);
        }
        let url = self.url.trim();
        let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
        if !url.is_empty() && (!scheme_ok || url.chars().any(char::is_whitespace)) {
            return Err(PageProblem::Url);
        }
        Ok(())
    }
}

/// A few sentences of one page under their heading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passage {
    pub slug: String,
    pub title: String,
    pub url: String,
    /// The nearest heading above the passage (empty above the first).
    pub heading: String,
    /// The passage as plain text: Markdown emphasis, code marks and link
    /// syntax removed, list items kept one per line.
    pub text: String,
}

/// Markdown inline syntax removed: `**bold**`, `_em_`, `` `code` ``,
/// `[text](url)` (the text is kept).
fn plain_inline(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find("](").and_then(|close| {
            after[close + 2..]
                .find(')')
                .map(|end| (close, close + 2 + end))
        }) {
            Some((close, end)) => {
                out.push_str(&after[..close]);
                rest = &after[end + 1..];
            }
            None => {
                // No "](…)" after this "[": none after a later one either
                // (one pass, however many brackets a line has).
                rest = &rest[open..];
                break;
            }
        }
    }
    out.push_str(rest);
    out.replace("**", "")
        .replace("__", "")
        .replace('`', "")
        .trim()
        .to_owned()
}

/// A page's passages: a heading (`#` to `######`) starts a new one;
/// paragraphs gather under it until about [`PASSAGE_WORDS`] words.
pub fn passages(page: &Page) -> Vec<Passage> {
    let mut out = Vec::new();
    let mut heading = String::new();
    let mut current: Vec<String> = Vec::new();
    let mut words = 0;
    let flush =
        |heading: &str, current: &mut Vec<String>, words: &mut usize, out: &mut Vec<Passage>| {
            let text = current.join("\n").trim().to_owned();
            current.clear();
            *words = 0;
            if !text.is_empty() {
                out.push(Passage {
                    slug: page.slug.clone(),
                    title: page.title.clone(),
                    url: page.url.clone(),
                    heading: heading.to_owned(),
                    text,
                });
            }
        };
    let mut paragraph: Vec<String> = Vec::new();
    let lines = page.body.lines().chain(std::iter::once(""));
    for raw in lines {
        let line = raw.trim();
        let is_heading = line.starts_with('#') && line.trim_start_matches('#').starts_with(' ');
        if line.is_empty() || is_heading {
            if !paragraph.is_empty() {
                let text = paragraph.join("\n");
                let count = text.split_whitespace().count();
                if words > 0 && words + count > PASSAGE_WORDS {
                    flush(&heading, &mut current, &mut words, &mut out);
                }
                words += count;
                current.push(text);
                paragraph.clear();
            }
            if is_heading {
                flush(&heading, &mut current, &mut words, &mut out);
                heading = plain_inline(line.trim_start_matches('#'));
            }
            continue;
        }
        let line = line
            .strip_prefix("* ")
            .map(|item| format!("- {item}"))
            .unwrap_or_else(|| line.to_owned());
        paragraph.push(plain_inline(&line));
    }
    flush(&heading, &mut current, &mut words, &mut out);
    out
}

/// A store's passages and their index.
pub struct Knowledge {
    passages: Vec<Arc<Passage>>,
    index: SearchIndex,
}

/// One passage found for a question.
#[derive(Clone, Debug)]
pub struct PassageHit {
    pub passage: Arc<Passage>,
    pub score: f32,
}

impl Knowledge {
    /// Splits and indexes a store's pages; `language` is the store's.
    pub fn build(pages: &[Page], language: Language) -> Self {
        let passages: Vec<Arc<Passage>> = pages.iter().flat_map(passages).map(Arc::new).collect();
        // The product index serves passages too: a passage is indexed as a
        // document named by its heading, in the "category" of its page, so
        // a question naming a page's subject ("returns") ranks that page's
        // passages first, as a named kind of product does.
        let documents = passages
            .iter()
            .enumerate()
            .map(|(n, p)| {
                Arc::new(Product {
                    id: ProductId(n.to_string()),
                    name: p.heading.clone(),
                    brand: String::new(),
                    category: p.title.clone(),
                    description: p.text.clone(),
                    tags: Vec::new(),
                    price: Money {
                        minor: 0,
                        currency: Currency::EUR,
                    },
                    price_max: None,
                    image_url: String::new(),
                    url: p.url.clone(),
                    in_stock: true,
                })
            })
            .collect();
        Self {
            passages,
            index: SearchIndex::build(documents, language),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.passages.is_empty()
    }

    pub fn len(&self) -> usize {
        self.passages.len()
    }

    /// The passages that best answer `question`, best first. Prices and
    /// stock words in the question filter products, not pages: they are
    /// searched as words only.
    pub fn find(&self, question: &str, language: Language, limit: usize) -> Vec<PassageHit> {
        if self.passages.is_empty() {
            return Vec::new();
        }
        let parsed = query::parse(question, 2);
        self.index
            .search_filtered(&parsed.text, language, &Filters::default(), limit)
            .into_iter()
            .filter_map(|Hit { product, score }| {
                let n: usize = product.id.0.parse().ok()?;
                Some(PassageHit {
                    passage: Arc::clone(self.passages.get(n)?),
                    score,
                })
            })
            .collect()
    }
}

/// Words that mark a question about the shop rather than a product,
/// folded; one ending in `*` also counts as the start of a longer word.
const SHOP_WORDS: &[&str] = &[
    // en
    "ship",
    "ships",
    "shipping",
    "shipment",
    "shipped",
    "deliver*",
    "return*",
    "refund*",
    "exchange*",
    "payment*",
    "pay",
    "paypal",
    "invoice*",
    "warranty",
    "guarantee",
    "opening",
    "open",
    "hours",
    "address",
    "contact",
    "phone",
    "tracking",
    "pickup",
    "policy",
    "policies",
    "customs", // nl
    "verzend*",
    "lever*",
    "bezorg*",
    "retour*",
    "terugstur*",
    "ruil*",
    "betal*",
    "factuur",
    "garantie",
    "openingstijd*",
    "adres",
    "bestelling*",
    "afhal*", // fr
    "livraison*",
    "livrer",
    "expedition*",
    "rembours*",
    "echange*",
    "paiement*",
    "payer",
    "facture*",
    "horaire*",
    "ouvert*",
    "adresse",
    "commande*", // de
    "versand*",
    "liefer*",
    "rucksend*",
    "ruckgabe*",
    "umtausch*",
    "erstatt*",
    "zahlung*",
    "bezahl*",
    "rechnung*",
    "offnungszeit*",
    "geoffnet",
    "bestellung*",
    "abhol*", // es
    "envio*",
    "entrega*",
    "devolucion*",
    "devolver",
    "reembolso*",
    "pago*",
    "pagar",
    "factura*",
    "garantia",
    "horario*",
    "abierto*",
    "direccion",
    "pedido*", // it
    "spedizion*",
    "consegna*",
    "reso",
    "resi",
    "rimborso*",
    "pagamento*",
    "pagare",
    "fattura*",
    "garanzia",
    "orari*",
    "aperto*",
    "indirizzo",
    "ordine*",
    "ritiro",
];

/// Whether a question is about the shop (shipping, returns, payment,
/// opening hours…) rather than about a product.
pub fn asks_about_the_shop(question: &str) -> bool {
    let folded = fold(question);
    tokens(&folded).any(|token| {
        SHOP_WORDS.iter().any(|w| match w.strip_suffix('*') {
            Some(start) => token.starts_with(start),
            None => token == *w,
        })
    })
}

/// Most sources a reply lists.
const MAX_SOURCES: usize = 3;

/// The line a reply ends with when it cited passages of the shop's pages
/// (`[S1]`): their pages, each once, with their addresses, so the shopper
/// can read the page itself. `sources` are the cited reference numbers;
/// one to no passage of `passages` is passed over.
pub fn sources_line(
    passages: &[Arc<Passage>],
    sources: &[usize],
    language: Language,
) -> Option<String> {
    let mut pages: Vec<&Passage> = Vec::new();
    for passage in sources
        .iter()
        .filter_map(|n| n.checked_sub(1).and_then(|i| passages.get(i)))
    {
        if !pages.iter().any(|p| p.slug == passage.slug) && pages.len() < MAX_SOURCES {
            pages.push(passage);
        }
    }
    if pages.is_empty() {
        return None;
    }
    let label = match (language, pages.len()) {
        (Language::En | Language::Fr, 1) => "Source",
        (Language::En | Language::Fr, _) => "Sources",
        (Language::Nl, 1) => "Bron",
        (Language::Nl, _) => "Bronnen",
        (Language::De, 1) => "Quelle",
        (Language::De, _) => "Quellen",
        (Language::Es, 1) => "Fuente",
        (Language::Es, _) => "Fuentes",
        (Language::It, 1) => "Fonte",
        (Language::It, _) => "Fonti",
    };
    let colon = if language == Language::Fr { " :" } else { ":" };
    let listed: Vec<String> = pages
        .iter()
        .map(|p| {
            if p.url.is_empty() {
                format!("\u{201c}{}\u{201d}", p.title)
            } else {
                format!("\u{201c}{}\u{201d} ({})", p.title, p.url)
            }
        })
        .collect();
    Some(format!("\n\n{label}{colon} {}", listed.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(slug: &str, title: &str, body: &str) -> Page {
        Page {
            slug: slug.into(),
            title: title.into(),
            body: body.into(),
            url: String::new(),
            updated_ms: 0,
        }
    }

    const RETURNS: &str = "# Returns\n\nYou can return any item within **30 days** of delivery for a full refund.\n\
        Items must be unworn.\n\n## How to return\n\n* Print the label from your [account](https://shop.example/account)\n\
        * Drop the parcel at any post office\n\n# Exchanges\n\nWe exchange sizes for free.";

    #[test]
    fn a_reply_lists_the_pages_it_cited_once_each_with_their_addresses() {
        let passage = |slug: &str, title: &str, url: &str| {
            Arc::new(Passage {
                slug: slug.into(),
                title: title.into(),
                url: url.into(),
                heading: String::new(),
                text: "text".into(),
            })
        };
        let passages = vec![
            passage("returns", "Returns", "https://shop.example/returns"),
            passage("returns", "Returns", "https://shop.example/returns"),
            passage("hours", "Opening hours", ""),
        ];
        assert_eq!(
            sources_line(&passages, &[2, 1], Language::En).as_deref(),
            Some("\n\nSource: \u{201c}Returns\u{201d} (https://shop.example/returns)")
        );
        assert_eq!(
            sources_line(&passages, &[1, 3, 9], Language::Fr).as_deref(),
            Some(
                "\n\nSources : \u{201c}Returns\u{201d} (https://shop.example/returns), \u{201c}Opening hours\u{201d}"
            )
        );
        assert_eq!(
            sources_line(&passages, &[9], Language::Nl),
            None,
            "no such passage"
        );
        assert_eq!(sources_line(&passages, &[], Language::De), None);
    }

    #[test]
    fn inline_markdown_is_removed_in_one_pass() {
        assert_eq!(
            plain_inline("See **our** [returns page](https://shop.example/r) and `FAQ`."),
            "See our returns page and FAQ."
        );
        assert_eq!(plain_inline("a [b] c [d](e"), "a [b] c [d](e");
        let brackets = "[".repeat(20_000);
        assert_eq!(plain_inline(&brackets), brackets);
    }

    #[test]
    fn pages_split_into_passages_under_their_headings() {
        let found = passages(&page("returns", "Returns & exchanges", RETURNS));
        let headings: Vec<&str> = found.iter().map(|p| p.heading.as_str()).collect();
        assert_eq!(headings, ["Returns", "How to return", "Exchanges"]);
        assert_eq!(
            found[0].text,
            "You can return any item within 30 days of delivery for a full refund.\nItems must be unworn."
        );
        assert_eq!(
            found[1].text,
            "- Print the label from your account\n- Drop the parcel at any post office"
        );
        assert!(found.iter().all(|p| p.title == "Returns & exchanges"));
    }

    #[test]
    fn long_text_without_headings_splits_by_paragraph() {
        let paragraph = "word ".repeat(60);
        let body = format!("{paragraph}\n\n{paragraph}\n\n{paragraph}");
        let found = passages(&page("faq", "FAQ", &body));
        assert_eq!(found.len(), 3);
        assert!(found.iter().all(|p| p.heading.is_empty()));
        // A paragraph is never cut.
        let one = passages(&page("faq", "FAQ", &"word ".repeat(500)));
        assert_eq!(one.len(), 1);
    }

    #[test]
    fn questions_find_the_passage_that_answers_them_in_any_language() {
        let shipping = page(
            "shipping",
            "Shipping",
            "# Delivery times\n\nOrders ship within 2 working days. Delivery in the Netherlands \
             takes 1 to 2 days.\n\n# Costs\n\nShipping is free above 50 euro; below that it costs 4.95 euro.",
        );
        let hours = page(
            "hours",
            "Opening hours",
            "Our shop in Utrecht is open Monday to Saturday, 9:00 to 18:00.",
        );
        let returns = page("returns", "Returns & exchanges", RETURNS);
        let knowledge = Knowledge::build(&[shipping, hours, returns], Language::En);
        let best = |q: &str, l: Language| {
            knowledge
                .find(q, l, 3)
                .first()
                .map(|h| (h.passage.slug.clone(), h.passage.heading.clone()))
        };
        assert_eq!(
            best("what is your return policy?", Language::En),
            Some(("returns".into(), "Returns".into()))
        );
        assert_eq!(
            best("how much does shipping cost under 50 euro", Language::En),
            Some(("shipping".into(), "Costs".into()))
        );
        assert_eq!(
            best("when are you open on saturday", Language::En).map(|b| b.0),
            Some("hours".into())
        );
        // Asked in German of an English page: through the lexicon.
        assert_eq!(
            best("Wie lange dauert die Lieferung?", Language::De).map(|b| b.0),
            Some("shipping".into())
        );
        assert!(knowledge.find("xylophone", Language::En, 3).is_empty());
    }

    #[test]
    fn pages_are_checked_before_they_are_kept() {
        let ok = page("faq", "FAQ", "Some text");
        assert_eq!(ok.validate(), Ok(()));
        let bad = |edit: &dyn Fn(&mut Page)| {
            let mut p = ok.clone();
            edit(&mut p);
            p.validate().expect_err("refused").code()
        };
        assert_eq!(bad(&|p| p.slug = "Has Space".into()), "page_slug_invalid");
        assert_eq!(bad(&|p| p.slug = "-lead".into()), "page_slug_invalid");
        assert_eq!(bad(&|p| p.slug = String::new()), "page_slug_invalid");
        assert_eq!(bad(&|p| p.title = "  ".into()), "page_title_empty");
        assert_eq!(bad(&|p| p.title = "t".repeat(121)), "page_title_too_long");
        assert_eq!(bad(&|p| p.body = "\n \n".into()), "page_body_empty");
        assert_eq!(
            bad(&|p| p.body = "x".repeat(MAX_PAGE_BYTES + 1)),
            "page_too_large"
        );
        assert_eq!(
            bad(&|p| p.url = "javascript:alert(1)".into()),
            "page_url_invalid"
        );
        assert_eq!(
            slug_from_title("Shipping & Returns (EU)"),
            "shipping-returns-eu"
        );
        assert_eq!(slug_from_title("Öffnungszeiten"), "offnungszeiten");
    }

    #[test]
    fn shop_questions_are_told_from_product_questions() {
        for q in [
            "What is your return policy?",
            "Hoe lang duurt de verzending?",
            "Quels sont vos horaires ?",
            "Wie sind die Öffnungszeiten?",
            "¿Cuánto cuesta el envío?",
            "Posso pagare con PayPal?",
        ] {
            assert!(asks_about_the_shop(q), "{q}");
        }
        for q in [
            "a warm wool coat",
            "regenjas onder 100 euro",
            "chaussures de course",
            "a tracksuit",
            "bottle opener",
        ] {
            assert!(!asks_about_the_shop(q), "{q}");
        }
    }
}
