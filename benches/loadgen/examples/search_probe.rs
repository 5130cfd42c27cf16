//! Times one query against a generated catalog, for profiling the search:
//! `cargo run --release -p mikabot-loadgen --example search_probe -- "rain jacket" en 100000`
//! (then `perf record` the binary in target/release/examples).

use std::sync::Arc;
use std::time::Instant;

use mikabot_actors::language::Language;
use mikabot_actors::search::SearchIndex;

const ROUNDS: u32 = 5_000;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let query = args
        .next()
        .unwrap_or_else(|| "waterproof rain jacket".into());
    let language = args
        .next()
        .and_then(|tag| Language::from_tag(&tag))
        .unwrap_or(Language::En);
    let size: usize = args.next().map_or(Ok(100_000), |n| n.parse())?;
    let products = mikabot_loadgen::synthetic::catalog(size)?;
    let index = SearchIndex::build(products.into_iter().map(Arc::new).collect(), Language::En);
    // The first query loads the lexicons it needs; time the ones after it.
    std::hint::black_box(index.find(&query, language, 10));
    let started = Instant::now();
    for _ in 0..ROUNDS {
        std::hint::black_box(index.find(&query, language, 10));
    }
    println!(
        "{:?} per query ({size} products)",
        started.elapsed() / ROUNDS
    );
    Ok(())
}
