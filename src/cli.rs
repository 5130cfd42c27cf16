//! The command line: `serve` (the default), `check-config` and `import`.

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
            // Never an argument: other users of the machine read argv.
            let token = (!settings.operator.api_token.is_empty())
                .then(|| settings.operator.api_token.expose().to_owned())
                .ok_or_else(|| {
                    anyhow!(
                        "--url needs the node's operator token: set MIKABOT__OPERATOR__API_TOKEN \
                         or operator.api_token_file"
                    )
                })?;
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
            let storage = Storage::open(dir, settings.storage.cache_bytes()).map_err(|e| {
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
