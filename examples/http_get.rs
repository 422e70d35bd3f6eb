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
//! chunked). Limits: `http://` only, a 5 s time limit and a 16 MiB body
//! limit; redirects are shown, not followed.

#[cfg(feature = "http")]
fn main() -> std::io::Result<()> {
    use std::time::Duration;

    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:3000/".to_owned());
    let response = evloop::http::get(&url, Duration::from_secs(5))?;
    println!("{} {}", response.status(), response.reason());
    for (name, value) in response.headers() {
        println!("{name}: {}", String::from_utf8_lossy(value));
    }
    println!();
    println!("{}", String::from_utf8_lossy(response.body()));
    Ok(())
}

#[cfg(not(feature = "http"))]
fn main() {
    eprintln!("this example needs the `http` feature");
}
