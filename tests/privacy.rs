//! Privacy, end to end: encryption at rest, erasure reaching the
//! database, old copies of its files, memory and later prompts; the
//! erasure worker's supervisor.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mikabot::storage::{Storage, StorageOptions};
use mikabot_actors::ids::{ConversationId, SessionId, StoreId};
use mikabot_actors::log::ConversationLog;
use serde_json::{Value, json};

use crate::helpers::process::NodeProcess;
use crate::helpers::{Behavior, FakeOpenAi, Shopper, spawn_app};

const TOKEN: &str = "privacy-test-operator-token-0123456789abcdef";

fn every_file(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

fn copy_dir(from: &Path, to: &Path) {
    for file in every_file(from) {
        let target = to.join(file.strip_prefix(from).expect("inside"));
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&file, &target).expect("copy");
    }
}

/// Where any of `needles` (as UTF-8 and JSON-escaped) occurs in `bytes`.
fn found_in(bytes: &[u8], needles: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for needle in needles {
        let escaped = serde_json::to_string(needle).expect("json");
        let escaped = escaped.trim_matches('"');
        for form in [needle.as_str(), escaped] {
            if bytes.windows(form.len()).any(|w| w == form.as_bytes()) {
                found.push(form.to_owned());
            }
        }
    }
    found
}

fn scan(dir: &Path, needles: &[String]) -> Vec<(PathBuf, String)> {
    let mut hits = Vec::new();
    for file in every_file(dir) {
        let bytes = std::fs::read(&file).expect("read");
        for needle in found_in(&bytes, needles) {
            hits.push((file.clone(), needle));
        }
    }
    hits
}

async fn api(port: u16, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}{path}");
    let request = match method {
        "GET" => client.get(&url),
        "DELETE" => client.delete(&url),
        _ => client.post(&url),
    }
    .bearer_auth(TOKEN);
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    let response = request.send().await.expect("the node answers");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn wait_done(port: u16, request: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = api(
            port,
            "GET",
            &format!("/v1/stores/demo/erasures/{request}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        if body["state"] == "done" {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not carried out: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn a_canary_a_shopper_typed_is_gone_everywhere_once_erased_by_its_email_address() {
    let fake = FakeOpenAi::start().await;
    fake.always(Behavior::reply(&["Happy ", "to ", "help."]));
    let random = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let canary = format!("CANARY-{random}");
    let email = format!("jane.{random}@example.test");
    let phone = "+32 470 12 34 56".to_owned();
    let needles = vec![canary.clone(), email.clone(), phone.clone()];
    let dir = tempfile::tempdir().expect("temp dir");
    let node = NodeProcess::start(
        env!("CARGO_BIN_EXE_mikabot").as_ref(),
        dir.path(),
        &[
            ("MIKABOT__MODEL__PROVIDER", "openai"),
            ("MIKABOT__MODEL__BASE_URL", &fake.base_url),
            ("MIKABOT__MODEL__API_KEY", "sk-test"),
            ("MIKABOT__OPERATOR__API_TOKEN", TOKEN),
            ("MIKABOT__PRIVACY__ERASURE_INTERVAL_SECS", "1"),
            (
                "MIKABOT__LOG__FILTER",
                "mikabot=debug,mikabot_actors=debug,info",
            ),
        ],
    );

    // A shopper who types the canary, and one who does not.
    let mut shopper = Shopper::connect(&node.ws_url("demo")).await;
    let ready = shopper
        .hello(json!({"page_url": "https://shop.example/tents"}))
        .await;
    let conversation = ready["conversation_id"].as_str().expect("id").to_owned();
    let session = ready["session_id"].as_str().expect("session").to_owned();
    let text = format!("{canary} {email} {phone} do you have a tent?");
    assert_eq!(shopper.ask("c1", &text).await.end["type"], "done");
    let mut other = Shopper::connect(&node.ws_url("demo")).await;
    let other_ready = other.hello(json!({})).await;
    let kept = other_ready["conversation_id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        other.ask("k1", "a warm sleeping bag").await.end["type"],
        "done"
    );
    other.close().await;

    // Positive control: the API has it, the model saw it, and no file of
    // the data directory holds it in the clear, even before erasure.
    let (status, body) = api(
        node.port,
        "GET",
        &format!("/v1/stores/demo/conversations/{conversation}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.to_string().contains(&canary), "{body}");
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.body.to_string().contains(&canary))
    );
    let (status, export) = api(node.port, "GET", "/v1/stores/demo/export", None).await;
    assert_eq!(status, 200);
    assert_eq!(export["schema"], "mikabot.store-export/1");
    assert!(
        export["catalog"].as_array().is_some_and(|c| !c.is_empty()),
        "the catalog is in it"
    );
    assert!(
        export["pages"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["slug"] == "returns")),
        "the demo store's pages are in it"
    );
    assert!(export["golden"].as_array().is_some_and(|g| !g.is_empty()));
    assert!(export.to_string().contains(&canary), "the export has it");
    let hits = scan(dir.path(), &needles);
    assert!(hits.is_empty(), "in the clear before erasure: {hits:?}");
    // Nor the shopper's session id, the secret that would open it on a
    // live node: as text or as its 16 bytes.
    let raw_session = *SessionId::parse(&session).expect("id").as_bytes();
    for file in every_file(dir.path()) {
        let bytes = std::fs::read(&file).expect("read");
        assert!(
            found_in(&bytes, std::slice::from_ref(&session)).is_empty(),
            "{file:?}"
        );
        assert!(
            !bytes.windows(16).any(|w| w == raw_session),
            "{file:?} holds the session id"
        );
    }

    // A copy of the data directory as it is now: an old backup.
    let backup = tempfile::tempdir().expect("temp dir");
    copy_dir(
        &StorageOptions::in_dir(dir.path()).data_dir,
        &backup.path().join("db"),
    );

    // And a backup the way an operator takes one.
    let saved = backup.path().join("saved");
    let taken = mikabot(
        &[
            "backup",
            saved.to_str().expect("utf-8"),
            "--url",
            &format!("http://127.0.0.1:{}", node.port),
        ],
        &[("MIKABOT__OPERATOR__API_TOKEN", TOKEN.to_owned())],
    );
    assert!(
        taken.status.success(),
        "{}",
        String::from_utf8_lossy(&taken.stderr)
    );

    // Erased by the address, written differently.
    let (status, body) = api(
        node.port,
        "POST",
        "/v1/stores/demo/erasures",
        Some(json!({"scope": "email", "email": email.to_uppercase(), "dry_run": true})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["counts"]["conversations"], 1, "{body}");
    assert!(!body.to_string().contains(&canary));
    let (status, body) = api(
        node.port,
        "POST",
        "/v1/stores/demo/erasures",
        Some(json!({"scope": "email", "email": email.to_uppercase()})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let request = body["request_id"].as_str().expect("id").to_owned();
    // Hidden at once: the API answers 404 before the worker ran.
    let (status, _) = api(
        node.port,
        "GET",
        &format!("/v1/stores/demo/conversations/{conversation}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    // The shopper's live socket is closed, telling it why.
    let (_, code, reason) = shopper.until_closed().await;
    assert_eq!((code, reason.as_str()), (4410, "conversation_erased"));

    let receipt = wait_done(node.port, &request).await;
    assert_eq!(receipt["kind"], "contact");
    assert_eq!(receipt["counts"]["conversations"], 1);
    assert_eq!(receipt["counts"]["messages"], 2, "{receipt}");
    assert!(
        !receipt.to_string().contains(&random),
        "no personal data: {receipt}"
    );

    // The shopper comes back with the erased session: a new conversation,
    // whose prompt holds nothing of the erased one.
    let before = fake.requests().len();
    let mut back = Shopper::connect(&node.ws_url("demo")).await;
    let again = back.hello(json!({"session_id": session})).await;
    assert_ne!(
        again["conversation_id"].as_str(),
        Some(conversation.as_str())
    );
    assert_eq!(back.ask("b1", "anything else?").await.end["type"], "done");
    back.close().await;
    let later: Vec<_> = fake.requests().into_iter().skip(before).collect();
    assert!(!later.is_empty());
    for request in &later {
        assert!(
            found_in(request.body.to_string().as_bytes(), &needles).is_empty(),
            "{}",
            request.body
        );
    }
    let (status, export) = api(node.port, "GET", "/v1/stores/demo/export", None).await;
    assert_eq!(status, 200);
    assert!(
        found_in(export.to_string().as_bytes(), &needles).is_empty(),
        "no export has it"
    );
    assert!(
        export.to_string().contains(&kept),
        "the other conversation is exported"
    );
    let (status, list) = api(node.port, "GET", "/v1/stores/demo/conversations", None).await;
    assert_eq!(status, 200);
    assert!(!list.to_string().contains(&conversation), "{list}");
    assert!(
        list.to_string().contains(&kept),
        "the other conversation stays: {list}"
    );

    // The node stops; nothing anywhere holds the canary: data directory,
    // keyring, master key, the old copy, the log.
    node.terminate();
    let mut node = node;
    assert!(
        node.wait_for_exit(Duration::from_secs(30))
            .is_some_and(|s| s.success())
    );
    let hits = scan(dir.path(), &needles);
    assert!(hits.is_empty(), "after erasure: {hits:?}");
    let hits = scan(backup.path(), &needles);
    assert!(hits.is_empty(), "in the old copy: {hits:?}");
    let log = node.log().join("\n");
    assert!(found_in(log.as_bytes(), &needles).is_empty(), "in the log");
    assert!(
        found_in(log.as_bytes(), std::slice::from_ref(&random)).is_empty(),
        "in the log"
    );

    // The old copy, opened with the node's current keys: the erased
    // conversation no longer opens. Nor does the kept one *in the copy*:
    // the store key that wrapped both there was destroyed by the rotation
    // after the erasure (a backup restores with the keyring of its time;
    // docs/privacy.md). The live node still reads it.
    let current = StorageOptions::in_dir(dir.path());
    std::fs::copy(&current.keyring, backup.path().join("keyring")).expect("keyring");
    std::fs::copy(
        dir.path().join("master.key"),
        backup.path().join("master.key"),
    )
    .expect("key");
    let old = Storage::open(&StorageOptions::in_dir(backup.path())).expect("the copy opens");
    let demo = StoreId::parse("demo").expect("valid");
    let erased = ConversationId::parse(&conversation).expect("id");
    assert!(
        old.history(&demo, erased, usize::MAX)
            .expect("reads")
            .is_empty()
    );
    let session = SessionId::parse(&session).expect("id");
    assert_eq!(old.find_session(&demo, session).expect("reads"), None);
    // The operator's backup from before the erasure, restored with the
    // node's current keyring: the canary does not open there either.
    let restored = tempfile::tempdir().expect("temp dir");
    let restore = mikabot(
        &["restore", saved.to_str().expect("utf-8")],
        &[
            (
                "MIKABOT__STORAGE__DATA_DIR",
                restored.path().join("db").display().to_string(),
            ),
            (
                "MIKABOT__STORAGE__KEYRING_FILE",
                backup.path().join("keyring").display().to_string(),
            ),
            (
                "MIKABOT__STORAGE__MASTER_KEY_FILE",
                backup.path().join("master.key").display().to_string(),
            ),
        ],
    );
    // Restored, but the restore says so: the current keyring no longer
    // opens what the backup holds of this store.
    assert!(!restore.status.success());
    assert!(
        String::from_utf8_lossy(&restore.stderr).contains("do not open with the keyring"),
        "{}",
        String::from_utf8_lossy(&restore.stderr)
    );
    let mut from_backup = StorageOptions::in_dir(backup.path());
    from_backup.data_dir = restored.path().join("db");
    let restored_storage = Storage::open(&from_backup).expect("the restored backup opens");
    assert!(
        restored_storage
            .history(&demo, erased, usize::MAX)
            .expect("reads")
            .is_empty()
    );
    drop(restored_storage);
    let kept_id = ConversationId::parse(&kept).expect("id");
    assert!(
        old.history(&demo, kept_id, usize::MAX)
            .expect("reads")
            .is_empty()
    );
    drop(old);
    let live = Storage::open(&current).expect("the node's own directory opens");
    assert_eq!(
        live.history(&demo, kept_id, usize::MAX)
            .expect("reads")
            .len(),
        2
    );
    assert!(
        live.history(&demo, erased, usize::MAX)
            .expect("reads")
            .is_empty()
    );
}

#[actix_web::test]
async fn a_panicking_erasure_sweep_is_caught_and_the_work_completes_on_the_next_tick() {
    let app = spawn_app(|s| {
        s.operator.api_token = serde_json::from_value(json!(TOKEN)).expect("secret");
        s.privacy.erasure_interval_secs = 1;
    })
    .await;
    let privacy = app.privacy.clone().expect("privacy handles");
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    let ready = shopper.hello(json!({})).await;
    assert_eq!(shopper.ask("c1", "a tent").await.end["type"], "done");
    shopper.close().await;
    let conversation = ready["conversation_id"].as_str().expect("id").to_owned();

    privacy
        .erasure_panics
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let (status, body) = api(
        app.port,
        "DELETE",
        &format!("/v1/stores/demo/conversations/{conversation}"),
        None,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let receipt = wait_done(app.port, body["request_id"].as_str().expect("id")).await;
    assert_eq!(receipt["counts"]["conversations"], 1);
    assert_eq!(
        privacy
            .erasure_panics
            .load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the fault fired"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("mikabot_privacy_sweeps_failed_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("mikabot_erasures_pending 0"), "{metrics}");
    app.stop().await;
}

#[actix_web::test]
async fn erasure_requests_that_name_nothing_valid_are_refused_and_change_nothing() {
    let app = spawn_app(|s| {
        s.operator.api_token = serde_json::from_value(json!(TOKEN)).expect("secret");
    })
    .await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    let ready = shopper.hello(json!({})).await;
    assert_eq!(shopper.ask("c1", "a tent").await.end["type"], "done");
    let conversation = ready["conversation_id"].as_str().expect("id").to_owned();
    for (body, field) in [
        (json!({"scope": "everything"}), "scope"),
        (
            json!({"scope": "email", "email": "not an address"}),
            "email",
        ),
        (json!({"scope": "phone", "phone": "12"}), "phone"),
        (
            json!({"scope": "selection", "conversations": []}),
            "conversations",
        ),
        (
            json!({"scope": "selection", "conversations": ["nope"]}),
            "conversations",
        ),
        (json!({"scope": "session", "session": "x"}), "session"),
    ] {
        let (status, answer) = api(
            app.port,
            "POST",
            "/v1/stores/demo/erasures",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 422, "{body} -> {answer}");
        assert_eq!(answer["error"]["code"], "invalid_erasure");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let (status, answer) = api(
        app.port,
        "POST",
        "/v1/stores/demo/erasures",
        Some(json!({"scope": "email", "surprise": 1})),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("invalid_body"))
    );
    let (status, _) = api(
        app.port,
        "DELETE",
        "/v1/stores/demo/conversations/0190a5b2-0000-7000-8000-000000000001",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = api(app.port, "GET", "/v1/stores/nowhere/conversations", None).await;
    assert_eq!(status, 404);
    let unauthorised = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{}/v1/stores/demo/conversations",
            app.port
        ))
        .send()
        .await
        .expect("answer");
    assert_eq!(unauthorised.status().as_u16(), 401);
    // Nothing was erased: the conversation reads as before.
    let (status, body) = api(
        app.port,
        "GET",
        &format!("/v1/stores/demo/conversations/{conversation}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["messages"].as_array().map(Vec::len), Some(2));
    shopper.close().await;
    app.stop().await;
}

fn mikabot(args: &[&str], env: &[(&str, String)]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_mikabot"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("MIKABOT__LOG__FILTER", "warn")
        .output()
        .expect("mikabot runs")
}

#[actix_web::test]
async fn a_backup_of_a_running_node_restores_with_its_keyring_and_finds_every_conversation() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = NodeProcess::start(
        env!("CARGO_BIN_EXE_mikabot").as_ref(),
        dir.path(),
        &[("MIKABOT__OPERATOR__API_TOKEN", TOKEN)],
    );
    let mut conversations = Vec::new();
    for text in ["CANARY-backup-one a tent", "CANARY-backup-two a stove"] {
        let mut shopper = Shopper::connect(&node.ws_url("demo")).await;
        let ready = shopper.hello(json!({})).await;
        assert_eq!(shopper.ask("c1", text).await.end["type"], "done");
        shopper.close().await;
        conversations.push(ready["conversation_id"].as_str().expect("id").to_owned());
    }
    let saved = tempfile::tempdir().expect("temp dir");
    let target = saved.path().join("nightly");
    let target_arg = target.to_str().expect("utf-8");
    let url = format!("http://127.0.0.1:{}", node.port);
    let with_token = [("MIKABOT__OPERATOR__API_TOKEN", TOKEN.to_owned())];
    let backup = mikabot(&["backup", target_arg, "--url", &url], &with_token);
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    assert!(target.join("manifest.json").exists());
    let bytes = std::fs::read(target.join("mikabot.backup")).expect("the backup");
    assert!(
        found_in(&bytes, &["CANARY-backup".to_owned()]).is_empty(),
        "sealed in the backup"
    );
    let again = mikabot(&["backup", target_arg, "--url", &url], &with_token);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a backup"));
    let refused = mikabot(
        &[
            "backup",
            saved.path().join("other").to_str().expect("utf-8"),
            "--url",
            &url,
        ],
        &[(
            "MIKABOT__OPERATOR__API_TOKEN",
            "a-wrong-operator-token-that-is-long-enough-0000".to_owned(),
        )],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!saved.path().join("other").join("mikabot.backup").exists());

    let mut node = node;
    node.terminate();
    assert!(
        node.wait_for_exit(Duration::from_secs(30))
            .is_some_and(|s| s.success())
    );

    // Into a new data directory, with the node's keyring and master key.
    let keys = StorageOptions::in_dir(dir.path());
    let fresh = tempfile::tempdir().expect("temp dir");
    let env = [
        (
            "MIKABOT__STORAGE__DATA_DIR",
            fresh.path().join("db").display().to_string(),
        ),
        (
            "MIKABOT__STORAGE__KEYRING_FILE",
            keys.keyring.display().to_string(),
        ),
        (
            "MIKABOT__STORAGE__MASTER_KEY_FILE",
            dir.path().join("master.key").display().to_string(),
        ),
    ];
    let restored = mikabot(&["restore", target_arg], &env);
    let stdout = String::from_utf8_lossy(&restored.stdout);
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert!(stdout.contains("2 conversations, 4 messages"), "{stdout}");
    let occupied = mikabot(&["restore", target_arg], &env);
    assert!(!occupied.status.success());
    assert!(String::from_utf8_lossy(&occupied.stderr).contains("not empty"));
    let forced = mikabot(&["restore", target_arg, "--force"], &env);
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );

    let mut options = keys.clone();
    options.data_dir = fresh.path().join("db");
    let storage = Storage::open(&options).expect("the restored directory opens");
    let demo = StoreId::parse("demo").expect("valid");
    for conversation in &conversations {
        let id = ConversationId::parse(conversation).expect("id");
        let history = storage.history(&demo, id, usize::MAX).expect("reads");
        assert_eq!(history.len(), 2, "{conversation}");
        assert!(history[0].text.starts_with("CANARY-backup"));
    }
}

#[actix_web::test]
async fn a_restricted_conversation_stays_out_of_every_prompt_and_an_objection_is_recorded() {
    let fake = FakeOpenAi::start().await;
    fake.always(Behavior::reply(&["Noted."]));
    let app = crate::helpers::spawn_app_on(&fake, |s| {
        s.operator.api_token = serde_json::from_value(json!(TOKEN)).expect("secret");
    })
    .await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    let ready = shopper.hello(json!({})).await;
    let conversation = ready["conversation_id"].as_str().expect("id").to_owned();
    let session = ready["session_id"].as_str().expect("id").to_owned();
    assert_eq!(
        shopper.ask("c1", "my size is EARLIER-42").await.end["type"],
        "done"
    );
    assert_eq!(shopper.ask("c2", "and a hat").await.end["type"], "done");
    let last = fake.requests().last().expect("a request").body.to_string();
    assert!(
        last.contains("EARLIER-42"),
        "history is in the prompt before: {last}"
    );

    let path = format!("/v1/stores/demo/conversations/{conversation}/restriction");
    let (status, body) = api(app.port, "POST", &path, Some(json!({"restricted": true}))).await;
    assert_eq!(
        (status, body["restricted"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    assert_eq!(shopper.ask("c3", "and gloves").await.end["type"], "done");
    let last = fake.requests().last().expect("a request").body.to_string();
    assert!(
        !last.contains("EARLIER-42"),
        "restricted: no history: {last}"
    );
    assert!(
        last.contains("and gloves"),
        "the new message is still answered"
    );
    let (_, shown) = api(
        app.port,
        "GET",
        &format!("/v1/stores/demo/conversations/{conversation}"),
        None,
    )
    .await;
    assert_eq!(shown["restricted"], true);
    assert_eq!(
        shown["messages"].as_array().map(Vec::len),
        Some(6),
        "kept whole"
    );
    let (status, _) = api(app.port, "POST", &path, Some(json!({"restricted": "yes"}))).await;
    assert_eq!(status, 400, "a body that is not a boolean");
    let (status, body) = api(app.port, "POST", &path, Some(json!({"restricted": false}))).await;
    assert_eq!((status, body["restricted"].as_bool()), (200, Some(false)));
    assert_eq!(shopper.ask("c4", "and a scarf").await.end["type"], "done");
    let last = fake.requests().last().expect("a request").body.to_string();
    assert!(last.contains("EARLIER-42"), "lifted: history again");

    // The shopper objects; it is recorded for the session and exported.
    let objected = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/v1/stores/demo/shopper/object",
            app.port
        ))
        .json(&json!({"session_id": session}))
        .send()
        .await
        .expect("answer");
    assert_eq!(objected.status().as_u16(), 200);
    let (_, shown) = api(
        app.port,
        "GET",
        &format!("/v1/stores/demo/conversations/{conversation}"),
        None,
    )
    .await;
    assert!(shown["objected_at_ms"].as_u64().is_some(), "{shown}");
    let unknown = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/v1/stores/demo/shopper/object",
            app.port
        ))
        .json(&json!({"session_id": "6f1c2d3e-4b5a-4c6d-8e7f-000000000002"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(unknown.status().as_u16(), 404);
    shopper.close().await;
    app.stop().await;
}

#[actix_web::test]
async fn erasing_a_conversation_mid_reply_stops_the_reply_and_nothing_of_it_is_recorded() {
    let fake = FakeOpenAi::start().await;
    fake.always(Behavior::Stream {
        tokens: (0..60).map(|n| format!("w{n} ")).collect(),
        delay: Duration::from_millis(40),
    });
    let app = crate::helpers::spawn_app_on(&fake, |s| {
        s.operator.api_token = serde_json::from_value(json!(TOKEN)).expect("secret");
    })
    .await;
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    let ready = shopper.hello(json!({})).await;
    let conversation = ready["conversation_id"].as_str().expect("id").to_owned();
    let session = SessionId::parse(ready["session_id"].as_str().expect("id")).expect("id");
    shopper.message("c1", "a long answer please").await;
    assert_eq!(shopper.next().await.json()["type"], "ack");
    let mut tokens = 0;
    while tokens < 3 {
        if shopper.next().await.json()["type"] == "token" {
            tokens += 1;
        }
    }
    let (status, _) = api(
        app.port,
        "DELETE",
        &format!("/v1/stores/demo/conversations/{conversation}"),
        None,
    )
    .await;
    assert_eq!(status, 202);
    let (frames, code, _) = shopper.until_closed().await;
    assert_eq!(code, 4410);
    assert!(
        frames.iter().all(|f| f["type"] != "done"),
        "the reply did not run to its end: {frames:?}"
    );
    // Longer than the whole reply would have taken: nothing was recorded.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let demo = StoreId::parse("demo").expect("valid");
    let id = ConversationId::parse(&conversation).expect("id");
    assert!(
        app.storage()
            .history(&demo, id, usize::MAX)
            .expect("reads")
            .is_empty()
    );
    assert_eq!(
        app.storage().find_session(&demo, session).expect("reads"),
        None
    );
    app.stop().await;
}

#[actix_web::test]
async fn the_retention_sweeper_applies_the_policy_as_the_clock_passes_each_horizon() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use mikabot::privacy::Clock;
    use mikabot::privacy::retention::SweepNow;

    const DAY: u64 = 86_400_000;
    let start = mikabot_actors::log::now_ms();
    let clock = Arc::new(AtomicU64::new(start));
    let app = crate::helpers::spawn_app_with_clock(Clock::Fixed(Arc::clone(&clock)), |s| {
        s.operator.api_token = serde_json::from_value(json!(TOKEN)).expect("secret");
        s.privacy.erasure_interval_secs = 1;
    })
    .await;
    let privacy = app.privacy.clone().expect("privacy handles");
    let demo = StoreId::parse("demo").expect("valid");
    let set_retention = |days: Option<u32>| {
        let mut profile = app.storage().store(&demo).expect("read").expect("demo");
        profile.retention_days = days;
        app.storage().put_store(&profile).expect("write");
    };
    set_retention(Some(30));
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    let ready = shopper
        .hello(json!({"page_url": "https://shop.example/tents"}))
        .await;
    assert_eq!(shopper.ask("c1", "a tent").await.end["type"], "done");
    shopper.close().await;
    let old = ready["conversation_id"].as_str().expect("id").to_owned();
    let path = format!("/v1/stores/demo/conversations/{old}");
    let sweep = || async {
        privacy
            .retention
            .send(SweepNow)
            .await
            .expect("the sweeper answers");
    };
    let preview = || async {
        let (status, body) = api(app.port, "GET", "/v1/operator/retention/preview", None).await;
        assert_eq!(status, 200, "{body}");
        body["counts"].clone()
    };

    // Day 29: nothing is due, and a sweep keeps it.
    clock.store(start + 29 * DAY, Ordering::SeqCst);
    assert_eq!(preview().await["conversations"], 0);
    sweep().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(api(app.port, "GET", &path, None).await.0, 200);

    // Day 31: due. A sweep that panics is caught and changes nothing; the
    // next one does the work.
    clock.store(start + 31 * DAY, Ordering::SeqCst);
    let counts = preview().await;
    assert_eq!(
        (
            counts["conversations"].as_u64(),
            counts["messages"].as_u64()
        ),
        (Some(1), Some(2)),
        "{counts}"
    );
    privacy.retention_panics.store(1, Ordering::SeqCst);
    sweep().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while privacy.retention_panics.load(Ordering::SeqCst) != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the fault never fired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        api(app.port, "GET", &path, None).await.0,
        200,
        "the panicked sweep did nothing"
    );
    sweep().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while api(app.port, "GET", &path, None).await.0 != 404 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not erased by the sweep"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let receipts = app.storage().erasure_requests_of(&demo, 10).expect("read");
    assert_eq!(receipts[0].kind, "retention");
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", app.port))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("mikabot_privacy_sweeps_failed_total 1"),
        "{metrics}"
    );

    // Without a store retention, the text stays; 26 months and a day
    // later, the technical data goes.
    set_retention(None);
    let mut shopper = Shopper::connect(&app.ws_url("demo")).await;
    let ready = shopper
        .hello(json!({"page_url": "https://shop.example/stoves"}))
        .await;
    assert_eq!(shopper.ask("c1", "a stove").await.end["type"], "done");
    shopper.close().await;
    let kept = format!(
        "/v1/stores/demo/conversations/{}",
        ready["conversation_id"].as_str().expect("id")
    );
    let (_, before) = api(app.port, "GET", &kept, None).await;
    assert_eq!(before["page_url"], "https://shop.example/stoves");
    clock.store(
        mikabot::privacy::months_before(start, 0) + 10 * DAY,
        Ordering::SeqCst,
    );
    sweep().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        api(app.port, "GET", &kept, None).await.1["page_url"],
        "https://shop.example/stoves"
    );
    let later = start + 800 * DAY;
    assert!(
        mikabot::privacy::months_before(later, 26) > start,
        "past the horizon"
    );
    clock.store(later, Ordering::SeqCst);
    assert_eq!(preview().await["technical_data"], 1);
    sweep().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = api(app.port, "GET", &kept, None).await;
        assert_eq!(status, 200, "the conversation stays");
        if body["page_url"].is_null() {
            assert!(body["address"].is_null() && body["device"] == "", "{body}");
            assert_eq!(body["messages"].as_array().map(Vec::len), Some(2));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "technical data kept: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;
}

#[actix_web::test]
async fn an_erasure_killed_at_any_moment_completes_after_a_restart_and_spares_the_rest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let env = [
        ("MIKABOT__OPERATOR__API_TOKEN", TOKEN),
        ("MIKABOT__PRIVACY__ERASURE_INTERVAL_SECS", "1"),
    ];
    let binary: &Path = env!("CARGO_BIN_EXE_mikabot").as_ref();
    let mut survivor = None;
    for round in 0..6u64 {
        let mut node = NodeProcess::start(binary, dir.path(), &env);
        if survivor.is_none() {
            let mut shopper = Shopper::connect(&node.ws_url("demo")).await;
            let ready = shopper.hello(json!({})).await;
            assert_eq!(
                shopper.ask("s1", "a survivor's question").await.end["type"],
                "done"
            );
            shopper.close().await;
            survivor = Some(ready["conversation_id"].as_str().expect("id").to_owned());
        }
        let mut shopper = Shopper::connect(&node.ws_url("demo")).await;
        let ready = shopper.hello(json!({})).await;
        assert_eq!(shopper.ask("v1", "to be erased").await.end["type"], "done");
        shopper.close().await;
        let victim = ready["conversation_id"].as_str().expect("id").to_owned();
        let port = node.port;
        let path = format!("/v1/stores/demo/conversations/{victim}");
        let erase = tokio::spawn(async move { api(port, "DELETE", &path, None).await });
        // A different moment each round: before the answer, around the
        // worker's carrying out, after it.
        tokio::time::sleep(Duration::from_millis(round * 4)).await;
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &node.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(killed.success());
        assert!(node.wait_for_exit(Duration::from_secs(10)).is_some());
        let accepted = match erase.await {
            Ok((202, body)) => body["request_id"].as_str().map(str::to_owned),
            _ => None,
        };

        let mut node = NodeProcess::start(binary, dir.path(), &env);
        if let Some(request) = accepted {
            wait_done(node.port, &request).await;
            let (status, _) = api(
                node.port,
                "GET",
                &format!("/v1/stores/demo/conversations/{victim}"),
                None,
            )
            .await;
            assert_eq!(status, 404, "round {round}: erased after the restart");
        }
        let survivor = survivor.as_deref().expect("a survivor");
        let (status, body) = api(
            node.port,
            "GET",
            &format!("/v1/stores/demo/conversations/{survivor}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "round {round}: the survivor reads: {body}");
        assert_eq!(body["messages"].as_array().map(Vec::len), Some(2));
        node.terminate();
        assert!(
            node.wait_for_exit(Duration::from_secs(30))
                .is_some_and(|s| s.success())
        );
    }
    let storage = Storage::open(&StorageOptions::in_dir(dir.path())).expect("opens");
    let counts = storage.check_all().expect("every record reads");
    assert!(counts.conversations >= 1, "{counts:?}");
}
