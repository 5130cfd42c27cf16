//! One feed row in a common shape, and the validation that turns it into a
//! product or a rejection.

use std::collections::HashMap;

use mikabot_actors::catalog::{Currency, Money, Product};
use mikabot_actors::ids::ProductId;

use crate::import::Rejection;

/// Longest product id accepted.
const MAX_ID_LEN: usize = 128;
/// Longest description kept, in characters.
const MAX_DESCRIPTION_CHARS: usize = 5000;

/// A row as read from any format, before validation.
#[derive(Clone, Debug, Default)]
pub struct RawRow {
    /// 1-based row or item number.
    pub row: usize,
    pub id: String,
    pub handle: String,
    pub name: String,
    pub description: String,
    pub price: String,
    /// The highest variant price, for products sold in variants.
    pub price_max: Option<String>,
    pub sale_price: String,
    pub currency: String,
    pub image: String,
    pub url: String,
    pub brand: String,
    pub category: String,
    pub google_category: String,
    pub tags: Vec<String>,
    pub availability: String,
}

impl RawRow {
    /// Sets a field by its mapped name (see `import::field_for`).
    pub fn set(&mut self, field: &str, value: String) {
        let value = value.trim().to_owned();
        match field {
            "id" => self.id = value,
            "handle" => self.handle = value,
            "name" => self.name = value,
            "description" => self.description = value,
            "price" => self.price = value,
            "sale_price" => self.sale_price = value,
            "currency" => self.currency = value,
            "image" => self.image = value,
            "url" => self.url = value,
            "brand" => self.brand = value,
            "category" => self.category = value,
            "google_category" => self.google_category = value,
            "tags" => {
                self.tags = value
                    .split(',')
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty())
                    .collect();
            }
            "availability" => self.availability = value,
            _ => {}
        }
    }
}

/// Checks rows one by one and remembers ids to catch duplicates.
pub struct Validator {
    currency: Currency,
    store_url: String,
    seen: HashMap<String, usize>,
    products: Vec<Product>,
    rejected: Vec<Rejection>,
    rows: usize,
}

fn is_http_url(value: &str) -> bool {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !r.contains(char::is_whitespace)
    })
}

/// Splits "49.95 EUR", "EUR 49.95", "€49.95" into amount and currency code.
fn split_price(text: &str) -> (String, Option<String>) {
    let text = text.trim();
    let symbols = [("€", "EUR"), ("$", "USD"), ("£", "GBP")];
    for (symbol, code) in symbols {
        if let Some(rest) = text
            .strip_prefix(symbol)
            .or_else(|| text.strip_suffix(symbol))
        {
            return (rest.trim().to_owned(), Some(code.to_owned()));
        }
    }
    // A currency code before or after the amount ("1 249,00 EUR", "USD 12");
    // the amount itself may hold spaces between its thousands.
    let is_code = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphabetic());
    let numeric = |s: &str| s.trim().starts_with(|c: char| c.is_ascii_digit());
    if let Some((amount, code)) = text.rsplit_once(char::is_whitespace)
        && is_code(code)
        && numeric(amount)
    {
        return (amount.trim().to_owned(), Some(code.to_owned()));
    }
    if let Some((code, amount)) = text.split_once(char::is_whitespace)
        && is_code(code)
        && numeric(amount)
    {
        return (amount.trim().to_owned(), Some(code.to_owned()));
    }
    (text.to_owned(), None)
}

fn in_stock(availability: &str) -> bool {
    let a = availability
        .trim()
        .to_ascii_lowercase()
        .replace([' ', '-'], "_");
    !matches!(
        a.as_str(),
        "out_of_stock" | "outofstock" | "false" | "no" | "0" | "sold_out" | "discontinued"
    )
}

/// Removes HTML tags and decodes the commonest entities (Shopify's body_html).
pub fn plain_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Validator {
    pub fn new(currency: Currency, store_url: &str) -> Self {
        Self {
            currency,
            store_url: store_url.trim_end_matches('/').to_owned(),
            seen: HashMap::new(),
            products: Vec::new(),
            rejected: Vec::new(),
            rows: 0,
        }
    }

    fn money(&self, text: &str, currency_column: &str) -> Result<Money, (&'static str, String)> {
        let (amount, code) = split_price(text);
        let code = code.unwrap_or_else(|| currency_column.to_owned());
        let currency = if code.trim().is_empty() {
            self.currency
        } else {
            Currency::parse(&code).map_err(|e| ("currency", e.to_string()))?
        };
        Money::parse(&amount, currency).map_err(|e| ("price", e.to_string()))
    }

    /// Validates one row.
    pub fn accept(&mut self, raw: RawRow) {
        self.rows += 1;
        let row = raw.row;
        let id = (!raw.id.is_empty()).then(|| raw.id.clone());
        match self.product(raw) {
            Ok(product) => {
                self.seen.insert(product.id.0.clone(), row);
                self.products.push(product);
            }
            Err((field, reason)) => self.rejected.push(Rejection {
                row,
                id,
                field,
                reason,
            }),
        }
    }

    fn product(&self, raw: RawRow) -> Result<Product, (&'static str, String)> {
        let id = if raw.id.is_empty() {
            raw.handle.clone()
        } else {
            raw.id.clone()
        };
        if id.is_empty() {
            return Err(("id", "missing".into()));
        }
        if id.chars().count() > MAX_ID_LEN || id.chars().any(char::is_control) {
            return Err(("id", format!("at most {MAX_ID_LEN} printable characters")));
        }
        if let Some(first) = self.seen.get(&id) {
            return Err(("id", format!("duplicate of row {first}")));
        }
        if raw.name.is_empty() {
            return Err(("name", "missing".into()));
        }
        if raw.price.is_empty() {
            return Err(("price", "missing".into()));
        }
        let regular = self.money(&raw.price, &raw.currency)?;
        // A sale price, when valid and lower, is what shoppers pay.
        let price = match self.money(&raw.sale_price, &raw.currency) {
            Ok(sale) if !raw.sale_price.is_empty() && sale.minor < regular.minor => sale,
            _ => regular,
        };
        let price_max = match &raw.price_max {
            Some(max) => Some(self.money(max, &raw.currency)?.minor).filter(|m| *m > price.minor),
            None => None,
        };
        let url = if raw.url.is_empty() && !raw.handle.is_empty() && !self.store_url.is_empty() {
            format!("{}/products/{}", self.store_url, raw.handle)
        } else {
            raw.url
        };
        if !is_http_url(&url) {
            let reason = if url.is_empty() {
                "missing".into()
            } else {
                format!("{url:?} is not an http(s) URL")
            };
            return Err(("url", reason));
        }
        if !raw.image.is_empty() && !is_http_url(&raw.image) {
            return Err(("image", format!("{:?} is not an http(s) URL", raw.image)));
        }
        let category = if raw.category.is_empty() {
            raw.google_category
                .rsplit('>')
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        } else {
            raw.category
                .rsplit('>')
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        };
        Ok(Product {
            id: ProductId(id),
            name: raw.name,
            brand: raw.brand,
            category,
            description: raw
                .description
                .chars()
                .take(MAX_DESCRIPTION_CHARS)
                .collect(),
            tags: raw.tags,
            price,
            price_max,
            image_url: raw.image,
            url,
            in_stock: in_stock(&raw.availability),
        })
    }

    /// Products accepted, rows rejected, rows read.
    pub fn finish(self) -> (Vec<Product>, Vec<Rejection>, usize) {
        (self.products, self.rejected, self.rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").expect("EUR is known")
    }

    fn row(id: &str, price: &str) -> RawRow {
        RawRow {
            row: 1,
            id: id.into(),
            name: "Thing".into(),
            price: price.into(),
            url: "https://shop.example/thing".into(),
            ..RawRow::default()
        }
    }

    #[test]
    fn prices_come_in_many_spellings() {
        let v = Validator::new(eur(), "");
        let minor = |t: &str| {
            v.money(t, "")
                .map(|m| (m.minor, m.currency.code().to_owned()))
        };
        assert_eq!(minor("49.95 EUR"), Ok((4995, "EUR".into())));
        assert_eq!(minor("USD 12"), Ok((1200, "USD".into())));
        assert_eq!(minor("€9,50"), Ok((950, "EUR".into())));
        assert_eq!(minor("7"), Ok((700, "EUR".into())));
        assert_eq!(minor("7 XYZ").map_err(|e| e.0), Err("currency"));
        assert_eq!(minor("seven").map_err(|e| e.0), Err("price"));
        assert_eq!(minor("ten euro").map_err(|e| e.0), Err("price"));
        assert_eq!(minor("1,249.00 EUR"), Ok((124_900, "EUR".into())));
        assert_eq!(minor("1.249,00 €"), Ok((124_900, "EUR".into())));
        assert_eq!(minor("1 249,00 EUR"), Ok((124_900, "EUR".into())));
        assert_eq!(minor("USD 1,249.00"), Ok((124_900, "USD".into())));
        let ambiguous = minor("1,249 EUR").expect_err("ambiguous");
        assert_eq!(ambiguous.0, "price");
        assert!(ambiguous.1.contains("ambiguous"), "{}", ambiguous.1);
    }

    #[test]
    fn each_bad_row_names_its_field() {
        let mut v = Validator::new(eur(), "");
        v.accept(row("a", "10"));
        v.accept(row("a", "10"));
        v.accept(row("", "10"));
        v.accept(RawRow {
            name: String::new(),
            ..row("b", "10")
        });
        v.accept(row("c", "ten"));
        v.accept(RawRow {
            url: "ftp://x".into(),
            ..row("d", "10")
        });
        v.accept(RawRow {
            image: "not a url".into(),
            ..row("e", "10")
        });
        let (products, rejected, rows) = v.finish();
        assert_eq!(products.len(), 1);
        assert_eq!(rows, 7);
        let fields: Vec<_> = rejected
            .iter()
            .map(|r| (r.field, r.reason.as_str()))
            .collect();
        assert_eq!(fields[0], ("id", "duplicate of row 1"));
        assert_eq!(fields[1], ("id", "missing"));
        assert_eq!(fields[2], ("name", "missing"));
        assert_eq!(fields[3].0, "price");
        assert_eq!(fields[4].0, "url");
        assert_eq!(fields[5].0, "image");
    }

    #[test]
    fn html_descriptions_become_text() {
        assert_eq!(plain_text("<p>Warm &amp; <b>dry</b></p>"), "Warm & dry");
    }
}
