//! `keel::Metrics` over real sockets: requests of every kind, then a scrape
//! parsed and checked against the Prometheus text format (0.0.4) rules and
//! against exact counts.

use keel::testing::parse_responses;
use keel::{Metrics, Request, Response, Router, Server, ServerHandle, LATENCY_BUCKETS};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Label (name, value) pairs, in order.
type Labels = Vec<(String, String)>;

/// One sample line: metric name, labels in order, value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

impl Sample {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with("__")
}

/// A value as Prometheus reads it (Go's `ParseFloat`, plus the special names).
fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("bad value {s:?}")),
    }
}

/// `{a="x",b="y"}` (the braces included): the labels and the rest of the line.
fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut rest = s.strip_prefix('{').ok_or("labels must open with {")?;
    let mut labels = Vec::new();
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value must be quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    c => return Err(format!("bad escape \\{c}")),
                },
                (_, '\n') => return Err("newline in label value".into()),
                (_, c) => value.push(c),
            }
        };
        if labels.iter().any(|(n, _)| n == name) {
            return Err(format!("label {name} twice"));
        }
        labels.push((name.to_owned(), value));
        rest = &rest[end + 1..];
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err("labels must be separated by ,".into());
        }
    }
}

/// The family a sample belongs to, given the declared types.
fn family_of<'a>(name: &'a str, types: &HashMap<String, String>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types.get(base).is_some_and(|t| t == "histogram") {
                return base;
            }
        }
    }
    name
}

/// Parses an exposition, enforcing the text format's rules line by line;
/// returns the families' types and the samples.
fn parse_exposition(text: &str) -> Result<(HashMap<String, String>, Vec<Sample>), String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the text must end with a line feed".into());
    }
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps: HashSet<String> = HashSet::new();
    // Families in the order their lines appear; a family's lines are contiguous.
    let mut finished: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut samples: Vec<Sample> = Vec::new();
    let mut seen: HashSet<(String, Vec<(String, String)>)> = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        let mut enter = |family: &str, current: &mut Option<String>| -> Result<(), String> {
            if current.as_deref() != Some(family) {
                if finished.contains(family) {
                    return Err(format!("{family} lines are not contiguous"));
                }
                if let Some(previous) = current.take() {
                    finished.insert(previous);
                }
                *current = Some(family.to_owned());
            }
            Ok(())
        };
        if line.is_empty() {
            return Err(at("empty line".into()));
        }
        if let Some(help) = line.strip_prefix("# HELP ") {
            let (name, doc) = help
                .split_once(' ')
                .ok_or_else(|| at("HELP without text".into()))?;
            if !is_metric_name(name) {
                return Err(at("bad metric name".into()));
            }
            if doc.contains('\\') && !doc.contains("\\\\") && !doc.contains("\\n") {
                return Err(at("bad escape in HELP".into()));
            }
            if !helps.insert(name.to_owned()) {
                return Err(at("second HELP".into()));
            }
            enter(name, &mut current).map_err(at)?;
            if samples.iter().any(|s| family_of(&s.name, &types) == name) {
                return Err(at("HELP after samples".into()));
            }
        } else if let Some(ty) = line.strip_prefix("# TYPE ") {
            let (name, kind) = ty
                .split_once(' ')
                .ok_or_else(|| at("TYPE without type".into()))?;
            if !is_metric_name(name) {
                return Err(at("bad metric name".into()));
            }
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                return Err(at("unknown type".into()));
            }
            enter(name, &mut current).map_err(at)?;
            if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                return Err(at("second TYPE".into()));
            }
            if samples.iter().any(|s| family_of(&s.name, &types) == name) {
                return Err(at("TYPE after samples".into()));
            }
        } else if line.starts_with('#') {
            // A comment: allowed, ignored.
        } else {
            let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
            let name = &line[..name_end];
            if !is_metric_name(name) {
                return Err(at("bad metric name".into()));
            }
            let (labels, rest) = if line[name_end..].starts_with('{') {
                parse_labels(&line[name_end..]).map_err(at)?
            } else {
                (Vec::new(), &line[name_end..])
            };
            let rest = rest
                .strip_prefix(' ')
                .ok_or_else(|| at("no space before the value".into()))?;
            let mut fields = rest.split(' ');
            let value = parse_value(fields.next().unwrap_or("")).map_err(at)?;
            if let Some(ts) = fields.next() {
                ts.parse::<i64>().map_err(|_| at("bad timestamp".into()))?;
            }
            if fields.next().is_some() {
                return Err(at("junk after the value".into()));
            }
            let family = family_of(name, &types).to_owned();
            let kind = types
                .get(&family)
                .ok_or_else(|| at("sample before its TYPE".into()))?;
            enter(&family, &mut current).map_err(at)?;
            if kind == "histogram"
                && name.ends_with("_bucket")
                && !labels.iter().any(|(n, _)| n == "le")
            {
                return Err(at("bucket without le".into()));
            }
            if kind == "counter" && (value.is_nan() || value < 0.0) {
                return Err(at("negative counter".into()));
            }
            if !seen.insert((name.to_owned(), labels.clone())) {
                return Err(at("duplicate sample".into()));
            }
            samples.push(Sample {
                name: name.to_owned(),
                labels,
                value,
            });
        }
    }
    check_histograms(&types, &samples)?;
    Ok((types, samples))
}

/// Each histogram series: `le` increasing and ending at `+Inf`, counts
/// cumulative, `+Inf` equal to `_count`, a `_sum` present.
fn check_histograms(types: &HashMap<String, String>, samples: &[Sample]) -> Result<(), String> {
    for (family, _) in types.iter().filter(|(_, t)| *t == "histogram") {
        let key = |s: &Sample| -> Vec<(String, String)> {
            s.labels
                .iter()
                .filter(|(n, _)| n != "le")
                .cloned()
                .collect()
        };
        let mut series: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
        for s in samples
            .iter()
            .filter(|s| s.name == format!("{family}_bucket"))
        {
            let le = parse_value(s.label("le").unwrap())?;
            series.entry(key(s)).or_default().push((le, s.value));
        }
        for (labels, buckets) in &series {
            if !buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
            {
                return Err(format!(
                    "{family}{labels:?}: buckets not increasing / cumulative"
                ));
            }
            if buckets.last().map(|b| b.0) != Some(f64::INFINITY) {
                return Err(format!("{family}{labels:?}: no +Inf bucket"));
            }
            let count = samples
                .iter()
                .find(|s| s.name == format!("{family}_count") && key(s) == *labels)
                .ok_or(format!("{family}{labels:?}: no _count"))?;
            if count.value != buckets.last().unwrap().1 {
                return Err(format!("{family}{labels:?}: +Inf bucket is not _count"));
            }
            samples
                .iter()
                .find(|s| s.name == format!("{family}_sum") && key(s) == *labels)
                .ok_or(format!("{family}{labels:?}: no _sum"))?;
        }
    }
    Ok(())
}

/// Sum over workers of the samples called `name`.
fn total(samples: &[Sample], name: &str) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .map(|s| s.value)
        .sum()
}

/// Sends `request` on a new connection and reads until the server closes it.
fn exchange(server: &ServerHandle, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(server.local_addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut reply = Vec::new();
    match stream.read_to_end(&mut reply) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("reading the reply: {e}"),
    }
    reply
}

fn app(metrics: &Metrics) -> keel::Routes {
    Router::new()
        .get("/metrics", metrics.clone())
        .get("/", |_req: &Request<'_>, res: &mut Response<'_>| {
            res.body(b"ok")
        })
        .get("/panic", |_req: &Request<'_>, _res: &mut Response<'_>| {
            panic!("on purpose")
        })
        .get("/slow", |_req: &Request<'_>, res: &mut Response<'_>| {
            let responder = res.defer();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                responder.respond(|res| {
                    res.body(b"late");
                });
            });
        })
        .build()
        .unwrap()
}

#[test]
fn a_scrape_counts_what_was_served() {
    let metrics = Metrics::new();
    let server = Server::bind("127.0.0.1:0")
        .workers(2)
        .metrics(&metrics)
        .serve(app(&metrics))
        .unwrap();
    let (mut sent, mut received) = (0, 0);
    let mut send = |request: &[u8]| {
        let reply = exchange(&server, request);
        sent += request.len();
        received += reply.len();
        parse_responses(&reply).unwrap()
    };
    // Three 200s pipelined on one connection, then a 404, a handler panic,
    // a deferred answer 30 ms late, and a request the server refuses (400).
    let ok = send(
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n\
          GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        ok.iter().map(|r| r.status).collect::<Vec<_>>(),
        [200, 200, 200]
    );
    assert_eq!(
        send(b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[0].status,
        404
    );
    assert_eq!(
        send(b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n")[0].status,
        500
    );
    assert_eq!(
        send(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[0].status,
        200
    );
    assert_eq!(send(b"GET / HTTP/1.1\r\n\r\n")[0].status, 400); // no Host
                                                                // Every connection above is closed on the server's side too (the 400's
                                                                // lingers until our side closed).
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.stats().connections_open > 0 {
        assert!(
            Instant::now() < deadline,
            "connections still open: {:?}",
            server.stats()
        );
        std::thread::sleep(Duration::from_millis(5));
    }

    let scrape_request = b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let reply = exchange(&server, scrape_request);
    let scrape = &parse_responses(&reply).unwrap()[0];
    assert_eq!(scrape.status, 200);
    assert_eq!(
        scrape.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = scrape.text();
    let (types, samples) = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));

    // Every sample is per worker, and both workers report every family.
    assert!(samples
        .iter()
        .all(|s| matches!(s.label("worker"), Some("0" | "1"))));
    for (family, kind) in &types {
        for worker in ["0", "1"] {
            let name = if kind == "histogram" {
                format!("{family}_count")
            } else {
                family.clone()
            };
            assert!(
                samples
                    .iter()
                    .any(|s| s.name == name && s.label("worker") == Some(worker)),
                "{name} for worker {worker}"
            );
        }
    }
    assert_eq!(types["keel_connections_open"], "gauge");
    assert_eq!(types["keel_requests_total"], "counter");
    assert_eq!(types["keel_request_duration_seconds"], "histogram");

    // Exact counts: the scrape is read (bytes in, an open connection) but
    // not answered yet when it renders.
    let expect = [
        ("keel_connections_accepted_total", 6.0),
        ("keel_connections_open", 1.0),
        ("keel_requests_total", 7.0),
        (
            "keel_read_bytes_total",
            (sent + scrape_request.len()) as f64,
        ),
        ("keel_written_bytes_total", received as f64),
        ("keel_parse_errors_total", 1.0),
        ("keel_responses_4xx_total", 2.0),
        ("keel_responses_5xx_total", 1.0),
        ("keel_timeouts_total", 0.0),
        ("keel_handler_panics_total", 1.0),
        ("keel_upgrades_total", 0.0),
        ("keel_accept_errors_total", 0.0),
        ("keel_evictions_total", 0.0),
        ("keel_file_readaheads_total", 0.0),
        ("keel_tls_handshakes_total", 0.0),
        ("keel_tls_handshake_failures_total", 0.0),
        // The 400 never reached the handler: no latency for it.
        ("keel_request_duration_seconds_count", 6.0),
    ];
    for (name, value) in expect {
        assert_eq!(total(&samples, name), value, "{name}\n{text}");
    }

    // The deferred answer took at least 30 ms from dispatch: above the 25 ms
    // bucket, within the sum.
    let bucket = |le: &str| -> f64 {
        samples
            .iter()
            .filter(|s| {
                s.name == "keel_request_duration_seconds_bucket" && s.label("le") == Some(le)
            })
            .map(|s| s.value)
            .sum()
    };
    // (A panic may be slow too: the panic hook prints, a backtrace maybe.)
    assert!(bucket("0.025") <= 5.0, "{text}");
    assert_eq!(bucket("+Inf"), 6.0);
    assert!(total(&samples, "keel_request_duration_seconds_sum") >= 0.030);
    let les: Vec<String> = samples
        .iter()
        .filter(|s| {
            s.name == "keel_request_duration_seconds_bucket" && s.label("worker") == Some("0")
        })
        .map(|s| s.label("le").unwrap().to_owned())
        .collect();
    assert_eq!(les.len(), LATENCY_BUCKETS.len() + 1);
    for (le, bound) in les.iter().zip(LATENCY_BUCKETS) {
        assert_eq!(le.parse::<f64>().unwrap(), bound.as_secs_f64());
    }

    // The handle and the metrics agree once the scrape itself is counted.
    assert_eq!(metrics.stats(), server.stats());
    assert_eq!(metrics.stats().requests, 8);
    server.shutdown(Duration::ZERO);
    server.join();
}

#[test]
fn unwired_metrics_render_help_and_type_only() {
    let text = Metrics::new().render();
    let (types, samples) = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(samples.is_empty());
    assert_eq!(types.len(), 17);
    assert!(text.lines().all(|l| l.starts_with("# ")));
}

#[test]
fn a_metrics_reports_one_server() {
    let metrics = Metrics::new();
    let ok = |_req: &Request<'_>, res: &mut Response<'_>| res.body(b"ok");
    let first = Server::bind("127.0.0.1:0")
        .workers(1)
        .metrics(&metrics)
        .serve(ok)
        .unwrap();
    let err = Server::bind("127.0.0.1:0")
        .workers(1)
        .metrics(&metrics)
        .serve(ok)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert!(err.get_ref().unwrap().is::<keel::AlreadyWired>());
    first.shutdown(Duration::ZERO);
    first.join();
}

#[test]
fn the_checker_rejects_what_prometheus_would() {
    let bad = [
        "keel_x 1\n",                                                    // no TYPE
        "# TYPE keel_x counter\nkeel_x{a=\"1\"} 1\nkeel_x{a=\"1\"} 2\n", // duplicate
        "# TYPE 1x counter\n",                                           // bad name
        "# TYPE keel_x counter\nkeel_x{a=1} 1\n",                        // unquoted
        "# TYPE keel_x counter\nkeel_x{__a=\"1\"} 1\n",                  // reserved label
        "# TYPE keel_x counter\nkeel_x 1",                               // no final LF
        "# TYPE keel_x counter\nkeel_x 1\n# TYPE keel_y gauge\nkeel_y 1\nkeel_x{a=\"2\"} 1\n", // split family
        "# TYPE keel_x counter\nkeel_x 1\n# HELP keel_x late\n", // HELP after samples
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", // not cumulative
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 2\n", // +Inf != count
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", // no +Inf
    ];
    for text in bad {
        assert!(parse_exposition(text).is_err(), "accepted {text:?}");
    }
    let good = "# HELP h a \\\\ help\n# TYPE h histogram\nh_bucket{w=\"a\\\"b\",le=\"0.5\"} 1\n\
                h_bucket{w=\"a\\\"b\",le=\"+Inf\"} 3\nh_sum{w=\"a\\\"b\"} 2.5\nh_count{w=\"a\\\"b\"} 3\n";
    let (_, samples) = parse_exposition(good).unwrap();
    assert_eq!(samples[0].label("w"), Some("a\"b"));
}
