//! Every limit and deadline of `Config`, with the status it answers.

mod util;

use keel::Config;
use std::io::Write;
use std::time::{Duration, Instant};
use util::{
    answer_to_an_upload, app, get, is_closed, parse_all, read_responses, read_to_close, TestServer,
};

fn small_limits() -> Config {
    Config {
        max_header_bytes: 1024,
        max_headers: 8,
        max_target: 256,
        max_body: 4096,
        ..Config::default()
    }
}

fn one_error(server: &TestServer, wire: &[u8]) -> util::Resp {
    let bytes = server.exchange(wire);
    let responses = parse_all(&bytes);
    assert_eq!(responses.len(), 1, "{responses:?}");
    assert!(responses[0].closes());
    responses[0].clone()
}

#[test]
fn header_section_too_large_is_431() {
    let server = TestServer::with(app, small_limits(), 1);
    let wire = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "v".repeat(2000)
    );
    assert_eq!(one_error(&server, wire.as_bytes()).status, 431);
    // Arriving slowly and never finishing is caught as soon as it passes the limit.
    let mut stream = server.connect();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n").unwrap();
    for _ in 0..40 {
        if stream
            .write_all(format!("X-Pad: {}\r\n", "p".repeat(40)).as_bytes())
            .is_err()
        {
            break;
        }
    }
    let responses = parse_all(&read_to_close(&mut stream));
    assert_eq!(responses[0].status, 431);
}

#[test]
fn too_many_headers_is_431() {
    let server = TestServer::with(app, small_limits(), 1);
    let headers: String = (0..9).map(|i| format!("X-{i}: v\r\n")).collect();
    let wire = format!("GET / HTTP/1.1\r\nHost: a\r\n{headers}\r\n");
    assert_eq!(one_error(&server, wire.as_bytes()).status, 431);
    let headers: String = (0..6).map(|i| format!("X-{i}: v\r\n")).collect();
    let wire = format!("GET /plaintext HTTP/1.1\r\nHost: a\r\n{headers}Connection: close\r\n\r\n");
    assert_eq!(
        parse_all(&server.exchange(wire.as_bytes()))[0].status,
        200,
        "8 headers are allowed"
    );
}

#[test]
fn target_too_long_is_414() {
    let server = TestServer::with(app, small_limits(), 1);
    let wire = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(300));
    assert_eq!(one_error(&server, wire.as_bytes()).status, 414);
    // Without a line end in sight.
    let wire = format!("GET /{}", "a".repeat(600));
    assert_eq!(one_error(&server, wire.as_bytes()).status, 414);
}

#[test]
fn body_too_large_is_413_for_both_framings() {
    let server = TestServer::with(app, small_limits(), 1);
    let wire = format!(
        "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4097\r\n\r\n{}",
        "b".repeat(4097)
    );
    assert_eq!(one_error(&server, wire.as_bytes()).status, 413);
    let wire = format!(
        "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4096\r\nConnection: close\r\n\r\n{}",
        "b".repeat(4096)
    );
    assert_eq!(
        parse_all(&server.exchange(wire.as_bytes()))[0].body.len(),
        4096,
        "exactly the limit is fine"
    );
    let chunk = format!("800\r\n{}\r\n", "c".repeat(0x800));
    let wire = format!("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}{chunk}{chunk}0\r\n\r\n");
    assert_eq!(one_error(&server, wire.as_bytes()).status, 413);
}

#[test]
fn refused_upload_is_answered_without_reading_the_rest() {
    // The client keeps sending a large body; the 413 still reaches it.
    let server = TestServer::with(app, small_limits(), 1);
    let text = answer_to_an_upload(
        &server,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000\r\n\r\n",
    );
    assert!(
        text.starts_with("HTTP/1.1 413 Content Too Large\r\n"),
        "{text}"
    );
    assert_eq!(server.handle().stats().parse_errors, 1);
}

#[test]
fn backpressure_stops_reading_until_the_peer_reads() {
    let config = Config {
        max_output_buffered: 64 * 1024,
        ..Config::default()
    };
    let server = TestServer::with(app, config, 1);
    let mut stream = server.connect();
    // 200 responses of 100 KB: far more than socket buffers and the output limit.
    let batch: Vec<u8> = (0..200).flat_map(|_| get("/big/100000")).collect();
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        std::thread::spawn(move || stream.write_all(&batch).is_ok())
    };
    std::thread::sleep(Duration::from_millis(300));
    let answered_while_stalled = server.handle().stats().requests;
    assert!(
        answered_while_stalled < 200,
        "the server stopped answering: {answered_while_stalled}"
    );
    let responses = read_responses(&mut stream, 200);
    assert!(writer.join().unwrap());
    assert!(responses.iter().all(|r| r.body.len() == 100_000));
}

/// Requests answered for a peer (receive buffer 4 KiB) that pipelines
/// 20,000 small requests and reads nothing.
fn answered_without_reading(config: Config) -> u64 {
    let server = TestServer::with(app, config, 1);
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.addr().into()).unwrap();
    let stream: std::net::TcpStream = socket.into();
    let batch: Vec<u8> = (0..20_000).flat_map(|_| get("/n/1")).collect();
    let mut writer = stream.try_clone().unwrap();
    // Blocks once the server stops reading; ends when the stream is dropped.
    std::thread::spawn(move || writer.write_all(&batch));
    std::thread::sleep(Duration::from_millis(500));
    let answered = server.handle().stats().requests;
    drop(stream);
    answered
}

#[test]
fn a_pipelining_peer_that_never_reads_holds_at_most_the_output_limit() {
    // What the output limit lets one such peer hold in the worker, the
    // kernel's share (`max_unsent_per_socket`) beside it.
    let answered = answered_without_reading(Config {
        max_output_buffered: 32 * 1024,
        ..Config::default()
    });
    let roomier = answered_without_reading(Config {
        max_output_buffered: 256 * 1024,
        ..Config::default()
    });
    eprintln!("answered {answered} at a 32 KiB limit, {roomier} at 256 KiB");
    // About 90 bytes an answer: 32 KiB here, 128 KiB in the kernel, and
    // what a 4 KiB window lets through come to under 3,000 answers.
    assert!(answered < 3000, "{answered} answers held");
    assert!(roomier > answered + 1000, "the limit made no difference");
}

#[test]
fn slow_head_gets_408_and_a_close() {
    let config = Config {
        header_timeout: Duration::from_millis(200),
        ..Config::default()
    };
    let server = TestServer::with(app, config, 1);
    let mut stream = server.connect();
    stream
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: a\r\n")
        .unwrap();
    let started = Instant::now();
    let responses = parse_all(&read_to_close(&mut stream));
    let waited = started.elapsed();
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status, 408);
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert_eq!(server.handle().stats().timeouts, 1);
    // Trickling bytes does not extend the deadline.
    let mut stream = server.connect();
    let started = Instant::now();
    for byte in
        b"GET /plaintext HTTP/1.1\r\nHost: a\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    {
        if stream.write_all(&[*byte]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let responses = parse_all(&read_to_close(&mut stream));
    assert_eq!(responses[0].status, 408);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn slow_body_gets_408() {
    let config = Config {
        body_timeout: Duration::from_millis(200),
        ..Config::default()
    };
    let server = TestServer::with(app, config, 1);
    let mut stream = server.connect();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
        .unwrap();
    let responses = parse_all(&read_to_close(&mut stream));
    assert_eq!(responses[0].status, 408);
}

#[test]
fn idle_keep_alive_connections_are_closed_quietly() {
    let config = Config {
        idle_timeout: Duration::from_millis(200),
        ..Config::default()
    };
    let server = TestServer::with(app, config, 1);
    let mut stream = server.connect();
    stream.write_all(&get("/plaintext")).unwrap();
    read_responses(&mut stream, 1);
    let started = Instant::now();
    let rest = read_to_close(&mut stream);
    assert!(
        rest.is_empty(),
        "no response on idle close: {:?}",
        String::from_utf8_lossy(&rest)
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(server.handle().stats().connections_open, 0);
}

#[test]
fn a_peer_that_never_reads_is_dropped_at_the_write_deadline() {
    let config = Config {
        write_timeout: Duration::from_millis(300),
        max_output_buffered: 64 * 1024,
        ..Config::default()
    };
    let server = TestServer::with(app, config, 1);
    let stream = server.connect();
    let mut writer = stream.try_clone().unwrap();
    writer.write_all(&get("/big/8000000")).unwrap();
    let started = Instant::now();
    while server.handle().stats().requests == 0 {
        assert!(started.elapsed() < Duration::from_secs(5), "not served");
        std::thread::sleep(Duration::from_millis(5));
    }
    while server.handle().stats().connections_open > 0 {
        assert!(started.elapsed() < Duration::from_secs(5), "still open");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.handle().stats().timeouts, 1);
    drop(stream);
}

/// A server that accepts at once (no `TCP_DEFER_ACCEPT`), so that a silent
/// connection is the worker's from its first instant.
fn accepting_at_once(config: Config) -> keel::ServerHandle {
    keel::Server::bind("127.0.0.1:0")
        .workers(1)
        .config(config)
        .defer_accept(None)
        .serve(app)
        .unwrap()
}

#[test]
fn a_fresh_connection_that_sends_nothing_times_out() {
    let server = accepting_at_once(Config {
        header_timeout: Duration::from_millis(150),
        ..Config::default()
    });
    let connect = || {
        let stream = std::net::TcpStream::connect(server.local_addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
    };
    // Served as usual on this path too, keep-alive included.
    let mut talker = connect();
    talker.write_all(&get("/n/1")).unwrap();
    talker.write_all(&get("/n/2")).unwrap();
    assert_eq!(read_responses(&mut talker, 2)[1].body, b"2");

    let started = Instant::now();
    let mut silent = connect();
    let responses = parse_all(&read_to_close(&mut silent));
    assert_eq!(responses[0].status, 408);
    assert!(is_closed(&mut silent));
    // Well before the kernel would have handed over a deferred connection.
    assert!(started.elapsed() < Duration::from_millis(900));
    server.shutdown(Duration::ZERO);
    server.join();
}

#[test]
fn a_silent_connection_waits_in_the_kernel_until_it_speaks() {
    let config = Config {
        header_timeout: Duration::from_millis(150),
        ..Config::default()
    };
    let server = TestServer::with(app, config, 1);
    let mut speaks_late = server.connect();
    let mut never_speaks = server.connect();
    std::thread::sleep(Duration::from_millis(400));
    // Default `defer_accept`: neither is the worker's yet, so neither is
    // timing out, although the header timeout has passed twice.
    assert_eq!(server.handle().stats().connections_accepted, 0);
    speaks_late.write_all(&get("/n/7")).unwrap();
    assert_eq!(read_responses(&mut speaks_late, 1)[0].body, b"7");
    assert!(server.handle().stats().connections_accepted >= 1);
    // Once the wait is over the kernel hands over the silent one too, and the
    // header timeout closes it.
    let responses = parse_all(&read_to_close(&mut never_speaks));
    assert_eq!(responses[0].status, 408);
    assert_eq!(server.handle().stats().connections_accepted, 2);
}
