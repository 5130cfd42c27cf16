//! What a shop's page loads from the node before any socket: the widget
//! script (`GET /widget.js`, embedded in the binary, gzipped once at start,
//! served with an ETag and a short cache lifetime so a new node version
//! reaches shops within minutes) and a store's public widget settings (`GET
//! /v1/stores/{store}/widget`: branding, default language, currency), with
//! CORS for the store's allowed origins only.

use std::io::Write as _;
use std::sync::LazyLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use flate2::Compression;
use flate2::write::GzEncoder;
use mikabot_actors::catalog::{Corner, StoreProfile};
use mikabot_actors::events::PROTOCOL_VERSION;
use mikabot_actors::ids::StoreId;
use mikabot_actors::store::GetProfile;
use serde_json::json;

use crate::http::AppState;
use crate::http::error::{ApiCode, ApiError};
use actix_web::ResponseError as _;

/// The widget script shops embed.
pub const WIDGET_JS: &str = include_str!("../../widget-js/widget.js");

/// How long browsers may use the script or settings before revalidating.
const SCRIPT_MAX_AGE_SECS: u32 = 300;
const SETTINGS_MAX_AGE_SECS: u32 = 60;

/// A strong validator for a body: FNV-1a over its bytes.
pub fn etag_of(body: &[u8]) -> String {
    let hash = body.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("\"{hash:016x}\"")
}

/// Whether the request's If-None-Match already names `etag`.
fn fresh(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

/// A cacheable response: 304 when the client's copy is current.
pub fn cacheable(
    req: &HttpRequest,
    content_type: &'static str,
    max_age_secs: u32,
    body: impl Into<String>,
) -> HttpResponse {
    let body = body.into();
    let etag = etag_of(body.as_bytes());
    validated(
        req,
        content_type,
        max_age_secs,
        body.into_bytes(),
        etag,
        None,
    )
}

/// A response with a validator: 304 when the client's copy is current,
/// else `body` in `encoding` (if any).
fn validated(
    req: &HttpRequest,
    content_type: &'static str,
    max_age_secs: u32,
    body: impl actix_web::body::MessageBody + 'static,
    etag: String,
    encoding: Option<&'static str>,
) -> HttpResponse {
    let current = fresh(req, &etag);
    let mut response = if current {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((
            header::CACHE_CONTROL,
            format!("public, max-age={max_age_secs}"),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if current {
        return response.finish();
    }
    if let Some(encoding) = encoding {
        response.insert_header((header::CONTENT_ENCODING, encoding));
    }
    response.content_type(content_type).body(body)
}

/// The script compressed once, at the strongest level: most browsers ask
/// for gzip, and this is what they download.
static WIDGET_JS_GZIP: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(WIDGET_JS.as_bytes());
    encoder.finish().unwrap_or_default()
});

fn accepts_gzip(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let refused = |p: &str| {
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            };
            parts.next().is_some_and(|c| c.eq_ignore_ascii_case("gzip")) && !parts.any(refused)
        })
}

/// `GET` and `HEAD /widget.js`: gzip when the browser accepts it, each
/// representation with its own ETag.
pub async fn widget_js(req: HttpRequest) -> HttpResponse {
    let gzip = accepts_gzip(&req) && !WIDGET_JS_GZIP.is_empty();
    let (body, etag): (&'static [u8], String) = if gzip {
        let plain = etag_of(WIDGET_JS.as_bytes());
        (
            &WIDGET_JS_GZIP,
            format!("{}-gz\"", plain.trim_end_matches('"')),
        )
    } else {
        (WIDGET_JS.as_bytes(), etag_of(WIDGET_JS.as_bytes()))
    };
    let encoding = gzip.then_some("gzip");
    let mut response = validated(
        &req,
        "text/javascript; charset=utf-8",
        SCRIPT_MAX_AGE_SECS,
        body,
        etag,
        encoding,
    );
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    // Shops that isolate their pages (Cross-Origin-Embedder-Policy) may
    // still load it.
    headers.insert(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("cross-origin"),
    );
    response
}

/// The settings the widget needs before its first socket.
fn public_settings(profile: &StoreProfile) -> serde_json::Value {
    let b = &profile.branding;
    json!({
        "store": profile.id.as_str(),
        "name": profile.name,
        "url": profile.url,
        "title": if b.title.is_empty() { &profile.name } else { &b.title },
        "color": b.color,
        "avatar_url": b.avatar_url,
        "greeting": b.greeting,
        "position": match b.position { Corner::Right => "right", Corner::Left => "left" },
        "language": profile.default_language.code(),
        "currency": profile.currency.code(),
        "protocol": PROTOCOL_VERSION,
    })
}

/// `GET /v1/stores/{store}/widget`.
pub async fn widget_settings(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let unknown =
        || ApiError::new(ApiCode::UnknownStore, "no such store on this node").error_response();
    let Some(catalog) = StoreId::parse(&path)
        .ok()
        .and_then(|id| state.stores.get(&id))
    else {
        return unknown();
    };
    let Ok(profile) = catalog.send(GetProfile).await else {
        return unknown();
    };
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok());
    // A page of another site may not use the store's settings; a request
    // without Origin is not a page's (a browser always sends it cross-site).
    let mut response = if origin.is_some() && !profile.allows_origin(origin, host) {
        ApiError::new(
            ApiCode::OriginNotAllowed,
            "this site may not open the store's assistant",
        )
        .error_response()
    } else {
        let body = public_settings(&profile).to_string();
        cacheable(&req, "application/json", SETTINGS_MAX_AGE_SECS, body)
    };
    // The refusal is readable too, so the widget can tell it from a node
    // it cannot reach and stays away instead of retrying.
    let headers = response.headers_mut();
    // The answer depends on the Origin, with or without one: a shared cache
    // must not hand one page's answer (or refusal) to another.
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin.and_then(|o| HeaderValue::from_str(o).ok()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    response
}
