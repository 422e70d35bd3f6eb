//! A blocking TLS client over rustls for the scenarios: connect, echo,
//! close with or without `close_notify`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use evloop::tls::rustls::{ClientConfig, ClientConnection, StreamOwned};

use crate::pki::localhost_name;

/// A TLS client on a blocking socket.
pub struct Client {
    /// rustls over the socket.
    pub tls: StreamOwned<ClientConnection, TcpStream>,
}

impl Client {
    /// Connects to `addr` and completes the handshake for `localhost`.
    #[track_caller]
    pub fn connect(addr: SocketAddr, config: Arc<ClientConfig>) -> Client {
        let mut client = Client::start(addr, config);
        while client.tls.conn.is_handshaking() {
            client
                .tls
                .conn
                .complete_io(&mut client.tls.sock)
                .expect("TLS handshake");
        }
        client
    }

    /// Connects as [`connect`](Client::connect) and reads the greeting line
    /// of a scripted handler; returns it, newline left out.
    #[track_caller]
    pub fn greeted(addr: SocketAddr, config: Arc<ClientConfig>) -> (Client, String) {
        let mut client = Client::connect(addr, config);
        let line = client.read_line();
        (client, line)
    }

    /// Reads one line, its newline left out.
    #[track_caller]
    pub fn read_line(&mut self) -> String {
        let mut line = Vec::new();
        let mut byte = [0];
        loop {
            self.tls.read_exact(&mut byte).unwrap();
            if byte == *b"\n" {
                return String::from_utf8(line).unwrap();
            }
            line.push(byte[0]);
        }
    }

    /// Connects to `addr` without shaking hands yet.
    pub fn start(addr: SocketAddr, config: Arc<ClientConfig>) -> Client {
        let sock = TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        sock.set_nodelay(true).unwrap();
        let conn = ClientConnection::new(config, localhost_name()).unwrap();
        Client {
            tls: StreamOwned::new(conn, sock),
        }
    }

    /// Sends `msg` and reads back as many bytes.
    #[track_caller]
    pub fn echo(&mut self, msg: &[u8]) -> Vec<u8> {
        self.tls.write_all(msg).unwrap();
        self.tls.flush().unwrap();
        let mut got = vec![0; msg.len()];
        self.tls.read_exact(&mut got).unwrap();
        got
    }

    /// Sends our `close_notify` and shuts the write half.
    pub fn close_notify(&mut self) {
        self.tls.conn.send_close_notify();
        self.tls.flush().unwrap();
        while self.tls.conn.wants_write() {
            self.tls.conn.write_tls(&mut self.tls.sock).unwrap();
        }
        let _ = self.tls.sock.shutdown(Shutdown::Write);
    }

    /// Reads plaintext to the end of the TLS stream: `Ok` with what came if
    /// it ended with the server's `close_notify`, the error otherwise
    /// (`UnexpectedEof` for a TCP end without it).
    pub fn read_to_end(&mut self) -> io::Result<Vec<u8>> {
        let mut got = Vec::new();
        self.tls.read_to_end(&mut got).map(|_| got)
    }
}
