//! The command line's parsing: flags, their environment twins, and the
//! combinations refused.

use super::Cli;
use clap::Parser;

#[test]
fn trusted_proxies_repeat_and_split_on_commas() {
    let cli = Cli::try_parse_from([
        "shortener",
        "--trusted-proxy",
        "10.0.0.0/8",
        "--trusted-proxy",
        "192.0.2.1,fd00::/8",
    ])
    .unwrap();
    let proxies: Vec<String> = cli
        .serve
        .trusted_proxies
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(proxies, ["10.0.0.0/8", "192.0.2.1/32", "fd00::/8"]);
    assert!(Cli::try_parse_from(["shortener", "--trusted-proxy", "proxy.internal"]).is_err());
}

#[test]
fn unix_is_a_trusted_proxy_of_its_own_kind() {
    let cli = Cli::try_parse_from(["shortener", "--trusted-proxy", "10.0.0.0/8,unix"]).unwrap();
    let config = cli.app_config().unwrap();
    assert_eq!(config.trusted_proxies.len(), 1);
    assert!(config.trust_unix_peers);
    let cli = Cli::try_parse_from(["shortener", "--trusted-proxy", "10.0.0.0/8"]).unwrap();
    assert!(!cli.app_config().unwrap().trust_unix_peers);
}

#[test]
fn the_unix_mode_is_octal_permission_bits() {
    let mode = |m: &str| {
        Cli::try_parse_from(["shortener", "--unix", "/run/s.sock", "--unix-mode", m])
            .map(|c| c.serve.unix_mode)
    };
    assert_eq!(mode("660").unwrap(), 0o660);
    assert_eq!(mode("0600").unwrap(), 0o600);
    for bad in ["800", "1777", "rw-rw----", "", "-1"] {
        assert!(mode(bad).is_err(), "{bad}");
    }
    let default = Cli::try_parse_from(["shortener"]).unwrap();
    assert_eq!(default.serve.unix_mode, 0o600);
    assert!(default.listen_addr().is_some());
    let unix = Cli::try_parse_from(["shortener", "--unix", "/run/s.sock"]).unwrap();
    assert_eq!(unix.listen_addr(), None, "--unix replaces --addr");
}
