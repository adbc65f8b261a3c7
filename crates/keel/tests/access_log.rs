//! The access log through the real connection code (in memory): exact
//! lines in each format, what the outermost layer sees, lines collected
//! from idle and busy threads, and a stuck sink.

mod util;

use util::memory::{exchange, ok};
use util::Sink;

use keel::middleware::{AccessLog, HandlerExt, LogFormat, ManualClock, RateLimit};
use keel::testing::MemoryConn;
use keel::{Request, Response, StatusCode};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// 10 Oct 2000 13:55:36 UTC.
const T0: u64 = 971_186_136;

#[test]
fn access_log_lines_in_each_format() {
    let requests = [
        "GET /a?b=c HTTP/1.1\r\nHost: t\r\nUser-Agent: curl/8.5.0\r\nReferer: https://r.example/\r\n\r\n",
        "POST /q\"x HTTP/1.0\r\nHost: t\r\nConnection: keep-alive\r\nContent-Length: 0\r\nUser-Agent: say \"hi\" \\o/\r\n\r\n",
        "GET /missing HTTP/1.1\r\nHost: t\r\n\r\n",
    ];
    let cases: [(LogFormat, [&str; 3]); 3] = [
        (
            LogFormat::Common,
            [
                "127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /a?b=c HTTP/1.1\" 200 1 1500",
                "127.0.0.1 - - [10/Oct/2000:13:55:37 +0000] \"POST /q\\\"x HTTP/1.0\" 201 4 1500",
                "127.0.0.1 - - [10/Oct/2000:13:55:38 +0000] \"GET /missing HTTP/1.1\" 404 - 1500",
            ],
        ),
        (
            LogFormat::Combined,
            [
                "127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /a?b=c HTTP/1.1\" 200 1 \"https://r.example/\" \"curl/8.5.0\" 1500",
                "127.0.0.1 - - [10/Oct/2000:13:55:37 +0000] \"POST /q\\\"x HTTP/1.0\" 201 4 \"-\" \"say \\\"hi\\\" \\\\o/\" 1500",
                "127.0.0.1 - - [10/Oct/2000:13:55:38 +0000] \"GET /missing HTTP/1.1\" 404 - \"-\" \"-\" 1500",
            ],
        ),
        (
            LogFormat::Json,
            [
                r#"{"time":"2000-10-10T13:55:36Z","remote_addr":"127.0.0.1","method":"GET","target":"/a?b=c","version":"HTTP/1.1","status":200,"bytes":1,"duration_us":1500,"referer":"https://r.example/","user_agent":"curl/8.5.0"}"#,
                r#"{"time":"2000-10-10T13:55:37Z","remote_addr":"127.0.0.1","method":"POST","target":"/q\"x","version":"HTTP/1.0","status":201,"bytes":4,"duration_us":1500,"referer":null,"user_agent":"say \"hi\" \\o/"}"#,
                r#"{"time":"2000-10-10T13:55:38Z","remote_addr":"127.0.0.1","method":"GET","target":"/missing","version":"HTTP/1.1","status":404,"bytes":0,"duration_us":1500,"referer":null,"user_agent":null}"#,
            ],
        ),
    ];
    for (format, expected) in cases {
        let clock = ManualClock::new(T0);
        let sink = Sink::default();
        let log = AccessLog::new(format, sink.clone())
            .unwrap()
            .clock(clock.clone());
        let handle = log.handle();
        let handler_clock = clock.clone();
        let handler = move |req: &Request<'_>, res: &mut Response<'_>| {
            handler_clock.advance(Duration::from_micros(1500));
            match req.path() {
                "/a" => res.body(b"a"),
                "/missing" => res.status(StatusCode::NOT_FOUND).body(b""),
                _ => res.status(StatusCode::CREATED).body(b"made"),
            }
        };
        // A raw `"` in a target is refused by default; a lenient server
        // routes it, and the log must escape it.
        let config = keel::Config {
            lenient: keel::Leniency {
                target_bytes: true,
                ..keel::Leniency::default()
            },
            ..keel::Config::default()
        };
        let mut conn = MemoryConn::with_config(handler.with(log), config);
        for request in requests {
            conn.send(request.as_bytes());
            conn.recv();
            clock.advance(Duration::from_secs(1));
        }
        handle.flush_now();
        let written = sink.take();
        let lines: Vec<&str> = written.lines().collect();
        assert_eq!(lines, expected, "{format:?}");
        assert!(written.ends_with('\n'));
        if format == LogFormat::Json {
            for line in lines {
                serde_json::from_str::<serde_json::Value>(line).expect(line);
            }
        }
        assert_eq!(handle.dropped(), 0);
    }
}

#[test]
fn access_log_outermost_sees_short_circuits_and_nesting_times_each_layer() {
    let clock = ManualClock::new(T0);
    let (outer_sink, inner_sink) = (Sink::default(), Sink::default());
    let outer = AccessLog::new(LogFormat::Common, outer_sink.clone())
        .unwrap()
        .clock(clock.clone());
    let inner = AccessLog::new(LogFormat::Common, inner_sink.clone())
        .unwrap()
        .clock(clock.clone());
    let (outer_handle, inner_handle) = (outer.handle(), inner.handle());
    let handler_clock = clock.clone();
    let handler = move |req: &Request<'_>, res: &mut Response<'_>| {
        handler_clock.advance(Duration::from_micros(7));
        ok(req, res);
    };
    let limit = RateLimit::new(1, Duration::from_secs(60)).clock(clock.clone());
    let app = handler.with(inner).with(limit).with(outer);
    let mut conn = MemoryConn::new(app);
    for _ in 0..2 {
        exchange(&mut conn, "GET /x HTTP/1.1\r\nHost: t\r\n\r\n");
    }
    outer_handle.flush_now();
    inner_handle.flush_now();
    assert_eq!(
        outer_sink.take(),
        "127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /x HTTP/1.1\" 200 2 7\n\
         127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /x HTTP/1.1\" 429 18 0\n"
    );
    assert_eq!(
        inner_sink.take(),
        "127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /x HTTP/1.1\" 200 2 7\n"
    );
}

#[test]
fn access_log_collects_lines_of_idle_threads_and_from_many_threads() {
    // (flush_bytes: tiny buffers may overflow while the writer is busy; then
    // every line is either written or counted as dropped)
    for flush_bytes in [16 * 1024, 256] {
        let sink = Sink::default();
        let log = AccessLog::new(LogFormat::Common, sink.clone())
            .unwrap()
            .flush_every(Duration::from_millis(10))
            .flush_bytes(flush_bytes);
        let handle = log.handle();
        let app = Arc::new(ok.with(log));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let app = Arc::clone(&app);
                std::thread::spawn(move || {
                    let mut conn = MemoryConn::new(app);
                    for _ in 0..100 {
                        exchange(&mut conn, "GET /t HTTP/1.1\r\nHost: t\r\n\r\n");
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        // No flush_now: the writer's own sweeps must bring every line out,
        // those of threads that have exited included.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut written = String::new();
        let accounted = |written: &str| written.lines().count() as u64 + handle.dropped();
        while accounted(&written) < 400 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            written.push_str(&sink.take());
        }
        assert_eq!(accounted(&written), 400, "flush_bytes {flush_bytes}");
        assert!(written
            .lines()
            .all(|l| l.contains("\"GET /t HTTP/1.1\" 200 2 ")));
        if flush_bytes == 16 * 1024 {
            assert_eq!(handle.dropped(), 0);
        }
    }
}

#[test]
fn access_log_drops_and_counts_lines_when_the_sink_is_stuck() {
    /// A sink that blocks until released.
    struct Stuck(Arc<(Mutex<bool>, std::sync::Condvar)>);
    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let (released, cv) = &*self.0;
            let mut released = released.lock().unwrap();
            while !*released {
                released = cv.wait(released).unwrap();
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let log = AccessLog::new(LogFormat::Common, Stuck(Arc::clone(&gate)))
        .unwrap()
        .flush_bytes(64);
    let handle = log.handle();
    let mut conn = MemoryConn::new(ok.with(log));
    let started = Instant::now();
    for _ in 0..5000 {
        exchange(&mut conn, "GET /t HTTP/1.1\r\nHost: t\r\n\r\n");
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the worker must not wait"
    );
    assert!(handle.dropped() > 0);
    let (released, cv) = &*gate;
    *released.lock().unwrap() = true;
    cv.notify_all();
    handle.flush_now();
}
