//! The `Date` header value, formatted at most once a second per thread.

use std::cell::Cell;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) const DATE_LEN: usize = 29;

/// Length of the header line `Date: <IMF-fixdate>\r\n`.
pub(crate) const DATE_LINE_LEN: usize = "Date: ".len() + DATE_LEN + 2;

thread_local! {
    /// (unix second it was formatted for, the whole `Date` line): a
    /// response copies the line in one piece.
    static CACHE: Cell<(u64, [u8; DATE_LINE_LEN])> = const { Cell::new((u64::MAX, [0; DATE_LINE_LEN])) };
    /// When the wall clock's next second begins, on the monotonic clock:
    /// until then the cached line is current and the wall clock is not read.
    static NEXT_SECOND: Cell<Option<Instant>> = const { Cell::new(None) };
    /// Whether an event loop on this thread calls [`refresh`] every turn;
    /// other threads (a deferred responder's) refresh on each use.
    static LOOP_DRIVEN: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as an event loop that refreshes the cache every turn.
pub(crate) fn driven_by_loop() {
    LOOP_DRIVEN.with(|driven| driven.set(true));
    refresh(Instant::now());
}

/// Brings the cached line up to date at `now` (the loop's clock, read once
/// a turn): a comparison of two instants, and once a second a read of the
/// wall clock and, if its second changed, a new line. A wall clock set
/// back or forward shows at the next second.
pub(crate) fn refresh(now: Instant) {
    if NEXT_SECOND.with(Cell::get).is_some_and(|next| now < next) {
        return;
    }
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since_epoch.as_secs();
    CACHE.with(|cache| {
        if cache.get().0 != secs {
            let mut line = *b"Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n";
            line[6..6 + DATE_LEN].copy_from_slice(&format_imf_fixdate(secs));
            cache.set((secs, line));
        }
    });
    let to_next_second =
        Duration::from_nanos(u64::from(1_000_000_000 - since_epoch.subsec_nanos()));
    NEXT_SECOND.with(|next| next.set(Some(now + to_next_second)));
}

/// The cached `Date: ...\r\n` line and the unix second it says. On a
/// thread without an event loop, refreshes it first.
#[inline]
pub(crate) fn current() -> (u64, [u8; DATE_LINE_LEN]) {
    if !LOOP_DRIVEN.with(Cell::get) {
        refresh(Instant::now());
    }
    CACHE.with(Cell::get)
}

/// The cached `Date: ...\r\n` line (see [`current`]).
pub(crate) fn current_line() -> [u8; DATE_LINE_LEN] {
    current().1
}

/// The second the cached line says (see [`current`]).
#[inline]
pub(crate) fn current_second() -> u64 {
    current().0
}

/// Formats `unix_secs` as an IMF-fixdate (RFC 9110 §5.6.7).
fn format_imf_fixdate(unix_secs: u64) -> [u8; DATE_LEN] {
    const WEEKDAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = unix_secs / 86_400;
    let secs_of_day = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days as i64);

    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(WEEKDAYS[(days % 7) as usize]);
    put_two_digits(&mut out[5..7], day as u64);
    out[8..11].copy_from_slice(MONTHS[month as usize - 1]);
    let year = year as u64;
    put_two_digits(&mut out[12..14], year / 100);
    put_two_digits(&mut out[14..16], year % 100);
    put_two_digits(&mut out[17..19], secs_of_day / 3600);
    put_two_digits(&mut out[20..22], secs_of_day / 60 % 60);
    put_two_digits(&mut out[23..25], secs_of_day % 60);
    out
}

pub(crate) fn put_two_digits(dst: &mut [u8], n: u64) {
    dst[0] = b'0' + (n / 10 % 10) as u8;
    dst[1] = b'0' + (n % 10) as u8;
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31), by Howard
/// Hinnant's `civil_from_days` algorithm.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_dates() {
        let cases: [(u64, &[u8]); 4] = [
            (0, b"Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, b"Sun, 06 Nov 1994 08:49:37 GMT"),
            (951_782_400, b"Tue, 29 Feb 2000 00:00:00 GMT"),
            (1_798_761_599, b"Thu, 31 Dec 2026 23:59:59 GMT"),
        ];
        for (secs, want) in cases {
            assert_eq!(&format_imf_fixdate(secs)[..], want, "{secs}");
        }
    }

    #[test]
    fn the_wall_clock_is_read_once_a_second() {
        let now = Instant::now();
        refresh(now);
        let fake = (1, *b"Date: Mon, 01 Jan 2001 00:00:00 GMT\r\n");
        CACHE.with(|cache| cache.set(fake));
        NEXT_SECOND.with(|next| next.set(Some(now + Duration::from_secs(10))));
        refresh(now + Duration::from_secs(9));
        assert_eq!(current_line(), fake.1, "within the second: not read");
        refresh(now + Duration::from_secs(10));
        let line = current_line();
        assert_ne!(line, fake.1, "the next second: read and formatted");
        assert_eq!(&line[6 + 25..], b" GMT\r\n");
    }

    #[test]
    fn current_is_formatted_on_first_use() {
        let line = current_line();
        assert_eq!(&line[..6], b"Date: ");
        assert_eq!(&line[6 + 25..], b" GMT\r\n");
    }
}
