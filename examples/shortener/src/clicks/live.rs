//! Live clicks: the latest totals of each watched link, for the live page
//! (`/links/:slug/live`, fed by `GET /api/links/:slug/live` as Server-Sent
//! Events).
//!
//! A watcher [`Live::watch`]es a link by id and gets a [`Subscription`];
//! [`Clicks::record`](super::Clicks::record) publishes every click it
//! counts. The hub keeps one [`Snapshot`] per watched link, not a queue:
//! clicks are coalesced, and a slow watcher sees the latest totals when it
//! next looks, never a backlog. Memory is bounded by the watchers, at most
//! [`MAX_WATCHERS_PER_LINK`] per link and [`MAX_WATCHERS`] in all.
//!
//! What a click costs the redirect path: when nobody watches, one atomic
//! load; when some links are watched, one more atomic load in a table of
//! watcher counts indexed by a hash of the link id, so that a click on an
//! unwatched link takes no lock either, unless its slot is shared with a
//! watched link's (at most one link in 16, with every watcher on a link of
//! its own): it then takes an uncontended read lock and finds nothing. A
//! click on a watched link locks its snapshot for a moment. Never an
//! allocation.
//!
//! Totals are those of this process: the watch starts from a baseline the
//! caller read from the store (with the clicks not yet flushed), and adds
//! the clicks counted here since. With several instances behind one store,
//! each shows the clicks it serves on top of the last baseline; a
//! reconnect (or another watcher's baseline) catches the total up.

use super::{Click, Host};
use crate::api::ApiError;
use crate::model::{self, UnixTime};
use keel::sse::Event;
use keel::{BytesMut, StatusCode};
use parking_lot::{Condvar, Mutex, RwLock};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Watchers one link may have at once: a few tabs of its owner's, not an
/// audience. Past it, `429`.
pub const MAX_WATCHERS_PER_LINK: usize = 8;

/// Watchers in all, each an open connection (and whatever streams to it):
/// past it, `503`.
pub const MAX_WATCHERS: usize = 256;

/// Slots of the watcher-count table: a power of two, well above
/// [`MAX_WATCHERS`], so that few unwatched links share a watched link's.
const SLOTS: usize = 4096;

/// A link's totals: clicks (what its `clicks` field and stats count) and
/// visits of link previews and crawlers, counted apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub clicks: u64,
    pub automated: u64,
}

/// The click that changed a [`Snapshot`] last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastClick {
    /// When it was counted.
    pub at: UnixTime,
    /// Its referrer host (empty for none, and for a preview or crawler), as
    /// read from `Referer`: the stats may count it as `(other)` past their
    /// caps.
    pub referrer: Host,
    /// A link preview's or a crawler's visit.
    pub automated: bool,
}

/// One watched link's latest state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Grows with every change, across every link and channel of the
    /// process (a link watched again does not start over): the event id,
    /// which a reconnect sends back in `Last-Event-ID`.
    pub seq: u64,
    pub totals: Totals,
    /// `None` until a click is counted while the link is watched.
    pub last: Option<LastClick>,
}

/// Why a watch was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WatchRefused {
    #[error("this link already has {MAX_WATCHERS_PER_LINK} live watchers")]
    LinkFull,
    #[error("the server already has {MAX_WATCHERS} live watchers")]
    ServerFull,
}

impl From<WatchRefused> for ApiError {
    fn from(refused: WatchRefused) -> ApiError {
        match refused {
            WatchRefused::LinkFull => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_watchers",
                "this link has too many live pages open; close one and try again",
            ),
            WatchRefused::ServerFull => {
                ApiError::busy("too many live pages are open on this server, try again later")
            }
        }
    }
}

/// The state of one watched link, shared by its watchers and the clicks.
struct Channel {
    latest: Mutex<Snapshot>,
    /// Signalled on every change, for [`Subscription::wait`].
    changed: Condvar,
    /// Its watchers; changed under the `channels` write lock only.
    watchers: AtomicUsize,
}

/// Who watches what. See the [module docs](self).
pub struct Live {
    per_link: usize,
    total: usize,
    /// Watchers in all: `0` means a click has nothing to do.
    watchers: AtomicUsize,
    /// Watchers per [`slot_of`] a link id: `0` means nobody watches any
    /// link of that slot.
    slots: Box<[AtomicU32]>,
    channels: RwLock<HashMap<i64, Arc<Channel>>>,
    /// The next [`Snapshot::seq`]: also the hub's version, which moves on
    /// every change of any watched link ([`Live::wait_for_change`]).
    next_seq: AtomicU64,
    /// With `any_changed`: wakes a thread that serves many watchers.
    any_change: Mutex<()>,
    any_changed: Condvar,
}

impl Default for Live {
    fn default() -> Self {
        Live::new()
    }
}

impl Live {
    /// No watchers, the default bounds.
    pub fn new() -> Live {
        Live::with_limits(MAX_WATCHERS_PER_LINK, MAX_WATCHERS)
    }

    /// No watchers, at most `per_link` per link and `total` in all.
    pub fn with_limits(per_link: usize, total: usize) -> Live {
        Live {
            per_link,
            total,
            watchers: AtomicUsize::new(0),
            slots: (0..SLOTS).map(|_| AtomicU32::new(0)).collect(),
            channels: RwLock::new(HashMap::new()),
            next_seq: AtomicU64::new(1),
            any_change: Mutex::new(()),
            any_changed: Condvar::new(),
        }
    }

    /// Starts watching link `link_id`, whose totals were `baseline` when
    /// read (from the store, plus the unflushed clicks: read it before
    /// watching). A link already watched keeps its running totals, each
    /// raised to the baseline's where that is higher (a newer read has
    /// seen clicks another instance served); the others are told.
    ///
    /// # Errors
    ///
    /// [`WatchRefused`] past the bounds; nothing changes then.
    pub fn watch(
        self: &Arc<Self>,
        link_id: i64,
        baseline: Totals,
    ) -> Result<Subscription, WatchRefused> {
        let mut channels = self.channels.write();
        if self.watchers.load(Ordering::Relaxed) >= self.total {
            return Err(WatchRefused::ServerFull);
        }
        let channel = match channels.get(&link_id) {
            Some(channel) if channel.watchers.load(Ordering::Relaxed) >= self.per_link => {
                return Err(WatchRefused::LinkFull);
            }
            Some(channel) => {
                let mut latest = channel.latest.lock();
                let raised = Totals {
                    clicks: latest.totals.clicks.max(baseline.clicks),
                    automated: latest.totals.automated.max(baseline.automated),
                };
                let changed = raised != latest.totals;
                if changed {
                    latest.totals = raised;
                    latest.seq = self.next_seq();
                    channel.changed.notify_all();
                }
                drop(latest);
                if changed {
                    self.tell_any_waiter();
                }
                Arc::clone(channel)
            }
            None => {
                let channel = Arc::new(Channel {
                    latest: Mutex::new(Snapshot {
                        seq: self.next_seq(),
                        totals: baseline,
                        last: None,
                    }),
                    changed: Condvar::new(),
                    watchers: AtomicUsize::new(0),
                });
                channels.insert(link_id, Arc::clone(&channel));
                self.tell_any_waiter();
                channel
            }
        };
        channel.watchers.fetch_add(1, Ordering::Relaxed);
        self.slots[slot_of(link_id)].fetch_add(1, Ordering::Release);
        self.watchers.fetch_add(1, Ordering::Release);
        Ok(Subscription {
            live: Arc::clone(self),
            link_id,
            channel,
            seen: 0,
        })
    }

    /// Adds `click` to its link's snapshot when the link is watched, and
    /// wakes the link's watchers. Lock-free and allocation-free when nobody
    /// watches the link; see the [module docs](self).
    pub fn publish(&self, click: &Click) {
        if self.watchers.load(Ordering::Acquire) == 0
            || self.slots[slot_of(click.link_id)].load(Ordering::Acquire) == 0
        {
            return;
        }
        self.publish_watched(click);
    }

    /// [`Live::publish`]'s rare path, out of line so that the redirect
    /// path's inlined part stays two loads and a branch.
    #[cold]
    fn publish_watched(&self, click: &Click) {
        let channels = self.channels.read();
        let Some(channel) = channels.get(&click.link_id) else {
            return;
        };
        let automated = click.agent.is_automated();
        let mut latest = channel.latest.lock();
        let totals = &mut latest.totals;
        if automated {
            totals.automated = totals.automated.saturating_add(1);
        } else {
            totals.clicks = totals.clicks.saturating_add(1);
        }
        latest.last = Some(LastClick {
            at: model::now(),
            referrer: click.referrer,
            automated,
        });
        latest.seq = self.next_seq();
        channel.changed.notify_all();
        drop(latest);
        self.tell_any_waiter();
    }

    /// Wakes [`Live::wait_for_change`]. Under its lock, so that a waiter
    /// between its check and its wait cannot miss the change.
    fn tell_any_waiter(&self) {
        let _turn = self.any_change.lock();
        self.any_changed.notify_all();
    }

    /// The hub's version: it moves on whenever a watched link's snapshot
    /// changes (or a link starts being watched).
    pub fn version(&self) -> u64 {
        self.next_seq.load(Ordering::Acquire)
    }

    /// Waits up to `timeout` for the [`Live::version`] to move past
    /// `version`, and returns the version then. For one thread that serves
    /// many watchers: it waits here, then asks each
    /// [`Subscription::pending`], rather than a thread per watcher blocking
    /// in [`Subscription::wait`].
    pub fn wait_for_change(&self, version: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        let mut turn = self.any_change.lock();
        while self.version() == version {
            if self.any_changed.wait_until(&mut turn, deadline).timed_out() {
                break;
            }
        }
        self.version()
    }

    /// Watchers in all, for `/metrics` and tests.
    pub fn watchers(&self) -> usize {
        self.watchers.load(Ordering::Relaxed)
    }

    /// Links with at least one watcher.
    pub fn watched_links(&self) -> usize {
        self.channels.read().len()
    }

    fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Called by a dropped [`Subscription`]: the last watcher of a link
    /// takes its channel away.
    fn unwatch(&self, link_id: i64, channel: &Channel) {
        let mut channels = self.channels.write();
        self.watchers.fetch_sub(1, Ordering::Release);
        self.slots[slot_of(link_id)].fetch_sub(1, Ordering::Release);
        if channel.watchers.fetch_sub(1, Ordering::Relaxed) == 1 {
            channels.remove(&link_id);
        }
    }
}

/// The slot of `link_id` in the watcher-count table: Fibonacci hashing, so
/// that consecutive ids (as the store hands them out) spread out.
fn slot_of(link_id: i64) -> usize {
    let bits = SLOTS.trailing_zeros();
    ((link_id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
}

/// What a [`Subscription`] yields: the link's snapshot, and what it is to
/// this watcher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Update {
    pub snapshot: Snapshot,
    /// The watcher's first update (on connect, or on a reconnect that
    /// missed something): the state to show, not a click to list.
    pub first: bool,
}

/// The JSON `data` of an update's event.
#[derive(Serialize)]
struct EventData<'a> {
    clicks: u64,
    automated: u64,
    /// The last click counted while watched, if any.
    last: Option<LastClickData<'a>>,
}

#[derive(Serialize)]
struct LastClickData<'a> {
    /// Unix time, seconds.
    at: UnixTime,
    /// Empty for none.
    referrer: &'a str,
    automated: bool,
}

/// The longest JSON an update can need: every number at its widest and
/// the longest referrer host; a unit test holds it.
const MAX_EVENT_DATA: usize = 256;

impl Update {
    /// The event's name: `totals` for a first update, else `click`.
    pub fn event_name(&self) -> &'static str {
        if self.first {
            "totals"
        } else {
            "click"
        }
    }

    /// Appends the update to `out` as one Server-Sent Event: its
    /// [`Update::event_name`], the snapshot's `seq` as its id, and as data
    /// `{"clicks":N,"automated":N,"last":null or {"at":UNIX,"referrer":"host","automated":bool}}`.
    /// Allocates nothing when `out` has room.
    pub fn write_event(&self, out: &mut BytesMut) {
        let snapshot = &self.snapshot;
        let data = EventData {
            clicks: snapshot.totals.clicks,
            automated: snapshot.totals.automated,
            last: snapshot.last.as_ref().map(|last| LastClickData {
                at: last.at,
                referrer: last.referrer.as_str(),
                automated: last.automated,
            }),
        };
        let mut json = [0u8; MAX_EVENT_DATA];
        let mut free = &mut json[..];
        // Cannot fail: the data is at most MAX_EVENT_DATA bytes (tested),
        // and the host is ASCII. On a failure the event carries `{}`,
        // which the page ignores, rather than a torn object.
        let written = match serde_json::to_writer(&mut free, &data) {
            Ok(()) => MAX_EVENT_DATA - free.len(),
            Err(_) => 0,
        };
        let data = std::str::from_utf8(&json[..written])
            .ok()
            .filter(|text| !text.is_empty())
            .unwrap_or("{}");
        let mut id = [0u8; 20];
        let id = decimal(snapshot.seq, &mut id);
        // Neither field can hold a line break or NUL: a fixed name, digits.
        let _ = Event::data(data)
            .event(self.event_name())
            .id(id)
            .write_to(out);
    }
}

/// `n` in decimal, in `buf`.
fn decimal(n: u64, buf: &mut [u8; 20]) -> &str {
    let mut free = &mut buf[..];
    // A u64 has at most 20 digits: this write always fits.
    let _ = std::io::Write::write_fmt(&mut free, format_args!("{n}"));
    let len = 20 - free.len();
    std::str::from_utf8(&buf[..len]).unwrap_or("0")
}

/// One watcher of one link: yields the link's latest snapshot whenever it
/// changed since the last one it yielded. Stops watching when dropped.
pub struct Subscription {
    live: Arc<Live>,
    link_id: i64,
    channel: Arc<Channel>,
    /// The `seq` of the last snapshot yielded; `0` before the first.
    seen: u64,
}

impl Subscription {
    /// Takes the `Last-Event-ID` of a reconnecting client: when it names
    /// the current snapshot, the client is up to date and the next update
    /// is the next click; otherwise (absent, stale, from another process)
    /// the first update is the current state, at once.
    pub fn resume_after(&mut self, last_event_id: Option<&str>) {
        let Some(id) = last_event_id.and_then(|id| id.parse::<u64>().ok()) else {
            return;
        };
        if self.channel.latest.lock().seq == id {
            self.seen = id;
        }
    }

    /// The link's snapshot if it changed since the last one yielded (the
    /// first call always yields); never waits.
    pub fn latest(&mut self) -> Option<Update> {
        let update = self.pending()?;
        self.delivered(&update);
        Some(update)
    }

    /// What [`Subscription::latest`] would yield, without counting it as
    /// yielded: for a sender that may find its stream full, and then sends
    /// the latest snapshot (whatever it is by then) when there is room.
    pub fn pending(&self) -> Option<Update> {
        let snapshot = *self.channel.latest.lock();
        (snapshot.seq != self.seen).then_some(Update {
            snapshot,
            first: self.seen == 0,
        })
    }

    /// Counts `update` (from [`Subscription::pending`]) as yielded, once it
    /// was sent.
    pub fn delivered(&mut self, update: &Update) {
        self.seen = update.snapshot.seq;
    }

    /// [`Subscription::latest`], waiting up to `timeout` for a change:
    /// `None` when there was none (time for a heartbeat).
    pub fn wait(&mut self, timeout: Duration) -> Option<Update> {
        let deadline = Instant::now() + timeout;
        let mut latest = self.channel.latest.lock();
        while latest.seq == self.seen {
            if self
                .channel
                .changed
                .wait_until(&mut latest, deadline)
                .timed_out()
            {
                break;
            }
        }
        drop(latest);
        self.latest()
    }

    /// The link watched.
    pub fn link_id(&self) -> i64 {
        self.link_id
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.live.unwatch(self.link_id, &self.channel);
    }
}

#[cfg(test)]
mod tests;
