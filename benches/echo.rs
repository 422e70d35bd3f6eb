//! Round-trip latency through an evloop echo server on loopback, in-process.
//!
//! `cargo bench --bench echo`. One blocking client sends a message of 64 B,
//! 4 KiB or 64 KiB and waits for its whole echo; criterion's `time` is the
//! round trip: `round_trip_latency/64B  time: [.. 22 µs ..]` means a 64-byte
//! message came back 22 µs after it was sent. With one message in flight,
//! messages per second are simply one over that.
//!
//! A small message's round trip is mostly two thread wake-ups (the loop in
//! `epoll_wait`, then the client blocked in `read`) and four system calls;
//! a large one adds its copies. On a 2-vCPU VM this ran 22 µs for 64 B,
//! 27 µs for 4 KiB and 47 µs for 64 KiB; on a loaded machine the wake-ups
//! grow and the sizes converge. So this measures the latency of one
//! otherwise idle connection, not the cost per message of a busy server,
//! which `benches/models.rs` (reactor against threads, in-process, in
//! messages per second, switches and CPU time per message), the `compare`
//! example and `scripts/measure_echo.sh` (child processes) measure.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
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

    // No throughput: bytes per second of one message in flight would only
    // restate the latency, in a unit that suggests a bulk transfer.
    let mut group = c.benchmark_group("round_trip_latency");
    for (size, label) in [(64usize, "64B"), (4096, "4KiB"), (64 * 1024, "64KiB")] {
        let mut client = TcpStream::connect(handle.local_addr()).unwrap();
        client.set_nodelay(true).unwrap();
        let message = vec![0x5a; size];
        let mut reply = vec![0; size];
        group.bench_with_input(BenchmarkId::from_parameter(label), &size, |b, _| {
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
