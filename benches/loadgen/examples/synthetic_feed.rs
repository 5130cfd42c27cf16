//! Writes a Google Merchant Center XML feed of a generated catalog, for
//! measuring imports: `cargo run --release -p mikabot-loadgen --example synthetic_feed -- 100000 > feed.xml`.

use std::io::{BufWriter, Write};

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn main() -> anyhow::Result<()> {
    let size: usize = std::env::args().nth(1).map_or(Ok(100_000), |n| n.parse())?;
    let products = mikabot_loadgen::synthetic::catalog(size)?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<rss xmlns:g="http://base.google.com/ns/1.0" version="2.0"><channel>"#
    )?;
    writeln!(
        out,
        "<title>Synthetic feed</title><link>https://shop.example</link>"
    )?;
    for p in &products {
        writeln!(
            out,
            "<item><g:id>{}</g:id><g:title>{}</g:title><g:description>{}</g:description>\
             <g:link>{}</g:link><g:image_link>{}</g:image_link><g:price>{} {}</g:price>\
             <g:brand>{}</g:brand><g:product_type>{}</g:product_type><g:availability>{}</g:availability></item>",
            escape(&p.id.0),
            escape(&p.name),
            escape(&p.description),
            escape(&p.url),
            escape(&p.image_url),
            p.price.decimal(),
            p.price.currency.code(),
            escape(&p.brand),
            escape(&p.category),
            if p.in_stock {
                "in_stock"
            } else {
                "out_of_stock"
            },
        )?;
    }
    writeln!(out, "</channel></rss>")?;
    Ok(())
}
