//! Delimited feeds: Google Merchant's tab-separated variant and generic CSV,
//! with columns mapped by header name.

use std::io::Read;

use crate::import::{ImportError, RawRow, field_for};

/// Reads every data row and hands it to `sink`.
pub fn read(
    reader: impl Read,
    delimiter: u8,
    sink: &mut impl FnMut(RawRow),
) -> Result<(), ImportError> {
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = csv
        .headers()
        .map_err(|e| ImportError::Malformed(format!("header row: {e}")))?
        .clone();
    let mapped: Vec<Option<&'static str>> = headers
        .iter()
        .map(|h| field_for(h.trim_start_matches('\u{feff}')))
        .collect();
    if !mapped.contains(&Some("name")) || !mapped.iter().any(|m| matches!(m, Some("id" | "handle")))
    {
        return Err(ImportError::Malformed(
            "the header row needs an id (or sku/handle) and a name (or title) column".into(),
        ));
    }
    for (index, record) in csv.records().enumerate() {
        let record =
            record.map_err(|e| ImportError::Malformed(format!("row {}: {e}", index + 1)))?;
        let mut row = RawRow {
            row: index + 1,
            ..RawRow::default()
        };
        for (field, value) in mapped.iter().zip(record.iter()) {
            if let Some(field) = field {
                row.set(field, value.to_owned());
            }
        }
        sink(row);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_mapped_by_header() {
        let csv = "SKU,Title,Price,Currency,URL,Tags\nk1,Kettle,\"24,95\",EUR,https://s.example/k1,\"tea, kitchen\"\n";
        let mut rows = Vec::new();
        read(csv.as_bytes(), b',', &mut |r| rows.push(r)).expect("parses");
        assert_eq!(rows[0].id, "k1");
        assert_eq!(rows[0].price, "24,95");
        assert_eq!(rows[0].tags, ["tea", "kitchen"]);
    }

    #[test]
    fn a_header_without_id_or_name_is_refused() {
        let error = read(
            "price,url\n1,https://x.example\n".as_bytes(),
            b',',
            &mut |_| {},
        )
        .expect_err("no id column");
        assert!(error.to_string().contains("id"), "{error}");
    }
}
