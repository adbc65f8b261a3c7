//! What a cell may say: the column names other shorteners use, the time
//! formats they write, the password hashes this one exports, and the
//! escape that keeps spreadsheets from reading a cell as a formula.

use crate::model::{self, UnixTime};
use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Params};
use std::borrow::Cow;

/// Import column names (lowercase, letters and digits only) for each field,
/// as this shortener and others spell them.
pub const URL_NAMES: &[&str] = &["url", "longurl", "originalurl", "target"];
pub const SLUG_NAMES: &[&str] = &["slug", "shortcode", "keyword", "code"];
/// A full short URL, whose last path segment is the slug: the fallback when
/// there is no slug column (Bitly-style exports).
pub const SHORT_URL_NAMES: &[&str] = &["shorturl", "shortlink"];
pub const CREATED_NAMES: &[&str] = &[
    "createdat",
    "created",
    "datecreated",
    "createddate",
    "timestamp",
];
pub const EXPIRES_NAMES: &[&str] = &["expiresat", "expires", "validuntil"];
pub const MAX_CLICKS_NAMES: &[&str] = &["maxclicks", "maxvisits"];
pub const DISABLED_NAMES: &[&str] = &["disabled"];
pub const CLICKS_NAMES: &[&str] = &["clicks", "visits", "visitscount"];
/// Only this shortener exports hashes (see [`password_hash`]).
pub const PASSWORD_HASH_NAMES: &[&str] = &["passwordhash"];

/// First characters that make a spreadsheet read a cell as a formula
/// (OWASP, "CSV Injection"): `=`, `+`, `-`, `@`, tab and carriage return.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// The prefix that makes a spreadsheet show a cell as text (OWASP's
/// choice). A cell that starts with it is escaped too, so that
/// [`unescape_cell`] undoes [`escape_cell`] exactly.
const ESCAPE: char = '\'';

/// `cell` safe to open in a spreadsheet: with [`ESCAPE`] in front when it
/// starts with a formula character or with the escape itself.
pub fn escape_cell(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some(first) if first == ESCAPE || FORMULA_STARTS.contains(&first) => {
            Cow::Owned(format!("{ESCAPE}{cell}"))
        }
        _ => Cow::Borrowed(cell),
    }
}

/// The cell [`escape_cell`] was given. Only for this shortener's own
/// export: another tool's leading `'` is its data.
pub fn unescape_cell(cell: &str) -> &str {
    match cell.strip_prefix(ESCAPE) {
        Some(rest)
            if rest
                .chars()
                .next()
                .is_some_and(|c| c == ESCAPE || FORMULA_STARTS.contains(&c)) =>
        {
            rest
        }
        _ => cell,
    }
}

/// The longest password hash imported; this shortener's are under 100
/// bytes. A longer one asks for a longer Argon2 output on every check.
const MAX_HASH_LEN: usize = 256;

/// Checks an imported password hash: an Argon2 PHC string (argon2id,
/// argon2i or argon2d) with its salt and hash, costing no more to check
/// than this shortener's own (argon2's defaults, which [`crate::password`]
/// uses): a file must not be able to make each password guess take
/// gigabytes. `Err` is the reason the row is skipped.
pub fn password_hash(text: &str) -> Result<String, String> {
    if text.len() > MAX_HASH_LEN {
        return Err(format!("password_hash is longer than {MAX_HASH_LEN} bytes"));
    }
    let parsed =
        PasswordHash::new(text).map_err(|e| format!("password_hash is not a PHC string: {e}"))?;
    Algorithm::try_from(parsed.algorithm)
        .map_err(|_| format!("password_hash is not Argon2 but {}", parsed.algorithm))?;
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err(String::from("password_hash has no salt or no hash"));
    }
    let params = Params::try_from(&parsed)
        .map_err(|e| format!("password_hash has bad Argon2 parameters: {e}"))?;
    if params.m_cost() > Params::DEFAULT_M_COST
        || params.t_cost() > Params::DEFAULT_T_COST
        || params.p_cost() > Params::DEFAULT_P_COST
    {
        return Err(format!(
            "password_hash costs more to check than this shortener's (m={}, t={}, p={})",
            Params::DEFAULT_M_COST,
            Params::DEFAULT_T_COST,
            Params::DEFAULT_P_COST
        ));
    }
    Ok(text.to_owned())
}

/// `https://sho.rt/abc?x#y` -> `abc`.
pub fn slug_of_short_url(short_url: &str) -> &str {
    let path = short_url.split(['?', '#']).next().unwrap_or_default();
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
}

/// RFC 3339, `YYYY-MM-DD HH:MM:SS` taken as UTC (YOURLS, MySQL dumps), or
/// Unix seconds.
pub fn parse_when(text: &str) -> Option<UnixTime> {
    if let Some(at) = model::parse_time(text) {
        return Some(at);
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let (date, time) = text.split_once(' ')?;
    model::parse_time(&format!("{date}T{time}Z"))
}

pub fn parse_flag(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" => Ok(true),
        "false" | "0" | "no" | "n" => Ok(false),
        _ => Err(format!("disabled must be true or false: {text:?}")),
    }
}
