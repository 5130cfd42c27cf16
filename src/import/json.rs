//! JSON feeds: Shopify's `products.json` (one card per product, price range
//! from its variants) and generic JSON (an array of objects, or an object
//! with a `products` array, keys mapped like CSV columns). Products are
//! handed on one by one as they are parsed; the document is never held as a
//! whole tree.

use std::fmt;
use std::io::Read;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::import::row::plain_text;
use crate::import::{Format, ImportError, RawRow, field_for};

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

fn shopify_row(row: usize, product: &serde_json::Map<String, Value>) -> RawRow {
    let mut raw = RawRow {
        row,
        ..RawRow::default()
    };
    raw.id = product.get("id").map(text).unwrap_or_default();
    raw.handle = product.get("handle").map(text).unwrap_or_default();
    raw.name = product.get("title").map(text).unwrap_or_default();
    raw.description = plain_text(&product.get("body_html").map(text).unwrap_or_default());
    raw.brand = product.get("vendor").map(text).unwrap_or_default();
    raw.category = product.get("product_type").map(text).unwrap_or_default();
    raw.tags = match product.get("tags") {
        Some(Value::Array(tags)) => tags.iter().map(text).filter(|t| !t.is_empty()).collect(),
        Some(Value::String(tags)) => tags
            .split(',')
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect(),
        _ => Vec::new(),
    };
    raw.image = product
        .get("images")
        .and_then(|i| i.get(0))
        .and_then(|i| i.get("src"))
        .or_else(|| product.get("image").and_then(|i| i.get("src")))
        .map(text)
        .unwrap_or_default();
    if let Some(Value::Array(variants)) = product.get("variants") {
        let prices: Vec<(f64, String)> = variants
            .iter()
            .filter_map(|v| v.get("price").map(text))
            .filter_map(|p| p.replace(',', ".").parse::<f64>().ok().map(|f| (f, p)))
            .collect();
        if let Some(min) = prices.iter().min_by(|a, b| a.0.total_cmp(&b.0)) {
            raw.price = min.1.clone();
        } else if let Some(first) = variants.first().and_then(|v| v.get("price")) {
            // Unparsable: keep it so validation reports it.
            raw.price = text(first);
        }
        raw.price_max = prices
            .iter()
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|m| m.1.clone());
        let any_available = variants.iter().any(|v| {
            v.get("available")
                .is_none_or(|a| a.as_bool() != Some(false))
        });
        raw.availability = if any_available {
            "in_stock"
        } else {
            "out_of_stock"
        }
        .into();
    }
    raw
}

fn generic_row(row: usize, object: &serde_json::Map<String, Value>) -> RawRow {
    let mut raw = RawRow {
        row,
        ..RawRow::default()
    };
    for (key, value) in object {
        let Some(field) = field_for(key) else {
            continue;
        };
        match (field, value) {
            ("tags", Value::Array(tags)) => {
                raw.tags = tags.iter().map(text).filter(|t| !t.is_empty()).collect();
            }
            ("availability", Value::Bool(b)) => {
                raw.availability = if *b { "in_stock" } else { "out_of_stock" }.into();
            }
            _ => raw.set(field, text(value)),
        }
    }
    raw
}

/// Visits the product array, converting each element as it is parsed.
struct Products<'s, F> {
    format: Format,
    sink: &'s mut F,
}

impl<'de, F: FnMut(RawRow)> Visitor<'de> for Products<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of product objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut row = 0;
        while let Some(value) = seq.next_element::<Value>()? {
            row += 1;
            let Value::Object(object) = value else {
                return Err(serde::de::Error::custom(format!(
                    "product {row} is not an object"
                )));
            };
            (self.sink)(match self.format {
                Format::ShopifyJson => shopify_row(row, &object),
                _ => generic_row(row, &object),
            });
        }
        Ok(())
    }
}

impl<'de, F: FnMut(RawRow)> DeserializeSeed<'de> for Products<'_, F> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

/// The document: an array, or an object with a `products` array.
struct Document<'s, F> {
    products: Products<'s, F>,
}

impl<'de, F: FnMut(RawRow)> Visitor<'de> for Document<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of products or an object with a \"products\" array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.products.visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut products = Some(self.products);
        while let Some(key) = map.next_key::<String>()? {
            match (key.as_str(), products.take()) {
                ("products", Some(seed)) => map.next_value_seed(seed)?,
                (_, unused) => {
                    products = unused;
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if products.is_some() {
            return Err(serde::de::Error::custom("no \"products\" array"));
        }
        Ok(())
    }
}

/// Reads every product and hands it to `sink`.
pub fn read(
    reader: impl Read,
    format: Format,
    sink: &mut impl FnMut(RawRow),
) -> Result<(), ImportError> {
    let mut deserializer = serde_json::Deserializer::from_reader(reader);
    let document = Document {
        products: Products { format, sink },
    };
    deserializer
        .deserialize_any(document)
        .and_then(|()| deserializer.end())
        .map_err(|e| ImportError::Malformed(format!("JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shopify_products_get_one_card_with_a_price_range() {
        let feed = r#"{"products":[{"id":101,"title":"Hoodie","handle":"hoodie","body_html":"<p>Soft</p>",
            "vendor":"Acme","product_type":"Tops","tags":"cotton, warm",
            "variants":[{"price":"39.00","available":false},{"price":"35.00","available":true},{"price":"45.50"}],
            "images":[{"src":"https://cdn.example/h.jpg"}]}]}"#;
        let mut rows = Vec::new();
        read(feed.as_bytes(), Format::ShopifyJson, &mut |r| rows.push(r)).expect("parses");
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!((row.id.as_str(), row.handle.as_str()), ("101", "hoodie"));
        assert_eq!(row.price, "35.00");
        assert_eq!(row.price_max.as_deref(), Some("45.50"));
        assert_eq!(row.description, "Soft");
        assert_eq!(row.tags, ["cotton", "warm"]);
        assert_eq!(row.availability, "in_stock");
    }

    #[test]
    fn generic_json_maps_keys_like_columns() {
        let feed =
            r#"[{"sku":"k1","name":"Kettle","price":24.95,"in_stock":false,"tags":["tea"]}]"#;
        let mut rows = Vec::new();
        read(feed.as_bytes(), Format::Json, &mut |r| rows.push(r)).expect("parses");
        assert_eq!(rows[0].id, "k1");
        assert_eq!(rows[0].price, "24.95");
        assert_eq!(rows[0].availability, "out_of_stock");
    }

    #[test]
    fn broken_json_is_reported() {
        let error =
            read("[{\"id\":1,".as_bytes(), Format::Json, &mut |_| {}).expect_err("truncated");
        assert!(
            error.to_string().starts_with("the feed is malformed: JSON"),
            "{error}"
        );
    }
}
