//! Prints nDCG@10 and recall@10 of product search on the committed
//! relevance set: `cargo run --release -p mikabot-loadgen --bin relevance [-- --per-query]`.

use std::sync::Arc;

use mikabot_actors::ids::StoreId;
use mikabot_actors::search::SearchIndex;
use mikabot_loadgen::relevance::{QUERIES_TSV, evaluate, parse_judgements, summary};

fn main() -> anyhow::Result<()> {
    let per_query = std::env::args().any(|a| a == "--per-query");
    let judged = parse_judgements(QUERIES_TSV)?;
    let (profile, products) =
        mikabot::demo::demo_store(StoreId::parse("demo")?, "http://localhost")?;
    // Built as the store actor builds it.
    let index = SearchIndex::build_with_synonyms(
        products.into_iter().map(Arc::new).collect(),
        profile.default_language,
        &profile.synonyms,
    );
    let scores = evaluate(&judged, &index);
    if per_query {
        for s in &scores {
            println!(
                "{:.3}\t{:.3}\t{}\t{}",
                s.ndcg,
                s.recall,
                s.language.code(),
                s.query
            );
        }
        println!();
    }
    println!("| queries | language | nDCG@10 | recall@10 |");
    println!("|---:|---|---:|---:|");
    for (language, count, ndcg, recall) in summary(&scores) {
        println!("| {count} | {language} | {ndcg:.3} | {recall:.3} |");
    }
    Ok(())
}
