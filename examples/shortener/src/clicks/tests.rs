use super::*;
use std::sync::mpsc;

const AT: i64 = 1_795_600_800;

fn unflushed(clicks: &Clicks, link_id: i64) -> u64 {
    clicks.with_unflushed(|unflushed| unflushed.of(link_id))
}

#[test]
fn unflushed_clicks_are_counted_until_written() {
    let clicks = Clicks::new();
    clicks.record(Click::new(1, AT, None, Some("curl/8")));
    clicks.record(Click::new(1, AT, Some("https://a.example/"), None));
    clicks.record(Click::new(2, AT, None, None));
    // A link preview is counted apart, not against the budget.
    clicks.record(Click::new(1, AT, None, Some("Slackbot 1.0")));
    std::thread::scope(|s| {
        s.spawn(|| clicks.record(Click::new(1, AT + 86_400, None, None)));
    });
    assert_eq!(unflushed(&clicks, 1), 3);
    assert_eq!(unflushed(&clicks, 2), 1);
    assert_eq!(unflushed(&clicks, 3), 0);
    // A failed flush keeps them pending; a good one writes them.
    let mut failed_id = String::new();
    let failed = clicks.flush_with(|id, _| {
        failed_id = id.to_owned();
        // Asked while a flush writes: the last flush's count, at once.
        assert_eq!(clicks.pending_batches(), 0);
        Err(StoreError::Unavailable("down".into()))
    });
    assert!(failed.is_err());
    assert_eq!(clicks.pending_batches(), 1);
    assert_eq!(unflushed(&clicks, 1), 3);
    // Clicks after the failure go in a batch of their own: the failed
    // one is retried first, under the same id, with the same counts.
    clicks.record(Click::new(2, AT, None, None));
    let mut written = Vec::new();
    let links = clicks.flush_with(|id, batch| {
        let mut batch = batch.to_vec();
        batch.sort_by_key(|l| l.link_id);
        written.push((
            id.to_owned(),
            batch.iter().map(|l| l.total).collect::<Vec<_>>(),
        ));
        Ok(())
    });
    assert_eq!(links.unwrap(), 3);
    assert_eq!(clicks.pending_batches(), 0);
    assert_eq!(written.len(), 2);
    assert_eq!(written[0], (failed_id.clone(), vec![3, 1]));
    assert_ne!(written[1].0, failed_id);
    assert_eq!(written[1].1, [1]);
    assert_eq!(unflushed(&clicks, 1), 0);
    assert_eq!(unflushed(&clicks, 2), 0);
    assert_eq!(clicks.counters.flushed.load(Ordering::Relaxed), 5);
    assert_eq!(clicks.counters.automated.get(), 1);
    assert!(
        clicks.pending.lock().is_empty(),
        "committed batches are purged"
    );
}

/// A flush whose store write hangs blocks neither the recording of
/// clicks nor a reader: both answer while the write is under way.
#[test]
fn a_slow_store_write_blocks_no_reader_and_no_click() {
    let clicks = Clicks::new();
    clicks.record(Click::new(1, AT, None, None));
    let (writing_tx, writing) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let clicks = &clicks;
    std::thread::scope(|s| {
        s.spawn(move || {
            clicks
                .flush_with(|_, _| {
                    writing_tx.send(()).unwrap();
                    released.recv().unwrap();
                    Ok(())
                })
                .unwrap()
        });
        writing.recv().unwrap();
        let (done_tx, done) = mpsc::channel();
        s.spawn(move || {
            clicks.record(Click::new(1, AT, None, None));
            // The batch being written still counts: its commit is not known.
            done_tx.send(unflushed(clicks, 1)).unwrap();
        });
        let seen = done.recv_timeout(Duration::from_secs(5));
        release.send(()).unwrap();
        assert_eq!(seen, Ok(2), "a reader waited for the store write");
    });
    assert_eq!(unflushed(clicks, 1), 1);
}

/// The race a reload must not lose: its store read starts before a batch
/// commits, and it asks for the unflushed clicks after the flush ended.
/// The batch must still be counted (it is not in what was read), or the
/// budget would hand those clicks out again.
#[test]
fn a_batch_committed_during_a_read_is_still_counted_by_it() {
    let clicks = Clicks::new();
    for _ in 0..3 {
        clicks.record(Click::new(1, AT, None, None));
    }
    let mut store_total = 0;
    let counted = clicks.with_unflushed(|unflushed| {
        // The store read, before the commit: it sees none of the three.
        let read = store_total;
        // A whole flush commits meanwhile (the timer's thread).
        std::thread::scope(|s| {
            s.spawn(|| {
                clicks.flush_with(|_, batch| {
                    store_total += batch[0].total;
                    Ok(())
                })
            })
            .join()
            .unwrap()
            .unwrap();
        });
        read + unflushed.of(1)
    });
    assert_eq!(counted, 3);
    // A read started after the commit sees them in the store instead,
    // and the batch is forgotten at the next flush.
    assert_eq!(store_total + unflushed(&clicks, 1), 3);
    clicks.flush_with(|_, _| Ok(())).unwrap();
    assert!(clicks.pending.lock().is_empty());
}

#[test]
fn one_link_takes_a_bounded_share_of_a_shard() {
    let clicks = Clicks::new();
    for i in 0..5_000 {
        let referer = format!("https://s{i}.spam.example/");
        clicks.record(Click::new(1, AT, Some(&referer), Some("curl/8")));
    }
    clicks.record(Click::new(2, AT, Some("https://fine.example/"), None));
    let keys = clicks.my_shard().lock().counts.len();
    assert_eq!(keys, KEYS_PER_LINK_PER_SHARD as usize + 2);
    assert_eq!(unflushed(&clicks, 1), 5_000);
    let folded = 5_000 - u64::from(KEYS_PER_LINK_PER_SHARD);
    assert!(clicks.counters.referrers_folded.load(Ordering::Relaxed) >= folded);
    let mut batch = Vec::new();
    clicks
        .flush_with(|_, links| {
            batch = links.to_vec();
            Ok(())
        })
        .unwrap();
    let link = batch.iter().find(|l| l.link_id == 1).unwrap();
    assert_eq!(link.total, 5_000);
    assert_eq!(link.referrers.len(), REFERRERS_PER_INTERVAL);
    // The other link's host kept its name.
    let other = batch.iter().find(|l| l.link_id == 2).unwrap();
    assert_eq!(other.referrers, [("fine.example".to_owned(), 1)]);
}

/// Clicks recorded, flushes committing to a slow store and reloads all at
/// once: every reload counts at least each click recorded before it began
/// (never too few, which would hand clicks out again), and at most one
/// batch twice.
#[test]
fn concurrent_flushes_never_make_a_reader_count_too_few() {
    use std::sync::atomic::AtomicBool;
    let clicks = Clicks::new();
    let store = AtomicU64::new(0);
    let recorded = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    /// Stops the other threads however the checks end (a failed one too).
    struct StopOnDrop<'a>(&'a AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                clicks.record(Click::new(1, AT, None, None));
                recorded.fetch_add(1, Ordering::SeqCst);
                std::thread::yield_now();
            }
        });
        s.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                clicks
                    .flush_with(|_, batch| {
                        std::thread::sleep(Duration::from_micros(300));
                        let total: u64 = batch.iter().map(|l| l.total).sum();
                        store.fetch_add(total, Ordering::SeqCst);
                        // Committed, not yet acknowledged.
                        std::thread::sleep(Duration::from_micros(300));
                        Ok(())
                    })
                    .unwrap();
            }
        });
        let _stop = StopOnDrop(&stop);
        for _ in 0..500 {
            let before = recorded.load(Ordering::SeqCst);
            let counted = clicks.with_unflushed(|unflushed| {
                let read = store.load(Ordering::SeqCst);
                std::thread::sleep(Duration::from_micros(200));
                read + unflushed.of(1)
            });
            let after = recorded.load(Ordering::SeqCst);
            assert!(
                counted >= before,
                "{counted} counted, {before} recorded before"
            );
            assert!(
                counted <= 2 * after + 1,
                "{counted} counted, {after} recorded"
            );
        }
    });
    clicks.flush_with(|_, _| Ok(())).unwrap();
    assert!(clicks.pending.lock().is_empty());
}
