//! The request line beyond what `httparse` checks: the four forms of a
//! request target (RFC 9112 §3.2), `Host` values (RFC 9110 §7.2), and
//! versions that `httparse` refuses but HTTP asks a server to handle
//! (RFC 9110 §2.5: a higher minor version is served as the highest one
//! known; another major version gets 505).

/// Where the path starts in an accepted request target.
///
/// * origin-form `/path?query` — at 0;
/// * absolute-form `http://authority/path?query` — after the authority
///   (the path may then be empty, which means `/`);
/// * asterisk-form `*` (only with `OPTIONS`) — at 0, the path being `*`.
///
/// # Errors
///
/// The status refusing the target: 400 for a target of no known form, an
/// asterisk-form with another method than `OPTIONS`, an authority-form
/// (`host:port`) with another method than `CONNECT`, or an origin- or
/// absolute-form `CONNECT`; 501 for a well-formed `CONNECT`, since this
/// server opens no tunnels.
#[inline]
pub(crate) fn path_start(method: &[u8], target: &[u8]) -> Result<usize, u16> {
    if target.first() == Some(&b'/') && method != b"CONNECT" {
        return Ok(0);
    }
    other_path_start(method, target)
}

/// [`path_start`] for a target not in origin form, or a `CONNECT`.
#[inline(never)]
fn other_path_start(method: &[u8], target: &[u8]) -> Result<usize, u16> {
    let connect = method == b"CONNECT";
    // Parsers let only ASCII through; anything else is no known form.
    let (Ok(method), Ok(target)) = (std::str::from_utf8(method), std::str::from_utf8(target)) else {
        return Err(400);
    };
    if target == "*" {
        return if method == "OPTIONS" { Ok(0) } else { Err(400) };
    }
    if let Some(after_scheme) = absolute_authority_start(target) {
        let rest = &target[after_scheme..];
        let len = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..len];
        return if !connect && !authority.is_empty() && valid_host(authority.as_bytes()) {
            Ok(after_scheme + len)
        } else {
            Err(400)
        };
    }
    let authority_form =
        valid_host(target.as_bytes()) && target.rfind(':').is_some_and(|i| i + 1 < target.len());
    match (connect, authority_form) {
        (true, true) => Err(501),
        _ => Err(400),
    }
}

/// Where the authority starts in an `http://` or `https://` target.
fn absolute_authority_start(target: &str) -> Option<usize> {
    let scheme_end = target.find("://")?;
    let scheme = &target[..scheme_end];
    (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")).then_some(scheme_end + 3)
}

/// The authority of an absolute-form target, if `target` is one.
pub(crate) fn authority(target: &str, path_start: usize) -> Option<&str> {
    let start = absolute_authority_start(target)?;
    target.get(start..path_start)
}

/// True for a valid `Host` value: `uri-host [ ":" port ]` (RFC 9110 §7.2),
/// empty included (a target without authority). The host is an IP literal
/// in brackets, or characters of a registered name or IPv4 address.
pub(crate) fn valid_host(value: &[u8]) -> bool {
    if value.first() == Some(&b'[') {
        let Some(end) = value.iter().position(|&b| b == b']') else {
            return false;
        };
        let literal = &value[1..end];
        if literal.is_empty() || !literal.iter().all(|&b| name_char(b) || b == b':') {
            return false;
        }
        let mut bytes = value[end + 1..].iter();
        return match bytes.next() {
            None => true,
            Some(b':') => bytes.all(u8::is_ascii_digit),
            Some(_) => false,
        };
    }
    // Every request has one: the port (after the last colon) is checked
    // from the end, the name without a branch per byte.
    let (name, port) = match value.iter().rposition(|&b| b == b':') {
        Some(colon) => (&value[..colon], &value[colon + 1..]),
        None => (value, &[][..]),
    };
    port.iter().all(u8::is_ascii_digit) && name.iter().fold(true, |ok, &b| ok & name_char(b))
}

/// A character of a registered name: unreserved, sub-delims, or `%` of a
/// percent-encoding (RFC 3986 §3.2.2).
#[inline]
fn name_char(b: u8) -> bool {
    NAME_CHARS[usize::from(b)]
}

/// [`name_char`] as a table: every request's `Host` is checked, and a
/// lookup per byte costs less than comparing with each punctuation mark.
static NAME_CHARS: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric();
        b += 1;
    }
    let marks = b"-._~!$&'()*+,;=%";
    let mut i = 0;
    while i < marks.len() {
        table[marks[i] as usize] = true;
        i += 1;
    }
    table
};

/// After `httparse` refused a request line's version: makes an HTTP/1.x
/// version with a minor number above 1 read as HTTP/1.1, in place, so the
/// line can be parsed again.
///
/// # Errors
///
/// 505 for another major version (`HTTP/2.0`, `HTTP/0.9`); 400 for a
/// version that is not `HTTP/DIGIT.DIGIT`.
pub(crate) fn lower_minor_version(head: &mut [u8]) -> Result<(), u16> {
    let line_end = head
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(head.len());
    let line = &mut head[..line_end];
    let start = line.iter().rposition(|&b| b == b' ').map_or(0, |i| i + 1);
    match &mut line[start..] {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            if *major != b'1' {
                return Err(505);
            }
            *minor = b'1';
            Ok(())
        }
        _ => Err(400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_target_form_is_recognised_with_its_method() {
        assert_eq!(path_start(b"GET", b"/a?b"), Ok(0));
        assert_eq!(path_start(b"GET", b"http://example.com:80/a?b"), Ok(21));
        assert_eq!(path_start(b"GET", b"HTTP://h"), Ok(8));
        assert_eq!(path_start(b"GET", b"https://h?q"), Ok(9));
        assert_eq!(path_start(b"OPTIONS", b"*"), Ok(0));
        assert_eq!(path_start(b"GET", b"*"), Err(400));
        assert_eq!(path_start(b"CONNECT", b"example.com:443"), Err(501));
        assert_eq!(path_start(b"GET", b"example.com:443"), Err(400));
        assert_eq!(path_start(b"CONNECT", b"/"), Err(400));
        assert_eq!(path_start(b"GET", b"ftp://h/"), Err(400));
        assert_eq!(path_start(b"GET", b"http:///nohost"), Err(400));
        assert_eq!(path_start(b"GET", b"http://user@h/"), Err(400));
        assert_eq!(path_start(b"GET", b"index.html"), Err(400));
        assert_eq!(authority("http://h:1/x", 10), Some("h:1"));
    }

    #[test]
    fn host_values_are_a_host_and_an_optional_port() {
        for good in [
            "",
            "example.com",
            "example.com:8080",
            "127.0.0.1",
            "[::1]:80",
            "[fe80::1]",
            "a-b_c~d",
        ] {
            assert!(valid_host(good.as_bytes()), "{good:?}");
        }
        for bad in ["a b", "a/b", "a@b", "h:8o", "h:1:2", "[::1", "[]", "h?", "h\0"] {
            assert!(!valid_host(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn a_higher_minor_version_becomes_1_1_and_another_major_505() {
        let mut line = *b"GET / HTTP/1.7\r\nHost: h\r\n\r\n";
        assert_eq!(lower_minor_version(&mut line), Ok(()));
        assert!(line.starts_with(b"GET / HTTP/1.1\r\n"));
        assert_eq!(lower_minor_version(&mut b"GET / HTTP/2.0\r\n".to_vec()), Err(505));
        assert_eq!(lower_minor_version(&mut b"GET / HTTP/0.9\r\n".to_vec()), Err(505));
        assert_eq!(lower_minor_version(&mut b"GET / HTTP/1.2".to_vec()), Ok(()));
        assert_eq!(
            lower_minor_version(&mut b"GET / HTTP/10.0\r\n".to_vec()),
            Err(400)
        );
        assert_eq!(
            lower_minor_version(&mut b"GET / HTTPS/1.1\r\n".to_vec()),
            Err(400)
        );
    }
}
