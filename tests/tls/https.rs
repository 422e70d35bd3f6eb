//! HTTPS: `HttpServer::tls` on both models, reached by evloop's own client
//! (`ClientRequest::tls`, which checks the certificate against the host of
//! the URL) and by curl (`--cacert`, two URLs on one kept-alive
//! connection; skipped visibly if curl is missing), an untrusted certificate
//! and a server that never shakes hands.
#![cfg(feature = "http")]

use std::time::Duration;

use evloop::ServerHandle;
use evloop::http::{ClientRequest, HttpServer, Request, Response};

use crate::common::Model;
use crate::common::http::run_tool;
use crate::on_both_models;
use crate::pki::{self, pki};

on_both_models!(
    an_https_get_reaches_the_server_and_names_the_host,
    a_server_certificate_of_another_ca_is_an_error,
    curl_gets_two_urls_over_one_tls_connection,
);

/// Hello world over TLS, naming the path and the Host header.
fn hello(req: &Request) -> Response {
    Response::text(format!("Hello {} at {}", req.path(), req.host().unwrap_or("?")))
}

/// An HTTPS server of `model` on a free port, with `acceptor`.
fn start(model: Model, acceptor: evloop::tls::TlsAcceptor) -> ServerHandle {
    HttpServer::new("127.0.0.1:0".parse().unwrap())
        .threads(1)
        .model(model)
        .tls(acceptor)
        .start(hello)
        .unwrap()
}

/// Stops `server` and waits for it.
fn stop(server: ServerHandle) {
    server.shutdown(Duration::from_secs(1));
    server.join().unwrap();
}

fn an_https_get_reaches_the_server_and_names_the_host(model: Model) {
    let server = start(model, pki().acceptor());
    let url = format!("https://localhost:{}/a?b", server.local_addr().port());
    let response = ClientRequest::get(&url)
        .tls(pki().client_config(&[]))
        .timeout(Duration::from_secs(5))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let expected = format!("Hello /a at localhost:{}", server.local_addr().port());
    assert_eq!(String::from_utf8_lossy(response.body()), expected);
    // Without a config the URL is refused, not fetched in plaintext.
    let err = evloop::http::get(&url, Duration::from_secs(5)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains(&url), "{err}");
    stop(server);
}

fn a_server_certificate_of_another_ca_is_an_error(model: Model) {
    let stranger = pki::make("evloop-https-stranger-ca");
    let server = start(model, evloop::tls::TlsAcceptor::new(stranger.server_config(&[])));
    let url = format!("https://localhost:{}/", server.local_addr().port());
    let err = ClientRequest::get(&url)
        .tls(pki().client_config(&[]))
        .timeout(Duration::from_secs(5))
        .send()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
    let addr = server.local_addr();
    assert!(
        err.to_string().starts_with(&format!("TLS with {addr} failed")),
        "{err}"
    );
    stop(server);
}

fn curl_gets_two_urls_over_one_tls_connection(model: Model) {
    let server = start(model, pki().acceptor());
    let port = server.local_addr().port();
    let (one, two) = (
        format!("https://localhost:{port}/one"),
        format!("https://localhost:{port}/two"),
    );
    let ca = pki().ca_file.to_str().unwrap();
    let args = [
        "-sS",
        "-v",
        "--http1.1",
        "--max-time",
        "5",
        "--resolve",
        &format!("localhost:{port}:127.0.0.1"),
        "--cacert",
        ca,
        &one,
        &two,
    ];
    let Some(out) = run_tool("curl", &args, None) else {
        stop(server);
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "curl failed:\n{text}");
    let expected = format!("Hello /one at localhost:{port}Hello /two at localhost:{port}");
    assert!(text.contains(&expected), "{text}");
    let reused =
        text.matches("Re-using existing connection").count() + text.matches("Reusing existing").count();
    assert_eq!(reused, 1, "curl did not keep the connection:\n{text}");
    assert_eq!(server.stats().accepted, 1, "{text}");
    stop(server);
}

#[test]
fn a_server_that_never_shakes_hands_times_out_within_the_limit() {
    crate::common::isolated(|| {
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("https://localhost:{}/", silent.local_addr().unwrap().port());
        let started = std::time::Instant::now();
        let err = ClientRequest::get(&url)
            .tls(pki().client_config(&[]))
            .timeout(Duration::from_millis(300))
            .send()
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    });
}
