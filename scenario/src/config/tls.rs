//! How the client trusts the server: `tls:` resolved into a [`Trust`]
//! (the system's roots, a CA file read once here so a broken one is a config
//! error, SHA-256 pins, or no check at all on explicit request).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use synth_common::redact::shown;

use super::file::{read_limited, Tls};
use super::limits::path_fits;

/// How the client trusts the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The system's root certificates.
    System,
    /// Certificates from a PEM file.
    CaFile(PathBuf),
    /// Server certificates pinned by SHA-256.
    Pinned(Vec<[u8; 32]>),
    /// No verification (explicit `insecure: true`).
    Insecure,
}

pub(super) fn trust(t: &Tls) -> anyhow::Result<Trust> {
    let set = [t.ca_cert.is_some(), t.cert_sha256.is_some(), t.insecure];
    if set.iter().filter(|&&b| b).count() > 1 {
        bail!("tls: give only one of ca_cert, cert_sha256 and insecure");
    }
    if let Some(p) = &t.ca_cert {
        ca_roots(p)?;
        return Ok(Trust::CaFile(p.clone()));
    }
    if let Some(h) = &t.cert_sha256 {
        let pins = h
            .split(',')
            .map(|one| parse_sha256(one.trim()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        return Ok(Trust::Pinned(pins));
    }
    Ok(if t.insecure {
        Trust::Insecure
    } else {
        Trust::System
    })
}

/// Reads `tls.ca_cert` (PEM certificates, each a valid trust anchor) into the
/// roots a client trusts. Resolving a config reads it once, so a missing or
/// broken file is a config error, not a failed run; the run reads it again
/// the same way.
pub fn ca_roots(p: &Path) -> anyhow::Result<rustls::RootCertStore> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    path_fits("tls.ca_cert", p)?;
    let shown = || shown(&p.display().to_string());
    let bytes = read_limited(p).with_context(|| format!("reading tls.ca_cert {}", shown()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("tls.ca_cert {}: not PEM", shown()))?;
    if certs.is_empty() {
        bail!("tls.ca_cert {} holds no PEM certificate", shown());
    }
    let mut roots = rustls::RootCertStore::empty();
    for c in certs {
        roots
            .add(c)
            .with_context(|| format!("tls.ca_cert {}", shown()))?;
    }
    Ok(roots)
}

/// Parses a SHA-256 given as 64 hex digits, optionally with `:` between bytes.
pub fn parse_sha256(s: &str) -> anyhow::Result<[u8; 32]> {
    let hex: String = s.chars().filter(|&c| c != ':').collect();
    let bad = || anyhow::anyhow!("tls.cert_sha256 {:?} is not 64 hex digits", shown(s));
    // Checked as ASCII first: the pairs below are byte offsets.
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{assert_errors, resolve};
    use crate::config::Overrides;

    #[test]
    fn pins_parse() {
        let yaml = "tls: {cert_sha256: \"AB:cd:ef:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc\"}\nclients: [{user_id: a, meeting_id: m}]";
        let s = resolve(yaml, &Overrides::default()).unwrap();
        let Trust::Pinned(p) = s.trust else { panic!() };
        assert_eq!(p[0][0], 0xab);
        assert_eq!(p[0][31], 0xcc);
    }

    #[test]
    fn errors_name_the_problem() {
        assert_errors(&[
            (
                "tls: {insecure: true, cert_sha256: abcd}\nclients: [{user_id: a, meeting_id: m}]",
                "only one of",
            ),
            (
                "tls: {cert_sha256: abcd}\nclients: [{user_id: a, meeting_id: m}]",
                "64 hex digits",
            ),
        ]);
    }
}
