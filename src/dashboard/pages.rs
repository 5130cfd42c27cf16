//! The dashboard's pages: one askama template struct per page, checked at
//! compile time against `templates/`. Every page extends `layout.html` and
//! carries its [`Chrome`] (title, navigation, CSRF token, consent banner).

use askama::Template;

use super::visitor::Visitor;
use crate::accounts::validate::FieldError;

/// What the layout needs on every page.
pub struct Chrome {
    pub title: String,
    pub lang: &'static str,
    pub csrf: String,
    pub me: Option<Me>,
    pub consent: ConsentView,
    pub notices: Vec<String>,
    pub path: String,
}

pub struct Me {
    pub name: String,
    pub operator: bool,
}

pub struct ConsentView {
    /// Show the banner: no valid decision yet.
    pub ask: bool,
    pub functional: bool,
}

impl Chrome {
    pub fn of(visitor: &Visitor, title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            lang: visitor
                .signed_in
                .as_ref()
                .map_or("en", |me| me.account.language.code()),
            csrf: visitor.csrf().to_owned(),
            me: visitor.signed_in.as_ref().map(|me| Me {
                name: me.account.name.clone(),
                operator: me.account.operator,
            }),
            consent: ConsentView {
                ask: !visitor.consent.decided,
                functional: visitor.consent.functional,
            },
            notices: visitor.notices.clone(),
            path: visitor.path.clone(),
        }
    }

    /// The chrome of an error page, which knows no visitor.
    pub fn bare(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            lang: "en",
            csrf: String::new(),
            me: None,
            consent: ConsentView {
                ask: false,
                functional: false,
            },
            notices: Vec::new(),
            path: "/dashboard".into(),
        }
    }
}

/// A form's refused fields.
#[derive(Default)]
pub struct Errors(pub Vec<FieldError>);

impl Errors {
    /// The message for `field`, or "".
    pub fn get(&self, field: &str) -> &str {
        self.0
            .iter()
            .find(|e| e.field == field)
            .map_or("", |e| e.message.as_str())
    }

    /// The message not tied to one field, or "".
    pub fn general(&self) -> &str {
        self.get("")
    }

    pub fn push(&mut self, error: FieldError) {
        self.0.push(error);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<FieldError> for Errors {
    fn from(error: FieldError) -> Self {
        Self(vec![error])
    }
}

/// The languages a form offers.
pub const LANGUAGES: &[(&str, &str)] = &[
    ("en", "English"),
    ("nl", "Nederlands"),
    ("fr", "Français"),
    ("de", "Deutsch"),
    ("es", "Español"),
    ("it", "Italiano"),
];

/// Renders a template; a template that fails to render is the node's
/// fault.
pub fn render(template: &impl Template) -> Result<String, super::DashError> {
    template.render().map_err(super::DashError::internal)
}

macro_rules! page {
    ($name:ident, $path:literal { $($field:ident : $ty:ty),* $(,)? }) => {
        #[derive(Template)]
        #[template(path = $path, config = "src/dashboard/askama.toml")]
        pub struct $name {
            pub chrome: Chrome,
            $(pub $field: $ty,)*
        }
    };
}

page!(Message, "message.html" {
    heading: String,
    lines: Vec<String>,
    link: Option<(String, String)>,
});

#[derive(Default)]
pub struct SignupForm {
    pub name: String,
    pub email: String,
    pub language: String,
}

page!(Signup, "signup.html" { form: SignupForm, errors: Errors, languages: &'static [(&'static str, &'static str)] });
page!(Login, "login.html" { email: String, back: String, errors: Errors });
page!(Forgot, "forgot.html" { email: String, errors: Errors });
page!(Reset, "reset.html" { token: String, errors: Errors });
page!(AccountPage, "account.html" {
    email: String,
    verified: bool,
    new_email: String,
    restorable_until: Option<String>,
    errors: Errors,
});

pub struct StoreRow {
    pub id: String,
    pub name: String,
    pub role: &'static str,
}

page!(StoreList, "stores.html" { stores: Vec<StoreRow> });

#[derive(Default)]
pub struct NewStoreForm {
    pub name: String,
    pub id: String,
    pub url: String,
    pub language: String,
    pub currency: String,
}

page!(NewStore, "store_new.html" { form: NewStoreForm, errors: Errors, languages: &'static [(&'static str, &'static str)] });

pub struct StoreHead {
    pub id: String,
    pub name: String,
    pub url: String,
}

page!(StorePage, "store.html" {
    store: StoreHead,
    role: &'static str,
    role_is_owner: bool,
    role_sees_conversations: bool,
    products: usize,
    embed_tag: String,
    max_upload_mib: usize,
});

#[derive(Default)]
pub struct SettingsForm {
    pub name: String,
    pub url: String,
    pub allowed_origins: String,
    pub instructions: String,
    pub color: String,
    pub title: String,
    pub avatar_url: String,
    pub greeting: String,
    pub position: String,
    pub language: String,
    pub retention_days: String,
    pub synonyms: String,
}

page!(Settings, "settings.html" {
    store: StoreHead,
    form: SettingsForm,
    errors: Errors,
    languages: &'static [(&'static str, &'static str)],
});

pub struct MemberRow {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: &'static str,
    pub is_me: bool,
}

pub struct InvitationRow {
    pub id: String,
    pub email: String,
    pub role: &'static str,
    pub expires: String,
}

page!(Members, "members.html" {
    store: StoreHead,
    members: Vec<MemberRow>,
    invitations: Vec<InvitationRow>,
    invite_email: String,
    errors: Errors,
});

pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub created: String,
}

page!(Tokens, "tokens.html" {
    store: StoreHead,
    tokens: Vec<TokenRow>,
    created: Option<String>,
    token_name: String,
    errors: Errors,
});
pub struct KnowledgeRow {
    pub slug: String,
    pub title: String,
    pub url: String,
    pub updated: String,
    pub size: String,
    pub passages: usize,
}

/// The page being written or edited.
#[derive(Default)]
pub struct KnowledgeForm {
    /// Empty for a new page (made from the title).
    pub slug: String,
    pub title: String,
    pub url: String,
    pub body: String,
    /// Whether this edits an existing page (its slug is then fixed).
    pub editing: bool,
}

page!(KnowledgePage, "knowledge.html" {
    store: StoreHead,
    pages: Vec<KnowledgeRow>,
    form: KnowledgeForm,
    errors: Errors,
    max_pages: usize,
    max_kib: usize,
});
pub struct GoldenRow {
    pub question: String,
    pub passed: bool,
    /// The failed checks, in words.
    pub failed: Vec<String>,
    pub cards: String,
    pub answer: String,
    pub changes: Vec<String>,
}

/// One stored golden question, as the list shows it.
pub struct QuestionRow {
    /// Its place in the list, from 1.
    pub n: usize,
    pub question: String,
    /// What it expects, in words.
    pub expects: String,
}

/// The add form's fields, as typed (kept when the form is refused).
#[derive(Default)]
pub struct GoldenForm {
    pub question: String,
    pub language: String,
    pub products: String,
    pub min_price: String,
    pub max_price: String,
    pub mentions: String,
    pub handover: bool,
}

page!(GoldenPage, "golden.html" {
    store: StoreHead,
    questions: Vec<QuestionRow>,
    form: GoldenForm,
    languages: Vec<(&'static str, &'static str)>,
    list: String,
    count: usize,
    last_run: String,
    rows: Vec<GoldenRow>,
    passed: usize,
    errors: Errors,
});
page!(Invite, "invite.html" { token: String, store_name: String, role: &'static str, email: String, signed_in: bool });
page!(ConsentPage, "consent.html" { back: String, functional: bool, analytics: bool, decided: Option<String>, version: u32 });

pub struct AccountRow {
    pub id: String,
    pub name: String,
    pub email: String,
    pub created: String,
    pub stores: usize,
    pub state: &'static str,
    pub suspended: bool,
    pub is_me: bool,
}

page!(Operator, "operator.html" { accounts: Vec<AccountRow> });

pub struct MailRow {
    pub to: String,
    pub subject: String,
    pub body: String,
    pub time: String,
}

page!(Outbox, "outbox.html" { messages: Vec<MailRow>, capacity: usize });

/// The widget on a page of the node, for the settings' live preview.
#[derive(Template)]
#[template(path = "preview.html", config = "src/dashboard/askama.toml")]
pub struct Preview {
    pub lang: &'static str,
    pub name: String,
    pub store: String,
    /// Unsaved widget settings as JSON (empty: the saved ones).
    pub overrides: String,
}

pub struct ConversationRow {
    pub id: String,
    pub started: String,
    pub language: &'static str,
    pub page: String,
    pub device: String,
}

/// The list's filters, as the form shows them.
pub struct ListFilters {
    pub from: String,
    pub to: String,
    pub language: String,
    pub taken_over: String,
    pub products: String,
    pub q: String,
}

page!(Conversations, "conversations.html" {
    store: StoreHead,
    role_is_owner: bool,
    rows: Vec<ConversationRow>,
    next: Option<String>,
    paged: bool,
    filters: ListFilters,
});

/// A product card shown with a reply.
pub struct CardRow {
    pub name: String,
    pub price: String,
    /// The product page, only when it is an http(s) address.
    pub url: Option<String>,
}

pub struct MessageRow {
    pub role: &'static str,
    pub who: String,
    pub cards: Vec<CardRow>,
    /// How a reply ended, when it did not end naturally (`taken_over`, ...).
    pub finish: Option<&'static str>,
    pub at: String,
    pub text: String,
    pub incomplete: bool,
}

page!(ConversationPage, "conversation.html" {
    store: StoreHead,
    role_is_owner: bool,
    id: String,
    started: String,
    language: &'static str,
    page: String,
    device: String,
    restricted: bool,
    objected: bool,
    messages: Vec<MessageRow>,
});

pub struct ReceiptRow {
    pub requested: String,
    pub kind: &'static str,
    pub state: &'static str,
    pub conversations: u64,
    pub messages: u64,
    pub completed: String,
}

pub struct Found {
    pub conversations: u64,
    pub messages: u64,
}

page!(PrivacyPage, "privacy.html" {
    store: StoreHead,
    kind: String,
    value: String,
    preview: Option<Found>,
    errors: Errors,
    receipts: Vec<ReceiptRow>,
});

// `may_act`: agents and owners may take over, viewers only watch; `you`:
// the signed-in person's name, as shoppers see it.
page!(LivePage, "live.html" {
    store: StoreHead,
    role_is_owner: bool,
    may_act: bool,
    you: String,
});
