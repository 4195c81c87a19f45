//! The client side of QUIC: one endpoint (one UDP socket) per client thread,
//! shared by that thread's clients.
//!
//! `web_transport_quinn::ClientBuilder` always binds `[::]:0` with the kernel's
//! default buffers; hundreds of sessions on one socket need larger ones, so the
//! socket, the rustls config and the transport parameters are built here and
//! handed to [`web_transport_quinn::Client::new`].

use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::config::Trust;
use crate::netem::Impaired;
use synth_common::fingerprint::{hex, sha256};
use synth_common::netem::Netem;

/// How quickly a silent server is noticed.
#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    /// QUIC keep-alive period (PINGs, so the server's silence shows).
    pub keep_alive: Duration,
    /// QUIC idle timeout: the session closes after this much silence.
    pub idle_timeout: Duration,
}

/// Builds the shared WebTransport client. With `network`, its socket is
/// wrapped in an [`Impaired`] that carries out that model (and is returned,
/// for its counters); without, the endpoint is built on the plain socket,
/// exactly as if impairment did not exist.
pub fn client(
    trust: &Trust,
    bind: SocketAddr,
    live: Liveness,
    network: Option<Netem>,
) -> anyhow::Result<(web_transport_quinn::Client, Option<Arc<Impaired>>)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 with the ring provider")?;
    let mut tls = match trust {
        Trust::System => {
            let mut roots = rustls::RootCertStore::empty();
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                bail!("no system root certificates found: set tls.ca_cert, tls.cert_sha256 or tls.insecure");
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::CaFile(path) => builder
            .with_root_certificates(crate::config::ca_roots(path)?)
            .with_no_client_auth(),
        Trust::Pinned(hashes) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Verifier {
                accept: Accept::Pinned(hashes.clone()),
                provider: provider.clone(),
            }))
            .with_no_client_auth(),
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Verifier {
                accept: Accept::Any,
                provider: provider.clone(),
            }))
            .with_no_client_auth(),
    };
    tls.alpn_protocols = vec![web_transport_quinn::ALPN.as_bytes().to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .context("QUIC needs a TLS 1.3 config")?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    config.transport_config(Arc::new(transport_config(live)?));
    let socket = synth_common::net::udp_socket(bind, synth_common::net::UDP_BUFFER_BYTES)
        .with_context(|| format!("binding UDP {bind}"))?;
    let (endpoint, impaired) = match network {
        None => (
            quinn::Endpoint::new(
                quinn::EndpointConfig::default(),
                None,
                socket,
                Arc::new(quinn::TokioRuntime),
            ),
            None,
        ),
        Some(model) => {
            let inner = quinn::Runtime::wrap_udp_socket(&quinn::TokioRuntime, socket)
                .context("wrapping the UDP socket")?;
            let impaired = Impaired::new(inner, model);
            (
                quinn::Endpoint::new_with_abstract_socket(
                    quinn::EndpointConfig::default(),
                    None,
                    impaired.clone(),
                    Arc::new(quinn::TokioRuntime),
                ),
                Some(impaired),
            )
        }
    };
    let endpoint = endpoint.context("creating the QUIC endpoint")?;
    Ok((web_transport_quinn::Client::new(endpoint, config), impaired))
}

/// Uni streams the server may have open to one client at once, read or not.
///
/// The server opens a stream per relayed packet, and a stream's credit comes
/// back only once the client has read it; so this is how many packets a
/// session can hold unread. A receiver that keeps up has a few open (meetings
/// of 10 relay about 730 packets a second). One that falls behind (a
/// saturated machine) holds up to this many in quinn, each with the buffer
/// it arrived in, until the server's own queue fills and it drops, as the
/// videocall-rs server does for a slow receiver. At 1024, 300 clients on a
/// saturated 2-core machine held 1.4 GB this way (see RELIABILITY.md, Soak).
pub const MAX_INCOMING_STREAMS: u32 = 256;

/// Unread bytes a server may send one client across all its streams (QUIC's
/// connection flow-control window; quinn's default is unbounded, leaving
/// only the per-stream window of 1.25 MB times [`MAX_INCOMING_STREAMS`]):
/// 8 MiB is about 14 s of a meeting of 10 at 640x360.
pub const MAX_UNREAD_BYTES: u32 = 8 << 20;

/// Transport parameters for a media client: the server opens a uni stream per
/// relayed packet, so allow many at once, but not without bound
/// ([`MAX_INCOMING_STREAMS`], [`MAX_UNREAD_BYTES`]); keep-alives and the
/// idle timeout from `live`, so a dead server is seen in seconds rather than
/// in the server's own 30 s (QUIC uses the smaller of both sides' timeouts).
pub fn transport_config(live: Liveness) -> anyhow::Result<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(live.idle_timeout).map_err(|_| {
        anyhow::anyhow!("idle_timeout {:?} is too long for QUIC", live.idle_timeout)
    })?;
    t.max_concurrent_uni_streams(MAX_INCOMING_STREAMS.into())
        .receive_window(MAX_UNREAD_BYTES.into())
        .keep_alive_interval(Some(live.keep_alive))
        .max_idle_timeout(Some(idle));
    Ok(t)
}

/// The local address to bind for reaching `server`.
pub fn bind_for(server: &url::Url) -> SocketAddr {
    match server.host() {
        Some(url::Host::Ipv4(_)) => SocketAddr::from(([0, 0, 0, 0], 0)),
        _ => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    }
}

/// Which server certificates a [`Verifier`] accepts.
#[derive(Debug)]
enum Accept {
    /// Those whose SHA-256 is one of these (`tls.cert_sha256`).
    Pinned(Vec<[u8; 32]>),
    /// Any (`tls.insecure`).
    Any,
}

/// Accepts a server certificate by [`Accept`]; handshake signatures are
/// still checked in both cases.
#[derive(Debug)]
struct Verifier {
    accept: Accept,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ok = match &self.accept {
            Accept::Any => true,
            Accept::Pinned(hashes) => hashes.contains(&sha256(end_entity)),
        };
        if ok {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "server certificate SHA-256 {} is not the pinned one",
                hex(&sha256(end_entity))
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client without a network gets the plain socket: no wrapper is
    /// built at all, so the impairment costs it nothing.
    #[tokio::test]
    async fn plain_path_without_a_network_wrapper_with_one() {
        let live = Liveness {
            keep_alive: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(10),
        };
        let bind = SocketAddr::from(([127, 0, 0, 1], 0));
        let (_, impaired) = client(&Trust::Insecure, bind, live, None).unwrap();
        assert!(impaired.is_none());
        let model = Netem::new(Default::default(), Vec::new(), 1);
        let (_, impaired) = client(&Trust::Insecure, bind, live, Some(model)).unwrap();
        assert!(impaired.is_some());
    }
}
