//! [`Target`]: an `http://` or `https://` URL split for the client, its
//! address resolved and its request written.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use bytes::Bytes;

/// A parsed `http://` or `https://` URL.
#[derive(Debug)]
pub(crate) struct Target {
    /// The scheme is `https`.
    pub(crate) https: bool,
    /// `host[:port]` as written, for the `Host` header.
    authority: String,
    /// Path and query, at least `/`.
    path: String,
}

impl Target {
    /// Splits `url` into authority and path.
    pub(crate) fn parse(url: &str) -> io::Result<Target> {
        let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("{why}: {url:?}"));
        let scheme = |s: &str| {
            url.get(..s.len())
                .filter(|p| p.eq_ignore_ascii_case(s))
                .map(|_| &url[s.len()..])
        };
        let (https, rest) = match (scheme("http://"), scheme("https://")) {
            (Some(rest), _) => (false, rest),
            (_, Some(rest)) => (true, rest),
            _ => return Err(bad("only http:// and https:// URLs are supported")),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let (authority, path) = rest.find(['/', '?']).map_or((rest, ""), |i| rest.split_at(i));
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("the URL needs a host (and no user info)"));
        }
        if url
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(bad("the URL holds whitespace or control characters"));
        }
        let path = match path.strip_prefix('?') {
            Some(_) => format!("/{path}"),
            None if path.is_empty() => "/".to_owned(),
            None => path.to_owned(),
        };
        Ok(Target {
            https,
            authority: authority.to_owned(),
            path,
        })
    }

    /// Where the port starts in the authority: a ':' after any ']' of an
    /// IPv6 literal.
    pub(crate) fn port_colon(&self) -> Option<usize> {
        self.authority
            .rfind(':')
            .filter(|&i| !self.authority[i..].contains(']'))
    }

    /// The host without port or IPv6 brackets, as a TLS server name.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) fn host(&self) -> &str {
        let host = &self.authority[..self.port_colon().unwrap_or(self.authority.len())];
        host.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
    }

    /// The first address the host resolves to, port 80 (443 for
    /// `https://`) unless given.
    pub(crate) fn resolve(&self) -> io::Result<SocketAddr> {
        let host_port = match self.port_colon() {
            Some(_) => self.authority.clone(),
            None => format!("{}:{}", self.authority, if self.https { 443 } else { 80 }),
        };
        // The resolver's own message names neither the host nor the port.
        let failed = |why: &dyn std::fmt::Display| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot resolve {host_port}: {why}"),
            )
        };
        let mut addrs = host_port.to_socket_addrs().map_err(|e| failed(&e))?;
        addrs.next().ok_or_else(|| failed(&"no address"))
    }

    /// The request's bytes: `method`, this target, the fixed headers,
    /// `headers`, and `body` with its length.
    pub(crate) fn request(&self, method: &str, headers: &[(String, String)], body: &Bytes) -> Bytes {
        let mut out = format!(
            "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: evloop\r\nAccept: */*\r\nConnection: close\r\n",
            self.path, self.authority
        );
        for (name, value) in headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
            out.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(body);
        bytes.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_splits_into_authority_and_path() {
        let t = Target::parse("http://127.0.0.1:3000/a/b?c=d#frag").unwrap();
        assert_eq!(
            (t.authority.as_str(), t.path.as_str()),
            ("127.0.0.1:3000", "/a/b?c=d")
        );
        let t = Target::parse("HTTP://example.com?q").unwrap();
        assert_eq!((t.authority.as_str(), t.path.as_str()), ("example.com", "/?q"));
        assert_eq!(Target::parse("http://[::1]").unwrap().path, "/");
    }

    #[test]
    fn other_schemes_and_hostless_urls_are_invalid_input() {
        for url in [
            "ftp://x",
            "https:///path",
            "http:///path",
            "http://u@x/",
            "x",
            "http://x/a b",
        ] {
            let err = Target::parse(url).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{url}");
        }
    }

    #[test]
    fn https_urls_default_to_443_and_name_their_host() {
        let t = Target::parse("HTTPS://[::1]/x").unwrap();
        assert!(t.https);
        assert_eq!((t.host(), t.resolve().unwrap().port()), ("::1", 443));
        let t = Target::parse("https://localhost:3443").unwrap();
        assert_eq!((t.host(), t.resolve().unwrap().port()), ("localhost", 3443));
    }

    #[test]
    fn port_defaults_to_80_and_ipv6_literals_resolve() {
        let t = Target::parse("http://[::1]/").unwrap();
        assert_eq!(t.resolve().unwrap(), "[::1]:80".parse().unwrap());
        let t = Target::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(t.resolve().unwrap().port(), 8080);
    }

    #[test]
    fn a_host_that_does_not_resolve_is_invalid_input_naming_it() {
        for (url, named) in [
            ("http://127.0.0.1:99999/", "127.0.0.1:99999"),
            ("http://no-such-host.invalid/", "no-such-host.invalid:80"),
        ] {
            let err = Target::parse(url).unwrap().resolve().unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{url}: {err}");
            assert!(
                err.to_string().starts_with(&format!("cannot resolve {named}: ")),
                "{err}"
            );
        }
    }
}
