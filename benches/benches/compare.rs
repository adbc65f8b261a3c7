//! keel against hyper, same work, same run.
//!
//! - `in_memory`: one `GET /plaintext` and one `GET /json` per iteration on a
//!   connection kept open: keel's `MemoryConn`, hyper's `serve_connection`
//!   over a `tokio::io::duplex` pipe.
//! - `loopback`: one request at a time on one keep-alive TCP connection to an
//!   in-process server with one thread (keel: one worker; hyper: a
//!   `current_thread` runtime on its own thread).
//! - `pipelined`: 16 `GET /plaintext` in one write, until all 16 responses are read.
//! - `parse`: httparse alone on the same request, the floor under both.
//!
//! `cargo bench -p keel-benches -- --warm-up-time 1 --measurement-time 3`
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use keel_benches::{hyper_app, keel_app, mem, wire};
use std::hint::black_box;
use std::mem::MaybeUninit;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

fn in_memory(c: &mut Criterion) {
    let mut group = c.benchmark_group("in_memory");
    group.throughput(Throughput::Elements(2));
    let mut keel = mem::keel();
    group.bench_function("keel", |b| {
        b.iter(|| keel.request(black_box(wire::PLAINTEXT)) + keel.request(black_box(wire::JSON)))
    });
    let mut hyper = mem::hyper();
    group.bench_function("hyper", |b| {
        b.iter(|| hyper.request(black_box(wire::PLAINTEXT)) + hyper.request(black_box(wire::JSON)))
    });
    group.finish();
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("the server accepts");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    stream
}

/// Runs `request` (`responses` requests in one write) against a keel server
/// and a hyper server, both in process with one serving thread.
fn over_tcp(c: &mut Criterion, group_name: &str, request: &[u8], responses: usize) {
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Elements(responses as u64));
    let mut buf = Vec::with_capacity(64 * 1024);

    let keel = keel_app::start_server().expect("a keel server");
    let mut stream = connect(keel.local_addr());
    group.bench_function("keel", |b| {
        b.iter(|| wire::round_trip(&mut stream, request, responses, &mut buf).expect("a response"))
    });
    drop(stream);
    keel.shutdown(Duration::ZERO);
    keel.join();

    let hyper = hyper_app::ThreadServer::start().expect("a hyper server");
    let mut stream = connect(hyper.local_addr());
    group.bench_function("hyper", |b| {
        b.iter(|| wire::round_trip(&mut stream, request, responses, &mut buf).expect("a response"))
    });
    drop(stream);
    drop(hyper);
    group.finish();
}

fn loopback(c: &mut Criterion) {
    over_tcp(c, "loopback", wire::PLAINTEXT, 1);
}

fn pipelined(c: &mut Criterion) {
    let batch = wire::pipelined(wire::PIPELINE_DEPTH);
    over_tcp(c, "pipelined", &batch, wire::PIPELINE_DEPTH);
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(1));
    group.bench_function("httparse", |b| {
        b.iter(|| {
            // As keel calls it: uninitialised slots, its default limit of 100 fields.
            let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; 100];
            let mut req = httparse::Request::new(&mut []);
            let status = req.parse_with_uninit_headers(black_box(wire::PLAINTEXT), &mut slots);
            matches!(status, Ok(httparse::Status::Complete(_)))
        })
    });
    group.finish();
}

criterion_group!(benches, in_memory, loopback, pipelined, parse);
criterion_main!(benches);
