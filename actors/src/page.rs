//! What the node keeps of the page a widget runs on. A page URL's query
//! string and fragment can carry reset tokens, order numbers and e-mail
//! addresses, and a referrer's path can too: the node keeps the page
//! without them and the referrer as its origin only, whatever the widget
//! sent (older widgets sent them whole).

use crate::catalog::normal_origin;

/// `scheme://host/path` of an http(s) URL: no credentials, query or
/// fragment. `None` for anything else.
pub fn page_without_query(url: &str) -> Option<String> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    // user:password@host: the credentials go too.
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let origin = normal_origin(&format!("{scheme}://{host}"))?;
    Some(format!("{origin}{path}"))
}

/// The path of a kept page URL (`https://shop.example/tents/2p` →
/// `/tents/2p`), as the desk and the dashboard list show it.
pub fn path_of(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    match after_scheme.find('/') {
        Some(at) => after_scheme[at..].to_owned(),
        None => "/".to_owned(),
    }
}

/// The origin of an http(s) referrer (`https://search.example`).
pub fn referrer_origin(url: &str) -> Option<String> {
    let page = page_without_query(url)?;
    let (scheme, rest) = page.split_once("://")?;
    let host = rest.split('/').next().unwrap_or(rest);
    Some(format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_shows_as_its_path() {
        assert_eq!(path_of("https://shop.example/tents/2p"), "/tents/2p");
        assert_eq!(path_of("https://shop.example"), "/");
    }

    #[test]
    fn a_page_keeps_its_path_and_loses_query_fragment_and_credentials() {
        assert_eq!(
            page_without_query("https://Shop.Example/account/reset?token=s3cret#step2").as_deref(),
            Some("https://shop.example/account/reset")
        );
        assert_eq!(
            page_without_query("http://user:pw@shop.example:80/p/1").as_deref(),
            Some("http://shop.example/p/1")
        );
        assert_eq!(
            page_without_query("https://shop.example?ref=mail").as_deref(),
            Some("https://shop.example")
        );
        assert_eq!(page_without_query("javascript:alert(1)"), None);
        assert_eq!(page_without_query("file:///etc/passwd"), None);
    }

    #[test]
    fn a_referrer_is_kept_as_its_origin() {
        assert_eq!(
            referrer_origin("https://mail.example/inbox/1234?u=ann@example.com").as_deref(),
            Some("https://mail.example")
        );
        assert_eq!(referrer_origin(""), None);
    }
}
