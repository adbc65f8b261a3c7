//! The compression benches' contract: one JSON body of about 16 KiB, built
//! once, answered by keel and by hyper, each with and without its usual
//! compression layer (`insn-count keel-gzip|hyper-gzip|...`,
//! `load/instructions.sh`).
//!
//! - keel: a handler giving the body with [`body_bytes`](keel::Response::body_bytes),
//!   wrapped in [`keel::middleware::Compression`] at the level asked.
//! - hyper: a tower `Service` answering the same bytes as `Full<Bytes>`,
//!   wrapped in tower-http's `Compression` (what `CompressionLayer::layer`
//!   builds; gzip is the only encoding compiled in) at the level asked, and
//!   served as axum serves a tower service: hyper-util's
//!   `TowerToHyperService` (one service clone per request).
//!
//! Without a layer (`None`), the same handler or service answers the
//! identity bytes: the layer's own cost is the difference.
//!
//! Both compress with flate2 on the zlib-rs backend: keel asks for it
//! (workspace `Cargo.toml`), and async-compression's flate2 (default
//! features, miniz_oxide) is the same crate in the same build, where
//! flate2 picks zlib-rs whenever that feature is on.

use crate::{hyper_app, streams};
use hyper::body::{Body, Bytes, Incoming};
use hyper::header::HeaderValue;
use hyper::StatusCode;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use keel::middleware::{Compression, HandlerExt};
use keel::{Handler, Request, Response};
use serde::Serialize;
use std::convert::Infallible;
use std::error::Error as StdError;
use std::future::{ready, Ready};
use std::io::Read;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite};
use tower_http::compression::{Compression as TowerCompression, CompressionLevel};

/// The JSON body is the longest run of whole records that fits in this.
pub const JSON_MAX_LEN: usize = 16 * 1024;

/// One record of the body: what a link shortener's list API answers.
#[derive(Serialize)]
struct Link {
    slug: String,
    target: String,
    owner: &'static str,
    clicks: u32,
    created: String,
    expires: Option<String>,
}

/// A JSON array of link records, up to [`JSON_MAX_LEN`] bytes: keys that
/// repeat, values that vary (pseudo-random, the same every run), as an API
/// list answers. Built once; each call returns the same shared buffer.
pub fn json_body() -> Bytes {
    static BODY: OnceLock<Bytes> = OnceLock::new();
    BODY.get_or_init(build_json).clone()
}

fn build_json() -> Bytes {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const HOSTS: [&str; 6] = [
        "example.org",
        "docs.example.com",
        "news.example.net",
        "shop.example.io",
        "blog.example.dev",
        "cdn.example.org",
    ];
    const WORDS: [&str; 8] = [
        "articles", "releases", "products", "guides", "videos", "events", "papers", "archive",
    ];
    const OWNERS: [&str; 4] = ["ops", "marketing", "support", "research"];
    let mut state = 0x2545_f491_u32;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let mut pick = |n: usize| next() as usize % n;
    let mut json = b"[".to_vec();
    loop {
        let link = Link {
            slug: (0..7)
                .map(|_| char::from(ALPHABET[pick(ALPHABET.len())]))
                .collect(),
            target: format!(
                "https://{}/{}/{}?utm_source=link&id={}",
                HOSTS[pick(HOSTS.len())],
                WORDS[pick(WORDS.len())],
                pick(100_000),
                pick(1_000_000_000)
            ),
            owner: OWNERS[pick(OWNERS.len())],
            clicks: pick(250_000) as u32,
            created: format!(
                "2026-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                1 + pick(12),
                1 + pick(28),
                pick(24),
                pick(60),
                pick(60)
            ),
            expires: (pick(3) == 0).then(|| format!("2027-{:02}-01T00:00:00Z", 1 + pick(12))),
        };
        let record = serde_json::to_vec(&link).expect("a link serialises");
        // A comma before the record, the closing bracket after it.
        if json.len() + 1 + record.len() + 1 > JSON_MAX_LEN {
            break;
        }
        if json.len() > 1 {
            json.push(b',');
        }
        json.extend_from_slice(&record);
    }
    json.push(b']');
    json.into()
}

/// keel's handler for every path: [`json_body`] as `application/json`.
pub fn keel_json() -> impl Handler {
    let body = json_body();
    move |_: &Request<'_>, res: &mut Response<'_>| {
        res.header("Content-Type", "application/json")
            .body_bytes(body.clone());
    }
}

/// [`keel_json`] wrapped in keel's [`Compression`] at gzip `level`.
pub fn keel_gzip(level: u32) -> impl Handler {
    keel_json().with(Compression::new().level(level))
}

/// The hyper side's service: [`json_body`] as `application/json`, for
/// every request, from a ready future (no boxing: the cheapest a tower
/// service can answer).
#[derive(Clone)]
pub struct JsonService {
    body: Bytes,
}

impl JsonService {
    /// A service answering [`json_body`].
    pub fn new() -> Self {
        JsonService { body: json_body() }
    }
}

impl Default for JsonService {
    fn default() -> Self {
        JsonService::new()
    }
}

impl<B> tower_service::Service<hyper::Request<B>> for JsonService {
    type Response = hyper::Response<http_body_util::Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Request<B>) -> Self::Future {
        ready(Ok(hyper_app::response(
            StatusCode::OK,
            Some(HeaderValue::from_static("application/json")),
            self.body.clone(),
        )))
    }
}

/// Serves [`JsonService`] on one connection until the peer closes it,
/// wrapped in tower-http's compression at `gzip` when one is given, with
/// the hello baseline's connection settings ([`hyper_app::builder`]).
pub async fn serve_json<I>(io: I, gzip: Option<CompressionLevel>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match gzip {
        None => serve(io, JsonService::new()).await,
        Some(level) => serve(io, TowerCompression::new(JsonService::new()).quality(level)).await,
    }
}

async fn serve<I, S, B>(io: I, service: S)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: tower_service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    // A peer that resets or sends garbage ends its connection.
    let _ = hyper_app::builder()
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
        .await;
}

/// The body of one complete `response` as sent, chunk framing removed.
pub fn body(response: &[u8]) -> Option<Vec<u8>> {
    let (head_len, head) = streams::response::parse_head(response).ok()??;
    let mut decoder = streams::response::BodyDecoder::new(head.framing);
    let mut body = Vec::new();
    decoder
        .decode(&response[head_len..], |data| body.extend_from_slice(data))
        .ok()?;
    decoder.is_done().then_some(body)
}

/// What [`check`] found in one answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Checked {
    /// The body's bytes as sent (gzip or identity), chunk framing excluded.
    pub body_len: usize,
    /// The whole response: head, body and any chunk framing.
    pub response_len: usize,
}

/// Checks one complete answer of the compression benches: `200`,
/// `application/json`, `Content-Encoding: gzip` when `gzip` (none
/// otherwise), and a body (`Content-Length` or chunked) that is, or
/// decodes to, [`json_body`] exactly.
///
/// # Errors
///
/// What was wrong, for the bench to stop on.
pub fn check(response: &[u8], gzip: bool) -> Result<Checked, String> {
    let mut fields = [httparse::EMPTY_HEADER; 32];
    let mut head = httparse::Response::new(&mut fields);
    match head.parse(response) {
        Ok(httparse::Status::Complete(_)) => {}
        other => return Err(format!("not a complete head: {other:?}")),
    }
    if head.code != Some(200) {
        return Err(format!("status {:?}", head.code));
    }
    let field = |name: &str| {
        head.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    if field("content-type") != Some(b"application/json") {
        return Err(format!("content-type {:?}", field("content-type")));
    }
    let encoding = field("content-encoding");
    let expected: Option<&[u8]> = if gzip { Some(b"gzip") } else { None };
    if encoding != expected {
        return Err(format!("content-encoding {encoding:?}"));
    }
    let body = body(response).ok_or("a cut or broken body")?;
    let plain = if gzip {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut plain)
            .map_err(|e| format!("not gzip: {e}"))?;
        plain
    } else {
        body.clone()
    };
    if plain != json_body() {
        return Err(format!(
            "the body ({} bytes) is not the JSON ({} bytes)",
            plain.len(),
            json_body().len()
        ));
    }
    Ok(Checked {
        body_len: body.len(),
        response_len: response.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{mem, wire};

    #[test]
    fn the_body_is_16_kib_of_valid_varied_json() {
        let body = json_body();
        assert!(
            (JSON_MAX_LEN - 256..=JSON_MAX_LEN).contains(&body.len()),
            "{}",
            body.len()
        );
        let links: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
        assert!(links.len() > 50, "{} records", links.len());
        // Realistic, not one repeated record: slugs differ.
        let mut slugs: Vec<_> = links.iter().map(|l| l["slug"].as_str().unwrap()).collect();
        slugs.sort_unstable();
        slugs.dedup();
        assert_eq!(slugs.len(), links.len());
    }

    #[test]
    fn each_server_answers_gzip_with_its_layer_and_identity_without() {
        let mut keel_gz = mem::keel_with(keel_gzip(4));
        let mut keel_plain = mem::keel_with(keel_json());
        let mut hyper_gz = mem::hyper_with(|io| serve_json(io, Some(CompressionLevel::Precise(4))));
        let mut hyper_plain = mem::hyper_with(|io| serve_json(io, None));
        for _ in 0..2 {
            keel_gz.request_with(wire::JSON_GZIP, wire::framed_len);
            hyper_gz.request_with(wire::JSON_GZIP, wire::framed_len);
            keel_plain.request_with(wire::JSON_GZIP, wire::framed_len);
            hyper_plain.request_with(wire::JSON_GZIP, wire::framed_len);
            let keel = check(keel_gz.last_response(), true).unwrap();
            let hyper = check(hyper_gz.last_response(), true).unwrap();
            // The same deflate at the same level: sizes within the framing.
            assert!(
                keel.body_len.abs_diff(hyper.body_len) < 32,
                "{keel:?} {hyper:?}"
            );
            assert!(keel.body_len * 4 < json_body().len(), "{keel:?}");
            let keel = check(keel_plain.last_response(), false).unwrap();
            let hyper = check(hyper_plain.last_response(), false).unwrap();
            assert_eq!(keel.body_len, json_body().len());
            assert_eq!(hyper.body_len, json_body().len());
        }
        // The check fails on what it should catch: a gzip answer taken for
        // identity, the reverse, and gzip bytes that do not decode to the JSON.
        assert!(check(keel_gz.last_response(), false).is_err());
        let mut broken = keel_gz.last_response().to_vec();
        let in_deflate = broken.len() - 20;
        broken[in_deflate] ^= 0x55;
        assert!(check(&broken, true).is_err());
        assert!(check(hyper_plain.last_response(), true).is_err());
    }

    #[test]
    fn tower_http_default_level_is_gzip_level_6() {
        let answer = |level| {
            let mut hyper = mem::hyper_with(move |io| serve_json(io, Some(level)));
            hyper.request_with(wire::JSON_GZIP, wire::framed_len);
            body(hyper.last_response()).unwrap()
        };
        let default = answer(CompressionLevel::Default);
        assert_eq!(default, answer(CompressionLevel::Precise(6)));
        assert_ne!(default, answer(CompressionLevel::Precise(4)));
    }
}
