//! Product search benchmarks on generated catalogs of 1k, 10k and 100k
//! products: latency per query over the relevance set's shopper queries
//! (p50, p99, max), index build time, and memory per product (counted by
//! the allocator), followed by criterion's own measurements.
//!
//! `cargo bench -p mikabot-loadgen --bench search` (add `-- --quick` for a shorter run).

#![allow(unsafe_code)] // The counting allocator below needs it; nothing else does.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use mikabot_actors::language::{Language, detect};
use mikabot_actors::search::SearchIndex;
use mikabot_loadgen::relevance::{QUERIES_TSV, parse_judgements};

/// Counts live heap bytes so memory per product is measured, not guessed.
struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from this allocator with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

/// The shopper queries of the relevance set, with their detected language.
fn query_mix() -> Vec<(String, Language)> {
    parse_judgements(QUERIES_TSV)
        .unwrap_or_else(|e| panic!("the relevance set parses: {e}"))
        .into_iter()
        .map(|j| {
            let language = detect(&j.query, j.language);
            (j.query, language)
        })
        .collect()
}

fn index_of(products: Vec<mikabot_actors::catalog::Product>) -> SearchIndex {
    SearchIndex::build(products.into_iter().map(Arc::new).collect(), Language::En)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank]
}

/// Latency per query, build time and memory, as a Markdown table.
fn report() {
    let mix = query_mix();
    println!(
        "| products | build | index bytes/product | catalog+index bytes/product | p50 | p99 | max | queries timed |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut slowest_by_size = Vec::new();
    for size in SIZES {
        let before_catalog = LIVE_BYTES.load(Ordering::Relaxed);
        let products =
            mikabot_loadgen::synthetic::catalog(size).unwrap_or_else(|e| panic!("catalog: {e}"));
        let before_index = LIVE_BYTES.load(Ordering::Relaxed);
        let started = Instant::now();
        let index = index_of(products);
        let build = started.elapsed();
        let after = LIVE_BYTES.load(Ordering::Relaxed);
        let index_bytes = (after - before_index) / size;
        let total_bytes = (after - before_catalog) / size;

        // Steady state, as a serving node sees it: one untimed pass first.
        for (query, language) in &mix {
            black_box(index.find(query, *language, 10));
        }
        let rounds = (200_000 / size).clamp(20, 50);
        let mut samples = Vec::with_capacity(rounds * mix.len());
        let mut per_query = vec![Duration::ZERO; mix.len()];
        for _ in 0..rounds {
            for (i, (query, language)) in mix.iter().enumerate() {
                let started = Instant::now();
                black_box(index.find(black_box(query), *language, 10));
                let took = started.elapsed();
                samples.push(took);
                per_query[i] += took;
            }
        }
        samples.sort_unstable();
        let mut slowest: Vec<(Duration, &str)> = per_query
            .iter()
            .zip(&mix)
            .map(|(total, (query, _))| (*total / rounds as u32, query.as_str()))
            .collect();
        slowest.sort_unstable_by_key(|s| std::cmp::Reverse(s.0));
        slowest_by_size.push((
            size,
            slowest
                .into_iter()
                .take(5)
                .map(|(d, q)| format!("{q:?} {:.0} µs", d.as_secs_f64() * 1e6))
                .collect::<Vec<_>>(),
        ));
        println!(
            "| {size} | {:.0} ms | {index_bytes} | {total_bytes} | {:.1} µs | {:.1} µs | {:.1} µs | {} |",
            build.as_secs_f64() * 1e3,
            percentile(&samples, 0.50).as_secs_f64() * 1e6,
            percentile(&samples, 0.99).as_secs_f64() * 1e6,
            samples.last().map_or(0.0, |d| d.as_secs_f64() * 1e6),
            samples.len(),
        );
    }
    for (size, slowest) in slowest_by_size {
        println!("slowest queries at {size}: {}", slowest.join(", "));
    }
}

fn criterion_benches(c: &mut Criterion) {
    let mix = query_mix();
    for size in SIZES {
        let products =
            mikabot_loadgen::synthetic::catalog(size).unwrap_or_else(|e| panic!("catalog: {e}"));
        let mut group = c.benchmark_group("search");
        group.sample_size(if size >= 100_000 { 10 } else { 30 });
        group.bench_with_input(BenchmarkId::new("build", size), &products, |b, products| {
            b.iter(|| index_of(products.clone()));
        });
        let index = index_of(products);
        group.bench_with_input(BenchmarkId::new("query_mix", size), &index, |b, index| {
            b.iter(|| {
                for (query, language) in &mix {
                    black_box(index.find(query, *language, 10));
                }
            });
        });
        group.finish();
    }
}

fn main() {
    report();
    let mut criterion = Criterion::default().configure_from_args();
    criterion_benches(&mut criterion);
    criterion.final_summary();
}
