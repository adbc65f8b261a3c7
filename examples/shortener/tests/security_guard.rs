//! Password guessing and client addresses behind proxies, attacked over
//! real sockets against the real binary (issue 12, findings 4 and 5):
//! a guess flood from many addresses neither starves the API nor grows
//! memory; a link takes a bounded number of guesses whoever sends them;
//! a client cannot pick its rate-limit key by writing `X-Forwarded-For`,
//! nor lock out the other clients of its proxy; new passwords are long
//! enough to be worth guessing at.

mod util;

use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use util::attack::peak_rss_kib;
use util::{assert_error, form_encode, json, Options, Response, Shortener};

const KEY: &str = "guard-test-key-0123456789abcdef";
const PASSWORD: &str = "correct horse battery";

/// A server with an API key, trusting 127.0.0.1 as its proxy, plus `args`.
fn behind_proxy(args: &[(&str, &str)]) -> Shortener {
    let mut options = Options::new()
        .env("SHORTENER_API_KEYS", KEY)
        .key(KEY)
        .arg("--trusted-proxy", "127.0.0.1/32");
    for (flag, value) in args {
        options = options.arg(flag, value);
    }
    options.start()
}

fn protect(server: &Shortener, slug: &str) {
    server.create(
        json!({"url": format!("https://example.com/{slug}"), "slug": slug, "password": PASSWORD}),
    );
}

/// The password form posted with `X-Forwarded-For` lines `forwarded` (the
/// proxy's, last) and `extra` headers.
fn guess(
    server: &Shortener,
    slug: &str,
    password: &str,
    forwarded: &[&str],
    extra: &[(&str, &str)],
) -> Response {
    let body = format!("password={}", form_encode(password));
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    headers.extend(forwarded.iter().map(|line| ("X-Forwarded-For", *line)));
    headers.extend_from_slice(extra);
    server.request("POST", &format!("/{slug}"), &headers, body.as_bytes())
}

fn retry_after(res: &Response) -> u64 {
    res.header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After: {} {:?}", res.status, res.headers))
}

#[test]
fn a_guess_flood_from_600_addresses_leaves_the_api_fast_and_memory_flat() {
    // The per-link limit is lifted here: this is about the lane.
    let server = Arc::new(behind_proxy(&[("--link-guesses", "1000000")]));
    protect(&server, "vault");
    assert_eq!(
        guess(&server, "vault", "warm-up guess", &["192.0.2.1"], &[]).status,
        401
    );

    let flooding = Arc::new(AtomicBool::new(true));
    let api = {
        let (server, flooding) = (Arc::clone(&server), Arc::clone(&flooding));
        thread::spawn(move || {
            let mut calls = Vec::new();
            while flooding.load(Ordering::SeqCst) || calls.len() < 20 {
                let started = Instant::now();
                let res = server.api("GET", "/api/links/vault", None);
                calls.push((res.status, started.elapsed()));
            }
            calls
        })
    };
    // 600 guesses, each from its own address, 40 at a time.
    let guessers: Vec<_> = (0..40u32)
        .map(|t| {
            let server = Arc::clone(&server);
            thread::spawn(move || {
                (0..15u32)
                    .map(|i| {
                        let n = t * 15 + i;
                        let client = format!("10.{}.{}.7", n / 256, n % 256);
                        let started = Instant::now();
                        let res = guess(
                            &server,
                            "vault",
                            &format!("guess number {n}"),
                            &[&client],
                            &[],
                        );
                        let retry = res.header("retry-after").map(str::to_owned);
                        (res.status, started.elapsed(), retry)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let guesses: Vec<_> = guessers
        .into_iter()
        .flat_map(|g| g.join().unwrap())
        .collect();
    flooding.store(false, Ordering::SeqCst);
    let calls = api.join().unwrap();

    assert_eq!(guesses.len(), 600);
    let checked = guesses.iter().filter(|g| g.0 == 401).count();
    let refused: Vec<_> = guesses.iter().filter(|g| g.0 == 503).collect();
    assert_eq!(checked + refused.len(), 600, "only 401 or 503: {guesses:?}");
    assert!(checked >= 2, "some guesses were checked: {checked}");
    assert!(
        refused.len() >= 300,
        "most of a burst is refused, not queued: {} refused",
        refused.len()
    );
    // Refused at once: never queued behind Argon2 or the store.
    let slowest_refusal = refused.iter().map(|g| g.1).max().unwrap();
    assert!(
        slowest_refusal < Duration::from_millis(500),
        "{slowest_refusal:?}"
    );
    assert!(refused.iter().all(|g| g.2.as_deref() == Some("1")));

    // The API went on answering, and fast.
    assert!(calls.len() >= 20);
    assert!(
        calls.iter().all(|c| c.0 == 200),
        "the API answered {:?}",
        calls.iter().filter(|c| c.0 != 200).collect::<Vec<_>>()
    );
    let slowest_call = calls.iter().map(|c| c.1).max().unwrap();
    assert!(slowest_call < Duration::from_secs(1), "{slowest_call:?}");

    // Two threads' Argon2 memory at most, not one per guess.
    let peak = peak_rss_kib(server.pid());
    assert!(peak < 150 * 1024, "peak RSS {peak} KiB");
    eprintln!(
        "600 guesses: {checked} checked, {} refused (slowest refusal {slowest_refusal:?}); {} API calls, slowest {slowest_call:?}; peak RSS {} MiB",
        refused.len(),
        calls.len(),
        peak / 1024
    );

    // The right password still opens the link once the flood is over.
    let res = guess(&server, "vault", PASSWORD, &["192.0.2.2"], &[]);
    assert_eq!(res.status, 303, "{}", res.text());
}

#[test]
fn the_per_link_limit_holds_across_many_addresses() {
    let server = behind_proxy(&[("--link-guesses", "5")]);
    protect(&server, "target");
    protect(&server, "elsewhere");
    for n in 0..5 {
        let client = format!("198.51.100.{n}");
        assert_eq!(
            guess(&server, "target", "wrong guess", &[&client], &[]).status,
            401
        );
    }
    // A sixth address gets no sixth guess; nor does the right password.
    let res = guess(&server, "target", "wrong guess", &["198.51.100.50"], &[]);
    assert_eq!(res.status, 429, "{}", res.text());
    assert!(
        res.text().contains("Too many wrong passwords"),
        "{}",
        res.text()
    );
    let wait = retry_after(&res);
    assert!((1..=2).contains(&wait), "{wait}");
    let res = guess(
        &server,
        "target",
        PASSWORD,
        &["198.51.100.51"],
        &[("Accept", "application/json")],
    );
    assert_error(&res, 429, "rate_limited");
    // Another link is not held up.
    assert_eq!(
        guess(&server, "elsewhere", PASSWORD, &["198.51.100.52"], &[]).status,
        303
    );
    // After the wait, one guess; then the next wait is longer.
    thread::sleep(Duration::from_secs(wait));
    assert_eq!(
        guess(&server, "target", "wrong again", &["198.51.100.53"], &[]).status,
        401
    );
    let res = guess(&server, "target", PASSWORD, &["198.51.100.54"], &[]);
    assert_eq!(res.status, 429);
    assert!(retry_after(&res) >= 2, "{}", retry_after(&res));
}

#[test]
fn a_forged_forwarded_for_does_not_dodge_the_client_limit() {
    let server = behind_proxy(&[("--guesses-per-minute", "3")]);
    protect(&server, "guarded");
    // Each request claims another client in the entries it wrote; the
    // proxy's entry, the rightmost, is the same.
    for n in 0..3 {
        let forged = format!("203.0.113.{n}, 198.51.100.7");
        assert_eq!(
            guess(&server, "guarded", "wrong guess", &[&forged], &[]).status,
            401
        );
    }
    for forged in [
        "203.0.113.99, 198.51.100.7".to_owned(),
        "1.1.1.1,2.2.2.2 , 198.51.100.7".to_owned(),
        "unknown, 198.51.100.7".to_owned(),
    ] {
        let res = guess(&server, "guarded", PASSWORD, &[&forged], &[]);
        assert_eq!(res.status, 429, "{forged}: {}", res.text());
        assert_eq!(res.text(), "too many password guesses, wait a minute\n");
    }
    // A line of the client's own before the proxy's: the last line counts.
    let res = guess(
        &server,
        "guarded",
        PASSWORD,
        &["203.0.113.200", "198.51.100.7"],
        &[],
    );
    assert_eq!(res.status, 429);
    // IPv6 clients are one client per /64.
    for n in 1..=3 {
        let client = format!("2001:db8:1:2::{n}");
        assert_eq!(
            guess(&server, "guarded", "wrong guess", &[&client], &[]).status,
            401
        );
    }
    let res = guess(
        &server,
        "guarded",
        PASSWORD,
        &["2001:db8:1:2:ffff:ffff:ffff:ffff"],
        &[],
    );
    assert_eq!(res.status, 429);
    assert_eq!(
        guess(&server, "guarded", PASSWORD, &["2001:db8:1:3::1"], &[]).status,
        303
    );

    // A peer that is not a trusted proxy is its own client, whatever it
    // writes in the header.
    let untrusted = Options::new()
        .arg("--trusted-proxy", "10.0.0.0/8")
        .arg("--guesses-per-minute", "3")
        .start();
    protect(&untrusted, "guarded");
    for n in 0..5 {
        let client = format!("203.0.113.{n}");
        let res = guess(&untrusted, "guarded", "wrong guess", &[&client], &[]);
        assert_eq!(res.status, if n < 3 { 401 } else { 429 }, "guess {n}");
    }
}

#[test]
fn one_client_of_a_proxy_cannot_lock_out_the_others() {
    let server = behind_proxy(&[("--guesses-per-minute", "3")]);
    protect(&server, "shared");
    for _ in 0..3 {
        assert_eq!(
            guess(&server, "shared", "wrong guess", &["203.0.113.1"], &[]).status,
            401
        );
    }
    assert_eq!(
        guess(&server, "shared", "wrong guess", &["203.0.113.1"], &[]).status,
        429
    );
    // Another visitor through the same proxy.
    assert_eq!(
        guess(&server, "shared", "wrong guess", &["203.0.113.2"], &[]).status,
        401
    );
    assert_eq!(
        guess(&server, "shared", PASSWORD, &["203.0.113.2"], &[]).status,
        303
    );

    // A client-IP header without --trusted-proxy: believed from loopback
    // peers only (a proxy on the same host), so the same holds.
    let same_host = Options::new()
        .arg("--client-ip-header", "X-Client-Ip")
        .arg("--guesses-per-minute", "3")
        .start();
    protect(&same_host, "shared");
    fn from(client: &str) -> [(&str, &str); 1] {
        [("X-Client-Ip", client)]
    }
    for _ in 0..3 {
        assert_eq!(
            guess(
                &same_host,
                "shared",
                "wrong guess",
                &[],
                &from("203.0.113.1")
            )
            .status,
            401
        );
    }
    assert_eq!(
        guess(
            &same_host,
            "shared",
            "wrong guess",
            &[],
            &from("203.0.113.1")
        )
        .status,
        429
    );
    assert_eq!(
        guess(&same_host, "shared", PASSWORD, &[], &from("203.0.113.2")).status,
        303
    );
}

#[test]
fn new_passwords_need_8_characters() {
    let server = Options::new()
        .env("SHORTENER_API_KEYS", KEY)
        .key(KEY)
        .start();
    for short in ["1234567", "a", "ééééééé"] {
        let res = server.api(
            "POST",
            "/api/links",
            Some(&json!({"url": "https://example.com/", "password": short})),
        );
        assert_error(&res, 400, "invalid_password");
    }
    server
        .create(json!({"url": "https://example.com/", "slug": "pw-link", "password": "12345678"}));
    let res = server.api(
        "PATCH",
        "/api/links/pw-link",
        Some(&json!({"password": "7 chars"})),
    );
    assert_error(&res, 400, "invalid_password");
    // Eight characters of two bytes each are eight characters.
    let res = server.api(
        "PATCH",
        "/api/links/pw-link",
        Some(&json!({"password": "éééééééé"})),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(json(&res)["protected"], true);
    assert_eq!(guess(&server, "pw-link", "12345678", &[], &[]).status, 401);
    assert_eq!(guess(&server, "pw-link", "éééééééé", &[], &[]).status, 303);
}

/// The right password opens the link even when its cache entry is
/// dropped while Argon2 checks the guess (an edit that leaves the password
/// alone, an eviction, or on PostgreSQL the change feed's notice of the
/// link's own creation): the link is read again and opened, not refused as
/// "changed". Two wrong guesses ahead of it keep the lane busy, so the edit
/// lands while the right one waits or is checked.
#[test]
fn the_right_password_survives_its_entry_leaving_the_cache() {
    let server = Arc::new(behind_proxy(&[]));
    protect(&server, "vault");
    let guess_from = |client: String, password: &'static str| {
        let server = Arc::clone(&server);
        thread::spawn(move || guess(&server, "vault", password, &[&client], &[]))
    };
    for round in 0..5 {
        // Cached: each guess is admitted on a hit and goes to the lane.
        assert_eq!(server.get("/vault").status, 200, "the password page");
        let wrong: Vec<_> = (0..2)
            .map(|i| guess_from(format!("198.51.100.{}", round * 2 + i), "not the password"))
            .collect();
        thread::sleep(Duration::from_millis(2));
        let right = guess_from(format!("192.0.2.{round}"), PASSWORD);
        thread::sleep(Duration::from_millis(5));
        // An edit that keeps the password drops the cached entry.
        let res = server.api(
            "PATCH",
            "/api/links/vault",
            Some(&json!({"expires_at": null})),
        );
        assert_eq!(res.status, 200, "{}", res.text());
        let res = right.join().unwrap();
        assert_eq!(res.status, 303, "round {round}: {}", res.text());
        assert_eq!(res.header("location"), Some("https://example.com/vault"));
        for guess in wrong {
            assert_eq!(guess.join().unwrap().status, 401);
        }
    }
}
