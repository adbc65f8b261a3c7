//! Replays saved fuzz inputs through the fuzz harness's own checks, as a
//! plain test: every file directly in `tests/fuzz-regressions/` (inputs that
//! once crashed a target) and every seed in `fuzz/seeds/*/`, each through
//! every target (any byte string is a valid input for all of them).
//!
//! The checks live in one place, `fuzz/src/lib.rs`, compiled in here as a
//! module. Inputs for bugs not fixed yet wait in `tests/fuzz-regressions/open/`;
//! `cargo test --test fuzz_regressions -- --ignored` replays them. Once a bug
//! is fixed, move its file up one folder so it stays fixed.

#[path = "../../../fuzz/src/lib.rs"]
mod harness;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A fuzz target's entry point.
type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 5] = [
    ("conn_bytes", harness::conn_bytes),
    ("differential_split", harness::differential_split),
    ("pipeline", harness::pipeline),
    ("strict_split", harness::strict_split),
    ("scanners", harness::scanners),
];

/// Regular files under `dir`, `depth` folders deep at most, sorted.
fn files(dir: &Path, depth: usize) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && depth > 0 {
            found.extend(files(&path, depth - 1));
        } else if path.is_file() && path.extension() != Some("md".as_ref()) {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// Runs every file through every target; panics listing the failures.
fn replay(inputs: &[PathBuf]) {
    let mut failures = Vec::new();
    for path in inputs {
        let data = std::fs::read(path).expect("read input");
        for (name, target) in TARGETS {
            if catch_unwind(AssertUnwindSafe(|| target(&data))).is_err() {
                failures.push(format!("{name} {}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "failed:\n{}", failures.join("\n"));
}

fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn seeds_and_fixed_crashes_pass_every_check() {
    let seeds = files(&here().join("../../fuzz/seeds"), 1);
    assert!(seeds.len() >= 10, "the fuzz seeds are missing");
    let mut inputs = files(&here().join("tests/fuzz-regressions"), 0);
    inputs.extend(seeds);
    replay(&inputs);
}

/// `strict_split` over every probe its generator makes (each rule, each
/// choice), under each leniency, in one piece and split: the strict rules'
/// verdicts do not depend on the split, nor the leniency on anything else.
#[test]
fn strict_split_over_every_probe() {
    let mut failures = Vec::new();
    for knobs in [0x00u8, 0x01, 0x02, 0x04, 0x07, 0x10, 0x23, 0x37] {
        for rule in 0..7u8 {
            for choice in 0..60u8 {
                for extra in [0u8, 1] {
                    let lens = (0..knobs >> 4).map(|i| 7 + 13 * i + choice % 5);
                    let data: Vec<u8> = std::iter::once(knobs)
                        .chain(lens)
                        .chain([rule, choice, extra])
                        .collect();
                    if catch_unwind(|| harness::strict_split(&data)).is_err() {
                        failures.push(format!("{data:?}"));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "failed:\n{}", failures.join("\n"));
}

#[test]
#[ignore = "inputs of open bugs: they fail until keel is fixed"]
fn open_bugs() {
    // One child process per input, so that an abort (a stack overflow...)
    // fails that input only.
    let exe = std::env::current_exe().expect("test binary");
    let mut failures = Vec::new();
    for path in files(&here().join("tests/fuzz-regressions/open"), 0) {
        let status = Command::new(&exe)
            .args(["replay_one", "--exact", "--nocapture"])
            .env("KEEL_FUZZ_REPLAY", &path)
            .status()
            .expect("run the test binary");
        if !status.success() {
            failures.push(path.display().to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "still failing:\n{}",
        failures.join("\n")
    );
}

/// Replays the one file named by `KEEL_FUZZ_REPLAY` (for `open_bugs`);
/// nothing without it.
#[test]
fn replay_one() {
    if let Some(path) = std::env::var_os("KEEL_FUZZ_REPLAY") {
        replay(&[PathBuf::from(path)]);
    }
}
