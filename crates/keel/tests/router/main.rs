//! The router through the real connection code (`MemoryConn`): which route
//! a path selects, the parameters it captures, what the router answers by
//! itself (404, 405, HEAD, OPTIONS), nesting, and every build-time refusal.

mod answers;
mod build;
mod matching;

use keel::testing::MemoryConn;
use keel::{Handler, Request, Response, Routes};

/// A handler that answers `label`, then ` name=value` for each parameter.
fn tag(label: &'static str) -> impl Handler {
    move |req: &Request<'_>, res: &mut Response<'_>| {
        res.write(label.as_bytes());
        for (name, value) in req.params() {
            res.write(format!(" {name}={value}").as_bytes());
        }
    }
}

/// One parsed response.
#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.split("\r\n").skip(1).find_map(|line| {
            let (n, v) = line.split_once(": ")?;
            n.eq_ignore_ascii_case(name).then_some(v)
        })
    }
}

/// Sends `method target` on `conn` and parses the one response.
fn ask(conn: &mut MemoryConn<Routes>, method: &str, target: &str) -> Reply {
    conn.send(
        format!("{method} {target} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n").as_bytes(),
    );
    let text = String::from_utf8(conn.recv()).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
    let status = head[9..12].parse().expect("a status code");
    Reply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// `(method, target, status, body)`: runs every case against `routes`.
fn check(routes: Routes, cases: &[(&str, &str, u16, &str)]) {
    let mut conn = MemoryConn::new(routes);
    for &(method, target, status, body) in cases {
        let reply = ask(&mut conn, method, target);
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (status, body),
            "{method} {target}: {reply:?}"
        );
    }
}

fn h(_: &Request<'_>, _: &mut Response<'_>) {}
