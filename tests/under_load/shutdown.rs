//! Graceful shutdown while 1,000 clients are mid-transfer.
//!
//! Each client sends one request, `<id> bulk` or `<id> stream`, and reads its
//! reply at its own pace (see [`reader`]). The handler queues the whole reply
//! at once, or streams it from `on_drained`, and counts per client what
//! `Conn` accepted. Once a quarter of the bytes asked for has arrived, the
//! server shuts down with a grace period far longer than the clients need.
//! Then, for every client: the bytes received are exactly those the server
//! accepted (a prefix of its reply, all of it in bulk), followed by a clean
//! end of stream; and every connection closed for `Shutdown`.
//!
//! The server must hold output of its own when shutdown begins, or the test
//! would only show that the kernel delivers what sits in socket buffers; so
//! some replies are larger than those buffers, and the test checks that
//! output was still queued.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use evloop::{CloseReason, Conn, Handler, Model, ServerHandle};

use crate::common::{figure, pattern, scaled, wait_until};
use crate::{reader, start};

/// Clients mid-transfer when shutdown begins: the number.
const CLIENTS: usize = 1_000;
/// How far apart the clients' replies start in the shared pattern: an odd
/// number, so no client's reply is another's shifted by whole pattern words.
const STRIDE: usize = 97;
/// Grace period: far longer than the clients need to read everything.
const GRACE: Duration = Duration::from_secs(30);
/// Size of the chunks a streaming handler queues.
const CHUNK: usize = 16 * 1024;
/// A streaming handler writes while its queued output is at most this, the
/// default high watermark, so it ends just above it: which is what makes
/// `on_drained` follow.
const STREAM_QUEUE: usize = 64 * 1024;

/// Bytes client `id` asks for. A connection's socket buffers take up to
/// 4 MiB (`tcp_wmem`'s usual maximum; about 1 MiB measured with 1,000
/// connections), so most clients ask for less, while every fifth asks for
/// [`big_reply`], most of which is still queued in the server when
/// shutdown begins.
fn reply_len(id: usize) -> usize {
    if id % 5 == 0 {
        big_reply()
    } else {
        scaled(128 * 1024, 1024 * 1024)
    }
}

/// The largest reply: more than socket buffers hold.
fn big_reply() -> usize {
    scaled(8 * 1024 * 1024, 16 * 1024 * 1024)
}

/// Whether client `id` asks for its reply at once, or streamed.
fn mode(id: usize) -> &'static str {
    if id % 2 == 0 { "bulk" } else { "stream" }
}

/// Client `id`'s reply: `reply_len(id)` bytes of one shared pattern from
/// offset `id * STRIDE`, so a byte sent to the wrong client, lost or
/// reordered shows.
fn reply(source: &Bytes, id: usize) -> Bytes {
    source.slice(id * STRIDE..id * STRIDE + reply_len(id))
}

/// Bytes the server accepted for writing, per client id.
type Accepted = Arc<[AtomicU64]>;

/// Answers one request line, `<id> bulk` or `<id> stream`: queues client
/// `id`'s whole reply at once, or streams it from `on_drained` keeping
/// [`STREAM_QUEUE`] queued. It never closes; shutdown does. Counts every
/// byte that `Conn` accepted, by the growth of `pending_output`, so a write
/// the connection refuses (once it is closing) is not counted.
struct Replier {
    /// The shared pattern replies are cut from.
    source: Bytes,
    /// Where it counts what `Conn` accepted.
    accepted: Accepted,
    /// The client's id and what is left to stream, once asked.
    streaming: Option<(usize, Bytes)>,
}

impl Replier {
    /// Queues `data` for client `id`, counting what was accepted.
    fn write_counted(&self, conn: &mut Conn<'_>, id: usize, data: Bytes) {
        let before = conn.pending_output();
        conn.write_bytes(data);
        let accepted = conn.pending_output() - before;
        self.accepted[id].fetch_add(accepted as u64, Ordering::Relaxed);
    }

    /// Streams until [`STREAM_QUEUE`] is queued or the reply is done.
    fn fill(&mut self, conn: &mut Conn<'_>) {
        let Some((id, mut rest)) = self.streaming.take() else {
            return;
        };
        while !rest.is_empty() && !conn.is_closing() && conn.pending_output() <= STREAM_QUEUE {
            let chunk = rest.split_to(CHUNK.min(rest.len()));
            self.write_counted(conn, id, chunk);
        }
        self.streaming = Some((id, rest));
    }
}

impl Handler for Replier {
    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        let Some(end) = input.iter().position(|&b| b == b'\n') else {
            return;
        };
        let request = String::from_utf8(input.split_to(end + 1).to_vec()).unwrap();
        let (id, mode) = request.trim_end().split_once(' ').expect("`<id> <mode>`");
        let id: usize = id.parse().unwrap();
        let reply = reply(&self.source, id);
        match mode {
            "bulk" => self.write_counted(conn, id, reply),
            "stream" => {
                self.streaming = Some((id, reply));
                self.fill(conn);
            }
            other => panic!("unknown mode {other}"),
        }
    }

    fn on_drained(&mut self, conn: &mut Conn<'_>) {
        self.fill(conn);
    }
}

/// 1,000 clients each ask for a reply, half in bulk and half streamed, and
/// read at their own pace; shutdown begins once a quarter of the bytes asked
/// for has arrived.
pub fn shutdown_under_load_delivers_every_accepted_byte(model: Model) {
    evloop::sys::raise_fd_limit().unwrap(); // 2,000 sockets and some
    let source = Bytes::from(pattern(big_reply() + CLIENTS * STRIDE, 7));
    let accepted: Accepted = (0..CLIENTS).map(|_| AtomicU64::new(0)).collect();
    let server = start_replier(model, &source, &accepted);
    let clients: Vec<reader::Client> = (0..CLIENTS)
        .map(|id| reader::Client::ask(server.local_addr(), id, mode(id), reply(&source, id)))
        .collect();
    wait_until("every request answered", || {
        accepted
            .iter()
            .all(|a| a.load(Ordering::Relaxed) > 0)
            .then_some(())
    });

    let received = Arc::new(AtomicU64::new(0));
    let reading = {
        let received = Arc::clone(&received);
        std::thread::spawn(move || reader::read_all(clients, &received, GRACE * 2))
    };
    let quarter = ((0..CLIENTS).map(reply_len).sum::<usize>() / 4) as u64;
    wait_until("a quarter of the bytes to arrive", || {
        (received.load(Ordering::Relaxed) >= quarter).then_some(())
    });
    // Written before accepted, so that the difference cannot go negative.
    let written_then = server.stats().bytes_written;
    let unwritten_then = sum(&accepted) - written_then;
    let received_then = received.load(Ordering::Relaxed);
    let began = Instant::now();
    server.shutdown(GRACE);
    server.join().unwrap();
    let drained = began.elapsed();
    let clients = reading.join().expect("the reading thread failed");

    let total = sum(&accepted);
    report(model, total, total - received_then, unwritten_then, drained);
    // The server itself held output, not only the kernel's socket buffers.
    assert!(
        unwritten_then > 0,
        "no output was queued in the server at shutdown"
    );
    for client in &clients {
        client.assert_got_exactly(accepted[client.id].load(Ordering::Relaxed));
    }
    let stats = server.stats();
    assert_eq!(stats.accepted, CLIENTS as u64, "{stats:?}");
    assert_eq!(
        stats.closed_by(&CloseReason::Shutdown),
        CLIENTS as u64,
        "{stats:?}"
    );
    assert_eq!(stats.bytes_written, total, "{stats:?}");
    drop((clients, server));
}

/// Prints the scenario's figures.
fn report(model: Model, total: u64, unreceived: u64, unwritten: u64, drained: Duration) {
    let scenario = format!("shutdown under load {model:?}");
    figure(
        &scenario,
        "clients / grace (s)",
        format!("{CLIENTS} / {}", GRACE.as_secs()),
    );
    figure(&scenario, "bytes accepted for writing", total);
    figure(&scenario, "bytes not yet received at shutdown", unreceived);
    figure(
        &scenario,
        "bytes not yet written to sockets at shutdown",
        unwritten,
    );
    figure(&scenario, "time to drain (ms)", drained.as_millis());
}

/// Starts a server of `model` answering with [`Replier`]s.
fn start_replier(model: Model, source: &Bytes, accepted: &Accepted) -> ServerHandle {
    let (source, accepted) = (source.clone(), Arc::clone(accepted));
    start(model, move || Replier {
        source: source.clone(),
        accepted: Arc::clone(&accepted),
        streaming: None,
    })
}

/// Bytes accepted so far, over all clients.
fn sum(accepted: &Accepted) -> u64 {
    accepted.iter().map(|a| a.load(Ordering::Relaxed)).sum()
}
