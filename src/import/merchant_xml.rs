//! Google Merchant Center XML feeds (RSS 2.0 `<item>` or Atom `<entry>`,
//! fields in the `g:` namespace), read as a stream of events.

use std::io::BufRead;

use quick_xml::events::Event;
use quick_xml::reader::Reader;

use crate::import::{ImportError, RawRow, field_for};

fn entity(name: &str) -> Option<String> {
    let c = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => {
            let code = name.strip_prefix('#')?;
            let value = match code.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => code.parse().ok()?,
            };
            char::from_u32(value)?
        }
    };
    Some(c.to_string())
}

/// Reads every item and hands it to `sink`.
pub fn read(reader: impl BufRead, sink: &mut impl FnMut(RawRow)) -> Result<(), ImportError> {
    let mut xml = Reader::from_reader(reader);
    let mut buf = Vec::new();
    let mut item: Option<RawRow> = None;
    let mut field: Option<String> = None;
    let mut text = String::new();
    let mut count = 0;
    loop {
        let position = xml.buffer_position();
        let event = xml
            .read_event_into(&mut buf)
            .map_err(|e| ImportError::Malformed(format!("XML at byte {position}: {e}")))?;
        match event {
            Event::Start(start) => {
                let name = String::from_utf8_lossy(start.name().as_ref()).to_ascii_lowercase();
                if name == "item" || name == "entry" {
                    count += 1;
                    item = Some(RawRow {
                        row: count,
                        ..RawRow::default()
                    });
                } else if item.is_some() {
                    field = Some(name);
                    text.clear();
                }
            }
            Event::Text(t) if field.is_some() => {
                let decoded = t
                    .decode()
                    .map_err(|e| ImportError::Malformed(format!("XML text: {e}")))?;
                text.push_str(&decoded);
            }
            Event::CData(t) if field.is_some() => {
                let decoded = t
                    .decode()
                    .map_err(|e| ImportError::Malformed(format!("XML CDATA: {e}")))?;
                text.push_str(&decoded);
            }
            Event::GeneralRef(r) if field.is_some() => {
                let name = r
                    .decode()
                    .map_err(|e| ImportError::Malformed(format!("XML entity: {e}")))?;
                let resolved = entity(&name).ok_or_else(|| {
                    ImportError::Malformed(format!("unknown XML entity &{name};"))
                })?;
                text.push_str(&resolved);
            }
            Event::End(end) => {
                let name = String::from_utf8_lossy(end.name().as_ref()).to_ascii_lowercase();
                if name == "item" || name == "entry" {
                    if let Some(done) = item.take() {
                        sink(done);
                    }
                } else if let (Some(row), Some(open)) = (item.as_mut(), field.take())
                    && open == name
                {
                    // Plain <title>/<link>/<description> fill what g: fields leave empty.
                    if let Some(target) = field_for(&open) {
                        let value = std::mem::take(&mut text);
                        let existing = match target {
                            "name" => &row.name,
                            "url" => &row.url,
                            "description" => &row.description,
                            "id" => &row.id,
                            _ => &String::new(),
                        };
                        if existing.is_empty() || open.starts_with("g:") {
                            row.set(target, value);
                        }
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if item.is_some() {
        return Err(ImportError::Malformed(
            "the feed ends inside an item".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_and_their_g_fields_are_read() {
        let feed = r#"<?xml version="1.0"?>
<rss xmlns:g="http://base.google.com/ns/1.0" version="2.0"><channel>
<item><g:id>A1</g:id><title>Rain &amp; Wind Jacket</title>
<g:price>89.95 EUR</g:price><link>https://shop.example/a1</link>
<g:description><![CDATA[Light <b>shell</b>]]></g:description></item>
<item><g:id>A2</g:id><g:title>Boots</g:title><g:price>EUR 120</g:price></item>
</channel></rss>"#;
        let mut rows = Vec::new();
        read(feed.as_bytes(), &mut |r| rows.push(r)).expect("parses");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].id, "A1");
        assert_eq!(rows[0].name, "Rain & Wind Jacket");
        assert_eq!(rows[0].description, "Light <b>shell</b>");
        assert_eq!(rows[1].price, "EUR 120");
        assert_eq!(rows[1].row, 2);
    }

    #[test]
    fn broken_xml_is_reported_with_its_position() {
        let mut rows = Vec::new();
        let error = read(
            "<rss><item><g:id>1</g:title></item></rss>".as_bytes(),
            &mut |r| rows.push(r),
        )
        .expect_err("mismatched tags");
        assert!(error.to_string().contains("XML at byte"), "{error}");
    }
}
