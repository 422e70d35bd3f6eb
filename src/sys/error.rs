//! The errors that `sys` makes of its own.

/// An [`Unsupported`](std::io::ErrorKind::Unsupported) error saying that
/// `what` is not available on this OS (Linux has all of it).
#[cfg(any(test, not(target_os = "linux")))]
pub(crate) fn unsupported(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        format!("{what} is not available on {}", std::env::consts::OS),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn unsupported_names_the_os() {
        let err = unsupported("CPU affinity");
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        assert!(err.to_string().contains(std::env::consts::OS));
    }
}
