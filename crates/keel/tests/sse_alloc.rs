//! The SSE framing's allocation budget: none when the output buffer has room.
//! A binary of its own, since the counting allocator sees every thread.

use keel::sse::{self, Event};
use keel::testing::{allocations, CountingAllocator};
use keel::BytesMut;
use std::time::Duration;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn framing_into_a_buffer_with_room_allocates_nothing() {
    let mut out = BytesMut::with_capacity(4096);
    let before = allocations();
    for id in ["1", "2", "3"] {
        Event::data("{\"clicks\":2}\nsecond line\r\nthird")
            .event("clicks")
            .id(id)
            .retry(Duration::from_secs(3))
            .write_to(&mut out)
            .expect("a valid event");
        sse::comment("keep-alive", &mut out);
    }
    let rejected = Event::data("x").id("1\n2").write_to(&mut out);
    assert_eq!(allocations() - before, 0);
    assert!(rejected.is_err());
    assert!(out.starts_with(b"event: clicks\nid: 1\nretry: 3000\ndata: {\"clicks\":2}\n"));
}
