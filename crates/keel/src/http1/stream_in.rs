//! A request body streamed to a [`BodySink`]: decoded slices of the read
//! buffer handed over as they arrive, and the buffer advanced past what
//! the sink took.

use crate::body::{BodyError, BodySink, SinkWaker, Trailers};
use crate::deferred::Claim;
use crate::http1::body::{ChunkLimits, ChunkedDecoder};
use crate::http1::parse::BodyLength;
use crate::ProtocolError;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// How a streamed body's framing stands.
enum Framing {
    /// `Content-Length`: this many bytes are still to come.
    Fixed { remaining: usize },
    /// Chunked, decoded in place; `complete` once the last chunk and the
    /// trailers are in.
    Chunked {
        decoder: ChunkedDecoder,
        complete: bool,
    },
}

/// What one [`StreamIn::feed`] ended with.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Fed {
    /// The buffer is used up: read more.
    NeedMore,
    /// The sink is full: read nothing until its waker wakes.
    Paused,
    /// The body ended and the sink was told; the buffer is past it.
    Ended,
    /// The body failed (the sink was told), or the sink panicked: the
    /// connection must not read on.
    Failed,
}

/// One request body on its way to a sink.
pub(super) struct StreamIn {
    /// `None` once told how the body ended.
    sink: Option<Box<dyn BodySink>>,
    /// The claim of the deferred answer, when it is deferred: a failed body
    /// closes the connection, and the answer must say so.
    answer: Option<Arc<Claim>>,
    pub(super) waker: SinkWaker,
    framing: Framing,
    /// The route's limit, and the bytes the sink has taken.
    limit: usize,
    taken: usize,
    pub(super) paused: bool,
}

impl StreamIn {
    pub(super) fn new(
        sink: Box<dyn BodySink>,
        waker: SinkWaker,
        body: BodyLength,
        limit: usize,
        answer: Option<Arc<Claim>>,
    ) -> Self {
        let framing = match body {
            BodyLength::Fixed(n) => Framing::Fixed { remaining: n },
            BodyLength::Chunked => Framing::Chunked {
                decoder: ChunkedDecoder::default(),
                complete: false,
            },
            BodyLength::Empty => Framing::Fixed { remaining: 0 },
        };
        StreamIn {
            sink: Some(sink),
            answer,
            waker,
            framing,
            limit,
            taken: 0,
            paused: false,
        }
    }

    /// Body bytes the sink has taken so far.
    pub(super) fn taken(&self) -> usize {
        self.taken
    }

    /// Hands the sink what `input[*start..]` holds of the body, advancing
    /// `*start` past what it took (and, at the end, past the body).
    pub(super) fn feed(
        &mut self,
        input: &mut bytes::BytesMut,
        start: &mut usize,
        max_trailer_bytes: usize,
    ) -> Fed {
        loop {
            let (offered, complete) = match &mut self.framing {
                Framing::Fixed { remaining } => {
                    if *remaining == 0 {
                        return self.end(Trailers::default());
                    }
                    let offered = (*remaining).min(input.len() - *start);
                    if offered == 0 {
                        return Fed::NeedMore;
                    }
                    (offered, false)
                }
                Framing::Chunked { decoder, complete } => {
                    if !*complete {
                        let limits = ChunkLimits {
                            max_body: self.limit.saturating_sub(self.taken),
                            max_trailer_bytes,
                        };
                        match decoder.decode(&mut input[*start..], limits) {
                            Ok(Some(_)) => *complete = true,
                            Ok(None) => {}
                            Err(ProtocolError::BodyTooLarge) => {
                                return self.fail(BodyError::TooLarge)
                            }
                            Err(e) => return self.fail(BodyError::Framing(e)),
                        }
                    }
                    (decoder.decoded(), *complete)
                }
            };
            if offered > 0 {
                let data = &input[*start..*start + offered];
                let sink = self.sink.as_mut().expect("a sink until the end");
                let waker = &self.waker;
                let took = match catch_unwind(AssertUnwindSafe(|| sink.data(data, waker))) {
                    Ok(took) => took.min(offered),
                    Err(_) => return self.sink_panicked(),
                };
                *start += took;
                self.taken += took;
                match &mut self.framing {
                    Framing::Fixed { remaining } => *remaining -= took,
                    Framing::Chunked { decoder, .. } => decoder.consume(took),
                }
                if took < offered {
                    if self.waker.pause() {
                        self.paused = true;
                        return Fed::Paused;
                    }
                    continue; // woken while it ran: offer the rest again
                }
            }
            match &mut self.framing {
                Framing::Fixed { .. } => {}
                Framing::Chunked { decoder, .. } if complete => {
                    let (trailers, end) = decoder.trailers_and_end();
                    let fed = self.end(Trailers::new(&input[*start..][trailers]));
                    *start += end;
                    return fed;
                }
                Framing::Chunked { decoder, .. } => {
                    // Drop the framing decoded so far: the buffer keeps at
                    // most one chunk line and what the sink did not take.
                    let dropped = decoder.squeeze(&mut input[*start..]);
                    let len = input.len();
                    input.truncate(len - dropped);
                    return Fed::NeedMore;
                }
            }
        }
    }

    /// The connection resumes a paused sink.
    pub(super) fn resume(&mut self) {
        self.waker.resumed();
        self.paused = false;
    }

    /// Tells the sink the body failed.
    pub(super) fn fail(&mut self, error: BodyError) -> Fed {
        if let Some(mut sink) = self.sink.take() {
            // Before the sink hears it: the answer it gives says close.
            if let Some(answer) = &self.answer {
                answer.close_after_answer();
            }
            if catch_unwind(AssertUnwindSafe(|| sink.fail(error))).is_err() {
                return Fed::Failed;
            }
        }
        Fed::Failed
    }

    fn end(&mut self, trailers: Trailers<'_>) -> Fed {
        let Some(mut sink) = self.sink.take() else {
            return Fed::Ended;
        };
        match catch_unwind(AssertUnwindSafe(|| sink.end(&trailers))) {
            Ok(()) => Fed::Ended,
            Err(_) => Fed::Failed,
        }
    }

    fn sink_panicked(&mut self) -> Fed {
        if let Some(answer) = &self.answer {
            answer.close_after_answer();
        }
        // Its state is unknown: it is told nothing more.
        self.sink = None;
        Fed::Failed
    }
}

impl Drop for StreamIn {
    /// A body dropped unfinished (the connection closed, or its answer was
    /// complete first) fails its sink with [`BodyError::Closed`].
    fn drop(&mut self) {
        self.fail(BodyError::Closed);
    }
}
