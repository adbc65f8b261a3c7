//! The route [`Routes::on_head`](crate::Handler::on_head) resolved, kept for
//! [`Routes::handle`](crate::Handler::handle) of the same request: keel calls
//! both for every request, and a request is routed once.
//!
//! A thread-local, as `on_head` and `handle` of one request run on one
//! worker thread. It holds offsets, not borrows: the request's bytes outlive
//! neither call. The connection [`forget`]s it before each request's
//! head-time checks and before a handler that runs in a later turn than its
//! checks (its bytes may have moved), so a resolution is only ever used for
//! the request that made it, in the same turn; the table's address and the
//! request target's address and length are checked on top.

use super::MAX_PARAMS;
use std::cell::Cell;

/// One resolution: which table, for which path, its endpoint, and where each
/// captured value lies in the path.
#[derive(Clone, Copy, Debug)]
pub(super) struct Resolved {
    /// The address of the `Routes` that resolved it.
    owner: usize,
    /// The request target's address and length.
    target: (usize, usize),
    /// Index of the endpoint in the tree.
    pub(super) endpoint: u32,
    /// Index of the handler for the request's method.
    pub(super) handler: u32,
    /// (offset in the target, length) of each captured value, in path order.
    values: [(u32, u32); MAX_PARAMS],
    count: u8,
}

thread_local! {
    static RESOLVED: Cell<Option<Resolved>> = const { Cell::new(None) };
}

/// Remembers that `owner` resolved the path of the request `target` to
/// `endpoint` and its `handler` for the request's method, capturing `values`
/// (slices of the path, so of `target`). A target longer than `u32::MAX` is
/// not remembered.
pub(super) fn remember<'p>(
    owner: *const (),
    target: &'p str,
    endpoint: u32,
    handler: u32,
    values: impl Iterator<Item = &'p str>,
) {
    let base = target.as_ptr() as usize;
    let mut resolved = Resolved {
        owner: owner as usize,
        target: (base, target.len()),
        endpoint,
        handler,
        values: [(0, 0); MAX_PARAMS],
        count: 0,
    };
    for (slot, value) in resolved.values.iter_mut().zip(values) {
        // Each value is a slice of the target; anything else is not remembered.
        let at = (value.as_ptr() as usize).wrapping_sub(base);
        let inside = at <= target.len() && value.len() <= target.len() - at;
        let (true, Ok(at), Ok(len)) = (inside, u32::try_from(at), u32::try_from(value.len()))
        else {
            return;
        };
        *slot = (at, len);
        resolved.count += 1;
    }
    RESOLVED.with(|cell| cell.set(Some(resolved)));
}

/// Takes what `owner` remembered for `target`, if that is what was resolved last.
pub(super) fn recall(owner: *const (), target: &str) -> Option<Resolved> {
    let resolved = RESOLVED.with(Cell::take)?;
    let key = (target.as_ptr() as usize, target.len());
    (resolved.owner == owner as usize && resolved.target == key).then_some(resolved)
}

/// Forgets what was resolved (see the module docs for when).
pub(crate) fn forget() {
    RESOLVED.with(|cell| cell.set(None));
}

impl Resolved {
    /// The captured values, as slices of `target` (the one they were resolved from).
    pub(super) fn values(self, target: &str) -> impl Iterator<Item = &str> {
        self.values
            .into_iter()
            .take(usize::from(self.count))
            .map(move |(at, len)| target.get(at as usize..(at + len) as usize).unwrap_or(""))
    }
}
