//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
}
