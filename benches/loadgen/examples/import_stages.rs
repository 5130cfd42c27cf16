//! Reports peak memory after each stage of importing a feed, to find what
//! an import's memory is spent on:
//! `cargo run --release -p mikabot-loadgen --example import_stages -- feed.xml`.

use mikabot_actors::catalog::Currency;

fn peak_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: import_stages FEED"))?;
    println!("start: peak {} MiB", peak_mib());
    let parsed = mikabot::import::parse(
        std::fs::File::open(&path)?,
        "https://shop.example",
        Currency::parse("EUR")?,
    )?;
    println!(
        "parsed {} products: peak {} MiB",
        parsed.products.len(),
        peak_mib()
    );
    let dir = tempfile::tempdir()?;
    let storage =
        mikabot::storage::Storage::open(&mikabot::storage::StorageOptions::in_dir(dir.path()))?;
    let store = mikabot_actors::ids::StoreId::parse("demo")?;
    storage.replace_catalog(&store, &parsed.products)?;
    println!("written to sled: peak {} MiB", peak_mib());
    let products: Vec<_> = parsed
        .products
        .into_iter()
        .map(std::sync::Arc::new)
        .collect();
    let index = mikabot_actors::search::SearchIndex::build(
        products,
        mikabot_actors::language::Language::En,
    );
    println!("indexed {}: peak {} MiB", index.len(), peak_mib());
    Ok(())
}
