//! A handler driven by commands in its input, for the TLS scenarios, and
//! the log of how its connections closed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use evloop::bytes::BytesMut;
use evloop::{CloseReason, Conn, Handler};

use crate::common;

/// What the handlers of a server saw: opens, ends of stream, closes.
#[derive(Debug, Default)]
pub struct Log {
    /// `on_open` calls, with what `Conn::tls` said then.
    pub opened: Vec<String>,
    /// Input left when `on_eof` ran.
    pub eofs: Vec<Vec<u8>>,
    /// Close reasons in order.
    pub closes: Vec<CloseReason>,
}

/// The log shared by a server's handlers and the test.
pub type Shared = Arc<Mutex<Log>>;

/// Greets with what the handshake settled, then runs one command per byte:
/// `P` panic, `C` close, `A` abort; a line (ending in `\n`) is echoed;
/// otherwise input stays unconsumed (as a handler waiting for the end of a
/// line), so the input limit and `on_eof` can be seen.
pub struct Scripted {
    /// The shared log.
    log: Shared,
}

impl Scripted {
    /// A factory whose handlers write to `log`.
    pub fn factory(log: &Shared) -> impl Fn() -> Scripted + Send + Sync + 'static {
        let log = Arc::clone(log);
        move || Scripted {
            log: Arc::clone(&log),
        }
    }
}

/// What `conn.tls()` says, in one line: server name, ALPN, version.
pub fn describe(conn: &Conn<'_>) -> String {
    match conn.tls() {
        None => "plain".into(),
        Some(tls) => format!(
            "{} {} {:?}",
            tls.server_name().unwrap_or("-"),
            tls.alpn_protocol()
                .map_or("-".into(), |p| String::from_utf8_lossy(p).into_owned()),
            tls.protocol_version()
                .expect("a version once the handshake completed"),
        ),
    }
}

impl Handler for Scripted {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        let line = describe(conn);
        conn.write(format!("{line}\n").as_bytes());
        self.log.lock().unwrap().opened.push(line);
    }

    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        loop {
            match input.first() {
                Some(b'P') => panic!("scripted panic"),
                Some(b'C') => {
                    let _ = input.split_to(1);
                    conn.write(b"bye\n");
                    return conn.close();
                }
                Some(b'A') => return conn.abort(),
                _ => {}
            }
            match input.iter().position(|&b| b == b'\n') {
                Some(end) => conn.write_bytes(input.split_to(end + 1).freeze()),
                None => return,
            }
        }
    }

    fn on_eof(&mut self, _: &mut Conn<'_>, input: &mut BytesMut) {
        self.log.lock().unwrap().eofs.push(input.to_vec());
    }

    fn on_close(&mut self, reason: &CloseReason) {
        self.log.lock().unwrap().closes.push(reason.clone());
    }
}

/// Waits until `n` connections have closed; returns their reasons.
#[track_caller]
pub fn closes_after(log: &Shared, n: usize) -> Vec<CloseReason> {
    common::wait_until_within(Duration::from_secs(10), "on_close", || {
        Some(log.lock().unwrap().closes.clone()).filter(|c| c.len() >= n)
    })
}
