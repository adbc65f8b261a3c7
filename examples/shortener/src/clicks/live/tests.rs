use super::*;
use crate::clicks::MAX_HOST_LEN;

const AT: UnixTime = 1_795_600_800;

fn click(link_id: i64, referer: Option<&str>) -> Click {
    Click::new(link_id, AT, referer, Some("Mozilla/5.0 Firefox/120.0"))
}

fn bot(link_id: i64) -> Click {
    Click::new(link_id, AT, None, Some("Slackbot-LinkExpanding 1.0"))
}

fn hub() -> Arc<Live> {
    Arc::new(Live::new())
}

fn totals(clicks: u64, automated: u64) -> Totals {
    Totals { clicks, automated }
}

#[test]
fn a_watcher_first_sees_the_baseline_then_each_change() {
    let live = hub();
    let mut watcher = live.watch(7, totals(40, 2)).unwrap();
    let first = watcher.latest().expect("the state at once");
    assert!(first.first);
    assert_eq!(first.snapshot.totals, totals(40, 2));
    assert_eq!(first.snapshot.last, None);
    assert_eq!(watcher.latest(), None, "nothing changed since");

    live.publish(&click(7, Some("https://News.example.com/item")));
    let update = watcher.latest().expect("a click");
    assert!(!update.first);
    assert!(update.snapshot.seq > first.snapshot.seq);
    assert_eq!(update.snapshot.totals, totals(41, 2));
    let last = update.snapshot.last.unwrap();
    assert_eq!(last.referrer.as_str(), "news.example.com");
    assert!(!last.automated);
    assert!(last.at >= AT);

    assert!(bot(7).agent.is_automated());
    live.publish(&bot(7));
    let update = watcher.latest().unwrap();
    assert_eq!(update.snapshot.totals, totals(41, 3));
    assert!(update.snapshot.last.unwrap().automated);

    // Another link's click is not this watcher's.
    live.publish(&click(8, None));
    assert_eq!(watcher.latest(), None);
}

#[test]
fn a_slow_watcher_sees_the_latest_totals_not_a_backlog() {
    let live = hub();
    let mut slow = live.watch(1, totals(0, 0)).unwrap();
    let mut fast = live.watch(1, totals(0, 0)).unwrap();
    slow.latest().unwrap();
    fast.latest().unwrap();
    for n in 1..=10_000u64 {
        live.publish(&click(1, None));
        if n % 1000 == 0 {
            assert_eq!(fast.latest().unwrap().snapshot.totals.clicks, n);
        }
    }
    let update = slow.latest().expect("one update");
    assert_eq!(update.snapshot.totals.clicks, 10_000);
    assert_eq!(slow.latest(), None, "the 10,000 clicks were one update");
}

#[test]
fn watchers_are_bounded_per_link_and_in_all() {
    let live = Arc::new(Live::with_limits(2, 3));
    let a1 = live.watch(1, Totals::default()).unwrap();
    let _a2 = live.watch(1, Totals::default()).unwrap();
    assert_eq!(
        live.watch(1, Totals::default()).err(),
        Some(WatchRefused::LinkFull)
    );
    let _b1 = live.watch(2, Totals::default()).unwrap();
    assert_eq!(
        live.watch(3, Totals::default()).err(),
        Some(WatchRefused::ServerFull)
    );
    assert_eq!((live.watchers(), live.watched_links()), (3, 2));
    // A refused watch left nothing behind, and a freed place is taken again.
    drop(a1);
    let _c1 = live.watch(3, Totals::default()).unwrap();
    assert_eq!((live.watchers(), live.watched_links()), (3, 3));

    let full: ApiError = WatchRefused::LinkFull.into();
    assert_eq!(full.status, StatusCode::TOO_MANY_REQUESTS);
    let busy: ApiError = WatchRefused::ServerFull.into();
    assert_eq!(busy.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[test]
fn the_default_bounds_hold() {
    let live = hub();
    let mut held = Vec::new();
    for link in 0..(MAX_WATCHERS / MAX_WATCHERS_PER_LINK) as i64 {
        for _ in 0..MAX_WATCHERS_PER_LINK {
            held.push(live.watch(link, Totals::default()).unwrap());
        }
    }
    assert_eq!(live.watchers(), MAX_WATCHERS);
    assert_eq!(
        live.watch(-1, Totals::default()).err(),
        Some(WatchRefused::ServerFull)
    );
    held.truncate(MAX_WATCHERS - 1);
    assert_eq!(
        live.watch(0, Totals::default()).err(),
        Some(WatchRefused::LinkFull)
    );
}

#[test]
fn dropping_the_last_watcher_forgets_the_link() {
    let live = hub();
    let first = live.watch(5, totals(3, 0)).unwrap();
    let second = live.watch(5, totals(3, 0)).unwrap();
    drop(first);
    assert_eq!((live.watchers(), live.watched_links()), (1, 1));
    drop(second);
    assert_eq!((live.watchers(), live.watched_links()), (0, 0));
    assert!(live
        .slots
        .iter()
        .all(|slot| slot.load(Ordering::Relaxed) == 0));
    // A click now finds nobody; a new watch starts from its own baseline
    // with an id never handed out before.
    live.publish(&click(5, None));
    let mut again = live.watch(5, totals(9, 0)).unwrap();
    let update = again.latest().unwrap();
    assert_eq!(update.snapshot.totals, totals(9, 0));
}

#[test]
fn a_newer_baseline_raises_the_totals_and_tells_the_watchers() {
    let live = hub();
    let mut watcher = live.watch(1, totals(10, 1)).unwrap();
    watcher.latest().unwrap();
    live.publish(&click(1, None));
    assert_eq!(watcher.latest().unwrap().snapshot.totals, totals(11, 1));
    // A lower baseline (read before that click) changes nothing.
    let _lower = live.watch(1, totals(10, 1)).unwrap();
    assert_eq!(watcher.latest(), None);
    // A higher one (another instance's clicks) is what everyone sees.
    let _higher = live.watch(1, totals(15, 1)).unwrap();
    assert_eq!(watcher.latest().unwrap().snapshot.totals, totals(15, 1));
}

#[test]
fn a_reconnect_with_the_current_id_waits_for_the_next_click() {
    let live = hub();
    let mut before = live.watch(1, totals(4, 0)).unwrap();
    live.publish(&click(1, None));
    let seen = before.latest().unwrap().snapshot.seq.to_string();

    // Up to date: nothing until the next click, which is a click.
    let mut resumed = live.watch(1, totals(4, 0)).unwrap();
    resumed.resume_after(Some(&seen));
    assert_eq!(resumed.latest(), None);
    live.publish(&click(1, None));
    let next = resumed.latest().unwrap();
    assert!(!next.first);
    assert_eq!(next.snapshot.totals.clicks, 6);

    // A stale, foreign or garbled id: the state, at once.
    for id in [Some(seen.as_str()), Some("0"), Some("x"), Some(""), None] {
        let mut stale = live.watch(1, totals(0, 0)).unwrap();
        stale.resume_after(id);
        let update = stale.latest().expect("the state");
        assert!(update.first, "{id:?}");
        assert_eq!(update.snapshot.totals.clicks, 6, "{id:?}");
    }
}

#[test]
fn wait_returns_on_a_click_or_at_the_timeout() {
    let live = hub();
    let mut watcher = live.watch(3, Totals::default()).unwrap();
    assert!(watcher.wait(Duration::from_secs(5)).unwrap().first);
    let started = Instant::now();
    assert_eq!(watcher.wait(Duration::from_millis(30)), None);
    assert!(started.elapsed() >= Duration::from_millis(30));

    let clicker = {
        let live = Arc::clone(&live);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            live.publish(&click(3, None));
        })
    };
    let started = Instant::now();
    let update = watcher
        .wait(Duration::from_secs(10))
        .expect("woken by the click");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(update.snapshot.totals.clicks, 1);
    clicker.join().unwrap();
}

#[test]
fn clicks_recorded_are_published() {
    let clicks = crate::clicks::Clicks::new();
    let mut watcher = clicks.live.watch(11, Totals::default()).unwrap();
    watcher.latest().unwrap();
    clicks.record(click(11, None));
    clicks.record(bot(11));
    clicks.record(click(12, None));
    assert_eq!(watcher.latest().unwrap().snapshot.totals, totals(1, 1));
}

fn event_text(update: &Update) -> String {
    let mut out = BytesMut::new();
    update.write_event(&mut out);
    String::from_utf8(out.to_vec()).unwrap()
}

#[test]
fn updates_are_written_as_server_sent_events() {
    let state = Update {
        snapshot: Snapshot {
            seq: 41,
            totals: totals(3, 1),
            last: None,
        },
        first: true,
    };
    assert_eq!(
        event_text(&state),
        "event: totals\nid: 41\ndata: {\"clicks\":3,\"automated\":1,\"last\":null}\n\n"
    );
    let click = Update {
        snapshot: Snapshot {
            seq: 42,
            totals: totals(4, 1),
            last: Some(LastClick {
                at: AT,
                referrer: Host::of_referer(Some("https://a.example/")),
                automated: false,
            }),
        },
        first: false,
    };
    assert_eq!(
        event_text(&click),
        "event: click\nid: 42\ndata: {\"clicks\":4,\"automated\":1,\"last\":\
         {\"at\":1795600800,\"referrer\":\"a.example\",\"automated\":false}}\n\n"
    );
}

#[test]
fn the_widest_update_fits_its_buffer() {
    let host = format!("https://{}/", "a".repeat(MAX_HOST_LEN));
    let widest = Update {
        snapshot: Snapshot {
            seq: u64::MAX,
            totals: totals(u64::MAX, u64::MAX),
            last: Some(LastClick {
                at: i64::MIN,
                referrer: Host::of_referer(Some(&host)),
                automated: false,
            }),
        },
        first: false,
    };
    assert_eq!(
        widest.snapshot.last.unwrap().referrer.as_str().len(),
        MAX_HOST_LEN
    );
    let text = event_text(&widest);
    let data = text
        .lines()
        .find_map(|line| line.strip_prefix("data: "))
        .unwrap();
    let parsed: serde_json::Value = serde_json::from_str(data).expect("whole JSON");
    assert_eq!(parsed["clicks"], u64::MAX);
    assert!(data.len() <= MAX_EVENT_DATA);
    assert!(text.contains(&format!("id: {}\n", u64::MAX)));
}

#[test]
fn one_thread_can_serve_many_watchers() {
    let live = hub();
    let mut watchers: Vec<Subscription> = (1..=3)
        .map(|link| live.watch(link, Totals::default()).unwrap())
        .collect();
    for watcher in &mut watchers {
        watcher.latest().unwrap();
    }
    let version = live.version();
    // Nothing changes: the wait ends at its timeout, version unchanged.
    assert_eq!(
        live.wait_for_change(version, Duration::from_millis(20)),
        version
    );

    let clicker = {
        let live = Arc::clone(&live);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            live.publish(&click(2, None));
        })
    };
    let started = Instant::now();
    let now = live.wait_for_change(version, Duration::from_secs(10));
    assert!(now > version);
    assert!(started.elapsed() < Duration::from_secs(5));
    clicker.join().unwrap();

    // Only the clicked link's watcher has something, and it stays pending
    // until delivered (a full stream sends it later, as it is by then).
    assert_eq!(watchers[0].pending(), None);
    assert_eq!(watchers[2].pending(), None);
    let pending = watchers[1].pending().expect("the click");
    live.publish(&click(2, None));
    let newer = watchers[1].pending().unwrap();
    assert_eq!(
        (pending.snapshot.totals.clicks, newer.snapshot.totals.clicks),
        (1, 2)
    );
    watchers[1].delivered(&newer);
    assert_eq!(watchers[1].pending(), None);
}
