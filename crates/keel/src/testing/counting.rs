//! A global allocator that counts allocations: the proof that a handler
//! allocates nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

/// The system allocator, counting every allocation and reallocation in
/// every thread of the process. Install it in a test binary of its own
/// (the count covers all threads, so keep other tests out of that binary)
/// and compare [`allocations`] before and after the work:
///
/// ```
/// use keel::testing::{allocations, CountingAllocator, MemoryConn};
/// use keel::{Request, Response};
///
/// #[global_allocator]
/// static GLOBAL: CountingAllocator = CountingAllocator;
///
/// let mut conn = MemoryConn::new(|_: &Request<'_>, res: &mut Response<'_>| res.body(b"hi"));
/// let mut out = Vec::with_capacity(4096);
/// let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
/// conn.send(request); // warm-up: buffers are allocated once
/// conn.recv_into(&mut out);
/// out.clear();
/// let before = allocations();
/// conn.send(request);
/// conn.recv_into(&mut out);
/// assert_eq!(allocations() - before, 0);
/// ```
///
/// Costs one atomic increment per allocation.
pub struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// Allocations (and reallocations) so far, in every thread, counted by
/// [`CountingAllocator`] when it is the global allocator (else 0).
pub fn allocations() -> u64 {
    ALLOCATIONS.load(SeqCst)
}

/// Runs `run` twice and returns the [`allocations`] of the second run:
/// the first warms up what a server keeps (pools, the slab, caches), then
/// 50 ms pass so that a worker finishing the first run's last writes is
/// not counted in the second.
pub fn allocations_after_warm_up(mut run: impl FnMut()) -> u64 {
    run();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let before = allocations();
    run();
    allocations() - before
}

// SAFETY: every method forwards to the system allocator unchanged; counting
// has no effect on the memory handed out.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, SeqCst);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through `alloc`/`realloc` above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, SeqCst);
        // SAFETY: the caller's contract for `realloc` is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
