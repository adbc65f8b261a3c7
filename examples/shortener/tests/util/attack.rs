//! The attacks of issue 12 that several suites perform: `Referer` spam on
//! one link, guesses from many source addresses, and the readings they are
//! judged by (the store's referrer rows, the server's peak memory).

use super::Shortener;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

/// Sends `count` pipelined `GET /slug`, each with a `Referer` host of its
/// own, on one connection, and reads the answers. Returns how many were
/// `302`.
pub fn spam(server: &Shortener, slug: &str, count: usize) -> usize {
    let mut reader = server.connect();
    reader
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut writer = reader.try_clone().unwrap();
    let sender = {
        let slug = slug.to_owned();
        thread::spawn(move || {
            let mut batch = Vec::with_capacity(256 * 1024);
            for i in 0..count {
                write!(
                    batch,
                    "GET /{slug} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                     Referer: https://s{i}.spam.example/post\r\nUser-Agent: curl/8\r\n\r\n"
                )
                .unwrap();
                if batch.len() > 200_000 {
                    writer.write_all(&batch).unwrap();
                    batch.clear();
                }
            }
            writer.write_all(&batch).unwrap();
        })
    };
    // Counts status lines; a redirect has no body that could hold one.
    const STATUS: &[u8] = b"HTTP/1.1 ";
    let (mut redirects, mut others) = (0, 0);
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    while redirects + others < count {
        let n = reader.read(&mut chunk).expect("read the spam's answers");
        assert!(n > 0, "closed after {} answers", redirects + others);
        buf.extend_from_slice(&chunk[..n]);
        let mut at = 0;
        while let Some(found) = buf[at..].windows(STATUS.len()).position(|w| w == STATUS) {
            let code = at + found + STATUS.len();
            if buf.len() < code + 3 {
                at += found;
                break;
            }
            if &buf[code..code + 3] == b"302" {
                redirects += 1;
            } else {
                others += 1;
            }
            at = code + 3;
        }
        // Keeps what may hold the start of a status line cut by the read.
        let keep = buf.len().saturating_sub(STATUS.len() + 3).max(at);
        buf.drain(..keep);
    }
    sender.join().unwrap();
    redirects
}

/// Referrer rows the store holds for `slug`, read past the server.
pub fn referrer_rows(server: &Shortener, slug: &str) -> i64 {
    const SQL: &str = "SELECT count(*) FROM link_referrers AS r \
                       JOIN links AS l ON l.id = r.link_id WHERE l.slug = $1";
    if super::on_postgres() {
        let mut client = postgres::Client::connect(server.store_spec(), postgres::NoTls).unwrap();
        client.query_one(SQL, &[&slug]).unwrap().get(0)
    } else {
        let db = rusqlite::Connection::open_with_flags(
            server.data().join("shortener.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        db.query_row(SQL, [slug], |row| row.get(0)).unwrap()
    }
}

/// Peak resident memory of `pid` in KiB (VmHWM: the high-water mark, so a
/// spike between two readings is not missed).
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The `n`th of many distinct loopback source addresses (127.0.1.1 on):
/// clients that a server without trusted proxies tells apart by their
/// peer address alone, as it would clients on the internet.
pub fn loopback_client(n: u32) -> Ipv4Addr {
    let n = n + 256 + 1;
    Ipv4Addr::new(127, (n >> 16) as u8, (n >> 8) as u8, n as u8)
}

/// A connection to `server` from the source address `from`.
pub fn connect_from(server: &Shortener, from: Ipv4Addr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::from((from, 0)).into())
        .expect("bind a loopback source address");
    socket
        .connect_timeout(&server.addr().into(), Duration::from_secs(10))
        .expect("connect");
    let stream = TcpStream::from(socket);
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}
