//! What the server itself reads from a request's headers while they are
//! recorded — how the body is framed, `Expect`, `Connection` — and the
//! decision those make: a body of known length, a chunked body, or a
//! refusal with its status (RFC 9112 §6). [`HttpConfig`](super::HttpConfig)
//! gives the limits.

use super::Version;
use super::discard::Rest;
use super::target::valid_host;

/// How a request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// Exactly this many bytes follow the head (`Content-Length`, or 0).
    Length(u64),
    /// The chunked transfer coding.
    Chunked,
}

/// Why a request is refused, and what may follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The status to answer with.
    pub(crate) status: u16,
    /// What the client may still send after the head.
    pub(crate) rest: Rest,
}

impl Refusal {
    /// A refusal with `status` and nothing more to read.
    pub(crate) const fn bare(status: u16) -> Self {
        Refusal {
            status,
            rest: Rest::Nothing,
        }
    }
}

/// The headers the server acts on, gathered in one pass.
#[derive(Debug, Default)]
pub(crate) struct Framing<'a> {
    /// Transfer codings listed, in order, over every `Transfer-Encoding`.
    codings: Codings,
    /// The `Content-Length`, if any.
    length: Option<u64>,
    /// A `Content-Length` was malformed, or two disagreed.
    bad_length: bool,
    /// An `Expect: 100-continue` header was present.
    pub(crate) expects_continue: bool,
    /// A `Connection` header listed `close`.
    close: bool,
    /// A `Connection` header listed `keep-alive`.
    keep_alive: bool,
    /// `Host` headers seen.
    hosts: u32,
    /// The value of the last `Host` seen (checked by [`Framing::host`]:
    /// with more than one the request is refused anyway).
    host: &'a [u8],
}

/// The transfer codings of a request, as far as the decision needs them.
#[derive(Debug, Default, Clone, Copy)]
struct Codings {
    /// A `Transfer-Encoding` header was present.
    present: bool,
    /// Times `chunked` was listed.
    chunked: u32,
    /// A coding other than `chunked` was listed (this server decodes none).
    other: bool,
    /// The last coding listed was `chunked`.
    chunked_last: bool,
}

impl<'a> Framing<'a> {
    /// Takes note of one header (`name` a token, as parsers check).
    #[inline]
    pub(crate) fn see(&mut self, name: &[u8], value: &'a [u8]) {
        // The length comparison turns most headers away at once.
        match name.len() {
            4 if is(name, b"host") => {
                self.hosts += 1;
                self.host = value;
            }
            6 if is(name, b"expect") => {
                self.expects_continue |= value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
            }
            10 if is(name, b"connection") => {
                for token in list(value) {
                    self.close |= token.eq_ignore_ascii_case(b"close");
                    self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            14 if is(name, b"content-length") => {
                let this = parse_length(value);
                self.bad_length |= this.is_none() || self.length.is_some_and(|that| Some(that) != this);
                self.length = this;
            }
            17 if is(name, b"transfer-encoding") => {
                self.codings.present = true;
                for coding in list(value) {
                    let chunked = coding.eq_ignore_ascii_case(b"chunked");
                    self.codings.chunked += u32::from(chunked);
                    self.codings.other |= !chunked;
                    self.codings.chunked_last = chunked;
                }
            }
            _ => {}
        }
    }

    /// How the body is framed, or why the request is refused (RFC 9112
    /// §6.1 and §6.3):
    ///
    /// * `Transfer-Encoding` with `Content-Length`: 400, and the body's end
    ///   is unknown (a request smuggling attempt, or a broken client);
    /// * `Transfer-Encoding` in an HTTP/1.0 request: 400 (faulty framing);
    /// * a coding other than `chunked`: 501, since this server decodes none;
    /// * `chunked` twice, or an empty `Transfer-Encoding`: 400;
    /// * a malformed or conflicting `Content-Length`: 400;
    /// * a `Content-Length` over `max_body` ([`HttpConfig::max_body`], or
    ///   none for a body that may stream): 413.
    pub(crate) fn body(&self, version: Version, max_body: u64) -> Result<BodyKind, Refusal> {
        let unknown = |status| Refusal {
            status,
            rest: Rest::Unknown,
        };
        let codings = self.codings;
        if codings.present {
            return match () {
                _ if self.length.is_some() || self.bad_length => Err(unknown(400)),
                _ if version == Version::Http10 => Err(unknown(400)),
                _ if codings.other => Err(unknown(501)),
                _ if codings.chunked == 1 && codings.chunked_last => Ok(BodyKind::Chunked),
                _ => Err(unknown(400)),
            };
        }
        if self.bad_length {
            return Err(unknown(400));
        }
        match self.length.unwrap_or(0) {
            len if len > max_body => Err(Refusal {
                status: 413,
                rest: Rest::Length(len),
            }),
            len => Ok(BodyKind::Length(len)),
        }
    }

    /// Checks the `Host` rules of RFC 9112 §3.2: an HTTP/1.1 request has
    /// exactly one `Host`, an HTTP/1.0 one at most one, and its value is
    /// valid as `valid` says (see [`KnownHost`]).
    ///
    /// # Errors
    ///
    /// 400 otherwise.
    pub(crate) fn host(&self, version: Version, valid: &mut KnownHost) -> Result<(), u16> {
        match (self.hosts, version) {
            (0, Version::Http11) => Err(400),
            (0, Version::Http10) => Ok(()),
            (1, _) if valid.check(self.host) => Ok(()),
            _ => Err(400),
        }
    }

    /// Whether the client wants the connection kept open: HTTP/1.1 unless
    /// `Connection` lists `close`; HTTP/1.0 only if it lists `keep-alive`.
    pub(crate) fn keep_alive(&self, version: Version) -> bool {
        match version {
            Version::Http11 => !self.close,
            Version::Http10 => self.keep_alive && !self.close,
        }
    }
}

/// Longest `Host` value [`KnownHost`] remembers.
const KNOWN_HOST_MAX: usize = 64;

/// The last `Host` value found valid on a connection: a client sends the
/// same one with each request, and comparing it costs less than checking
/// it again.
#[derive(Debug)]
pub(crate) struct KnownHost {
    /// The value's bytes, then unused room.
    bytes: [u8; KNOWN_HOST_MAX],
    /// The value's length (0, the empty value, which is valid, at first).
    len: usize,
}

impl Default for KnownHost {
    fn default() -> Self {
        KnownHost {
            bytes: [0; KNOWN_HOST_MAX],
            len: 0,
        }
    }
}

impl KnownHost {
    /// Whether `value` is a valid `Host` value (see [`valid_host`]); a
    /// valid one is remembered.
    #[inline]
    pub(crate) fn check(&mut self, value: &[u8]) -> bool {
        if value == &self.bytes[..self.len] {
            return true;
        }
        let valid = valid_host(value);
        if valid && value.len() <= KNOWN_HOST_MAX {
            self.bytes[..value.len()].copy_from_slice(value);
            self.len = value.len();
        }
        valid
    }
}

/// True if the token `name` is `lower`, a lower-case name of letters and
/// `-`, ignoring ASCII case. Setting the `0x20` bit lower-cases a letter
/// and leaves `-`; no other token character becomes a letter or `-` by
/// it, so one OR and one comparison per byte, without branches, decide.
#[inline(always)]
fn is<const N: usize>(name: &[u8], lower: &[u8; N]) -> bool {
    name.len() == N
        && name
            .iter()
            .zip(lower)
            .fold(0, |diff, (a, b)| diff | ((a | 0x20) ^ b))
            == 0
}

/// The elements of a comma-separated header list, trimmed, empty ones
/// skipped (RFC 9110 §5.6.1).
fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|element| !element.is_empty())
}

/// A `Content-Length` value: ASCII digits only, no sign, no overflow.
fn parse_length(value: &[u8]) -> Option<u64> {
    let value = value.trim_ascii();
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The framing decision for `headers` in a request of `version`.
    fn decide(version: Version, headers: &[(&str, &str)]) -> Result<BodyKind, Refusal> {
        let mut framing = Framing::default();
        for (name, value) in headers {
            framing.see(name.as_bytes(), value.as_bytes());
        }
        framing.body(version, 100)
    }

    fn status(result: Result<BodyKind, Refusal>) -> u16 {
        result.map_or_else(|refusal| refusal.status, |_| 200)
    }

    #[test]
    fn header_names_match_ignoring_case_only() {
        assert!(is(b"HoSt", b"host"));
        assert!(is(b"Content-Length", b"content-length"));
        assert!(!is(b"hosts", b"host"));
        assert!(!is(b"ho^t", b"host"));
        assert!(!is(b"Content_Length", b"content-length"));
    }

    #[test]
    fn host_is_required_once_in_1_1_and_checked_or_known() {
        let mut known = KnownHost::default();
        let host = |version, values: &[&'static str], known: &mut KnownHost| {
            let mut framing = Framing::default();
            for value in values {
                framing.see(b"Host", value.as_bytes());
            }
            framing.host(version, known)
        };
        assert_eq!(host(Version::Http11, &[], &mut known), Err(400));
        assert_eq!(host(Version::Http10, &[], &mut known), Ok(()));
        assert_eq!(host(Version::Http11, &["a", "a"], &mut known), Err(400));
        assert_eq!(host(Version::Http10, &["a", "a"], &mut known), Err(400));
        assert_eq!(host(Version::Http11, &["h:1"], &mut known), Ok(()));
        assert_eq!(&known.bytes[..known.len], b"h:1");
        assert_eq!(host(Version::Http11, &["h:1"], &mut known), Ok(()));
        assert_eq!(host(Version::Http11, &["h 1"], &mut known), Err(400));
        assert_eq!(&known.bytes[..known.len], b"h:1");
        assert_eq!(host(Version::Http11, &[""], &mut known), Ok(()));
    }

    #[test]
    fn chunked_must_be_the_one_and_final_coding() {
        let v11 = Version::Http11;
        assert_eq!(
            decide(v11, &[("Transfer-Encoding", "chunked")]),
            Ok(BodyKind::Chunked)
        );
        assert_eq!(
            decide(v11, &[("transfer-encoding", " Chunked ,")]),
            Ok(BodyKind::Chunked)
        );
        assert_eq!(
            status(decide(v11, &[("Transfer-Encoding", "gzip, chunked")])),
            501
        );
        assert_eq!(
            status(decide(v11, &[("Transfer-Encoding", "chunked, gzip")])),
            501
        );
        assert_eq!(status(decide(v11, &[("Transfer-Encoding", "gzip")])), 501);
        assert_eq!(
            status(decide(
                v11,
                &[("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")]
            )),
            400
        );
        assert_eq!(status(decide(v11, &[("Transfer-Encoding", "")])), 400);
    }

    #[test]
    fn transfer_encoding_beside_content_length_or_in_http_1_0_is_400_with_an_unknown_end() {
        let both = decide(
            Version::Http11,
            &[("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
        );
        assert_eq!(
            both,
            Err(Refusal {
                status: 400,
                rest: Rest::Unknown
            })
        );
        assert_eq!(
            status(decide(Version::Http10, &[("Transfer-Encoding", "chunked")])),
            400
        );
    }

    #[test]
    fn a_length_over_the_limit_is_413_with_the_body_to_skip() {
        assert_eq!(
            decide(Version::Http11, &[("Content-Length", "101")]),
            Err(Refusal {
                status: 413,
                rest: Rest::Length(101)
            })
        );
        assert_eq!(
            decide(Version::Http11, &[("Content-Length", "100")]),
            Ok(BodyKind::Length(100))
        );
        assert_eq!(decide(Version::Http11, &[]), Ok(BodyKind::Length(0)));
    }
}
