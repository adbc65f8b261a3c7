//! The activation variables, one case per malformed value.

use super::*;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

const PID: u32 = 4242;

fn parsed(
    pid: Option<&str>,
    fds: Option<&str>,
    names: Option<&str>,
) -> Result<Activation, ActivationError> {
    let os = |v: Option<&str>| v.map(OsString::from);
    let (pid, fds, names) = (os(pid), os(fds), os(names));
    parse(PID, pid.as_deref(), fds.as_deref(), names.as_deref())
}

fn malformed(variable: &'static str, value: &str) -> ActivationError {
    ActivationError::Malformed {
        variable,
        value: value.to_owned(),
    }
}

#[test]
fn well_formed_variables_give_the_count_and_names() {
    assert_eq!(
        parsed(Some("4242"), Some("2"), None),
        Ok(Activation {
            count: 2,
            names: vec![]
        })
    );
    assert_eq!(
        parsed(Some("4242"), Some("2"), Some("http:admin.socket")),
        Ok(Activation {
            count: 2,
            names: vec!["http".to_owned(), "admin.socket".to_owned()]
        })
    );
    let most = MAX_INHERITED.to_string();
    assert_eq!(
        parsed(Some("4242"), Some(&most), None).unwrap().count,
        MAX_INHERITED
    );
}

#[test]
fn malformed_variables_are_refused_with_their_reason() {
    let too_many = (MAX_INHERITED + 1).to_string();
    // (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES, the refusal)
    type Case<'a> = (
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        ActivationError,
    );
    let cases: Vec<Case<'_>> = vec![
        (None, None, None, ActivationError::NotActivated),
        (None, None, Some("x"), ActivationError::NotActivated),
        (
            None,
            Some("1"),
            None,
            ActivationError::Missing("LISTEN_PID"),
        ),
        (
            Some("4242"),
            None,
            None,
            ActivationError::Missing("LISTEN_FDS"),
        ),
        (Some(""), Some("1"), None, malformed("LISTEN_PID", "")),
        (Some("abc"), Some("1"), None, malformed("LISTEN_PID", "abc")),
        (
            Some("+4242"),
            Some("1"),
            None,
            malformed("LISTEN_PID", "+4242"),
        ),
        (
            Some(" 4242"),
            Some("1"),
            None,
            malformed("LISTEN_PID", " 4242"),
        ),
        (
            Some("4242 "),
            Some("1"),
            None,
            malformed("LISTEN_PID", "4242 "),
        ),
        (Some("-1"), Some("1"), None, malformed("LISTEN_PID", "-1")),
        (Some("0"), Some("1"), None, malformed("LISTEN_PID", "0")),
        (
            Some("0x1092"),
            Some("1"),
            None,
            malformed("LISTEN_PID", "0x1092"),
        ),
        (
            Some("99999999999999999999"),
            Some("1"),
            None,
            malformed("LISTEN_PID", "99999999999999999999"),
        ),
        (
            Some("4243"),
            Some("1"),
            None,
            ActivationError::OtherProcess {
                listen_pid: 4243,
                pid: PID,
            },
        ),
        (Some("4242"), Some("0"), None, malformed("LISTEN_FDS", "0")),
        (
            Some("4242"),
            Some("two"),
            None,
            malformed("LISTEN_FDS", "two"),
        ),
        (
            Some("4242"),
            Some("1.0"),
            None,
            malformed("LISTEN_FDS", "1.0"),
        ),
        (
            Some("4242"),
            Some("-3"),
            None,
            malformed("LISTEN_FDS", "-3"),
        ),
        (
            Some("4242"),
            Some("4294967296"),
            None,
            malformed("LISTEN_FDS", "4294967296"),
        ),
        (
            Some("4242"),
            Some(&too_many),
            None,
            ActivationError::TooMany(MAX_INHERITED + 1),
        ),
        (
            Some("4242"),
            Some("2"),
            Some("http"),
            ActivationError::NameCount { names: 1, fds: 2 },
        ),
        (
            Some("4242"),
            Some("1"),
            Some("a:b"),
            ActivationError::NameCount { names: 2, fds: 1 },
        ),
        (
            Some("4242"),
            Some("1"),
            Some("has space"),
            malformed("LISTEN_FDNAMES", "has space"),
        ),
        (
            Some("4242"),
            Some("1"),
            Some("line\nbreak"),
            malformed("LISTEN_FDNAMES", "line\nbreak"),
        ),
    ];
    for (pid, fds, names, expected) in cases {
        assert_eq!(
            parsed(pid, fds, names),
            Err(expected.clone()),
            "LISTEN_PID={pid:?} LISTEN_FDS={fds:?} LISTEN_FDNAMES={names:?}"
        );
        // Every refusal says what is wrong in words.
        assert!(!expected.to_string().is_empty());
    }
}

#[test]
fn a_name_past_255_characters_or_not_utf8_is_malformed() {
    let long = "n".repeat(256);
    assert!(matches!(
        parsed(Some("4242"), Some("1"), Some(&long)),
        Err(ActivationError::Malformed {
            variable: "LISTEN_FDNAMES",
            ..
        })
    ));
    let not_utf8 = OsString::from_vec(vec![0xff, b'a']);
    let pid = OsString::from("4242");
    let fds = OsString::from("1");
    assert!(matches!(
        parse(PID, Some(&pid), Some(&fds), Some(&not_utf8)),
        Err(ActivationError::Malformed {
            variable: "LISTEN_FDNAMES",
            ..
        })
    ));
    assert!(matches!(
        parse(PID, Some(&not_utf8), Some(&fds), None),
        Err(ActivationError::Malformed {
            variable: "LISTEN_PID",
            ..
        })
    ));
}

#[test]
fn only_listening_stream_sockets_of_a_known_family_are_taken() {
    let listening = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    assert!(matches!(
        listener_of(OwnedFd::from(listening)),
        Ok(Listener::Tcp(_))
    ));
    let dir = std::env::temp_dir().join(format!("keel-sd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let unix = std::os::unix::net::UnixListener::bind(dir.join("s")).unwrap();
    assert!(matches!(
        listener_of(OwnedFd::from(unix)),
        Ok(Listener::Unix(_))
    ));
    let file = std::fs::File::open("/dev/null").unwrap();
    assert!(listener_of(OwnedFd::from(file)).is_err(), "not a socket");
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    assert_eq!(
        listener_of(OwnedFd::from(udp)).unwrap_err(),
        "not a stream socket"
    );
    let unbound = socket2::Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    assert_eq!(
        listener_of(OwnedFd::from(unbound)).unwrap_err(),
        "not a listening socket"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
