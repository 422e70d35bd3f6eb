//! `--tls`: a CA and a certificate it signs for 127.0.0.1, made with rcgen
//! for this run into a temporary directory (removed when the run ends), for
//! the servers (`{cert}`, `{key}`) and loadgen (`--tls CA_FILE`).

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// The PEM files of one run's certificates.
#[derive(Debug)]
pub(crate) struct Pki {
    /// The directory holding them, removed on drop.
    dir: PathBuf,
    /// The CA's certificate, for loadgen to trust.
    pub(crate) ca: PathBuf,
    /// The server's certificate (ECDSA P-256, for localhost and 127.0.0.1).
    pub(crate) cert: PathBuf,
    /// Its private key.
    pub(crate) key: PathBuf,
}

impl Pki {
    /// Makes the CA and the server's certificate and writes them out.
    pub(crate) fn make() -> Result<Pki, String> {
        let failed = |e: rcgen::Error| format!("cannot make the TLS certificates: {e}");
        let ca_key = KeyPair::generate().map_err(failed)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "evloop-compare-ca");
        let ca = ca_params.self_signed(&ca_key).map_err(failed)?;
        let key = KeyPair::generate().map_err(failed)?;
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let cert =
            (CertificateParams::new(names).and_then(|p| p.signed_by(&key, &ca, &ca_key))).map_err(failed)?;
        let dir = std::env::temp_dir().join(format!("evloop-compare-tls-{}", std::process::id()));
        let pki = Pki {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            dir,
        };
        let write = |path: &PathBuf, text: String| {
            std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
        };
        std::fs::create_dir_all(&pki.dir).map_err(|e| format!("cannot create {}: {e}", pki.dir.display()))?;
        write(&pki.ca, ca.pem())?;
        write(&pki.cert, cert.pem())?;
        write(&pki.key, key.serialize_pem())?;
        Ok(pki)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
