//! `SIGUSR2`: replace this process with a new one (the binary at the same
//! path, same arguments and environment) without dropping a connection.
//! The new process inherits the listening sockets (keel's
//! [`keel::spawn_successor`], systemd's `LISTEN_FDS` protocol) and
//! accepts from the same queues; this one stops accepting and drains only
//! once the new one reports that it serves. A successor that fails to
//! start (a bad flag, a store it cannot open) exits, and this one goes on
//! serving as if nothing happened.

use keel::{InheritedListener, ServerHandle};
use std::path::PathBuf;
use std::time::Duration;

/// How long a successor may take to start serving (open the store, load
/// keys, start its workers) before it is killed and this process goes on.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts the successor with `server`'s sockets (named `http`) and
/// `admin`'s (named `admin`), and waits until it serves. Returns its pid.
pub(crate) fn hand_over(
    server: &ServerHandle,
    admin: Option<&ServerHandle>,
) -> Result<u32, String> {
    let named = |handle: &ServerHandle, name: &str| -> Result<Vec<InheritedListener>, String> {
        let sockets = handle
            .listeners()
            .map_err(|e| format!("cannot duplicate the sockets: {e}"))?;
        let named = sockets.into_iter().map(|listener| InheritedListener {
            listener,
            name: Some(name.to_owned()),
        });
        Ok(named.collect())
    };
    let mut sockets = named(server, "http")?;
    if let Some(admin) = admin {
        sockets.extend(named(admin, crate::ADMIN_SOCKET)?);
    }
    let program = this_binary()?;
    let mut command = std::process::Command::new(&program);
    command.args(std::env::args_os().skip(1));
    let mut successor = keel::spawn_successor(command, &sockets)
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    successor
        .wait_ready(READY_TIMEOUT)
        .map_err(|e| e.to_string())?;
    Ok(successor.id())
}

/// The path this binary was started from. An upgrade usually replaces the
/// file (a package manager renames the new one over it): Linux then names
/// the running one `PATH (deleted)`, and the new binary is at `PATH`.
fn this_binary() -> Result<PathBuf, String> {
    let path = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    if path.exists() {
        return Ok(path);
    }
    let text = path.to_string_lossy();
    match text.strip_suffix(" (deleted)") {
        Some(replaced) => Ok(PathBuf::from(replaced)),
        None => Err(format!("{} is gone", path.display())),
    }
}

/// Writes `shortener: LINE` to stderr in one `write`: two generations
/// share stderr during a hand-over, and `eprintln!` writes a line in
/// pieces that the other's lines could split.
pub(crate) fn log(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("shortener: {line}\n").as_bytes());
}
