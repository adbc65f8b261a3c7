//! The web pages: `/` (shorten a link), `/links` (recent links),
//! `/links/:slug/live` (a link's clicks as they happen), their CSS and
//! JavaScript, and the HTML answers of the redirect path (`404`, `410`
//! and the password prompt).
//!
//! Every asset is compiled into the binary, so a deploy is one file. Static
//! assets are answered by keel's file rules ([`keel::files::answer`]) from
//! their `&'static` bytes (serving them allocates nothing), with a strong
//! `ETag` from a hash computed at compile time: browsers revalidate
//! (`Cache-Control: no-cache`) and get `304` until the binary changes, and
//! conditional requests and ranges follow RFC 9110 as for a file on disk.
//! `--assets DIR` ([`crate::assets`]) adds a directory under `/static/`.

use crate::assets::AssetDir;
use keel::files::{answer, Body, Encoding, Representation, Validators};
use keel::{field, Request, Response, Router, StatusCode};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

/// The `Content-Security-Policy` of the pages: nothing from other origins,
/// no inline script or style, no framing.
pub const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
script-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The password page's policy: [`CSP`] except `form-action`, which browsers
/// also enforce on the redirects that follow a form submission. The right
/// password redirects to the link's target, on any origin; `'self'` alone
/// would block it.
const PASSWORD_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
script-src 'self'; base-uri 'none'; form-action 'self' http: https:; frame-ancestors 'none'";

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// One embedded file and what is sent with it.
struct Asset {
    body: &'static [u8],
    content_type: &'static str,
    /// Whether this is a page (it gets the CSP and `Referrer-Policy`).
    page: bool,
    /// FNV-1a of `body`: what tells this asset's `ETag` from another's.
    hash: u64,
}

impl Asset {
    const fn new(body: &'static [u8], content_type: &'static str, page: bool) -> Asset {
        Asset {
            body,
            content_type,
            page,
            hash: fnv1a(body),
        }
    }
}

static INDEX: Asset = Asset::new(include_bytes!("../assets/index.html"), HTML, true);
static LINKS: Asset = Asset::new(include_bytes!("../assets/links.html"), HTML, true);
/// The same shell for every slug: the script reads the slug from the
/// address and the clicks from the API, with the key the user gave it.
static LIVE: Asset = Asset::new(include_bytes!("../assets/live.html"), HTML, true);
static APP_CSS: Asset = Asset::new(include_bytes!("../assets/app.css"), CSS, false);
static APP_JS: Asset = Asset::new(include_bytes!("../assets/app.js"), JS, false);

const NOT_FOUND_HTML: &[u8] = include_bytes!("../assets/not_found.html");
const GONE_HTML: &[u8] = include_bytes!("../assets/gone.html");
const LIMITED_HTML: &[u8] = include_bytes!("../assets/limited.html");
const PASSWORD_TEMPLATE: &str = include_str!("../assets/password.html");

/// FNV-1a (64 bits) of `bytes`. A `const fn`, so each asset's hash is
/// computed by the compiler: no startup work, no lock.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

/// Adds the page routes to `router`: `GET /` (the shorten form), `GET
/// /links` (recent links), `GET /links/:slug/live` (one link's clicks, live;
/// a static page, the same for every slug) and `GET /static/*path`:
/// `app.css` and `app.js`, and with `assets` (`--assets DIR`) every file of
/// the directory, whose `app.css` and `app.js` replace the embedded ones;
/// any other name is a plain-text `404`. `HEAD` comes with each `GET`.
///
/// Serving the embedded assets allocates nothing. Each answer carries a
/// strong `ETag`, `Accept-Ranges: bytes`, `Cache-Control: no-cache` and
/// `X-Content-Type-Options: nosniff`; conditional requests and ranges are
/// answered as [`keel::files::answer`] says (`304`, `412`, `206`, `416`).
/// Pages also carry [`CSP`] and `Referrer-Policy: no-referrer`.
pub fn routes(router: Router, assets: Option<Arc<AssetDir>>) -> Router {
    router
        .get("/", |req: &Request<'_>, res: &mut Response<'_>| {
            serve(req, res, &INDEX)
        })
        .get("/links", |req: &Request<'_>, res: &mut Response<'_>| {
            serve(req, res, &LINKS)
        })
        .get(
            "/links/:slug/live",
            |req: &Request<'_>, res: &mut Response<'_>| serve(req, res, &LIVE),
        )
        .get(
            "/static/*path",
            move |req: &Request<'_>, res: &mut Response<'_>| {
                static_file(assets.as_deref(), req, res)
            },
        )
}

/// `/static/*path`: the directory's file when there is one, else the
/// embedded `app.css` or `app.js`, else `404`.
fn static_file(dir: Option<&AssetDir>, req: &Request<'_>, res: &mut Response<'_>) {
    let name = req.param("path").unwrap_or("");
    let embedded = match name {
        "app.css" => Some(&APP_CSS),
        "app.js" => Some(&APP_JS),
        _ => None,
    };
    match (dir, embedded) {
        (Some(dir), Some(asset)) if !dir.has_file(name) => serve(req, res, asset),
        (Some(dir), _) => dir.serve(req, res),
        (None, Some(asset)) => serve(req, res, asset),
        (None, None) => {
            res.status(StatusCode::NOT_FOUND)
                .field(field!("Content-Type", "text/plain; charset=utf-8"))
                .field(field!("X-Content-Type-Options", "nosniff"))
                .field(field!("Cache-Control", "no-store"))
                .body(b"no such file\n");
        }
    }
}

/// Answers with an embedded asset through keel's file rules. Allocates
/// nothing: the validators and every header value live on the stack.
fn serve(req: &Request<'_>, res: &mut Response<'_>, asset: &'static Asset) {
    res.field(field!("X-Content-Type-Options", "nosniff"));
    if asset.page {
        res.header("Content-Security-Policy", CSP)
            .field(field!("Referrer-Policy", "no-referrer"));
    }
    let len = asset.body.len() as u64;
    // No modification time: the bytes are the binary's, and the hash
    // changes with them (the `ETag` alone validates; no `Last-Modified`).
    let validators = Validators::from_parts(asset.hash, None, len, SystemTime::now());
    let representation = Representation {
        len,
        validators: &validators,
        content_type: asset.content_type,
        encoding: Encoding::Identity,
        varies_by_encoding: false,
        cache_control: Some("no-cache"),
    };
    answer(req, res, &representation, Body::Static(asset.body));
}

/// Headers every HTML answer of the redirect path carries. They are
/// `no-store`: the same address may answer differently a minute later
/// (a link created, re-enabled, or its password page with an error).
fn dynamic_page_headers(res: &mut Response<'_>, csp: &str) {
    res.header("Content-Type", HTML)
        .header("Content-Security-Policy", csp)
        .field(field!("X-Content-Type-Options", "nosniff"))
        .field(field!("Referrer-Policy", "no-referrer"))
        .field(field!("Cache-Control", "no-store"));
}

/// Answers `404 Not Found` with the "link not found" page. Allocates nothing.
pub fn not_found_page(res: &mut Response<'_>) {
    res.status(StatusCode::NOT_FOUND);
    dynamic_page_headers(res, CSP);
    res.body(NOT_FOUND_HTML);
}

/// Answers `410 Gone` with the "link no longer available" page (expired,
/// disabled or out of clicks). Allocates nothing.
pub fn gone_page(res: &mut Response<'_>) {
    res.status(StatusCode::GONE);
    dynamic_page_headers(res, CSP);
    res.body(GONE_HTML);
}

/// Answers `200 OK` with the "open this in a browser" page that a link
/// preview or crawler gets for a link with a click budget, in place of the
/// redirect (which would show it the target). Allocates nothing.
pub fn limited_link_page(res: &mut Response<'_>) {
    res.status(StatusCode::OK);
    dynamic_page_headers(res, CSP);
    res.body(LIMITED_HTML);
}

/// Answers with the password prompt of the protected link `slug`: a form
/// that posts a `password` field to `/<slug>`, showing `error` when given
/// (e.g. "Wrong password"). `status` is `200` for the first prompt, `401`
/// after a wrong password. `slug` and `error` are HTML-escaped;
/// `Cache-Control: no-store`.
///
/// Allocates only when `slug` or `error` holds a character to escape.
pub fn password_page(res: &mut Response<'_>, status: StatusCode, slug: &str, error: Option<&str>) {
    res.status(status);
    dynamic_page_headers(res, PASSWORD_CSP);
    let error = error.unwrap_or("");
    let mut rest = PASSWORD_TEMPLATE;
    // The template is ours and holds `{{slug}}` and `{{error}}` only; an
    // unknown `{{name}}` is written as it stands.
    while let Some(open) = rest.find("{{") {
        let Some(len) = rest[open + 2..].find("}}") else {
            break;
        };
        res.write(&rest.as_bytes()[..open]);
        let placeholder = &rest[open..open + 2 + len + 2];
        match &placeholder[2..2 + len] {
            "slug" => res.write(html_escape(slug).as_bytes()),
            "error" => res.write(html_escape(error).as_bytes()),
            _ => res.write(placeholder.as_bytes()),
        };
        rest = &rest[open + placeholder.len()..];
    }
    res.write(rest.as_bytes());
}

/// Escapes `&`, `<`, `>`, `"` and `'`, which makes `text` safe in element
/// content and in quoted attribute values. Borrows when there is nothing to
/// escape.
fn html_escape(text: &str) -> Cow<'_, str> {
    let special = |c: char| matches!(c, '&' | '<' | '>' | '"' | '\'');
    let Some(first) = text.find(special) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 16);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel::testing::{MemoryConn, TestResponse};

    fn get(conn: &mut MemoryConn<keel::Routes>, target: &str, extra: &str) -> TestResponse {
        let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
        conn.send(request.as_bytes());
        let mut responses = conn.responses().expect("a parsable response");
        assert_eq!(responses.len(), 1, "one response to {target}");
        responses.remove(0)
    }

    fn pages() -> MemoryConn<keel::Routes> {
        MemoryConn::new(routes(Router::new(), None).build().expect("routes build"))
    }

    #[test]
    fn pages_are_html_with_the_security_headers() {
        let mut conn = pages();
        for (path, asset) in [
            ("/", &INDEX),
            ("/links", &LINKS),
            ("/links/abc/live", &LIVE),
        ] {
            let res = get(&mut conn, path, "");
            assert_eq!(res.status, 200, "{path}");
            assert_eq!(res.header("content-type"), Some(HTML), "{path}");
            assert_eq!(res.header("content-security-policy"), Some(CSP), "{path}");
            assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
            assert_eq!(res.header("referrer-policy"), Some("no-referrer"));
            assert_eq!(res.header("cache-control"), Some("no-cache"));
            assert_eq!(res.body, asset.body, "{path}");
        }
    }

    /// The live page holds nothing of the link it shows: the same bytes
    /// whatever the slug, even one made to look like markup.
    #[test]
    fn the_live_page_is_one_shell_for_every_slug() {
        let mut conn = pages();
        for slug in ["abc", "x%3Cscript%3E", "%22onload=alert(1)"] {
            let res = get(&mut conn, &format!("/links/{slug}/live"), "");
            assert_eq!(res.status, 200, "{slug}");
            assert_eq!(res.body, LIVE.body, "{slug}");
        }
        let text = std::str::from_utf8(LIVE.body).unwrap();
        assert!(text.contains("id=\"live-clicks\""));
        assert!(!text.contains("abc"));
    }

    #[test]
    fn static_files_have_their_types_and_unknown_ones_are_404() {
        let mut conn = pages();
        let css = get(&mut conn, "/static/app.css", "");
        assert_eq!(css.status, 200);
        assert_eq!(css.header("content-type"), Some(CSS));
        assert_eq!(css.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(css.body, APP_CSS.body);
        let js = get(&mut conn, "/static/app.js", "");
        assert_eq!(js.header("content-type"), Some(JS));
        assert_eq!(js.body, APP_JS.body);
        for missing in ["/static/nope.js", "/static/index.html", "/static/..%2fsrc"] {
            let res = get(&mut conn, missing, "");
            assert_eq!(res.status, 404, "{missing}");
            assert_eq!(
                res.header("content-type"),
                Some("text/plain; charset=utf-8")
            );
            assert_eq!(res.text(), "no such file\n");
        }
    }

    /// The `ETag` keel's file rules send for `asset`: its hash, no time,
    /// its length.
    fn etag(asset: &Asset) -> String {
        format!("\"{:x}-0-{:x}\"", asset.hash, asset.body.len())
    }

    #[test]
    fn a_matching_if_none_match_gets_304() {
        let mut conn = pages();
        let first = get(&mut conn, "/static/app.js", "");
        let etag = first.header("etag").expect("an ETag").to_owned();
        assert_eq!(etag, self::etag(&APP_JS));
        assert_eq!(first.header("accept-ranges"), Some("bytes"));
        assert_eq!(first.header("last-modified"), None, "no time to tell");
        for header in [
            format!("If-None-Match: {etag}\r\n"),
            format!("If-None-Match: W/{etag}\r\n"),
            format!("If-None-Match: \"other\", {etag}\r\n"),
            format!("If-None-Match: \"other\"\r\nIf-None-Match: {etag}\r\n"),
            "If-None-Match: *\r\n".to_owned(),
        ] {
            let res = get(&mut conn, "/static/app.js", &header);
            assert_eq!(res.status, 304, "{header}");
            assert!(res.body.is_empty());
            assert_eq!(res.header("etag"), Some(etag.as_str()));
            assert_eq!(res.header("cache-control"), Some("no-cache"));
        }
        let stale = get(&mut conn, "/static/app.js", "If-None-Match: \"0000\"\r\n");
        assert_eq!(stale.status, 200);
        assert_eq!(stale.body, APP_JS.body);
        // Each asset has its own tag.
        let tags = [&INDEX, &LINKS, &LIVE, &APP_CSS, &APP_JS].map(self::etag);
        for (i, a) in tags.iter().enumerate() {
            assert!(tags[i + 1..].iter().all(|b| a != b));
        }
    }

    /// The rest of RFC 9110's rules hold for embedded bytes as for a file:
    /// `If-Match` (strong comparison), ranges, `If-Range`.
    #[test]
    fn if_match_and_ranges_follow_rfc_9110() {
        let mut conn = pages();
        let tag = etag(&INDEX);
        let res = get(&mut conn, "/", "If-Match: \"other\"\r\n");
        assert_eq!(res.status, 412);
        let res = get(&mut conn, "/", &format!("If-Match: W/{tag}\r\n"));
        assert_eq!(res.status, 412, "If-Match compares strongly");
        let res = get(&mut conn, "/", &format!("If-Match: {tag}\r\n"));
        assert_eq!(res.status, 200);
        let res = get(&mut conn, "/static/app.css", "Range: bytes=0-9\r\n");
        assert_eq!(res.status, 206);
        let len = APP_CSS.body.len();
        let range = format!("bytes 0-9/{len}");
        assert_eq!(res.header("content-range"), Some(range.as_str()));
        assert_eq!(res.body, &APP_CSS.body[..10]);
        let res = get(
            &mut conn,
            "/static/app.css",
            &format!("Range: bytes={len}-\r\n"),
        );
        assert_eq!(res.status, 416);
        let stale_if_range = "Range: bytes=0-9\r\nIf-Range: \"old\"\r\n";
        let res = get(&mut conn, "/static/app.css", stale_if_range);
        assert_eq!(res.status, 200, "a stale If-Range gets the whole body");
        assert_eq!(res.body, APP_CSS.body);
    }

    #[test]
    fn head_gets_the_length_without_the_body() {
        let mut conn = pages();
        conn.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
        let reply = String::from_utf8(conn.recv()).unwrap();
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"));
        let length = format!("\r\nContent-Length: {}\r\n", INDEX.body.len());
        assert!(reply.contains(&length), "{reply}");
        assert!(reply.ends_with("\r\n\r\n"));
    }

    #[test]
    fn fnv1a_matches_the_published_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    fn answer(handler: fn(&mut Response<'_>)) -> TestResponse {
        let mut conn =
            MemoryConn::new(move |_req: &Request<'_>, res: &mut Response<'_>| handler(res));
        conn.send(b"GET /abc HTTP/1.1\r\nHost: x\r\n\r\n");
        conn.responses().unwrap().remove(0)
    }

    #[test]
    fn not_found_and_gone_are_html_pages() {
        let res = answer(not_found_page);
        assert_eq!(res.status, 404);
        assert_eq!(res.header("content-type"), Some(HTML));
        assert_eq!(res.header("content-security-policy"), Some(CSP));
        assert_eq!(res.header("cache-control"), Some("no-store"));
        assert!(res.text().contains("<title>Link not found</title>"));
        let res = answer(gone_page);
        assert_eq!(res.status, 410);
        assert_eq!(res.header("content-type"), Some(HTML));
        assert!(res.text().contains("no longer available"));
    }

    #[test]
    fn the_password_page_escapes_slug_and_error() {
        let res = answer(|res| {
            password_page(
                res,
                StatusCode::UNAUTHORIZED,
                "<script>x</script>",
                Some("Wrong \"password\" & <b>'try'</b>"),
            )
        });
        assert_eq!(res.status, 401);
        assert_eq!(res.header("content-type"), Some(HTML));
        assert_eq!(res.header("cache-control"), Some("no-store"));
        assert_eq!(res.header("content-security-policy"), Some(PASSWORD_CSP));
        let body = res.text();
        assert!(
            !body.contains("<script>") && !body.contains("<b>"),
            "{body}"
        );
        assert!(!body.contains("{{"), "every placeholder is filled: {body}");
        assert!(body.contains("action=\"/&lt;script&gt;x&lt;/script&gt;\""));
        assert!(
            body.contains(">Wrong &quot;password&quot; &amp; &lt;b&gt;&#39;try&#39;&lt;/b&gt;</p>")
        );
        assert_eq!(res.body.len(), body.len(), "Content-Length matches");
    }

    #[test]
    fn the_password_page_without_error_has_an_empty_alert() {
        let res = answer(|res| password_page(res, StatusCode::OK, "Xk3p9Qa", None));
        assert_eq!(res.status, 200);
        let body = res.text();
        assert!(body.contains("method=\"post\" action=\"/Xk3p9Qa\""));
        assert!(body.contains("<code>/Xk3p9Qa</code>"));
        // Empty, so the stylesheet's `.error:empty` hides it.
        assert!(body.contains("role=\"alert\"></p>"), "{body}");
        assert!(body.contains("name=\"password\""));
    }

    #[test]
    fn html_escape_borrows_plain_text() {
        assert!(matches!(html_escape("plain-slug_9"), Cow::Borrowed(_)));
        assert_eq!(html_escape("a<b>&\"'c"), "a&lt;b&gt;&amp;&quot;&#39;c");
        assert_eq!(html_escape("é<"), "é&lt;");
    }

    /// The CSP forbids inline script and style and other origins: the
    /// assets must not rely on any of them.
    #[test]
    fn assets_fit_the_csp() {
        let html = [
            ("index.html", INDEX.body),
            ("links.html", LINKS.body),
            ("live.html", LIVE.body),
            ("not_found.html", NOT_FOUND_HTML),
            ("gone.html", GONE_HTML),
            ("password.html", PASSWORD_TEMPLATE.as_bytes()),
        ];
        for (name, body) in html {
            let text = std::str::from_utf8(body).expect("UTF-8");
            let lower = text.to_ascii_lowercase();
            assert!(!lower.contains("<style"), "{name}: inline <style>");
            assert!(!lower.contains(" style="), "{name}: style attribute");
            for (i, _) in lower.match_indices(" on") {
                let rest = &lower[i + 3..];
                let word = rest.find(|c: char| !c.is_ascii_lowercase()).unwrap_or(0);
                assert!(
                    !rest[word..].starts_with('='),
                    "{name}: inline event handler"
                );
            }
            assert!(!lower.contains("javascript:"), "{name}");
            for script in lower.match_indices("<script").map(|(i, _)| &lower[i..]) {
                let tag = &script[..script.find('>').unwrap()];
                assert!(tag.contains(" src=\"/static/"), "{name}: inline script");
            }
            for attr in ["src=\"", "href=\""] {
                for (i, _) in lower.match_indices(attr) {
                    let url = &lower[i + attr.len()..];
                    assert!(
                        url.starts_with('/') || url.starts_with('#') || url.starts_with("data:"),
                        "{name}: {attr}{} leaves this origin",
                        &url[..url.find('"').unwrap()]
                    );
                }
            }
            assert!(lower.starts_with("<!doctype html>"), "{name}");
            assert!(lower.contains("<meta name=\"viewport\""), "{name}");
        }
    }
}
