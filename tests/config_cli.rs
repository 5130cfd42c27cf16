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
        .output()
        .expect("run mikabot");
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("[redacted]"));
    assert!(!stdout.contains("sk-very-secret"));
}
