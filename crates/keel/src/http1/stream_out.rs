//! A response body streaming through a connection: where its pieces come
//! from, and what to do when it ends.

use crate::source::Source;
use crate::stream::StreamShared;
use std::sync::Arc;

/// Where a streamed response's pieces come from.
pub(crate) enum Producer {
    /// A [`crate::BodyStream`]'s queue, filled from any thread.
    Queue(Arc<StreamShared>),
    /// A [`crate::BodySource`], asked on the worker.
    Source(Box<Source>),
}

/// The connection's side of a streamed response.
pub(super) struct StreamOut {
    pub(super) from: Producer,
    /// The connection stays open after the body.
    pub(super) keep_alive: bool,
}

impl Drop for StreamOut {
    /// The connection is done with it (the body ended, or the connection
    /// closed): a producer still sending is told [`crate::StreamError::Closed`].
    fn drop(&mut self) {
        if let Producer::Queue(shared) = &self.from {
            shared.close();
        }
    }
}
