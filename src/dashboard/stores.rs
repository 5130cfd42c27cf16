//! A member's stores: the list, creation, the overview with the embed tag,
//! catalog upload and the widget preview, settings, API tokens and
//! deletion. Every handler with a store in its path goes through
//! [`member`], which answers 404 to a visitor who is not a member (another
//! owner learns nothing, not even that the store exists) and 403 to a
//! member whose role is too low.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use mikabot_actors::catalog::{Branding, Corner, Currency, SELF_ORIGIN, StoreProfile};
use mikabot_actors::ids::StoreId;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::pages::{
    self, Chrome, Errors, NewStore as NewStorePage, NewStoreForm, Preview, Settings, SettingsForm,
    StoreHead, StoreList, StorePage, StoreRow, TokenRow, Tokens, render,
};
use super::visitor::{CsrfOnly, SignedIn, Visitor, form};
use super::{DashError, ok};
use crate::accounts::validate::{self, FieldError};
use crate::accounts::{AccountId, Role, format_time};
use crate::http::AppState;
use crate::http::catalog::{
    WidgetSettingsBody, apply_widget_settings, check_synonyms, import_into, save_profile,
};
use crate::import::{Mode, Scope};
use crate::storage::Storage;

/// What a new store is made from (the dashboard's form, `mikabot
/// create-store`).
#[derive(Clone, Debug, Default)]
pub struct NewStore {
    pub name: String,
    /// Empty: made from the name.
    pub id: String,
    pub url: String,
    pub language: String,
    pub currency: String,
}

/// Creates a store owned by `owner`, or says which fields are wrong. The
/// new store allows its shop's origin and the node's own pages (for the
/// dashboard's preview).
pub fn create_store(
    storage: &Storage,
    owner: AccountId,
    new: &NewStore,
) -> Result<Result<StoreProfile, Vec<FieldError>>, crate::storage::StorageError> {
    let mut errors = Vec::new();
    let name = validate::store_name(&new.name)
        .map_err(|e| errors.push(e))
        .ok();
    let raw_id = if new.id.trim().is_empty() {
        validate::store_id_from_name(&new.name)
    } else {
        new.id.trim().to_owned()
    };
    let id = validate::store_id(&raw_id).map_err(|e| errors.push(e)).ok();
    let url = validate::shop_url(&new.url)
        .map_err(|e| errors.push(e))
        .ok();
    let language = validate::language(&new.language)
        .map_err(|e| errors.push(e))
        .ok();
    let currency = Currency::parse(&new.currency)
        .map_err(|e| errors.push(FieldError::new("currency", e.to_string())))
        .ok();
    let (Some(name), Some(id), Some(url), Some(language), Some(currency)) =
        (name, id, url, language, currency)
    else {
        return Ok(Err(errors));
    };
    if storage.store(&id)?.is_some() {
        return Ok(Err(vec![FieldError::new(
            "id",
            "another store has this id: choose another",
        )]));
    }
    let origin = validate::origin_of(&url).unwrap_or_default();
    let profile = StoreProfile {
        id: id.clone(),
        name,
        url,
        instructions: String::new(),
        default_language: language,
        currency,
        allowed_origins: vec![origin, SELF_ORIGIN.to_owned()],
        synonyms: Vec::new(),
        branding: Branding::default(),
        retention_days: None,
    };
    storage.put_store(&profile)?;
    storage.set_member(&id, owner, Role::Owner)?;
    Ok(Ok(profile))
}

/// The visitor's membership of the store in the path, with at least `min`.
pub(super) fn member(
    visitor: &Visitor,
    state: &AppState,
    raw: &str,
    min: Role,
) -> Result<(SignedIn, StoreProfile, Role), DashError> {
    let me = visitor.require_active()?.clone();
    let store = StoreId::parse(raw).map_err(|_| DashError::NotFound)?;
    let role = state
        .storage
        .member_role(&store, me.account.id)
        .map_err(DashError::internal)?
        .ok_or(DashError::NotFound)?;
    let profile = state
        .storage
        .store(&store)
        .map_err(DashError::internal)?
        .ok_or(DashError::NotFound)?;
    if role < min {
        return Err(DashError::Forbidden);
    }
    Ok((me, profile, role))
}

pub(super) fn head(profile: &StoreProfile) -> StoreHead {
    StoreHead {
        id: profile.id.as_str().to_owned(),
        name: profile.name.clone(),
        url: profile.url.clone(),
    }
}

/// Starts or stops serving the stores an account owns after it was
/// deleted, restored, suspended or unsuspended: a store is served while it
/// has an active owner.
pub(super) async fn account_changed(state: &AppState, account: AccountId) -> Result<(), DashError> {
    for (store, role) in state
        .storage
        .stores_of(account)
        .map_err(DashError::internal)?
    {
        if role != Role::Owner {
            continue;
        }
        let active = super::served(&state.storage, &store).map_err(DashError::internal)?;
        match (active, state.stores.get(&store).is_some()) {
            (true, false) => {
                if let Some(profile) = state.storage.store(&store).map_err(DashError::internal)? {
                    serve(state, profile);
                }
            }
            (false, true) => {
                state.stores.remove(&store);
                tracing::info!(store = %store, "store no longer served: no active owner");
            }
            _ => {}
        }
    }
    Ok(())
}

/// Starts a store's actor: its widget answers from now on.
fn serve(state: &AppState, profile: StoreProfile) {
    let id = profile.id.clone();
    let actor = state
        .store_threads
        .start(profile, &state.storage, &state.stores);
    state.stores.insert(id, actor);
}

pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let me = visitor.require_active()?;
    let mut stores = Vec::new();
    for (id, role) in state
        .storage
        .stores_of(me.account.id)
        .map_err(DashError::internal)?
    {
        if let Some(profile) = state.storage.store(&id).map_err(DashError::internal)? {
            stores.push(StoreRow {
                id: id.as_str().to_owned(),
                name: profile.name,
                role: role.as_str(),
            });
        }
    }
    let html = render(&StoreList {
        chrome: Chrome::of(&visitor, "Stores"),
        stores,
    })?;
    Ok(ok(visitor, html))
}

fn new_store_page(
    visitor: &Visitor,
    form: NewStoreForm,
    errors: Errors,
) -> Result<String, DashError> {
    render(&NewStorePage {
        chrome: Chrome::of(visitor, "Create a store"),
        form,
        errors,
        languages: pages::LANGUAGES,
    })
}

pub async fn new_form(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let me = visitor.require_active()?;
    let form = NewStoreForm {
        language: me.account.language.code().to_owned(),
        currency: "EUR".into(),
        url: "https://".into(),
        ..NewStoreForm::default()
    };
    let html = new_store_page(&visitor, form, Errors::default())?;
    Ok(ok(visitor, html))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NewStoreBody {
    csrf: String,
    name: String,
    id: String,
    url: String,
    language: String,
    currency: String,
}

pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let me = visitor.require_active()?.account.clone();
    let body: NewStoreBody = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    let new = NewStore {
        name: body.name,
        id: body.id,
        url: body.url,
        language: body.language,
        currency: body.currency,
    };
    let refuse = |visitor: Visitor, errors: Vec<FieldError>| -> Result<HttpResponse, DashError> {
        let form = NewStoreForm {
            name: new.name.clone(),
            id: new.id.clone(),
            url: new.url.clone(),
            language: new.language.clone(),
            currency: new.currency.clone(),
        };
        let html = new_store_page(&visitor, form, Errors(errors))?;
        Ok(visitor.page(StatusCode::UNPROCESSABLE_ENTITY, html))
    };
    if !me.verified {
        return refuse(
            visitor,
            vec![FieldError::new(
                "",
                "Confirm your email address first: follow the link we sent (your account page sends a new one).",
            )],
        );
    }
    let created = {
        let _changing = state.profile_changes.lock().await;
        create_store(&state.storage, me.id, &new).map_err(DashError::internal)?
    };
    let profile = match created {
        Ok(profile) => profile,
        Err(errors) => return refuse(visitor, errors),
    };
    state.storage.flush().await.map_err(DashError::internal)?;
    tracing::info!(store = %profile.id, owner = %me.id, "store created");
    let to = format!("/dashboard/stores/{}", profile.id);
    serve(&state, profile);
    Ok(visitor.redirect(&to))
}

pub async fn overview(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let (_, profile, role) = member(&visitor, &state, &path, Role::Viewer)?;
    let id = profile.id.clone();
    let products = state
        .storage
        .blocking(move |storage| storage.catalog(&id).map(|c| c.len()))
        .await
        .map_err(DashError::internal)?;
    let embed_tag = format!(
        "<script src=\"{}/widget.js\" data-store=\"{}\" async></script>",
        state.public_url, profile.id
    );
    let html = render(&StorePage {
        chrome: Chrome::of(&visitor, profile.name.clone()),
        store: head(&profile),
        role: role.as_str(),
        role_is_owner: role == Role::Owner,
        role_sees_conversations: role >= Role::Agent,
        products,
        embed_tag,
        max_upload_mib: state.max_upload_bytes / (1024 * 1024),
    })?;
    Ok(ok(visitor, html))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PreviewQuery {
    color: Option<String>,
    title: Option<String>,
    avatar_url: Option<String>,
    greeting: Option<String>,
    position: Option<String>,
    language: Option<String>,
}

/// The widget on a page of the node. With settings in the query (the
/// settings form's unsaved values), they are checked as a save would check
/// them and drawn instead of the saved ones; refused values are not.
pub async fn preview(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<PreviewQuery>,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let (_, profile, _) = member(&visitor, &state, &path, Role::Viewer)?;
    let query = query.into_inner();
    let asked = query.color.is_some() || query.title.is_some() || query.greeting.is_some();
    let mut shown = profile.clone();
    let overrides = WidgetSettingsBody {
        color: query.color.filter(|c| !c.trim().is_empty()),
        title: query.title,
        avatar_url: query.avatar_url,
        greeting: query.greeting,
        position: match query.position.as_deref() {
            Some("left") => Some(Corner::Left),
            Some("right") => Some(Corner::Right),
            _ => None,
        },
        language: query.language,
        allowed_origins: None,
    };
    let overrides = if asked && apply_widget_settings(overrides, &mut shown).is_ok() {
        let b = &shown.branding;
        json!({
            "title": if b.title.is_empty() { &shown.name } else { &b.title },
            "color": b.color,
            "avatar_url": b.avatar_url,
            "greeting": b.greeting,
            "position": match b.position { Corner::Right => "right", Corner::Left => "left" },
            "language": shown.default_language.code(),
        })
        .to_string()
    } else {
        String::new()
    };
    let html = render(&Preview {
        lang: shown.default_language.code(),
        name: profile.name.clone(),
        store: profile.id.as_str().to_owned(),
        overrides,
    })?;
    let mut response = ok(visitor, html);
    let headers = response.headers_mut();
    headers.insert(
        actix_web::http::header::CONTENT_SECURITY_POLICY,
        actix_web::http::header::HeaderValue::from_static(
            crate::http::headers::FRAMED_CONTENT_SECURITY_POLICY,
        ),
    );
    headers.insert(
        actix_web::http::header::X_FRAME_OPTIONS,
        actix_web::http::header::HeaderValue::from_static("SAMEORIGIN"),
    );
    Ok(response)
}

fn settings_form_of(profile: &StoreProfile) -> SettingsForm {
    SettingsForm {
        name: profile.name.clone(),
        url: profile.url.clone(),
        allowed_origins: profile.allowed_origins.join("\n"),
        instructions: profile.instructions.clone(),
        color: profile.branding.color.clone(),
        title: profile.branding.title.clone(),
        avatar_url: profile.branding.avatar_url.clone(),
        greeting: profile.branding.greeting.clone(),
        position: match profile.branding.position {
            Corner::Right => "right".into(),
            Corner::Left => "left".into(),
        },
        language: profile.default_language.code().to_owned(),
        retention_days: profile
            .retention_days
            .map(|d| d.to_string())
            .unwrap_or_default(),
        synonyms: profile
            .synonyms
            .iter()
            .map(|group| group.join(", "))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn settings_page(
    visitor: &Visitor,
    profile: &StoreProfile,
    form: SettingsForm,
    errors: Errors,
) -> Result<String, DashError> {
    render(&Settings {
        chrome: Chrome::of(visitor, format!("{}: settings", profile.name)),
        store: head(profile),
        form,
        errors,
        languages: pages::LANGUAGES,
    })
}

pub async fn settings_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let (_, profile, _) = member(&visitor, &state, &path, Role::Owner)?;
    let html = settings_page(
        &visitor,
        &profile,
        settings_form_of(&profile),
        Errors::default(),
    )?;
    Ok(ok(visitor, html))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SettingsBody {
    csrf: String,
    name: String,
    url: String,
    allowed_origins: String,
    instructions: String,
    color: String,
    title: String,
    avatar_url: String,
    greeting: String,
    position: String,
    language: String,
    retention_days: String,
    synonyms: String,
}

/// The settings form applied to a profile, or every refused field.
fn apply_settings(body: &SettingsBody, profile: &mut StoreProfile) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    match validate::store_name(&body.name) {
        Ok(name) => profile.name = name,
        Err(e) => errors.push(e),
    }
    match validate::shop_url(&body.url) {
        Ok(url) => profile.url = url,
        Err(e) => errors.push(e),
    }
    match validate::instructions(&body.instructions) {
        Ok(text) => profile.instructions = text,
        Err(e) => errors.push(e),
    }
    match validate::retention_days(&body.retention_days) {
        Ok(days) => profile.retention_days = days,
        Err(e) => errors.push(e),
    }
    let position = match body.position.as_str() {
        "left" => Some(Corner::Left),
        "right" => Some(Corner::Right),
        _ => {
            errors.push(FieldError::new("position", "bottom right or bottom left"));
            None
        }
    };
    let widget = WidgetSettingsBody {
        color: Some(if body.color.trim().is_empty() {
            Branding::default().color
        } else {
            body.color.trim().to_owned()
        }),
        title: Some(body.title.clone()),
        avatar_url: Some(body.avatar_url.trim().to_owned()),
        greeting: Some(body.greeting.replace("\r\n", "\n")),
        position,
        language: Some(body.language.clone()),
        allowed_origins: Some(
            body.allowed_origins
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
    };
    if let Err(e) = apply_widget_settings(widget, profile) {
        errors.push(e);
    }
    let lines: Vec<&str> = body
        .synonyms
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let groups: Vec<Vec<String>> = lines
        .iter()
        .map(|l| l.split(',').map(|w| w.trim().to_owned()).collect())
        .collect();
    // Checked a line at a time first, so a refusal names the owner's line.
    let bad_line = groups
        .iter()
        .enumerate()
        .find_map(|(i, group)| check_synonyms(vec![group.clone()]).err().map(|e| (i, e)));
    match (bad_line, check_synonyms(groups)) {
        (Some((i, message)), _) => {
            let reason = message
                .split_once(": ")
                .map_or(message.as_str(), |(_, r)| r);
            errors.push(FieldError::new(
                "synonyms",
                format!("line {}: {reason}", i + 1),
            ));
        }
        (None, Ok(groups)) => profile.synonyms = groups,
        (None, Err(message)) => errors.push(FieldError::new("synonyms", message)),
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

pub async fn save_settings(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let mut visitor = Visitor::of(&req, &state)?;
    member(&visitor, &state, &path, Role::Owner)?;
    let body: SettingsBody = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    let _changing = state.profile_changes.lock().await;
    // Read again under the lock: a catalog import or API change in between
    // is not undone.
    let (_, before, _) = member(&visitor, &state, &path, Role::Owner)?;
    let mut profile = before.clone();
    if let Err(errors) = apply_settings(&body, &mut profile) {
        let form = SettingsForm {
            name: body.name,
            url: body.url,
            allowed_origins: body.allowed_origins,
            instructions: body.instructions,
            color: body.color,
            title: body.title,
            avatar_url: body.avatar_url,
            greeting: body.greeting,
            position: body.position,
            language: body.language,
            retention_days: body.retention_days,
            synonyms: body.synonyms,
        };
        let html = settings_page(&visitor, &before, form, Errors(errors))?;
        return Ok(visitor.page(StatusCode::UNPROCESSABLE_ENTITY, html));
    }
    save_profile(&state, &before, &profile)
        .await
        .map_err(DashError::internal)?;
    tracing::info!(store = %profile.id, "store settings saved");
    visitor.notices.push("Settings saved.".into());
    let html = settings_page(
        &visitor,
        &profile,
        settings_form_of(&profile),
        Errors::default(),
    )?;
    Ok(ok(visitor, html))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DeleteBody {
    csrf: String,
    confirm: String,
}

pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let (_, profile, _) = member(&visitor, &state, &path, Role::Owner)?;
    let body: DeleteBody = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    if body.confirm.trim() != profile.id.as_str() {
        let mut form = settings_form_of(&profile);
        form.name = profile.name.clone();
        let html = settings_page(
            &visitor,
            &profile,
            form,
            FieldError::new("confirm", "type the store's id exactly to delete it").into(),
        )?;
        return Ok(visitor.page(StatusCode::UNPROCESSABLE_ENTITY, html));
    }
    let _changing = state.profile_changes.lock().await;
    state.stores.remove(&profile.id);
    // Journaled like every erasure (its receipt is the audit log's), its
    // live sessions closed, and removed before the answer, so the list
    // below no longer shows it.
    state
        .privacy
        .erase(crate::storage::erasure::ErasureScope::Store {
            store: profile.id.clone(),
        })
        .await
        .map_err(DashError::internal)?;
    state.storage.flush().await.map_err(DashError::internal)?;
    tracing::info!(store = %profile.id, "store deleted");
    Ok(visitor.redirect("/dashboard/stores"))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct UploadQuery {
    mode: String,
}

/// `PUT /dashboard/stores/{store}/catalog?mode=partial` with the feed as
/// the body and the CSRF token in `X-CSRF-Token`: the import report as
/// JSON (the page's script shows it), the same as the catalog API's.
pub async fn upload(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<UploadQuery>,
    body: web::Payload,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let (_, profile, _) = member(&visitor, &state, &path, Role::Owner)?;
    visitor.check_csrf(&req, &state, "")?;
    let mode = match query.mode.as_str() {
        "" | "all_or_nothing" => Mode::AllOrNothing,
        "partial" => Mode::Partial,
        _ => {
            let body = json!({"error": {"code": "invalid_mode", "message": "mode is all_or_nothing (the default) or partial"}});
            return Ok(visitor.json(StatusCode::BAD_REQUEST, &body));
        }
    };
    Ok(
        match import_into(&state, profile.id.as_str(), mode, Scope::Replace, body).await {
            Ok(response) => response,
            Err(refusal) => actix_web::ResponseError::error_response(&refusal),
        },
    )
}

fn tokens_page(
    visitor: &Visitor,
    state: &AppState,
    profile: &StoreProfile,
    created: Option<String>,
    name: String,
    errors: Errors,
) -> Result<String, DashError> {
    let tokens = state
        .storage
        .tokens(&profile.id)
        .map_err(DashError::internal)?
        .into_iter()
        .map(|t| TokenRow {
            id: t.id.simple().to_string(),
            name: t.name,
            created: format_time(t.created),
        })
        .collect();
    render(&Tokens {
        chrome: Chrome::of(visitor, format!("{}: API tokens", profile.name)),
        store: head(profile),
        tokens,
        created,
        token_name: name,
        errors,
    })
}

pub async fn tokens(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let (_, profile, _) = member(&visitor, &state, &path, Role::Owner)?;
    let html = tokens_page(
        &visitor,
        &state,
        &profile,
        None,
        String::new(),
        Errors::default(),
    )?;
    Ok(ok(visitor, html))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TokenBody {
    csrf: String,
    name: String,
}

/// Most API tokens a store may have.
const MAX_TOKENS_PER_STORE: usize = 50;

pub async fn create_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let (me, profile, _) = member(&visitor, &state, &path, Role::Owner)?;
    let body: TokenBody = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    let name = match validate::name("name", &body.name) {
        Ok(name) => name,
        Err(e) => {
            let html = tokens_page(&visitor, &state, &profile, None, body.name, e.into())?;
            return Ok(visitor.page(StatusCode::UNPROCESSABLE_ENTITY, html));
        }
    };
    if state
        .storage
        .tokens(&profile.id)
        .map_err(DashError::internal)?
        .len()
        >= MAX_TOKENS_PER_STORE
    {
        let error = FieldError::new(
            "name",
            format!("a store has at most {MAX_TOKENS_PER_STORE} tokens: revoke one first"),
        );
        let html = tokens_page(&visitor, &state, &profile, None, name, error.into())?;
        return Ok(visitor.page(StatusCode::UNPROCESSABLE_ENTITY, html));
    }
    let (token, text) =
        super::tokens::issue(&profile.id, name, me.account.id).map_err(DashError::internal)?;
    state
        .storage
        .put_token(&token)
        .map_err(DashError::internal)?;
    state.storage.flush().await.map_err(DashError::internal)?;
    tracing::info!(store = %profile.id, token = %token.id.simple(), "API token created");
    let html = tokens_page(
        &visitor,
        &state,
        &profile,
        Some(text),
        String::new(),
        Errors::default(),
    )?;
    Ok(ok(visitor, html))
}

pub async fn revoke_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let (store, token) = path.into_inner();
    let (_, profile, _) = member(&visitor, &state, &store, Role::Owner)?;
    let body: CsrfOnly = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    let id = Uuid::try_parse(&token).map_err(|_| DashError::NotFound)?;
    if !state
        .storage
        .remove_token(&profile.id, id)
        .map_err(DashError::internal)?
    {
        return Err(DashError::NotFound);
    }
    state.storage.flush().await.map_err(DashError::internal)?;
    tracing::info!(store = %profile.id, token = %id.simple(), "API token revoked");
    Ok(visitor.redirect(&format!("/dashboard/stores/{}/tokens", profile.id)))
}
