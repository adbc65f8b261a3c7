//! The access log's buffers and its background writer thread.
//!
//! Each thread that logs owns a slot: a buffer behind a mutex that only that
//! thread and the writer ever lock. A worker appends its line to its slot;
//! when the slot passes `flush_bytes` it swaps the full buffer for an empty
//! one from the pool and sends the full one to the writer. Every flush
//! interval the writer also sweeps the slots (swapping out what they hold),
//! so lines of an idle worker are not held back, swapping in a spare buffer
//! of its own (the one it swapped out last time, written and cleared). The
//! writer writes each buffer to the sink with no lock held, clears it and
//! puts it back in the pool (four buffers are made up front): in steady
//! state the same buffers go round and nothing is allocated.

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use parking_lot::Mutex;
use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Full buffers that may wait for the writer; past them a worker keeps
/// appending to its own buffer, and past four times `flush_bytes` there it
/// drops lines.
pub(super) const QUEUE_DEPTH: usize = 32;

/// Empty buffers made when the log starts, so that a worker finds one ready
/// even while the writer is a few buffers behind.
const PREFILLED: usize = 4;

/// Default [`LogWriter::set_flush_bytes`].
const DEFAULT_FLUSH_BYTES: usize = 16 * 1024;

/// One thread's buffer.
type Slot = Mutex<Vec<u8>>;

enum Msg {
    Full(Vec<u8>),
    Flush(Sender<()>),
}

/// What the workers, the writer thread and the handles share.
struct Shared {
    /// Tells this log's slots from another log's in a thread's slot list.
    id: u64,
    /// Every thread's slot, for the writer's sweeps.
    slots: Mutex<Vec<Arc<Slot>>>,
    /// Empty buffers, ready to swap in.
    pool_tx: Sender<Vec<u8>>,
    pool_rx: Receiver<Vec<u8>>,
    flush_bytes: AtomicU64,
    interval_nanos: AtomicU64,
    dropped: AtomicU64,
}

thread_local! {
    /// This thread's slot in each log it has written to: (log id, slot).
    static SLOTS: RefCell<Vec<(u64, Arc<Slot>)>> = const { RefCell::new(Vec::new()) };
}

/// The worker's side: appends lines, hands full buffers to the writer.
/// Cloned (no allocation) into the observer of a deferred response.
#[derive(Clone)]
pub(super) struct LogWriter {
    shared: Arc<Shared>,
    tx: Sender<Msg>,
}

impl LogWriter {
    /// Starts the writer thread, writing to `sink`.
    pub(super) fn spawn(sink: Box<dyn Write + Send>) -> std::io::Result<LogWriter> {
        static IDS: AtomicU64 = AtomicU64::new(0);
        let (pool_tx, pool_rx) = crossbeam_channel::bounded(2 * QUEUE_DEPTH);
        let shared = Arc::new(Shared {
            id: IDS.fetch_add(1, Relaxed),
            slots: Mutex::new(Vec::new()),
            pool_tx,
            pool_rx,
            flush_bytes: AtomicU64::new(DEFAULT_FLUSH_BYTES as u64),
            interval_nanos: AtomicU64::new(100_000_000),
            dropped: AtomicU64::new(0),
        });
        for _ in 0..PREFILLED {
            let _ = shared
                .pool_tx
                .try_send(Vec::with_capacity(2 * DEFAULT_FLUSH_BYTES));
        }
        let (tx, rx) = crossbeam_channel::bounded(QUEUE_DEPTH);
        let writer_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("keel-access-log".into())
            .spawn(move || run(&writer_shared, &rx, sink))?;
        Ok(LogWriter { shared, tx })
    }

    pub(super) fn set_flush_bytes(&self, bytes: usize) {
        self.shared.flush_bytes.store(bytes.max(1) as u64, Relaxed);
    }

    pub(super) fn set_interval(&self, interval: Duration) {
        let nanos = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX);
        self.shared
            .interval_nanos
            .store(nanos.max(1_000_000), Relaxed);
    }

    pub(super) fn handle(&self) -> AccessLogHandle {
        AccessLogHandle {
            shared: Arc::clone(&self.shared),
            tx: self.tx.clone(),
        }
    }

    /// Lets `line` append one line to this thread's buffer; drops it (and
    /// counts it) when the buffer is already four times `flush_bytes`
    /// because the writer is behind.
    pub(super) fn append(&self, line: impl FnOnce(&mut Vec<u8>)) {
        self.with_slot(|slot| {
            let flush_bytes = self.shared.flush_bytes.load(Relaxed) as usize;
            let mut buf = slot.lock();
            if buf.len() >= flush_bytes.saturating_mul(4) {
                self.shared.dropped.fetch_add(1, Relaxed);
                return;
            }
            line(&mut buf);
            if buf.len() < flush_bytes || self.tx.is_full() {
                return;
            }
            let empty = self
                .shared
                .pool_rx
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(flush_bytes * 2));
            let full = std::mem::replace(&mut *buf, empty);
            if let Err(TrySendError::Full(Msg::Full(full))) = self.tx.try_send(Msg::Full(full)) {
                // The queue filled up meanwhile: keep the lines here.
                let empty = std::mem::replace(&mut *buf, full);
                let _ = self.shared.pool_tx.try_send(empty);
            }
        });
    }

    /// Runs `f` on this thread's slot, registering one on first use.
    fn with_slot<R>(&self, f: impl FnOnce(&Slot) -> R) -> R {
        let id = self.shared.id;
        SLOTS.with(|slots| {
            if let Some((_, slot)) = slots.borrow().iter().find(|(i, _)| *i == id) {
                return f(slot);
            }
            let slot = Arc::new(Mutex::new(Vec::new()));
            self.shared.slots.lock().push(Arc::clone(&slot));
            let mut slots = slots.borrow_mut();
            // Forget the slots of logs that are gone.
            slots.retain(|(_, slot)| Arc::strong_count(slot) > 1);
            slots.push((id, Arc::clone(&slot)));
            drop(slots);
            f(&slot)
        })
    }
}

/// Controls an [`AccessLog`](super::AccessLog)'s writer from outside the
/// server: flush on demand, read the count of dropped lines. Keeps the
/// writer thread alive while it exists. Get one from
/// [`AccessLog::handle`](super::AccessLog::handle).
#[derive(Clone)]
pub struct AccessLogHandle {
    shared: Arc<Shared>,
    tx: Sender<Msg>,
}

impl AccessLogHandle {
    /// Writes every line logged so far, on any thread, to the sink and
    /// flushes it; returns once that is done. Blocks: for tests and
    /// shutdown, not for handlers.
    pub fn flush_now(&self) {
        let (ack_tx, ack_rx) = crossbeam_channel::bounded(1);
        if self.tx.send(Msg::Flush(ack_tx)).is_ok() {
            let _ = ack_rx.recv();
        }
    }

    /// Lines lost so far: dropped because the writer was behind, or in a
    /// write the sink failed.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Relaxed)
    }
}

impl std::fmt::Debug for AccessLogHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLogHandle")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

/// The writer thread: writes full buffers as they come, sweeps the slots
/// every interval and on a flush request, and stops once every sender is
/// gone (after a last sweep).
fn run(shared: &Shared, rx: &Receiver<Msg>, mut sink: Box<dyn Write + Send>) {
    let interval = || Duration::from_nanos(shared.interval_nanos.load(Relaxed));
    let mut next_sweep = Instant::now() + interval();
    // The buffer a sweep swaps into a slot; the one swapped out, once
    // written, is the next spare, so sweeps allocate nothing.
    let mut spare = Vec::new();
    loop {
        match rx.recv_deadline(next_sweep) {
            Ok(Msg::Full(mut buf)) => {
                write(shared, &mut sink, &mut buf);
                let _ = shared.pool_tx.try_send(buf);
            }
            Ok(Msg::Flush(ack)) => {
                sweep(shared, &mut sink, &mut spare);
                let _ = ack.send(());
            }
            Err(RecvTimeoutError::Timeout) => {
                sweep(shared, &mut sink, &mut spare);
                next_sweep = Instant::now() + interval();
            }
            Err(RecvTimeoutError::Disconnected) => {
                sweep(shared, &mut sink, &mut spare);
                return;
            }
        }
    }
}

/// Writes out what every slot holds, then flushes the sink; forgets the
/// slots of threads that have exited.
fn sweep(shared: &Shared, sink: &mut Box<dyn Write + Send>, spare: &mut Vec<u8>) {
    let mut i = 0;
    loop {
        let Some(slot) = shared.slots.lock().get(i).cloned() else {
            break;
        };
        i += 1;
        let mut buf = slot.lock();
        if buf.is_empty() {
            continue;
        }
        if spare.capacity() == 0 {
            spare.reserve(buf.capacity());
        }
        std::mem::swap(&mut *buf, spare);
        drop(buf);
        write(shared, sink, spare);
    }
    let _ = sink.flush();
    shared
        .slots
        .lock()
        .retain(|slot| Arc::strong_count(slot) > 1 || !slot.lock().is_empty());
}

/// Writes one buffer and empties it.
fn write(shared: &Shared, sink: &mut Box<dyn Write + Send>, buf: &mut Vec<u8>) {
    if sink.write_all(buf).is_err() {
        let lines = buf.iter().filter(|&&b| b == b'\n').count();
        shared.dropped.fetch_add(lines as u64, Relaxed);
    }
    buf.clear();
}
