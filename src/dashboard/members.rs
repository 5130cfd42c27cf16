//! A store's members: the owner's list, invitations by email, removal, and
//! the invitation link that makes its follower a member. An invitation
//! binds to the invited address: it is accepted by a signed-in account with
//! that (verified) address.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::account::{mail_allowed, send_link};
use super::pages::{Chrome, Errors, InvitationRow, Invite, MemberRow, Members, Message, render};
use super::stores::member;
use super::visitor::{CsrfOnly, Visitor, form};
use super::{DashError, ok};
use crate::accounts::validate::{self, FieldError};
use crate::accounts::{AccountId, LinkPurpose, OneTimeLink, Role, format_time, now_secs, secret};
use crate::http::AppState;

/// Most members a store may have.
const MAX_MEMBERS: usize = 100;

fn members_page(
    visitor: &Visitor,
    state: &AppState,
    store: &str,
    invite_email: String,
    errors: Errors,
) -> Result<String, DashError> {
    let (me, profile, _) = member(visitor, state, store, Role::Owner)?;
    let mut members = Vec::new();
    for (id, role) in state
        .storage
        .members(&profile.id)
        .map_err(DashError::internal)?
    {
        if let Some(account) = state.storage.account(id).map_err(DashError::internal)? {
            members.push(MemberRow {
                id: id.to_string(),
                name: account.name,
                email: account.email,
                role: role.as_str(),
                is_me: id == me.account.id,
            });
        }
    }
    let invitations = state
        .storage
        .invitations(&profile.id)
        .map_err(DashError::internal)?
        .into_iter()
        .map(|invitation| InvitationRow {
            id: secret::to_hex(&invitation.digest),
            email: invitation.email,
            role: invitation.role.as_str(),
            expires: format_time(invitation.expires),
        })
        .collect();
    render(&Members {
        chrome: Chrome::of(visitor, format!("{}: members", profile.name)),
        invitations,
        store: super::pages::StoreHead {
            id: profile.id.as_str().to_owned(),
            name: profile.name.clone(),
            url: profile.url.clone(),
        },
        members,
        invite_email,
        errors,
    })
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let html = members_page(&visitor, &state, &path, String::new(), Errors::default())?;
    Ok(ok(visitor, html))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct InviteBody {
    csrf: String,
    email: String,
    role: String,
}

pub async fn invite(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let mut visitor = Visitor::of(&req, &state)?;
    let (me, profile, _) = member(&visitor, &state, &path, Role::Owner)?;
    let body: InviteBody = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    let refuse =
        |visitor: Visitor, email: String, error: FieldError| -> Result<HttpResponse, DashError> {
            let html = members_page(&visitor, &state, &path, email, error.into())?;
            Ok(visitor.page(StatusCode::UNPROCESSABLE_ENTITY, html))
        };
    let email = match validate::email(&body.email) {
        Ok(email) => email,
        Err(e) => return refuse(visitor, body.email, e),
    };
    let Some(role) = Role::parse(&body.role) else {
        return refuse(
            visitor,
            email,
            FieldError::new("role", "owner, agent or viewer"),
        );
    };
    if !me.account.verified {
        return refuse(
            visitor,
            email,
            FieldError::new("email", "confirm your own email address first"),
        );
    }
    let members = state
        .storage
        .members(&profile.id)
        .map_err(DashError::internal)?;
    if members.len() >= MAX_MEMBERS {
        return refuse(
            visitor,
            email,
            FieldError::new(
                "email",
                format!("a store has at most {MAX_MEMBERS} members"),
            ),
        );
    }
    mail_allowed(&req, &state)?;
    let link = OneTimeLink {
        purpose: LinkPurpose::Invite {
            store: profile.id.clone(),
            role,
            email: email.clone(),
        },
        account: None,
        expires: now_secs() + state.dashboard.invite_link_days * 24 * 3600,
    };
    let text = format!(
        "{} invites you to {} on Mikabot as {}. Accept the invitation (sign in or create an account with this address first):",
        me.account.name,
        profile.name,
        role.as_str()
    );
    send_link(
        &state,
        &email,
        link,
        "/dashboard/invites/",
        &format!("Join {} on Mikabot", profile.name),
        &text,
    )
    .await?;
    tracing::info!(store = %profile.id, role = role.as_str(), "invitation sent");
    visitor.notices.push(format!("Invitation sent to {email}."));
    let html = members_page(&visitor, &state, &path, String::new(), Errors::default())?;
    Ok(ok(visitor, html))
}

/// The member named in a path, other than the acting owner: 404 for an id
/// that is no member of this store, 403 for the owner's own membership (an
/// owner cannot remove or demote themselves, so a store keeps an owner).
fn other_member(
    state: &AppState,
    store: &mikabot_actors::ids::StoreId,
    me: AccountId,
    raw: &str,
) -> Result<AccountId, DashError> {
    let account = AccountId::parse(raw).ok_or(DashError::NotFound)?;
    state
        .storage
        .member_role(store, account)
        .map_err(DashError::internal)?
        .ok_or(DashError::NotFound)?;
    if account == me {
        return Err(DashError::Forbidden);
    }
    Ok(account)
}

pub async fn remove(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let (store, account) = path.into_inner();
    let (me, profile, _) = member(&visitor, &state, &store, Role::Owner)?;
    let body: CsrfOnly = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    let account = other_member(&state, &profile.id, me.account.id, &account)?;
    state
        .storage
        .remove_member(&profile.id, account)
        .map_err(DashError::internal)?;
    state.storage.flush().await.map_err(DashError::internal)?;
    tracing::info!(store = %profile.id, member = %account, "member removed");
    Ok(visitor.redirect(&format!("/dashboard/stores/{}/members", profile.id)))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RoleBody {
    csrf: String,
    role: String,
}

/// Changes a member's role (never the owner's own, so a store keeps the
/// owner who made the change).
pub async fn change_role(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let (store, account) = path.into_inner();
    let (me, profile, _) = member(&visitor, &state, &store, Role::Owner)?;
    let body: RoleBody = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    let account = other_member(&state, &profile.id, me.account.id, &account)?;
    let Some(role) = Role::parse(&body.role) else {
        let html = members_page(
            &visitor,
            &state,
            &store,
            String::new(),
            FieldError::new("role", "owner, agent or viewer").into(),
        )?;
        return Ok(visitor.page(StatusCode::UNPROCESSABLE_ENTITY, html));
    };
    // Checked again in the write: a member removed meanwhile is not brought
    // back, and an owner demoted meanwhile changes nothing.
    if !state
        .storage
        .change_role(&profile.id, me.account.id, account, role)
        .map_err(DashError::internal)?
    {
        return Err(DashError::NotFound);
    }
    state.storage.flush().await.map_err(DashError::internal)?;
    tracing::info!(store = %profile.id, member = %account, role = role.as_str(), "member's role changed");
    Ok(visitor.redirect(&format!("/dashboard/stores/{}/members", profile.id)))
}

/// Revokes a pending invitation: its link opens nothing from now on.
pub async fn revoke_invitation(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let (store, invitation) = path.into_inner();
    let (_, profile, _) = member(&visitor, &state, &store, Role::Owner)?;
    let body: CsrfOnly = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    let digest = secret::from_hex(&invitation).ok_or(DashError::NotFound)?;
    if !state
        .storage
        .revoke_invitation(&profile.id, &digest)
        .map_err(DashError::internal)?
    {
        return Err(DashError::NotFound);
    }
    state.storage.flush().await.map_err(DashError::internal)?;
    tracing::info!(store = %profile.id, "invitation revoked");
    Ok(visitor.redirect(&format!("/dashboard/stores/{}/members", profile.id)))
}

/// The live invitation behind a link token.
fn invitation_of(
    state: &AppState,
    raw: &str,
) -> Result<Option<(mikabot_actors::ids::StoreId, Role, String)>, DashError> {
    if !secret::well_formed(raw) {
        return Ok(None);
    }
    Ok(
        match state
            .storage
            .link(&secret::digest(raw))
            .map_err(DashError::internal)?
        {
            Some(OneTimeLink {
                purpose: LinkPurpose::Invite { store, role, email },
                expires,
                ..
            }) if expires > now_secs() => Some((store, role, email)),
            _ => None,
        },
    )
}

fn dead(visitor: Visitor) -> Result<HttpResponse, DashError> {
    let html = render(&Message {
        chrome: Chrome::of(&visitor, "This invitation does not work"),
        heading: "This invitation does not work".into(),
        lines: vec![
            "It was used already or has expired. Ask the store's owner for a new one.".into(),
        ],
        link: None,
    })?;
    Ok(visitor.page(StatusCode::NOT_FOUND, html))
}

pub async fn invitation(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let Some((store, role, email)) = invitation_of(&state, &path)? else {
        return dead(visitor);
    };
    let Some(profile) = state.storage.store(&store).map_err(DashError::internal)? else {
        return dead(visitor);
    };
    let html = render(&Invite {
        chrome: Chrome::of(&visitor, format!("Join {}", profile.name)),
        token: path.into_inner(),
        store_name: profile.name,
        role: role.as_str(),
        email,
        signed_in: visitor.signed_in.is_some(),
    })?;
    Ok(ok(visitor, html))
}

pub async fn accept(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, DashError> {
    let visitor = Visitor::of(&req, &state)?;
    let me = visitor.require_active()?.account.clone();
    let body: CsrfOnly = form(&body)?;
    visitor.check_csrf(&req, &state, &body.csrf)?;
    let Some((_, _, email)) = invitation_of(&state, &path)? else {
        return dead(visitor);
    };
    if email != me.email || !me.verified {
        let html = render(&Message {
            chrome: Chrome::of(&visitor, "Another address was invited"),
            heading: "Another address was invited".into(),
            lines: vec![format!(
                "This invitation is for {email}. Sign in with that address (confirmed) to accept it."
            )],
            link: None,
        })?;
        return Ok(visitor.page(StatusCode::FORBIDDEN, html));
    }
    let taken = state
        .storage
        .take_link_if(&secret::digest(&path), |l| {
            matches!(l.purpose, LinkPurpose::Invite { .. })
        })
        .map_err(DashError::internal)?;
    let Some(OneTimeLink {
        purpose: LinkPurpose::Invite { store, role, .. },
        ..
    }) = taken
    else {
        return dead(visitor);
    };
    if state
        .storage
        .store(&store)
        .map_err(DashError::internal)?
        .is_none()
    {
        return dead(visitor);
    }
    // An existing member keeps the higher of its roles.
    let current = state
        .storage
        .member_role(&store, me.id)
        .map_err(DashError::internal)?;
    let role = current.map_or(role, |c| c.max(role));
    state
        .storage
        .set_member(&store, me.id, role)
        .map_err(DashError::internal)?;
    state.storage.flush().await.map_err(DashError::internal)?;
    tracing::info!(store = %store, member = %me.id, role = role.as_str(), "invitation accepted");
    Ok(visitor.redirect(&format!("/dashboard/stores/{store}")))
}
