//! What the server process costs, read from `/proc/PID`: resident memory
//! (`status`'s `VmRSS`), open descriptors (the entries of `fd/`) and CPU time
//! (`stat`'s utime + stime), sampled by a thread at a fixed interval; and the
//! bytes queued in all TCP sockets of the host (`/proc/net/tcp`, `tcp6`),
//! where bytes written but not yet read wait (not in any process's RSS).

use super::Stop;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Clock ticks per second of `/proc/PID/stat`'s times: `USER_HZ`, which the
/// kernel fixes at 100 for user space on every architecture it exports it
/// to (`getconf CLK_TCK` prints it).
const TICKS_PER_SECOND: f64 = 100.0;

/// One reading.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Seconds since the sampler started.
    pub at: f64,
    /// Resident memory, KiB.
    pub rss_kib: u64,
    /// Open descriptors.
    pub fds: usize,
    /// Bytes queued in all TCP sockets on the host, KiB.
    pub tcp_queued_kib: u64,
}

/// What the server cost over a sampled span.
#[derive(Clone, Debug, Default)]
pub struct Usage {
    /// Every reading, in order.
    pub samples: Vec<Sample>,
    /// CPU time over wall time, percent of one core.
    pub cpu_percent: f64,
    /// Wall time sampled, seconds.
    pub seconds: f64,
}

impl Usage {
    /// The largest resident size seen, MiB.
    pub fn rss_max_mib(&self) -> f64 {
        self.samples.iter().map(|s| s.rss_kib).max().unwrap_or(0) as f64 / 1024.0
    }

    /// The most descriptors seen open.
    pub fn fds_max(&self) -> usize {
        self.samples.iter().map(|s| s.fds).max().unwrap_or(0)
    }

    /// The most bytes seen queued in TCP sockets (all sockets, both ends), MiB.
    pub fn tcp_queued_max_mib(&self) -> f64 {
        self.samples
            .iter()
            .map(|s| s.tcp_queued_kib)
            .max()
            .unwrap_or(0) as f64
            / 1024.0
    }
}

/// The bytes waiting in every TCP socket's send and receive queues on the
/// host, KiB: the `tx_queue` and `rx_queue` of each connection in
/// `/proc/net/tcp` and `/proc/net/tcp6` (listeners left out: their
/// `rx_queue` counts connections, not bytes).
///
/// `sockstat`'s `mem` would count the buffers' full cost, but it stays 0
/// where a memory cgroup is charged for the sockets instead (kernel 6.18
/// here); the queues are counted the same way everywhere.
pub fn tcp_queued_kib() -> u64 {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|table| queued_bytes(&table))
        .sum::<u64>()
        / 1024
}

/// The sum of `tx_queue` + `rx_queue` over the rows of one `/proc/net/tcp`
/// table, listeners (state `0A`) left out.
fn queued_bytes(table: &str) -> u64 {
    /// `st` of a listening socket.
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|row| {
            // sl, local, remote, st, tx_queue:rx_queue, ...
            let mut fields = row.split_whitespace().skip(3);
            let state = fields.next()?;
            let (tx, rx) = fields.next()?.split_once(':')?;
            let tx = u64::from_str_radix(tx, 16).ok()?;
            let rx = u64::from_str_radix(rx, 16).ok()?;
            (state != LISTEN).then_some(tx + rx)
        })
        .sum()
}

/// The resident size of process `pid` in KiB (0 once it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// The descriptors process `pid` has open (0 once it is gone).
pub fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// The user + system CPU time of process `pid` (all its threads), in ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // The command name (field 2) may hold spaces: count from the last ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0;
    };
    // After the name: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    field(14).unwrap_or(0) + field(15).unwrap_or(0)
}

/// Whether process `pid` still runs (a zombie does not).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .next()?
                .to_owned();
            Some(state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

/// A thread reading `/proc/PID` every interval; [`Sampler::finish`] stops it.
pub struct Sampler {
    stop: Stop,
    thread: JoinHandle<Vec<Sample>>,
    pid: u32,
    started: Instant,
    ticks_before: u64,
}

impl Sampler {
    /// Starts sampling process `pid` every `interval` (the first reading at once).
    ///
    /// # Panics
    ///
    /// When the thread cannot be spawned.
    pub fn start(pid: u32, interval: Duration) -> Sampler {
        let stop = Stop::new();
        let started = Instant::now();
        let ticks_before = cpu_ticks(pid);
        let thread = {
            let stop = stop.clone();
            thread::Builder::new()
                .name("proc-sampler".to_owned())
                .spawn(move || {
                    let mut samples = Vec::new();
                    let mut next = Instant::now();
                    loop {
                        samples.push(Sample {
                            at: started.elapsed().as_secs_f64(),
                            rss_kib: rss_kib(pid),
                            fds: fds(pid),
                            tcp_queued_kib: tcp_queued_kib(),
                        });
                        next += interval;
                        if !stop.sleep_until(next) {
                            return samples;
                        }
                    }
                })
                .expect("spawn the sampler")
        };
        Sampler {
            stop,
            thread,
            pid,
            started,
            ticks_before,
        }
    }

    /// Stops sampling; returns the readings and the CPU share since the start.
    ///
    /// # Panics
    ///
    /// When the sampler thread panicked.
    pub fn finish(self) -> Usage {
        let seconds = self.started.elapsed().as_secs_f64();
        let ticks = cpu_ticks(self.pid).saturating_sub(self.ticks_before);
        self.stop.set();
        let samples = self.thread.join().expect("sampler thread");
        Usage {
            samples,
            cpu_percent: 100.0 * ticks as f64 / TICKS_PER_SECOND / seconds.max(1e-3),
            seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(alive(pid));
        assert!(rss_kib(pid) > 0);
        assert!(fds(pid) >= 3);
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(60) {
            std::hint::black_box(0u64);
        }
        assert!(cpu_ticks(pid) > 0);
        assert!(!alive(u32::MAX));
    }

    #[test]
    fn counts_unread_tcp_bytes() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, _) = listener.accept().unwrap();
        // 256 KiB written and never read wait in the kernel's buffers.
        client.set_nonblocking(true).unwrap();
        let mut written = 0;
        while written < 256 * 1024 {
            match client.write(&[7u8; 16 * 1024]) {
                Ok(n) => written += n,
                Err(_) => break,
            }
        }
        assert!(written >= 64 * 1024, "{written}");
        let queued = tcp_queued_kib();
        assert!(
            queued >= written as u64 / 1024,
            "{queued} KiB of {written} bytes"
        );
    }

    #[test]
    fn sums_both_queues_of_connections_only() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr\n\
            0: 00000000:07E8 00000000:0000 0A 00000000:00000080 00:00000000\n\
            1: 0100007F:1FA3 0100007F:A3C2 01 00000400:00000000 00:00000000\n\
            2: 0100007F:A3C2 0100007F:1FA3 01 00000000:00010000 00:00000000\n\
            3: garbled\n";
        assert_eq!(queued_bytes(table), 0x400 + 0x10000);
    }
}
