//! The `mikabot` binary: parse the command line, load settings, run.

use clap::Parser;
use mikabot::cli::{Cli, Command};
use mikabot::config::Settings;
use mikabot::startup::Application;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref())?;
    mikabot::logging::init(&settings.log);
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => {
            println!("{settings:#?}");
            Ok(())
        }
        Command::Import(args) => mikabot::cli::import(&settings, args).await,
        Command::Golden(args) => mikabot::cli::golden(&settings, args).await,
        Command::CreateOperator(args) => mikabot::cli::create_account(&settings, args, true).await,
        Command::CreateOwner(args) => mikabot::cli::create_account(&settings, args, false).await,
        Command::CreateStore(args) => mikabot::cli::create_store(&settings, args).await,
        Command::Backup(args) => mikabot::cli::backup(&settings, args).await,
        Command::Restore(args) => mikabot::cli::restore(&settings, args),
        Command::RotateMasterKey => mikabot::cli::rotate_master_key(&settings),
        Command::Serve => {
            Application::build(settings)
                .await?
                .run_until_stopped(true)
                .await
        }
    }
}
