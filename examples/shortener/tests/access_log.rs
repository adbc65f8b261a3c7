//! The access log of the real `shortener` binary over real sockets: a
//! visit to an unknown slug (a cache miss, answered `404` from the store on
//! the blocking pool, so deferred) and a keyless API call (`401`) are
//! logged with their real statuses and sizes, even when sampling one
//! request in a thousand. Before, every deferred answer was logged as
//! `200` with no size, and sampling could drop it.

mod util;

use serde_json::Value;
use util::Options;

const KEY: &str = "access-log-test-key-5f0c9e2a7d41b38e";

/// The JSON log lines on the server's stdout whose target is `target`.
fn lines_for(stdout: &str, target: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str::<Value>(line).expect(line))
        .filter(|line| line["target"] == target)
        .collect()
}

#[test]
fn deferred_404s_and_401s_are_logged_with_their_real_status_even_when_sampled() {
    let server = Options::new()
        .env("SHORTENER_API_KEYS", KEY)
        .arg("--access-log", "json")
        .arg("--access-log-sample", "1000")
        .start();
    // Successes that sampling may thin out.
    for _ in 0..20 {
        assert_eq!(server.get("/").status, 200);
    }
    let missing = server.get("/no-such-slug");
    assert_eq!(missing.status, 404, "{}", missing.text());
    let denied = server.request("GET", "/api/links", &[], b"");
    assert_eq!(denied.status, 401, "{}", denied.text());

    server.wait_stdout(r#""target":"/api/links""#);
    let stdout = server.wait_stdout(r#""target":"/no-such-slug""#);
    let logged_404 = lines_for(&stdout, "/no-such-slug");
    assert_eq!(logged_404.len(), 1, "{stdout}");
    assert_eq!(logged_404[0]["status"], 404, "{stdout}");
    assert_eq!(logged_404[0]["bytes"], missing.body.len(), "{stdout}");
    assert_eq!(logged_404[0]["method"], "GET");
    let logged_401 = lines_for(&stdout, "/api/links");
    assert_eq!(logged_401.len(), 1, "{stdout}");
    assert_eq!(logged_401[0]["status"], 401, "{stdout}");
    assert_eq!(logged_401[0]["bytes"], denied.body.len(), "{stdout}");
    assert!(
        lines_for(&stdout, "/").len() <= 1,
        "successes are sampled: {stdout}"
    );
}
