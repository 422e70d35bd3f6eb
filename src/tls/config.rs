//! Building rustls configs from PEM files: the boilerplate every server and
//! client repeats, with the `ring` provider evloop builds with.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The certificates in PEM text (a chain: the server's own first, then
/// the issuers it needs).
///
/// # Errors
///
/// `InvalidData` if the text holds no certificate or one that is not
/// valid PEM.
pub fn certificates(pem: &[u8]) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("bad PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(invalid("no certificate in the PEM text".into()));
    }
    Ok(certs)
}

/// The private key in PEM text (PKCS #8, PKCS #1 or SEC1).
///
/// # Errors
///
/// `InvalidData` if the text holds no key.
pub fn private_key(pem: &[u8]) -> io::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| invalid(format!("no usable PEM private key: {e}")))
}

/// A server config for the certificate chain and key in PEM text, with
/// rustls's safe defaults (TLS 1.3 and 1.2), no client authentication and
/// no ALPN (set `alpn_protocols` on a config of your own to offer some).
///
/// # Errors
///
/// `InvalidData` if either is missing or bad, or the key does not suit the
/// certificate.
pub fn server_config_from_pem(cert_pem: &[u8], key_pem: &[u8]) -> io::Result<Arc<ServerConfig>> {
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certificates(cert_pem)?, private_key(key_pem)?)
        .map_err(|e| invalid(format!("the certificate and key do not go together: {e}")))?;
    Ok(Arc::new(config))
}

/// A server config for the PEM files `cert` (chain) and `key`, as
/// [`server_config_from_pem`].
///
/// # Errors
///
/// A file that cannot be read (the error names it), or as
/// [`server_config_from_pem`].
///
/// # Examples
///
/// ```no_run
/// use evloop::tls;
///
/// let config = tls::server_config("cert.pem", "key.pem")?;
/// # drop(config);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn server_config(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> io::Result<Arc<ServerConfig>> {
    let (cert, key) = (cert.as_ref(), key.as_ref());
    let read = |path: &Path| {
        std::fs::read(path)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display())))
    };
    let (cert_pem, key_pem) = (read(cert)?, read(key)?);
    server_config_from_pem(&cert_pem, &key_pem)
        .map_err(|e| io::Error::new(e.kind(), format!("{} and {}: {e}", cert.display(), key.display())))
}

/// A client config that trusts the certificates in `roots` (a CA the
/// caller made, the system's store read by the caller, or a vendored list
/// such as `webpki-roots`), with rustls's safe defaults and no client
/// certificate.
///
/// # Examples
///
/// ```no_run
/// use evloop::tls::{self, rustls::RootCertStore};
///
/// let mut roots = RootCertStore::empty();
/// for ca in tls::certificates(&std::fs::read("ca.pem")?)? {
///     roots.add(ca).expect("a CA certificate");
/// }
/// let config = tls::client_config(roots);
/// # drop(config);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn client_config(roots: RootCertStore) -> Arc<ClientConfig> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls's default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// The `ring` provider, named rather than taken from the process default, so
/// that another crate enabling a second provider changes nothing here.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// An `InvalidData` error saying `msg`.
fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}
