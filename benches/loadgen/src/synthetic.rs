//! Synthetic catalogs of any size for benchmarks and load tests, grown from
//! the demo catalog: every product is a variant of a demo product with its
//! own model code and extra description words drawn from a vocabulary that
//! grows with the catalog, as real catalogs' vocabularies do.

use mikabot_actors::catalog::{Money, Product};
use mikabot_actors::ids::{ProductId, StoreId};

use mikabot::demo;

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ter", "von", "sa", "rel", "du", "bri", "ne", "ost", "ga", "fel", "rum",
    "ti", "mar", "zen", "pa", "kor", "li", "vas", "en", "dro", "hal",
];

/// A deterministic pseudo-random sequence (so every run builds the same catalog).
struct Sequence(u64);

impl Sequence {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn word(mut n: usize) -> String {
    let mut w = String::new();
    loop {
        w.push_str(SYLLABLES[n % SYLLABLES.len()]);
        n /= SYLLABLES.len();
        if n == 0 {
            break;
        }
    }
    w
}

/// `count` products, deterministic for a given count.
pub fn catalog(count: usize) -> Result<Vec<Product>, demo::DemoError> {
    let id = StoreId::parse("demo").map_err(|e| demo::DemoError::Value(e.to_string()))?;
    let (_, templates) = demo::demo_store(id, "https://shop.example")?;
    let vocabulary = (count / 4).max(200);
    let mut random = Sequence(0x9E37_79B9_7F4A_7C15 ^ count as u64);
    let products = (0..count)
        .map(|i| {
            let template = &templates[i % templates.len()];
            let code = format!(
                "{}{}",
                word(random.below(vocabulary)).to_uppercase(),
                i % 997
            );
            let extra: Vec<String> = (0..6).map(|_| word(random.below(vocabulary))).collect();
            let cents = template.price.minor + (random.below(4000) as i64 - 2000);
            Product {
                id: ProductId(format!("{}-{i}", template.id.0)),
                name: format!("{} {code}", template.name),
                brand: template.brand.clone(),
                category: template.category.clone(),
                description: format!("{} {}", template.description, extra.join(" ")),
                tags: template.tags.clone(),
                price: Money {
                    minor: cents.max(100),
                    currency: template.price.currency,
                },
                price_max: None,
                image_url: format!("https://shop.example/img/{i}.jpg"),
                url: format!("https://shop.example/p/{i}"),
                in_stock: random.below(10) > 0,
            }
        })
        .collect();
    Ok(products)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogs_have_the_asked_size_unique_ids_and_are_repeatable() {
        let a = catalog(1000).expect("the demo catalog loads");
        assert_eq!(a.len(), 1000);
        let ids: std::collections::HashSet<_> = a.iter().map(|p| p.id.0.clone()).collect();
        assert_eq!(ids.len(), 1000);
        assert_eq!(a, catalog(1000).expect("again"));
    }
}
