//! Counting the events of one `/events` stream, and checking their numbers.

/// Counts the events of one `/events` stream as its decoded body arrives,
/// and checks that their numbers are consecutive, without parsing every
/// event: it counts line feeds (two per event, at most one in a partial
/// event), reads the first event's number from the first bytes and the last
/// complete event's number from the last bytes seen.
pub struct EventCounter {
    /// The stream's first bytes: enough for its first event (at most 28).
    head: [u8; 32],
    head_len: usize,
    /// The stream's last bytes: the last complete event and a partial one
    /// after it fit.
    tail: [u8; 64],
    tail_len: usize,
    newlines: u64,
    first: Option<u64>,
    last: Option<u64>,
}

impl Default for EventCounter {
    fn default() -> EventCounter {
        EventCounter {
            head: [0; 32],
            head_len: 0,
            tail: [0; 64],
            tail_len: 0,
            newlines: 0,
            first: None,
            last: None,
        }
    }
}

/// The number of `data: N` (the bytes before an event's blank line).
fn event_number(line: &[u8]) -> Option<u64> {
    let start = memchr::memrchr(b' ', line)? + 1;
    std::str::from_utf8(&line[start..]).ok()?.parse().ok()
}

impl EventCounter {
    /// Takes the next piece of decoded body.
    pub fn feed(&mut self, data: &[u8]) {
        self.newlines += memchr::memchr_iter(b'\n', data).count() as u64;
        let to_head = data.len().min(self.head.len() - self.head_len);
        self.head[self.head_len..self.head_len + to_head].copy_from_slice(&data[..to_head]);
        self.head_len += to_head;
        let cap = self.tail.len();
        if data.len() >= cap {
            self.tail.copy_from_slice(&data[data.len() - cap..]);
            self.tail_len = cap;
            return;
        }
        let keep = self.tail_len.min(cap - data.len());
        self.tail
            .copy_within(self.tail_len - keep..self.tail_len, 0);
        self.tail[keep..keep + data.len()].copy_from_slice(data);
        self.tail_len = keep + data.len();
    }

    /// Brings the first and last event numbers up to date: call once after
    /// each read's data is fed (cheaper than after every piece).
    pub fn settle(&mut self) {
        let blank_line = |w: &[u8]| w == b"\n\n";
        if self.first.is_none() {
            let head = &self.head[..self.head_len];
            self.first = head
                .windows(2)
                .position(blank_line)
                .and_then(|end| event_number(&head[..end]));
        }
        let tail = &self.tail[..self.tail_len];
        if let Some(last) = tail
            .windows(2)
            .rposition(blank_line)
            .and_then(|end| event_number(&tail[..end]))
        {
            self.last = Some(last);
        }
    }

    /// The number of the last complete event, as of the last
    /// [`EventCounter::settle`].
    pub fn last_event(&self) -> Option<u64> {
        self.last
    }

    /// The number of the first event, as of the last settle.
    pub fn first_event(&self) -> Option<u64> {
        self.first
    }

    /// Whether the events received so far are numbered without a gap or a
    /// repeat: as many complete events arrived as their numbers advanced
    /// from the first to the last. (A cheap check: as many repeats as gaps
    /// would cancel out.)
    pub fn consecutive(&self) -> bool {
        match (self.first, self.last) {
            (Some(first), Some(last)) => (last + 1).checked_sub(first) == Some(self.newlines / 2),
            _ => self.newlines < 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::event;

    fn events(numbers: impl Iterator<Item = u64>) -> Vec<u8> {
        numbers.flat_map(|n| event(n).into_bytes()).collect()
    }

    fn count(wire: &[u8], step: usize) -> EventCounter {
        let mut counter = EventCounter::default();
        for piece in wire.chunks(step) {
            counter.feed(piece);
            counter.settle();
        }
        counter
    }

    #[test]
    fn counts_consecutive_events_split_anywhere() {
        let wire = events(99_990..100_010);
        for step in [1, 2, 3, 7, 13, 64, 65, 1000] {
            let counter = count(&wire, step);
            assert_eq!(counter.first_event(), Some(99_990), "split every {step}");
            assert_eq!(counter.last_event(), Some(100_009), "split every {step}");
            assert!(counter.consecutive(), "split every {step}");
        }
    }

    #[test]
    fn a_missing_or_repeated_event_is_caught() {
        let skipped = events((1..50).filter(|&n| n != 25));
        let repeated = events((1..50).chain(49..60));
        for step in [1, 5, 30, 64, 200, 1000] {
            assert!(
                !count(&skipped, step).consecutive(),
                "gap, split every {step}"
            );
            assert!(
                !count(&repeated, step).consecutive(),
                "repeat, split every {step}"
            );
        }
    }
}
