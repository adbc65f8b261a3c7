//! The access log of deferred responses: each is logged when it ends, with
//! the status and size the client got (its answer, keel's deadline `503`,
//! or `499` when the connection closed first), and sampling never hides an
//! error.

mod util;

use util::Sink;

use crossbeam_channel::{Receiver, Sender};
use keel::middleware::{AccessLog, AccessLogHandle, HandlerExt, LogFormat, ManualClock};
use keel::testing::MemoryConn;
use keel::{Handler, Request, Responder, Response, StatusCode};
use std::sync::Arc;
use std::time::Duration;

/// 10 Oct 2000 13:55:36 UTC.
const T0: u64 = 971_186_136;

/// An app that defers every request whose path starts with `/later` and
/// hands its responder to the test; it answers the others at once with the
/// status their path names (`/500`), or 200.
fn app(parked: Sender<Responder>) -> impl Handler {
    move |req: &Request<'_>, res: &mut Response<'_>| {
        if req.path().starts_with("/later") {
            parked.send(res.defer()).unwrap();
            return;
        }
        let status = req.path()[1..].parse().ok().and_then(StatusCode::from_u16);
        res.status(status.unwrap_or(StatusCode::OK)).body(b"now");
    }
}

struct Logged {
    conn: MemoryConn<Arc<dyn Handler>>,
    parked: Receiver<Responder>,
    clock: ManualClock,
    handle: AccessLogHandle,
    sink: Sink,
}

fn logged(format: LogFormat, sample: u32) -> Logged {
    let (park, parked) = crossbeam_channel::unbounded();
    let clock = ManualClock::new(T0);
    let sink = Sink::default();
    let log = AccessLog::new(format, sink.clone())
        .unwrap()
        .clock(clock.clone())
        .sample(sample);
    let handle = log.handle();
    let handler: Arc<dyn Handler> = Arc::new(app(park).with(log));
    Logged {
        conn: MemoryConn::new(handler),
        parked,
        clock,
        handle,
        sink,
    }
}

impl Logged {
    fn lines(&self) -> Vec<String> {
        self.handle.flush_now();
        let text = self.sink.take();
        text.lines().map(str::to_owned).collect()
    }
}

fn request(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\nUser-Agent: ua\r\n\r\n").into_bytes()
}

fn json_line(target: &str, status: &str, bytes: &str, micros: u64) -> String {
    format!(
        r#"{{"time":"2000-10-10T13:55:36Z","remote_addr":"127.0.0.1","method":"GET","target":"{target}","version":"HTTP/1.1","status":{status},"bytes":{bytes},"duration_us":{micros},"referer":null,"user_agent":"ua"}}"#
    )
}

#[test]
fn a_deferred_answer_logs_its_real_status_and_size_when_it_ends() {
    let answers: [(StatusCode, &[u8]); 4] = [
        (StatusCode::UNAUTHORIZED, b"who are you?"),
        (StatusCode::NOT_FOUND, b"no such link"),
        (StatusCode::SERVICE_UNAVAILABLE, b"busy"),
        (StatusCode::OK, b"fine"),
    ];
    let mut t = logged(LogFormat::Json, 1);
    for (status, body) in answers {
        t.conn.send(&request("/later"));
        let responder = t.parked.recv().unwrap();
        assert!(t.lines().is_empty(), "nothing is logged before the answer");
        t.clock.advance(Duration::from_micros(2500));
        let thread = std::thread::spawn(move || {
            responder.respond(|res| {
                res.status(status).body(body);
            })
        });
        assert!(thread.join().unwrap(), "the answer was taken");
        assert!(t.conn.settle(Duration::from_secs(5)));
        assert_eq!(t.conn.responses().unwrap()[0].status, status.as_u16());
        let expected = json_line(
            "/later",
            &status.as_u16().to_string(),
            &body.len().to_string(),
            2500,
        );
        assert_eq!(t.lines(), [expected]);
    }
}

#[test]
fn a_deferred_deadline_logs_keels_503_and_a_late_answer_is_not_logged() {
    let mut t = logged(LogFormat::Common, 1);
    t.conn.send(&request("/later/slow"));
    let responder = t.parked.recv().unwrap();
    t.clock.advance(Duration::from_millis(30));
    t.conn.expire_deferred();
    let reply = &t.conn.responses().unwrap()[0];
    assert_eq!(reply.status, 503);
    let size = reply.body.len();
    assert_eq!(
        t.lines(),
        [format!(
            "127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /later/slow HTTP/1.1\" 503 {size} 30000"
        )]
    );
    assert!(!responder.respond(|res| res.body(b"too late")));
    assert!(t.conn.settle(Duration::from_secs(1)));
    assert!(t.lines().is_empty(), "the refused late answer logs nothing");
}

#[test]
fn a_connection_closed_before_the_answer_logs_499() {
    let mut t = logged(LogFormat::Json, 1);
    t.conn.send(&request("/later/gone"));
    let responder = t.parked.recv().unwrap();
    t.clock.advance(Duration::from_micros(700));
    drop(t.conn); // the client left
    assert!(responder.is_abandoned());
    assert!(!responder.respond(|res| res.body(b"nobody")));
    t.handle.flush_now();
    let text = t.sink.take();
    assert_eq!(text, json_line("/later/gone", "499", "null", 700) + "\n");
}

#[test]
fn sampling_one_in_a_thousand_still_logs_every_error() {
    let mut t = logged(LogFormat::Json, 1000);
    let mut deferred_errors = 0;
    for i in 0..2000 {
        t.conn.send(&request("/ok"));
        if i % 100 == 0 {
            // Deferred errors, decided only once answered.
            t.conn.send(&request("/later"));
            let status = [StatusCode::INTERNAL_SERVER_ERROR, StatusCode::NOT_FOUND][i / 100 % 2];
            t.parked.recv().unwrap().respond(|res| {
                res.status(status);
            });
            assert!(t.conn.settle(Duration::from_secs(5)));
            deferred_errors += 1;
        }
        if i % 250 == 0 {
            t.conn.send(&request("/503"));
            t.conn.send(&request("/401"));
        }
    }
    t.conn.send(&request("/later/timeout"));
    let _late = t.parked.recv().unwrap();
    t.conn.expire_deferred();
    t.conn.recv();
    let lines = t.lines();
    for line in &lines {
        serde_json::from_str::<serde_json::Value>(line).expect(line);
    }
    let count = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(count(r#""target":"/ok""#), 2, "one success in a thousand");
    assert_eq!(count(r#""target":"/503","#), 8);
    assert_eq!(count(r#""target":"/401","#), 8);
    assert_eq!(count(r#""target":"/later""#), deferred_errors);
    assert_eq!(count(r#""status":500"#), 10);
    assert_eq!(count(r#""status":404"#), 10);
    assert_eq!(
        count(r#""target":"/later/timeout","version":"HTTP/1.1","status":503"#),
        1
    );
    assert_eq!(t.handle.dropped(), 0);
}

#[test]
fn nested_logs_each_see_the_deferred_end() {
    let (park, parked) = crossbeam_channel::unbounded();
    let (outer_sink, inner_sink) = (Sink::default(), Sink::default());
    let outer = AccessLog::new(LogFormat::Common, outer_sink.clone()).unwrap();
    let inner = AccessLog::new(LogFormat::Common, inner_sink.clone()).unwrap();
    let (outer_handle, inner_handle) = (outer.handle(), inner.handle());
    let mut conn = MemoryConn::new(app(park).with(inner).with(outer));
    conn.send(&request("/later"));
    assert!(parked.recv().unwrap().respond(|res| {
        res.status(StatusCode::FORBIDDEN).body(b"no");
    }));
    assert!(conn.settle(Duration::from_secs(5)));
    for (handle, sink) in [(outer_handle, outer_sink), (inner_handle, inner_sink)] {
        handle.flush_now();
        let text = sink.take();
        assert!(text.contains("\"GET /later HTTP/1.1\" 403 2 "), "{text}");
        assert_eq!(text.lines().count(), 1, "{text}");
    }
}
