//! The owners' side of the node as plain types: accounts, their roles on
//! stores, dashboard sessions, one-time links (verification, password
//! reset, invitations), per-store API tokens and cookie-consent decisions.
//! No HTTP and no sled here: [`crate::storage`] keeps these records and
//! [`crate::dashboard`] serves them. The rules every entry point shares (the
//! dashboard's forms and the `mikabot` sub-commands) live in [`validate`],
//! so both give the same messages.

pub mod password;
pub mod secret;
pub mod validate;

use std::time::{SystemTime, UNIX_EPOCH};

use mikabot_actors::ids::StoreId;
use mikabot_actors::language::Language;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Seconds since the Unix epoch, now.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How long a deleted account can still be restored.
pub const DELETION_GRACE_SECS: u64 = 30 * 24 * 3600;

/// An account's id: a time-ordered UUID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccountId(pub Uuid);

impl AccountId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// Parses the hyphenated form used in URLs.
    pub fn parse(raw: &str) -> Option<Self> {
        Uuid::try_parse(raw).ok().map(Self)
    }
}

impl Default for AccountId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A person who signs in to the dashboard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    /// Normalised: trimmed, lower case ([`validate::email`]).
    pub email: String,
    /// The argon2id PHC string.
    pub password_hash: String,
    pub language: Language,
    /// The email address was confirmed through its link.
    pub verified: bool,
    pub created: u64,
    /// When the owner deleted the account; restorable for
    /// [`DELETION_GRACE_SECS`] after it.
    pub deleted_at: Option<u64>,
    /// Suspended by the node's operator: cannot sign in.
    pub suspended: bool,
    /// A node operator (created from the CLI): lists and suspends accounts,
    /// reads no conversation.
    pub operator: bool,
}

impl Account {
    /// The last moment the account can be restored, if it is deleted.
    pub fn restorable_until(&self) -> Option<u64> {
        self.deleted_at.map(|at| at + DELETION_GRACE_SECS)
    }
}

/// What a member may do on a store. Ordered: a higher role may do all a
/// lower one may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads the store's pages and conversations.
    Viewer,
    /// A viewer who can also take conversations over; changes no setting.
    Agent,
    /// Everything on the store: settings, catalog, members, tokens, deletion.
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Agent => "agent",
            Self::Owner => "owner",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "viewer" => Some(Self::Viewer),
            "agent" => Some(Self::Agent),
            "owner" => Some(Self::Owner),
            _ => None,
        }
    }
}

/// A signed-in browser. Found by the hash of its cookie; the cookie's value
/// itself is never stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DashboardSession {
    pub account: AccountId,
    /// The synchronizer token every state change of this session carries.
    pub csrf: String,
    pub created: u64,
    /// Last request seen (updated at most once a minute).
    pub seen: u64,
}

/// What a one-time link does when it is followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkPurpose {
    /// Confirms the account's email address.
    Verify,
    /// Lets the account set a new password.
    Reset,
    /// Confirms a new email address for the account.
    ChangeEmail { email: String },
    /// Makes the account that accepts it a member of `store`.
    Invite {
        store: StoreId,
        role: Role,
        email: String,
    },
}

/// A one-time link, found by the hash of its token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneTimeLink {
    pub purpose: LinkPurpose,
    /// The account it acts on (none for an invitation).
    pub account: Option<AccountId>,
    pub expires: u64,
}

/// A per-store API token. Its secret is shown once; only its hash is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    pub id: Uuid,
    pub store: StoreId,
    pub name: String,
    pub hash: [u8; 32],
    pub created: u64,
    pub created_by: AccountId,
}

/// One cookie-consent decision, kept as evidence of what was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentRecord {
    pub id: Uuid,
    pub time: u64,
    pub policy_version: u32,
    pub functional: bool,
    pub analytics: bool,
    /// The account signed in when the choice was made, if any.
    pub account: Option<AccountId>,
}

/// A UTC time as `2026-12-02 14:05 UTC`.
pub fn format_time(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (1970 to 9999), or `None`
/// for anything else.
pub fn days_from_date(raw: &str) -> Option<u64> {
    let mut parts = raw.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (year, month, day): (i64, i64, i64) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) {
        return None;
    }
    if day < 1 || day > month_days[(month - 1) as usize] {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm), the inverse of the above.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    u64::try_from(era * 146_097 + doe - 719_468).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_as_days_and_nonsense_is_refused() {
        assert_eq!(days_from_date("1970-01-01"), Some(0));
        assert_eq!(days_from_date("2000-02-29"), Some(951_782_400 / 86_400));
        assert_eq!(days_from_date("2026-12-02"), Some(1_796_220_300 / 86_400));
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "26-12-02",
            "2026-1-2",
            "x",
            "1969-12-31",
        ] {
            assert_eq!(days_from_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(format_time(1_796_220_300), "2026-12-02 14:05 UTC");
    }

    #[test]
    fn roles_are_ordered_by_what_they_allow() {
        assert!(Role::Owner > Role::Agent && Role::Agent > Role::Viewer);
        for role in [Role::Viewer, Role::Agent, Role::Owner] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("admin"), None);
    }
}
