//! Tenant isolation, as one table over every dashboard route: each route
//! in `mikabot::dashboard::ROUTES` must have a case here (a new route
//! without one fails `every_route_has_an_isolation_case`). Each store route
//! is tried with another owner's session (404, nothing of the store in the
//! body), with that owner's own store but this store's token and member
//! ids (404), with a lower role's session (403 where the route needs more),
//! and signed out (to sign-in); account and operator routes signed out and
//! with too little. Every form is a valid one, with the caller's own CSRF
//! token, so only authorisation stands between it and a change; at the end
//! nothing of the store has changed.

use std::collections::BTreeSet;

use mikabot::accounts::Role;
use mikabot::dashboard::{Access, ROUTES};
use mikabot_actors::ids::StoreId;

use crate::dashboard::{PASSWORD, created_store, node_with_mail, signed_up};
use crate::helpers::{Owner, SmtpSink};

const FEED: &str = "id,title,price,currency,link,image_link\n\
    x-1,Replaced Product,1.00,EUR,https://a.example/x-1,https://a.example/x-1.jpg\n";

/// A route's case: the path with its parameters filled in, and a valid
/// form for it. `{store}`, `{token}` and `{account}` are filled with the
/// victim's ids; `{own}` marks where a stranger's own store goes instead.
struct Case {
    method: &'static str,
    route: &'static str,
    path: &'static str,
    form: &'static [(&'static str, &'static str)],
}

const fn case(
    method: &'static str,
    route: &'static str,
    path: &'static str,
    form: &'static [(&'static str, &'static str)],
) -> Case {
    Case {
        method,
        route,
        path,
        form,
    }
}

const SETTINGS: &[(&str, &str)] = &[
    ("name", "Taken Over"),
    ("url", "https://evil.example"),
    ("allowed_origins", "https://evil.example"),
    ("position", "left"),
    ("language", "en"),
    ("color", "#000000"),
];

const CASES: &[Case] = &[
    case("GET", "/dashboard", "/dashboard", &[]),
    case(
        "GET",
        "/dashboard/static/{file}",
        "/dashboard/static/dashboard.css",
        &[],
    ),
    case("GET", "/dashboard/signup", "/dashboard/signup", &[]),
    case("POST", "/dashboard/signup", "/dashboard/signup", &[]),
    case(
        "GET",
        "/dashboard/verify/{token}",
        "/dashboard/verify/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        &[],
    ),
    case(
        "POST",
        "/dashboard/verify/resend",
        "/dashboard/verify/resend",
        &[],
    ),
    case("GET", "/dashboard/login", "/dashboard/login", &[]),
    case("POST", "/dashboard/login", "/dashboard/login", &[]),
    case("POST", "/dashboard/logout", "/dashboard/logout", &[]),
    case(
        "POST",
        "/dashboard/logout-everywhere",
        "/dashboard/logout-everywhere",
        &[],
    ),
    case("GET", "/dashboard/forgot", "/dashboard/forgot", &[]),
    case("POST", "/dashboard/forgot", "/dashboard/forgot", &[]),
    case(
        "GET",
        "/dashboard/reset/{token}",
        "/dashboard/reset/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        &[],
    ),
    case(
        "POST",
        "/dashboard/reset/{token}",
        "/dashboard/reset/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        &[],
    ),
    case(
        "GET",
        "/dashboard/email/{token}",
        "/dashboard/email/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        &[],
    ),
    case("GET", "/dashboard/account", "/dashboard/account", &[]),
    case(
        "POST",
        "/dashboard/account/email",
        "/dashboard/account/email",
        &[("email", "x@example.com"), ("password", PASSWORD)],
    ),
    case(
        "POST",
        "/dashboard/account/password",
        "/dashboard/account/password",
        &[("current", PASSWORD), ("password", "another long password")],
    ),
    case(
        "POST",
        "/dashboard/account/delete",
        "/dashboard/account/delete",
        &[("password", PASSWORD)],
    ),
    case(
        "POST",
        "/dashboard/account/restore",
        "/dashboard/account/restore",
        &[],
    ),
    case(
        "GET",
        "/dashboard/account/export",
        "/dashboard/account/export",
        &[],
    ),
    case("GET", "/dashboard/consent", "/dashboard/consent", &[]),
    case("POST", "/dashboard/consent", "/dashboard/consent", &[]),
    case("GET", "/dashboard/stores", "/dashboard/stores", &[]),
    case("GET", "/dashboard/stores/new", "/dashboard/stores/new", &[]),
    case(
        "POST",
        "/dashboard/stores/new",
        "/dashboard/stores/new",
        &[
            ("name", "New"),
            ("url", "https://new.example"),
            ("language", "en"),
            ("currency", "EUR"),
        ],
    ),
    case(
        "GET",
        "/dashboard/stores/{store}",
        "/dashboard/stores/{store}",
        &[],
    ),
    case(
        "GET",
        "/dashboard/stores/{store}/preview",
        "/dashboard/stores/{store}/preview",
        &[],
    ),
    case(
        "GET",
        "/dashboard/stores/{store}/live",
        "/dashboard/stores/{store}/live",
        &[],
    ),
    // The desk socket refuses before its upgrade; its cases (signed out,
    // another owner, another site, a viewer acting) run through real
    // handshakes in `desk.rs`.
    case(
        "GET",
        "/dashboard/stores/{store}/desk/socket",
        "/dashboard/stores/{store}/desk/socket",
        &[],
    ),
    case(
        "POST",
        "/dashboard/stores/{store}/conversations/delete",
        "/dashboard/stores/{store}/conversations/delete",
        &[],
    ),
    case(
        "GET",
        "/dashboard/stores/{store}/conversations",
        "/dashboard/stores/{store}/conversations",
        &[],
    ),
    case(
        "GET",
        "/dashboard/stores/{store}/conversations/{conversation}",
        "/dashboard/stores/{store}/conversations/{conversation}",
        &[],
    ),
    case(
        "POST",
        "/dashboard/stores/{store}/conversations/{conversation}/delete",
        "/dashboard/stores/{store}/conversations/{conversation}/delete",
        &[],
    ),
    case(
        "POST",
        "/dashboard/stores/{store}/conversations/{conversation}/restrict",
        "/dashboard/stores/{store}/conversations/{conversation}/restrict",
        &[("restricted", "yes")],
    ),
    case(
        "GET",
        "/dashboard/stores/{store}/privacy",
        "/dashboard/stores/{store}/privacy",
        &[],
    ),
    case(
        "POST",
        "/dashboard/stores/{store}/privacy/erase",
        "/dashboard/stores/{store}/privacy/erase",
        &[
            ("kind", "email"),
            ("value", "victim-shopper@example.com"),
            ("confirm", "yes"),
        ],
    ),
    case(
        "GET",
        "/dashboard/stores/{store}/export",
        "/dashboard/stores/{store}/export",
        &[],
    ),
    case(
        "GET",
        "/dashboard/stores/{store}/knowledge",
        "/dashboard/stores/{store}/knowledge",
        &[],
    ),
    case(
        "POST",
        "/dashboard/stores/{store}/knowledge",
        "/dashboard/stores/{store}/knowledge",
        &[
            ("title", "FAQ"),
            ("slug", "faq"),
            ("editing", "1"),
            ("url", ""),
            ("body", "Overwritten"),
        ],
    ),
    case(
        "GET",
        "/dashboard/stores/{store}/knowledge/{slug}",
        "/dashboard/stores/{store}/knowledge/{slug}",
        &[],
    ),
    case(
        "POST",
        "/dashboard/stores/{store}/knowledge/{slug}/delete",
        "/dashboard/stores/{store}/knowledge/{slug}/delete",
        &[],
    ),
    case(
        "GET",
        "/dashboard/stores/{store}/golden",
        "/dashboard/stores/{store}/golden",
        &[],
    ),
    case(
        "POST",
        "/dashboard/stores/{store}/golden",
        "/dashboard/stores/{store}/golden",
        &[("list", "[]")],
    ),
    case(
        "POST",
        "/dashboard/stores/{store}/golden/run",
        "/dashboard/stores/{store}/golden/run",
        &[],
    ),
    case(
        "POST",
        "/dashboard/stores/{store}/golden/add",
        "/dashboard/stores/{store}/golden/add",
        &[("question", "a stranger's question")],
    ),
    case(
        "POST",
        "/dashboard/stores/{store}/golden/{n}/delete",
        "/dashboard/stores/{store}/golden/1/delete",
        &[("question", "a tent")],
    ),
    case(
        "GET",
        "/dashboard/stores/{store}/settings",
        "/dashboard/stores/{store}/settings",
        &[],
    ),
    case(
        "POST",
        "/dashboard/stores/{store}/settings",
        "/dashboard/stores/{store}/settings",
        SETTINGS,
    ),
    case(
        "POST",
        "/dashboard/stores/{store}/delete",
        "/dashboard/stores/{store}/delete",
        &[("confirm", "victim-shop")],
    ),
    case(
        "PUT",
        "/dashboard/stores/{store}/catalog",
        "/dashboard/stores/{store}/catalog",
        &[],
    ),
    case(
        "GET",
        "/dashboard/stores/{store}/tokens",
        "/dashboard/stores/{store}/tokens",
        &[],
    ),
    case(
        "POST",
        "/dashboard/stores/{store}/tokens",
        "/dashboard/stores/{store}/tokens",
        &[("name", "stolen")],
    ),
    case(
        "POST",
        "/dashboard/stores/{store}/tokens/{token}/revoke",
        "/dashboard/stores/{store}/tokens/{token}/revoke",
        &[],
    ),
    case(
        "GET",
        "/dashboard/stores/{store}/members",
        "/dashboard/stores/{store}/members",
        &[],
    ),
    case(
        "POST",
        "/dashboard/stores/{store}/members/invite",
        "/dashboard/stores/{store}/members/invite",
        &[("email", "spy@example.com"), ("role", "owner")],
    ),
    case(
        "POST",
        "/dashboard/stores/{store}/members/{account}/remove",
        "/dashboard/stores/{store}/members/{account}/remove",
        &[],
    ),
    case(
        "POST",
        "/dashboard/stores/{store}/members/{account}/role",
        "/dashboard/stores/{store}/members/{account}/role",
        &[("role", "owner")],
    ),
    case(
        "POST",
        "/dashboard/stores/{store}/invitations/{invitation}/revoke",
        "/dashboard/stores/{store}/invitations/{invitation}/revoke",
        &[],
    ),
    case(
        "GET",
        "/dashboard/invites/{token}",
        "/dashboard/invites/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        &[],
    ),
    case(
        "POST",
        "/dashboard/invites/{token}",
        "/dashboard/invites/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        &[],
    ),
    case("GET", "/dashboard/operator", "/dashboard/operator", &[]),
    case(
        "POST",
        "/dashboard/operator/accounts/{account}/suspend",
        "/dashboard/operator/accounts/{account}/suspend",
        &[],
    ),
    case(
        "POST",
        "/dashboard/operator/accounts/{account}/unsuspend",
        "/dashboard/operator/accounts/{account}/unsuspend",
        &[],
    ),
    case("GET", "/dashboard/outbox", "/dashboard/outbox", &[]),
];

#[test]
fn every_route_has_an_isolation_case() {
    let routes: BTreeSet<(&str, &str)> = ROUTES.iter().map(|r| (r.method, r.path)).collect();
    let cases: BTreeSet<(&str, &str)> = CASES.iter().map(|c| (c.method, c.route)).collect();
    let missing: Vec<_> = routes.difference(&cases).collect();
    let stale: Vec<_> = cases.difference(&routes).collect();
    assert!(
        missing.is_empty(),
        "routes with no isolation case: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "cases for routes that do not exist: {stale:?}"
    );
    assert_eq!(CASES.len(), ROUTES.len(), "one case per route");
}

async fn send(
    client: &mut Owner,
    method: &str,
    path: &str,
    form: &[(&str, &str)],
) -> crate::helpers::Page {
    match method {
        "GET" => client.get(path).await,
        "PUT" => client.put(path, FEED.as_bytes().to_vec()).await,
        _ => client.post(path, form).await,
    }
}

/// Reads a page first so the client holds its own valid CSRF token.
async fn armed(client: &mut Owner) {
    client.get("/dashboard/consent").await;
}

#[actix_web::test]
async fn no_route_lets_another_owner_a_lower_role_or_a_stranger_reach_a_store() {
    let sink = SmtpSink::start().await;
    let app = node_with_mail(&sink, |s| {
        s.dashboard.login_failures_per_address = 1000;
        s.dashboard.emails_per_address_per_hour = 1000;
    })
    .await;
    let mut victim = signed_up(&app, &sink, "Victim", "victim@example.com").await;
    let store = created_store(&mut victim, "Victim Shop", "https://victim.example").await;
    assert_eq!(store, "victim-shop");
    let id = StoreId::parse(&store).expect("id");
    let storage = app.storage();
    victim
        .get(&format!("/dashboard/stores/{store}/tokens"))
        .await;
    victim
        .post(
            &format!("/dashboard/stores/{store}/tokens"),
            &[("name", "feed")],
        )
        .await;
    let token = storage.tokens(&id).expect("tokens")[0]
        .id
        .simple()
        .to_string();
    let mut viewer = signed_up(&app, &sink, "Viewer", "viewer@example.com").await;
    let mut agent = signed_up(&app, &sink, "Agent", "agent@example.com").await;
    let viewer_id = storage
        .account_by_email("viewer@example.com")
        .expect("read")
        .expect("account")
        .id;
    let agent_id = storage
        .account_by_email("agent@example.com")
        .expect("read")
        .expect("account")
        .id;
    storage
        .set_member(&id, viewer_id, Role::Viewer)
        .expect("member");
    storage
        .set_member(&id, agent_id, Role::Agent)
        .expect("member");
    let mut stranger = signed_up(&app, &sink, "Stranger", "stranger@example.com").await;
    let own = created_store(&mut stranger, "Stranger Shop", "https://stranger.example").await;
    let victim_id = storage
        .account_by_email("victim@example.com")
        .expect("read")
        .expect("account")
        .id;

    // A pending invitation, for the revocation route.
    victim
        .get(&format!("/dashboard/stores/{store}/members"))
        .await;
    let page = victim
        .post(
            &format!("/dashboard/stores/{store}/members/invite"),
            &[("email", "pending@example.com"), ("role", "viewer")],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let invitation: String = storage.invitations(&id).expect("invitations")[0]
        .digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();

    // A shopper's conversation in the store, with an address the erasure
    // form names.
    let mut shopper =
        crate::helpers::Shopper::connect_from(&app.ws_url(&store), Some("https://victim.example"))
            .await;
    let ready = shopper.hello(serde_json::json!({})).await;
    assert_eq!(
        shopper
            .ask("c1", "mail me at victim-shopper@example.com")
            .await
            .end["type"],
        "done"
    );
    shopper.close().await;
    let conversation = ready["conversation_id"]
        .as_str()
        .expect("a conversation id")
        .to_owned();
    let conversation_id = mikabot_actors::ids::ConversationId::parse(&conversation).expect("an id");

    // A knowledge page and a golden list, for their routes.
    let faq = mikabot_actors::knowledge::Page {
        slug: "faq".into(),
        title: "FAQ".into(),
        body: "Victim answers".into(),
        url: String::new(),
        updated_ms: 1,
    };
    storage.save_page(&id, &faq).expect("page");
    let goldens: Vec<mikabot_actors::golden::Golden> =
        serde_json::from_str(r#"[{"question": "a tent"}]"#).expect("golden");
    storage.put_goldens(&id, &goldens).expect("goldens");

    let profile_before = storage.store(&id).expect("read");
    let invitations_before = storage.invitations(&id).expect("invitations");
    let members_before = storage.members(&id).expect("members");
    let tokens_before = storage.tokens(&id).expect("tokens");
    let account_before = storage.account(victim_id).expect("read");
    let fill = |path: &str, store: &str| {
        path.replace("{store}", store)
            .replace("{token}", &token)
            .replace("{invitation}", &invitation)
            .replace("{conversation}", &conversation)
            .replace("{slug}", "faq")
            .replace(
                "{account}",
                &if path.contains("/operator/") {
                    victim_id.to_string()
                } else {
                    viewer_id.to_string()
                },
            )
    };

    let mut checked = 0;
    for route in ROUTES {
        let case = CASES
            .iter()
            .find(|c| c.method == route.method && c.route == route.path)
            .expect("every route has a case (see every_route_has_an_isolation_case)");
        let path = fill(case.path, &store);
        let what = format!("{} {}", case.method, case.route);
        if case.route.ends_with("/desk/socket") {
            checked += 1;
            continue;
        }
        match route.access {
            Access::Public => {
                let mut anonymous = Owner::new(app.port);
                armed(&mut anonymous).await;
                let page = send(&mut anonymous, case.method, &path, case.form).await;
                assert!(page.status < 500, "{what}: {}", page.status);
            }
            Access::Account => {
                let mut anonymous = Owner::new(app.port);
                armed(&mut anonymous).await;
                let page = send(&mut anonymous, case.method, &path, case.form).await;
                assert_eq!(page.status, 303, "{what} signed out");
                assert!(
                    page.location
                        .as_deref()
                        .unwrap_or("")
                        .starts_with("/dashboard/login"),
                    "{what}"
                );
            }
            Access::Operator => {
                let mut anonymous = Owner::new(app.port);
                armed(&mut anonymous).await;
                assert_eq!(
                    send(&mut anonymous, case.method, &path, case.form)
                        .await
                        .status,
                    303,
                    "{what} signed out"
                );
                armed(&mut stranger).await;
                assert_eq!(
                    send(&mut stranger, case.method, &path, case.form)
                        .await
                        .status,
                    403,
                    "{what} by an owner"
                );
            }
            Access::Store(min) => {
                // Signed out.
                let mut anonymous = Owner::new(app.port);
                armed(&mut anonymous).await;
                let page = send(&mut anonymous, case.method, &path, case.form).await;
                assert_eq!(page.status, 303, "{what} signed out");
                // Another owner, on this store.
                armed(&mut stranger).await;
                let page = send(&mut stranger, case.method, &path, case.form).await;
                assert_eq!(page.status, 404, "{what} by another owner");
                for secret in [
                    "Victim Shop",
                    "victim.example",
                    token.as_str(),
                    &viewer_id.to_string(),
                    "victim-shopper@example.com",
                ] {
                    assert!(!page.body.contains(secret), "{what} leaks {secret}");
                }
                // Another owner, on their own store with this store's ids.
                if [
                    "{token}",
                    "{account}",
                    "{invitation}",
                    "{conversation}",
                    "{slug}",
                ]
                .iter()
                .any(|p| case.path.contains(p))
                {
                    armed(&mut stranger).await;
                    let page = send(
                        &mut stranger,
                        case.method,
                        &fill(case.path, &own),
                        case.form,
                    )
                    .await;
                    assert_eq!(page.status, 404, "{what} with another store's ids");
                }
                // Lower roles.
                for (client, role) in [(&mut viewer, Role::Viewer), (&mut agent, Role::Agent)] {
                    armed(client).await;
                    let page = send(client, case.method, &path, case.form).await;
                    if role < min {
                        assert_eq!(page.status, 403, "{what} by a {}", role.as_str());
                        assert!(!page.body.contains(&token), "{what} leaks the token id");
                    } else {
                        assert!(
                            page.status < 400,
                            "{what} by a {}: {}",
                            role.as_str(),
                            page.status
                        );
                    }
                }
            }
        }
        checked += 1;
    }
    assert_eq!(checked, ROUTES.len());
    assert_eq!(
        mikabot_actors::log::ConversationLog::history(storage, &id, conversation_id, 10)
            .expect("read")
            .len(),
        2,
        "the conversation was neither erased nor changed"
    );
    assert!(
        !storage.is_restricted(&id, conversation_id).expect("read"),
        "nor restricted"
    );
    assert!(
        storage
            .erasure_requests_of(&id, 10)
            .expect("read")
            .is_empty(),
        "no erasure was filed"
    );
    assert_eq!(
        storage.store(&id).expect("read"),
        profile_before,
        "the store is unchanged"
    );
    assert_eq!(storage.members(&id).expect("members"), members_before);
    assert_eq!(
        storage.invitations(&id).expect("invitations"),
        invitations_before,
        "the pending invitation stands"
    );
    assert_eq!(storage.tokens(&id).expect("tokens"), tokens_before);
    assert_eq!(
        storage.pages(&id).expect("pages"),
        vec![faq],
        "the page stands"
    );
    assert_eq!(
        storage.goldens(&id).expect("goldens"),
        goldens,
        "the list stands"
    );
    assert!(
        storage.catalog(&id).expect("catalog").is_empty(),
        "no catalog was uploaded"
    );
    assert_eq!(
        storage.account(victim_id).expect("read"),
        account_before,
        "the owner's account is unchanged"
    );
    // And the owner can still do what the others could not.
    assert_eq!(
        victim
            .get(&format!("/dashboard/stores/{store}/settings"))
            .await
            .status,
        200
    );
    assert_eq!(
        Owner::new(app.port)
            .sign_in("victim@example.com", PASSWORD)
            .await
            .status,
        303
    );
}
