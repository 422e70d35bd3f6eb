//! Echo over TLS on both models: bytes come back exactly, at every size,
//! and the counters count plaintext.

use evloop::Config;

use crate::client::Client;
use crate::common::{Echo, Model, TestServer, pattern};
use crate::on_both_models;
use crate::pki::pki;

on_both_models!(payloads_from_one_byte_to_4_mib_are_echoed_exactly_over_tls);

fn payloads_from_one_byte_to_4_mib_are_echoed_exactly_over_tls(model: Model) {
    let server = TestServer::start_tls(model, Config::default(), pki().acceptor(), || Echo);
    for (seed, len) in [1, 64, 1500, 16 * 1024, 64 * 1024 + 7, 4 * 1024 * 1024]
        .into_iter()
        .enumerate()
    {
        let mut client = Client::connect(server.addr, pki().client_config(&[]));
        let payload = pattern(len, seed as u64);
        let got = echo_threaded(&mut client, &payload);
        assert!(got == payload, "echo of {len} bytes differs");
        client.close_notify();
        assert_eq!(client.read_to_end().expect("the server's close_notify"), b"");
    }
    server.wait_for_stats("all closed", |s| s.open == 0);
}

/// Echoes `payload`, writing and reading in turns of 16 KiB so that neither
/// side blocks on a full socket.
fn echo_threaded(client: &mut Client, payload: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    for chunk in payload.chunks(16 * 1024) {
        got.extend(client.echo(chunk));
    }
    got
}
