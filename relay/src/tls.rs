//! The relay's TLS identity: a fresh self-signed certificate, or one loaded from PEM.
//!
//! Clients of the embedded relay pin the certificate by the SHA-256 of its DER
//! ([`Identity::cert_sha256`]) instead of trusting a CA. The generated
//! certificate is ECDSA P-256 and valid for 13 days, so browsers accept it
//! through WebTransport's `serverCertificateHashes` too (at most 14 days).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use synth_common::fingerprint::{hex, sha256};

/// Names the generated certificate is valid for.
pub const NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// How long a generated certificate is valid (browsers accept at most 14 days for hash pinning).
const VALIDITY: Duration = Duration::from_secs(13 * 24 * 3600);

/// Errors making or loading a TLS identity.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// rcgen failed to make the certificate.
    #[error("generating a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A PEM file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A PEM file has no usable certificate or key.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
}

/// A certificate chain, its private key and the SHA-256 of the leaf certificate.
pub struct Identity {
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
    /// SHA-256 of the leaf certificate's DER, what clients pin.
    pub cert_sha256: [u8; 32],
}

impl Clone for Identity {
    fn clone(&self) -> Identity {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            cert_sha256: self.cert_sha256,
        }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("chain_len", &self.chain.len())
            .field("cert_sha256", &hex(&self.cert_sha256))
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Wraps a chain (leaf first, non-empty) and its key, computing the leaf's hash.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Option<Identity> {
        let cert_sha256 = sha256(chain.first()?);
        Some(Identity {
            chain,
            key,
            cert_sha256,
        })
    }

    /// A new self-signed certificate for [`NAMES`], valid from an hour ago for 13 days.
    pub fn self_signed() -> Result<Identity, TlsError> {
        let mut params =
            rcgen::CertificateParams::new(NAMES.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        params.not_before = epoch + now.saturating_sub(Duration::from_secs(3600));
        params.not_after = epoch + now + VALIDITY;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "synth-replay relay");
        let key = rcgen::KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let chain = vec![cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok(Identity::new(chain, key).expect("one certificate"))
    }

    /// Loads a certificate chain and a private key from PEM files.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                path: path.to_owned(),
                source,
            })
        };
        let pem_err = |path: &Path, what: String| TlsError::Pem {
            path: path.to_owned(),
            what,
        };
        let chain = CertificateDer::pem_slice_iter(&read(cert)?)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_err(cert, format!("bad certificate PEM: {e}")))?;
        let key_der = PrivateKeyDer::from_pem_slice(&read(key)?)
            .map_err(|e| pem_err(key, format!("no usable private key: {e}")))?;
        Identity::new(chain, key_der)
            .ok_or_else(|| pem_err(cert, "no certificate in the file".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_has_hash_of_its_der() {
        let id = Identity::self_signed().unwrap();
        assert_eq!(id.chain.len(), 1);
        assert_eq!(id.cert_sha256, sha256(&id.chain[0]));
        assert_eq!(hex(&id.cert_sha256).len(), 64);
        // Two generations give two different certificates.
        assert_ne!(Identity::self_signed().unwrap().cert_sha256, id.cert_sha256);
        assert!(format!("{id:?}").contains(&hex(&id.cert_sha256)));
    }

    #[test]
    fn loads_pem_files() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        let id = Identity::from_pem_files(&c, &k).unwrap();
        assert_eq!(id.cert_sha256, sha256(cert.der()));

        let e = Identity::from_pem_files(&k, &k).unwrap_err().to_string();
        assert!(e.contains("no certificate"), "{e}");
        let e = Identity::from_pem_files(&c, &dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("reading "), "{e}");
    }
}
