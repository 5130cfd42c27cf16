//! Prints nDCG@10 and recall@10 of product search on the committed
//! relevance sets, per query language:
//! `cargo run --release -p mikabot-loadgen --bin relevance [-- --set NAME] [--per-query]`
//! (NAME: demo, demo-without-tags or koffie; every set without it).

use anyhow::bail;
use mikabot_loadgen::relevance::{Set, evaluate, summary};

fn main() -> anyhow::Result<()> {
    let mut per_query = false;
    let mut sets = Set::ALL.to_vec();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--per-query" => per_query = true,
            "--set" => {
                let Some(name) = args.next() else {
                    bail!("--set needs a name: demo, demo-without-tags or koffie");
                };
                let Some(set) = Set::from_name(&name) else {
                    bail!("unknown set {name:?}: demo, demo-without-tags or koffie");
                };
                sets = vec![set];
            }
            other => bail!("unknown argument {other:?} (--set NAME, --per-query)"),
        }
    }
    for set in sets {
        let judged = set.judgements()?;
        let index = set.index()?;
        let scores = evaluate(&judged, &index);
        println!("## {}\n", set.name());
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
        println!();
    }
    Ok(())
}
