//! A delay line on an NFQUEUE: every packet queued is accepted a fixed time
//! after it arrived, in order. Talks nfnetlink_queue over a raw netlink
//! socket opened inside the namespace (no library needed).
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFQNL_MSG_PACKET: u16 = 0;
const NFQNL_MSG_VERDICT: u16 = 1;
const NFQNL_MSG_CONFIG: u16 = 2;
const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_COPY_META: u8 = 1;
const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NF_ACCEPT: u32 = 1;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLMSG_ERROR: u16 = 2;
/// Packets the kernel holds for us before it drops more.
const QUEUE_MAXLEN: u32 = 16384;

pub(crate) struct DelayLine {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<()>>>,
    /// Packets delayed so far.
    pub(crate) delayed: Arc<AtomicU64>,
}

impl DelayLine {
    /// Binds queue `queue` in namespace `netns` and starts delaying
    /// what it gets by `delay`.
    pub(crate) fn start(netns: &str, queue: u16, delay: Duration) -> io::Result<DelayLine> {
        let stop = Arc::new(AtomicBool::new(false));
        let delayed = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let path = format!("/run/netns/{netns}");
        let thread = {
            let (stop, delayed) = (Arc::clone(&stop), Arc::clone(&delayed));
            std::thread::Builder::new()
                .name(String::from("nfqueue-delay"))
                .spawn(move || {
                    let socket = match open(&path, queue) {
                        Ok(socket) => {
                            let _ = ready_tx.send(Ok(()));
                            socket
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return Ok(());
                        }
                    };
                    serve(&socket, queue, delay, &stop, &delayed)
                })?
        };
        ready_rx
            .recv()
            .map_err(|_| io::Error::other("the delay line thread died"))??;
        Ok(DelayLine {
            stop,
            thread: Some(thread),
            delayed,
        })
    }

    /// Stops the thread (the kernel drops what is still queued).
    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("faults: the delay line failed: {e}"),
                Err(_) => eprintln!("faults: the delay line panicked"),
            }
        }
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        self.stop();
    }
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Enters the namespace (this thread only), opens the socket and binds
/// the queue.
fn open(netns: &str, queue: u16) -> io::Result<OwnedFd> {
    let ns = std::fs::File::open(netns)?;
    // SAFETY: `ns` is an open namespace file for the call's duration;
    // setns changes this thread's network namespace only.
    check(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) })?;
    // SAFETY: plain integer arguments; the result is checked.
    let fd = check(unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_NETFILTER,
        )
    })?;
    // SAFETY: `fd` was just returned by socket() and is owned by no one else.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: an all-zero sockaddr_nl is valid (port id 0: the kernel
    // picks one); the length passed is its size.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: `addr` is a valid sockaddr_nl for the call.
    check(unsafe {
        libc::bind(
            socket.as_raw_fd(),
            (&addr as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    })?;
    set_int(&socket, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 8 << 20)?;
    set_int(&socket, libc::SOL_NETLINK, libc::NETLINK_NO_ENOBUFS, 1)?;
    // struct nfqnl_msg_config_cmd: the command, a pad byte, and a
    // protocol family current kernels ignore.
    let cmd = [NFQNL_CFG_CMD_BIND, 0, 0, 0];
    send(
        &socket,
        &message(NFQNL_MSG_CONFIG, NLM_F_ACK, queue, &[(NFQA_CFG_CMD, &cmd)]),
    )?;
    wait_ack(&socket)?;
    let mut params = [0u8; 5];
    params[4] = NFQNL_COPY_META;
    let maxlen = QUEUE_MAXLEN.to_be_bytes();
    send(
        &socket,
        &message(
            NFQNL_MSG_CONFIG,
            NLM_F_ACK,
            queue,
            &[(NFQA_CFG_PARAMS, &params), (NFQA_CFG_QUEUE_MAXLEN, &maxlen)],
        ),
    )?;
    wait_ack(&socket)?;
    Ok(socket)
}

fn set_int(
    socket: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` lives across the call and its size is passed.
    check(unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// A netfilter netlink message to queue `queue`: header, `nfgenmsg`,
/// then the attributes, each padded to 4 bytes.
fn message(kind: u16, flags: u16, queue: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut m = vec![0u8; 16];
    m.extend_from_slice(&[libc::AF_UNSPEC as u8, 0]);
    m.extend_from_slice(&queue.to_be_bytes());
    for (kind, data) in attrs {
        m.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(data);
        m.resize(m.len().next_multiple_of(4), 0);
    }
    let len = m.len() as u32;
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m[4..6].copy_from_slice(&((NFNL_SUBSYS_QUEUE << 8) | kind).to_ne_bytes());
    m[6..8].copy_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
    m
}

fn send(socket: &OwnedFd, message: &[u8]) -> io::Result<()> {
    // SAFETY: an all-zero sockaddr_nl addresses the kernel.
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: `message` and `kernel` are valid for the lengths passed.
    check(unsafe {
        libc::sendto(
            socket.as_raw_fd(),
            message.as_ptr().cast(),
            message.len(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        ) as libc::c_int
    })
    .map(drop)
}

/// Waits up to `timeout` for the socket to be readable.
fn readable(socket: &OwnedFd, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().clamp(0, 1000) as libc::c_int;
    // SAFETY: one valid pollfd, count 1.
    match check(unsafe { libc::poll(&mut pfd, 1, ms) }) {
        Ok(n) => Ok(n > 0),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
        Err(e) => Err(e),
    }
}

/// Reads what is there without blocking; empty when nothing is.
fn receive(socket: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of its length.
    let n = unsafe {
        libc::recv(
            socket.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
            _ => Err(e),
        };
    }
    Ok(n as usize)
}

/// The netlink messages in `buf`: (type, payload after the header).
fn messages(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let header = buf.get(at..at + 16)?;
        let len = u32::from_ne_bytes(header[0..4].try_into().ok()?) as usize;
        let kind = u16::from_ne_bytes(header[4..6].try_into().ok()?);
        let body = buf.get(at + 16..at + len.max(16))?;
        at += len.max(16).next_multiple_of(4);
        Some((kind, body))
    })
}

/// The error code of an `NLMSG_ERROR` payload (0: an acknowledgement).
fn error_of(body: &[u8]) -> io::Result<()> {
    let code = body
        .get(0..4)
        .map_or(0, |b| i32::from_ne_bytes(b.try_into().unwrap_or([0; 4])));
    if code == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(-code))
    }
}

fn wait_ack(socket: &OwnedFd) -> io::Result<()> {
    let mut buf = vec![0u8; 8192];
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        if !readable(socket, Duration::from_millis(100))? {
            continue;
        }
        let n = receive(socket, &mut buf)?;
        for (kind, body) in messages(&buf[..n]) {
            if kind == NLMSG_ERROR {
                return error_of(body);
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        "no acknowledgement from nfnetlink_queue",
    ))
}

/// The packet id of an `NFQNL_MSG_PACKET` payload.
fn packet_id(body: &[u8]) -> Option<u32> {
    let mut at = 4; // nfgenmsg
    while let Some(header) = body.get(at..at + 4) {
        let len = usize::from(u16::from_ne_bytes([header[0], header[1]]));
        let kind = u16::from_ne_bytes([header[2], header[3]]) & 0x3fff;
        if len < 4 {
            return None;
        }
        if kind == NFQA_PACKET_HDR {
            let id = body.get(at + 4..at + 8)?;
            return Some(u32::from_be_bytes(id.try_into().ok()?));
        }
        at += len.next_multiple_of(4);
    }
    None
}

fn serve(
    socket: &OwnedFd,
    queue: u16,
    delay: Duration,
    stop: &AtomicBool,
    delayed: &AtomicU64,
) -> io::Result<()> {
    let mut held: VecDeque<(Instant, u32)> = VecDeque::new();
    let mut buf = vec![0u8; 1 << 16];
    while !stop.load(Ordering::SeqCst) {
        let wait = held.front().map_or(Duration::from_millis(20), |(due, _)| {
            due.saturating_duration_since(Instant::now())
                .min(Duration::from_millis(20))
        });
        if readable(socket, wait)? {
            loop {
                let n = receive(socket, &mut buf)?;
                if n == 0 {
                    break;
                }
                let now = Instant::now();
                for (kind, body) in messages(&buf[..n]) {
                    if kind == NLMSG_ERROR {
                        match error_of(body) {
                            // A verdict on a packet the kernel already
                            // dropped: the rules changed under it.
                            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                            other => other?,
                        }
                    } else if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET {
                        if let Some(id) = packet_id(body) {
                            held.push_back((now + delay, id));
                            delayed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        }
        let now = Instant::now();
        while held.front().is_some_and(|(due, _)| *due <= now) {
            let (_, id) = held.pop_front().unwrap_or((now, 0));
            let mut verdict = [0u8; 8];
            verdict[0..4].copy_from_slice(&NF_ACCEPT.to_be_bytes());
            verdict[4..8].copy_from_slice(&id.to_be_bytes());
            send(
                socket,
                &message(NFQNL_MSG_VERDICT, 0, queue, &[(NFQA_VERDICT_HDR, &verdict)]),
            )?;
        }
    }
    Ok(())
}
