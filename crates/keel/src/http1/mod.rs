//! HTTP/1.1 on bytes: the connection state machine, head parsing and
//! framing, body decoding, dispatch to the handler, and the protocol
//! errors. Bytes in, bytes out: nothing here touches a socket.

pub(crate) mod body;
pub(crate) mod budget;
pub(crate) mod conn;
pub(crate) mod dispatch;
pub(crate) mod env;
pub(crate) mod error;
pub(crate) mod output;
pub(crate) mod parse;
mod stream_in;
pub(crate) mod stream_out;
