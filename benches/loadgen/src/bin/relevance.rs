//! Prints nDCG@10 and recall@10 of product search on the committed
//! relevance sets, per query language:
//! `cargo run --release -p mikabot-loadgen --bin relevance [-- --set NAME] [--per-query]`
//! (NAME: demo, demo-without-tags or koffie; every set without it).
//! `--show QUERY [--lang CODE]` prints what one query finds in each chosen
//! set instead (CODE: the language assumed when detection cannot tell).

use anyhow::bail;
use mikabot_actors::language::{Language, detect};
use mikabot_loadgen::relevance::{Set, evaluate, summary};

fn main() -> anyhow::Result<()> {
    let mut per_query = false;
    let mut show = None;
    let mut fallback = Language::En;
    let mut sets = Set::ALL.to_vec();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--per-query" => per_query = true,
            "--lang" => {
                let code = args.next().unwrap_or_default();
                let Some(language) = Language::from_tag(&code) else {
                    bail!("--lang needs a language: en, nl, fr, de, es or it");
                };
                fallback = language;
            }
            "--show" => {
                let Some(query) = args.next() else {
                    bail!("--show needs a query");
                };
                show = Some(query);
            }
            "--set" => {
                let Some(name) = args.next() else {
                    bail!("--set needs a name: demo, demo-without-tags or koffie");
                };
                let Some(set) = Set::from_name(&name) else {
                    bail!("unknown set {name:?}: demo, demo-without-tags or koffie");
                };
                sets = vec![set];
            }
            other => bail!(
                "unknown argument {other:?} (--set NAME, --per-query, --show QUERY [--lang CODE])"
            ),
        }
    }
    for set in sets {
        let index = set.index()?;
        if let Some(query) = &show {
            let language = detect(query, fallback);
            println!("## {}: {query} ({})\n", set.name(), language.code());
            for (rank, hit) in index.find(query, language, 10).iter().enumerate() {
                println!("{:>2}. {:.3}  {}", rank + 1, hit.score, hit.product.name);
            }
            println!();
            continue;
        }
        let judged = set.judgements()?;
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
