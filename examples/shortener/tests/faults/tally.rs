//! The outcomes per phase and kind the clients record, the table printed per
//! phase, and the checks each phase's outcomes must pass.

use crate::clients::Kind;
use crate::{CUT_PHASE, DEADLINE, DELAY, PHASES, SLACK};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Outcomes per phase and kind, and every broken promise.
#[derive(Default)]
pub(crate) struct Tally {
    rows: Mutex<BTreeMap<(usize, Kind), Row>>,
    pub(crate) failures: Mutex<Vec<String>>,
    /// When each phase began.
    pub(crate) phase_started: Mutex<[Option<Instant>; PHASES.len()]>,
    /// When each phase ended (the next fault went in after).
    pub(crate) phase_ended: Mutex<[Option<Instant>; PHASES.len()]>,
    /// Answers that needed the database, sent while the link was cut:
    /// when sent, when answered, what.
    through_cut: Mutex<Vec<(Instant, Instant, String)>>,
}

#[derive(Default)]
struct Row {
    requests: u64,
    outcomes: BTreeMap<String, u64>,
    max: Duration,
    min: Option<Duration>,
}

impl Tally {
    /// Records one request: `Ok(outcome)` or `Err(what went wrong)`; an
    /// answer later than the deadline plus [`SLACK`] is a failure too.
    pub(crate) fn record(
        &self,
        phase: usize,
        kind: Kind,
        took: Duration,
        outcome: Result<String, String>,
    ) {
        let late = took > DEADLINE + SLACK;
        if phase == CUT_PHASE {
            let store_answered = matches!(&outcome, Ok(o) if o.starts_with("201")
                || o.starts_with("404") || o.starts_with("200"));
            if store_answered {
                let answered = Instant::now();
                let what = format!("{} {:?}", kind.name(), outcome);
                let mut through = self.through_cut.lock().unwrap();
                through.push((answered - took, answered, what));
            }
        }
        let label = match &outcome {
            Ok(o) if late => format!("{o} LATE"),
            Ok(o) => o.clone(),
            Err(_) => String::from("FAILED"),
        };
        let mut rows = self.rows.lock().unwrap();
        let row = rows.entry((phase, kind)).or_default();
        row.requests += 1;
        *row.outcomes.entry(label).or_insert(0) += 1;
        row.max = row.max.max(took);
        row.min = Some(row.min.map_or(took, |m| m.min(took)));
        drop(rows);
        let why = match outcome {
            Err(e) => Some(e),
            Ok(o) if late => Some(format!("{o} after {} ms", took.as_millis())),
            Ok(_) => None,
        };
        if let Some(why) = why {
            self.failures.lock().unwrap().push(format!(
                "phase {phase} ({}), {}: {why} ({} ms)",
                PHASES[phase].0,
                kind.name(),
                took.as_millis()
            ));
        }
    }

    pub(crate) fn print(&self, max_threads: &[usize; PHASES.len()]) {
        let rows = self.rows.lock().unwrap();
        println!();
        println!(
            "{:<12} {:<18} {:>8} {:>8}  outcomes",
            "phase", "kind", "requests", "max ms"
        );
        for (i, (name, _)) in PHASES.iter().enumerate() {
            for ((_, kind), row) in rows.range((i, Kind::Redirect)..=(i, Kind::Health)) {
                let outcomes: Vec<String> = row
                    .outcomes
                    .iter()
                    .map(|(o, n)| format!("{o}: {n}"))
                    .collect();
                println!(
                    "{:<12} {:<18} {:>8} {:>8}  {}",
                    name,
                    kind.name(),
                    row.requests,
                    row.max.as_millis(),
                    outcomes.join(", ")
                );
            }
            println!(
                "{:<12} {:<18} {:>8}",
                name, "(server threads)", max_threads[i]
            );
        }
        println!();
    }

    /// Checks that the faults took effect: the slow phase was slow and
    /// nothing was created through a cut link.
    pub(crate) fn phase_checks(&self) -> Vec<String> {
        let rows = self.rows.lock().unwrap();
        let mut problems = Vec::new();
        match rows.get(&(1, Kind::Create)) {
            Some(row) if row.min.unwrap_or_default() >= 2 * DELAY => {}
            Some(row) => problems.push(format!(
                "a create took {:?} in the delay phase: was the delay applied?",
                row.min.unwrap_or_default()
            )),
            None => problems.push(String::from("no create ran in the delay phase")),
        }
        let reported = rows.get(&(CUT_PHASE, Kind::Health)).is_some_and(|row| {
            row.outcomes
                .keys()
                .any(|o| o.contains("unavailable") || o.contains("degraded"))
        });
        if !reported {
            problems.push(String::from(
                "/health never reported unavailable or degraded while the link was cut",
            ));
        }
        // Answered before the link came back: then the link was not cut.
        // (A request sent late in the cut may be answered after it.)
        let began = self.phase_started.lock().unwrap()[CUT_PHASE];
        let ended = self.phase_ended.lock().unwrap()[CUT_PHASE];
        if let (Some(began), Some(ended)) = (began, ended) {
            let through: Vec<String> = self
                .through_cut
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, answered, _)| *answered < ended)
                .map(|(sent, answered, what)| {
                    format!(
                        "{what}: sent {:.3} s into the cut, answered {:.3} s into it",
                        sent.saturating_duration_since(began).as_secs_f64(),
                        answered.saturating_duration_since(began).as_secs_f64()
                    )
                })
                .collect();
            if !through.is_empty() {
                problems.push(format!(
                    "answers that needed the database came while the link was cut:\n  {}",
                    through.join("\n  ")
                ));
            }
        }
        for phase in 0..PHASES.len() {
            for kind in [Kind::Redirect, Kind::Create, Kind::Unknown, Kind::Health] {
                if !rows.contains_key(&(phase, kind)) {
                    problems.push(format!("no {} request ran in phase {phase}", kind.name()));
                }
            }
        }
        problems
    }
}
