//! Test certificates, made once per test binary: a CA, a certificate it
//! signs for `localhost` and 127.0.0.1, and the configs and PEM files
//! servers and clients (rustls, openssl, Python) need.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use evloop::tls::rustls::pki_types::ServerName;
use evloop::tls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use evloop::tls::{self, TlsAcceptor};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// A CA and a server certificate it signed, as PEM.
pub struct Pki {
    /// The CA's certificate.
    pub ca_pem: String,
    /// The server's certificate.
    pub cert_pem: String,
    /// The server's private key.
    pub key_pem: String,
    /// The CA's certificate in a file, for openssl and Python.
    pub ca_file: PathBuf,
}

/// Makes a CA named `name` and a certificate it signs for `localhost` and
/// 127.0.0.1.
pub fn make(name: &str) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, name);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let dir = std::env::temp_dir().join(format!("evloop-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join(format!("{name}.pem"));
    std::fs::write(&ca_file, ca.pem()).unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        ca_file,
    }
}

/// The certificates of this test binary.
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| make("evloop-test-ca"))
}

impl Pki {
    /// A server config for the certificate, with `alpn` offered.
    pub fn server_config(&self, alpn: &[&[u8]]) -> Arc<ServerConfig> {
        let config = tls::server_config_from_pem(self.cert_pem.as_bytes(), self.key_pem.as_bytes()).unwrap();
        let mut config = Arc::unwrap_or_clone(config);
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// An acceptor for the certificate, without ALPN.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::new(self.server_config(&[]))
    }

    /// A client config that trusts this CA, offering `alpn`.
    pub fn client_config(&self, alpn: &[&[u8]]) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for ca in tls::certificates(self.ca_pem.as_bytes()).unwrap() {
            roots.add(ca).unwrap();
        }
        let mut config = Arc::unwrap_or_clone(tls::client_config(roots));
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

/// `localhost` as a server name.
pub fn localhost_name() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}
