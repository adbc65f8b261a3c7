//! `GET /api/links/:slug/live`: one link's clicks as Server-Sent Events,
//! for the page `/links/:slug/live`. Needs the `admin` key, as the stats
//! do.
//!
//! One thread sends every watcher its events: it waits for the click hub
//! ([`crate::clicks::live`]) to change, then gives each watcher its
//! link's latest totals with `try_send`, never blocking on a slow client
//! (a full stream gets the newest totals once it has room), and a comment
//! heartbeat every [`HEARTBEAT`] while a link is quiet. A client that left
//! is noticed by keel at once and dropped here on the next pass.

use super::ApiError;
use crate::app::State;
use crate::clicks::live::{Live, Subscription, Totals};
use crate::telemetry::StoreOp;
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use keel::{field, BodyStream, BytesMut, Request, Responder, Response};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A quiet stream gets a comment this often: proxies keep it open, and a
/// client gone without a word is found.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// How long the sender waits for a change before it looks for new
/// watchers and full streams with room again.
const LOOK_AGAIN: Duration = Duration::from_millis(200);
/// Watchers handed to the sender and not taken yet, at most.
const NEW_WATCHERS: usize = 64;

/// The sender thread, started with the first watcher.
#[derive(Default)]
pub struct LiveFeed {
    new: Mutex<Option<Sender<(Subscription, BodyStream)>>>,
}

impl LiveFeed {
    /// Hands a watcher and its stream to the sender; when its queue is
    /// full, both are dropped (the client sees its stream end, and retries).
    fn add(&self, live: &Arc<Live>, watcher: Subscription, stream: BodyStream) {
        let mut new = self.new.lock();
        let sender = new.get_or_insert_with(|| {
            let (sender, watchers) = crossbeam_channel::bounded(NEW_WATCHERS);
            let live = Arc::clone(live);
            let spawned = std::thread::Builder::new()
                .name("shortener-live".into())
                .spawn(move || send_events(&live, &watchers));
            if let Err(e) = spawned {
                eprintln!("shortener: the live-clicks thread did not start: {e}");
            }
            sender
        });
        let _ = sender.try_send((watcher, stream));
    }
}

/// The sender's loop; returns once the feed is gone and no watcher is left.
fn send_events(live: &Live, new: &Receiver<(Subscription, BodyStream)>) {
    let mut watchers: Vec<(Subscription, BodyStream)> = Vec::new();
    let mut event = BytesMut::with_capacity(512);
    let mut version = live.version();
    let mut last_beat = Instant::now();
    loop {
        loop {
            match new.try_recv() {
                Ok(watcher) => watchers.push(watcher),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) if watchers.is_empty() => return,
                Err(TryRecvError::Disconnected) => break,
            }
        }
        let beat = last_beat.elapsed() >= HEARTBEAT;
        if beat {
            last_beat = Instant::now();
        }
        watchers.retain_mut(|(watcher, stream)| {
            event.clear();
            let update = watcher.pending();
            match &update {
                Some(update) => update.write_event(&mut event),
                None if beat => keel::sse::comment("", &mut event),
                None => return !stream.is_closed(),
            }
            match stream.try_send(&event) {
                Ok(sent) => {
                    if let (true, Some(update)) = (sent, &update) {
                        watcher.delivered(update);
                    }
                    true
                }
                Err(_) => false, // the client left: its subscription ends
            }
        });
        version = live.wait_for_change(version, LOOK_AGAIN);
    }
}

/// `GET /api/links/:slug/live`.
pub fn watch(state: &Arc<State>, req: &Request<'_>, res: &mut Response<'_>) {
    let slug = match super::slug_param(req) {
        Ok(slug) => slug.to_owned(),
        Err(error) => return error.write(res),
    };
    let last_event_id = req.last_event_id().map(str::to_owned);
    let state = Arc::clone(state);
    super::offload_responder(res, move |responder: Responder| {
        let watcher = subscribe(&state, &slug, last_event_id.as_deref());
        match watcher {
            Err(error) => {
                responder.respond(|res| error.write(res));
            }
            Ok(watcher) => {
                let stream = responder.stream(|res| {
                    res.header("Content-Type", keel::sse::CONTENT_TYPE)
                        .field(field!("Cache-Control", "no-store"))
                        .field(field!("X-Content-Type-Options", "nosniff"))
                        .field(field!("X-Accel-Buffering", "no"));
                });
                if let Some(stream) = stream {
                    state.live_feed.add(&state.clicks.live, watcher, stream);
                }
            }
        }
    });
}

/// Looks the link up and starts watching it from its current totals.
fn subscribe(
    state: &State,
    slug: &str,
    last_event_id: Option<&str>,
) -> Result<Subscription, ApiError> {
    let link = state
        .store_call(StoreOp::Get, |s| s.get(slug))?
        .ok_or_else(ApiError::not_found)?;
    // Read before watching: the hub keeps the higher of what it counted
    // and this.
    let unflushed = state.clicks.with_unflushed(|u| u.of(link.id));
    let baseline = Totals {
        clicks: link.clicks + unflushed,
        automated: 0,
    };
    let mut watcher = state.clicks.live.watch(link.id, baseline)?;
    watcher.resume_after(last_event_id);
    Ok(watcher)
}
