//! `RateLimit`: a token bucket per client, shared by every worker.

mod client_ip;

pub use client_ip::{Cidr, CidrError, ForwardedClient};

use super::clock::{Clock, SystemClock};
use super::{Flow, Middleware};
use crate::{Request, Response, StatusCode};
use client_ip::limit_group;
use parking_lot::Mutex;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Number of independently locked parts of the bucket table.
const SHARDS: usize = 16;

/// Longest header value (its first list entry) kept as a client key; a
/// longer one is not trusted and the peer's IP is used instead.
pub const MAX_KEY_LEN: usize = 48;

/// What tells one client from another.
///
/// Every key that is an IP address is grouped the same way: IPv4 addresses
/// one by one, IPv6 addresses by their /64 (one host usually holds a whole
/// /64: keyed per address, it could dodge any limit), IPv4-mapped IPv6 as
/// the IPv4 address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RateLimitKey {
    /// The IP address of the connection's peer.
    PeerIp,
    /// The first comma-separated entry of this request header, spaces
    /// trimmed (`X-Forwarded-For: 203.0.113.7, 10.0.0.1` gives
    /// `203.0.113.7`); the peer's IP when the header is missing, empty or
    /// longer than [`MAX_KEY_LEN`]. A client can send any value it likes,
    /// and behind a proxy that appends to the header the first entry is
    /// still the client's own: prefer [`Forwarded`](RateLimitKey::Forwarded).
    Header(Box<str>),
    /// The client as trusted proxies report it: the rightmost address of
    /// the header's last field line that is not a trusted proxy, and the
    /// peer itself when the peer is not trusted (see [`ForwardedClient`]).
    /// Clients behind one proxy get a bucket each; a client cannot pick its
    /// key by writing the header.
    ///
    /// ```
    /// use keel::middleware::{Cidr, ForwardedClient, RateLimit, RateLimitKey};
    /// use std::time::Duration;
    ///
    /// let proxies = ["10.0.0.0/8".parse::<Cidr>().unwrap()];
    /// let limit = RateLimit::new(10, Duration::from_secs(60)).key(RateLimitKey::Forwarded(
    ///     ForwardedClient::new("X-Forwarded-For", proxies),
    /// ));
    /// # let _ = limit;
    /// ```
    Forwarded(ForwardedClient),
}

/// Limits each client to a steady rate with bursts: a token bucket per
/// client, keyed by peer IP, by the address trusted proxies report, or by a
/// header ([`RateLimitKey`]). A request
/// that finds its bucket empty is answered `429 Too Many Requests` with
/// `Retry-After` (whole seconds until a token is back, rounded up) and does
/// not reach the handler; refused requests take no token. The check runs
/// from the request head ([`on_head`](Middleware::on_head)), before its body
/// is read: a refused upload costs the server its head alone.
///
/// [`new(n, per)`](RateLimit::new) refills one token every `per / n` and
/// holds at most [`burst`](RateLimit::burst) tokens (`n` by default), so a
/// client that was quiet may send `burst` requests at once, then `n` per
/// `per`.
///
/// # Sharing and bounds
///
/// One table serves every worker: 16 shards, each a `HashMap` behind a
/// `parking_lot` mutex held only while one bucket is read and updated (a
/// bucket is one `u64`, its next free time in the GCRA form of the token
/// bucket). The table holds at most [`max_clients`](RateLimit::max_clients)
/// buckets (100 000 by default, about 8 MB at most). When a new client finds
/// its shard full, the shard first forgets buckets that are full again
/// (forgetting them changes nothing); if every bucket is still in use, it
/// forgets the least recently charged half of them, whose clients get a
/// fresh burst: past `max_clients` busy clients, the limit errs on the
/// lenient side rather than refusing newcomers.
///
/// # Cost
///
/// A hash, one uncontended lock and a few arithmetic operations. Allocates
/// only when a client key not in the table appears (the map may grow);
/// known clients allocate nothing. Keys are stored inline (an IP address or
/// at most [`MAX_KEY_LEN`] bytes), never boxed.
///
/// # Panics
///
/// [`new`](RateLimit::new) panics when `n` or `per` is zero.
///
/// # Examples
///
/// ```
/// use keel::middleware::{HandlerExt, ManualClock, RateLimit};
/// use keel::testing::MemoryConn;
/// use keel::{Request, Response};
/// use std::time::Duration;
///
/// let clock = ManualClock::new(0);
/// let limit = RateLimit::new(1, Duration::from_secs(10)).burst(2).clock(clock.clone());
/// let app = (|_: &Request<'_>, res: &mut Response<'_>| res.body(b"ok")).with(limit);
/// let mut conn = MemoryConn::new(app);
/// let get = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
///
/// for _ in 0..2 {
///     conn.send(get);
///     assert!(conn.recv().ends_with(b"\r\n\r\nok"));
/// }
/// conn.send(get);
/// let reply = String::from_utf8(conn.recv()).unwrap();
/// assert!(reply.starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
/// assert!(reply.contains("\r\nRetry-After: 10\r\n"));
///
/// clock.advance(Duration::from_secs(10));
/// conn.send(get);
/// assert!(conn.recv().ends_with(b"\r\n\r\nok"));
/// ```
pub struct RateLimit {
    /// Nanoseconds between two tokens.
    interval: u64,
    /// Nanoseconds of credit a full bucket holds: `interval * burst`.
    tolerance: u64,
    key: RateLimitKey,
    shards: Box<[Shard]>,
    shard_capacity: usize,
    hasher: RandomState,
    clock: Arc<dyn Clock>,
    /// `Content-Type` and body of a `429`.
    refusal: (&'static str, &'static [u8]),
}

/// One part of the table, on its own pair of cache lines: 128 bytes, as
/// for the workers' counters (x86's adjacent-line prefetcher moves lines
/// in pairs), so that two workers locking neighbouring shards do not pull
/// one line between their cores.
#[repr(align(128))]
struct Shard {
    /// Client to the time its bucket is next free (GCRA's "theoretical
    /// arrival time"), in nanoseconds of the clock's monotonic time. A value
    /// at or before now means a full bucket.
    buckets: Mutex<HashMap<Key, u64>>,
}

/// A client key, held inline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    Ip(IpAddr),
    Token { len: u8, bytes: [u8; MAX_KEY_LEN] },
}

impl RateLimit {
    /// `n` requests per `per` for each client, in bursts of up to `n`;
    /// clients told apart by peer IP; at most 100 000 clients remembered.
    pub fn new(n: u32, per: Duration) -> Self {
        assert!(
            n > 0 && !per.is_zero(),
            "a rate limit needs n > 0 and per > 0"
        );
        let interval = (u64::try_from(per.as_nanos()).unwrap_or(u64::MAX) / u64::from(n)).max(1);
        let limit = RateLimit {
            interval,
            tolerance: 0,
            key: RateLimitKey::PeerIp,
            shards: (0..SHARDS)
                .map(|_| Shard {
                    buckets: Mutex::new(HashMap::new()),
                })
                .collect(),
            shard_capacity: 0,
            hasher: RandomState::new(),
            clock: Arc::new(SystemClock::new()),
            refusal: ("text/plain; charset=utf-8", b"too many requests\n"),
        };
        limit.burst(n).max_clients(100_000)
    }

    /// Lets a rested client send up to `burst` requests at once (at least 1).
    pub fn burst(mut self, burst: u32) -> Self {
        self.tolerance = self.interval.saturating_mul(u64::from(burst.max(1)));
        self
    }

    /// Tells clients apart by `key` instead of peer IP.
    pub fn key(mut self, key: RateLimitKey) -> Self {
        self.key = key;
        self
    }

    /// Remembers at most `max` clients (rounded up to a multiple of 16);
    /// see [Sharing and bounds](RateLimit#sharing-and-bounds).
    pub fn max_clients(mut self, max: usize) -> Self {
        self.shard_capacity = max.div_ceil(SHARDS).max(1);
        self
    }

    /// Answers refused requests with this `Content-Type` and body instead
    /// of `too many requests` in plain text: an API's own error shape.
    ///
    /// ```
    /// use keel::middleware::RateLimit;
    /// use std::time::Duration;
    ///
    /// let limit = RateLimit::new(10, Duration::from_secs(1)).refusal(
    ///     "application/json",
    ///     br#"{"error":{"code":"rate_limited","message":"too many requests"}}"#,
    /// );
    /// # let _ = limit;
    /// ```
    pub fn refusal(mut self, content_type: &'static str, body: &'static [u8]) -> Self {
        self.refusal = (content_type, body);
        self
    }

    /// Reads time from `clock` (a [`ManualClock`](super::ManualClock) in tests).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How many clients the table remembers now.
    pub fn clients(&self) -> usize {
        self.shards.iter().map(|s| s.buckets.lock().len()).sum()
    }

    /// Takes a token for `key`: `Ok`, or `Err` with the nanoseconds until
    /// one is back.
    fn take(&self, key: Key) -> Result<(), u64> {
        let now = u64::try_from(self.clock.monotonic().as_nanos()).unwrap_or(u64::MAX);
        let shard = &self.shards[self.hasher.hash_one(key) as usize % SHARDS];
        let mut buckets = shard.buckets.lock();
        let known = buckets.get(&key).copied();
        let next_free = known.unwrap_or(now).max(now).saturating_add(self.interval);
        let debt = next_free - now;
        if debt > self.tolerance {
            return Err(debt - self.tolerance);
        }
        if known.is_none() && buckets.len() >= self.shard_capacity {
            evict(&mut buckets, now);
        }
        buckets.insert(key, next_free);
        Ok(())
    }

    fn key_of(&self, req: &Request<'_>) -> Key {
        let peer = Key::Ip(limit_group(req.peer_addr().ip()));
        let name = match &self.key {
            RateLimitKey::PeerIp => return peer,
            RateLimitKey::Forwarded(proxies) => {
                return Key::Ip(limit_group(proxies.client_ip(req)))
            }
            RateLimitKey::Header(name) => name,
        };
        let Some(value) = req.header(name) else {
            return peer;
        };
        let first = value.split(|&b| b == b',').next().unwrap_or_default();
        let first = first.trim_ascii();
        if let Some(ip) = std::str::from_utf8(first).ok().and_then(|s| s.parse().ok()) {
            return Key::Ip(limit_group(ip));
        }
        if first.is_empty() || first.len() > MAX_KEY_LEN {
            return peer;
        }
        let mut bytes = [0; MAX_KEY_LEN];
        bytes[..first.len()].copy_from_slice(first);
        Key::Token {
            len: first.len() as u8,
            bytes,
        }
    }
}

/// Makes room in a full shard: drops full buckets, or else the older half.
fn evict(buckets: &mut HashMap<Key, u64>, now: u64) {
    let before = buckets.len();
    buckets.retain(|_, next_free| *next_free > now);
    if buckets.len() < before {
        return;
    }
    let oldest = buckets.values().copied().min().unwrap_or(0);
    let newest = buckets.values().copied().max().unwrap_or(0);
    let middle = oldest + (newest - oldest) / 2;
    buckets.retain(|_, next_free| *next_free > middle);
}

impl std::fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit")
            .field("interval", &Duration::from_nanos(self.interval))
            .field("burst", &(self.tolerance / self.interval))
            .field("key", &self.key)
            .field("max_clients", &(self.shard_capacity * SHARDS))
            .finish_non_exhaustive()
    }
}

impl Middleware for RateLimit {
    /// Charges the client from the request head: a refused request's body
    /// is never read.
    fn on_head(&self, req: &Request<'_>, res: &mut Response<'_>) -> Flow {
        let Err(wait) = self.take(self.key_of(req)) else {
            return Flow::Continue;
        };
        let secs = wait.div_ceil(1_000_000_000).max(1);
        res.status(StatusCode::TOO_MANY_REQUESTS);
        // A number is always a valid header value.
        let _ = res.header_fmt("Retry-After", format_args!("{secs}"));
        res.header("Content-Type", self.refusal.0)
            .body(self.refusal.1);
        Flow::Stop
    }
}

/// Limits on events the handler decides, such as failed logins: the
/// middleware charges every request, these charge only what they are told.
impl RateLimit {
    /// Whether `req`'s client has a token left, without taking it: `Ok`, or
    /// `Err` with the time until one is back (what `Retry-After` should
    /// say). With [`charge`](RateLimit::charge) it limits some requests
    /// only: check every request, charge the failed ones, and a client past
    /// the limit is refused whatever it sends next. The caller writes the
    /// refusal, in its own shape.
    ///
    /// Same cost as the middleware; allocates nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use keel::middleware::RateLimit;
    /// use keel::testing::MemoryConn;
    /// use keel::{Request, Response, StatusCode};
    /// use std::time::Duration;
    ///
    /// // One failed attempt a minute per client.
    /// let failures = RateLimit::new(1, Duration::from_secs(60));
    /// let app = move |req: &Request<'_>, res: &mut Response<'_>| {
    ///     if failures.check(req).is_err() {
    ///         return res.status(StatusCode::TOO_MANY_REQUESTS).body(b"");
    ///     }
    ///     if req.header_str("authorization") == Some("Bearer right") {
    ///         return res.body(b"ok");
    ///     }
    ///     let _ = failures.charge(req);
    ///     res.status(StatusCode::UNAUTHORIZED).body(b"");
    /// };
    /// let mut conn = MemoryConn::new(app);
    /// let right = b"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer right\r\n\r\n";
    /// conn.send(right);
    /// assert!(conn.recv().starts_with(b"HTTP/1.1 200 OK\r\n"));
    /// conn.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    /// assert!(conn.recv().starts_with(b"HTTP/1.1 401 Unauthorized\r\n"));
    /// // Past the limit, the right key is refused too.
    /// conn.send(right);
    /// assert!(conn.recv().starts_with(b"HTTP/1.1 429 Too Many Requests\r\n"));
    /// ```
    ///
    /// # Errors
    ///
    /// The wait until the client's next token, when it has none.
    pub fn check(&self, req: &Request<'_>) -> Result<(), Duration> {
        self.peek(self.key_of(req)).map_err(Duration::from_nanos)
    }

    /// Takes a token for `req`'s client, as the middleware does: `Ok` when
    /// one was left; else nothing is taken.
    ///
    /// # Errors
    ///
    /// The wait until the client's next token, when it has none.
    pub fn charge(&self, req: &Request<'_>) -> Result<(), Duration> {
        self.take(self.key_of(req)).map_err(Duration::from_nanos)
    }

    /// Whether a token is left for `key`: `Ok`, or `Err` with the
    /// nanoseconds until one is back. Takes nothing.
    fn peek(&self, key: Key) -> Result<(), u64> {
        let now = u64::try_from(self.clock.monotonic().as_nanos()).unwrap_or(u64::MAX);
        let shard = &self.shards[self.hasher.hash_one(key) as usize % SHARDS];
        let next_free = shard.buckets.lock().get(&key).copied().unwrap_or(now);
        let debt = next_free.max(now).saturating_add(self.interval) - now;
        match debt.checked_sub(self.tolerance) {
            Some(wait @ 1..) => Err(wait),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::ManualClock;

    #[test]
    fn eviction_keeps_the_table_bounded() {
        let clock = ManualClock::new(0);
        let limit = RateLimit::new(1, Duration::from_secs(60))
            .max_clients(SHARDS * 4)
            .clock(clock.clone());
        for i in 0..1000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            assert!(limit.take(Key::Ip(ip)).is_ok());
            clock.advance(Duration::from_millis(1));
        }
        assert!(limit.clients() <= SHARDS * 4, "{}", limit.clients());
    }

    #[test]
    fn peek_agrees_with_take_and_takes_nothing() {
        let clock = ManualClock::new(0);
        let limit = RateLimit::new(2, Duration::from_secs(60)).clock(clock.clone());
        let key = Key::Ip(IpAddr::from([10, 0, 0, 1]));
        for _ in 0..2 {
            assert!(limit.peek(key).is_ok());
            assert!(limit.peek(key).is_ok(), "a look takes no token");
            assert!(limit.take(key).is_ok());
        }
        let wait = limit.peek(key).unwrap_err();
        assert_eq!(limit.take(key).unwrap_err(), wait);
        assert_eq!(Duration::from_nanos(wait), Duration::from_secs(30));
        clock.advance(Duration::from_secs(30));
        assert!(limit.peek(key).is_ok());
    }

    #[test]
    fn full_buckets_are_evicted_first() {
        let mut buckets = HashMap::new();
        let ip = |n: u8| Key::Ip(IpAddr::from([n, 0, 0, 0]));
        buckets.insert(ip(1), 5);
        buckets.insert(ip(2), 50);
        buckets.insert(ip(3), 100);
        evict(&mut buckets, 10);
        assert_eq!(buckets.len(), 2);
        evict(&mut buckets, 10);
        assert_eq!(buckets.keys().copied().collect::<Vec<_>>(), [ip(3)]);
    }

    #[test]
    fn forwarded_clients_get_a_bucket_each_and_cannot_pick_their_key() {
        use crate::middleware::HandlerExt;
        use crate::testing::MemoryConn;
        // MemoryConn's peer, 127.0.0.1, is the trusted proxy.
        let limit = RateLimit::new(1, Duration::from_secs(60))
            .clock(ManualClock::new(0))
            .key(RateLimitKey::Forwarded(ForwardedClient::new(
                "X-Forwarded-For",
                Cidr::LOOPBACK,
            )));
        let ok = |_: &Request<'_>, res: &mut Response<'_>| res.body(b"ok");
        let mut conn = MemoryConn::new(ok.with(limit));
        let cases: [(&str, u16); 9] = [
            ("203.0.113.7", 200),
            // Whatever the client writes left of the proxy's entry.
            ("6.6.6.6, 203.0.113.7", 429),
            ("7.7.7.7, 203.0.113.7", 429),
            ("203.0.113.7\r\nX-Forwarded-For: 203.0.113.8", 200),
            ("203.0.113.9, 203.0.113.7", 429),
            // Another client of the same proxy has its own bucket.
            ("198.51.100.1", 200),
            // IPv6 clients are one client per /64.
            ("2001:db8:0:1::1", 200),
            ("2001:db8:0:1:ffff::2", 429),
            ("::ffff:198.51.100.1", 429),
        ];
        for (xff, status) in cases {
            conn.send(
                format!("GET / HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: {xff}\r\n\r\n").as_bytes(),
            );
            let reply = String::from_utf8(conn.recv()).unwrap();
            assert!(
                reply.starts_with(&format!("HTTP/1.1 {status} ")),
                "X-Forwarded-For {xff:?}: {reply}"
            );
        }
    }
}
