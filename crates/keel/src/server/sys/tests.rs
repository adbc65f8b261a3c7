//! The system calls' own tests: buffers, limits, listener options.

use super::*;
use std::io::Write;

#[test]
fn open_beneath_stays_in_its_directory() {
    let base = std::env::temp_dir().join(format!("keel-beneath-{}", std::process::id()));
    let root = base.join("root");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("sub/in.txt"), b"inside").unwrap();
    std::fs::write(base.join("secret"), b"outside").unwrap();
    std::os::unix::fs::symlink("../secret", root.join("out")).unwrap();
    std::os::unix::fs::symlink("sub/in.txt", root.join("in")).unwrap();
    std::os::unix::fs::symlink(base.join("secret"), root.join("abs")).unwrap();
    let dir = std::fs::File::open(&root).unwrap();
    let read = |rel: &[u8]| open_beneath(&dir, rel).map(|f| std::io::read_to_string(f).unwrap());
    assert_eq!(read(b"sub/in.txt").unwrap(), "inside");
    assert_eq!(read(b"in").unwrap(), "inside", "a link inside is followed");
    for escape in [
        &b"../secret"[..],
        b"sub/../../secret",
        b"out",
        b"abs",
        b"/etc/passwd",
    ] {
        let error = read(escape).unwrap_err();
        assert_eq!(
            error.raw_os_error(),
            Some(libc::EXDEV),
            "{escape:?}: {error}"
        );
    }
    assert_eq!(
        read(b"a\0b").unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(
        read(b"missing").unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    std::fs::remove_dir_all(base).unwrap();
}

#[test]
fn read_into_appends_what_arrives() {
    let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.write_all(b"hello").unwrap();
    let mut buf = BytesMut::with_capacity(3);
    buf.extend_from_slice(b">");
    assert_eq!(read_into(&b, &mut buf).unwrap(), 2);
    assert_eq!(&buf[..], b">he");
    buf.reserve(16);
    assert_eq!(read_into(&b, &mut buf).unwrap(), 3);
    assert_eq!(&buf[..], b">hello");
    assert_eq!(read_into(&b, &mut BytesMut::new()).unwrap(), 0);
}

#[test]
fn open_file_limit_is_raised_to_the_hard_limit() {
    let soft = raise_open_file_limit().unwrap();
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(rc, 0);
    assert_eq!(soft, limit.rlim_cur);
    assert_eq!(limit.rlim_cur, limit.rlim_max);
}

const OPTIONS: ListenerOptions = ListenerOptions {
    backlog: 16,
    defer_accept: None,
    max_unsent: Some(12345),
};

#[test]
fn accepted_sockets_inherit_nodelay_and_the_unsent_limit() {
    let listener = reuseport_listener("127.0.0.1:0".parse().unwrap(), OPTIONS).unwrap();
    let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    listener.set_nonblocking(false).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    assert!(accepted.nodelay().unwrap());
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live and `len` is `value`'s size.
    let rc = unsafe {
        libc::getsockopt(
            accepted.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            std::ptr::from_mut(&mut value).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0);
    assert_eq!(value, 12345);
}

#[test]
fn two_listeners_share_one_port() {
    let first = reuseport_listener("127.0.0.1:0".parse().unwrap(), OPTIONS).unwrap();
    let addr = first.local_addr().unwrap();
    let second = reuseport_listener(addr, OPTIONS).unwrap();
    assert_eq!(second.local_addr().unwrap(), addr);
}
