//! The dashboard's stylesheet and script modules, compiled into the binary.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use super::DashError;

const FILES: &[(&str, &str, &str)] = &[
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_str!("static/dashboard.css"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("static/dashboard.js"),
    ),
    (
        "live.js",
        "text/javascript; charset=utf-8",
        include_str!("static/live.js"),
    ),
    (
        "preview.css",
        "text/css; charset=utf-8",
        include_str!("static/preview.css"),
    ),
];

pub async fn file(path: web::Path<String>) -> Result<HttpResponse, DashError> {
    let (_, kind, body) = FILES
        .iter()
        .find(|(name, _, _)| *name == path.as_str())
        .ok_or(DashError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(*kind)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(*body))
}
