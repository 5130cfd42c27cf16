//! The command line: `serve` (the default), `check-config`, `import`, the
//! provisioning commands `create-operator`, `create-owner` and
//! `create-store`, which validate exactly as the dashboard does, and
//! `backup` and `restore`.

use std::path::PathBuf;

use anyhow::{Context as _, anyhow, bail};
use clap::{Parser, Subcommand};
use mikabot_actors::ids::StoreId;

use crate::config::Settings;
use crate::import::{Mode, Scope};
use crate::storage::Storage;

/// Mikabot: a self-hosted server for AI shopping assistants.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// A TOML file whose values override the built-in defaults.
    #[arg(long, short, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the node (the default).
    Serve,
    /// Print the effective configuration, secrets redacted, and exit.
    CheckConfig,
    /// Import a catalog feed into a store, on a stopped node (directly into
    /// its data directory) or a running one (with --url).
    Import(ImportArgs),
    /// Replay a store's golden conversations on a running node and print
    /// each result with what changed since the last run; fails when one
    /// fails.
    Golden(GoldenArgs),
    /// Create a node operator account (lists and suspends accounts), on a
    /// stopped node. The password is read from standard input.
    CreateOperator(AccountArgs),
    /// Create a store owner's account, verified, on a stopped node. The
    /// password is read from standard input.
    CreateOwner(AccountArgs),
    /// Create a store owned by an existing account, on a stopped node.
    CreateStore(StoreArgs),
    /// Save a consistent backup of a running node into DIR (through its
    /// API, with the operator token). It holds no key: back the keyring up
    /// separately (docs/privacy.md).
    Backup(BackupArgs),
    /// Restore a backup from DIR into a stopped node's data directory,
    /// which must be empty unless --force.
    Restore(RestoreArgs),
    /// Seal the keyring under a new master key, on a stopped node (a new
    /// key file, or a key read from standard input when the key is given
    /// through the configuration or the environment).
    RotateMasterKey,
}

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The directory to save the backup in (created; must hold no backup).
    pub dir: PathBuf,
    /// The running node, like http://127.0.0.1:8080 (default: this
    /// configuration's port on 127.0.0.1).
    #[arg(long)]
    pub url: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct GoldenArgs {
    /// The store whose golden conversations to replay.
    #[arg(long)]
    pub store: String,
    /// The running node, like http://127.0.0.1:8080 (default: this
    /// configuration's port on 127.0.0.1).
    #[arg(long)]
    pub url: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The directory `mikabot backup` saved the backup in.
    pub dir: PathBuf,
    /// Replace what the data directory holds.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct AccountArgs {
    #[arg(long)]
    pub email: String,
    #[arg(long)]
    pub name: String,
    /// en, nl, fr, de, es or it.
    #[arg(long, default_value = "en")]
    pub language: String,
}

#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// The owner's email address (an existing account).
    #[arg(long)]
    pub owner: String,
    #[arg(long)]
    pub name: String,
    /// a-z, 0-9 and '-'; made from the name when absent.
    #[arg(long, default_value = "")]
    pub id: String,
    /// The shop's address, like https://shop.example.
    #[arg(long)]
    pub url: String,
    /// The catalog's language: en, nl, fr, de, es or it.
    #[arg(long, default_value = "en")]
    pub language: String,
    /// ISO 4217 currency, like EUR.
    #[arg(long, default_value = "EUR")]
    pub currency: String,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The store to import into.
    #[arg(long)]
    pub store: String,
    /// The feed: Google Merchant XML or TSV, Shopify products.json, CSV or
    /// JSON (detected from its content).
    pub file: PathBuf,
    /// Import the valid rows and report the rest, instead of all or nothing.
    #[arg(long)]
    pub partial: bool,
    /// Add or update products by id instead of replacing the catalog.
    #[arg(long)]
    pub upsert: bool,
    /// Import through the running node at this address
    /// (e.g. http://127.0.0.1:8080).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

/// The environment variable `mikabot import --url` reads a store's API
/// token from.
pub const STORE_TOKEN_ENV: &str = "MIKABOT_TOKEN";

/// Opens the data directory of a stopped node.
fn open_stopped(settings: &Settings) -> anyhow::Result<Storage> {
    let dir = &settings.storage.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    Storage::open(&settings.storage.options()).map_err(|e| {
        if e.to_string().contains("lock") {
            anyhow!(
                "the data directory {} is in use by a running node: stop it first",
                dir.display()
            )
        } else {
            anyhow!("opening {}: {e}", dir.display())
        }
    })
}

/// The password on standard input (its first line), checked like the
/// dashboard's. Never an argument: other users of the machine read argv.
fn password_from_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    crate::accounts::validate::new_password("password", &password).map_err(|e| anyhow!("{e}"))?;
    Ok(password)
}

/// Runs `mikabot create-operator` and `create-owner`.
pub async fn create_account(
    settings: &Settings,
    args: AccountArgs,
    operator: bool,
) -> anyhow::Result<()> {
    use crate::accounts::{Account, AccountId, now_secs, password, validate};
    let name = validate::name("name", &args.name).map_err(|e| anyhow!("--{e}"))?;
    let email = validate::email(&args.email).map_err(|e| anyhow!("--{e}"))?;
    let language = validate::language(&args.language).map_err(|e| anyhow!("--{e}"))?;
    let storage = open_stopped(settings)?;
    let secret = password_from_stdin()?;
    let account = Account {
        id: AccountId::new(),
        name,
        email: email.clone(),
        password_hash: password::hash(&secret)?,
        language,
        // Provisioned by the operator, who vouches for the address.
        verified: true,
        created: now_secs(),
        deleted_at: None,
        suspended: false,
        operator,
    };
    if storage.create_account(&account)?.is_err() {
        bail!("--email: an account with {email} exists");
    }
    storage.flush().await?;
    println!(
        "{}",
        serde_json::json!({"account": account.id.to_string(), "email": email, "operator": operator})
    );
    Ok(())
}

/// Runs `mikabot create-store`.
pub async fn create_store(settings: &Settings, args: StoreArgs) -> anyhow::Result<()> {
    let email = crate::accounts::validate::email(&args.owner)
        .map_err(|e| anyhow!("--owner: {}", e.message))?;
    let storage = open_stopped(settings)?;
    let owner = storage
        .account_by_email(&email)?
        .ok_or_else(|| anyhow!("--owner: no account has {email}"))?;
    let new = crate::dashboard::NewStore {
        name: args.name,
        id: args.id,
        url: args.url,
        language: args.language,
        currency: args.currency,
    };
    match crate::dashboard::create_store(&storage, owner.id, &new)? {
        Ok(profile) => {
            storage.flush().await?;
            println!(
                "{}",
                serde_json::json!({"store": profile.id.as_str(), "owner": email})
            );
            Ok(())
        }
        Err(errors) => {
            let lines: Vec<String> = errors.iter().map(|e| format!("--{e}")).collect();
            bail!("{}", lines.join("\n"))
        }
    }
}

/// A store's API token from the environment, or the operator token.
fn store_token(settings: &Settings, flag: &str) -> anyhow::Result<String> {
    // Never an argument: other users of the machine read argv.
    std::env::var(STORE_TOKEN_ENV)
        .ok()
        .filter(|t| !t.trim().is_empty())
        .or_else(|| {
            (!settings.operator.api_token.is_empty())
                .then(|| settings.operator.api_token.expose().to_owned())
        })
        .ok_or_else(|| {
            anyhow!(
                "{flag} needs a token: the store's API token in {STORE_TOKEN_ENV} (created in \
                 the dashboard), or the operator token in MIKABOT__OPERATOR__API_TOKEN or \
                 operator.api_token_file"
            )
        })
}

/// `mikabot golden`: replays a store's golden conversations through a
/// running node's API and prints the results.
pub async fn golden(settings: &Settings, args: GoldenArgs) -> anyhow::Result<()> {
    let store =
        StoreId::parse(&args.store).map_err(|e| anyhow!("--store {:?}: {e}", args.store))?;
    let token = store_token(settings, "mikabot golden")?;
    let url = args
        .url
        .unwrap_or_else(|| format!("http://127.0.0.1:{}", settings.server.port));
    let endpoint = format!("{}/v1/stores/{store}/golden/run", url.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .post(&endpoint)
        .bearer_auth(token.trim())
        .send()
        .await
        .with_context(|| format!("asking {endpoint}"))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .with_context(|| format!("reading the answer of {endpoint}"))?;
    if !status.is_success() {
        bail!(
            "the node refused the replay ({status}): {}",
            body["error"]["message"]
        );
    }
    for result in body["results"].as_array().into_iter().flatten() {
        let mark = if result["passed"] == true {
            "pass"
        } else {
            "FAIL"
        };
        println!("{mark}  {}", result["question"].as_str().unwrap_or(""));
        for check in result["checks"].as_array().into_iter().flatten() {
            if check["passed"] != true {
                println!(
                    "      {}: {}",
                    check["what"].as_str().unwrap_or(""),
                    check["detail"].as_str().unwrap_or("")
                );
            }
        }
        if let Some(error) = result["error"].as_str() {
            println!("      the model failed: {error}");
        }
        for change in result["changes"].as_array().into_iter().flatten() {
            println!("      changed: {}", change.as_str().unwrap_or(""));
        }
    }
    let (passed, failed) = (&body["passed"], &body["failed"]);
    println!(
        "{passed} passed, {failed} failed (model: {})",
        body["model"].as_str().unwrap_or("")
    );
    if failed.as_u64().unwrap_or(0) > 0 {
        bail!("{failed} golden conversations failed");
    }
    Ok(())
}

/// Runs `mikabot import`.
pub async fn import(settings: &Settings, args: ImportArgs) -> anyhow::Result<()> {
    let mode = if args.partial {
        Mode::Partial
    } else {
        Mode::AllOrNothing
    };
    let scope = if args.upsert {
        Scope::Upsert
    } else {
        Scope::Replace
    };
    let store =
        StoreId::parse(&args.store).map_err(|e| anyhow!("--store {:?}: {e}", args.store))?;
    match args.url {
        Some(url) => {
            let token = store_token(settings, "--url")?;
            let body = std::fs::read(&args.file)
                .with_context(|| format!("reading {}", args.file.display()))?;
            let mode = if args.partial {
                "partial"
            } else {
                "all_or_nothing"
            };
            let endpoint = format!(
                "{}/v1/stores/{store}/catalog?mode={mode}",
                url.trim_end_matches('/')
            );
            let client = reqwest::Client::new();
            let request = match scope {
                Scope::Replace => client.put(&endpoint),
                Scope::Upsert => client.post(&endpoint),
            };
            let response = request
                .bearer_auth(token)
                .body(body)
                .send()
                .await
                .with_context(|| format!("sending the feed to {endpoint}"))?;
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            println!("{text}");
            if !status.is_success() {
                bail!("the node refused the import ({status})");
            }
            Ok(())
        }
        None => {
            let dir = &settings.storage.data_dir;
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let storage = Storage::open(&settings.storage.options()).map_err(|e| {
                if e.to_string().contains("lock") {
                    anyhow!(
                        "the data directory {} is in use by a running node: import through it with --url",
                        dir.display()
                    )
                } else {
                    anyhow!("opening {}: {e}", dir.display())
                }
            })?;
            let profile = storage
                .store(&store)?
                .ok_or_else(|| anyhow!("no store {store} in {}", dir.display()))?;
            let file = std::fs::File::open(&args.file)
                .with_context(|| format!("opening {}", args.file.display()))?;
            let parsed = crate::import::parse(file, &profile.url, profile.currency)?;
            match crate::import::apply(&storage, &profile, None, parsed, mode, scope).await {
                Ok(report) => {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                    Ok(())
                }
                Err(refusal) => {
                    if let Some(report) = refusal.report() {
                        println!("{}", serde_json::to_string_pretty(report)?);
                    }
                    Err(refusal.into())
                }
            }
        }
    }
}

/// `mikabot backup DIR`: streams the running node's backup into
/// `DIR/mikabot.backup`, checks it whole, then writes `DIR/manifest.json`.
pub async fn backup(settings: &Settings, args: BackupArgs) -> anyhow::Result<()> {
    use crate::storage::backup::{BACKUP_FILE, read_backup};
    use std::io::Write as _;

    let url = args
        .url
        .unwrap_or_else(|| format!("http://127.0.0.1:{}", settings.server.port));
    if settings.operator.api_token.is_empty() {
        bail!(
            "a backup needs the operator token: MIKABOT__OPERATOR__API_TOKEN or operator.api_token_file"
        );
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let target = args.dir.join(BACKUP_FILE);
    if target.exists() {
        bail!(
            "{} already holds a backup: choose another directory",
            args.dir.display()
        );
    }
    let partial = args.dir.join(format!("{BACKUP_FILE}.partial"));
    let endpoint = format!("{}/v1/operator/backup", url.trim_end_matches('/'));
    let mut response = reqwest::Client::new()
        .post(&endpoint)
        .bearer_auth(settings.operator.api_token.expose().trim())
        .send()
        .await
        .with_context(|| format!("asking {endpoint} for a backup"))?;
    if !response.status().is_success() {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        bail!("the node refused the backup ({status}): {text}");
    }
    let mut file = std::fs::File::create(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    while let Some(chunk) = response
        .chunk()
        .await
        .context("the backup stream broke off")?
    {
        file.write_all(&chunk)
            .with_context(|| format!("writing {}", partial.display()))?;
    }
    file.sync_all()?;
    drop(file);
    let checked = std::fs::File::open(&partial)
        .map_err(anyhow::Error::from)
        .and_then(|f| {
            read_backup(std::io::BufReader::new(f), |_, _, _| Ok(())).map_err(anyhow::Error::from)
        });
    let summary = match checked {
        Ok(summary) => summary,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            bail!("the backup arrived incomplete or damaged, and was not kept: {error}");
        }
    };
    std::fs::rename(&partial, &target)?;
    let manifest = serde_json::json!({
        "format": "mikabot backup v1",
        "file": BACKUP_FILE,
        "entries": summary.entries,
        "bytes": summary.bytes,
        "sha256": crate::accounts::secret::to_hex(&summary.sha256),
        "created_at": crate::accounts::format_time(crate::accounts::now_secs()),
        "keys": "not included: restore with the keyring that was current when this backup was taken",
    });
    std::fs::write(
        args.dir.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    println!(
        "backup saved in {}: {} entries, {} bytes, sha256 {}",
        args.dir.display(),
        summary.entries,
        summary.bytes,
        crate::accounts::secret::to_hex(&summary.sha256)
    );
    Ok(())
}

/// `mikabot restore DIR`: into a stopped node's empty data directory
/// (or, with `--force`, one whose contents it replaces), then opened with
/// this configuration's keyring and every record checked.
pub fn restore(settings: &Settings, args: RestoreArgs) -> anyhow::Result<()> {
    use crate::storage::backup::{BACKUP_FILE, clear_stopped, restore_backup};

    let source = if args.dir.is_file() {
        args.dir.clone()
    } else {
        args.dir.join(BACKUP_FILE)
    };
    let open = || {
        std::fs::File::open(&source)
            .map(std::io::BufReader::new)
            .with_context(|| format!("opening the backup {}", source.display()))
    };
    let data_dir = &settings.storage.data_dir;
    let occupied = std::fs::read_dir(data_dir).is_ok_and(|mut entries| entries.next().is_some());
    if occupied && !args.force {
        bail!(
            "the data directory {} is not empty: restore into an empty one, or pass --force to replace what it holds",
            data_dir.display()
        );
    }
    // Whole and unchanged before anything is touched.
    crate::storage::backup::read_backup(open()?, |_, _, _| Ok(()))
        .map_err(|e| anyhow!("the backup {} cannot be restored: {e}", source.display()))?;
    // Restored beside the data directory first: what it holds is replaced
    // only once the whole backup is in.
    let mut staging = data_dir.as_os_str().to_os_string();
    staging.push(".restoring");
    let staging = std::path::PathBuf::from(staging);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).with_context(|| {
            format!("removing {} left by an earlier restore", staging.display())
        })?;
    }
    let summary = restore_backup(open()?, &staging)
        .map_err(|e| anyhow!("restoring {}: {e}", source.display()))?;
    if occupied {
        clear_stopped(data_dir).map_err(|e| {
            if e.to_string().contains("lock") {
                anyhow!(
                    "the data directory {} is in use by a running node: stop it first",
                    data_dir.display()
                )
            } else {
                anyhow!("emptying {}: {e}", data_dir.display())
            }
        })?;
    }
    if data_dir.exists() {
        std::fs::remove_dir(data_dir)
            .with_context(|| format!("replacing {}", data_dir.display()))?;
    }
    std::fs::rename(&staging, data_dir)
        .with_context(|| format!("moving the restored data into {}", data_dir.display()))?;
    let storage = Storage::open(&settings.storage.options()).map_err(|e| {
        anyhow!(
            "the backup was restored into {}, but does not open: {e}",
            data_dir.display()
        )
    })?;
    let counts = storage
        .check_all()
        .map_err(|e| anyhow!("the restored database has an unreadable record: {e}"))?;
    if counts.unreadable_conversations > 0 {
        bail!(
            "restored into {}, but {} conversations do not open with the keyring {}: restore the keyring that was current when the backup was taken (an erasure since then destroyed the key that opens them), before the node starts",
            data_dir.display(),
            counts.unreadable_conversations,
            settings.storage.keyring_path().display()
        );
    }
    println!(
        "restored {} entries into {}: {} stores, {} products, {} conversations, {} messages",
        summary.entries,
        data_dir.display(),
        counts.stores,
        counts.products,
        counts.conversations,
        counts.messages
    );
    Ok(())
}

/// `mikabot rotate-master-key`, on a stopped node: the keyring sealed under
/// a new master key. With a key file, the new key is made and put in its
/// place; with a key given whole (`storage.master_key`, the environment),
/// the new key is read from standard input, and the operator then gives it
/// instead.
pub fn rotate_master_key(settings: &Settings) -> anyhow::Result<()> {
    use crate::storage::keyring::{MasterKeySource, key_from_text};

    let storage = open_stopped(settings)?;
    let options = settings.storage.options();
    let new_key = match &options.master_key {
        MasterKeySource::File(_) => crate::storage::crypto::SecretKey::random(),
        MasterKeySource::Inline(_) => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the new master key from standard input")?;
            key_from_text(&line).ok_or_else(|| {
                anyhow!(
                    "the new master key is not 32 bytes as base64url (43 characters) or hex (64)"
                )
            })?
        }
    };
    storage
        .rotate_master_key(&options.master_key, new_key)
        .map_err(|e| anyhow!("rotating the master key: {e}"))?;
    match &options.master_key {
        MasterKeySource::File(path) => println!(
            "the keyring {} is sealed by a new master key, in {}; the old key no longer opens it",
            options.keyring.display(),
            path.display()
        ),
        MasterKeySource::Inline(_) => println!(
            "the keyring {} is sealed by the new master key: give it as storage.master_key (MIKABOT__STORAGE__MASTER_KEY) from now on; the old key no longer opens it",
            options.keyring.display()
        ),
    }
    Ok(())
}
