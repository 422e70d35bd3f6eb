//! Round trips through an evloop echo server on loopback, in-process.
//!
//! `cargo bench --bench echo`. One blocking client sends a message and waits
//! for its echo; criterion reports time and throughput per round trip. This
//! measures latency of a single connection, not the many-connection cost that
//! `benches/models.rs` (reactor against threads, in-process), the `compare`
//! example and `scripts/measure_echo.sh` (child processes) measure.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use evloop::{Config, Conn, EventLoop, Handler};

/// Zero-copy echo.
struct Echo;

impl Handler for Echo {
    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        conn.write_bytes(input.split().freeze());
    }
}

fn round_trips(c: &mut Criterion) {
    let event_loop = EventLoop::bind("127.0.0.1:0".parse().unwrap(), Config::default(), || Echo).unwrap();
    let handle = event_loop.handle();
    let server = std::thread::spawn(move || event_loop.run());

    let mut group = c.benchmark_group("echo_round_trip");
    for size in [64usize, 4096, 64 * 1024] {
        let mut client = TcpStream::connect(handle.local_addr()).unwrap();
        client.set_nodelay(true).unwrap();
        let message = vec![0x5a; size];
        let mut reply = vec![0; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| {
                client.write_all(&message).unwrap();
                client.read_exact(&mut reply).unwrap();
            })
        });
    }
    group.finish();

    handle.shutdown(Duration::from_secs(1));
    server.join().unwrap().unwrap();
}

criterion_group!(benches, round_trips);
criterion_main!(benches);
