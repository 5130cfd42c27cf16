//! `loadgen`: puts a node under load (`idle`, `chat`, `burst`) and reports
//! what it measured. See `docs/PERFORMANCE.md`.

fn main() -> anyhow::Result<()> {
    mikabot_loadgen::cli::main()
}
