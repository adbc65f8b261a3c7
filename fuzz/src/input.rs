//! Input decoding: reading bytes off the fuzzer's input, the `Config`
//! presets and finish of `conn_bytes` and `differential_split`, and the split
//! of a stream into pieces.

use keel::Config;

/// Reads bytes off the front of the input; zeros once it is empty.
pub(crate) struct Cursor<'a>(pub(crate) &'a [u8]);

impl<'a> Cursor<'a> {
    pub(crate) fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    pub(crate) fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

/// What happens once the whole stream was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Finish {
    Nothing,
    /// The peer shuts its sending side.
    CloseInput,
    /// The request deadline passes (only if the connection is still open).
    Expire,
    /// Both, deadline first.
    ExpireThenClose,
}

/// A `conn_bytes` / `differential_split` input, decoded.
pub(crate) struct Plan<'a> {
    pub(crate) config: Config,
    pub(crate) finish: Finish,
    pub(crate) stream: &'a [u8],
    pub(crate) pieces: Vec<&'a [u8]>,
}

impl<'a> Plan<'a> {
    pub(crate) fn decode(data: &'a [u8]) -> Self {
        let mut cur = Cursor(data);
        let flags = cur.byte();
        let config = match flags & 3 {
            0 => Config::default(),
            1 => Config {
                max_header_bytes: 64,
                max_headers: 2,
                max_target: 16,
                max_body: 16,
                max_output_buffered: 0,
                stream_window: 0,
                buffer_size: 16,
                max_pooled_buffer: 16,
                server_name: None,
                ..Config::default()
            },
            2 => Config {
                max_header_bytes: 256,
                max_headers: 8,
                max_target: 64,
                max_body: 256,
                max_output_buffered: 64,
                stream_window: 64,
                buffer_size: 512,
                ..Config::default()
            },
            _ => {
                let [a, b, c, d, e] = [(); 5].map(|()| cur.byte() as usize);
                Config {
                    max_header_bytes: 8 + a * 8,
                    max_headers: b % 24,
                    // The strict rules relaxed by the top bits of `b`.
                    lenient: keel::Leniency {
                        bare_lf: b & 0x20 != 0,
                        empty_host: b & 0x40 != 0,
                        target_bytes: b & 0x80 != 0,
                    },
                    max_target: c,
                    max_body: d * 4,
                    max_output_buffered: (e >> 1) * 32,
                    stream_window: (e >> 1) * 32,
                    buffer_size: 1 + (e >> 1),
                    server_name: if e & 1 == 0 {
                        None
                    } else {
                        Some("fuzz".to_owned())
                    },
                    ..Config::default()
                }
            }
        };
        let finish = match (flags >> 2) & 3 {
            0 => Finish::Nothing,
            1 => Finish::CloseInput,
            2 => Finish::Expire,
            _ => Finish::ExpireThenClose,
        };
        let lens: Vec<u8> = (0..flags >> 4).map(|_| cur.byte()).collect();
        let stream = cur.0;
        Plan {
            config,
            finish,
            stream,
            pieces: split_at_lengths(stream, &lens),
        }
    }
}

/// `stream` cut into pieces of the given lengths (empty pieces included),
/// the rest as the last piece.
pub(crate) fn split_at_lengths<'a>(mut stream: &'a [u8], lens: &[u8]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::with_capacity(lens.len() + 1);
    for &len in lens {
        let (piece, rest) = stream.split_at(usize::from(len).min(stream.len()));
        pieces.push(piece);
        stream = rest;
    }
    pieces.push(stream);
    pieces
}
