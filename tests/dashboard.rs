//! The owners' dashboard through real HTTP, a real sled directory and a
//! real SMTP sink: sign-up to a store that answers shoppers, sessions
//! (fixation, expiry, sign-out everywhere), the sign-in throttle at and
//! just over its limits, CSRF on state changes, field-level refusals that
//! change nothing, password reset, invitations and roles, store API tokens,
//! account deletion and restoration, cookie consent, the operator's pages
//! and the provisioning sub-commands.

use mikabot::accounts::secret;
use mikabot::accounts::{Account, AccountId, now_secs, password};
use mikabot_actors::ids::StoreId;
use mikabot_actors::language::Language;
use serde_json::{Value, json};

use crate::helpers::{Owner, Shopper, SmtpSink, TestApp, spawn_app};

pub const PASSWORD: &str = "correct horse battery";

/// A node that mails through `sink`, with `tweak` applied.
pub async fn node_with_mail(
    sink: &SmtpSink,
    tweak: impl FnOnce(&mut mikabot::config::Settings),
) -> TestApp {
    let port = sink.port();
    spawn_app(move |s| {
        s.email.smtp_host = "127.0.0.1".into();
        s.email.smtp_port = port;
        s.email.smtp_security = mikabot::config::SmtpSecurity::None;
        tweak(s);
    })
    .await
}

/// Signs a new owner up and verifies the address through the mailed link;
/// returns the owner, signed in.
pub async fn signed_up(app: &TestApp, sink: &SmtpSink, name: &str, email: &str) -> Owner {
    let mut owner = Owner::new(app.port);
    owner.get("/dashboard/signup").await;
    let page = owner
        .post(
            "/dashboard/signup",
            &[
                ("name", name),
                ("email", email),
                ("password", PASSWORD),
                ("language", "en"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.text().contains("Check your email"));
    let mail = sink.wait_for(email).await;
    let link = mail
        .link("/dashboard/verify/")
        .expect("a verification link");
    let path = link
        .split_once("8080")
        .map_or(link.as_str(), |(_, p)| p)
        .to_owned();
    let page = owner.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.text().contains("Email confirmed"));
    let page = owner.sign_in(email, PASSWORD).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location.as_deref(), Some("/dashboard/stores"));
    owner
}

/// Creates a store through the form; returns its id.
pub async fn created_store(owner: &mut Owner, name: &str, url: &str) -> String {
    owner.get("/dashboard/stores/new").await;
    let page = owner
        .post(
            "/dashboard/stores/new",
            &[
                ("name", name),
                ("id", ""),
                ("url", url),
                ("language", "en"),
                ("currency", "EUR"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let location = page.location.expect("a location");
    location.trim_start_matches("/dashboard/stores/").to_owned()
}

/// Creates a store API token through the tokens page; returns the token,
/// which the page shows once.
async fn created_token(owner: &mut Owner, store: &str, name: &str) -> String {
    let tokens = format!("/dashboard/stores/{store}/tokens");
    owner.get(&tokens).await;
    let page = owner.post(&tokens, &[("name", name)]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.text()
        .split_whitespace()
        .find(|w| w.starts_with("mkb_"))
        .expect("the token, shown once")
        .to_owned()
}

fn path_of(link: &str) -> String {
    // Mail links start with the node's public URL (localhost:8080 in tests).
    link.split_once("8080").map_or(link, |(_, p)| p).to_owned()
}

const BAD_FEED: &str = "id,title,price,currency,link,image_link\n\
    k-1,Gooseneck Kettle,49.00,EUR,https://koffie.example/k-1,https://koffie.example/k-1.jpg\n\
    k-2,Burr Grinder,,EUR,https://koffie.example/k-2,https://koffie.example/k-2.jpg\n";
const GOOD_FEED: &str = "id,title,price,currency,link,image_link\n\
    k-1,Gooseneck Kettle,49.00,EUR,https://koffie.example/k-1,https://koffie.example/k-1.jpg\n\
    k-2,Burr Grinder,89.00,EUR,https://koffie.example/k-2,https://koffie.example/k-2.jpg\n";

#[actix_web::test]
async fn an_owner_signs_up_creates_a_store_imports_a_catalog_and_its_shoppers_are_served() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |_| {}).await;
    let mut owner = signed_up(&app, &sink, "Ada Koffie", "ada@koffie.example").await;
    let store = created_store(&mut owner, "Koffie & Co", "https://koffie.example/shop").await;
    assert_eq!(store, "koffie-co");

    let page = owner.get(&format!("/dashboard/stores/{store}")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains(&format!(
            "<script src=\"http://localhost:8080/widget.js\" data-store=\"{store}\" async></script>"
        )),
        "the embed tag is on the overview"
    );

    // One bad row: all or nothing refuses it, with the row's reason.
    let upload = format!("/dashboard/stores/{store}/catalog");
    let page = owner.put(&upload, BAD_FEED.as_bytes().to_vec()).await;
    assert_eq!(page.status, 422, "{}", page.body);
    let report: serde_json::Value = serde_json::from_str(&page.body).expect("JSON");
    assert_eq!(report["error"]["code"], "rows_rejected");
    assert_eq!(report["rejected"][0]["row"], 2);
    assert_eq!(report["rejected"][0]["id"], "k-2");
    assert_eq!(report["rejected"][0]["field"], "price");
    let id = StoreId::parse(&store).expect("id");
    assert!(
        app.storage().catalog(&id).expect("catalog").is_empty(),
        "nothing imported"
    );

    let page = owner.put(&upload, GOOD_FEED.as_bytes().to_vec()).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let report: serde_json::Value = serde_json::from_str(&page.body).expect("JSON");
    assert_eq!(report["imported"], 2);

    // The tag on the shop's origin: the store's assistant answers from its
    // catalog.
    let mut shopper =
        Shopper::connect_from(&app.ws_url(&store), Some("https://koffie.example")).await;
    shopper.hello(json!({})).await;
    let reply = shopper.ask("c1", "burr grinder").await;
    assert_eq!(reply.end["type"], "done", "{}", reply.end);
    assert!(
        reply.card_ids().contains(&"k-2".to_owned()),
        "{:?}",
        reply.card_ids()
    );
    // Another site may not embed it.
    let mut stranger =
        Shopper::connect_from(&app.ws_url(&store), Some("https://evil.example")).await;
    stranger.send(json!({"type": "hello", "v": 1})).await;
    let (frames, _, _) = stranger.until_closed().await;
    assert_eq!(frames[0]["code"], "origin_not_allowed");
}

#[actix_web::test]
async fn signing_up_again_with_a_taken_address_reveals_nothing_and_creates_nothing() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |_| {}).await;
    let _ada = signed_up(&app, &sink, "Ada", "ada@example.com").await;
    let mut other = Owner::new(app.port);
    other.get("/dashboard/signup").await;
    let page = other
        .post(
            "/dashboard/signup",
            &[
                ("name", "Mallory"),
                ("email", "ADA@example.com"),
                ("password", "another password"),
                ("language", "en"),
            ],
        )
        .await;
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains("Check your email"),
        "the same answer as a new sign-up"
    );
    let mail = sink.wait_for("ada@example.com").await;
    assert!(
        mail.subject.contains("tried to sign up"),
        "{}",
        mail.subject
    );
    assert!(mail.link("/dashboard/verify/").is_none());
    assert_eq!(app.storage().accounts().expect("accounts").len(), 1);
    let page = other.sign_in("ada@example.com", "another password").await;
    assert_eq!(page.status, 401, "the first password stays");
}

#[actix_web::test]
async fn bad_input_on_every_form_gets_field_messages_and_changes_nothing() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |_| {}).await;
    let mut visitor = Owner::new(app.port);
    visitor.get("/dashboard/signup").await;
    let page = visitor
        .post(
            "/dashboard/signup",
            &[
                ("name", ""),
                ("email", "not-an-address"),
                ("password", "short"),
                ("language", "xx"),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    let text = page.text();
    for message in [
        "required",
        "an address like name@example.com",
        "at least 10 characters",
        "one of en, nl, fr, de, es, it",
    ] {
        assert!(text.contains(message), "{message} missing");
    }
    assert!(
        page.body.contains("aria-invalid=\"true\""),
        "fields are marked for assistive technology"
    );
    assert!(app.storage().accounts().expect("accounts").is_empty());
    // A body that is not a form at all.
    let page = visitor.post("/dashboard/signup", &[("name", "%%%")]).await;
    assert!(page.status == 422 || page.status == 400, "{}", page.status);

    let mut owner = signed_up(&app, &sink, "Ada", "ada@example.com").await;
    owner.get("/dashboard/stores/new").await;
    let page = owner
        .post(
            "/dashboard/stores/new",
            &[
                ("name", "Shop"),
                ("id", "Bad Id!"),
                ("url", "ftp://x"),
                ("language", "en"),
                ("currency", "XYZ"),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    let text = page.text();
    assert!(text.contains("a store id is 1 to"), "{text}");
    assert!(text.contains("the shop's address, like https://shop.example"));
    assert!(text.contains("XYZ"), "the currency's refusal names it");
    assert_eq!(
        app.storage().stores().expect("stores").len(),
        1,
        "only the demo store"
    );

    let store = created_store(&mut owner, "Shop", "https://shop.example").await;
    let id = StoreId::parse(&store).expect("id");
    let before = app.storage().store(&id).expect("read").expect("store");
    let settings = format!("/dashboard/stores/{store}/settings");
    owner.get(&settings).await;
    for (field, value, message) in [
        ("color", "blue", "expected #rrggbb"),
        (
            "retention_days",
            "0",
            "a whole number of days from 1 to 3650",
        ),
        (
            "allowed_origins",
            "not an origin",
            "is not an origin like https://shop.example",
        ),
        (
            "synonyms",
            "hoodie, sweatshirt\nlonely",
            "line 2: a group has 2 to 20 words",
        ),
        ("url", "shop.example", "the shop's address"),
    ] {
        let mut fields = vec![
            ("name", "Shop"),
            ("url", "https://shop.example"),
            ("allowed_origins", "https://shop.example"),
            ("position", "right"),
            ("language", "en"),
            ("color", "#112233"),
        ];
        fields.retain(|(k, _)| *k != field);
        fields.push((field, value));
        let page = owner.post(&settings, &fields).await;
        assert_eq!(page.status, 422, "{field}");
        assert!(page.text().contains(message), "{field}: {message} missing");
        assert_eq!(
            app.storage().store(&id).expect("read").expect("store"),
            before,
            "{field} changed nothing"
        );
    }
}

#[actix_web::test]
async fn settings_are_saved_and_reach_the_widget() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |_| {}).await;
    let mut owner = signed_up(&app, &sink, "Ada", "ada@example.com").await;
    let store = created_store(&mut owner, "Shop", "https://shop.example").await;
    let settings = format!("/dashboard/stores/{store}/settings");
    let page = owner.get(&settings).await;
    assert!(
        page.text().contains("https://shop.example\nself"),
        "a new store allows its shop and the preview"
    );
    let page = owner
        .post(
            &settings,
            &[
                ("name", "Shop Two"),
                ("url", "https://shop.example"),
                (
                    "allowed_origins",
                    "https://shop.example\nhttps://www.shop.example",
                ),
                ("instructions", "Answer briefly."),
                ("color", "#AA3300"),
                ("title", "Ask us"),
                ("avatar_url", ""),
                ("greeting", "Hello!"),
                ("position", "left"),
                ("language", "nl"),
                ("retention_days", "30"),
                ("synonyms", "hoodie, sweatshirt\nmug, cup"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.text().contains("Settings saved."));
    let profile = app
        .storage()
        .store(&StoreId::parse(&store).expect("id"))
        .expect("read")
        .expect("store");
    assert_eq!(profile.name, "Shop Two");
    assert_eq!(profile.retention_days, Some(30));
    assert_eq!(profile.instructions, "Answer briefly.");
    assert_eq!(
        profile.synonyms,
        vec![
            vec!["hoodie".to_owned(), "sweatshirt".to_owned()],
            vec!["mug".to_owned(), "cup".to_owned()]
        ]
    );
    assert_eq!(profile.branding.color, "#aa3300");
    let widget: serde_json::Value = reqwest::get(format!(
        "http://127.0.0.1:{}/v1/stores/{store}/widget",
        app.port
    ))
    .await
    .expect("answer")
    .json()
    .await
    .expect("JSON");
    assert_eq!(widget["title"], "Ask us", "{widget}");
}

/// The session cookie's value in an owner's jar.
fn session_cookie(owner: &Owner) -> String {
    owner
        .cookies
        .get("mikabot_session")
        .cloned()
        .expect("a session cookie")
}

#[actix_web::test]
async fn sign_in_makes_a_new_session_whatever_cookie_came_before() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |_| {}).await;
    let mut ada = signed_up(&app, &sink, "Ada", "ada@example.com").await;
    let first = session_cookie(&ada);
    // An attacker plants a cookie of their choosing before the victim signs
    // in: the node never adopts it.
    let planted = secret::new_secret().expect("random");
    let mut victim = Owner::new(app.port);
    victim
        .cookies
        .insert("mikabot_session".into(), planted.clone());
    let page = victim.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(page.status, 303);
    let issued = session_cookie(&victim);
    assert_ne!(issued, planted);
    assert_ne!(issued, first);
    assert!(
        app.storage()
            .session(&secret::digest(&planted))
            .expect("read")
            .is_none()
    );
    // Signing in again from a signed-in browser replaces its session.
    let page = ada.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(page.status, 303);
    assert_ne!(session_cookie(&ada), first);
    assert!(
        app.storage()
            .session(&secret::digest(&first))
            .expect("read")
            .is_none(),
        "the old session ended"
    );
    // Signing out ends it on the node too: the old cookie opens nothing.
    let kept = session_cookie(&ada);
    ada.get("/dashboard/stores").await;
    let page = ada.post("/dashboard/logout", &[]).await;
    assert_eq!(page.status, 303);
    let mut replay = Owner::new(app.port);
    replay.cookies.insert("mikabot_session".into(), kept);
    let page = replay.get("/dashboard/stores").await;
    assert_eq!(page.status, 303);
    assert!(
        page.location
            .as_deref()
            .unwrap_or("")
            .starts_with("/dashboard/login")
    );
}

#[actix_web::test]
async fn cookies_are_http_only_same_site_and_secure_on_https() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |_| {}).await;
    let _ = signed_up(&app, &sink, "Ada", "ada@example.com").await;
    let mut owner = Owner::new(app.port);
    let page = owner.sign_in("ada@example.com", PASSWORD).await;
    let set: Vec<String> = page
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect();
    let session = set
        .iter()
        .find(|c| c.starts_with("mikabot_session="))
        .expect("a session cookie");
    assert!(
        session.contains("HttpOnly")
            && session.contains("SameSite=Lax")
            && session.contains("Path=/dashboard"),
        "{session}"
    );
    assert!(
        !session.contains("Secure"),
        "plain http in tests: {session}"
    );
    drop(app);

    let app = node_with_mail(&sink, |s| {
        s.server.public_url = "https://mikabot.example".into()
    })
    .await;
    let mut visitor = Owner::new(app.port);
    let page = visitor.get("/dashboard/login").await;
    let csrf = page
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(
        csrf.starts_with("mikabot_csrf=") && csrf.contains("Secure"),
        "{csrf}"
    );
}

#[actix_web::test]
async fn sessions_end_after_their_idle_and_absolute_limits() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |_| {}).await;
    let mut owner = signed_up(&app, &sink, "Ada", "ada@example.com").await;
    assert_eq!(owner.get("/dashboard/stores").await.status, 200);
    let digest = secret::digest(&session_cookie(&owner));
    let storage = app.storage();
    let mut session = storage.session(&digest).expect("read").expect("session");
    // Unused for just under two hours (the default idle limit): still on.
    session.seen = now_secs() - 120 * 60 + 30;
    storage.touch_session(&digest, &session).expect("age");
    assert_eq!(owner.get("/dashboard/stores").await.status, 200);
    // Just over it: signed out, and the cookie is removed.
    let mut session = storage.session(&digest).expect("read").expect("session");
    session.seen = now_secs() - 120 * 60 - 1;
    storage.touch_session(&digest, &session).expect("age");
    let page = owner.get("/dashboard/stores").await;
    assert_eq!(page.status, 303);
    assert!(storage.session(&digest).expect("read").is_none());

    // In use all along, but signed in over 7 days ago (the absolute limit).
    owner.sign_in("ada@example.com", PASSWORD).await;
    let digest = secret::digest(&session_cookie(&owner));
    let mut session = storage.session(&digest).expect("read").expect("session");
    session.created = now_secs() - 168 * 3600 - 1;
    session.seen = now_secs();
    storage.touch_session(&digest, &session).expect("age");
    assert_eq!(owner.get("/dashboard/stores").await.status, 303);
}

#[actix_web::test]
async fn signing_out_everywhere_ends_every_session_of_the_account() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |_| {}).await;
    let mut laptop = signed_up(&app, &sink, "Ada", "ada@example.com").await;
    let mut phone = Owner::new(app.port);
    phone.sign_in("ada@example.com", PASSWORD).await;
    let _bob = signed_up(&app, &sink, "Bob", "bob@example.com").await;
    let mut bob = Owner::new(app.port);
    bob.sign_in("bob@example.com", PASSWORD).await;
    assert_eq!(phone.get("/dashboard/stores").await.status, 200);
    laptop.get("/dashboard/account").await;
    let page = laptop.post("/dashboard/logout-everywhere", &[]).await;
    assert_eq!(page.status, 303);
    assert_eq!(
        phone.get("/dashboard/stores").await.status,
        303,
        "the other browser is out"
    );
    assert_eq!(laptop.get("/dashboard/stores").await.status, 303);
    assert_eq!(
        bob.get("/dashboard/stores").await.status,
        200,
        "another account keeps its session"
    );
}

#[actix_web::test]
async fn failed_sign_ins_are_throttled_per_account_at_and_just_over_the_limit() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |s| {
        s.dashboard.login_failures_per_account = 3;
        s.dashboard.login_failures_per_address = 100;
    })
    .await;
    let _ = signed_up(&app, &sink, "Ada", "ada@example.com").await;
    let mut guesser = Owner::new(app.port);
    for attempt in 1..=3 {
        let page = guesser
            .sign_in("ada@example.com", &format!("wrong guess {attempt}"))
            .await;
        assert_eq!(page.status, 401, "failure {attempt} is within the limit");
        assert!(page.text().contains("Wrong email or password."));
    }
    // Just over: refused before the password is even checked, so the right
    // one does not get in either.
    let page = guesser.sign_in("ada@example.com", PASSWORD).await;
    assert_eq!(page.status, 429);
    assert!(page.headers.contains_key("retry-after"));
    assert!(page.text().contains("too_many_attempts"));
    // Another account from the same address is not locked.
    let _ = signed_up(&app, &sink, "Bob", "bob@example.com").await;
    assert_eq!(
        guesser.sign_in("bob@example.com", PASSWORD).await.status,
        303
    );
}

#[actix_web::test]
async fn failed_sign_ins_are_throttled_per_address_across_accounts() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |s| {
        s.dashboard.login_failures_per_account = 100;
        s.dashboard.login_failures_per_address = 4;
    })
    .await;
    let _ = signed_up(&app, &sink, "Ada", "ada@example.com").await;
    let mut sprayer = Owner::new(app.port);
    for n in 1..=4 {
        let page = sprayer
            .sign_in(&format!("user{n}@example.com"), "password spray")
            .await;
        assert_eq!(page.status, 401, "failure {n}");
    }
    assert_eq!(
        sprayer.sign_in("ada@example.com", PASSWORD).await.status,
        429
    );
}

#[actix_web::test]
async fn a_state_change_without_the_right_csrf_token_is_refused_and_changes_nothing() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |_| {}).await;
    let mut owner = signed_up(&app, &sink, "Ada", "ada@example.com").await;
    let store = created_store(&mut owner, "Shop", "https://shop.example").await;
    let id = StoreId::parse(&store).expect("id");
    let before = app.storage().store(&id).expect("read").expect("store");
    let settings = format!("/dashboard/stores/{store}/settings");
    let fields = |csrf: &'static str| {
        vec![
            ("csrf", csrf),
            ("name", "Renamed"),
            ("url", "https://shop.example"),
            ("allowed_origins", "https://shop.example"),
            ("position", "right"),
            ("language", "en"),
            ("color", "#112233"),
        ]
    };
    for csrf in [
        "",
        "not-the-token",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let page = owner.post(&settings, &fields(csrf)).await;
        assert_eq!(page.status, 403, "{csrf:?}");
        assert!(page.text().contains("csrf_failed"));
    }
    // The right token from another site's page.
    owner.get(&settings).await;
    owner.extra = vec![("origin".into(), "https://evil.example".into())];
    let token = owner.csrf.clone();
    let page = owner
        .post(
            &settings,
            &[
                ("csrf", token.as_str()),
                ("name", "Renamed"),
                ("url", "https://shop.example"),
                ("allowed_origins", "https://shop.example"),
                ("position", "right"),
                ("language", "en"),
                ("color", "#112233"),
            ],
        )
        .await;
    assert_eq!(page.status, 403);
    owner.extra = vec![("sec-fetch-site".into(), "cross-site".into())];
    let page = owner
        .put(
            &format!("/dashboard/stores/{store}/catalog"),
            GOOD_FEED.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(page.status, 403);
    owner.extra.clear();
    // The upload without its header.
    let saved = std::mem::take(&mut owner.csrf);
    let page = owner
        .put(
            &format!("/dashboard/stores/{store}/catalog"),
            GOOD_FEED.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(page.status, 403);
    owner.csrf = saved;
    for path in [
        "/dashboard/logout",
        "/dashboard/logout-everywhere",
        "/dashboard/account/delete",
    ] {
        let page = owner.post(path, &[("csrf", "wrong")]).await;
        assert_eq!(page.status, 403, "{path}");
    }
    assert_eq!(
        app.storage().store(&id).expect("read").expect("store"),
        before
    );
    assert!(app.storage().catalog(&id).expect("catalog").is_empty());
    assert_eq!(
        owner.get("/dashboard/stores").await.status,
        200,
        "still signed in"
    );
    // A sign-in form posted without the CSRF cookie it was served with.
    let mut forger = Owner::new(app.port);
    let page = forger
        .post(
            "/dashboard/login",
            &[
                ("csrf", "x"),
                ("email", "ada@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, 403);
}

#[actix_web::test]
async fn a_password_reset_link_sets_a_new_password_once_and_signs_every_session_out() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |_| {}).await;
    let mut ada = signed_up(&app, &sink, "Ada", "ada@example.com").await;
    let mut visitor = Owner::new(app.port);
    visitor.get("/dashboard/forgot").await;
    let page = visitor
        .post("/dashboard/forgot", &[("email", "nobody@example.com")])
        .await;
    assert!(
        page.text().contains("If nobody@example.com has an account"),
        "no hint of who has one"
    );
    let page = visitor
        .post("/dashboard/forgot", &[("email", "ada@example.com")])
        .await;
    assert_eq!(page.status, 200);
    let link = path_of(
        &sink
            .wait_for("ada@example.com")
            .await
            .link("/dashboard/reset/")
            .expect("a reset link"),
    );
    visitor.get(&link).await;
    let page = visitor.post(&link, &[("password", "short")]).await;
    assert_eq!(page.status, 422, "a bad password keeps the link usable");
    let page = visitor
        .post(&link, &[("password", "a brand new password")])
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(visitor.get(&link).await.status, 404, "a link works once");
    assert_eq!(
        ada.get("/dashboard/stores").await.status,
        303,
        "sessions ended"
    );
    assert_eq!(
        Owner::new(app.port)
            .sign_in("ada@example.com", PASSWORD)
            .await
            .status,
        401
    );
    assert_eq!(
        Owner::new(app.port)
            .sign_in("ada@example.com", "a brand new password")
            .await
            .status,
        303
    );
}

#[actix_web::test]
async fn email_and_password_changes_need_the_current_password() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |_| {}).await;
    let mut ada = signed_up(&app, &sink, "Ada", "ada@example.com").await;
    ada.get("/dashboard/account").await;
    let page = ada
        .post(
            "/dashboard/account/password",
            &[("current", "wrong"), ("password", "another long one")],
        )
        .await;
    assert_eq!(page.status, 401);
    let page = ada
        .post(
            "/dashboard/account/password",
            &[("current", PASSWORD), ("password", "another long one")],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        ada.get("/dashboard/stores").await.status,
        200,
        "this browser stays signed in"
    );
    ada.get("/dashboard/account").await;
    let page = ada
        .post(
            "/dashboard/account/email",
            &[
                ("email", "lovelace@example.com"),
                ("password", "another long one"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let link = path_of(
        &sink
            .wait_for("lovelace@example.com")
            .await
            .link("/dashboard/email/")
            .expect("a link"),
    );
    assert_eq!(ada.get(&link).await.status, 200);
    assert!(
        app.storage()
            .account_by_email("lovelace@example.com")
            .expect("read")
            .is_some()
    );
    assert!(
        app.storage()
            .account_by_email("ada@example.com")
            .expect("read")
            .is_none()
    );
}

#[actix_web::test]
async fn an_invited_agent_sees_the_store_but_not_its_settings() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |_| {}).await;
    let mut owner = signed_up(&app, &sink, "Ada", "ada@example.com").await;
    let store = created_store(&mut owner, "Shop", "https://shop.example").await;
    let members = format!("/dashboard/stores/{store}/members");
    owner.get(&members).await;
    let page = owner
        .post(
            &format!("{members}/invite"),
            &[("email", "Agent@Example.com"), ("role", "agent")],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let invite = path_of(
        &sink
            .wait_for("agent@example.com")
            .await
            .link("/dashboard/invites/")
            .expect("an invitation"),
    );
    let mut agent = signed_up(&app, &sink, "Agent", "agent@example.com").await;
    let page = agent.get(&invite).await;
    assert!(page.text().contains("agent"));
    let page = agent.post(&invite, &[]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(
        agent
            .get(&format!("/dashboard/stores/{store}"))
            .await
            .status,
        200
    );
    for path in ["settings", "members", "tokens"] {
        assert_eq!(
            agent
                .get(&format!("/dashboard/stores/{store}/{path}"))
                .await
                .status,
            403,
            "{path}"
        );
    }
    assert_eq!(
        agent.get(&invite).await.status,
        404,
        "an invitation is used once"
    );
    let page = owner.get(&members).await;
    assert!(page.text().contains("agent@example.com"));
    // Another address cannot use an invitation.
    owner.get(&members).await;
    owner
        .post(
            &format!("{members}/invite"),
            &[("email", "carol@example.com"), ("role", "viewer")],
        )
        .await;
    let invite = path_of(
        &sink
            .wait_for("carol@example.com")
            .await
            .link("/dashboard/invites/")
            .expect("an invitation"),
    );
    let mut mallory = signed_up(&app, &sink, "Mallory", "mallory@example.com").await;
    mallory.get(&invite).await;
    assert_eq!(mallory.post(&invite, &[]).await.status, 403);
    assert_eq!(
        mallory
            .get(&format!("/dashboard/stores/{store}"))
            .await
            .status,
        404
    );
}

#[actix_web::test]
async fn a_store_api_token_opens_its_own_store_only_until_revoked() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |_| {}).await;
    let mut owner = signed_up(&app, &sink, "Ada", "ada@example.com").await;
    let store = created_store(&mut owner, "Shop", "https://koffie.example").await;
    let tokens = format!("/dashboard/stores/{store}/tokens");
    let token = created_token(&mut owner, &store, "nightly feed").await;
    let stored = app
        .storage()
        .tokens(&StoreId::parse(&store).expect("id"))
        .expect("tokens");
    assert_eq!(stored.len(), 1);
    assert!(
        !format!("{:?}", stored[0]).contains(
            token
                .trim_start_matches("mkb_")
                .split_once('_')
                .map_or("", |(_, secret)| secret)
        ),
        "only the hash is kept"
    );
    assert!(
        !owner.get(&tokens).await.body.contains(&token),
        "never shown again"
    );

    let client = reqwest::Client::new();
    let import = |store: &str| format!("http://127.0.0.1:{}/v1/stores/{store}/catalog", app.port);
    let answer = client
        .put(import(&store))
        .bearer_auth(&token)
        .body(GOOD_FEED)
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status().as_u16(), 200);
    let answer = client
        .put(import("demo"))
        .bearer_auth(&token)
        .body(GOOD_FEED)
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status().as_u16(), 401, "another store refuses it");
    let answer = client
        .put(format!(
            "http://127.0.0.1:{}/v1/stores/{store}/synonyms",
            app.port
        ))
        .bearer_auth(&token)
        .body(r#"{"synonyms": [["grinder", "mill"]]}"#)
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status().as_u16(), 200);

    let id = stored[0].id.simple().to_string();
    let page = owner.post(&format!("{tokens}/{id}/revoke"), &[]).await;
    assert_eq!(page.status, 303);
    let answer = client
        .put(import(&store))
        .bearer_auth(&token)
        .body(GOOD_FEED)
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status().as_u16(), 401, "revoked");
}

#[actix_web::test]
async fn a_deleted_account_stops_its_stores_until_it_is_restored() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |_| {}).await;
    let mut owner = signed_up(&app, &sink, "Ada", "ada@example.com").await;
    let store = created_store(&mut owner, "Shop", "https://shop.example").await;
    owner.get("/dashboard/account").await;
    let page = owner
        .post("/dashboard/account/delete", &[("password", "wrong")])
        .await;
    assert_eq!(page.status, 401);
    let page = owner
        .post("/dashboard/account/delete", &[("password", PASSWORD)])
        .await;
    assert_eq!(page.status, 303);
    let account = app
        .storage()
        .account_by_email("ada@example.com")
        .expect("read")
        .expect("account");
    assert!(account.deleted_at.is_some(), "kept for the grace period");
    let mut shopper =
        Shopper::connect_from(&app.ws_url(&store), Some("https://shop.example")).await;
    let (frames, close, _) = shopper.until_closed().await;
    assert_eq!(
        (frames[0]["code"].as_str(), close),
        (Some("unknown_store"), 4404)
    );
    assert_eq!(
        owner.get("/dashboard/stores").await.location.as_deref(),
        Some("/dashboard/account")
    );
    let page = owner.get("/dashboard/account").await;
    assert!(page.text().contains("Restore my account"));
    let page = owner.post("/dashboard/account/restore", &[]).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Your account is restored."));
    let mut shopper =
        Shopper::connect_from(&app.ws_url(&store), Some("https://shop.example")).await;
    shopper.hello(json!({})).await;
}

#[actix_web::test]
async fn no_optional_cookie_exists_before_consent_and_each_decision_is_kept() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |_| {}).await;
    let mut visitor = Owner::new(app.port);
    let page = visitor.get("/dashboard/login").await;
    assert_eq!(
        page.cookies_set(),
        vec![("mikabot_csrf".to_owned(), false)],
        "only the strictly necessary"
    );
    assert!(
        page.body.contains("Accept all")
            && page.body.contains("Reject all")
            && page.body.contains("Customise")
    );
    assert!(page.body.contains("data-functional=\"false\""));
    assert!(
        page.body.contains("href=\"/dashboard/consent\""),
        "a link on every page"
    );
    let page = visitor
        .post(
            "/dashboard/consent",
            &[("choice", "accept"), ("back", "/dashboard/login")],
        )
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/dashboard/login"));
    let consent = visitor
        .cookies
        .get("mikabot_consent")
        .cloned()
        .expect("a consent cookie");
    let set = page
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(set.contains("Max-Age=31536000"), "12 months: {set}");
    let id =
        uuid::Uuid::try_parse(consent.rsplit('.').next().unwrap_or("")).expect("the decision's id");
    let record = app.storage().consent(id).expect("read").expect("kept");
    assert!(record.functional && record.analytics && record.policy_version == 1);
    let page = visitor.get("/dashboard/login").await;
    assert!(page.body.contains("data-functional=\"true\""));
    assert!(!page.body.contains("Reject all"), "no banner once decided");

    // Functional consent lets the sign-up's language be remembered.
    visitor.get("/dashboard/signup").await;
    visitor
        .post(
            "/dashboard/signup",
            &[
                ("name", "Zoë"),
                ("email", "zoe@example.com"),
                ("password", PASSWORD),
                ("language", "fr"),
            ],
        )
        .await;
    assert_eq!(
        visitor.cookies.get("mikabot_lang").map(String::as_str),
        Some("fr")
    );

    // Withdrawn: the functional cookie goes at once.
    visitor.get("/dashboard/consent").await;
    let page = visitor
        .post(
            "/dashboard/consent",
            &[
                ("choice", "custom"),
                ("analytics", "on"),
                ("back", "https://evil.example"),
            ],
        )
        .await;
    assert_eq!(
        page.location.as_deref(),
        Some("/dashboard"),
        "no open redirect"
    );
    assert!(
        page.cookies_set()
            .contains(&("mikabot_lang".to_owned(), true))
    );
    assert!(!visitor.cookies.contains_key("mikabot_lang"));
    let page = visitor.get("/dashboard/login").await;
    assert!(page.body.contains("data-functional=\"false\""));

    // A new policy version asks again.
    drop(app);
    let app = node_with_mail(&sink, |s| s.dashboard.consent_policy_version = 2).await;
    let mut again = Owner::new(app.port);
    again.cookies.insert("mikabot_consent".into(), consent);
    assert!(
        again
            .get("/dashboard/login")
            .await
            .body
            .contains("Reject all")
    );
}

fn operator_account(email: &str) -> Account {
    Account {
        id: AccountId::new(),
        name: "Operator".into(),
        email: email.into(),
        password_hash: password::hash(PASSWORD).expect("hash"),
        language: Language::En,
        verified: true,
        created: now_secs(),
        deleted_at: None,
        suspended: false,
        operator: true,
    }
}

#[actix_web::test]
async fn an_operator_lists_and_suspends_accounts_but_reads_no_store() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |_| {}).await;
    let mut ada = signed_up(&app, &sink, "Ada", "ada@example.com").await;
    let store = created_store(&mut ada, "Shop", "https://shop.example").await;
    app.storage()
        .create_account(&operator_account("op@example.com"))
        .expect("write")
        .expect("new");
    let mut operator = Owner::new(app.port);
    operator.sign_in("op@example.com", PASSWORD).await;
    let page = operator.get("/dashboard/operator").await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("ada@example.com"));
    assert_eq!(
        operator
            .get(&format!("/dashboard/stores/{store}"))
            .await
            .status,
        404,
        "no store pages"
    );
    assert_eq!(ada.get("/dashboard/operator").await.status, 403);

    let id = app
        .storage()
        .account_by_email("ada@example.com")
        .expect("read")
        .expect("account")
        .id;
    let page = operator
        .post(&format!("/dashboard/operator/accounts/{id}/suspend"), &[])
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(ada.get("/dashboard/stores").await.status, 303, "signed out");
    let page = Owner::new(app.port)
        .sign_in("ada@example.com", PASSWORD)
        .await;
    assert_eq!(page.status, 403);
    assert!(page.text().contains("suspended"));
    let mut shopper =
        Shopper::connect_from(&app.ws_url(&store), Some("https://shop.example")).await;
    let (frames, _, _) = shopper.until_closed().await;
    assert_eq!(
        frames[0]["code"], "unknown_store",
        "a suspended owner's store is not served"
    );
    operator.get("/dashboard/operator").await;
    operator
        .post(&format!("/dashboard/operator/accounts/{id}/unsuspend"), &[])
        .await;
    assert_eq!(
        Owner::new(app.port)
            .sign_in("ada@example.com", PASSWORD)
            .await
            .status,
        303
    );
}

#[actix_web::test]
async fn without_smtp_mail_goes_to_the_outbox_of_the_nodes_own_machine() {
    let app = spawn_app(|s| s.dashboard.demo_owner = true).await;
    let mut visitor = Owner::new(app.port);
    visitor.get("/dashboard/signup").await;
    visitor
        .post(
            "/dashboard/signup",
            &[
                ("name", "Ada"),
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("language", "en"),
            ],
        )
        .await;
    // A browser on the node's machine, at the node's public address. The
    // mail goes out just after the answer.
    visitor.extra = vec![("host".into(), "localhost:8080".into())];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let page = visitor.get("/dashboard/outbox").await;
        assert_eq!(page.status, 200, "a loopback browser reads the outbox");
        if page.text().contains("/dashboard/verify/") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the verification mail reaches the outbox"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut rebound = Owner::new(app.port);
    rebound.extra = vec![("host".into(), "rebound.example:8080".into())];
    assert_eq!(
        rebound.get("/dashboard/outbox").await.status,
        404,
        "not under another name"
    );
    let mut proxied = Owner::new(app.port);
    proxied.extra = vec![
        ("host".into(), "localhost:8080".into()),
        ("x-forwarded-for".into(), "203.0.113.9".into()),
    ];
    assert_eq!(
        proxied.get("/dashboard/outbox").await.status,
        404,
        "not through a proxy"
    );

    // The demo owner exists and owns the demo store.
    let dir =
        mikabot::storage::StorageOptions::in_dir(app.dir.as_ref().expect("dir").path()).data_dir;
    let password =
        std::fs::read_to_string(dir.join("demo-owner-password")).expect("the password file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join("demo-owner-password"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let mut demo = Owner::new(app.port);
    assert_eq!(
        demo.sign_in("demo@mikabot.localhost", password.trim())
            .await
            .status,
        303
    );
    assert_eq!(
        demo.get("/dashboard/stores/demo/settings").await.status,
        200
    );
}

#[actix_web::test]
async fn the_operator_token_lists_and_suspends_accounts() {
    const TOKEN: &str = "operator-test-token-5e1f0a9b2c8d7e6f";
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |s| {
        s.operator.api_token = serde_json::from_value(json!(TOKEN)).expect("secret");
    })
    .await;
    let mut ada = signed_up(&app, &sink, "Ada", "ada@example.com").await;
    let base = format!("http://127.0.0.1:{}/v1/operator/accounts", app.port);
    let client = reqwest::Client::new();
    let refused = client.get(&base).send().await.expect("answer");
    assert_eq!(refused.status().as_u16(), 401);
    let list: serde_json::Value = client
        .get(&base)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    let accounts = list["accounts"].as_array().expect("a list");
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0]["email"], "ada@example.com");
    let id = accounts[0]["id"].as_str().expect("id").to_owned();
    let answer = client
        .post(format!("{base}/{id}/suspend"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(
        ada.get("/dashboard/stores").await.status,
        303,
        "the suspended account's sessions end"
    );
    let unknown = client
        .post(format!("{base}/{}/suspend", AccountId::new()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answer");
    assert_eq!(unknown.status().as_u16(), 404);
    let answer = client
        .post(format!("{base}/{id}/unsuspend"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(
        Owner::new(app.port)
            .sign_in("ada@example.com", PASSWORD)
            .await
            .status,
        303
    );
}

#[actix_web::test]
async fn an_invitation_to_a_deleted_store_does_not_open_one_made_later_under_its_id() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |_| {}).await;
    let mut attacker = signed_up(&app, &sink, "Mallory", "mallory@example.com").await;
    let store = created_store(&mut attacker, "Acme", "https://acme.example").await;
    let members = format!("/dashboard/stores/{store}/members");
    attacker.get(&members).await;
    attacker
        .post(
            &format!("{members}/invite"),
            &[("email", "mallory2@example.com"), ("role", "owner")],
        )
        .await;
    let invite = path_of(
        &sink
            .wait_for("mallory2@example.com")
            .await
            .link("/dashboard/invites/")
            .expect("link"),
    );
    attacker
        .get(&format!("/dashboard/stores/{store}/settings"))
        .await;
    let page = attacker
        .post(
            &format!("/dashboard/stores/{store}/delete"),
            &[("confirm", store.as_str())],
        )
        .await;
    assert_eq!(page.status, 303);
    let mut victim = signed_up(&app, &sink, "Victim", "victim@example.com").await;
    assert_eq!(
        created_store(&mut victim, "Acme", "https://acme.example").await,
        store
    );
    let mut second = signed_up(&app, &sink, "Mallory two", "mallory2@example.com").await;
    assert_eq!(
        second.get(&invite).await.status,
        404,
        "the invitation died with its store"
    );
    assert_eq!(second.post(&invite, &[]).await.status, 404);
    assert_eq!(
        second
            .get(&format!("/dashboard/stores/{store}"))
            .await
            .status,
        404
    );
}

#[actix_web::test]
async fn a_token_dies_when_its_maker_stops_being_an_owner() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |_| {}).await;
    let mut owner = signed_up(&app, &sink, "Ada", "ada@example.com").await;
    let store = created_store(&mut owner, "Shop", "https://koffie.example").await;
    let mut partner = signed_up(&app, &sink, "Bob", "bob@example.com").await;
    let bob = app
        .storage()
        .account_by_email("bob@example.com")
        .expect("read")
        .expect("account")
        .id;
    let id = StoreId::parse(&store).expect("id");
    app.storage()
        .set_member(&id, bob, mikabot::accounts::Role::Owner)
        .expect("member");
    let token = created_token(&mut partner, &store, "bob's script").await;
    let url = format!("http://127.0.0.1:{}/v1/stores/{store}/catalog", app.port);
    let client = reqwest::Client::new();
    let status = |token: String| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            client
                .put(url)
                .bearer_auth(token)
                .body(GOOD_FEED)
                .send()
                .await
                .expect("answer")
                .status()
                .as_u16()
        }
    };
    assert_eq!(status(token.clone()).await, 200);
    owner
        .get(&format!("/dashboard/stores/{store}/members"))
        .await;
    let page = owner
        .post(
            &format!("/dashboard/stores/{store}/members/{bob}/remove"),
            &[],
        )
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(
        status(token).await,
        401,
        "removed from the store, the token opens nothing"
    );
}

#[actix_web::test]
async fn an_email_change_is_confirmed_only_by_the_signed_in_account_and_a_reset_cancels_it() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |_| {}).await;
    let mut ada = signed_up(&app, &sink, "Ada", "ada@example.com").await;
    ada.get("/dashboard/account").await;
    ada.post(
        "/dashboard/account/email",
        &[("email", "new@example.com"), ("password", PASSWORD)],
    )
    .await;
    let link = path_of(
        &sink
            .wait_for("new@example.com")
            .await
            .link("/dashboard/email/")
            .expect("link"),
    );
    let mut stranger = Owner::new(app.port);
    assert_eq!(
        stranger.get(&link).await.status,
        303,
        "a signed-out browser is sent to sign in"
    );
    let mut other = signed_up(&app, &sink, "Bob", "bob@example.com").await;
    assert_eq!(
        other.get(&link).await.status,
        404,
        "another account cannot confirm it"
    );
    // A password reset cancels the pending change.
    let mut visitor = Owner::new(app.port);
    visitor.get("/dashboard/forgot").await;
    visitor
        .post("/dashboard/forgot", &[("email", "ada@example.com")])
        .await;
    let reset = path_of(
        &sink
            .wait_for("ada@example.com")
            .await
            .link("/dashboard/reset/")
            .expect("link"),
    );
    visitor.get(&reset).await;
    assert_eq!(
        visitor
            .post(&reset, &[("password", "a brand new password")])
            .await
            .status,
        200
    );
    let mut ada = Owner::new(app.port);
    ada.sign_in("ada@example.com", "a brand new password").await;
    assert_eq!(
        ada.get(&link).await.status,
        404,
        "the pending change died with the reset"
    );
    assert!(
        app.storage()
            .account_by_email("ada@example.com")
            .expect("read")
            .is_some()
    );
}

#[actix_web::test]
async fn the_cli_imports_through_a_running_node_with_a_store_token() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |_| {}).await;
    let mut owner = signed_up(&app, &sink, "Ada", "ada@example.com").await;
    let store = created_store(&mut owner, "Shop", "https://koffie.example").await;
    let token = created_token(&mut owner, &store, "cli").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let feed = dir.path().join("feed.csv");
    std::fs::write(&feed, GOOD_FEED).expect("write the feed");
    let url = format!("http://127.0.0.1:{}", app.port);
    let run = |token: Option<&str>| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_mikabot"));
        command
            .args(["import", "--store", &store, "--url", &url])
            .arg(&feed)
            .env("MIKABOT__STORAGE__DATA_DIR", dir.path().join("unused"))
            .env("MIKABOT__LOG__FILTER", "warn")
            .env_remove("MIKABOT__OPERATOR__API_TOKEN");
        match token {
            Some(token) => command.env("MIKABOT_TOKEN", token),
            None => command.env_remove("MIKABOT_TOKEN"),
        };
        command.output()
    };
    let without = run(None).await.expect("run the CLI");
    assert!(!without.status.success());
    assert!(String::from_utf8_lossy(&without.stderr).contains("MIKABOT_TOKEN"));
    let with = run(Some(&token)).await.expect("run the CLI");
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&with.stdout).expect("the report");
    assert_eq!(report["imported"], 2);
    let id = StoreId::parse(&store).expect("id");
    assert_eq!(app.storage().catalog(&id).expect("catalog").len(), 2);
}

#[actix_web::test]
async fn an_owner_changes_a_members_role_and_revokes_a_pending_invitation() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |_| {}).await;
    let mut owner = signed_up(&app, &sink, "Ada", "ada@example.com").await;
    let store = created_store(&mut owner, "Shop", "https://shop.example").await;
    let mut agent = signed_up(&app, &sink, "Agent", "agent@example.com").await;
    let agent_id = app
        .storage()
        .account_by_email("agent@example.com")
        .expect("read")
        .expect("account")
        .id;
    let id = StoreId::parse(&store).expect("id");
    app.storage()
        .set_member(&id, agent_id, mikabot::accounts::Role::Agent)
        .expect("member");
    let members = format!("/dashboard/stores/{store}/members");
    owner.get(&members).await;
    let page = owner
        .post(
            &format!("{members}/{agent_id}/role"),
            &[("role", "emperor")],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(page.text().contains("owner, agent or viewer"));
    let page = owner
        .post(&format!("{members}/{agent_id}/role"), &[("role", "owner")])
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(
        agent
            .get(&format!("/dashboard/stores/{store}/settings"))
            .await
            .status,
        200,
        "promoted"
    );
    let me = app
        .storage()
        .account_by_email("ada@example.com")
        .expect("read")
        .expect("account")
        .id;
    owner.get(&members).await;
    let page = owner
        .post(&format!("{members}/{me}/role"), &[("role", "viewer")])
        .await;
    assert_eq!(page.status, 403, "an owner does not demote themselves");

    owner.get(&members).await;
    owner
        .post(
            &format!("{members}/invite"),
            &[("email", "carol@example.com"), ("role", "viewer")],
        )
        .await;
    let invite = path_of(
        &sink
            .wait_for("carol@example.com")
            .await
            .link("/dashboard/invites/")
            .expect("link"),
    );
    let page = owner.get(&members).await;
    assert!(
        page.text().contains("carol@example.com"),
        "the pending invitation is listed"
    );
    let digest = app.storage().invitations(&id).expect("invitations")[0].digest;
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let page = owner
        .post(
            &format!("/dashboard/stores/{store}/invitations/{hex}/revoke"),
            &[],
        )
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(
        Owner::new(app.port).get(&invite).await.status,
        404,
        "the revoked link opens nothing"
    );
    let page = owner
        .post(
            &format!("/dashboard/stores/{store}/invitations/{hex}/revoke"),
            &[],
        )
        .await;
    assert_eq!(page.status, 404);
}

#[actix_web::test]
async fn owners_read_conversations_erase_a_shoppers_by_their_address_and_export_the_store() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |s| s.privacy.erasure_interval_secs = 1).await;
    let mut ada = signed_up(&app, &sink, "Ada", "ada@example.com").await;
    let store = created_store(&mut ada, "Koffie", "https://koffie.example").await;
    let mut ids = Vec::new();
    for text in ["reach me at Jan@Example.com please", "just looking"] {
        let mut shopper = crate::helpers::Shopper::connect_from(
            &app.ws_url(&store),
            Some("https://koffie.example"),
        )
        .await;
        let ready = shopper.hello(json!({})).await;
        assert_eq!(shopper.ask("c1", text).await.end["type"], "done");
        shopper.close().await;
        ids.push(ready["conversation_id"].as_str().expect("id").to_owned());
    }
    let list = ada
        .get(&format!("/dashboard/stores/{store}/conversations"))
        .await;
    assert_eq!(list.status, 200);
    let refused = ada
        .get(&format!(
            "/dashboard/stores/{store}/conversations?before=nope"
        ))
        .await;
    assert_eq!(refused.status, 400, "a page that names no conversation");
    for id in &ids {
        assert!(list.body.contains(id.as_str()), "{id} is listed");
    }
    let transcript = ada
        .get(&format!(
            "/dashboard/stores/{store}/conversations/{}",
            ids[0]
        ))
        .await;
    assert_eq!(transcript.status, 200);
    assert!(
        transcript
            .body
            .contains("reach me at Jan@Example.com please")
    );

    // A count first; nothing is erased by it.
    ada.get(&format!("/dashboard/stores/{store}/privacy")).await;
    let preview = ada
        .post(
            &format!("/dashboard/stores/{store}/privacy/erase"),
            &[("kind", "email"), ("value", "jan@example.com")],
        )
        .await;
    assert_eq!(preview.status, 200);
    assert!(
        preview
            .body
            .contains("1 conversations with 2 messages match"),
        "{}",
        preview.body
    );
    let still = ada
        .get(&format!(
            "/dashboard/stores/{store}/conversations/{}",
            ids[0]
        ))
        .await;
    assert_eq!(still.status, 200, "a count erases nothing");
    let bad = ada
        .post(
            &format!("/dashboard/stores/{store}/privacy/erase"),
            &[("kind", "phone"), ("value", "12")],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("8 to 15 digits"));
    ada.get(&format!("/dashboard/stores/{store}/privacy")).await;
    let erased = ada
        .post(
            &format!("/dashboard/stores/{store}/privacy/erase"),
            &[
                ("kind", "email"),
                ("value", "jan@example.com"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(erased.status, 200);
    assert!(
        erased.body.contains("1 conversations are being erased"),
        "{}",
        erased.body
    );
    let gone = ada
        .get(&format!(
            "/dashboard/stores/{store}/conversations/{}",
            ids[0]
        ))
        .await;
    assert_eq!(gone.status, 404, "hidden at once");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let page = ada.get(&format!("/dashboard/stores/{store}/privacy")).await;
        if page.body.contains("<td>contact</td><td>done</td>") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no receipt: {}",
            page.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // The export holds the other conversation and not the erased one.
    let export = ada.get(&format!("/dashboard/stores/{store}/export")).await;
    assert_eq!(export.status, 200);
    let export: Value = serde_json::from_str(&export.body).expect("JSON");
    assert_eq!(export["schema"], "mikabot.store-export/1");
    assert_eq!(export["store"]["name"], "Koffie");
    let exported: Vec<&str> = export["conversations"]
        .as_array()
        .expect("conversations")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(exported, vec![ids[1].as_str()]);
    assert!(
        !export
            .to_string()
            .to_lowercase()
            .contains("jan@example.com")
    );

    // The owner deletes the other one from its page.
    ada.get(&format!(
        "/dashboard/stores/{store}/conversations/{}",
        ids[1]
    ))
    .await;
    let deleted = ada
        .post(
            &format!("/dashboard/stores/{store}/conversations/{}/delete", ids[1]),
            &[],
        )
        .await;
    assert_eq!(deleted.status, 303);
    let list = ada
        .get(&format!("/dashboard/stores/{store}/conversations"))
        .await;
    assert!(list.body.contains("No conversations"), "{}", list.body);

    // The account's own data.
    let mine = ada.get("/dashboard/account/export").await;
    assert_eq!(mine.status, 200);
    let mine: Value = serde_json::from_str(&mine.body).expect("JSON");
    assert_eq!(mine["account"]["email"], "ada@example.com");
    assert_eq!(mine["stores"][0]["role"], "owner");
    assert!(
        !mine.to_string().contains("argon2"),
        "never the password hash"
    );
    app.stop().await;
}
