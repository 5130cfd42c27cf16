//! The offline responder: answers from the products retrieved for the turn,
//! in the shopper's language, or from the shop's own pages when the question
//! is about the shop, streamed word by word. It lets the node do its
//! whole job on a machine with no model and no network.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream;
use mikabot_actors::catalog::{Money, Product};
use mikabot_actors::desk::asks_for_human;
use mikabot_actors::knowledge::asks_about_the_shop;
use mikabot_actors::language::Language;
use mikabot_actors::model::{ChatModel, ChunkStream, FinishReason, ModelChunk, ModelError};
use mikabot_actors::prompt::Prompt;

/// Products named in one offline answer.
const MAX_SUGGESTIONS: usize = 3;

/// The built-in responder.
pub struct OfflineResponder {
    token_delay: Duration,
}

impl OfflineResponder {
    pub fn new(token_delay: Duration) -> Self {
        Self { token_delay }
    }
}

struct Phrases {
    found: &'static str,
    nothing: &'static str,
    more: &'static str,
    out_of_stock: &'static str,
    /// Before a passage of the shop's pages: where it comes from.
    from_page: &'static str,
    /// The answer to a shopper who asks for a person.
    person: &'static str,
}

fn phrases(language: Language) -> Phrases {
    match language {
        Language::En => Phrases {
            found: "Here is what I found for you:",
            nothing: "I could not find a product that matches. Could you tell me more, for example the kind of product, a brand or your budget?",
            more: "Would you like to know more about one of them?",
            out_of_stock: "out of stock",
            from_page: "From our page",
            person: "I have asked someone from the store to join this chat; they will answer here as soon as they can. Until then I am happy to help.",
        },
        Language::Nl => Phrases {
            found: "Dit heb ik voor je gevonden:",
            nothing: "Ik kon geen passend product vinden. Kun je me meer vertellen, bijvoorbeeld het soort product, een merk of je budget?",
            more: "Wil je meer weten over een van deze producten?",
            out_of_stock: "niet op voorraad",
            from_page: "Van onze pagina",
            person: "Ik heb iemand van de winkel gevraagd om aan dit gesprek deel te nemen; die antwoordt hier zo snel mogelijk. Tot dan help ik je graag.",
        },
        Language::Fr => Phrases {
            found: "Voici ce que j'ai trouvé pour vous :",
            nothing: "Je n'ai pas trouvé de produit correspondant. Pouvez-vous m'en dire plus, par exemple le type de produit, une marque ou votre budget ?",
            more: "Voulez-vous en savoir plus sur l'un d'eux ?",
            out_of_stock: "en rupture de stock",
            from_page: "Extrait de notre page",
            person: "J'ai demandé à quelqu'un du magasin de rejoindre cette conversation ; il vous répondra ici dès que possible. En attendant, je reste à votre disposition.",
        },
        Language::De => Phrases {
            found: "Das habe ich für Sie gefunden:",
            nothing: "Ich habe kein passendes Produkt gefunden. Können Sie mir mehr sagen, zum Beispiel die Art des Produkts, eine Marke oder Ihr Budget?",
            more: "Möchten Sie mehr über eines davon erfahren?",
            out_of_stock: "nicht vorrätig",
            from_page: "Von unserer Seite",
            person: "Ich habe jemanden aus dem Geschäft gebeten, diesem Chat beizutreten; er antwortet hier so bald wie möglich. Bis dahin helfe ich Ihnen gern.",
        },
        Language::Es => Phrases {
            found: "Esto es lo que he encontrado para ti:",
            nothing: "No he encontrado ningún producto que coincida. ¿Puedes contarme más, por ejemplo el tipo de producto, una marca o tu presupuesto?",
            more: "¿Quieres saber más sobre alguno de ellos?",
            out_of_stock: "agotado",
            from_page: "De nuestra página",
            person: "He pedido a alguien de la tienda que se una a este chat; te responderá aquí lo antes posible. Mientras tanto, te ayudo con gusto.",
        },
        Language::It => Phrases {
            found: "Ecco cosa ho trovato per te:",
            nothing: "Non ho trovato un prodotto corrispondente. Puoi dirmi di più, ad esempio il tipo di prodotto, una marca o il tuo budget?",
            more: "Vuoi saperne di più su uno di questi?",
            out_of_stock: "esaurito",
            from_page: "Dalla nostra pagina",
            person: "Ho chiesto a qualcuno del negozio di unirsi a questa chat; ti risponderà qui il prima possibile. Nel frattempo ti aiuto volentieri.",
        },
    }
}

/// A price as shoppers of that language write it.
fn price(money: &Money, language: Language) -> String {
    let decimal = money.decimal();
    let code = money.currency.code();
    let symbol = match code {
        "EUR" => "€",
        "USD" => "$",
        "GBP" => "£",
        _ => code,
    };
    match language {
        Language::En => format!("{symbol}{decimal}"),
        Language::Nl => format!("{symbol} {}", decimal.replace('.', ",")),
        _ => format!("{} {symbol}", decimal.replace('.', ",")),
    }
}

/// The whole answer text for a prompt.
pub fn answer(prompt: &Prompt) -> String {
    let words = phrases(prompt.language);
    if asks_for_human(&prompt.message) {
        return words.person.to_owned();
    }
    // A question about the shop, or one no product matches, is answered
    // from the best passage of the shop's pages, as the owner wrote it.
    if let Some(passage) = prompt.passages.first()
        && (prompt.products.is_empty() || asks_about_the_shop(&prompt.message))
    {
        let place = if passage.heading.is_empty() || passage.heading == passage.title {
            passage.title.clone()
        } else {
            format!("{}, {}", passage.title, passage.heading)
        };
        let mut text = format!(
            "{} \u{201c}{place}\u{201d}:\n{}",
            words.from_page, passage.text
        );
        if !passage.url.is_empty() {
            text.push('\n');
            text.push_str(&passage.url);
        }
        return text;
    }
    let mut products: Vec<&Arc<Product>> = prompt.products.iter().collect();
    // In-stock products first, keeping the retrieval order otherwise.
    products.sort_by_key(|p| !p.in_stock);
    if products.is_empty() {
        return words.nothing.to_owned();
    }
    let mut text = String::from(words.found);
    for product in products.into_iter().take(MAX_SUGGESTIONS) {
        text.push_str("\n- ");
        text.push_str(&product.name);
        if !product.brand.is_empty() {
            text.push_str(" (");
            text.push_str(&product.brand);
            text.push(')');
        }
        text.push_str(", ");
        text.push_str(&price(&product.price, prompt.language));
        if !product.in_stock {
            text.push_str(" (");
            text.push_str(words.out_of_stock);
            text.push(')');
        }
    }
    text.push('\n');
    text.push_str(words.more);
    text
}

/// Splits text into word tokens that keep their trailing whitespace, so the
/// concatenated tokens are exactly the text.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_space = false;
    for c in text.chars() {
        if !c.is_whitespace() && in_space {
            out.push(std::mem::take(&mut current));
            in_space = false;
        }
        if c.is_whitespace() {
            in_space = true;
        }
        current.push(c);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

impl ChatModel for OfflineResponder {
    fn name(&self) -> &'static str {
        "offline"
    }

    fn start(&self, prompt: Arc<Prompt>) -> BoxFuture<'static, Result<ChunkStream, ModelError>> {
        let delay = self.token_delay;
        Box::pin(async move {
            let mut chunks: Vec<ModelChunk> = tokens(&answer(&prompt))
                .into_iter()
                .map(ModelChunk::Text)
                .collect();
            chunks.push(ModelChunk::Finished(FinishReason::Stop));
            let stream: ChunkStream = Box::pin(stream::unfold(
                chunks.into_iter(),
                move |mut rest| async move {
                    let chunk = rest.next()?;
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    Some((Ok(chunk), rest))
                },
            ));
            Ok(stream)
        })
    }
}

#[cfg(test)]
mod tests {
    use mikabot_actors::catalog::Currency;
    use mikabot_actors::ids::ProductId;

    use super::*;

    fn prompt(language: Language, products: Vec<Arc<Product>>) -> Prompt {
        Prompt {
            store_name: "Shop".into(),
            store_url: "https://shop.example".into(),
            instructions: String::new(),
            language,
            products,
            passages: Vec::new(),
            history: Vec::new(),
            message: "jas".into(),
        }
    }

    #[test]
    fn questions_about_the_shop_are_answered_from_its_pages() {
        use mikabot_actors::knowledge::Passage;
        let returns = Arc::new(Passage {
            slug: "returns".into(),
            title: "Returns".into(),
            url: "https://shop.example/returns".into(),
            heading: "How to return".into(),
            text: "Print the label and drop the parcel at a post office.".into(),
        });
        let mut asked = prompt(Language::En, vec![jacket()]);
        asked.message = "how do I return a jacket?".into();
        asked.passages = vec![Arc::clone(&returns)];
        assert_eq!(
            answer(&asked),
            "From our page \u{201c}Returns, How to return\u{201d}:\nPrint the label and drop the \
             parcel at a post office.\nhttps://shop.example/returns"
        );
        // A product question with a passage found beside it stays a
        // product answer.
        asked.message = "a storm jacket".into();
        assert!(answer(&asked).starts_with("Here is what I found"));
        // No product at all: the passage answers.
        let mut asked = prompt(Language::De, vec![]);
        asked.passages = vec![returns];
        assert!(answer(&asked).starts_with("Von unserer Seite"));
    }

    fn jacket() -> Arc<Product> {
        Arc::new(Product {
            id: ProductId("j1".into()),
            name: "Storm Jacket".into(),
            brand: "Nordwind".into(),
            category: "Jackets".into(),
            description: String::new(),
            tags: Vec::new(),
            price: Money {
                minor: 12950,
                currency: Currency::parse("EUR").expect("EUR is known"),
            },
            price_max: None,
            image_url: "https://shop.example/j1.jpg".into(),
            url: "https://shop.example/j1".into(),
            in_stock: true,
        })
    }

    #[test]
    fn answers_name_products_with_local_prices() {
        let text = answer(&prompt(Language::Nl, vec![jacket()]));
        assert!(text.starts_with("Dit heb ik voor je gevonden:"), "{text}");
        assert!(text.contains("Storm Jacket (Nordwind), € 129,50"), "{text}");
        let text = answer(&prompt(Language::Fr, vec![]));
        assert!(text.starts_with("Je n'ai pas trouvé"), "{text}");
    }

    #[test]
    fn tokens_rebuild_the_text_exactly() {
        let text = "Hello there,\n- one  two";
        let tokens = tokens(text);
        assert!(tokens.len() > 3);
        assert_eq!(tokens.concat(), text);
    }
}
