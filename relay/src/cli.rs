//! `synth-relay` and `synth-replay relay`: the relay as a standalone server.
//!
//! Prints one JSON line on stdout, `{"url":..,"cert_sha256":"hex"}`, so a
//! script or the scale harness can pin the certificate, then serves until
//! Ctrl-C or SIGTERM, prints a summary on stderr and writes the stats as JSON
//! when asked.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};

use super::{Relay, RelayConfig, RelayStats, UDP_BUFFER_BYTES};
use crate::tls::Identity;
use synth_common::fingerprint::hex;

/// Options of `synth-replay relay`.
#[derive(Debug, Clone, clap::Args)]
pub struct RelayArgs {
    /// UDP address to listen on.
    #[arg(long, env = "RELAY_LISTEN", default_value = "127.0.0.1:4433")]
    pub listen: SocketAddr,
    /// Name of the environment variable holding the JWT secret; enables
    /// `/lobby?token=JWT`.
    #[arg(long, env = "RELAY_JWT_SECRET_ENV", value_name = "VAR")]
    pub jwt_secret_env: Option<String>,
    /// Accept only `/lobby?token=JWT` (like FEATURE_MEETING_MANAGEMENT=true).
    #[arg(long, env = "RELAY_REQUIRE_TOKEN")]
    pub require_token: bool,
    /// Count packets but relay nothing (for benchmarking senders).
    #[arg(long, env = "RELAY_DRAIN_ONLY")]
    pub drain_only: bool,
    /// UDP socket buffer size (SO_RCVBUF and SO_SNDBUF), bytes.
    #[arg(long, env = "RELAY_UDP_BUFFER", value_name = "BYTES", default_value_t = UDP_BUFFER_BYTES)]
    pub udp_buffer: usize,
    /// Certificate chain (PEM) instead of a generated self-signed one.
    #[arg(long, env = "RELAY_CERT", value_name = "PEM", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) for --cert.
    #[arg(long, env = "RELAY_KEY", value_name = "PEM", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Write the final stats here as JSON.
    #[arg(long, env = "RELAY_STATS_JSON", value_name = "FILE")]
    pub stats_json: Option<PathBuf>,
    /// Delay before PARTICIPANT_LEFT, cancelled by a reconnection, e.g. 2s or 0s.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub leave_grace: Duration,
}

impl RelayArgs {
    /// The relay configuration these options describe.
    pub fn config(&self) -> anyhow::Result<RelayConfig> {
        let jwt_secret = match &self.jwt_secret_env {
            Some(var) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Some(v.into_bytes()),
                _ => bail!("--jwt-secret-env: environment variable {var} is not set"),
            },
            None => None,
        };
        if self.require_token && jwt_secret.is_none() {
            bail!("--require-token needs a secret: give --jwt-secret-env VAR");
        }
        let cert = match (&self.cert, &self.key) {
            (Some(c), Some(k)) => Some(Identity::from_pem_files(c, k)?),
            _ => None,
        };
        Ok(RelayConfig {
            listen: self.listen,
            jwt_secret,
            require_token: self.require_token,
            drain_only: self.drain_only,
            udp_buffer_bytes: self.udp_buffer,
            cert,
            leave_grace: self.leave_grace,
        })
    }
}

/// Runs the relay until `shutdown` completes (for the binaries:
/// [`synth_common::net::terminated`], Ctrl-C or SIGTERM).
pub async fn run_cli(
    args: RelayArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let relay = Relay::start(args.config()?).await?;
    let hash = hex(&relay.cert_sha256());
    {
        let mut out = std::io::stdout().lock();
        let line = serde_json::json!({ "url": relay.url(), "cert_sha256": hash });
        writeln!(out, "{line}").context("writing to stdout")?;
        out.flush().context("writing to stdout")?;
    }
    eprintln!(
        "relay listening on {} (certificate sha256 {hash}){}; Ctrl-C to stop",
        relay.url(),
        if args.drain_only { ", drain-only" } else { "" }
    );
    shutdown.await;
    eprintln!("stopping");
    let stats = relay.shutdown().await;
    eprint!("{}", summary(&stats));
    if let Some(path) = &args.stats_json {
        let json = serde_json::to_vec_pretty(&stats).expect("stats serialize to JSON");
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// A few lines for a person: sessions, and what was received and relayed.
pub(crate) fn summary(s: &RelayStats) -> String {
    let t = s.total();
    let missing = s.missing();
    let mut out = format!(
        "sessions: {} accepted, {} refused{}\n",
        s.sessions_accepted,
        s.sessions_rejected,
        if s.rejections.is_empty() {
            String::new()
        } else {
            format!(" ({:?})", s.rejections)
        }
    );
    out += &format!(
        "received from {} users: audio {} packets ({} missing), video {} frames ({} key, {} missing), \
         {} heartbeats, {} other, {} malformed\n",
        s.per_user.len(),
        t.audio_packets,
        missing.0,
        t.video_packets,
        t.video_keyframes,
        missing.1,
        t.heartbeats,
        t.connection_packets + t.keyframe_requests + t.rtt + t.other,
        t.malformed
    );
    out += &format!(
        "relayed: {} deliveries, {} dropped (full queues), {} CONGESTION sent\n",
        t.relayed_to, s.relay_drops, s.congestion_sent
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEFAULT_LEAVE_GRACE;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        relay: RelayArgs,
    }

    #[test]
    fn defaults_and_checks() {
        let c = Cli::try_parse_from(["relay"]).unwrap().relay;
        assert_eq!(c.listen, "127.0.0.1:4433".parse().unwrap());
        assert_eq!(c.udp_buffer, UDP_BUFFER_BYTES);
        assert_eq!(c.leave_grace, DEFAULT_LEAVE_GRACE);
        let cfg = c.config().unwrap();
        assert!(cfg.jwt_secret.is_none() && !cfg.require_token);

        let c = Cli::try_parse_from(["relay", "--require-token"])
            .unwrap()
            .relay;
        let e = c.config().unwrap_err().to_string();
        assert!(e.contains("--jwt-secret-env"), "{e}");

        let c = Cli::try_parse_from(["relay", "--jwt-secret-env", "SYNTH_TEST_SURELY_UNSET"])
            .unwrap()
            .relay;
        let e = c.config().unwrap_err().to_string();
        assert!(e.contains("SYNTH_TEST_SURELY_UNSET is not set"), "{e}");

        assert!(Cli::try_parse_from(["relay", "--cert", "c.pem"]).is_err());
    }

    #[test]
    fn summary_mentions_totals() {
        let user = crate::UserStats {
            audio_packets: 50,
            ..Default::default()
        };
        let s = RelayStats {
            sessions_accepted: 3,
            per_user: [("a".to_string(), user)].into(),
            ..Default::default()
        };
        let text = summary(&s);
        assert!(text.contains("3 accepted"), "{text}");
        assert!(text.contains("audio 50 packets"), "{text}");
    }
}
