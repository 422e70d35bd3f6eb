//! Server processes that restart and share ports, run as the examples:
//! `echo_server --handover PATH` restarting under a stream of connections,
//! two `echo_server`s refused one port, and systemd's socket activation
//! (`systemd-socket-activate`, skipped where it is missing) with its
//! `Type=notify` notices on a path and on an abstract socket.
#![cfg(target_os = "linux")]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{assert_echoes, example, wait_until_within};

/// How long a process gets to start, hand over or stop.
const PATIENCE: Duration = Duration::from_secs(15);

/// A server process, its stderr collected; killed by its PID if still
/// running when dropped.
struct Instance {
    /// The process.
    child: Child,
    /// Its stderr so far.
    stderr: Arc<Mutex<String>>,
    /// The thread collecting it, until it has read to the end.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Instance {
    /// Starts `program args` with `env` added.
    fn start(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Instance {
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let collected = Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                collected
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Instance {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    /// Waits until its stderr says `text`.
    #[track_caller]
    fn wait_for(&self, text: &str) {
        wait_until_within(PATIENCE, &format!("{text:?} in the log"), || {
            self.stderr.lock().unwrap().contains(text).then_some(())
        });
    }

    /// Its stderr so far.
    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for it to exit; returns whether it exited with status 0.
    #[track_caller]
    fn wait_exit(&mut self) -> bool {
        let status = wait_until_within(PATIENCE, "the process to exit", || self.child.try_wait().unwrap());
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        status.success()
    }

    /// Sends it SIGTERM, by its PID.
    fn terminate(&self) {
        // SAFETY: kill(2) with our own child's PID, not yet reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A free port on 127.0.0.1 (free a moment ago).
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A fresh directory for this test's files.
fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("evloop-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn two_echo_servers_on_one_port_the_second_fails_naming_it() {
    let Some(echo) = example("echo_server") else {
        return;
    };
    let addr = free_addr().to_string();
    let first = Instance::start(&echo, &["--addr", &addr, "--threads", "2"], &[]);
    first.wait_for("echo server on");
    let mut second = Instance::start(&echo, &["--addr", &addr, "--threads", "2"], &[]);
    assert!(
        !second.wait_exit(),
        "the second server must fail:\n{}",
        second.log()
    );
    let log = second.log();
    assert!(log.contains("in use") && log.contains(&addr), "{log}");
    let mut client = TcpStream::connect(&addr).unwrap();
    assert_echoes(&mut client, b"the first one serves alone");
}

/// Connects clients one after the other until `stop`, each checking the
/// echo of its own message; counts those served and lists the failures.
fn stream_of_clients(addr: SocketAddr, stop: &AtomicBool, served: &AtomicUsize) -> Vec<String> {
    let mut failures = Vec::new();
    for i in 0.. {
        if stop.load(Ordering::Acquire) {
            break;
        }
        let msg = format!("client {i} says hello");
        let outcome = TcpStream::connect(addr).and_then(|mut client| {
            client.set_read_timeout(Some(PATIENCE))?;
            client.write_all(msg.as_bytes())?;
            let mut got = vec![0; msg.len()];
            client.read_exact(&mut got)?;
            Ok(got)
        });
        match outcome {
            Ok(got) if got == msg.as_bytes() => {
                served.fetch_add(1, Ordering::AcqRel);
            }
            Ok(got) => failures.push(format!("{i}: corrupted: {:?}", String::from_utf8_lossy(&got))),
            Err(e) => failures.push(format!("{i}: {e}")),
        }
    }
    failures
}

#[test]
fn echo_server_hands_over_to_its_next_instance_losing_no_connection() {
    let Some(echo) = example("echo_server") else {
        return;
    };
    let dir = temp_dir("restart");
    let control = dir.join("echo.sock");
    let (addr, control) = (free_addr(), control.to_str().unwrap().to_owned());
    let args = [
        "--addr",
        &addr.to_string(),
        "--threads",
        "2",
        "--handover",
        &control,
    ];
    let mut old = Instance::start(&echo, &args, &[]);
    old.wait_for("echo server on");

    let (stop, served) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let clients = {
        let (stop, served) = (Arc::clone(&stop), Arc::clone(&served));
        std::thread::spawn(move || stream_of_clients(addr, &stop, &served))
    };
    let at_least = |n: usize| {
        let served = Arc::clone(&served);
        move || (served.load(Ordering::Acquire) >= n).then_some(())
    };
    wait_until_within(PATIENCE, "clients before the restart", at_least(100));
    let mut new = Instance::start(&echo, &args, &[]);
    new.wait_for("echo server on");
    assert!(
        old.wait_exit(),
        "the old instance drains and exits:\n{}",
        old.log()
    );
    assert!(old.log().contains("draining"), "{}", old.log());
    let after = served.load(Ordering::Acquire) + 100;
    wait_until_within(PATIENCE, "clients after the restart", at_least(after));
    stop.store(true, Ordering::Release);
    let failures = clients.join().unwrap();
    assert!(failures.is_empty(), "{} failed: {failures:?}", failures.len());
    assert!(new.log().contains("taking over"), "{}", new.log());
    new.terminate();
    assert!(new.wait_exit(), "{}", new.log());
    assert!(
        !Path::new(&control).exists(),
        "the last instance removes its control socket"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `systemd-socket-activate`, if installed.
fn socket_activate() -> Option<PathBuf> {
    let found = ["/usr/bin/systemd-socket-activate", "/bin/systemd-socket-activate"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    if found.is_none() {
        eprintln!("SKIPPED: systemd-socket-activate is not installed (Debian package systemd)");
    }
    found
}

/// Runs `echo_server` under socket activation with notices to `notify`
/// (bound to `notify_name`, as `NOTIFY_SOCKET` gives it); checks that it
/// echoes on the activated socket, says `READY=1` with its pid, and
/// `STOPPING=1` on SIGTERM.
fn activate_and_notify(activate: &Path, echo: &Path, notify: &UnixDatagram, notify_name: &str) {
    let addr = free_addr().to_string();
    let notify_env = format!("NOTIFY_SOCKET={notify_name}");
    let listen = format!("--listen={addr}");
    let echo = echo.to_str().unwrap();
    // --addr names a port nobody listens on: the socket passed is served.
    let args = [
        "-E",
        &notify_env,
        "-E",
        "RUST_LOG",
        &listen,
        echo,
        "--addr",
        "127.0.0.1:1",
    ];
    let mut server = Instance::start(activate, &args, &[]);
    // The server process starts on the first connection.
    let mut client = wait_until_within(PATIENCE, "systemd-socket-activate to listen", || {
        TcpStream::connect(&addr).ok()
    });
    assert_echoes(&mut client, b"activated");
    notify.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = [0; 256];
    let n = notify.recv(&mut buf).unwrap();
    let ready = String::from_utf8_lossy(&buf[..n]).into_owned();
    // systemd-socket-activate execs the server: its PID is the child's.
    assert_eq!(ready, format!("READY=1\nMAINPID={}", server.child.id()));
    server.wait_for("serving the socket systemd passed");
    server.terminate();
    let n = notify.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STOPPING=1");
    drop(client);
    assert!(server.wait_exit(), "{}", server.log());
}

#[test]
fn echo_server_serves_the_socket_systemd_activates_and_tells_it_when_ready_and_stopping() {
    let (Some(activate), Some(echo)) = (socket_activate(), example("echo_server")) else {
        return;
    };
    let dir = temp_dir("activation");
    let path = dir.join("notify.sock");
    let notify = UnixDatagram::bind(&path).unwrap();
    activate_and_notify(&activate, &echo, &notify, path.to_str().unwrap());

    use std::os::linux::net::SocketAddrExt;
    let name = format!("evloop-notify-{}", std::process::id());
    let abstract_addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let notify = UnixDatagram::bind_addr(&abstract_addr).unwrap();
    activate_and_notify(&activate, &echo, &notify, &format!("@{name}"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_listen_pid_of_another_process_is_not_taken_for_ours() {
    let Some(echo) = example("echo_server") else {
        return;
    };
    let addr = free_addr().to_string();
    // fd 3 is not passed; a LISTEN_PID of another process means the
    // variables were inherited and are not for us: --addr is bound.
    let env = [("LISTEN_FDS", "1"), ("LISTEN_PID", "1")];
    let server = Instance::start(&echo, &["--addr", &addr, "--threads", "1"], &env);
    server.wait_for("echo server on");
    let mut client = TcpStream::connect(&addr).unwrap();
    assert_echoes(&mut client, b"bound itself");
}

#[test]
fn a_listen_fds_naming_no_socket_is_refused() {
    let Some(echo) = example("echo_server") else {
        return;
    };
    // No LISTEN_PID: the variables are taken as ours; fd 3 is not open.
    let mut server = Instance::start(&echo, &["--addr", "127.0.0.1:1"], &[("LISTEN_FDS", "1")]);
    assert!(!server.wait_exit());
    assert!(server.log().contains("fd 3"), "{}", server.log());
}
