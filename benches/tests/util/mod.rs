//! Shared by the benches' tests: a server binary run as a child process.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

/// A benchmark server binary started with `--addr 127.0.0.1:0`, its
/// address read from its first line (`listening on SCHEME://ADDR`); killed
/// when dropped.
pub struct Spawned {
    child: Child,
    pub addr: SocketAddr,
}

impl Spawned {
    /// Runs `command` (its own arguments given, `--addr` added here) and
    /// waits for its listening line.
    ///
    /// # Panics
    ///
    /// When it does not start or prints something else first.
    pub fn start(mut command: Command, scheme: &str) -> Spawned {
        let mut child = command
            .args(["--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("the server starts");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("its stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("its first line");
        let addr = line
            .trim()
            .strip_prefix(&format!("listening on {scheme}://"))
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("a listening line, got {line:?}"));
        Spawned { child, addr }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
