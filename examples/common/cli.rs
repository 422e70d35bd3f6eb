//! The command-line conventions every example follows, on `lexopt`.
//!
//! * `-h` or `--help` prints the usage on stdout and exits with status 0.
//! * A bad argument — unknown, misplaced, missing its value, out of range, or
//!   an option that does not apply to what the other options chose — prints
//!   one line on stderr naming it, and exits with status 2.
//! * A failure once running prints one sentence naming what failed (the
//!   address, the host, the file) and exits with status 1.
//!
//! Included by each example with `#[path = "common/cli.rs"] mod cli;`, as
//! examples cannot share a library of their own.

#![allow(dead_code)] // each example uses a different subset

use std::fmt::Display;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;

pub use lexopt::{Arg, Error, Parser, ValueExt};

/// One example's name and usage text.
pub struct Cli {
    /// The program's name, first on every message.
    pub name: &'static str,
    /// What `--help` prints.
    pub usage: &'static str,
}

impl Cli {
    /// Parses the command line with `parse`; a bad argument exits with
    /// status 2, naming it.
    pub fn parse<T>(&self, parse: impl FnOnce(&mut Parser) -> Result<T, Error>) -> T {
        let mut parser = Parser::from_env();
        parse(&mut parser).unwrap_or_else(|e| self.bad_args(describe(&e)))
    }

    /// Prints the usage on stdout and exits with status 0.
    pub fn help(&self) -> ! {
        // Not println!: a reader that stops early (`| head`) is no reason to panic.
        let _ = writeln!(std::io::stdout(), "{}", self.usage.trim_end());
        std::process::exit(0)
    }

    /// Prints `msg` as one line on stderr and exits with status 2.
    pub fn bad_args(&self, msg: impl Display) -> ! {
        eprintln!("{}: {msg} (see {} --help)", self.name, self.name);
        std::process::exit(2)
    }

    /// Prints `msg` as one line on stderr and exits with status 1.
    pub fn fail(&self, msg: impl Display) -> ! {
        eprintln!("{}: {msg}", self.name);
        std::process::exit(1)
    }

    /// Parses a command line of `--addr HOST:PORT` alone (and `--help`),
    /// `default` when it is not given.
    pub fn addr_only(&self, parser: &mut Parser, default: SocketAddr) -> Result<SocketAddr, Error> {
        let mut at = default;
        while let Some(arg) = parser.next()? {
            match arg {
                Arg::Short('h') | Arg::Long("help") => self.help(),
                Arg::Long("addr") => at = addr(parser, "--addr")?,
                _ => return Err(arg.unexpected()),
            }
        }
        Ok(at)
    }

    /// The value of `result`, or exits with status 1 printing its error.
    pub fn or_fail<T>(&self, result: Result<T, impl Display>) -> T {
        result.unwrap_or_else(|e| self.fail(e))
    }
}

/// A lexopt error in the examples' own words.
fn describe(err: &Error) -> String {
    match err {
        Error::UnexpectedOption(option) => format!("unknown option {option}"),
        Error::UnexpectedArgument(arg) => format!("unexpected argument {arg:?}"),
        Error::MissingValue { option: Some(option) } => format!("{option} needs a value"),
        Error::UnexpectedValue { option, value } => {
            format!("{option} takes no value, got {value:?}")
        }
        other => other.to_string(),
    }
}

/// An argument error with this message.
pub fn bad(msg: impl Into<String>) -> Error {
    Error::Custom(msg.into().into())
}

/// The value of option `flag`, as a string.
pub fn string(parser: &mut Parser, flag: &str) -> Result<String, Error> {
    parser
        .value()?
        .into_string()
        .map_err(|v| bad(format!("{flag} {v:?} is not valid UTF-8")))
}

/// The value of option `flag` parsed as a `T`; on failure the error names
/// the option, the value and what was `expected`.
pub fn value<T: FromStr>(parser: &mut Parser, flag: &str, expected: &str) -> Result<T, Error> {
    let text = string(parser, flag)?;
    text.parse()
        .map_err(|_| bad(format!("bad {flag} {text:?}: expected {expected}")))
}

/// A count of at least 1 for option `flag`.
pub fn count(parser: &mut Parser, flag: &str) -> Result<usize, Error> {
    match value(parser, flag, "a whole number of at least 1")? {
        0 => Err(bad(format!(
            "bad {flag} 0: expected a whole number of at least 1"
        ))),
        n => Ok(n),
    }
}

/// A `HOST:PORT` for option `flag`, resolved to its first address.
pub fn addr(parser: &mut Parser, flag: &str) -> Result<SocketAddr, Error> {
    resolve(flag, &string(parser, flag)?)
}

/// `text`, the `HOST:PORT` given to option `flag`, resolved to its first address.
pub fn resolve(flag: &str, text: &str) -> Result<SocketAddr, Error> {
    match text.to_socket_addrs().map(|mut addrs| addrs.next()) {
        Ok(Some(addr)) => Ok(addr),
        Ok(None) => Err(bad(format!("bad {flag} {text:?}: it resolves to no address"))),
        Err(e) => Err(bad(format!(
            "bad {flag} {text:?}: {e}; expected HOST:PORT such as 127.0.0.1:7000"
        ))),
    }
}

/// One of `choices` for option `flag`: the value paired with the name given.
pub fn choice<T: Copy>(parser: &mut Parser, flag: &str, choices: &[(&str, T)]) -> Result<T, Error> {
    let text = string(parser, flag)?;
    if let Some((_, v)) = choices.iter().find(|(name, _)| *name == text) {
        return Ok(*v);
    }
    let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
    Err(bad(format!("bad {flag} {text:?}: expected {}", one_of(&names))))
}

/// `a`, `a or b`, `a, b or c`.
pub fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Sets up `env_logger` at `info` unless `RUST_LOG` says otherwise.
pub fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
}
