//! The demo shop: a small shop front served by the node itself (`/demo/`), a
//! product grid from the demo catalog with a page per product, with the
//! widget embedded by the one script tag a real shop would paste. Product
//! images are drawn as SVG so the node needs nothing from the network.

use std::collections::HashMap;
use std::fmt::Write as _;

use actix_web::{HttpRequest, HttpResponse, web};
use mikabot_actors::catalog::Product;
use mikabot_actors::ids::StoreId;

use crate::demo::{DemoError, demo_store};
use crate::http::AppState;
use crate::http::assets::cacheable;
use crate::http::error::{ApiCode, ApiError};
use actix_web::ResponseError as _;

/// The demo shop's catalog, with links relative to the node.
pub struct DemoShop {
    store: StoreId,
    name: String,
    products: Vec<Product>,
    by_id: HashMap<String, usize>,
}

impl DemoShop {
    pub fn new(store: StoreId) -> Result<Self, DemoError> {
        // An empty base keeps links relative: the shop works under any
        // name the browser reaches the node by.
        let (profile, products) = demo_store(store.clone(), "")?;
        let by_id = products
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.0.clone(), i))
            .collect();
        Ok(Self {
            store,
            name: profile.name,
            products,
            by_id,
        })
    }
}

/// Escapes text for HTML element content and quoted attributes.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn price(product: &Product) -> String {
    format!("€ {}", product.price.decimal())
}

const SHOP_CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font-family:Georgia,"Times New Roman",serif;color:#222;background:#faf7f2}
header{background:#2d3a2e;color:#f4efe6;padding:18px 28px;display:flex;align-items:baseline;gap:18px}
header a{color:#f4efe6;text-decoration:none;font-size:26px;letter-spacing:.04em}
header p{margin:0;opacity:.8}
main{max-width:1180px;margin:0 auto;padding:24px}
h2{font-size:22px;border-bottom:2px solid #2d3a2e;padding-bottom:6px;margin-top:36px}
ul.grid{list-style:none;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:18px}
ul.grid li{background:#fff;border:1px solid #e2dccf;border-radius:6px;overflow:hidden}
ul.grid a{color:inherit;text-decoration:none;display:block;padding-bottom:10px}
ul.grid img{width:100%;height:auto;display:block;aspect-ratio:4/3}
.brand{font-size:13px;text-transform:uppercase;letter-spacing:.06em;color:#6b6255;margin:8px 12px 0}
.name{font-size:16px;margin:4px 12px}
.price{font-weight:bold;margin:4px 12px}
.out{color:#a33;font-size:13px;margin:0 12px}
button{font:inherit;text-transform:uppercase;background:#b1452b;color:#fff;border:0;padding:12px 22px;border-radius:3px}
.product{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:32px}
.product img{width:100%;border-radius:6px}
@media (max-width:700px){.product{grid-template-columns:1fr}}
"#;

fn page(shop: &DemoShop, title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title}</title><style>{SHOP_CSS}</style></head><body>\
<header><a href=\"/demo/\">{name}</a><p>Outdoor, home and everyday goods</p></header>\
<main>{body}</main>\
<script src=\"/widget.js\" data-store=\"{store}\" async></script>\
</body></html>\n",
        title = esc(title),
        name = esc(&shop.name),
        store = esc(shop.store.as_str()),
    )
}

fn demo_of(state: &AppState) -> Result<&DemoShop, HttpResponse> {
    state.demo_shop.as_deref().ok_or_else(|| {
        ApiError::new(
            ApiCode::NotFound,
            "the demo shop is turned off on this node",
        )
        .error_response()
    })
}

/// The demo shop and one of its products, or the 404 to send.
fn product_of<'a>(
    state: &'a AppState,
    id: &str,
) -> Result<(&'a DemoShop, &'a Product), HttpResponse> {
    let shop = demo_of(state)?;
    shop.by_id
        .get(id)
        .map(|&i| (shop, &shop.products[i]))
        .ok_or_else(|| ApiError::new(ApiCode::NotFound, "no such product").error_response())
}

/// `GET /` and `GET /demo`: to the demo shop.
pub async fn to_index(state: web::Data<AppState>) -> HttpResponse {
    match demo_of(&state) {
        Ok(_) => HttpResponse::Found()
            .insert_header(("location", "/demo/"))
            .finish(),
        Err(refusal) => refusal,
    }
}

/// `GET /demo/`: every product, by category.
pub async fn index(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let shop = match demo_of(&state) {
        Ok(shop) => shop,
        Err(refusal) => return refusal,
    };
    let mut categories: Vec<&str> = Vec::new();
    for product in &shop.products {
        if !categories.contains(&product.category.as_str()) {
            categories.push(&product.category);
        }
    }
    let mut body = String::new();
    for category in categories {
        let _ = write!(body, "<h2>{}</h2><ul class=\"grid\">", esc(category));
        for p in shop.products.iter().filter(|p| p.category == category) {
            let _ = write!(
                body,
                "<li><a href=\"{url}\"><img src=\"{img}\" alt=\"\" loading=\"lazy\" width=\"400\" height=\"300\">\
<p class=\"brand\">{brand}</p><p class=\"name\">{name}</p><p class=\"price\">{price}</p>{stock}</a></li>",
                url = esc(&p.url),
                img = esc(&p.image_url),
                brand = esc(&p.brand),
                name = esc(&p.name),
                price = price(p),
                stock = if p.in_stock {
                    ""
                } else {
                    "<p class=\"out\">Out of stock</p>"
                },
            );
        }
        body.push_str("</ul>");
    }
    let html = page(shop, &shop.name, &body);
    cacheable(&req, "text/html; charset=utf-8", 60, html)
}

/// `GET /demo/products/{id}`.
pub async fn product(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (shop, p) = match product_of(&state, &path) {
        Ok(found) => found,
        Err(refusal) => return refusal,
    };
    let body = format!(
        "<p><a href=\"/demo/\">← All products</a></p><article class=\"product\">\
<img src=\"{img}\" alt=\"{name}\" width=\"400\" height=\"300\"><div><p class=\"brand\">{brand} · {category}</p>\
<h1>{name}</h1><p class=\"price\">{price}</p><p>{description}</p><p>{stock}</p>\
<button type=\"button\">Add to cart</button></div></article>",
        img = esc(&p.image_url),
        name = esc(&p.name),
        brand = esc(&p.brand),
        category = esc(&p.category),
        price = price(p),
        description = esc(&p.description),
        stock = if p.in_stock {
            "In stock"
        } else {
            "Out of stock"
        },
    );
    let html = page(shop, &p.name, &body);
    cacheable(&req, "text/html; charset=utf-8", 60, html)
}

/// `GET /demo/images/{id}.svg`: a drawn placeholder per product.
pub async fn image(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let id = path.strip_suffix(".svg").unwrap_or("");
    let p = match product_of(&state, id) {
        Ok((_, p)) => p,
        Err(refusal) => return refusal,
    };
    let hue = p
        .category
        .bytes()
        .fold(7_u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % 360;
    let initials: String = p
        .name
        .split_whitespace()
        .filter_map(|w| w.chars().next())
        .take(2)
        .collect();
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 400 300\" width=\"400\" height=\"300\">\
<rect width=\"400\" height=\"300\" fill=\"hsl({hue},35%,82%)\"/>\
<circle cx=\"200\" cy=\"130\" r=\"70\" fill=\"hsl({hue},40%,45%)\"/>\
<text x=\"200\" y=\"150\" font-family=\"sans-serif\" font-size=\"56\" fill=\"#fff\" text-anchor=\"middle\">{initials}</text>\
<text x=\"200\" y=\"260\" font-family=\"sans-serif\" font-size=\"20\" fill=\"hsl({hue},40%,20%)\" text-anchor=\"middle\">{name}</text></svg>",
        initials = esc(&initials),
        name = esc(&p.name.chars().take(32).collect::<String>()),
    );
    cacheable(&req, "image/svg+xml", 86_400, svg)
}
