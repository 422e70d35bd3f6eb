//! Side-by-side comparison of echo servers, each in its own child process:
//! throughput, latency, CPU per message, context switches, memory, threads.
//!
//! For every connection count and round, each model's server is started
//! fresh, driven by the `loadgen` example (a child process, pinned apart with
//! `--pin`) which reads the server's CPU time, context switches, threads and
//! memory through `evloop::sys` at the edges of its measurement window. Rounds
//! alternate the models (A B A B ...) so that drift on a noisy machine hits
//! them alike; the table holds the medians over the rounds.
//!
//! Build first, then run (the servers and `loadgen` are looked up next to the
//! `compare` binary, in `target/release/examples/`):
//!
//! ```text
//! cargo build --release --examples
//! target/release/examples/compare --pin 0:1 --out target/compare
//! target/release/examples/compare --models reactor,threads --conns 10,1000 --rounds 5
//! target/release/examples/compare --idle --out target/compare       # RSS per idle connection
//! target/release/examples/compare --server 'r4=echo_server --addr {addr} --threads 4' --models r4,tokio
//! ```
//!
//! A model is a command template: built in are `reactor`, `threads` (both
//! `echo_server`, with `--model`), `tokio` (`tokio_echo`) and `mio`
//! (`mio_echo`); `--server NAME=COMMAND` defines another or replaces one.
//! `{addr}`, `{port}` and `{loops}` in a command are filled in; words are
//! split on spaces, without quoting. Default: `--models reactor,threads,tokio`.
//!
//! Output: one table on stdout; with `--out DIR` also `compare.md` (the same
//! table and the settings), `compare.csv` (every run) and `compare.svg`
//! (throughput, p99, CPU per message, switches, memory and server CPU against
//! connections, log x axis, one line per model). `--idle` instead holds N idle
//! connections on each model (default 1000, 5000, 10000) and reports resident
//! memory and the slope of a straight-line fit of RSS against N, in `idle.*`.
//!
//! Connection counts above what the fd limit allows are left out of the
//! default sweep (the soft limit is first raised to the hard limit, and the
//! children inherit it); asked for explicitly, they are an error. Bad or
//! impossible arguments exit with status 2, a failed run with status 1 after
//! printing what was measured until then. Children are killed by PID when
//! done or on any error; Ctrl-C reaches them too (same process group).
//!
//! Limits: loopback only. Idle connections never send a byte: one that was
//! busy earlier may hold buffers, in any model. The evloop reactor closes
//! connections idle for 60 s, so an idle measurement must finish within that.
//! RSS misses kernel memory (socket buffers, a thread's kernel stack).
//! Every run starts a server and connects anew (thousands of connections one
//! by one), which counts towards its run time, not its window. `{loops}`
//! (`--loops`, default 1) only reaches servers whose command uses it, such as
//! the built-in `reactor`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use evloop::sys::{self, ProcessStats};
use plotters::prelude::*;

const USAGE: &str = "usage: compare [--models M,M..] [--server NAME=COMMAND].. [--conns N,N..] [--rounds R]
               [--warmup SECS] [--duration SECS] [--size BYTES] [--depth D] [--rate MSGS_PER_S]
               [--loops N] [--pin SERVER_CPUS:CLIENT_CPUS] [--out DIR] [--bin-dir DIR] [--idle]
defaults: --models reactor,threads,tokio --conns 1,10,100,1000,5000 (idle: 1000,5000,10000)
          --rounds 3 --warmup 1 --duration 5 --size 64 --depth 1 --loops 1
models: reactor, threads, tokio, mio, or any defined with --server, whose COMMAND may use
        {addr}, {port} and {loops}, e.g. --server 'r2=echo_server --addr {addr} --threads 2'
--pin 0:1 runs servers on CPU 0 and loadgen on CPU 1 (lists like 0-3,6 work too);
--idle measures resident memory per idle connection instead of load.";

/// The built-in models: name and command template.
const BUILTIN: &[(&str, &str)] = &[
    (
        "reactor",
        "echo_server --addr {addr} --model reactor --threads {loops}",
    ),
    ("threads", "echo_server --addr {addr} --model threads"),
    ("tokio", "tokio_echo --addr {addr}"),
    ("mio", "mio_echo --addr {addr}"),
];
/// Fds a process needs besides its connections (listener, poller, stdio, logs).
const FD_HEADROOM: u64 = 64;
/// How long a server may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Prints a message and the usage and exits with status 2.
macro_rules! usage {
    ($($arg:tt)*) => {{
        eprintln!("compare: {}\n{USAGE}", format_args!($($arg)*));
        std::process::exit(2)
    }};
}

// ---------------------------------------------------------------------------
// Options

/// A server to compare: a name and the command that starts it.
#[derive(Debug, Clone)]
struct Model {
    /// Its name in tables and charts.
    name: String,
    /// The command template, `{addr}`, `{port}` and `{loops}` not yet filled in.
    command: String,
}

/// CPUs for the servers and for the load generator.
#[derive(Debug, Clone)]
struct Pin {
    /// Where servers run.
    server: Vec<usize>,
    /// Where loadgen runs.
    client: Vec<usize>,
    /// This process's CPUs before pinning, restored after each spawn.
    all: Vec<usize>,
}

/// Command-line options, checked.
#[derive(Debug)]
struct Opts {
    /// The models to run, in order.
    models: Vec<Model>,
    /// Connection counts, ascending.
    conns: Vec<usize>,
    /// Rounds per model and connection count.
    rounds: usize,
    /// Seconds of load before each window.
    warmup: f64,
    /// Seconds of each measurement window.
    duration: f64,
    /// Bytes per message.
    size: usize,
    /// Messages in flight per connection.
    depth: usize,
    /// Fixed total rate for loadgen, if any.
    rate: Option<f64>,
    /// Event loops for `{loops}`.
    loops: usize,
    /// CPU pinning, if any.
    pin: Option<Pin>,
    /// Where to write the report files.
    out: Option<PathBuf>,
    /// Where the server and loadgen binaries are.
    bin_dir: PathBuf,
    /// Idle-memory mode instead of load.
    idle: bool,
    /// The command line, for the report.
    command_line: String,
}

/// Parses and checks the command line; exits with status 2 on any error.
fn parse_opts() -> Opts {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut defined: BTreeMap<String, String> = BUILTIN
        .iter()
        .map(|(n, c)| (n.to_string(), c.to_string()))
        .collect();
    let (mut selected, mut conns, mut pin) = ("reactor,threads,tokio".to_string(), None, None);
    let mut o = Opts {
        models: Vec::new(),
        conns: Vec::new(),
        rounds: 3,
        warmup: 1.0,
        duration: 5.0,
        size: 64,
        depth: 1,
        rate: None,
        loops: 1,
        pin: None,
        out: None,
        bin_dir: default_bin_dir(),
        idle: false,
        command_line: std::env::args()
            .map(|a| shell_quote(&a))
            .collect::<Vec<_>>()
            .join(" "),
    };
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        if flag == "--idle" {
            o.idle = true;
            continue;
        }
        let value = it.next().unwrap_or_else(|| usage!("{flag} needs a value"));
        match flag.as_str() {
            "--models" => selected = value,
            "--server" => define(&mut defined, &value),
            "--conns" => conns = Some(parse_list(&flag, &value)),
            "--rounds" => o.rounds = parse_num(&flag, &value, 1.0) as usize,
            "--warmup" => o.warmup = parse_num(&flag, &value, 0.0),
            "--duration" => o.duration = parse_num(&flag, &value, 0.01),
            "--size" => o.size = parse_num(&flag, &value, 1.0) as usize,
            "--depth" => o.depth = parse_num(&flag, &value, 1.0) as usize,
            "--rate" => o.rate = Some(parse_num(&flag, &value, 1.0)),
            "--loops" => o.loops = parse_num(&flag, &value, 1.0) as usize,
            "--pin" => pin = Some(value),
            "--out" => o.out = Some(PathBuf::from(value)),
            "--bin-dir" => o.bin_dir = PathBuf::from(value),
            _ => usage!("unknown argument {flag:?}"),
        }
    }
    o.models = select(&defined, &selected);
    o.pin = pin.map(|p| parse_pin(&p));
    o.conns = check_conns(conns, o.idle);
    check_binaries(&o);
    o
}

/// `arg` as a shell would need it, for the report.
fn shell_quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:,=".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// The directory of this binary: `target/<profile>/examples/`.
fn default_bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| usage!("cannot find this program's path: {e}"));
    exe.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Handles `--server NAME=COMMAND`.
fn define(defined: &mut BTreeMap<String, String>, spec: &str) {
    let Some((name, command)) = spec.split_once('=') else {
        usage!("--server wants NAME=COMMAND, got {spec:?}")
    };
    let name_ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if name.is_empty() || !name.chars().all(name_ok) {
        usage!("--server {spec:?}: a name is letters, digits, '_' and '-'");
    }
    check_template(name, command);
    defined.insert(name.to_string(), command.trim().to_string());
}

/// Exits unless `command` names a program, says where to listen, and uses
/// known placeholders only.
fn check_template(name: &str, command: &str) {
    if command.split_whitespace().next().is_none() {
        usage!("--server {name}: empty command");
    }
    let mut rest = command;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').map(|c| open + c);
        let Some(close) = close else {
            usage!("--server {name}: unclosed '{{' in {command:?}")
        };
        let key = &rest[open + 1..close];
        if !["addr", "port", "loops"].contains(&key) {
            usage!("--server {name}: unknown placeholder {{{key}}} (known: {{addr}} {{port}} {{loops}})");
        }
        rest = &rest[close + 1..];
    }
    if !command.contains("{addr}") && !command.contains("{port}") {
        usage!(
            "--server {name}: the command must take {{addr}} or {{port}}, or it cannot be told where to listen"
        );
    }
}

/// The models named in `list`, in its order.
fn select(defined: &BTreeMap<String, String>, list: &str) -> Vec<Model> {
    let mut models: Vec<Model> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let Some(command) = defined.get(name) else {
            let known: Vec<&str> = defined.keys().map(String::as_str).collect();
            usage!("unknown model {name:?} (known: {})", known.join(", "))
        };
        if models.iter().any(|m| m.name == name) {
            usage!("model {name:?} named twice in --models");
        }
        models.push(Model {
            name: name.to_string(),
            command: command.clone(),
        });
    }
    if models.is_empty() {
        usage!("--models names no model");
    }
    models
}

/// A number no smaller than `min`.
fn parse_num(flag: &str, value: &str, min: f64) -> f64 {
    match value.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= min => v,
        _ => usage!("bad {flag} {value:?}: expected a number of at least {min}"),
    }
}

/// A comma-separated list of counts of at least 1, sorted, without duplicates.
fn parse_list(flag: &str, value: &str) -> Vec<usize> {
    let mut list: Vec<usize> = (value.split(','))
        .map(|v| match v.trim().parse() {
            Ok(n) if n >= 1 => n,
            _ => usage!("bad {flag} {value:?}: expected whole numbers of at least 1, like 1,10,100"),
        })
        .collect();
    list.sort_unstable();
    list.dedup();
    list
}

/// A CPU list like `0-3,6`.
fn parse_cpus(spec: &str, all: &[usize]) -> Vec<usize> {
    let mut cpus = Vec::new();
    for part in spec.split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        match (lo.trim().parse::<usize>(), hi.trim().parse::<usize>()) {
            (Ok(lo), Ok(hi)) if lo <= hi => cpus.extend(lo..=hi),
            _ => usage!("bad CPU list {spec:?} in --pin: expected something like 0 or 0-3,6"),
        }
    }
    if let Some(cpu) = cpus.iter().find(|c| !all.contains(c)) {
        usage!("--pin: CPU {cpu} is not available to this process (available: {all:?})");
    }
    cpus.sort_unstable();
    cpus.dedup();
    cpus
}

/// `--pin SERVER_CPUS:CLIENT_CPUS`.
fn parse_pin(spec: &str) -> Pin {
    let all = sys::cpu_affinity().unwrap_or_else(|e| usage!("--pin: cannot read CPU affinity: {e}"));
    let Some((server, client)) = spec.split_once(':') else {
        usage!("--pin wants SERVER_CPUS:CLIENT_CPUS, like 0:1, got {spec:?}")
    };
    let pin = Pin {
        server: parse_cpus(server, &all),
        client: parse_cpus(client, &all),
        all,
    };
    if pin.server.iter().any(|c| pin.client.contains(c)) {
        eprintln!("compare: warning: --pin {spec}: server and loadgen share CPUs");
    }
    pin
}

/// The connection counts to run: raises the fd limit, then drops default
/// counts it cannot hold and rejects requested ones.
fn check_conns(requested: Option<Vec<usize>>, idle: bool) -> Vec<usize> {
    let (_, hard) = sys::fd_limit().unwrap_or((0, 0));
    let limit = sys::raise_fd_limit().unwrap_or_else(|e| {
        eprintln!("compare: warning: cannot raise the fd limit: {e}");
        sys::fd_limit().map_or(1024, |(soft, _)| soft)
    });
    let fits = |n: &usize| (*n as u64).saturating_add(FD_HEADROOM) <= limit;
    let Some(requested) = requested else {
        let defaults: &[usize] = if idle {
            &[1000, 5000, 10000]
        } else {
            &[1, 10, 100, 1000, 5000]
        };
        let (ok, dropped): (Vec<usize>, Vec<usize>) = defaults.iter().partition(|n| fits(n));
        if !dropped.is_empty() {
            eprintln!(
                "compare: leaving out {dropped:?} connections: the fd limit is {limit} (hard limit {hard})"
            );
        }
        if ok.is_empty() {
            usage!("the fd limit ({limit}) allows none of the default connection counts; give --conns");
        }
        return ok;
    };
    if let Some(n) = requested.iter().find(|n| !fits(n)) {
        usage!(
            "--conns {n} needs more fds than the limit allows ({limit}, hard limit {hard}); raise it with ulimit -n"
        );
    }
    requested
}

/// Exits unless loadgen and every model's program can be found.
fn check_binaries(o: &Opts) {
    let missing = |what: &str| -> ! {
        usage!(
            "{what} not found in {}; build the examples first: cargo build --release --examples",
            o.bin_dir.display()
        )
    };
    if !o.bin_dir.join("loadgen").is_file() {
        missing("loadgen");
    }
    for model in &o.models {
        let program = model.command.split_whitespace().next().unwrap_or_default();
        if resolve(program, &o.bin_dir).is_none() {
            missing(&format!("{program} (model {})", model.name));
        }
    }
}

/// Where `program` is: a path as given, else in `bin_dir`, else on `PATH`.
fn resolve(program: &str, bin_dir: &Path) -> Option<PathBuf> {
    if program.contains('/') {
        return Path::new(program).is_file().then(|| PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::iter::once(bin_dir.to_path_buf())
        .chain(std::env::split_paths(&path))
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

// ---------------------------------------------------------------------------
// Child processes

/// A child process, killed by its PID and reaped when dropped.
#[derive(Debug)]
struct Kid {
    /// The process; not yet reaped, so its PID cannot be reused meanwhile.
    child: Child,
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
    fn pid(&self) -> u32 {
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
struct Server {
    /// The process.
    kid: Kid,
    /// Where it listens.
    addr: SocketAddr,
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
    fn start(model: &Model, o: &Opts, serial: usize) -> Result<Server, String> {
        let addr = free_addr()?;
        let words = expand(&model.command, addr, o.loops);
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
    fn stats(&self) -> Result<ProcessStats, String> {
        ProcessStats::of(self.kid.pid())
            .map_err(|e| format!("reading server process {}: {e}", self.kid.pid()))
    }

    /// The end of the server's output, for error messages.
    fn log_tail(&self) -> String {
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
fn expand(template: &str, addr: SocketAddr, loops: usize) -> Vec<String> {
    let filled = (template.replace("{addr}", &addr.to_string()))
        .replace("{port}", &addr.port().to_string())
        .replace("{loops}", &loops.to_string());
    filled.split_whitespace().map(String::from).collect()
}

/// Starts loadgen with `args`, pinned to the client CPUs, output piped.
fn start_loadgen(o: &Opts, args: &[String]) -> Result<Kid, String> {
    let mut cmd = Command::new(o.bin_dir.join("loadgen"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Kid::spawn(&mut cmd, o.pin.as_ref().map(|p| (&p.client[..], &p.all[..])))
}

/// Reads a pipe to its end on a thread of its own.
fn collect(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
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
fn run_loadgen(o: &Opts, args: &[String], timeout: Duration) -> Result<String, String> {
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
fn fields(line: &str) -> BTreeMap<&str, &str> {
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

/// A number from a loadgen line.
fn field(map: &BTreeMap<&str, &str>, key: &str) -> Result<f64, String> {
    let value = map.get(key).ok_or_else(|| format!("loadgen line lacks {key}"))?;
    value
        .parse()
        .map_err(|_| format!("loadgen reported {key}={value}"))
}

// ---------------------------------------------------------------------------
// Load sweep

/// Where a column's value comes from.
#[derive(Clone, Copy)]
enum Source {
    /// A number of loadgen's result line.
    Key(&'static str),
    /// Server RSS growth since before connecting, per connection, in KiB.
    RssPerConn,
    /// Server RSS at the window's end, in MiB.
    RssMib,
}

/// One column of the load table.
struct Column {
    /// Header in the tables and the chart.
    head: &'static str,
    /// Name in the CSV file.
    csv: &'static str,
    /// Decimals shown in the tables.
    decimals: usize,
    /// Whether the chart has a panel for it.
    chart: bool,
    /// Where the value comes from.
    source: Source,
}

/// A column (keeps the table below one line per column).
const fn col(head: &'static str, csv: &'static str, decimals: usize, chart: bool, source: Source) -> Column {
    Column {
        head,
        csv,
        decimals,
        chart,
        source,
    }
}

/// The columns of the load table, in order.
const COLUMNS: [Column; 13] = [
    col("msgs/s", "msgs_per_s", 0, true, Source::Key("msgs_per_s")),
    col("p50 µs", "p50_us", 1, false, Source::Key("p50_us")),
    col("p99 µs", "p99_us", 1, true, Source::Key("p99_us")),
    col("p99.9 µs", "p999_us", 1, false, Source::Key("p999_us")),
    col(
        "CPU µs/msg",
        "cpu_us_per_msg",
        2,
        true,
        Source::Key("server_cpu_us_per_msg"),
    ),
    col(
        "cs/1k msgs",
        "cs_per_1k",
        1,
        true,
        Source::Key("server_cs_per_1k"),
    ),
    col(
        "invol cs/1k",
        "invol_cs_per_1k",
        1,
        false,
        Source::Key("server_invol_cs_per_1k"),
    ),
    col("RSS/conn KiB", "rss_per_conn_kib", 1, true, Source::RssPerConn),
    col("RSS MiB", "rss_mib", 1, false, Source::RssMib),
    col("threads", "threads", 0, false, Source::Key("server_threads")),
    col(
        "srv CPU%",
        "server_cpu_pct",
        0,
        true,
        Source::Key("server_cpu_pct"),
    ),
    col(
        "gen CPU%",
        "client_cpu_pct",
        0,
        false,
        Source::Key("client_cpu_pct"),
    ),
    col("connect s", "connect_secs", 2, false, Source::Key("connect_secs")),
];

/// What one run measured (or the medians of several), in the order of [`COLUMNS`].
type Metrics = [f64; COLUMNS.len()];

/// Positions in [`Metrics`] of the values used by name.
const MSGS_PER_S: usize = 0;
const P99: usize = 2;
const CPU_PER_MSG: usize = 4;
const CS_PER_1K: usize = 5;
const THREADS: usize = 9;
const CLIENT_CPU: usize = 11;

/// One run of one model at one connection count.
#[derive(Debug, Clone)]
struct Sample {
    model: String,
    conns: usize,
    round: usize,
    m: Metrics,
}

/// Runs one model at one connection count once.
fn run_once(o: &Opts, model: &Model, conns: usize, serial: usize) -> Result<Metrics, String> {
    let server = Server::start(model, o, serial)?;
    let base = server.stats()?;
    let pairs = [
        ("--addr", server.addr.to_string()),
        ("--conns", conns.to_string()),
        ("--size", o.size.to_string()),
        ("--depth", o.depth.to_string()),
        ("--warmup", o.warmup.to_string()),
        ("--duration", o.duration.to_string()),
        ("--pid", server.kid.pid().to_string()),
    ];
    let mut args: Vec<String> = pairs.into_iter().flat_map(|(k, v)| [k.to_string(), v]).collect();
    if let Some(rate) = o.rate {
        args.extend(["--rate".to_string(), rate.to_string()]);
    }
    let timeout = Duration::from_secs_f64(o.warmup + o.duration + 30.0 + conns as f64 / 500.0);
    let line = run_loadgen(o, &args, timeout).map_err(|e| format!("{e}\n{}", server.log_tail()))?;
    let map = fields(&line);
    let f = |key: &str| field(&map, key).map_err(|e| format!("{e} (run against {}):\n{line}", model.name));
    let rss_kib = f("server_rss_kb")?;
    let mut m = [0.0; COLUMNS.len()];
    for (value, column) in m.iter_mut().zip(&COLUMNS) {
        *value = match column.source {
            Source::Key(key) => f(key)?,
            Source::RssPerConn => (rss_kib - (base.rss / 1024) as f64) / conns as f64,
            Source::RssMib => rss_kib / 1024.0,
        };
    }
    Ok(m)
}

/// Every model at every connection count, `rounds` times, models alternating.
/// On a failure, returns what was measured so far with the error.
fn sweep(o: &Opts) -> (Vec<Sample>, Option<String>) {
    let mut samples = Vec::new();
    let total = o.conns.len() * o.rounds * o.models.len();
    for &conns in &o.conns {
        for round in 1..=o.rounds {
            for model in &o.models {
                let serial = samples.len() + 1;
                match run_once(o, model, conns, serial) {
                    Ok(m) => {
                        eprintln!(
                            "compare: [{serial}/{total}] {}",
                            progress(&model.name, conns, round, &m)
                        );
                        samples.push(Sample {
                            model: model.name.clone(),
                            conns,
                            round,
                            m,
                        });
                    }
                    Err(e) => {
                        return (
                            samples,
                            Some(format!("{} at {conns} connections: {e}", model.name)),
                        );
                    }
                }
            }
        }
    }
    (samples, None)
}

/// One line about a finished run.
fn progress(model: &str, conns: usize, round: usize, m: &Metrics) -> String {
    format!(
        "{model:<10} conns={conns:<5} round {round}: {:.0} msgs/s, p99 {:.1} µs, {:.2} CPU µs/msg, \
         {:.1} cs/1k, {} threads",
        m[MSGS_PER_S], m[P99], m[CPU_PER_MSG], m[CS_PER_1K], m[THREADS]
    )
}

/// The median of each metric over samples, per model and connection count,
/// in the order of the models and the counts.
fn medians(o: &Opts, samples: &[Sample]) -> Vec<(String, usize, Metrics)> {
    let mut rows = Vec::new();
    for model in &o.models {
        for &conns in &o.conns {
            let runs: Vec<&Metrics> = (samples.iter())
                .filter(|s| s.model == model.name && s.conns == conns)
                .map(|s| &s.m)
                .collect();
            if runs.is_empty() {
                continue;
            }
            let m = std::array::from_fn(|i| median(runs.iter().map(|m| m[i]).collect()));
            rows.push((model.name.clone(), conns, m));
        }
    }
    rows
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

// ---------------------------------------------------------------------------
// Idle sweep

/// Resident memory with `conns` idle connections, and without.
#[derive(Debug, Clone)]
struct IdleSample {
    model: String,
    conns: usize,
    round: usize,
    /// Bytes resident before any connection.
    base_rss: u64,
    /// Bytes resident holding `conns` connections.
    rss: u64,
    /// Threads holding `conns` connections.
    threads: usize,
}

/// Holds `conns` idle connections on a fresh server of `model` and reads its memory.
fn idle_once(o: &Opts, model: &Model, conns: usize, serial: usize) -> Result<IdleSample, String> {
    let server = Server::start(model, o, serial)?;
    std::thread::sleep(Duration::from_millis(100)); // let the probe connection close
    let base = server.stats()?;
    let args = [
        "--addr",
        &server.addr.to_string(),
        "--idle",
        &conns.to_string(),
        "--duration",
        "3600",
    ];
    let mut kid = start_loadgen(o, &args.map(String::from))?;
    let connect_limit = Duration::from_secs_f64(30.0 + conns as f64 / 200.0);
    wait_for_line(&mut kid, connect_limit).map_err(|e| format!("{e}\n{}", server.log_tail()))?;
    let held = wait_accepted(&server, base.open_fds + conns, connect_limit)?;
    drop(kid);
    Ok(IdleSample {
        model: model.name.clone(),
        conns,
        round: 0,
        base_rss: base.rss,
        rss: held.rss,
        threads: held.threads,
    })
}

/// Waits for the first stdout line of an idle loadgen ("all connected").
fn wait_for_line(kid: &mut Kid, limit: Duration) -> Result<String, String> {
    let stdout = kid.child.stdout.take().ok_or("loadgen stdout is not piped")?;
    let stderr = collect(kid.child.stderr.take());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    match rx.recv_timeout(limit) {
        Ok(line) if !line.is_empty() => Ok(line),
        Ok(_) => {
            let _ = kid.child.wait();
            Err(format!(
                "loadgen --idle failed: {}",
                stderr.join().unwrap_or_default().trim()
            ))
        }
        Err(_) => Err(format!("loadgen --idle did not connect within {limit:?}")),
    }
}

/// Waits until the server holds `fds` descriptors (all connections accepted)
/// and its threads and memory have settled (same thread count, RSS within
/// 1% over 200 ms); returns that last reading.
fn wait_accepted(server: &Server, fds: usize, limit: Duration) -> Result<ProcessStats, String> {
    let start = Instant::now();
    let mut last = server.stats()?;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = server.stats()?;
        let settled = now.threads == last.threads && now.rss.abs_diff(last.rss) <= last.rss / 100;
        if now.open_fds >= fds && settled {
            return Ok(now);
        }
        if start.elapsed() > limit {
            return Err(format!(
                "the server holds {} of {fds} fds after {limit:?} (or its memory kept changing)",
                now.open_fds
            ));
        }
        last = now;
    }
}

/// Every model at every idle connection count, `rounds` times, alternating.
fn idle_sweep(o: &Opts) -> (Vec<IdleSample>, Option<String>) {
    let mut samples = Vec::new();
    let total = o.conns.len() * o.rounds * o.models.len();
    for &conns in &o.conns {
        for round in 1..=o.rounds {
            for model in &o.models {
                let serial = samples.len() + 1;
                match idle_once(o, model, conns, serial) {
                    Ok(s) => {
                        eprintln!(
                            "compare: [{serial}/{total}] {:<10} idle={conns:<6} round {round}: RSS {:.1} MiB \
                             (from {:.1}), {} threads",
                            model.name,
                            mib(s.rss),
                            mib(s.base_rss),
                            s.threads
                        );
                        samples.push(IdleSample { round, ..s });
                    }
                    Err(e) => {
                        return (
                            samples,
                            Some(format!("{} with {conns} idle connections: {e}", model.name)),
                        );
                    }
                }
            }
        }
    }
    (samples, None)
}

/// Bytes as MiB.
fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB
}

/// Least-squares line through `points`: `(slope, intercept)`, or `None` with
/// fewer than two distinct x.
fn fit(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| (sxy / sxx, my - sxy / sxx * mx))
}

/// A model's points for the fit: `(0, base)` and `(N, rss)` of every run.
fn idle_points(samples: &[IdleSample], model: &str) -> Vec<(f64, f64)> {
    (samples.iter().filter(|s| s.model == model))
        .flat_map(|s| [(0.0, s.base_rss as f64), (s.conns as f64, s.rss as f64)])
        .collect()
}

// ---------------------------------------------------------------------------
// Reports

/// The load table as aligned text.
fn text_table(rows: &[(String, usize, Metrics)]) -> String {
    let mut heads = vec!["model".to_string(), "conns".to_string()];
    heads.extend(COLUMNS.iter().map(|c| c.head.to_string()));
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|(model, conns, m)| cells(model, *conns, m))
        .collect();
    aligned(&heads, &body)
}

/// One row's cells.
fn cells(model: &str, conns: usize, m: &Metrics) -> Vec<String> {
    let mut row = vec![model.to_string(), conns.to_string()];
    row.extend(COLUMNS.iter().zip(m).map(|(c, v)| format!("{v:.*}", c.decimals)));
    row
}

/// Columns padded to their widest cell; the first left-aligned, the rest right.
fn aligned(heads: &[String], body: &[Vec<String>]) -> String {
    let width = |i: usize| {
        let cells = std::iter::once(&heads[i]).chain(body.iter().map(|r| &r[i]));
        cells.map(|c| c.chars().count()).max().unwrap_or(0)
    };
    let widths: Vec<usize> = (0..heads.len()).map(width).collect();
    let line = |row: &[String]| {
        let mut s = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = " ".repeat(widths[i] - cell.chars().count());
            let _ = if i == 0 {
                write!(s, "{cell}{pad}")
            } else {
                write!(s, "  {pad}{cell}")
            };
        }
        s + "\n"
    };
    std::iter::once(line(heads))
        .chain(body.iter().map(|r| line(r)))
        .collect()
}

/// A Markdown table.
fn markdown_table(heads: &[String], body: &[Vec<String>]) -> String {
    let mut s = format!("| {} |\n|", heads.join(" | "));
    s += &"---|".repeat(heads.len());
    s += "\n";
    for row in body {
        s += &format!("| {} |\n", row.join(" | "));
    }
    s
}

/// The settings and machine, for the top of a Markdown report.
fn settings(o: &Opts) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|info| {
        let line = info.lines().find(|l| l.starts_with("model name"))?.to_string();
        Some(line.split_once(':')?.1.trim().to_string())
    });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let pin = o.pin.as_ref().map_or("no".to_string(), |p| {
        format!("servers {:?}, loadgen {:?}", p.server, p.client)
    });
    let models: Vec<String> = o
        .models
        .iter()
        .map(|m| format!("`{}` = `{}`", m.name, m.command))
        .collect();
    format!(
        "Command: `{}`\n\nMachine: {} CPUs ({}), Linux {}; pinned: {pin}.\n\nModels: {}.\n\n\
         Settings: {} round(s), warmup {} s, window {} s, {} B messages, depth {}, {}, {{loops}} = {}.\n\n",
        o.command_line,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu.unwrap_or_else(|| "unknown CPU".into()),
        kernel.trim(),
        models.join(", "),
        o.rounds,
        o.warmup,
        o.duration,
        o.size,
        o.depth,
        o.rate.map_or("closed loop".to_string(), |r| format!(
            "fixed rate {r} msgs/s (latency from due time)"
        )),
        o.loops,
    )
}

/// Notes on runs where loadgen, not the server, may have been the bottleneck.
fn saturation_notes(rows: &[(String, usize, Metrics)]) -> String {
    let busy: Vec<String> = (rows.iter())
        .filter(|(_, _, m)| m[CLIENT_CPU] >= 90.0)
        .map(|(model, conns, m)| format!("{model} at {conns} ({:.0}%)", m[CLIENT_CPU]))
        .collect();
    if busy.is_empty() {
        return String::new();
    }
    format!(
        "Note: loadgen was at least 90% busy for {}: there it may be the bottleneck; \
         CPU per message and switches per message stay valid, msgs/s and latency less so.\n",
        busy.join(", ")
    )
}

/// Writes `compare.md`, `compare.csv` and `compare.svg` into `dir`.
fn write_load_reports(
    o: &Opts,
    dir: &Path,
    samples: &[Sample],
    rows: &[(String, usize, Metrics)],
) -> Result<(), String> {
    let mut heads = vec!["model".to_string(), "conns".to_string()];
    heads.extend(COLUMNS.iter().map(|c| c.head.to_string()));
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|(model, conns, m)| cells(model, *conns, m))
        .collect();
    let md = format!(
        "# Echo servers compared\n\n{}Medians over the rounds; CPU, switches, threads and RSS are the \
         server's, read from /proc by loadgen at the edges of its window.\n\n{}\n{}",
        settings(o),
        markdown_table(&heads, &body),
        saturation_notes(rows)
    );
    write(&dir.join("compare.md"), &md)?;

    let mut csv = String::from("model,conns,round");
    COLUMNS.iter().for_each(|c| csv += &format!(",{}", c.csv));
    csv += "\n";
    for s in samples {
        csv += &format!("{},{},{}", s.model, s.conns, s.round);
        s.m.iter().for_each(|v| csv += &format!(",{v}"));
        csv += "\n";
    }
    write(&dir.join("compare.csv"), &csv)?;

    let panels: Vec<(&str, Vec<Series>)> = (COLUMNS.iter().enumerate())
        .filter(|(_, c)| c.chart)
        .map(|(i, c)| (c.head, series(o, rows, i)))
        .collect();
    draw_chart(
        &dir.join("compare.svg"),
        "Echo servers: medians against connections",
        &panels,
        true,
    )
}

/// Writes a file, naming it in the error.
fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// One line of a chart: a model's name and its points.
type Series = (String, Vec<(f64, f64)>);

/// Per model, the points (connections, value of column `col`) of the medians.
fn series(o: &Opts, rows: &[(String, usize, Metrics)], col: usize) -> Vec<Series> {
    (o.models.iter())
        .map(|model| {
            let points = (rows.iter().filter(|r| r.0 == model.name))
                .map(|(_, conns, m)| (*conns as f64, m[col]))
                .filter(|p| p.1.is_finite())
                .collect();
            (model.name.clone(), points)
        })
        .collect()
}

/// Draws one panel per `(title, series)` in a grid of two rows.
fn draw_chart(path: &Path, title: &str, panels: &[(&str, Vec<Series>)], log_x: bool) -> Result<(), String> {
    let cols = panels.len().div_ceil(2).max(1);
    // Panels of 420 x 360 pixels; a lone panel gets more width.
    let size = if panels.len() > 1 {
        (420 * cols as u32, 720)
    } else {
        (720, 480)
    };
    let root = SVGBackend::new(path, size).into_drawing_area();
    let fail = |e: &dyn std::fmt::Display| format!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(|e| fail(&e))?;
    let rows = if panels.len() > 1 { 2 } else { 1 };
    for (area, (name, lines)) in root.split_evenly((rows, cols)).iter().zip(panels) {
        draw_panel(area, name, lines, log_x).map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))
}

/// One panel: value against connections, one line per model.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    name: &str,
    lines: &[Series],
    log_x: bool,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let points = lines.iter().flat_map(|(_, p)| p.iter());
    let (xmin, xmax, ymax) = points.fold((f64::MAX, 0f64, 0f64), |(a, b, c), p| {
        (a.min(p.0), b.max(p.0), c.max(p.1))
    });
    let (xmin, xmax) = if xmax > 0.0 {
        (xmin * 0.8, xmax * 1.25)
    } else {
        (1.0, 10.0)
    };
    let ymax = if ymax > 0.0 { ymax * 1.1 } else { 1.0 };
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(name, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(32)
        .y_label_area_size(56);
    let x_desc = "connections";
    if log_x {
        let mut chart = builder.build_cartesian_2d((xmin..xmax).log_scale(), 0.0..ymax)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .x_label_formatter(&short)
            .y_label_formatter(&short)
            .draw()?;
        draw_lines(&mut chart, lines)
    } else {
        let mut chart = builder.build_cartesian_2d(0.0..xmax, 0.0..ymax)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .x_label_formatter(&short)
            .y_label_formatter(&short)
            .draw()?;
        draw_lines(&mut chart, lines)
    }
}

/// An axis label: 1.5, 25, 120k, 1.2M.
fn short(v: &f64) -> String {
    match v.abs() {
        a if a >= 1e6 => format!("{:.1}M", v / 1e6),
        a if a >= 1e4 => format!("{:.0}k", v / 1e3),
        a if a >= 100.0 || a == 0.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}").trim_end_matches(".0").to_string(),
        _ => format!("{v:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string(),
    }
}

/// Line colours that stay apart on white (matplotlib's first six).
const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// The models' lines and their legend.
fn draw_lines<'a, DB, X>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    lines: &[Series],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
{
    for (i, (model, points)) in lines.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)).point_size(3))?
            .label(model.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
}

/// The idle sweep's results, ready to print and write.
struct IdleReport {
    /// Table headers.
    heads: Vec<String>,
    /// Table rows: medians per model and connection count.
    body: Vec<Vec<String>>,
    /// One line per model: its fitted RSS slope.
    slopes: String,
    /// Chart lines: RSS in MiB against connections, per model.
    lines: Vec<Series>,
}

/// Medians, slopes and chart lines of the idle samples.
fn idle_report(o: &Opts, samples: &[IdleSample]) -> IdleReport {
    let heads = [
        "model",
        "idle conns",
        "RSS MiB",
        "base MiB",
        "ΔRSS/conn KiB",
        "threads",
    ];
    let mut report = IdleReport {
        heads: heads.map(String::from).to_vec(),
        body: Vec::new(),
        slopes: String::new(),
        lines: Vec::new(),
    };
    for model in &o.models {
        let mut points = Vec::new();
        for &conns in &o.conns {
            let runs: Vec<&IdleSample> = (samples.iter())
                .filter(|s| s.model == model.name && s.conns == conns)
                .collect();
            if let Some(row) = idle_row(&model.name, conns, &runs) {
                points.push((conns as f64, row.1));
                report.body.push(row.0);
            }
        }
        report.slopes += &slope_line(&model.name, samples);
        report.lines.push((model.name.clone(), points));
    }
    report
}

/// One row of the idle table from the runs of one model and count, and the
/// median RSS in MiB; `None` without runs.
fn idle_row(model: &str, conns: usize, runs: &[&IdleSample]) -> Option<(Vec<String>, f64)> {
    if runs.is_empty() {
        return None;
    }
    let med = |f: fn(&IdleSample) -> f64| median(runs.iter().map(|s| f(s)).collect());
    let (rss, base) = (med(|s| s.rss as f64), med(|s| s.base_rss as f64));
    let row = vec![
        model.to_string(),
        conns.to_string(),
        format!("{:.1}", rss / MIB),
        format!("{:.1}", base / MIB),
        format!("{:.2}", (rss - base) / conns as f64 / 1024.0),
        format!("{:.0}", med(|s| s.threads as f64)),
    ];
    Some((row, rss / MIB))
}

/// Bytes in a MiB.
const MIB: f64 = 1024.0 * 1024.0;

/// A model's fitted RSS slope, as one line.
fn slope_line(model: &str, samples: &[IdleSample]) -> String {
    match fit(&idle_points(samples, model)) {
        Some((slope, intercept)) => format!(
            "{model}: {:.2} KiB per idle connection (RSS ≈ {:.1} MiB + N × slope)\n",
            slope / 1024.0,
            intercept / MIB
        ),
        None => format!("{model}: too few points for a slope\n"),
    }
}

/// Prints the idle table and slopes, and writes `idle.*` into `--out`.
fn report_idle(o: &Opts, samples: &[IdleSample]) -> Result<(), String> {
    let IdleReport {
        heads,
        body,
        slopes,
        lines,
    } = idle_report(o, samples);
    let table = aligned(&heads, &body);
    println!(
        "{table}\nRSS slope, least squares over (0, RSS before) and (N, RSS with N idle) of every run:\n{slopes}"
    );
    let Some(dir) = &o.out else { return Ok(()) };
    let md = format!(
        "# Resident memory per idle connection\n\n{}{}\nRSS slope per model (least squares over every run's \
         (0, RSS before connecting) and (N, RSS holding N)):\n\n{}",
        settings(o),
        markdown_table(&heads, &body),
        slopes.lines().map(|l| format!("- {l}\n")).collect::<String>()
    );
    write(&dir.join("idle.md"), &md)?;
    let mut csv = String::from("model,conns,round,base_rss_bytes,rss_bytes,threads\n");
    for s in samples {
        csv += &format!(
            "{},{},{},{},{},{}\n",
            s.model, s.conns, s.round, s.base_rss, s.rss, s.threads
        );
    }
    write(&dir.join("idle.csv"), &csv)?;
    draw_chart(
        &dir.join("idle.svg"),
        "Resident memory with N idle connections",
        &[("RSS MiB", lines)],
        false,
    )
}

// ---------------------------------------------------------------------------

fn main() {
    let o = parse_opts();
    if let Some(dir) = &o.out {
        if let Err(e) = std::fs::create_dir_all(dir) {
            usage!("cannot create --out {}: {e}", dir.display());
        }
    }
    let failure = if o.idle { run_idle(&o) } else { run_load(&o) };
    if let Some(e) = failure {
        eprintln!("compare: {e}");
        std::process::exit(1);
    }
}

/// The load sweep and its reports; the first error, if any.
fn run_load(o: &Opts) -> Option<String> {
    let (samples, failure) = sweep(o);
    let rows = medians(o, &samples);
    if !rows.is_empty() {
        println!("{}{}", text_table(&rows), saturation_notes(&rows));
    }
    let written = match &o.out {
        Some(dir) if !rows.is_empty() => write_load_reports(o, dir, &samples, &rows).err(),
        _ => None,
    };
    failure.or(written)
}

/// The idle sweep and its reports; the first error, if any.
fn run_idle(o: &Opts) -> Option<String> {
    let (samples, failure) = idle_sweep(o);
    let written = if samples.is_empty() {
        None
    } else {
        report_idle(o, &samples).err()
    };
    failure.or(written)
}
