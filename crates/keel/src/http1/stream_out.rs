//! A response body streaming through a connection: the queue it comes
//! from, and what to do when it ends.

use crate::stream::StreamShared;
use std::sync::Arc;

/// The connection's side of a [`crate::BodyStream`].
pub(super) struct StreamOut {
    pub(super) shared: Arc<StreamShared>,
    /// The connection stays open after the body.
    pub(super) keep_alive: bool,
}

impl Drop for StreamOut {
    /// The connection is done with it (the body ended, or the connection
    /// closed): a producer still sending is told [`crate::StreamError::Closed`].
    fn drop(&mut self) {
        self.shared.close();
    }
}
