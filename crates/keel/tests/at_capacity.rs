//! A worker at `max_connections_per_worker`: a new connection takes the
//! place of the oldest one waiting for a request (idle keep-alive, or a
//! head still arriving), never of one mid-request.

mod util;

use keel::Config;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use util::{app, get, is_closed, read_responses, TestServer};

fn capped(n: usize) -> TestServer {
    let config = Config {
        max_connections_per_worker: n,
        ..Config::default()
    };
    TestServer::with(app, config, 1)
}

/// Whether nothing arrives on `stream` within `wait`.
fn silent_for(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let silent = stream.read(&mut [0u8; 1]).is_err();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    silent
}

#[test]
fn the_oldest_idle_connection_makes_room() {
    let server = capped(2);
    let mut oldest = server.connect();
    oldest.write_all(&get("/n/1")).unwrap();
    read_responses(&mut oldest, 1);
    std::thread::sleep(Duration::from_millis(20));
    let mut younger = server.connect();
    younger.write_all(&get("/n/2")).unwrap();
    read_responses(&mut younger, 1);
    // Both idle now, at the cap: the third is served at once.
    let mut third = server.connect();
    third.write_all(&get("/n/3")).unwrap();
    assert_eq!(read_responses(&mut third, 1)[0].body, b"3");
    assert!(is_closed(&mut oldest), "the oldest idle one made room");
    younger.write_all(&get("/n/4")).unwrap();
    assert_eq!(read_responses(&mut younger, 1)[0].body, b"4");
    assert_eq!(server.handle().stats().evictions, 1);
}

#[test]
fn slowloris_heads_do_not_keep_a_client_out() {
    let server = capped(4);
    // Four heads arriving a byte at a time hold every slot.
    let mut loris: Vec<TcpStream> = (0..4).map(|_| server.connect()).collect();
    for stream in &mut loris {
        stream.write_all(b"GET /n/0 HTTP/1.1\r\nX-a: ").unwrap();
    }
    let started = std::time::Instant::now();
    while server.handle().stats().connections_open < 4 {
        assert!(started.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut client = server.connect();
    client.write_all(&get("/n/7")).unwrap();
    assert_eq!(read_responses(&mut client, 1)[0].body, b"7");
    assert_eq!(server.handle().stats().evictions, 1);
    // The oldest head was dropped without an answer; the others still wait.
    assert!(is_closed(&mut loris[0]));
    let mut rest = loris.split_off(1);
    for stream in &mut rest {
        stream.write_all(b"b\r\nHost: a\r\n\r\n").unwrap();
    }
    let survivors = rest
        .iter_mut()
        .map(|s| read_responses(s, 1)[0].body.clone())
        .filter(|body| body == b"0")
        .count();
    assert_eq!(survivors, 3, "only the oldest made room");
    assert_eq!(server.handle().stats().evictions, 1);
}

#[test]
fn connections_mid_request_are_never_evicted() {
    let server = capped(2);
    // Two requests whose bodies are still arriving hold both slots.
    let mut first = server.connect();
    let mut second = server.connect();
    for stream in [&mut first, &mut second] {
        stream
            .write_all(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab")
            .unwrap();
    }
    let started = std::time::Instant::now();
    while server.handle().stats().connections_open < 2 {
        assert!(started.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(5));
    }
    // The third waits in the accept queue until a slot frees up.
    let mut third = server.connect();
    third.write_all(&get("/n/3")).unwrap();
    assert!(silent_for(&mut third, Duration::from_millis(300)));
    assert_eq!(server.handle().stats().evictions, 0);
    for stream in [&mut first, &mut second] {
        stream.write_all(b"cd").unwrap();
        assert_eq!(read_responses(stream, 1)[0].body, b"abcd");
    }
    // Both idle now: the third takes the older one's place.
    assert_eq!(read_responses(&mut third, 1)[0].body, b"3");
    assert_eq!(server.handle().stats().evictions, 1);
}

#[test]
fn a_head_still_arriving_goes_before_an_older_idle_connection() {
    let server = capped(2);
    // The idle keep-alive connection is the older, but its client has
    // shown it completes requests; the half head has not.
    let mut idle = server.connect();
    idle.write_all(&get("/n/1")).unwrap();
    read_responses(&mut idle, 1);
    std::thread::sleep(Duration::from_millis(20));
    let mut half = server.connect();
    half.write_all(b"GET /n/2 HTTP/1.1\r\nHo").unwrap();
    let started = std::time::Instant::now();
    while server.handle().stats().connections_open < 2 {
        assert!(started.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(20));
    let mut client = server.connect();
    client.write_all(&get("/n/3")).unwrap();
    assert_eq!(read_responses(&mut client, 1)[0].body, b"3");
    assert!(is_closed(&mut half), "the half head made room");
    idle.write_all(&get("/n/4")).unwrap();
    assert_eq!(read_responses(&mut idle, 1)[0].body, b"4");
    assert_eq!(server.handle().stats().evictions, 1);
}
