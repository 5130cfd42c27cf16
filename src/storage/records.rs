//! The records as they lie on disk: storage's own types, separate from the
//! actors crate's, converted at this edge (as `protocol.rs` does for the
//! wire). A renamed field or variant in the actors crate is a compile error
//! here, never a silent change of the database format; the tests below pin
//! the bytes of each record kind.
//!
//! These are the records of schema version 1 ([`super::SCHEMA_VERSION`]).
//! A change to any of them is a new schema version with a migration.

use mikabot_actors::catalog::{
    Branding, Corner, Currency, Money, Product, ProductCard, StoreProfile,
};
use mikabot_actors::golden::{Golden, Outcome};
use mikabot_actors::ids::{ConversationId, MessageId, ProductId, SessionId, StoreId};
use mikabot_actors::knowledge::Page;
use mikabot_actors::language::Language;
use mikabot_actors::log::{ClientClass, ConversationMeta, ReplyOutcome, StoredMessage};
use mikabot_actors::model::FinishReason;
use mikabot_actors::prompt::Role;
use serde::{Deserialize, Serialize};

/// A stored value that parsed but does not make a valid domain value.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct Invalid {
    field: &'static str,
    problem: String,
}

impl Invalid {
    /// The field that is invalid (not its value).
    pub fn field(&self) -> &'static str {
        self.field
    }
}

fn invalid(field: &'static str, problem: impl std::fmt::Display) -> Invalid {
    Invalid {
        field,
        problem: problem.to_string(),
    }
}

fn uuid<T>(field: &'static str, raw: &str, parse: fn(&str) -> Option<T>) -> Result<T, Invalid> {
    parse(raw).ok_or_else(|| invalid(field, format!("{raw:?} is not a UUID")))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LanguageV1 {
    En,
    Nl,
    Fr,
    De,
    Es,
    It,
}

impl From<Language> for LanguageV1 {
    fn from(language: Language) -> Self {
        match language {
            Language::En => Self::En,
            Language::Nl => Self::Nl,
            Language::Fr => Self::Fr,
            Language::De => Self::De,
            Language::Es => Self::Es,
            Language::It => Self::It,
        }
    }
}

impl From<LanguageV1> for Language {
    fn from(language: LanguageV1) -> Self {
        match language {
            LanguageV1::En => Self::En,
            LanguageV1::Nl => Self::Nl,
            LanguageV1::Fr => Self::Fr,
            LanguageV1::De => Self::De,
            LanguageV1::Es => Self::Es,
            LanguageV1::It => Self::It,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyV1 {
    pub minor: i64,
    pub currency: String,
}

impl From<&Money> for MoneyV1 {
    fn from(money: &Money) -> Self {
        Self {
            minor: money.minor,
            currency: money.currency.code().to_owned(),
        }
    }
}

impl MoneyV1 {
    fn money(&self) -> Result<Money, Invalid> {
        Ok(Money {
            minor: self.minor,
            currency: currency(&self.currency)?,
        })
    }
}

fn currency(code: &str) -> Result<Currency, Invalid> {
    Currency::parse(code).map_err(|e| invalid("currency", e))
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CornerV1 {
    #[default]
    Right,
    Left,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BrandingV1 {
    pub color: String,
    pub title: String,
    pub avatar_url: String,
    pub greeting: String,
    pub position: CornerV1,
}

impl Default for BrandingV1 {
    fn default() -> Self {
        Self::from(&Branding::default())
    }
}

impl From<&Branding> for BrandingV1 {
    fn from(branding: &Branding) -> Self {
        Self {
            color: branding.color.clone(),
            title: branding.title.clone(),
            avatar_url: branding.avatar_url.clone(),
            greeting: branding.greeting.clone(),
            position: match branding.position {
                Corner::Right => CornerV1::Right,
                Corner::Left => CornerV1::Left,
            },
        }
    }
}

impl From<BrandingV1> for Branding {
    fn from(branding: BrandingV1) -> Self {
        Self {
            color: branding.color,
            title: branding.title,
            avatar_url: branding.avatar_url,
            greeting: branding.greeting,
            position: match branding.position {
                CornerV1::Right => Corner::Right,
                CornerV1::Left => Corner::Left,
            },
        }
    }
}

/// A store's profile, in the `stores` tree under the store id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoreV1 {
    pub id: String,
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub instructions: String,
    pub default_language: LanguageV1,
    pub currency: String,
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub synonyms: Vec<Vec<String>>,
    #[serde(default)]
    pub branding: BrandingV1,
    /// Absent when the store keeps the node's default (and in records
    /// written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
}

impl From<&StoreProfile> for StoreV1 {
    fn from(profile: &StoreProfile) -> Self {
        Self {
            id: profile.id.as_str().to_owned(),
            name: profile.name.clone(),
            url: profile.url.clone(),
            instructions: profile.instructions.clone(),
            default_language: profile.default_language.into(),
            currency: profile.currency.code().to_owned(),
            allowed_origins: profile.allowed_origins.clone(),
            synonyms: profile.synonyms.clone(),
            branding: BrandingV1::from(&profile.branding),
            retention_days: profile.retention_days,
        }
    }
}

impl TryFrom<StoreV1> for StoreProfile {
    type Error = Invalid;

    fn try_from(record: StoreV1) -> Result<Self, Invalid> {
        Ok(Self {
            id: StoreId::parse(&record.id).map_err(|e| invalid("id", e))?,
            name: record.name,
            url: record.url,
            instructions: record.instructions,
            default_language: record.default_language.into(),
            currency: currency(&record.currency)?,
            allowed_origins: record.allowed_origins,
            synonyms: record.synonyms,
            branding: record.branding.into(),
            retention_days: record.retention_days,
        })
    }
}

/// One page of a store's knowledge, in the `pages` tree under
/// `store \0 slug`. Shop text written by the owner, not personal data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PageV1 {
    pub slug: String,
    pub title: String,
    pub body: String,
    #[serde(default)]
    pub url: String,
    pub updated_ms: u64,
}

impl From<&Page> for PageV1 {
    fn from(page: &Page) -> Self {
        Self {
            slug: page.slug.clone(),
            title: page.title.clone(),
            body: page.body.clone(),
            url: page.url.clone(),
            updated_ms: page.updated_ms,
        }
    }
}

impl TryFrom<PageV1> for Page {
    type Error = Invalid;

    fn try_from(record: PageV1) -> Result<Self, Invalid> {
        if !mikabot_actors::knowledge::valid_slug(&record.slug) {
            return Err(invalid(
                "slug",
                format!("{:?} is not a page slug", record.slug),
            ));
        }
        Ok(Self {
            slug: record.slug,
            title: record.title,
            body: record.body,
            url: record.url,
            updated_ms: record.updated_ms,
        })
    }
}

/// A store's golden questions, in the `goldens` tree under the store id.
/// The questions are the actors crate's type; the test below pins their
/// bytes, so a change to that type fails here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GoldensV1 {
    pub goldens: Vec<Golden>,
}

/// The last replay of a store's golden questions, in `golden_runs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GoldenRunV1 {
    pub at_ms: u64,
    pub outcomes: Vec<Outcome>,
}

fn in_stock_by_default() -> bool {
    true
}

/// One product of a catalog generation, in the `products` tree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProductV1 {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub brand: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub price: MoneyV1,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_max: Option<i64>,
    pub image_url: String,
    pub url: String,
    #[serde(default = "in_stock_by_default")]
    pub in_stock: bool,
}

impl From<&Product> for ProductV1 {
    fn from(product: &Product) -> Self {
        Self {
            id: product.id.0.clone(),
            name: product.name.clone(),
            brand: product.brand.clone(),
            category: product.category.clone(),
            description: product.description.clone(),
            tags: product.tags.clone(),
            price: MoneyV1::from(&product.price),
            price_max: product.price_max,
            image_url: product.image_url.clone(),
            url: product.url.clone(),
            in_stock: product.in_stock,
        }
    }
}

impl TryFrom<ProductV1> for Product {
    type Error = Invalid;

    fn try_from(record: ProductV1) -> Result<Self, Invalid> {
        Ok(Self {
            price: record.price.money()?,
            id: ProductId(record.id),
            name: record.name,
            brand: record.brand,
            category: record.category,
            description: record.description,
            tags: record.tags,
            price_max: record.price_max,
            image_url: record.image_url,
            url: record.url,
            in_stock: record.in_stock,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientClassV1 {
    pub browser: String,
    pub device: String,
}

/// A conversation's record, in the `conversations` tree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConversationV1 {
    pub store: String,
    pub conversation: String,
    pub session: String,
    pub started_at_ms: u64,
    pub language: LanguageV1,
    pub page_url: Option<String>,
    pub referrer: Option<String>,
    pub client: ClientClassV1,
    pub ip: Option<String>,
}

impl From<&ConversationMeta> for ConversationV1 {
    fn from(meta: &ConversationMeta) -> Self {
        Self {
            store: meta.store.as_str().to_owned(),
            conversation: meta.conversation.to_string(),
            session: meta.session.to_string(),
            started_at_ms: meta.started_at_ms,
            language: meta.language.into(),
            page_url: meta.page_url.clone(),
            referrer: meta.referrer.clone(),
            client: ClientClassV1 {
                browser: meta.client.browser.clone(),
                device: meta.client.device.clone(),
            },
            ip: meta.ip.clone(),
        }
    }
}

impl ConversationV1 {
    /// Without its technical data, which is kept apart ([`TechnicalV1`]).
    pub fn strip_technical(&mut self) {
        self.page_url = None;
        self.referrer = None;
        self.client = ClientClassV1 {
            browser: String::new(),
            device: String::new(),
        };
        self.ip = None;
    }
}

/// A conversation's technical and usage data, in the `technical` tree,
/// under its own data key: dropped on its own at the usage horizon.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TechnicalV1 {
    pub page_url: Option<String>,
    pub referrer: Option<String>,
    pub client: ClientClassV1,
    pub ip: Option<String>,
}

impl From<&ConversationMeta> for TechnicalV1 {
    fn from(meta: &ConversationMeta) -> Self {
        Self {
            page_url: meta.page_url.clone(),
            referrer: meta.referrer.clone(),
            client: ClientClassV1 {
                browser: meta.client.browser.clone(),
                device: meta.client.device.clone(),
            },
            ip: meta.ip.clone(),
        }
    }
}

impl TryFrom<ConversationV1> for ConversationMeta {
    type Error = Invalid;

    fn try_from(record: ConversationV1) -> Result<Self, Invalid> {
        Ok(Self {
            store: StoreId::parse(&record.store).map_err(|e| invalid("store", e))?,
            conversation: uuid("conversation", &record.conversation, ConversationId::parse)?,
            session: uuid("session", &record.session, SessionId::parse)?,
            started_at_ms: record.started_at_ms,
            language: record.language.into(),
            page_url: record.page_url,
            referrer: record.referrer,
            client: ClientClass {
                browser: record.client.browser,
                device: record.client.device,
            },
            ip: record.ip,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleV1 {
    Shopper,
    Assistant,
    Agent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishV1 {
    Stop,
    Length,
    ContentFilter,
    TakenOver,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CardV1 {
    pub id: String,
    pub name: String,
    pub price: MoneyV1,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_max: Option<MoneyV1>,
    pub image_url: String,
    pub url: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplyV1 {
    pub finish: Option<FinishV1>,
    pub incomplete: bool,
    pub cards: Vec<CardV1>,
}

/// One message, in the `messages` tree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessageV1 {
    pub id: String,
    pub conversation: String,
    pub role: RoleV1,
    pub text: String,
    pub at_ms: u64,
    pub client_id: Option<String>,
    pub reply: Option<ReplyV1>,
    /// An agent message's author; absent from every other message, so
    /// their bytes are those of schema 2 before agents existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

impl From<&ProductCard> for CardV1 {
    fn from(card: &ProductCard) -> Self {
        Self {
            id: card.id.0.clone(),
            name: card.name.clone(),
            price: MoneyV1::from(&card.price),
            price_max: card.price_max.as_ref().map(MoneyV1::from),
            image_url: card.image_url.clone(),
            url: card.url.clone(),
        }
    }
}

impl TryFrom<CardV1> for ProductCard {
    type Error = Invalid;

    fn try_from(record: CardV1) -> Result<Self, Invalid> {
        Ok(Self {
            price: record.price.money()?,
            price_max: record.price_max.map(|m| m.money()).transpose()?,
            id: ProductId(record.id),
            name: record.name,
            image_url: record.image_url,
            url: record.url,
        })
    }
}

impl From<&StoredMessage> for MessageV1 {
    fn from(message: &StoredMessage) -> Self {
        Self {
            id: message.id.to_string(),
            conversation: message.conversation.to_string(),
            role: match message.role {
                Role::Shopper => RoleV1::Shopper,
                Role::Assistant => RoleV1::Assistant,
                Role::Agent => RoleV1::Agent,
            },
            text: message.text.clone(),
            at_ms: message.at_ms,
            client_id: message.client_id.clone(),
            author: message.author.clone(),
            reply: message.reply.as_ref().map(|reply| ReplyV1 {
                finish: reply.finish.map(|finish| match finish {
                    FinishReason::Stop => FinishV1::Stop,
                    FinishReason::Length => FinishV1::Length,
                    FinishReason::ContentFilter => FinishV1::ContentFilter,
                    FinishReason::TakenOver => FinishV1::TakenOver,
                }),
                incomplete: reply.incomplete,
                cards: reply.cards.iter().map(CardV1::from).collect(),
            }),
        }
    }
}

impl TryFrom<MessageV1> for StoredMessage {
    type Error = Invalid;

    fn try_from(record: MessageV1) -> Result<Self, Invalid> {
        let reply = match record.reply {
            None => None,
            Some(reply) => Some(ReplyOutcome {
                finish: reply.finish.map(|finish| match finish {
                    FinishV1::Stop => FinishReason::Stop,
                    FinishV1::Length => FinishReason::Length,
                    FinishV1::ContentFilter => FinishReason::ContentFilter,
                    FinishV1::TakenOver => FinishReason::TakenOver,
                }),
                incomplete: reply.incomplete,
                cards: reply
                    .cards
                    .into_iter()
                    .map(ProductCard::try_from)
                    .collect::<Result<_, _>>()?,
            }),
        };
        Ok(Self {
            id: uuid("id", &record.id, MessageId::parse)?,
            conversation: uuid("conversation", &record.conversation, ConversationId::parse)?,
            role: match record.role {
                RoleV1::Shopper => Role::Shopper,
                RoleV1::Assistant => Role::Assistant,
                RoleV1::Agent => Role::Agent,
            },
            text: record.text,
            at_ms: record.at_ms,
            client_id: record.client_id,
            reply,
            author: record.author,
        })
    }
}

#[cfg(test)]
mod tests {
    //! The stored bytes of every record kind, pinned: if one of these
    //! fails, the database format changed and needs a new schema version.

    use super::*;

    fn eur(minor: i64) -> Money {
        Money {
            minor,
            currency: Currency::parse("EUR").expect("EUR"),
        }
    }

    fn pinned<R, T>(value: &T, expected: &str)
    where
        R: Serialize + serde::de::DeserializeOwned + for<'a> From<&'a T>,
        T: TryFrom<R, Error = Invalid> + PartialEq + std::fmt::Debug,
    {
        // Through the codec, as storage writes and reads them: the plain
        // form is the one sealed records hold inside.
        use crate::storage::codec;
        let bytes = codec::plain(&R::from(value));
        assert_eq!(String::from_utf8_lossy(&bytes), expected);
        let back: T = codec::open_plain::<R, T>("test", expected.as_bytes())
            .expect("the pinned bytes read back");
        assert_eq!(&back, value);
        let data_key = crate::storage::crypto::SecretKey::random();
        let key = b"shop-1\0key";
        let sealed = codec::sealed(&data_key, "test", key, &R::from(value));
        assert!(
            !sealed
                .windows(8)
                .any(|w| expected.as_bytes().windows(8).any(|e| e == w))
        );
        let back: T =
            codec::open_sealed::<R, T>(&data_key, "test", key, &sealed).expect("sealed bytes open");
        assert_eq!(&back, value);
    }

    #[test]
    fn a_store_record_keeps_its_bytes() {
        let profile = StoreProfile {
            id: StoreId::parse("shop-1").expect("valid"),
            name: "Shop".into(),
            url: "https://shop.example".into(),
            instructions: "Be kind.".into(),
            default_language: Language::Nl,
            currency: Currency::parse("EUR").expect("EUR"),
            allowed_origins: vec!["https://shop.example".into(), "self".into()],
            synonyms: vec![vec!["hoodie".into(), "sweatshirt".into()]],
            branding: Branding {
                color: "#112233".into(),
                title: "Help".into(),
                avatar_url: String::new(),
                greeting: "Hi!".into(),
                position: Corner::Left,
            },
            retention_days: None,
        };
        pinned::<StoreV1, _>(
            &profile,
            r##"{"id":"shop-1","name":"Shop","url":"https://shop.example","instructions":"Be kind.","default_language":"nl","currency":"EUR","allowed_origins":["https://shop.example","self"],"synonyms":[["hoodie","sweatshirt"]],"branding":{"color":"#112233","title":"Help","avatar_url":"","greeting":"Hi!","position":"left"}}"##,
        );
    }

    #[test]
    fn a_page_record_keeps_its_bytes() {
        let page = Page {
            slug: "returns".into(),
            title: "Returns".into(),
            body: "# Returns\n\n30 days.".into(),
            url: "https://shop.example/returns".into(),
            updated_ms: 1_700_000_000_000,
        };
        pinned::<PageV1, _>(
            &page,
            r##"{"slug":"returns","title":"Returns","body":"# Returns\n\n30 days.","url":"https://shop.example/returns","updated_ms":1700000000000}"##,
        );
    }

    #[test]
    fn golden_records_keep_their_bytes() {
        use mikabot_actors::golden::{Check, Expect};
        let goldens = GoldensV1 {
            goldens: vec![Golden {
                question: "a tent under 200 euro".into(),
                language: Some(Language::En),
                expect: Expect {
                    products: vec!["tent-01".into()],
                    language: Some(Language::En),
                    min_price: None,
                    max_price: Some(20000),
                    mentions: Vec::new(),
                    handover: true,
                },
            }],
        };
        let bytes = crate::storage::codec::plain(&goldens);
        let pinned = r#"{"goldens":[{"question":"a tent under 200 euro","language":"en","expect":{"products":["tent-01"],"language":"en","max_price":20000,"handover":true}}]}"#;
        assert_eq!(String::from_utf8_lossy(&bytes), pinned);
        let run = GoldenRunV1 {
            at_ms: 5,
            outcomes: vec![Outcome {
                question: "q".into(),
                text: "t".into(),
                cards: vec!["tent-01".into()],
                handed_over: false,
                checks: vec![Check {
                    what: "product".into(),
                    passed: true,
                    detail: "tent-01 shown".into(),
                }],
                error: None,
            }],
        };
        let bytes = crate::storage::codec::plain(&run);
        let pinned = r#"{"at_ms":5,"outcomes":[{"question":"q","text":"t","cards":["tent-01"],"handed_over":false,"checks":[{"what":"product","passed":true,"detail":"tent-01 shown"}]}]}"#;
        assert_eq!(String::from_utf8_lossy(&bytes), pinned);
        let back: GoldenRunV1 = serde_json::from_str(pinned).expect("reads back");
        assert_eq!(back, run);
    }

    #[test]
    fn a_product_record_keeps_its_bytes() {
        let product = Product {
            id: ProductId("p-1".into()),
            name: "Rain Jacket".into(),
            brand: "Nordwind".into(),
            category: "Jackets".into(),
            description: "Dry.".into(),
            tags: vec!["rain".into()],
            price: eur(8895),
            price_max: Some(9995),
            image_url: "https://shop.example/p-1.jpg".into(),
            url: "https://shop.example/p-1".into(),
            in_stock: false,
        };
        pinned::<ProductV1, _>(
            &product,
            r#"{"id":"p-1","name":"Rain Jacket","brand":"Nordwind","category":"Jackets","description":"Dry.","tags":["rain"],"price":{"minor":8895,"currency":"EUR"},"price_max":9995,"image_url":"https://shop.example/p-1.jpg","url":"https://shop.example/p-1","in_stock":false}"#,
        );
    }

    #[test]
    fn a_conversation_record_keeps_its_bytes() {
        let meta = ConversationMeta {
            store: StoreId::parse("shop-1").expect("valid"),
            conversation: ConversationId::parse("0190a5b2-0000-7000-8000-000000000001")
                .expect("a UUID"),
            session: SessionId::parse("6f1c2d3e-4b5a-4c6d-8e7f-000000000002").expect("a UUID"),
            started_at_ms: 1_700_000_000_000,
            language: Language::De,
            page_url: Some("https://shop.example/p-1".into()),
            referrer: None,
            client: ClientClass {
                browser: "firefox".into(),
                device: "mobile".into(),
            },
            ip: Some("192.0.2.0".into()),
        };
        pinned::<ConversationV1, _>(
            &meta,
            r#"{"store":"shop-1","conversation":"0190a5b2-0000-7000-8000-000000000001","session":"6f1c2d3e-4b5a-4c6d-8e7f-000000000002","started_at_ms":1700000000000,"language":"de","page_url":"https://shop.example/p-1","referrer":null,"client":{"browser":"firefox","device":"mobile"},"ip":"192.0.2.0"}"#,
        );
    }

    #[test]
    fn message_records_keep_their_bytes() {
        let conversation =
            ConversationId::parse("0190a5b2-0000-7000-8000-000000000001").expect("a UUID");
        let shopper = StoredMessage {
            author: None,
            id: MessageId::parse("0190a5b2-0000-7000-8000-000000000003").expect("a UUID"),
            conversation,
            role: Role::Shopper,
            text: "a \"warm\" jacket".into(),
            at_ms: 1_700_000_000_001,
            client_id: Some("c1".into()),
            reply: None,
        };
        pinned::<MessageV1, _>(
            &shopper,
            r#"{"id":"0190a5b2-0000-7000-8000-000000000003","conversation":"0190a5b2-0000-7000-8000-000000000001","role":"shopper","text":"a \"warm\" jacket","at_ms":1700000000001,"client_id":"c1","reply":null}"#,
        );
        let assistant = StoredMessage {
            author: None,
            id: MessageId::parse("0190a5b2-0000-7000-8000-000000000004").expect("a UUID"),
            conversation,
            role: Role::Assistant,
            text: "Try this.".into(),
            at_ms: 1_700_000_000_002,
            client_id: None,
            reply: Some(ReplyOutcome {
                finish: Some(FinishReason::ContentFilter),
                incomplete: true,
                cards: vec![ProductCard {
                    id: ProductId("p-1".into()),
                    name: "Rain Jacket".into(),
                    price: eur(8895),
                    price_max: Some(eur(9995)),
                    image_url: "https://shop.example/p-1.jpg".into(),
                    url: "https://shop.example/p-1".into(),
                }],
            }),
        };
        pinned::<MessageV1, _>(
            &assistant,
            r#"{"id":"0190a5b2-0000-7000-8000-000000000004","conversation":"0190a5b2-0000-7000-8000-000000000001","role":"assistant","text":"Try this.","at_ms":1700000000002,"client_id":null,"reply":{"finish":"content_filter","incomplete":true,"cards":[{"id":"p-1","name":"Rain Jacket","price":{"minor":8895,"currency":"EUR"},"price_max":{"minor":9995,"currency":"EUR"},"image_url":"https://shop.example/p-1.jpg","url":"https://shop.example/p-1"}]}}"#,
        );
    }

    #[test]
    fn a_record_that_names_no_valid_value_is_refused() {
        let mut record = MessageV1::from(&StoredMessage {
            author: None,
            id: MessageId::new(),
            conversation: ConversationId::new(),
            role: Role::Shopper,
            text: "hi".into(),
            at_ms: 1,
            client_id: None,
            reply: None,
        });
        record.conversation = "not-a-uuid".into();
        let error = StoredMessage::try_from(record).expect_err("refused");
        assert!(error.to_string().starts_with("conversation:"), "{error}");
    }
}
