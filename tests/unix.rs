//! Unix domain stream sockets, on both models: the same handlers as over
//! TCP, the socket file's life (stale file replaced, live one refused, mode,
//! removal at shutdown), abstract names, peer credentials, outbound
//! connects, and HTTP.
#![cfg(target_os = "linux")]

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use common::{Echo, Model, pattern, wait_until};
use evloop::baseline::ThreadServer;
use evloop::{Balance, Bind, CloseReason, Config, Conn, EventLoop, Handler, Server, ServerHandle, UnixBind};

/// A socket path of its own for each test and model, in a fresh directory.
fn socket_path(name: &str, model: Model) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("evloop-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}-{model:?}.sock"));
    let _ = std::fs::remove_file(&path);
    path
}

/// An echo server of `model` on `bind`, two loops on the reactor.
fn echo_server(model: Model, bind: impl Into<Bind>) -> ServerHandle {
    Server::bind(bind).model(model).threads(2).start(|| Echo).unwrap()
}

/// Stops `server` with a short grace period and waits for it.
fn stop(server: ServerHandle) {
    server.shutdown(Duration::from_secs(1));
    server.join().unwrap();
}

/// Connects with a generous read timeout.
fn connect(path: &std::path::Path) -> UnixStream {
    let stream = UnixStream::connect(path).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream
}

/// Sends `payload` from another thread while reading its echo here.
#[track_caller]
fn assert_echoes_through(stream: &UnixStream, payload: &[u8]) {
    let mut writer = stream.try_clone().unwrap();
    let to_send = payload.to_vec();
    let sender = std::thread::spawn(move || writer.write_all(&to_send));
    let mut got = vec![0; payload.len()];
    (&*stream).read_exact(&mut got).unwrap();
    sender.join().unwrap().unwrap();
    assert!(got == payload, "the echo differs from what was sent");
}

on_both_models!(
    echoes_exact_bytes,
    serves_many_clients_at_once,
    answers_what_came_before_the_clients_end_of_stream,
    replaces_a_stale_socket_file,
    refuses_a_live_path_naming_it,
    sets_the_socket_files_mode,
    serves_an_abstract_name,
    tells_the_handler_the_peers_credentials,
    removes_its_socket_file_at_shutdown_only_if_still_its_own,
    dials_a_unix_socket_from_an_event_loop,
    returns_every_fd_when_shut_down_with_clients_connected,
    serves_a_listener_handed_in_and_leaves_its_file,
);

fn echoes_exact_bytes(model: Model) {
    let path = socket_path("exact", model);
    let server = echo_server(model, Bind::unix(&path));
    assert_eq!(server.local(), &Bind::unix(&path));
    let stream = connect(&path);
    assert_echoes_through(&stream, b"hello");
    assert_echoes_through(&stream, &pattern(2 << 20, 7));
    drop(stream);
    stop(server);
}

fn serves_many_clients_at_once(model: Model) {
    let path = socket_path("many", model);
    for balance in [Balance::ReusePort, Balance::RoundRobin] {
        let server = Server::bind(Bind::unix(&path))
            .model(model)
            .threads(3)
            .balance(balance)
            .start(|| Echo)
            .unwrap();
        let clients: Vec<_> = (0..40)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let stream = connect(&path);
                    assert_echoes_through(&stream, &pattern(10_000 + i, i as u64));
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap();
        }
        assert_eq!(server.stats().accepted, 40, "{balance:?}");
        stop(server);
    }
}

fn answers_what_came_before_the_clients_end_of_stream(model: Model) {
    let path = socket_path("eof", model);
    let server = echo_server(model, Bind::unix(&path));
    let mut stream = connect(&path);
    stream.write_all(b"last words").unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = Vec::new();
    stream.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"last words", "echoed, then a clean end of stream");
    stop(server);
}

fn replaces_a_stale_socket_file(model: Model) {
    let path = socket_path("stale", model);
    // A server that died leaves its socket file, with nobody listening.
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let server = echo_server(model, Bind::unix(&path));
    assert_echoes_through(&connect(&path), b"over the stale file");
    stop(server);
}

fn refuses_a_live_path_naming_it(model: Model) {
    let path = socket_path("live", model);
    let server = echo_server(model, Bind::unix(&path));
    let err = Server::bind(Bind::unix(&path))
        .model(model)
        .start(|| Echo)
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
    // The live server keeps its file and its clients.
    assert_echoes_through(&connect(&path), b"still here");
    // A path that is not a socket is never removed.
    let file = socket_path("not-a-socket", model);
    std::fs::write(&file, b"data").unwrap();
    let err = Server::bind(Bind::unix(&file))
        .model(model)
        .start(|| Echo)
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"data");
    std::fs::remove_file(&file).unwrap();
    stop(server);
}

fn sets_the_socket_files_mode(model: Model) {
    for mode in [0o600, 0o660, 0o777] {
        let path = socket_path("mode", model);
        let server = echo_server(model, UnixBind::path(&path).mode(mode));
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, mode, "{mode:o}");
        assert_echoes_through(&connect(&path), b"mode");
        stop(server);
    }
}

fn serves_an_abstract_name(model: Model) {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("evloop-test-{}-{model:?}", std::process::id());
    let server = echo_server(model, UnixBind::abstract_name(&name));
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
    let stream = UnixStream::connect_addr(&addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    assert_echoes_through(&stream, b"abstract");
    assert_eq!(server.local().to_string(), format!("@{name}"));
    // A second server on the same name is refused, naming it.
    let err = Server::bind(UnixBind::abstract_name(&name))
        .model(model)
        .start(|| Echo)
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    assert!(err.to_string().contains(&name), "{err}");
    drop(stream);
    stop(server);
    // The name is free again once the server is gone.
    let again = echo_server(model, UnixBind::abstract_name(&name));
    stop(again);
}

/// Writes the peer's credentials as `pid uid gid`, and whether a TCP
/// address was reported, then closes.
struct SayCred;

impl Handler for SayCred {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        let cred = conn.peer_cred().expect("a Unix peer has credentials");
        assert_eq!(conn.peer().cred(), Some(cred));
        assert_eq!(conn.peer().tcp(), None);
        assert!(conn.peer_addr().ip().is_unspecified());
        conn.write(format!("{} {} {}", cred.pid, cred.uid, cred.gid).as_bytes());
        conn.close();
    }

    fn on_data(&mut self, _: &mut Conn<'_>, input: &mut BytesMut) {
        input.clear();
    }
}

fn tells_the_handler_the_peers_credentials(model: Model) {
    let path = socket_path("cred", model);
    let server = Server::bind(Bind::unix(&path))
        .model(model)
        .start(|| SayCred)
        .unwrap();
    let mut got = String::new();
    connect(&path).read_to_string(&mut got).unwrap();
    // SAFETY: getuid and getgid cannot fail and touch no memory.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    assert_eq!(got, format!("{} {uid} {gid}", std::process::id()));
    stop(server);
}

fn removes_its_socket_file_at_shutdown_only_if_still_its_own(model: Model) {
    let path = socket_path("removed", model);
    let server = echo_server(model, Bind::unix(&path));
    assert!(path.exists());
    stop(server);
    assert!(!path.exists(), "the socket file outlived its server");

    // A file another server bound at the path since is not ours to remove.
    let server = echo_server(model, Bind::unix(&path));
    std::fs::remove_file(&path).unwrap();
    let newcomer = UnixListener::bind(&path).unwrap();
    stop(server);
    assert!(path.exists(), "removed a socket file that was not its own");
    drop(newcomer);
    std::fs::remove_file(&path).unwrap();
}

/// Sends a greeting once connected, records the echo and how it closed.
struct Greeter(Arc<Mutex<Vec<String>>>);

impl Handler for Greeter {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        assert!(conn.peer_cred().is_some(), "the server's credentials");
        conn.write(b"hi there");
    }

    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        if input.len() >= 8 {
            self.0
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&input.split()).into_owned());
            conn.close();
        }
    }

    fn on_close(&mut self, reason: &CloseReason) {
        self.0.lock().unwrap().push(format!("{reason:?}"));
    }
}

fn dials_a_unix_socket_from_an_event_loop(model: Model) {
    let path = socket_path("dial", model);
    let server = echo_server(model, Bind::unix(&path));
    let log = Arc::new(Mutex::new(Vec::new()));
    let factory_log = Arc::clone(&log);
    let mut client = EventLoop::new(Config::default(), move || Greeter(Arc::clone(&factory_log))).unwrap();
    client
        .connect_unix(path.as_path(), Duration::from_secs(5))
        .unwrap();
    client.run_until_idle().unwrap();
    assert_eq!(log.lock().unwrap().first().map(String::as_str), Some("hi there"));

    // From another thread, through a running loop's handle.
    let factory_log = Arc::clone(&log);
    let client = EventLoop::new(Config::default(), move || Greeter(Arc::clone(&factory_log))).unwrap();
    let handle = client.handle();
    let runner = std::thread::spawn(move || client.run());
    assert!(handle.connect_unix(path.as_path(), Duration::from_secs(5)));
    wait_until("the second echo", || {
        (log.lock().unwrap().iter().filter(|s| *s == "hi there").count() == 2).then_some(())
    });
    handle.shutdown(Duration::from_secs(1));
    runner.join().unwrap().unwrap();

    // Nothing listening: the connect fails at once, naming the path.
    stop(server);
    let mut client = EventLoop::new(Config::default(), || Echo).unwrap();
    let err = client
        .connect_unix(path.as_path(), Duration::from_secs(1))
        .unwrap_err();
    assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
}

fn returns_every_fd_when_shut_down_with_clients_connected(model: Model) {
    // `on_both_models!` checks the process's fds after each scenario.
    let path = socket_path("fds", model);
    let server = echo_server(model, Bind::unix(&path));
    let clients: Vec<_> = (0..20).map(|_| connect(&path)).collect();
    for client in &clients {
        assert_echoes_through(client, b"x");
    }
    server.shutdown(Duration::from_millis(200));
    for mut client in clients {
        let mut rest = Vec::new();
        let _ = client.read_to_end(&mut rest);
        assert!(rest.is_empty());
    }
    server.join().unwrap();
    assert!(!path.exists());
}

#[cfg(feature = "http")]
mod http {
    use super::*;

    on_both_models!(serves_http_over_a_unix_socket);

    fn serves_http_over_a_unix_socket(model: Model) {
        use evloop::http::{HttpServer, Response};
        let path = socket_path("http", model);
        let server = HttpServer::bind(Bind::unix(&path))
            .model(model)
            .threads(1)
            .start(|req| Response::text(format!("you asked for {}", req.path())))
            .unwrap();
        let mut stream = connect(&path);
        stream
            .write_all(
                b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
            .unwrap();
        let mut got = String::new();
        stream.read_to_string(&mut got).unwrap();
        assert_eq!(got.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{got}");
        assert!(got.contains("you asked for /a"), "{got}");
        assert!(got.ends_with("you asked for /b"), "{got}");
        stop(server);
        assert!(!path.exists());
    }
}

fn serves_a_listener_handed_in_and_leaves_its_file(model: Model) {
    let path = socket_path("handed-in", model);
    let listener = UnixListener::bind(&path).unwrap();
    match model {
        Model::Reactor => {
            let event_loop = EventLoop::from_std_unix(listener, Config::default(), || Echo).unwrap();
            assert_eq!(event_loop.local(), Some(&Bind::unix(&path)));
            let handle = event_loop.handle();
            let thread = std::thread::spawn(move || event_loop.run());
            assert_echoes_through(&connect(&path), b"handed in");
            handle.shutdown(Duration::from_secs(1));
            thread.join().unwrap().unwrap();
        }
        Model::Threads => {
            let server = ThreadServer::from_std_unix(listener, Config::default(), || Echo).unwrap();
            assert_eq!(server.local(), &Bind::unix(&path));
            let handle = server.start().unwrap();
            assert_echoes_through(&connect(&path), b"handed in");
            handle.shutdown(Duration::from_secs(1));
            handle.wait();
        }
    }
    assert!(
        path.exists(),
        "the file of a listener handed in belongs to whoever bound it"
    );
    std::fs::remove_file(&path).unwrap();
}
