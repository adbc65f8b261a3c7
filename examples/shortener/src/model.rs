//! What the shortener stores and returns: links, their changes and their
//! click counts. Plain data shared by every store, the cache and the API.

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Seconds since the Unix epoch, UTC. Every time the shortener keeps is one.
pub type UnixTime = i64;

/// Days since the Unix epoch, UTC: the key of per-day click counts.
pub type Day = i32;

/// A stored short link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Store-assigned, never reused: click batches name links by it, so a
    /// slug deleted and created again does not inherit the old counts.
    pub id: i64,
    pub slug: String,
    pub url: String,
    pub created_at: UnixTime,
    pub expires_at: Option<UnixTime>,
    pub disabled: bool,
    /// The link answers `410` once it has been followed this many times.
    pub max_clicks: Option<u64>,
    /// Clicks flushed to the store so far.
    pub clicks: u64,
    /// Argon2 PHC string; the redirect asks for the password first.
    pub password_hash: Option<String>,
}

impl Link {
    /// Whether the link still redirects at `now` (expiry, disabled flag and
    /// click budget; the password is checked separately).
    pub fn is_live(&self, now: UnixTime) -> bool {
        !self.disabled
            && self.expires_at.is_none_or(|at| now < at)
            && self.max_clicks.is_none_or(|max| self.clicks < max)
    }
}

/// A link to create. Validated by the API before it reaches a store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewLink {
    pub url: String,
    /// `None`: the store generates one (see [`crate::slug::generate`]) and,
    /// when a link with the same URL and no custom settings exists, returns
    /// that one instead.
    pub slug: Option<String>,
    pub expires_at: Option<UnixTime>,
    pub max_clicks: Option<u64>,
    pub password_hash: Option<String>,
    /// When the link was created; `None` means now. Imports keep the
    /// original date.
    pub created_at: Option<UnixTime>,
    /// Created disabled (an import of a disabled link).
    pub disabled: bool,
    /// Clicks it starts with (an import's visit count), written in the same
    /// transaction as the link.
    pub clicks: u64,
}

impl NewLink {
    /// Whether a request for this link may be answered with an existing
    /// link to the same URL: only a plain one (generated slug, no expiry,
    /// no click budget, no password) on both sides.
    pub fn is_plain(&self) -> bool {
        self.slug.is_none()
            && self.expires_at.is_none()
            && self.max_clicks.is_none()
            && self.password_hash.is_none()
            && !self.disabled
            && self.clicks == 0
    }
}

/// The outcome of a create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    pub link: Link,
    /// `true`: an existing plain link to the same URL was returned (`200`),
    /// nothing was written.
    pub existed: bool,
}

/// A change to a link; `None` fields stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkPatch {
    pub url: Option<String>,
    /// `Some(None)` removes the expiry.
    pub expires_at: Option<Option<UnixTime>>,
    pub disabled: Option<bool>,
    /// `Some(None)` removes the click budget.
    pub max_clicks: Option<Option<u64>>,
    /// `Some(None)` removes the password.
    pub password_hash: Option<Option<String>>,
}

/// One page of links, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub links: Vec<Link>,
    /// Pass back as `before` for the next page; `None` on the last page.
    pub next: Option<i64>,
}

impl Page {
    /// The page from up to `limit + 1` links read newest first: the extra
    /// one only says that more follow, and the cursor is the last kept.
    pub fn of(mut links: Vec<Link>, limit: usize) -> Page {
        let more = links.len() > limit;
        links.truncate(limit);
        let next = if more {
            links.last().map(|link| link.id)
        } else {
            None
        };
        Page { links, next }
    }
}

/// Click counts for one link gathered since the last flush.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkClicks {
    pub link_id: i64,
    /// Sum of `days`.
    pub total: u64,
    pub days: Vec<(Day, u64)>,
    /// Referrer host (lowercase, `""` for none) and count.
    pub referrers: Vec<(String, u64)>,
    /// User-agent family (see [`crate::clicks::AgentFamily`]) and count.
    pub agents: Vec<(String, u64)>,
}

/// What the stats endpoint shows for one link.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LinkStats {
    pub total: u64,
    /// Oldest first, days with clicks only.
    pub days: Vec<DayCount>,
    /// Most clicks first, at most [`TOP_N`].
    pub referrers: Vec<NamedCount>,
    /// Most clicks first, at most [`TOP_N`].
    pub agents: Vec<NamedCount>,
}

/// How many referrers and agents the stats list.
pub const TOP_N: usize = 10;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DayCount {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub clicks: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NamedCount {
    pub name: String,
    pub clicks: u64,
}

/// The current time as [`UnixTime`].
pub fn now() -> UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The [`Day`] that `at` falls on.
pub fn day_of(at: UnixTime) -> Day {
    at.div_euclid(86_400) as Day
}

/// `YYYY-MM-DD` for a [`Day`].
pub fn format_day(day: Day) -> String {
    match OffsetDateTime::from_unix_timestamp(i64::from(day) * 86_400) {
        Ok(t) => format!("{:04}-{:02}-{:02}", t.year(), t.month() as u8, t.day()),
        Err(_) => String::from("invalid"),
    }
}

/// RFC 3339 in UTC, seconds precision: `2026-11-25T10:00:00Z`.
pub fn format_time(at: UnixTime) -> String {
    OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| String::from("invalid"))
}

/// Parses an RFC 3339 time with any offset; fractions of a second are
/// dropped.
pub fn parse_time(text: &str) -> Option<UnixTime> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_through_rfc3339() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(parse_time("2026-11-25T10:00:00Z"), Some(1_795_600_800));
        assert_eq!(parse_time("2026-11-25T11:00:00+01:00"), Some(1_795_600_800));
        assert_eq!(format_time(1_795_600_800), "2026-11-25T10:00:00Z");
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(format_day(day_of(1_795_600_800)), "2026-11-25");
        assert_eq!(day_of(-1), -1);
    }

    #[test]
    fn liveness_follows_expiry_flag_and_budget() {
        let link = Link {
            id: 1,
            slug: "abc".into(),
            url: "https://example.com/".into(),
            created_at: 0,
            expires_at: Some(100),
            disabled: false,
            max_clicks: Some(2),
            clicks: 1,
            password_hash: None,
        };
        assert!(link.is_live(99));
        assert!(!link.is_live(100));
        assert!(!Link {
            clicks: 2,
            ..link.clone()
        }
        .is_live(0));
        assert!(!Link {
            disabled: true,
            ..link.clone()
        }
        .is_live(0));
    }
}
