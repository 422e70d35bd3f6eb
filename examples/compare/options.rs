//! The command line: flags and their defaults, the models they select, and
//! the checks that the run is possible (fd limit, CPUs, binaries). Any bad or
//! impossible argument, or one the chosen mode would ignore, exits with
//! status 2 and one line naming it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use evloop::sys;

use crate::cli::{self, Arg, Cli, Error, Parser};
use crate::tls::Pki;

/// This program's name and usage, printed by `--help`.
pub(crate) const CLI: Cli = Cli {
    name: "compare",
    usage: "\
usage: compare [--models M,M..] [--server NAME=COMMAND].. [--conns N,N..] [--rounds R]
               [--warmup SECS] [--duration SECS] [--size BYTES] [--depth D] [--rate MSGS_PER_S]
               [--loops N] [--pin SERVER_CPUS:CLIENT_CPUS] [--out DIR] [--bin-dir DIR]
       compare --idle [--models ..] [--server ..] [--conns ..] [--rounds R] [--loops N] [--pin ..] [--out DIR]
       (either with --tls)
       compare --redraw DIR

Echo servers side by side, each in its own process under loadgen: messages/s,
latency, CPU per message, context switches, memory, threads.

defaults: --models reactor,threads,tokio --conns 1,10,100,1000,5000 (idle: 1000,5000,10000)
          --rounds 3 --warmup 1 --duration 5 --size 64 --depth 1 --loops 1
models: reactor, threads, tokio, tokio-tls, mio, or any defined with --server, whose COMMAND
        may use {addr}, {port}, {loops}, {cert} and {key}, e.g.
        --server 'r2=echo_server --addr {addr} --threads 2'
--tls runs over TLS with a certificate made for the run (default models then
      reactor,threads,tokio-tls; echo_server models get --tls-cert/--tls-key);
--pin 0:1 runs servers on CPU 0 and loadgen on CPU 1 (lists like 0-3,6 work too);
--out DIR writes compare.md, compare.csv and compare.svg (idle.* with --idle);
--idle measures resident memory per idle connection instead of load;
--redraw DIR draws DIR's charts again from its compare.csv and idle.csv, running nothing.",
};

/// The built-in models: name and command template.
const BUILTIN: &[(&str, &str)] = &[
    (
        "reactor",
        "echo_server --addr {addr} --model reactor --threads {loops}",
    ),
    ("threads", "echo_server --addr {addr} --model threads"),
    ("tokio", "tokio_echo --addr {addr}"),
    (
        "tokio-tls",
        "tokio_tls_echo --addr {addr} --cert {cert} --key {key}",
    ),
    ("mio", "mio_echo --addr {addr}"),
];
/// Fds a process needs besides its connections (listener, poller, stdio, logs).
const FD_HEADROOM: u64 = 64;

/// Prints a message as one line and exits with status 2.
macro_rules! usage {
    ($($arg:tt)*) => {
        $crate::options::CLI.bad_args(format_args!($($arg)*))
    };
}
pub(crate) use usage;

/// A server to compare: a name and the command that starts it.
#[derive(Debug, Clone)]
pub(crate) struct Model {
    /// Its name in tables and charts.
    pub(crate) name: String,
    /// The command template, `{addr}`, `{port}` and `{loops}` not yet filled in.
    pub(crate) command: String,
}

/// CPUs for the servers and for the load generator.
#[derive(Debug, Clone)]
pub(crate) struct Pin {
    /// Where servers run.
    pub(crate) server: Vec<usize>,
    /// Where loadgen runs.
    pub(crate) client: Vec<usize>,
    /// This process's CPUs before pinning, restored after each spawn.
    pub(crate) all: Vec<usize>,
}

/// Command-line options, checked.
#[derive(Debug)]
pub(crate) struct Opts {
    /// The models to run, in order.
    pub(crate) models: Vec<Model>,
    /// Connection counts, ascending.
    pub(crate) conns: Vec<usize>,
    /// Rounds per model and connection count.
    pub(crate) rounds: usize,
    /// Seconds of load before each window.
    pub(crate) warmup: f64,
    /// Seconds of each measurement window.
    pub(crate) duration: f64,
    /// Bytes per message.
    pub(crate) size: usize,
    /// Messages in flight per connection.
    pub(crate) depth: usize,
    /// Fixed total rate for loadgen, if any.
    pub(crate) rate: Option<f64>,
    /// Event loops for `{loops}`.
    pub(crate) loops: usize,
    /// CPU pinning, if any.
    pub(crate) pin: Option<Pin>,
    /// Where to write the report files.
    pub(crate) out: Option<PathBuf>,
    /// Where the server and loadgen binaries are.
    pub(crate) bin_dir: PathBuf,
    /// Idle-memory mode instead of load.
    pub(crate) idle: bool,
    /// Redraw mode: the directory whose charts to draw again.
    pub(crate) redraw: Option<PathBuf>,
    /// `--tls`: the run's certificates.
    pub(crate) tls: Option<Pki>,
    /// The command line, for the report.
    pub(crate) command_line: String,
}

/// What the command line says before it is checked.
struct Raw {
    /// Every model known: built in, or defined with `--server`.
    defined: BTreeMap<String, String>,
    /// `--models` as given.
    selected: String,
    /// `--conns` as given.
    conns: Option<Vec<usize>>,
    /// `--pin` as given.
    pin: Option<String>,
    /// Options given, for refusing those the mode would ignore.
    given: Vec<String>,
}

/// The options that take a value.
const VALUED: &[&str] = &[
    "--models",
    "--server",
    "--conns",
    "--rounds",
    "--warmup",
    "--duration",
    "--size",
    "--depth",
    "--rate",
    "--loops",
    "--pin",
    "--out",
    "--bin-dir",
    "--redraw",
];

/// Options that only a load sweep uses.
const LOAD_ONLY: &[&str] = &["--warmup", "--duration", "--size", "--depth", "--rate"];

/// Parses and checks the command line; exits with status 2 on any error.
pub(crate) fn parse_opts() -> Opts {
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
        redraw: None,
        tls: None,
        command_line: std::env::args()
            .map(|a| shell_quote(&a))
            .collect::<Vec<_>>()
            .join(" "),
    };
    let raw = CLI.parse(|parser| read_args(parser, &mut o));
    check_mode(&o, &raw.given);
    if o.redraw.is_some() {
        return o;
    }
    if raw.given.iter().any(|g| g == "--tls") {
        o.tls = Some(Pki::make().unwrap_or_else(|e| CLI.fail(e)));
    }
    let selected = match raw.given.iter().any(|g| g == "--models") {
        false if o.tls.is_some() => "reactor,threads,tokio-tls",
        _ => &raw.selected,
    };
    o.models = select(&raw.defined, selected);
    check_tls(&mut o.models, o.tls.is_some());
    o.pin = raw.pin.map(|p| parse_pin(&p));
    o.conns = check_conns(raw.conns, o.idle);
    check_binaries(&o);
    o
}

/// Reads every argument into `o` or, where it needs checking against the
/// others, into the [`Raw`] returned.
fn read_args(parser: &mut Parser, o: &mut Opts) -> Result<Raw, Error> {
    let mut raw = Raw {
        defined: (BUILTIN.iter())
            .map(|(n, c)| (n.to_string(), c.to_string()))
            .collect(),
        selected: "reactor,threads,tokio".to_string(),
        conns: None,
        pin: None,
        given: Vec::new(),
    };
    while let Some(arg) = parser.next()? {
        let flag = match arg {
            Arg::Short('h') | Arg::Long("help") => CLI.help(),
            Arg::Long("idle") => {
                o.idle = true;
                raw.given.push("--idle".to_string());
                continue;
            }
            Arg::Long("tls") => {
                raw.given.push("--tls".to_string());
                continue;
            }
            Arg::Long(name) if VALUED.contains(&format!("--{name}").as_str()) => format!("--{name}"),
            _ => return Err(arg.unexpected()),
        };
        let value = cli::string(parser, &flag)?;
        set(o, &mut raw, &flag, value);
        raw.given.push(flag);
    }
    Ok(raw)
}

/// Sets what option `flag` says; a bad value exits with status 2.
fn set(o: &mut Opts, raw: &mut Raw, flag: &str, value: String) {
    match flag {
        "--models" => raw.selected = value,
        "--server" => define(&mut raw.defined, &value),
        "--conns" => raw.conns = Some(parse_list(flag, &value)),
        "--rounds" => o.rounds = parse_num(flag, &value, 1.0) as usize,
        "--warmup" => o.warmup = parse_num(flag, &value, 0.0),
        "--duration" => o.duration = parse_num(flag, &value, 0.01),
        "--size" => o.size = parse_num(flag, &value, 1.0) as usize,
        "--depth" => o.depth = parse_num(flag, &value, 1.0) as usize,
        "--rate" => o.rate = Some(parse_num(flag, &value, 1.0)),
        "--loops" => o.loops = parse_num(flag, &value, 1.0) as usize,
        "--pin" => raw.pin = Some(value),
        "--out" => o.out = Some(PathBuf::from(value)),
        "--bin-dir" => o.bin_dir = PathBuf::from(value),
        "--redraw" => o.redraw = Some(PathBuf::from(value)),
        _ => unreachable!("{flag} is in VALUED"),
    }
}

/// Exits with status 2 for options the chosen mode would ignore.
fn check_mode(o: &Opts, given: &[String]) {
    if o.redraw.is_some() {
        if let Some(flag) = given.iter().find(|g| *g != "--redraw") {
            usage!("{flag} does not apply to --redraw, which runs nothing");
        }
    } else if o.idle {
        if let Some(flag) = given.iter().find(|g| LOAD_ONLY.contains(&g.as_str())) {
            usage!("{flag} does not apply to --idle, which measures idle connections");
        }
    }
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
        if !["addr", "port", "loops", "cert", "key"].contains(&key) {
            usage!(
                "--server {name}: unknown placeholder {{{key}}} (known: {{addr}} {{port}} {{loops}} {{cert}} {{key}})"
            );
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

/// With `tls`, gives `echo_server` models the certificate and refuses
/// models that serve no TLS; without, refuses models that need `--tls`.
fn check_tls(models: &mut [Model], tls: bool) {
    for model in models {
        let serves_tls = model.command.contains("{cert}");
        let program = model.command.split_whitespace().next().unwrap_or_default();
        if tls && !serves_tls {
            if !program.ends_with("echo_server") {
                usage!(
                    "model {:?} serves no TLS: with --tls, give it {{cert}} and {{key}}",
                    model.name
                );
            }
            model.command += " --tls-cert {cert} --tls-key {key}";
        } else if !tls && serves_tls {
            usage!("model {:?} serves TLS ({{cert}}): add --tls", model.name);
        }
    }
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
pub(crate) fn resolve(program: &str, bin_dir: &Path) -> Option<PathBuf> {
    if program.contains('/') {
        return Path::new(program).is_file().then(|| PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::iter::once(bin_dir.to_path_buf())
        .chain(std::env::split_paths(&path))
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}
