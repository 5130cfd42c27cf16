//! Catalog import: detects a feed's format from its content, parses it as
//! a stream (Google Merchant Center RSS/Atom XML and its tab-separated
//! variant, Shopify `products.json`, generic CSV and JSON), validates every
//! row and reports each rejected one. The column mapping for CSV and JSON
//! is documented in `docs/catalog-import.md`.

mod apply;
mod delimited;
mod json;
mod merchant_xml;
mod row;

use std::io::{BufRead, BufReader, Read};

use mikabot_actors::catalog::{Currency, Product};
use serde::Serialize;

pub use apply::{ApplyError, ImportReport, Scope, apply, install};
pub use row::RawRow;

/// Feed formats the node reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    GoogleMerchantXml,
    GoogleMerchantTsv,
    ShopifyJson,
    Csv,
    Json,
}

/// Whether one bad row stops the import.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Nothing changes if any row is rejected (the default).
    #[default]
    AllOrNothing,
    /// Valid rows are imported; rejected rows are reported.
    Partial,
}

/// One rejected row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// 1-based: the data row (CSV/TSV, after the header) or item number.
    pub row: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub field: &'static str,
    pub reason: String,
}

/// What a parse produced.
#[derive(Debug)]
pub struct Parsed {
    pub format: Format,
    pub products: Vec<Product>,
    pub rejected: Vec<Rejection>,
    /// Rows read, accepted or not.
    pub rows: usize,
}

/// Why a feed could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(
        "the feed's format was not recognised: expected Google Merchant XML or TSV, Shopify products.json, CSV or JSON"
    )]
    UnknownFormat,
    #[error("the feed is malformed: {0}")]
    Malformed(String),
    #[error("the feed has no products")]
    Empty,
    #[error("reading the feed failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Bytes looked at to detect a format.
const SNIFF_BYTES: usize = 8192;

/// Detects the format from the start of a feed.
pub fn detect(head: &[u8]) -> Option<Format> {
    let text = String::from_utf8_lossy(head);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    if text.starts_with('<') {
        return Some(Format::GoogleMerchantXml);
    }
    if text.starts_with('{') || text.starts_with('[') {
        let shopify = text.contains("\"variants\"")
            || text.contains("\"body_html\"")
            || (text.contains("\"products\"") && text.contains("\"handle\""));
        return Some(if shopify {
            Format::ShopifyJson
        } else {
            Format::Json
        });
    }
    let header = text.lines().next()?;
    if header.contains('\t') {
        return Some(Format::GoogleMerchantTsv);
    }
    if header.contains(',') || header.contains(';') {
        return Some(Format::Csv);
    }
    None
}

/// Parses and validates a feed. `store_url` resolves Shopify product
/// links; `currency` is the store's, for feeds that carry none.
pub fn parse(
    reader: impl Read,
    store_url: &str,
    currency: Currency,
) -> Result<Parsed, ImportError> {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let head = reader.fill_buf()?;
    let head = &head[..head.len().min(SNIFF_BYTES)];
    let format = detect(head).ok_or(ImportError::UnknownFormat)?;
    let mut validator = row::Validator::new(currency, store_url);
    let mut sink = |raw: RawRow| validator.accept(raw);
    match format {
        Format::GoogleMerchantXml => merchant_xml::read(reader, &mut sink)?,
        Format::GoogleMerchantTsv => delimited::read(reader, b'\t', &mut sink)?,
        Format::Csv => {
            let delimiter = if String::from_utf8_lossy(head)
                .lines()
                .next()
                .is_some_and(|h| h.matches(';').count() > h.matches(',').count())
            {
                b';'
            } else {
                b','
            };
            delimited::read(reader, delimiter, &mut sink)?
        }
        Format::ShopifyJson | Format::Json => json::read(reader, format, &mut sink)?,
    }
    let (products, rejected, rows) = validator.finish();
    if rows == 0 {
        return Err(ImportError::Empty);
    }
    Ok(Parsed {
        format,
        products,
        rejected,
        rows,
    })
}

/// Column or key names (any case) mapped to the field they fill. Called
/// for every field of every row, so it allocates only for mixed-case names.
pub(crate) fn field_for(name: &str) -> Option<&'static str> {
    let trimmed = name.trim();
    let lower;
    let name = if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        lower = trimmed.to_ascii_lowercase();
        lower.as_str()
    } else {
        trimmed
    };
    Some(match name {
        "id" | "sku" | "product_id" | "g:id" => "id",
        "handle" => "handle",
        "title" | "name" | "product_name" | "g:title" => "name",
        "description" | "body_html" | "g:description" => "description",
        "price" | "g:price" | "regular_price" => "price",
        "sale_price" | "g:sale_price" => "sale_price",
        "currency" => "currency",
        "image" | "image_link" | "image_url" | "image src" | "g:image_link" => "image",
        "link" | "url" | "product_url" | "g:link" => "url",
        "brand" | "vendor" | "g:brand" => "brand",
        "product_type" | "category" | "type" | "g:product_type" => "category",
        "google_product_category" | "g:google_product_category" => "google_category",
        "tags" | "keywords" => "tags",
        "availability" | "g:availability" | "in_stock" | "stock" => "availability",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_detected_from_content() {
        assert_eq!(
            detect(b"<?xml version=\"1.0\"?><rss>"),
            Some(Format::GoogleMerchantXml)
        );
        assert_eq!(
            detect(b"\xef\xbb\xbf  <rss>"),
            Some(Format::GoogleMerchantXml)
        );
        assert_eq!(
            detect(b"id\ttitle\tprice\n1\ta\t1 EUR"),
            Some(Format::GoogleMerchantTsv)
        );
        assert_eq!(detect(b"id,name,price\n1,a,2"), Some(Format::Csv));
        assert_eq!(
            detect(b"{\"products\":[{\"handle\":\"x\",\"variants\":[]}]}"),
            Some(Format::ShopifyJson)
        );
        assert_eq!(detect(b"[{\"id\":\"1\"}]"), Some(Format::Json));
        assert_eq!(detect(b"just some words"), None);
    }

    #[test]
    fn column_names_map_in_any_case() {
        assert_eq!(field_for("SKU"), Some("id"));
        assert_eq!(field_for(" Image Src "), Some("image"));
        assert_eq!(field_for("g:price"), Some("price"));
        assert_eq!(field_for("colour"), None);
    }
}
