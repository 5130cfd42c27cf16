//! The operator's catalog API: `PUT /v1/stores/{store}/catalog` replaces a
//! store's catalog with the uploaded feed, `POST` adds or updates products
//! by id. `?mode=partial` imports the valid rows and reports the rest; the
//! default changes nothing if any row is bad. `PUT
//! /v1/stores/{store}/synonyms` sets the store's synonym groups, and `PATCH
//! /v1/stores/{store}/widget` the widget's look and allowed origins.
//! Authenticated with the operator API token or one of the store's own API
//! tokens ([`super::operator`]).

use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use mikabot_actors::catalog::{Corner, SELF_ORIGIN, StoreProfile, normal_origin};
use mikabot_actors::ids::StoreId;
use mikabot_actors::language::Language;
use mikabot_actors::metrics::RowLabel;
use mikabot_actors::store::ReplaceProfile;
use serde::Deserialize;
use serde_json::json;

use crate::accounts::validate::FieldError;
use crate::http::AppState;
use crate::http::error::{ApiCode, ApiError};
use crate::http::operator::authorised_for_store;
use crate::import::{self, ApplyError, ImportError, Mode, Scope};

#[derive(Deserialize)]
pub struct ImportQuery {
    #[serde(default)]
    pub(crate) mode: Mode,
}

/// The profile of the store named in the path, or the refusal to send.
pub(crate) fn stored_profile(state: &AppState, raw: &str) -> Result<StoreProfile, ApiError> {
    let unknown = || ApiError::new(ApiCode::UnknownStore, "no such store on this node");
    let store = StoreId::parse(raw).map_err(|_| unknown())?;
    match state.storage.store(&store) {
        Ok(Some(profile)) => Ok(profile),
        Ok(None) => Err(unknown()),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// Most bytes a synonyms body may have.
const MAX_SYNONYMS_BODY_BYTES: usize = 1024 * 1024;

/// Reads a request body, refusing it once it passes `limit` bytes.
pub(crate) async fn read_body(
    mut body: web::Payload,
    limit: usize,
    setting: &str,
) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ApiError::new(ApiCode::UploadFailed, e.to_string()))?;
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::new(
                ApiCode::PayloadTooLarge,
                format!("a body is at most {limit} bytes ({setting})"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// `PUT` replaces the catalog, `POST` adds or updates products by id.
pub async fn import(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let scope = if req.method() == actix_web::http::Method::POST {
        Scope::Upsert
    } else {
        Scope::Replace
    };
    let query = web::Query::<ImportQuery>::from_query(req.query_string()).map_err(|_| {
        ApiError::new(
            ApiCode::InvalidMode,
            "mode is all_or_nothing (the default) or partial",
        )
    })?;
    import_feed(req, path.into_inner(), query.mode, scope, body, state).await
}

async fn import_feed(
    req: HttpRequest,
    store: String,
    mode: Mode,
    scope: Scope,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorised_for_store(&req, &state, &store)?;
    import_into(&state, &store, mode, scope, body).await
}

/// Imports an uploaded feed into `store` (already authorised): the import
/// report, or the refusal with its report.
pub(crate) async fn import_into(
    state: &AppState,
    store: &str,
    mode: Mode,
    scope: Scope,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let profile = stored_profile(state, store)?;
    let store = profile.id.clone();
    // The upload is read once into memory, never copied; the parser streams
    // over it.
    let bytes = read_body(body, state.max_upload_bytes, "import.max_upload_bytes").await?;
    let store_url = profile.url.clone();
    let currency = profile.currency;
    let parsed = web::block(move || import::parse(bytes.as_slice(), &store_url, currency))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| {
            let code = match e {
                ImportError::Empty => ApiCode::EmptyFeed,
                ImportError::UnknownFormat => ApiCode::UnknownFormat,
                _ => ApiCode::MalformedFeed,
            };
            ApiError::new(code, e.to_string())
        })?;
    // The profile installed with the new index is read again now, under the
    // lock: a settings change made during the upload is not undone.
    let _changing = state.profile_changes.lock().await;
    let profile = stored_profile(state, store.as_str())?;
    let catalog = state.stores.get(&store);
    let applied = import::apply(
        &state.storage,
        &profile,
        catalog.as_ref(),
        parsed,
        mode,
        scope,
    )
    .await;
    match applied {
        Ok(report) => {
            count_rows(state, report.imported, report.rejected_count);
            tracing::info!(store = %store, imported = report.imported, rejected = report.rejected_count, "catalog imported");
            Ok(HttpResponse::Ok().json(report))
        }
        Err(refusal) => Err(match refusal.report() {
            Some(report) => {
                count_rows(state, 0, report.rejected_count);
                let code = match refusal {
                    ApplyError::NothingValid(_) => ApiCode::NoValidRows,
                    _ => ApiCode::RowsRejected,
                };
                ApiError::new(code, refusal.to_string())
                    .with_body(serde_json::to_value(report).unwrap_or_default())
            }
            None => ApiError::internal(refusal),
        }),
    }
}

/// Counts an import's rows in the metrics.
fn count_rows(state: &AppState, accepted: usize, rejected: usize) {
    for (result, rows) in [("accepted", accepted), ("rejected", rejected)] {
        state
            .metrics
            .import_rows
            .get_or_create(&RowLabel { result })
            .inc_by(rows as u64);
    }
}

/// Most synonym groups a store may have, words in a group, and bytes a word.
const MAX_SYNONYM_GROUPS: usize = 1000;
const MAX_GROUP_WORDS: usize = 20;
const MAX_SYNONYM_BYTES: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynonymsBody {
    synonyms: Vec<Vec<String>>,
}

/// Synonym groups, trimmed and bounded, or why they are refused.
pub(crate) fn check_synonyms(groups: Vec<Vec<String>>) -> Result<Vec<Vec<String>>, String> {
    let groups: Vec<Vec<String>> = groups
        .into_iter()
        .map(|group| group.into_iter().map(|w| w.trim().to_owned()).collect())
        .collect();
    let bad_group = groups.iter().position(|g: &Vec<String>| {
        g.len() < 2
            || g.len() > MAX_GROUP_WORDS
            || g.iter()
                .any(|w| w.is_empty() || w.len() > MAX_SYNONYM_BYTES)
    });
    if let Some(i) = bad_group {
        return Err(format!(
            "group {i}: a group has 2 to {MAX_GROUP_WORDS} words of 1 to {MAX_SYNONYM_BYTES} bytes"
        ));
    }
    if groups.len() > MAX_SYNONYM_GROUPS {
        return Err(format!("at most {MAX_SYNONYM_GROUPS} groups"));
    }
    Ok(groups)
}

/// An operator request's JSON body: authorised, bounded, parsed, or the
/// refusal to send (`expected` describes the body in the 400).
pub(crate) async fn operator_json<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    state: &AppState,
    body: web::Payload,
    limit: usize,
    expected: &str,
    store: &str,
) -> Result<T, ApiError> {
    authorised_for_store(req, state, store)?;
    let shown = format!("{} KiB", limit / 1024);
    let bytes = read_body(body, limit, &shown).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(ApiCode::InvalidBody, format!("expected {expected}: {e}")))
}

/// `PUT /v1/stores/{store}/synonyms` with `{"synonyms": [["hoodie", "sweatshirt"], ...]}`.
pub async fn synonyms(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let expected = "{\"synonyms\": [[\"word\", \"word\"], ...]}";
    let body: SynonymsBody =
        operator_json(&req, &state, body, MAX_SYNONYMS_BODY_BYTES, expected, &path).await?;
    let groups = check_synonyms(body.synonyms)
        .map_err(|message| ApiError::new(ApiCode::InvalidSynonyms, message))?;
    let _changing = state.profile_changes.lock().await;
    let mut profile = stored_profile(&state, &path.into_inner())?;
    let before = profile.clone();
    profile.synonyms = groups;
    save_profile(&state, &before, &profile)
        .await
        .map_err(ApiError::internal)?;
    let groups = profile.synonyms.len();
    Ok(HttpResponse::Ok().json(json!({"synonym_groups": groups})))
}

/// Stores a changed profile and gives it to the store's actor; the index is
/// rebuilt when what it analyses changed (synonyms, language). The caller
/// holds `state.profile_changes`.
pub(crate) async fn save_profile(
    state: &AppState,
    before: &StoreProfile,
    profile: &StoreProfile,
) -> Result<(), crate::storage::StorageError> {
    let stored = profile.clone();
    state
        .storage
        .blocking(move |storage| storage.put_store(&stored))
        .await?;
    state.storage.flush().await?;
    let Some(catalog) = state.stores.get(&profile.id) else {
        return Ok(());
    };
    if profile.default_language == before.default_language && profile.synonyms == before.synonyms {
        // A store actor that is gone serves no shopper; the next start
        // loads the stored profile.
        let _ = catalog.send(ReplaceProfile(profile.clone())).await;
    } else {
        let id = profile.id.clone();
        let products = state
            .storage
            .blocking(move |storage| storage.catalog(&id))
            .await?;
        import::install(&catalog, profile.clone(), products).await;
        if profile.default_language != before.default_language {
            crate::knowledge::reinstall(state, &profile.id, profile.default_language).await?;
        }
    }
    Ok(())
}

/// Longest widget title and greeting, in characters.
const MAX_TITLE_CHARS: usize = 60;
const MAX_GREETING_CHARS: usize = 300;
const MAX_ALLOWED_ORIGINS: usize = 50;
const MAX_URL_BYTES: usize = 2048;
const MAX_WIDGET_BODY_BYTES: usize = 64 * 1024;

/// The widget settings an operator may change; absent fields are kept.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WidgetSettingsBody {
    pub(crate) color: Option<String>,
    pub(crate) title: Option<String>,
    pub(crate) avatar_url: Option<String>,
    pub(crate) greeting: Option<String>,
    pub(crate) position: Option<Corner>,
    pub(crate) language: Option<String>,
    pub(crate) allowed_origins: Option<Vec<String>>,
}

fn invalid_setting(field: &'static str, message: &str) -> FieldError {
    FieldError::new(field, message)
}

fn plain_text(text: &str, max_chars: usize) -> bool {
    text.chars().count() <= max_chars && !text.chars().any(char::is_control)
}

/// Applies the body to the profile, or says which field is wrong.
pub(crate) fn apply_widget_settings(
    body: WidgetSettingsBody,
    profile: &mut StoreProfile,
) -> Result<(), FieldError> {
    let branding = &mut profile.branding;
    if let Some(color) = body.color {
        let hex = color.strip_prefix('#').unwrap_or("");
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid_setting("color", "expected #rrggbb"));
        }
        branding.color = color.to_ascii_lowercase();
    }
    if let Some(title) = body.title {
        if !plain_text(&title, MAX_TITLE_CHARS) {
            return Err(invalid_setting("title", "at most 60 characters, one line"));
        }
        branding.title = title.trim().to_owned();
    }
    if let Some(greeting) = body.greeting {
        let lines_ok = greeting.chars().all(|c| c == '\n' || !c.is_control());
        if greeting.chars().count() > MAX_GREETING_CHARS || !lines_ok {
            return Err(invalid_setting(
                "greeting",
                "at most 300 characters of text",
            ));
        }
        branding.greeting = greeting.trim().to_owned();
    }
    if let Some(avatar) = body.avatar_url {
        let web = avatar.starts_with("https://") || avatar.starts_with("http://");
        if !avatar.is_empty()
            && (!web || avatar.len() > MAX_URL_BYTES || avatar.contains(char::is_whitespace))
        {
            return Err(invalid_setting(
                "avatar_url",
                "an http(s) URL, or empty for none",
            ));
        }
        branding.avatar_url = avatar;
    }
    if let Some(position) = body.position {
        branding.position = position;
    }
    if let Some(tag) = body.language {
        let Some(language) = Language::from_tag(&tag) else {
            return Err(invalid_setting("language", "one of en, nl, fr, de, es, it"));
        };
        profile.default_language = language;
    }
    if let Some(origins) = body.allowed_origins {
        if origins.len() > MAX_ALLOWED_ORIGINS {
            return Err(invalid_setting("allowed_origins", "at most 50 origins"));
        }
        let mut normal: Vec<String> = Vec::with_capacity(origins.len());
        for origin in &origins {
            let origin = if origin == SELF_ORIGIN {
                SELF_ORIGIN.to_owned()
            } else {
                normal_origin(origin).ok_or_else(|| {
                    let message = format!("{origin:?} is not an origin like https://shop.example");
                    invalid_setting("allowed_origins", &message)
                })?
            };
            if !normal.contains(&origin) {
                normal.push(origin);
            }
        }
        profile.allowed_origins = normal;
    }
    Ok(())
}

/// `PATCH /v1/stores/{store}/widget`.
pub async fn widget_settings(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let expected = "a JSON object of widget settings";
    let body: WidgetSettingsBody =
        operator_json(&req, &state, body, MAX_WIDGET_BODY_BYTES, expected, &path).await?;
    let _changing = state.profile_changes.lock().await;
    let mut profile = stored_profile(&state, &path.into_inner())?;
    let before = profile.clone();
    apply_widget_settings(body, &mut profile).map_err(|e| {
        ApiError::new(ApiCode::InvalidWidgetSettings, e.to_string()).detail("field", e.field)
    })?;
    save_profile(&state, &before, &profile)
        .await
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(json!({
        "branding": profile.branding,
        "language": profile.default_language.code(),
        "allowed_origins": profile.allowed_origins,
    })))
}
