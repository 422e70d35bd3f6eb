//! The load generator's HTTP mode: the request it sends, and the responses
//! it cuts out of a connection's input with `httparse`.

/// Most headers a response may carry; more is an error (a load generator
/// talks to servers that send a handful).
const MAX_HEADERS: usize = 64;
/// Most bytes an incomplete response head may take before it is an error,
/// so a server that never ends its head cannot grow the buffer forever.
pub const MAX_HEAD: usize = 64 * 1024;

/// `GET path HTTP/1.1` with a `Host` header and nothing else: keep-alive is
/// HTTP/1.1's default.
pub fn request(path: &str, host: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
}

/// One response found at the start of the input.
#[derive(Debug, PartialEq, Eq)]
pub struct Parsed {
    /// Its status code.
    pub status: u16,
    /// Its length in bytes, head and body.
    pub len: usize,
    /// Whether it is interim (1xx): it answers no request by itself.
    pub interim: bool,
    /// Whether it says `Connection: close`.
    pub close: bool,
}

/// Parses the response at the start of `buf`.
///
/// Returns `Ok(None)` while the head or the body is incomplete. The body is
/// framed by `Content-Length`; 1xx, 204 and 304 have none (we send only
/// `GET`, never `HEAD`).
///
/// # Errors
///
/// A malformed head, a head over [`MAX_HEAD`], a bad `Content-Length`, or a
/// body framed some other way (chunked, or until the close): with
/// keep-alive and pipelining none of these can be told apart from the next
/// response.
pub fn parse(buf: &[u8]) -> Result<Option<Parsed>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let head = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return Err(format!("response head over {MAX_HEAD} bytes"));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("malformed response: {e}")),
    };
    let status = resp.code.expect("a complete head has a status");
    let header = |name: &str| resp.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name));
    let close = header("connection").is_some_and(|h| h.value.eq_ignore_ascii_case(b"close"));
    let interim = (100..200).contains(&status);
    let body = if interim || status == 204 || status == 304 {
        0
    } else if header("transfer-encoding").is_some() {
        return Err(format!("status {status}: Transfer-Encoding is not supported"));
    } else {
        let h = header("content-length").ok_or_else(|| format!("status {status}: no Content-Length"))?;
        (std::str::from_utf8(h.value)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok()))
        .ok_or_else(|| format!("status {status}: bad Content-Length {:?}", h.value))?
    };
    Ok((buf.len() - head >= body).then_some(Parsed {
        status,
        len: head + body,
        interim,
        close,
    }))
}
