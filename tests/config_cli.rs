//! The binary's command line and configuration errors.

use std::process::Command;

fn mikabot() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mikabot"))
}

#[test]
fn a_bad_config_value_fails_start_up_naming_the_key() {
    let output = mikabot()
        .arg("check-config")
        .env("MIKABOT__WIDGET__MAX_MESSAGE_CHARS", "lots")
        .output()
        .expect("run mikabot");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("widget.max_message_chars"), "{stderr}");
}

#[test]
fn a_missing_config_file_is_reported() {
    let output = mikabot()
        .args(["--config", "/nonexistent/mikabot.toml", "check-config"])
        .output()
        .expect("run mikabot");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("mikabot.toml"), "{stderr}");
}

#[test]
fn an_unknown_argument_is_refused_with_usage() {
    let output = mikabot().arg("--frobnicate").output().expect("run mikabot");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--frobnicate") && stderr.contains("Usage"),
        "{stderr}"
    );
}

#[test]
fn the_effective_config_prints_without_secrets() {
    let output = mikabot()
        .arg("check-config")
        .env("MIKABOT__MODEL__API_KEY", "sk-very-secret")
        .env(
            "MIKABOT__STORAGE__MASTER_KEY",
            "a2V5LWtleS1rZXkta2V5LWtleS1rZXkta2V5LWtleS0",
        )
        .output()
        .expect("run mikabot");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("[redacted]"));
    assert!(!stdout.contains("sk-very-secret"));
    assert!(
        !stdout.contains("a2V5LWtleS1rZXkta2V5LWtleS1rZXkta2V5LWtleS0"),
        "the master key"
    );
}

/// Runs `mikabot ARGS` on `dir` with `stdin` as its standard input.
fn provision(dir: &std::path::Path, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write as _;
    let mut child = mikabot()
        .args(args)
        .envs(mikabot::storage::StorageOptions::env_in(dir))
        .env("MIKABOT__LOG__FILTER", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run mikabot");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write the password");
    child.wait_with_output().expect("mikabot ends")
}

#[test]
fn operators_provision_accounts_and_stores_from_scripts_with_the_dashboards_rules() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ok = provision(
        dir.path(),
        &[
            "create-owner",
            "--email",
            "Ada@Example.com",
            "--name",
            "Ada",
        ],
        "correct horse battery\n",
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("ada@example.com"));
    let operator = provision(
        dir.path(),
        &[
            "create-operator",
            "--email",
            "op@example.com",
            "--name",
            "Op",
        ],
        "another long password\n",
    );
    assert!(operator.status.success());

    // The dashboard's messages, field by field.
    for (args, stdin, message) in [
        (
            vec!["create-owner", "--email", "nope", "--name", "X"],
            "correct horse battery\n",
            "--email: an address like name@example.com",
        ),
        (
            vec!["create-owner", "--email", "b@example.com", "--name", "X"],
            "short\n",
            "password: at least 10 characters",
        ),
        (
            vec!["create-owner", "--email", "ada@example.com", "--name", "X"],
            "correct horse battery\n",
            "--email: an account with ada@example.com exists",
        ),
        (
            vec![
                "create-owner",
                "--email",
                "c@example.com",
                "--name",
                "X",
                "--language",
                "xx",
            ],
            "correct horse battery\n",
            "--language: one of en, nl, fr, de, es, it",
        ),
        (
            vec![
                "create-store",
                "--owner",
                "nobody@example.com",
                "--name",
                "S",
                "--url",
                "https://s.example",
            ],
            "",
            "--owner: no account has nobody@example.com",
        ),
        (
            vec![
                "create-store",
                "--owner",
                "ada@example.com",
                "--name",
                "S",
                "--url",
                "ftp://s",
            ],
            "",
            "--url: the shop's address, like https://shop.example",
        ),
        (
            vec![
                "create-store",
                "--owner",
                "ada@example.com",
                "--name",
                "S",
                "--id",
                "Bad!",
                "--url",
                "https://s.example",
            ],
            "",
            "--id: a store id is 1 to",
        ),
    ] {
        let out = provision(dir.path(), &args, stdin);
        assert!(!out.status.success(), "{args:?} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let store = provision(
        dir.path(),
        &[
            "create-store",
            "--owner",
            "ada@example.com",
            "--name",
            "Koffie & Co",
            "--url",
            "https://koffie.example",
        ],
        "",
    );
    assert!(
        store.status.success(),
        "{}",
        String::from_utf8_lossy(&store.stderr)
    );
    assert!(String::from_utf8_lossy(&store.stdout).contains("\"koffie-co\""));
    let again = provision(
        dir.path(),
        &[
            "create-store",
            "--owner",
            "ada@example.com",
            "--name",
            "Koffie & Co",
            "--url",
            "https://koffie.example",
        ],
        "",
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("--id: another store has this id"));

    let storage =
        mikabot::storage::Storage::open(&mikabot::storage::StorageOptions::in_dir(dir.path()))
            .expect("open");
    let ada = storage
        .account_by_email("ada@example.com")
        .expect("read")
        .expect("account");
    assert!(ada.verified && !ada.operator);
    assert!(
        storage
            .account_by_email("op@example.com")
            .expect("read")
            .expect("account")
            .operator
    );
    let id = mikabot_actors::ids::StoreId::parse("koffie-co").expect("id");
    assert_eq!(
        storage.member_role(&id, ada.id).expect("read"),
        Some(mikabot::accounts::Role::Owner)
    );
    assert_eq!(
        storage.accounts().expect("accounts").len(),
        2,
        "no refused command wrote anything"
    );
}

#[test]
fn the_master_key_is_rotated_on_a_stopped_node_and_the_old_one_no_longer_opens_the_keyring() {
    let dir = tempfile::tempdir().expect("temp dir");
    let created = provision(
        dir.path(),
        &[
            "create-owner",
            "--email",
            "rot@example.com",
            "--name",
            "Rot",
        ],
        "correct horse battery\n",
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let key_file = dir.path().join("master.key");
    let old_key = std::fs::read_to_string(&key_file).expect("the key file");
    let rotated = provision(dir.path(), &["rotate-master-key"], "");
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let new_key = std::fs::read_to_string(&key_file).expect("the key file");
    assert_ne!(old_key, new_key);
    assert!(!dir.path().join("master.key.new").exists());
    // The data reads with the new key.
    let options = mikabot::storage::StorageOptions::in_dir(dir.path());
    let storage = mikabot::storage::Storage::open(&options).expect("opens");
    assert!(
        storage
            .account_by_email("rot@example.com")
            .expect("read")
            .is_some()
    );
    drop(storage);
    // The old key is refused, clearly, and no new key is made.
    let mut with_old = options.clone();
    with_old.master_key =
        mikabot::storage::keyring::MasterKeySource::Inline(old_key.trim().to_owned());
    let error = mikabot::storage::Storage::open(&with_old)
        .err()
        .expect("refused");
    assert!(
        error.to_string().contains("does not open the keyring"),
        "{error}"
    );
    // A command told the old key through the environment refuses to run.
    let started = std::process::Command::new(env!("CARGO_BIN_EXE_mikabot"))
        .args([
            "create-store",
            "--owner",
            "rot@example.com",
            "--name",
            "Shop",
            "--url",
            "https://shop.example",
        ])
        .envs(mikabot::storage::StorageOptions::env_in(dir.path()))
        .env("MIKABOT__STORAGE__MASTER_KEY", old_key.trim())
        .env("MIKABOT__LOG__FILTER", "warn")
        .output()
        .expect("runs");
    assert!(!started.status.success());
    assert!(
        String::from_utf8_lossy(&started.stderr).contains("does not open the keyring"),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
}
