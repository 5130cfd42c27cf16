//! A store owner's browser, without the browser: an HTTP client that keeps
//! the dashboard's cookies (honouring removals), follows nothing by itself
//! (a test sees every 303), and sends each form with the CSRF token of the
//! last page it read, as a page's form would.

use std::collections::BTreeMap;

use reqwest::header::{COOKIE, HeaderMap, HeaderValue, LOCATION, SET_COOKIE};

/// One answer from the node.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// The page's CSRF token (its `csrf-token` meta tag), if any.
    pub fn csrf(&self) -> Option<String> {
        let at = self.body.find("name=\"csrf-token\" content=\"")?;
        let rest = &self.body[at + "name=\"csrf-token\" content=\"".len()..];
        Some(rest[..rest.find('"')?].to_owned())
    }

    /// The text of the page with tags removed and entities of quotes and
    /// angle brackets decoded (what a reader sees).
    pub fn text(&self) -> String {
        let mut text = String::new();
        let mut in_tag = false;
        for c in self.body.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                _ if !in_tag => text.push(c),
                _ => {}
            }
        }
        text.replace("&#34;", "\"")
            .replace("&#39;", "'")
            .replace("&#60;", "<")
            .replace("&#62;", ">")
            .replace("&#38;", "&")
    }

    /// The `Set-Cookie` headers' names and whether each removes its cookie.
    pub fn cookies_set(&self) -> Vec<(String, bool)> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| {
                let name = v.split('=').next().unwrap_or("").to_owned();
                (name, v.contains("Max-Age=0"))
            })
            .collect()
    }
}

/// A client with its own cookie jar.
pub struct Owner {
    base: String,
    client: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
    /// The CSRF token of the last page read.
    pub csrf: String,
    /// Headers added to every request (an `Origin`, say).
    pub extra: Vec<(String, String)>,
}

impl Owner {
    pub fn new(port: u16) -> Self {
        Self {
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a client"),
            cookies: BTreeMap::new(),
            csrf: String::new(),
            extra: Vec::new(),
        }
    }

    fn cookie_header(&self) -> Option<HeaderValue> {
        if self.cookies.is_empty() {
            return None;
        }
        let joined: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        HeaderValue::from_str(&joined.join("; ")).ok()
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let mut request = request;
        if let Some(cookie) = self.cookie_header() {
            request = request.header(COOKIE, cookie);
        }
        for (name, value) in &self.extra {
            request = request.header(name, value);
        }
        let response = request.send().await.expect("the node answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for value in headers.get_all(SET_COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            let pair = value.split(';').next().unwrap_or("");
            let Some((name, cookie)) = pair.split_once('=') else {
                continue;
            };
            if value.contains("Max-Age=0") || cookie.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), cookie.to_owned());
            }
        }
        let location = headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await.unwrap_or_default();
        let page = Page {
            status,
            location,
            headers,
            body,
        };
        if let Some(csrf) = page.csrf().filter(|c| !c.is_empty()) {
            self.csrf = csrf;
        }
        page
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// Posts a form with the last page's CSRF token added (unless the
    /// fields name one).
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut form: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if !fields.iter().any(|(k, _)| *k == "csrf") {
            form.push(("csrf".into(), self.csrf.clone()));
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(request).await
    }

    /// A `PUT` with a raw body and the CSRF token in `X-CSRF-Token`, as the
    /// upload script sends it.
    pub async fn put(&mut self, path: &str, body: Vec<u8>) -> Page {
        let request = self
            .client
            .put(format!("{}{path}", self.base))
            .header("x-csrf-token", self.csrf.clone())
            .body(body);
        self.send(request).await
    }

    /// Signs in (reading the sign-in page for its token first); the answer
    /// to the form.
    pub async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        self.get("/dashboard/login").await;
        self.post(
            "/dashboard/login",
            &[("email", email), ("password", password)],
        )
        .await
    }
}

/// Percent-encodes a form value.
pub fn encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
