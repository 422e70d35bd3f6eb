//! One HTTP GET with `evloop::http::get`: the client side of the reactor,
//! an outbound connection driven by the same `Handler` and `Conn` a server
//! uses, on a loop that lives only for the call.
//!
//! Start a server first, in one terminal:
//!
//! ```text
//! cargo run --release --example hello_http
//! ```
//!
//! then, in another:
//!
//! ```text
//! cargo run --example http_get -- http://127.0.0.1:3000/
//! ```
//!
//! It prints the status line, the headers and the body (decoded if it came
//! chunked). `--timeout SECS` bounds the whole exchange (default 5).
//! `--help` prints the usage; bad arguments (no URL, say) exit with status 2,
//! a failed fetch with status 1 and one line naming the URL and what went
//! wrong. Limits: `http://` only, a 16 MiB body limit; redirects are shown,
//! not followed.

#[path = "common/cli.rs"]
mod cli;

use std::time::Duration;

use crate::cli::{Arg, Cli, Error, Parser, ValueExt, bad};

/// This program's name and usage.
const CLI: Cli = Cli {
    name: "http_get",
    usage: "\
usage: http_get [--timeout SECS] URL

Fetches URL (http:// only) with one GET and prints the status line, the
headers and the body.

options:
  --timeout SECS   time limit for the whole exchange (default 5)
  -h, --help       print this help

Example: http_get http://127.0.0.1:3000/   (with hello_http running)",
};

fn main() {
    let (url, timeout) = CLI.parse(parse_args);
    CLI.or_fail(fetch(&url, timeout));
}

/// Fetches `url` and prints the response.
#[cfg(feature = "http")]
fn fetch(url: &str, timeout: Duration) -> Result<(), String> {
    let response = evloop::http::get(url, timeout).map_err(|e| format!("GET {url}: {e}"))?;
    println!("{} {}", response.status(), response.reason());
    for (name, value) in response.headers() {
        println!("{name}: {}", String::from_utf8_lossy(value));
    }
    println!();
    println!("{}", String::from_utf8_lossy(response.body()));
    Ok(())
}

/// Without the `http` feature there is no client.
#[cfg(not(feature = "http"))]
fn fetch(url: &str, timeout: Duration) -> Result<(), String> {
    let _ = timeout;
    Err(format!(
        "cannot fetch {url}: this example needs the `http` feature (on by default)"
    ))
}

/// Reads the URL and `--timeout`.
fn parse_args(parser: &mut Parser) -> Result<(String, Duration), Error> {
    let (mut url, mut timeout) = (None, Duration::from_secs(5));
    while let Some(arg) = parser.next()? {
        match arg {
            Arg::Short('h') | Arg::Long("help") => CLI.help(),
            Arg::Long("timeout") => {
                let secs: f64 = cli::value(parser, "--timeout", "seconds, such as 5 or 0.5")?;
                timeout = Duration::try_from_secs_f64(secs)
                    .ok()
                    .filter(|t| !t.is_zero())
                    .ok_or_else(|| bad(format!("bad --timeout {secs}: expected seconds above 0")))?;
            }
            Arg::Value(value) if url.is_none() => url = Some(value.string()?),
            _ => return Err(arg.unexpected()),
        }
    }
    let url = url.ok_or_else(|| bad("a URL is needed, such as http://127.0.0.1:3000/"))?;
    let scheme = url.get(..7).unwrap_or_default();
    if !scheme.eq_ignore_ascii_case("http://") {
        return Err(bad(format!("bad URL {url:?}: only http:// URLs are supported")));
    }
    Ok((url, timeout))
}
