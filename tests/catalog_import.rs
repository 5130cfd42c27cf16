//! Catalog import through the operator API and the CLI: every format from
//! realistic sample feeds, the all-or-nothing rule, partial imports,
//! refusals, searches during a swap, and a restart that restores the index.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::helpers::{Shopper, TestApp, spawn_app, spawn_app_in};

const TOKEN: &str = "operator-test-token-5e1f0a9b2c8d7e6f";

fn feed(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/feeds")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

async fn node() -> TestApp {
    spawn_app(|s| {
        s.operator.api_token = serde_json::from_value(json!(TOKEN)).expect("secret");
    })
    .await
}

/// PUT (replace) or POST (upsert) a feed; returns status and JSON body.
async fn send(
    app: &TestApp,
    method: &str,
    query: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let url = format!(
        "http://127.0.0.1:{}/v1/stores/demo/catalog{query}",
        app.port
    );
    let client = reqwest::Client::new();
    let mut request = match method {
        "PUT" => client.put(&url),
        _ => client.post(&url),
    };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.body(body).send().await.expect("the node answers");
    let status = response.status().as_u16();
    let body = response.json().await.expect("a JSON body");
    (status, body)
}

async fn card_ids(app: &TestApp, question: &str) -> Vec<String> {
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    shopper.hello(json!({})).await;
    let reply = shopper.ask("q", question).await;
    assert_eq!(reply.end["type"], "done", "{}", reply.end);
    reply.card_ids()
}

#[actix_web::test]
async fn every_format_imports_and_becomes_searchable() {
    let app = node().await;
    let cases = [
        (
            "merchant.xml",
            "google_merchant_xml",
            3,
            "three person tent",
            "BW-TENT-3",
        ),
        (
            "merchant.tsv",
            "google_merchant_tsv",
            3,
            "Kaffeebohnen",
            "KF-100",
        ),
        (
            "shopify-products.json",
            "shopify_json",
            2,
            "merino sweater",
            "7012345678901",
        ),
        ("products.csv", "csv", 3, "glass teapot", "GL-01"),
        ("products.json", "json", 2, "city bike", "BK-1"),
    ];
    for (file, format, count, question, expected) in cases {
        let (status, report) = send(&app, "PUT", "", Some(TOKEN), feed(file)).await;
        assert_eq!(status, 200, "{file}: {report}");
        assert_eq!(report["format"], format, "{file}");
        assert_eq!(report["imported"], count, "{file}");
        assert_eq!(report["catalog_size"], count, "{file}");
        assert_eq!(report["rejected_count"], 0, "{file}");
        let ids = card_ids(&app, question).await;
        assert!(
            ids.iter().any(|id| id == expected),
            "{file}: {question:?} gave {ids:?}"
        );
    }
}

#[actix_web::test]
async fn imported_fields_are_mapped_exactly() {
    let app = node().await;
    let (status, _) = send(&app, "PUT", "", Some(TOKEN), feed("merchant.xml")).await;
    assert_eq!(status, 200);
    let store = mikabot_actors::ids::StoreId::parse("demo").expect("valid");
    let catalog = app.storage().catalog(&store).expect("catalog");
    let tent = catalog
        .iter()
        .find(|p| p.id.0 == "BW-TENT-3")
        .expect("the tent");
    assert_eq!(tent.price.minor, 28_900, "the sale price applies");
    assert_eq!(tent.category, "Tents");
    assert!(
        tent.description
            .contains("two porches & a 3000 mm flysheet")
    );
    let stove = catalog
        .iter()
        .find(|p| p.id.0 == "BW-STOVE-1")
        .expect("the stove");
    assert!(!stove.in_stock);
    assert_eq!(
        stove.description,
        "Compact gas stove, <b>boils a litre in 3 minutes</b>."
    );

    let (status, _) = send(&app, "PUT", "", Some(TOKEN), feed("shopify-products.json")).await;
    assert_eq!(status, 200);
    let catalog = app.storage().catalog(&store).expect("catalog");
    let sweater = catalog
        .iter()
        .find(|p| p.name == "Merino Crew Sweater")
        .expect("sweater");
    assert_eq!((sweater.price.minor, sweater.price_max), (8900, Some(9500)));
    assert_eq!(
        sweater.url,
        "http://localhost:8080/demo/products/merino-crew-sweater"
    );
    assert_eq!(
        sweater.description,
        "Fine merino wool sweater, knitted in Portugal."
    );
    let beanie = catalog
        .iter()
        .find(|p| p.name == "Cashmere Beanie")
        .expect("beanie");
    assert!(!beanie.in_stock, "no variant is available");
}

#[actix_web::test]
async fn one_bad_row_changes_nothing_by_default() {
    let app = node().await;
    let before = card_ids(&app, "yoga mat").await;
    assert!(!before.is_empty());
    let (status, report) = send(&app, "PUT", "", Some(TOKEN), feed("bad-rows.csv")).await;
    assert_eq!(status, 422, "{report}");
    assert_eq!(report["error"]["code"], "rows_rejected");
    assert_eq!(report["imported"], 0);
    assert_eq!(report["catalog_size"], 210, "the catalog as it stands");
    let rejected: Vec<(u64, String)> = report["rejected"]
        .as_array()
        .expect("rejections")
        .iter()
        .map(|r| {
            (
                r["row"].as_u64().expect("row"),
                r["field"].as_str().expect("field").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        [
            (2, "id".to_owned()),
            (3, "name".to_owned()),
            (4, "price".to_owned()),
            (5, "currency".to_owned()),
            (6, "url".to_owned()),
            (7, "id".to_owned()),
        ]
    );
    assert_eq!(report["rejected"][5]["reason"], "duplicate of row 1");
    assert_eq!(
        card_ids(&app, "yoga mat").await,
        before,
        "the old catalog still answers"
    );
    let store = mikabot_actors::ids::StoreId::parse("demo").expect("valid");
    assert_eq!(app.storage().catalog(&store).expect("catalog").len(), 210);
}

#[actix_web::test]
async fn partial_mode_imports_the_valid_rows_and_reports_the_rest() {
    let app = node().await;
    let (status, report) = send(
        &app,
        "PUT",
        "?mode=partial",
        Some(TOKEN),
        feed("bad-rows.csv"),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["mode"], "partial");
    assert_eq!(
        (report["rows"].as_u64(), report["imported"].as_u64()),
        (Some(8), Some(2))
    );
    assert_eq!(report["rejected_count"], 6);
    assert_eq!(report["catalog_size"], 2);
}

#[actix_web::test]
async fn a_partial_import_with_no_valid_row_leaves_the_catalog_as_it_was() {
    let app = node().await;
    let all_bad = b"id,title,price,link\nx1,,1.00,https://shop.example/x1\nx2,Thing,free,https://shop.example/x2\n".to_vec();
    for method in ["PUT", "POST"] {
        let (status, report) =
            send(&app, method, "?mode=partial", Some(TOKEN), all_bad.clone()).await;
        assert_eq!(status, 422, "{report}");
        assert_eq!(report["error"]["code"], "no_valid_rows");
        assert_eq!(report["rejected_count"], 2);
        assert_eq!(report["imported"], 0);
        assert_eq!(report["catalog_size"], 210, "the catalog as it stands");
    }
    let store = mikabot_actors::ids::StoreId::parse("demo").expect("valid");
    assert_eq!(app.storage().catalog(&store).expect("catalog").len(), 210);
    assert!(!card_ids(&app, "yoga mat").await.is_empty());
}

#[actix_web::test]
async fn upsert_adds_to_the_catalog() {
    let app = node().await;
    let (status, report) = send(&app, "POST", "", Some(TOKEN), feed("products.json")).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["scope"], "upsert");
    assert_eq!(report["catalog_size"], 212);
    assert!(
        card_ids(&app, "city bike")
            .await
            .contains(&"BK-1".to_owned())
    );
    assert!(
        !card_ids(&app, "yoga mat").await.is_empty(),
        "the demo products stay"
    );
}

#[actix_web::test]
async fn refusals_have_stable_codes() {
    let app = node().await;
    let cases = [
        (None, "", feed("products.csv"), 401, "unauthorized"),
        (
            Some("wrong-token"),
            "",
            feed("products.csv"),
            401,
            "unauthorized",
        ),
        (
            Some(TOKEN),
            "",
            feed("truncated.xml"),
            400,
            "malformed_feed",
        ),
        (Some(TOKEN), "", feed("unknown.txt"), 422, "unknown_format"),
        (Some(TOKEN), "", b"[]".to_vec(), 422, "empty_feed"),
        (
            Some(TOKEN),
            "?mode=sometimes",
            feed("products.csv"),
            400,
            "invalid_mode",
        ),
    ];
    for (token, query, body, status, code) in cases {
        let (got, body) = send(&app, "PUT", query, token, body).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let store = mikabot_actors::ids::StoreId::parse("demo").expect("valid");
    assert_eq!(
        app.storage().catalog(&store).expect("catalog").len(),
        210,
        "nothing changed"
    );

    let url = format!("http://127.0.0.1:{}/v1/stores/nope/catalog", app.port);
    let response = reqwest::Client::new()
        .put(url)
        .bearer_auth(TOKEN)
        .body("x")
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status().as_u16(), 404);
}

#[actix_web::test]
async fn the_api_is_off_without_a_token_and_uploads_are_bounded() {
    let app = spawn_app(|_| {}).await;
    let (status, body) = send(&app, "PUT", "", Some("anything"), feed("products.csv")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("catalog_api_disabled"))
    );

    let app = spawn_app(|s| {
        s.operator.api_token = serde_json::from_value(json!(TOKEN)).expect("secret");
        s.import.max_upload_bytes = 1024;
    })
    .await;
    let (status, body) = send(&app, "PUT", "", Some(TOKEN), feed("merchant.xml")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );
}

/// A feed of `count` tents whose ids start with `prefix`.
fn tent_feed(prefix: &str, count: usize) -> Vec<u8> {
    let mut csv = String::from("id,name,price,currency,url\n");
    for i in 0..count {
        csv.push_str(&format!(
            "{prefix}-{i},{prefix} Tent {i},{}.00,EUR,https://shop.example/{prefix}-{i}\n",
            100 + i
        ));
    }
    csv.into_bytes()
}

#[actix_web::test]
async fn searches_during_an_import_see_the_old_or_the_new_catalog_never_a_mix() {
    let app = spawn_app(|s| {
        s.operator.api_token = serde_json::from_value(json!(TOKEN)).expect("secret");
        s.widget.messages_per_minute = 1000;
    })
    .await;
    let (status, _) = send(&app, "PUT", "", Some(TOKEN), tent_feed("old", 2000)).await;
    assert_eq!(status, 200);
    let port = app.port;
    let searches = actix_web::rt::spawn(async move {
        let url = format!("ws://127.0.0.1:{port}/v1/widget/ws?store=demo");
        let mut shopper = Shopper::connect(&url).await;
        shopper.hello(json!({})).await;
        let mut seen = Vec::new();
        for i in 0..40 {
            let reply = shopper.ask(&format!("q{i}"), "tent").await;
            let ids: HashSet<String> = reply
                .card_ids()
                .iter()
                .map(|id| id.split('-').next().unwrap_or("").to_owned())
                .collect();
            seen.push(ids);
        }
        seen
    });
    for round in 0..4 {
        let prefix = if round % 2 == 0 { "new" } else { "old" };
        let (status, _) = send(&app, "PUT", "", Some(TOKEN), tent_feed(prefix, 2000)).await;
        assert_eq!(status, 200);
    }
    let seen = searches.await.expect("searches ran");
    assert_eq!(seen.len(), 40);
    for ids in &seen {
        assert_eq!(ids.len(), 1, "one reply mixed catalogs: {ids:?}");
    }
}

#[actix_web::test]
async fn an_imported_catalog_is_restored_after_a_restart() {
    let app = node().await;
    let (status, _) = send(&app, "PUT", "", Some(TOKEN), feed("products.csv")).await;
    assert_eq!(status, 200);
    let dir = app.stop().await;
    let app = spawn_app_in(dir, |_| {}).await;
    assert!(
        card_ids(&app, "matcha whisk")
            .await
            .contains(&"GL-02".to_owned())
    );
    let ids = card_ids(&app, "yoga mat").await;
    assert!(
        !ids.iter().any(|id| id.starts_with("yoga-mat")),
        "the demo catalog was replaced for good: {ids:?}"
    );
}

#[actix_web::test]
async fn the_cli_imports_into_a_stopped_node_and_refuses_a_running_one() {
    let app = node().await;
    let data_dir = app.dir.as_ref().expect("dir").path().to_path_buf();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/feeds/products.json");
    let cli = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mikabot"));
        command
            .args(["import", "--store", "demo"])
            .arg(&fixture)
            .envs(mikabot::storage::StorageOptions::env_in(&data_dir))
            .env("MIKABOT__LOG__FILTER", "warn");
        command
    };
    let running = cli().output().expect("run the CLI");
    assert!(!running.status.success());
    let stderr = String::from_utf8_lossy(&running.stderr);
    assert!(stderr.contains("in use by a running node"), "{stderr}");

    let dir = app.stop().await;
    let stopped = cli().output().expect("run the CLI");
    assert!(
        stopped.status.success(),
        "{}",
        String::from_utf8_lossy(&stopped.stderr)
    );
    let report: Value = serde_json::from_slice(&stopped.stdout).expect("a JSON report");
    assert_eq!(report["imported"], 2);

    let app = spawn_app_in(dir, |_| {}).await;
    assert!(
        card_ids(&app, "frame bag")
            .await
            .contains(&"BK-2".to_owned())
    );
}

#[actix_web::test]
async fn store_synonyms_take_effect_at_once() {
    let app = node().await;
    assert!(card_ids(&app, "kicks").await.is_empty());
    let url = format!("http://127.0.0.1:{}/v1/stores/demo/synonyms", app.port);
    let client = reqwest::Client::new();
    let response = client
        .put(&url)
        .bearer_auth(TOKEN)
        .body(json!({"synonyms": [["kicks", "sneakers"]]}).to_string())
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status().as_u16(), 200);
    let ids = card_ids(&app, "kicks").await;
    assert!(
        !ids.is_empty() && ids.iter().all(|id| id.starts_with("city-sneaker")),
        "{ids:?}"
    );

    for (body, status, code) in [
        (json!({"synonyms": [["lonely"]]}), 422, "invalid_synonyms"),
        (json!({"synonyms": [["", "x"]]}), 422, "invalid_synonyms"),
        (json!({"groups": []}), 400, "invalid_body"),
    ] {
        let response = client
            .put(&url)
            .bearer_auth(TOKEN)
            .body(body.to_string())
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status().as_u16(), status);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"]["code"], code);
    }
    let response = client.put(&url).body("{}").send().await.expect("answer");
    assert_eq!(response.status().as_u16(), 401);
    // The synonyms survive a restart.
    let dir = app.stop().await;
    let app = spawn_app_in(dir, |_| {}).await;
    assert!(!card_ids(&app, "kicks").await.is_empty());
}

#[actix_web::test]
async fn failed_operator_tokens_are_throttled_per_address_before_comparing() {
    let app = spawn_app(|s| {
        s.operator.api_token = serde_json::from_value(json!(TOKEN)).expect("secret");
        s.operator.failed_attempts_per_minute = 3;
    })
    .await;
    let url = format!("http://127.0.0.1:{}/v1/stores/demo/synonyms", app.port);
    let put = |token: &'static str| {
        reqwest::Client::new()
            .put(&url)
            .bearer_auth(token)
            .body(json!({"synonyms": [["kicks", "sneakers"]]}).to_string())
            .send()
    };
    for _ in 0..3 {
        let response = put("a-wrong-guess-that-is-long-enough-00")
            .await
            .expect("answer");
        assert_eq!(response.status().as_u16(), 401);
    }
    // Three failures in a minute lock the address out: even the right token
    // is refused unread, with when to retry.
    let response = put(TOKEN).await.expect("answer");
    assert_eq!(response.status().as_u16(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("ASCII")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "too_many_attempts");
}

#[test]
fn a_short_operator_token_is_refused_at_start_up_and_a_token_file_is_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let short = Command::new(env!("CARGO_BIN_EXE_mikabot"))
        .arg("check-config")
        .env("MIKABOT__OPERATOR__API_TOKEN", "short-token")
        .output()
        .expect("runs");
    assert!(!short.status.success());
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert!(
        stderr.contains("operator.api_token") && stderr.contains("at least 32"),
        "{stderr}"
    );
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).expect("write");
    let from_file = Command::new(env!("CARGO_BIN_EXE_mikabot"))
        .arg("check-config")
        .env("MIKABOT__OPERATOR__API_TOKEN_FILE", &file)
        .output()
        .expect("runs");
    assert!(
        from_file.status.success(),
        "{}",
        String::from_utf8_lossy(&from_file.stderr)
    );
    let printed = String::from_utf8_lossy(&from_file.stdout);
    assert!(
        printed.contains("[redacted]") && !printed.contains(TOKEN),
        "{printed}"
    );
    let missing = Command::new(env!("CARGO_BIN_EXE_mikabot"))
        .arg("check-config")
        .env("MIKABOT__OPERATOR__API_TOKEN_FILE", dir.path().join("nope"))
        .output()
        .expect("runs");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("operator.api_token_file"));
}

#[actix_web::test]
async fn prices_with_thousands_separators_import_and_ambiguous_ones_are_refused_with_the_reason() {
    let app = node().await;
    let expensive = "id,title,price,link\n\
        e1,Espresso Machine Pro,\"1,249.00 EUR\",https://shop.example/e1\n\
        e2,Espresso Machine Duo,\"1.249,00 €\",https://shop.example/e2\n\
        e3,Roaster,\"2 499,50 EUR\",https://shop.example/e3\n"
        .as_bytes()
        .to_vec();
    let (status, report) = send(&app, "POST", "", Some(TOKEN), expensive).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["imported"], 3);
    let store = mikabot_actors::ids::StoreId::parse("demo").expect("valid");
    let catalog = app.storage().catalog(&store).expect("catalog");
    let price = |id: &str| {
        catalog
            .iter()
            .find(|p| p.id.0 == id)
            .map(|p| p.price.minor)
            .expect("imported")
    };
    assert_eq!(
        (price("e1"), price("e2"), price("e3")),
        (124_900, 124_900, 249_950)
    );

    let ambiguous = "id,title,price,link\ne4,Grinder,\"1,249\",https://shop.example/e4\n"
        .as_bytes()
        .to_vec();
    let (status, report) = send(&app, "POST", "", Some(TOKEN), ambiguous).await;
    assert_eq!(status, 422, "{report}");
    assert_eq!(report["rejected"][0]["field"], "price");
    let reason = report["rejected"][0]["reason"].as_str().expect("a reason");
    assert!(reason.contains("ambiguous"), "{reason}");
    assert_eq!(report["catalog_size"], 213, "the catalog as it stands");
}
