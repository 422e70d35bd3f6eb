//! Reading HTTP/1.1 responses off a blocking client socket, for the tests
//! of `evloop::http`.

use std::io::BufRead;

/// One response as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// E.g. `HTTP/1.1 200 OK`.
    pub status: String,
    /// Header lines, lower-cased names.
    pub headers: Vec<(String, String)>,
    /// The body (by `Content-Length`, or none for `HEAD`).
    pub body: String,
}

impl Reply {
    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response; `head_only` for a reply to `HEAD`.
#[track_caller]
pub fn read_reply(reader: &mut impl BufRead, head_only: bool) -> Reply {
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("a header line");
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut reply = Reply {
        status: status.trim_end().to_owned(),
        headers,
        body: String::new(),
    };
    let len: usize = reply.header("content-length").map_or(0, |v| v.parse().unwrap());
    if !head_only {
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        reply.body = String::from_utf8(body).unwrap();
    }
    reply
}
