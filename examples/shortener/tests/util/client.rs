//! Talking to a running [`Shortener`]: raw requests (over TCP or its Unix
//! socket), API calls with its key, and the calls most tests make.

use super::{json, poll, read_response, request, Response, Shortener, IO_TIMEOUT};
use serde_json::Value;
use std::io::Write;
use std::time::Duration;

impl Shortener {
    /// Sends the raw request `raw` on a new connection (over its Unix
    /// socket with [`Options::unix`]) and reads one response. `is_head`:
    /// the request is a `HEAD` (no body follows).
    pub fn send(&self, raw: &[u8], is_head: bool) -> Response {
        if let Some(path) = &self.unix {
            let mut stream = std::os::unix::net::UnixStream::connect(path).expect("connect");
            stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            stream.write_all(raw).expect("send the request");
            return read_response(&mut stream, is_head);
        }
        let mut stream = self.connect();
        stream.write_all(raw).expect("send the request");
        read_response(&mut stream, is_head)
    }

    /// `METHOD path` with `headers` and `body` (with its `Content-Length`).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.send(&request(method, path, headers, body), method == "HEAD")
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    /// `GET` with `Accept: application/json`.
    pub fn get_json(&self, path: &str) -> Response {
        self.request("GET", path, &[("Accept", "application/json")], b"")
    }

    pub fn head(&self, path: &str) -> Response {
        self.request("HEAD", path, &[], b"")
    }

    /// An API call: `body` as JSON when given, and the key of
    /// [`Options::key`] when set.
    pub fn api(&self, method: &str, path: &str, body: Option<&Value>) -> Response {
        let auth = self.key.as_ref().map(|k| format!("Bearer {k}"));
        let mut headers = Vec::new();
        if let Some(auth) = &auth {
            headers.push(("Authorization", auth.as_str()));
        }
        let body = match body {
            Some(value) => {
                headers.push(("Content-Type", "application/json"));
                serde_json::to_vec(value).unwrap()
            }
            None => Vec::new(),
        };
        self.request(method, path, &headers, &body)
    }

    /// Creates a link from `body`, asserting `201`; returns the link.
    pub fn create(&self, body: Value) -> Value {
        let res = self.api("POST", "/api/links", Some(&body));
        assert_eq!(res.status, 201, "create {body}: {}", res.text());
        json(&res)
    }

    /// Creates a link to `url` with the custom slug `slug`.
    pub fn create_slug(&self, slug: &str, url: &str) -> Value {
        self.create(serde_json::json!({"url": url, "slug": slug}))
    }

    /// `GET /api/links/SLUG` (with the key), asserting `200`.
    pub fn link(&self, slug: &str) -> Value {
        let res = self.api("GET", &format!("/api/links/{slug}"), None);
        assert_eq!(res.status, 200, "GET link {slug}: {}", res.text());
        json(&res)
    }

    /// `GET /api/links/SLUG/stats` (with the key), asserting `200`.
    pub fn stats(&self, slug: &str) -> Value {
        let res = self.api("GET", &format!("/api/links/{slug}/stats"), None);
        assert_eq!(res.status, 200, "stats {slug}: {}", res.text());
        json(&res)
    }

    /// Waits until the stats of `slug` count `total` clicks (flushes run on
    /// a timer) and returns them; fails past `timeout`.
    pub fn stats_when_total(&self, slug: &str, total: u64, timeout: Duration) -> Value {
        let mut last = Value::Null;
        poll(timeout, || {
            last = self.stats(slug);
            (last["total"] == total).then(|| last.clone())
        })
        .unwrap_or_else(|| panic!("stats of {slug} never reached {total}: {last}"))
    }

    /// The `/metrics` text (with the key).
    pub fn metrics(&self) -> String {
        let res = self.api("GET", "/metrics", None);
        assert_eq!(res.status, 200);
        res.text()
    }
}
