//! The network and the database: a namespace, a veth pair, PostgreSQL
//! inside, and the faults on the link.

use super::{nfqueue, Fault, DELAY, PG_PORT};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How faults are injected.
pub(super) enum Backend {
    Netem,
    Netfilter(nfqueue::DelayLine),
}

impl Backend {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Backend::Netem => "tc netem on both veth ends",
            Backend::Netfilter(_) => {
                "netfilter in the namespace (statistic/DROP/NFQUEUE delay line; no sch_netem here)"
            }
        }
    }
}

/// The namespace, the veth pair, PostgreSQL inside, and the fault switch.
/// Dropping it stops the cluster and removes the namespace (the veth pair
/// goes with it).
pub(super) struct Lab {
    pub(super) netns: String,
    pub(super) host_if: String,
    pub(super) inside_if: String,
    pub(super) host_ip: String,
    pub(super) inside_ip: String,
    pub(super) url: String,
    pub(super) pg_dir: PathBuf,
    pub(super) cluster_started: bool,
    pub(super) backend: Backend,
}

/// The NFQUEUE number the delay line listens on (queues are per
/// namespace, and the namespace is ours).
pub(super) const QUEUE: u16 = 0;

impl Lab {
    /// Builds it all, or fails saying what this machine lacks.
    pub(super) fn new() -> Lab {
        // SAFETY: geteuid has no preconditions and touches no memory.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(
            euid, 0,
            "the fault test needs root (network namespaces, tc/iptables, a PostgreSQL \
             cluster run as `postgres`): run examples/shortener/tests/faults.sh as root"
        );
        require("ip", "iproute2");
        let pid = std::process::id();
        let (host_ip, inside_ip) = free_subnet(pid);
        let mut lab = Lab {
            netns: format!("keel-faults-{pid}"),
            host_if: format!("kfh{pid}"),
            inside_if: format!("kfi{pid}"),
            host_ip,
            inside_ip,
            url: String::new(),
            pg_dir: std::env::temp_dir().join(format!("keel-faults-pg-{pid}")),
            cluster_started: false,
            backend: Backend::Netem,
        };
        let (ns, host, inside) = (
            lab.netns.clone(),
            lab.host_if.clone(),
            lab.inside_if.clone(),
        );
        let (ns, host, inside) = (ns.as_str(), host.as_str(), inside.as_str());
        sh(&["ip", "netns", "add", ns]);
        // From here on, Drop cleans up whatever exists.
        sh(&[
            "ip", "link", "add", host, "type", "veth", "peer", "name", inside,
        ]);
        sh(&["ip", "link", "set", inside, "netns", ns]);
        sh(&[
            "ip",
            "addr",
            "add",
            &format!("{}/30", lab.host_ip),
            "dev",
            host,
        ]);
        sh(&["ip", "link", "set", host, "up"]);
        let inside_addr = format!("{}/30", lab.inside_ip);
        sh(&["ip", "-n", ns, "addr", "add", &inside_addr, "dev", inside]);
        sh(&["ip", "-n", ns, "link", "set", inside, "up"]);
        sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        lab.backend = lab.pick_backend();

        let pg_sh = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg.sh");
        let pg_sh = pg_sh.to_str().unwrap();
        let dir = lab.pg_dir.to_str().unwrap().to_owned();
        // A leftover of a killed run with our pid: gone first.
        let _ = run(&[pg_sh, "stop", &dir]);
        lab.cluster_started = true;
        let out = run(&[
            pg_sh,
            "start",
            &dir,
            &PG_PORT.to_string(),
            &lab.inside_ip,
            ns,
        ])
        .unwrap_or_else(|e| panic!("the fault test needs PostgreSQL: {e}"));
        lab.url = out.lines().last().unwrap_or_default().trim().to_owned();
        assert!(lab.url.starts_with("postgres://"), "pg.sh printed {out:?}");
        lab
    }

    /// netem when the kernel has it (or `KEEL_FAULTS_IMPAIR` says), else
    /// netfilter with a delay line.
    pub(super) fn pick_backend(&self) -> Backend {
        let wanted = std::env::var("KEEL_FAULTS_IMPAIR").unwrap_or_default();
        let netem = |probe: bool| {
            require("tc", "iproute2");
            let args = [
                "qdisc",
                "replace",
                "dev",
                &self.host_if,
                "root",
                "netem",
                "delay",
                "0ms",
            ];
            let mut cmd = vec!["tc"];
            cmd.extend(args);
            match run(&cmd) {
                Ok(_) => {
                    let _ = run(&["tc", "qdisc", "del", "dev", &self.host_if, "root"]);
                    true
                }
                Err(e) if probe => {
                    println!("faults: no netem ({}), using netfilter", e.trim());
                    false
                }
                Err(e) => panic!("KEEL_FAULTS_IMPAIR=netem but netem does not work: {e}"),
            }
        };
        let use_netem = match wanted.as_str() {
            "netem" => netem(false),
            "netfilter" => false,
            "" => netem(true),
            other => panic!("KEEL_FAULTS_IMPAIR must be netem or netfilter, not {other:?}"),
        };
        if use_netem {
            return Backend::Netem;
        }
        require("iptables", "iptables");
        self.iptables(&["-L", "-n"]);
        let line = nfqueue::DelayLine::start(&self.netns, QUEUE, DELAY)
            .unwrap_or_else(|e| panic!("cannot start the NFQUEUE delay line: {e}"));
        Backend::Netfilter(line)
    }

    pub(super) fn iptables(&self, args: &[&str]) {
        let mut cmd = vec!["ip", "netns", "exec", &self.netns, "iptables", "-w"];
        cmd.extend(args);
        sh(&cmd);
    }

    /// Replaces the namespace's filter table with `rules`
    /// (`iptables-restore` format), atomically.
    pub(super) fn iptables_restore(&self, rules: &str) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.netns, "iptables-restore", "-w"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("iptables-restore: {e}"));
        let written = child
            .stdin
            .take()
            .map(|mut stdin| stdin.write_all(rules.as_bytes()));
        let out = child.wait_with_output().expect("iptables-restore");
        assert!(
            out.status.success() && matches!(written, Some(Ok(()))),
            "iptables-restore failed ({}): {}\n{rules}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Makes the link do `fault` (replacing the previous one).
    pub(super) fn impair(&self, fault: Fault) {
        match &self.backend {
            Backend::Netem => {
                let spec: Vec<String> = match fault {
                    Fault::None => Vec::new(),
                    Fault::Delay(d) => vec!["delay".into(), format!("{}ms", d.as_millis())],
                    Fault::Loss(p) => vec!["loss".into(), format!("{p}%")],
                    Fault::Cut => vec!["loss".into(), "100%".into()],
                };
                for (ns, dev) in [(None, &self.host_if), (Some(&self.netns), &self.inside_if)] {
                    let mut cmd: Vec<&str> = Vec::new();
                    if let Some(ns) = ns {
                        cmd.extend(["ip", "netns", "exec", ns]);
                    }
                    if spec.is_empty() {
                        cmd.extend(["tc", "qdisc", "del", "dev", dev, "root"]);
                        let _ = run(&cmd);
                    } else {
                        cmd.extend(["tc", "qdisc", "replace", "dev", dev, "root", "netem"]);
                        cmd.extend(spec.iter().map(String::as_str));
                        sh(&cmd);
                    }
                }
            }
            Backend::Netfilter(_) => {
                let action = match fault {
                    Fault::None => String::new(),
                    Fault::Delay(_) => format!("-j NFQUEUE --queue-num {QUEUE}"),
                    Fault::Loss(p) => format!(
                        "-m statistic --mode random --probability {:.2} -j DROP",
                        f64::from(p) / 100.0
                    ),
                    Fault::Cut => String::from("-j DROP"),
                };
                // The whole table in one atomic swap: no moment without
                // either fault between two phases.
                let mut rules = String::from(
                    "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n",
                );
                if !action.is_empty() {
                    let dev = &self.inside_if;
                    rules.push_str(&format!(
                        "-A INPUT -i {dev} {action}\n-A OUTPUT -o {dev} {action}\n"
                    ));
                }
                rules.push_str("COMMIT\n");
                self.iptables_restore(&rules);
            }
        }
    }

    /// The database's sessions that are not idle, one line each (none
    /// when it cannot be asked).
    pub(super) fn activity(&self) -> Vec<String> {
        let mut config: postgres::Config = match self.url.parse() {
            Ok(config) => config,
            Err(_) => return Vec::new(),
        };
        config.connect_timeout(Duration::from_millis(500));
        let Ok(mut db) = config.connect(postgres::NoTls) else {
            return vec![String::from("(the database does not answer)")];
        };
        let rows = db.query(
            "SELECT pid::text, coalesce(application_name, ''), coalesce(state, ''), \
             coalesce(wait_event_type || ':' || wait_event, ''), \
             coalesce(to_char(extract(epoch FROM now() - state_change), 'FM9990.0'), ''), \
             left(regexp_replace(query, '\\s+', ' ', 'g'), 70) \
             FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND state IS DISTINCT FROM 'idle' ORDER BY pid",
            &[],
        );
        match rows {
            Ok(rows) => rows
                .iter()
                .map(|r| {
                    let col = |i: usize| r.get::<_, String>(i);
                    format!(
                        "pid {} {} {} {} for {} s: {}",
                        col(0),
                        col(1),
                        col(2),
                        col(3),
                        col(4),
                        col(5)
                    )
                })
                .collect(),
            Err(e) => vec![format!("(pg_stat_activity: {e})")],
        }
    }

    /// A direct SQL connection to the database (not through any shortener).
    pub(super) fn sql(&self) -> postgres::Client {
        let mut config: postgres::Config = self.url.parse().expect("the cluster's URL");
        config.connect_timeout(Duration::from_secs(5));
        config
            .connect(postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.url))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Backend::Netfilter(line) = &mut self.backend {
            line.stop();
        }
        if self.cluster_started {
            let pg_sh = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg.sh");
            if let Err(e) = run(&[
                pg_sh.to_str().unwrap(),
                "stop",
                self.pg_dir.to_str().unwrap(),
            ]) {
                eprintln!("faults: stopping the cluster failed: {e}");
            }
        }
        // Anything still running in the namespace is ours (a cluster that
        // would not stop): ended by its pid.
        if let Ok(pids) = run(&["ip", "netns", "pids", &self.netns]) {
            for pid in pids.split_whitespace() {
                eprintln!("faults: killing leftover process {pid} in {}", self.netns);
                let _ = run(&["kill", "-9", pid]);
            }
        }
        if let Err(e) = run(&["ip", "netns", "del", &self.netns]) {
            eprintln!("faults: cannot delete namespace {}: {e}", self.netns);
        }
        // Gone with its peer in the namespace; in case the peer never got there.
        let _ = run(&["ip", "link", "del", &self.host_if]);
    }
}

/// Host and inside addresses of a /30 in 10.231.0.0/16 that no interface
/// here uses yet, picked from `pid` so that parallel runs differ.
pub(super) fn free_subnet(pid: u32) -> (String, String) {
    let used = run(&["ip", "-o", "-4", "addr", "show"]).unwrap_or_default();
    (0..16384u32)
        .map(|i| (pid + i) % 16384)
        .map(|block| {
            let (third, fourth) = (block / 64, block % 64 * 4);
            (
                format!("10.231.{third}.{}", fourth + 1),
                format!("10.231.{third}.{}", fourth + 2),
            )
        })
        .find(|(host, inside)| {
            !used.contains(&format!(" {host}/")) && !used.contains(&format!(" {inside}/"))
        })
        .expect("a free /30 in 10.231.0.0/16")
}

/// Fails the test, saying so, when `tool` is not installed.
pub(super) fn require(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
        || Path::new("/usr/sbin").join(tool).is_file()
        || Path::new("/sbin").join(tool).is_file();
    assert!(
        found,
        "the fault test needs `{tool}` (Debian package {package}); \
         examples/shortener/tests/faults.sh installs it"
    );
}

/// Runs `cmd`; its stdout, or what went wrong.
pub(super) fn run(cmd: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .map_err(|e| format!("{}: {e}", cmd.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{} failed ({}): {}",
            cmd.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs `cmd`, failing the test when it fails.
pub(super) fn sh(cmd: &[&str]) -> String {
    run(cmd).unwrap_or_else(|e| panic!("{e}"))
}
