//! The child processes: a guard that kills and reaps its child by PID when
//! dropped, the server under test (started on a free loopback port and waited
//! for until it listens), and loadgen (pinned apart, its result line read).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use evloop::sys::{self, ProcessStats};

use crate::options::{Model, Opts, resolve};

/// How long a server may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A child process, killed by its PID and reaped when dropped.
#[derive(Debug)]
pub(crate) struct Kid {
    /// The process; not yet reaped, so its PID cannot be reused meanwhile.
    pub(crate) child: Child,
}

impl Kid {
    /// Spawns `cmd` with this thread's affinity narrowed to `cpus` (which
    /// the child inherits), restoring it afterwards.
    fn spawn(cmd: &mut Command, cpus: Option<(&[usize], &[usize])>) -> Result<Kid, String> {
        let what = format!("{:?}", cmd.get_program());
        if let Some((cpus, _)) = cpus {
            sys::set_cpu_affinity(cpus).map_err(|e| format!("pinning to CPUs {cpus:?}: {e}"))?;
        }
        let spawned = cmd.spawn();
        if let Some((_, all)) = cpus {
            sys::set_cpu_affinity(all).map_err(|e| format!("restoring CPU affinity: {e}"))?;
        }
        let child = spawned.map_err(|e| format!("cannot start {what}: {e}"))?;
        Ok(Kid { child })
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status if it has exited.
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A server under test, listening on loopback; killed when dropped.
#[derive(Debug)]
pub(crate) struct Server {
    /// The process.
    pub(crate) kid: Kid,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// Its stdout and stderr, removed on drop.
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        // The process itself goes when `kid` drops, right after.
        let _ = std::fs::remove_file(&self.log);
    }
}

impl Server {
    /// Starts `model` on a free port and waits until it accepts connections.
    pub(crate) fn start(model: &Model, o: &Opts, serial: usize) -> Result<Server, String> {
        let addr = free_addr()?;
        let words = expand(&model.command, addr, o);
        let program = resolve(&words[0], &o.bin_dir).ok_or_else(|| format!("{} not found", words[0]))?;
        let log = std::env::temp_dir().join(format!("evloop-compare-{}-{serial}.log", std::process::id()));
        let file = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let file2 = file.try_clone().map_err(|e| format!("{}: {e}", log.display()))?;
        let mut cmd = Command::new(program);
        cmd.args(&words[1..])
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(file2);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn"); // no log line per connection
        }
        let kid = Kid::spawn(&mut cmd, o.pin.as_ref().map(|p| (&p.server[..], &p.all[..])))?;
        let mut server = Server { kid, addr, log };
        server.wait_listening(&model.name)?;
        Ok(server)
    }

    /// Polls with connects until the server listens, or fails if it exits.
    fn wait_listening(&mut self, name: &str) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.kid.exited() {
                return Err(format!(
                    "{name} exited ({status}) before listening:\n{}",
                    self.log_tail()
                ));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if start.elapsed() > START_TIMEOUT {
                return Err(format!(
                    "{name} did not listen on {} within {START_TIMEOUT:?}",
                    self.addr
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's process as the OS sees it now.
    pub(crate) fn stats(&self) -> Result<ProcessStats, String> {
        ProcessStats::of(self.kid.pid())
            .map_err(|e| format!("reading server process {}: {e}", self.kid.pid()))
    }

    /// The end of the server's output, for error messages.
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(2000);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        format!("--- server output ---\n{}", &text[start..])
    }
}

/// A loopback address with a port nobody listens on (freed just before use).
fn free_addr() -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    listener
        .local_addr()
        .map_err(|e| format!("finding a free port: {e}"))
}

/// The words of a command template with its placeholders filled in.
fn expand(template: &str, addr: SocketAddr, o: &Opts) -> Vec<String> {
    let mut filled = (template.replace("{addr}", &addr.to_string()))
        .replace("{port}", &addr.port().to_string())
        .replace("{loops}", &o.loops.to_string());
    if let Some(pki) = &o.tls {
        filled = (filled.replace("{cert}", &pki.cert.display().to_string()))
            .replace("{key}", &pki.key.display().to_string());
    }
    filled.split_whitespace().map(String::from).collect()
}

/// loadgen's `--tls CA_FILE` with `--tls`, else nothing.
pub(crate) fn loadgen_tls(o: &Opts) -> Vec<String> {
    (o.tls.iter())
        .flat_map(|pki| ["--tls".to_string(), pki.ca.display().to_string()])
        .collect()
}

/// Starts loadgen with `args`, pinned to the client CPUs, output piped.
pub(crate) fn start_loadgen(o: &Opts, args: &[String]) -> Result<Kid, String> {
    let mut cmd = Command::new(o.bin_dir.join("loadgen"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Kid::spawn(&mut cmd, o.pin.as_ref().map(|p| (&p.client[..], &p.all[..])))
}

/// Reads a pipe to its end on a thread of its own.
pub(crate) fn collect(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

/// Runs loadgen to its end (killing it after `timeout`) and returns its last
/// stdout line.
pub(crate) fn run_loadgen(o: &Opts, args: &[String], timeout: Duration) -> Result<String, String> {
    let mut kid = start_loadgen(o, args)?;
    let (out, err) = (collect(kid.child.stdout.take()), collect(kid.child.stderr.take()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = kid.exited() {
            break Some(status);
        }
        if start.elapsed() > timeout {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(kid); // kills it if it is still running, so that the pipes close
    let (out, err) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    match status {
        None => Err(format!("loadgen did not finish within {timeout:?}\n{err}")),
        Some(s) if !s.success() => Err(format!("loadgen failed ({s}): {}", err.trim())),
        Some(_) => out
            .lines()
            .last()
            .map(String::from)
            .ok_or_else(|| "loadgen printed nothing".into()),
    }
}

/// `key=value` pairs of a loadgen line.
pub(crate) fn fields(line: &str) -> BTreeMap<&str, &str> {
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

/// A number from a loadgen line.
pub(crate) fn field(map: &BTreeMap<&str, &str>, key: &str) -> Result<f64, String> {
    let value = map.get(key).ok_or_else(|| format!("loadgen line lacks {key}"))?;
    value
        .parse()
        .map_err(|_| format!("loadgen reported {key}={value}"))
}
