//! Jobs whose client is gone are dropped: a deferred request abandoned
//! while its job waited in the blocking pool (the client disconnected, or
//! got keel's 503 at the deadline) never runs, the backlog drains at once,
//! and a responder that answers too late is told so.

mod util;

use keel::blocking::BlockingPool;
use keel::{Config, Request, Responder, Response, StatusCode};
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use util::{get, read_responses, TestServer};

/// How long one `/work` job takes when it does run.
const WORK: Duration = Duration::from_millis(50);
/// Requests in each flood: run one after another, they would take 1.5 s.
const FLOOD: usize = 30;

/// An app on its own pool of one thread and a small queue.
struct Flood {
    pool: BlockingPool,
    /// `/hold` keeps the pool's thread until this is dropped.
    gate: Mutex<Option<crossbeam_channel::Receiver<()>>>,
    /// `/work` requests the handler queued.
    queued: AtomicUsize,
    /// `/work` jobs that ran.
    ran: AtomicUsize,
    /// Whether the `/hold` responder's answer was taken.
    hold_taken: Mutex<Option<bool>>,
}

impl Flood {
    fn new() -> (Arc<Flood>, crossbeam_channel::Sender<()>) {
        let (open, gate) = crossbeam_channel::bounded(0);
        let app = Arc::new(Flood {
            pool: BlockingPool::new(1, 2 * FLOOD),
            gate: Mutex::new(Some(gate)),
            queued: AtomicUsize::new(0),
            ran: AtomicUsize::new(0),
            hold_taken: Mutex::new(None),
        });
        (app, open)
    }

    fn handle(self: &Arc<Self>, req: &Request<'_>, res: &mut Response<'_>) {
        let responder = res.defer();
        let app = Arc::clone(self);
        let queued = if req.path() == "/hold" {
            let gate = self.gate.lock().unwrap().take().expect("one /hold");
            self.pool.spawn_answer(responder, move |responder| {
                let _ = gate.recv(); // until the test drops its sender
                let taken = responder.respond(|res| res.body(b"held"));
                *app.hold_taken.lock().unwrap() = Some(taken);
            })
        } else {
            self.queued.fetch_add(1, SeqCst);
            self.pool
                .spawn_answer(responder, move |responder: Responder| {
                    app.ran.fetch_add(1, SeqCst);
                    std::thread::sleep(WORK);
                    responder.respond(|res| res.body(b"worked"));
                })
        };
        if let Err((_full, responder)) = queued {
            responder.respond(|res| {
                res.status(StatusCode::SERVICE_UNAVAILABLE);
            });
        }
    }
}

fn start(app: &Arc<Flood>, config: Config) -> TestServer {
    let app = Arc::clone(app);
    TestServer::with(
        move |req: &Request<'_>, res: &mut Response<'_>| app.handle(req, res),
        config,
        1,
    )
}

/// Waits up to 5 s for `done`.
fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A live client's `/work` after the gate opens: answered at once, since
/// the abandoned backlog ahead of it is skipped, not run.
fn live_client_is_served_at_once(server: &TestServer, open: crossbeam_channel::Sender<()>) {
    let mut live = server.connect();
    live.write_all(&get("/work")).unwrap();
    std::thread::sleep(Duration::from_millis(20)); // its job queues last
    let released = Instant::now();
    drop(open);
    let answer = &read_responses(&mut live, 1)[0];
    assert_eq!(answer.text(), "worked");
    let took = released.elapsed();
    assert!(
        took < WORK * (FLOOD as u32) / 3,
        "the backlog drained at once: {took:?}"
    );
}

#[test]
fn jobs_of_disconnected_clients_are_skipped() {
    let (app, open) = Flood::new();
    let server = start(&app, Config::default());
    let mut hold = server.connect();
    hold.write_all(&get("/hold")).unwrap();
    let clients: Vec<TcpStream> = (0..FLOOD)
        .map(|_| {
            let mut client = server.connect();
            client.write_all(&get("/work")).unwrap();
            client
        })
        .collect();
    wait_for("the flood to queue", || app.queued.load(SeqCst) == FLOOD);
    drop(clients); // every flooding client leaves before its job runs
    wait_for("the worker to see them leave", || {
        server.handle().stats().connections_open == 1
    });

    live_client_is_served_at_once(&server, open);
    assert_eq!(read_responses(&mut hold, 1)[0].text(), "held");
    assert_eq!(app.ran.load(SeqCst), 1, "only the live client's job ran");
    assert_eq!(app.pool.skipped(), FLOOD as u64);
}

#[test]
fn jobs_of_timed_out_requests_are_skipped_and_a_late_answer_is_refused() {
    let (app, open) = Flood::new();
    let config = Config {
        deferred_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let server = start(&app, config);
    let mut hold = server.connect();
    hold.write_all(&get("/hold")).unwrap();
    let mut clients: Vec<TcpStream> = (0..FLOOD)
        .map(|_| {
            let mut client = server.connect();
            client.write_all(&get("/work")).unwrap();
            client
        })
        .collect();
    for client in &mut clients {
        assert_eq!(read_responses(client, 1)[0].status, 503);
    }
    assert_eq!(read_responses(&mut hold, 1)[0].status, 503);

    live_client_is_served_at_once(&server, open);
    wait_for("the held job to answer", || {
        app.hold_taken.lock().unwrap().is_some()
    });
    assert_eq!(
        *app.hold_taken.lock().unwrap(),
        Some(false),
        "the job that answered after the 503 is told its answer was not taken"
    );
    assert_eq!(app.ran.load(SeqCst), 1, "only the live client's job ran");
    assert_eq!(app.pool.skipped(), FLOOD as u64);
}

#[test]
fn a_responder_sees_its_request_abandoned() {
    let abandoned = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&abandoned);
    let config = Config {
        deferred_timeout: Duration::from_millis(100),
        ..Config::default()
    };
    let server = TestServer::with(
        move |_: &Request<'_>, res: &mut Response<'_>| {
            let responder = res.defer();
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || {
                // A long job polling to stop early.
                let started = Instant::now();
                while !responder.is_abandoned() && started.elapsed() < Duration::from_secs(5) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                seen.store(responder.is_abandoned(), SeqCst);
            });
        },
        config,
        1,
    );
    let mut client = server.connect();
    client.write_all(&get("/long")).unwrap();
    assert_eq!(read_responses(&mut client, 1)[0].status, 503);
    wait_for("the job to stop", || abandoned.load(SeqCst));
}
