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

use super::{
    Relay, RelayConfig, RelayStats, Stall, DEFAULT_DROP_SEED, DEFAULT_MAILBOX, UDP_BUFFER_BYTES,
};
use crate::tls::Identity;
use synth_common::fingerprint::hex;
use synth_common::framing::Wire;

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
    /// Fault: drop each delivery of an audio or video packet to a receiver
    /// with this probability, 0 to 1 (never heartbeats, key-frame requests or
    /// meeting packets, nor a sender's first audio or video packet to each
    /// receiver). Counted per receiver in the stats (`dropped_audio`,
    /// `dropped_video`).
    #[arg(long, env = "RELAY_DROP_RATE", value_name = "P", value_parser = probability, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Seed of --drop-rate's drops.
    #[arg(long, env = "RELAY_DROP_SEED", value_name = "S", default_value_t = DEFAULT_DROP_SEED)]
    pub drop_seed: u64,
    /// Fault: this long after start (e.g. 5s), stop reading from every session
    /// for --stall-for, then read what queued up in QUIC meanwhile and go on.
    #[arg(long, env = "RELAY_STALL_AFTER", value_name = "D", value_parser = humantime::parse_duration, requires = "stall_for")]
    pub stall_after: Option<Duration>,
    /// How long the stall of --stall-after lasts, e.g. 1500ms.
    #[arg(long, env = "RELAY_STALL_FOR", value_name = "D", value_parser = humantime::parse_duration, requires = "stall_after")]
    pub stall_for: Option<Duration>,
    /// Refuse new sessions (HTTP 403, `max_sessions` in the stats'
    /// rejections) while N are open: a server at its capacity, to test a
    /// capacity search against.
    #[arg(long, env = "RELAY_MAX_SESSIONS", value_name = "N")]
    pub max_sessions: Option<usize>,
    /// Write each user's received VP9 frames as IVF files into DIR (created
    /// if missing): DIR/{user_id}-video.ivf and DIR/{user_id}-screen.ivf,
    /// from the first key frame, in sequence order, at most 64 MiB each.
    /// For decode checks; it writes files on the packet path.
    #[arg(long, env = "RELAY_CAPTURE", value_name = "DIR")]
    pub capture: Option<PathBuf>,
    /// Inbound datagrams a session holds until it reads them, as upstream's
    /// session mailbox (16); beyond, they are dropped silently (counted as
    /// `mailbox_drops`, no CONGESTION). 0 turns the mailbox off.
    #[arg(long, env = "RELAY_MAILBOX", value_name = "N", default_value_t = DEFAULT_MAILBOX)]
    pub mailbox: usize,
    /// How packets travel on uni streams, both ways: per_packet, one packet
    /// per stream (upstream main); framed, each packet after its length (4
    /// bytes, big-endian) on a few persistent streams, one per kind
    /// (upstream RnD). Datagrams are the same on both. A client of the other
    /// wire is not understood: a framed relay closes its streams (counted as
    /// malformed_streams) and relays nothing of them; a per_packet relay
    /// reads a framed stream, once it ends, as one malformed packet.
    #[arg(long, env = "RELAY_WIRE", value_name = "WIRE", default_value = "per_packet", value_parser = wire)]
    pub wire: Wire,
    /// Answer GET /healthz ("Ok") and GET /version (JSON: service, version,
    /// wire) over plain HTTP on this TCP address, e.g. 127.0.0.1:8080, as
    /// upstream's health port. No TLS and no authentication: keep it on
    /// loopback or a private network.
    #[arg(long, env = "RELAY_HEALTH_LISTEN", value_name = "ADDR")]
    pub health_listen: Option<SocketAddr>,
}

/// `--wire`: one of [`Wire`]'s names.
fn wire(s: &str) -> Result<Wire, String> {
    s.parse()
        .map_err(|e: synth_common::framing::UnknownWire| e.to_string())
}

/// `--drop-rate`: a number from 0 to 1.
fn probability(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err("a probability from 0 to 1 was expected".to_string()),
    }
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
            drop_rate: self.drop_rate,
            drop_seed: self.drop_seed,
            stall: match (self.stall_after, self.stall_for) {
                (Some(after), Some(duration)) => Some(Stall { after, duration }),
                _ => None,
            },
            max_sessions: self.max_sessions,
            capture: self.capture.clone(),
            mailbox: self.mailbox,
            wire: self.wire,
            health_listen: self.health_listen,
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
        let mut line = serde_json::json!({
            "url": relay.url(),
            "cert_sha256": hash,
            "wire": relay.wire(),
        });
        if let Some(addr) = relay.health_addr() {
            line["health_url"] = format!("http://{addr}").into();
        }
        writeln!(out, "{line}").context("writing to stdout")?;
        out.flush().context("writing to stdout")?;
    }
    let mut mode = String::new();
    if args.drain_only {
        mode += ", drain-only";
    }
    if args.drop_rate > 0.0 {
        mode += &format!(
            ", dropping audio and video at {} (seed {})",
            args.drop_rate, args.drop_seed
        );
    }
    if let (Some(after), Some(d)) = (args.stall_after, args.stall_for) {
        let f = humantime::format_duration;
        mode += &format!(", stalling for {} after {}", f(d), f(after));
    }
    if let Some(n) = args.max_sessions {
        mode += &format!(", at most {n} sessions open");
    }
    if let Some(dir) = &args.capture {
        mode += &format!(", capturing VP9 frames into {}", dir.display());
    }
    if args.wire != Wire::PerPacket {
        mode += &format!(", {} wire", args.wire);
    }
    if let Some(addr) = relay.health_addr() {
        mode += &format!(", health on http://{addr}");
    }
    if args.mailbox == 0 {
        mode += ", no mailbox";
    } else if args.mailbox != DEFAULT_MAILBOX {
        mode += &format!(", mailbox of {}", args.mailbox);
    }
    eprintln!(
        "relay listening on {} (certificate sha256 {hash}){mode}; Ctrl-C to stop",
        relay.url()
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
         screen {} frames, {} heartbeats, {} diagnostics, {} health, {} other, {} malformed{}\n",
        s.per_user.len(),
        t.audio_packets,
        missing.0,
        t.video_packets,
        t.video_keyframes,
        missing.1,
        t.screen_packets,
        t.heartbeats,
        t.diagnostics,
        t.health,
        t.connection_packets + t.keyframe_requests + t.rtt + t.other,
        t.malformed,
        if s.malformed_streams > 0 {
            format!(
                " ({} uni streams closed for broken framing: clients of the other wire?)",
                s.malformed_streams
            )
        } else {
            String::new()
        }
    );
    out += &format!(
        "relayed: {} deliveries, {} dropped (full queues), {} CONGESTION notices, \
         {} datagrams dropped (full mailboxes){}\n",
        t.relayed_to,
        s.relay_drops,
        s.congestion_sent,
        s.mailbox_drops,
        if t.observer_media_dropped > 0 {
            format!(
                ", {} observer packets not relayed",
                t.observer_media_dropped
            )
        } else {
            String::new()
        }
    );
    let (u, h) = (s.view_updates, s.hints_sent);
    let layered = t.video_layers[1..].iter().sum::<u64>() > 0;
    if layered
        || s.viewport_filtered + s.layer_filtered > 0
        || u.accepted + u.rate_limited + u.malformed > 0
        || h.suppress + h.restore > 0
    {
        out += &format!(
            "simulcast: video by layer (0, 1, 2+) received {:?}, sent {:?}; withheld {} by \
             viewports and {} by layer preferences; {} VIEWPORT/LAYER_PREFERENCE applied, {} \
             rate-limited, {} malformed; LAYER_HINT entries: {} suppress, {} restore\n",
            t.video_layers,
            t.sent_video_layers,
            s.viewport_filtered,
            s.layer_filtered,
            u.accepted,
            u.rate_limited,
            u.malformed,
            h.suppress,
            h.restore
        );
    }
    let d = s.injected_drops;
    if d.audio + d.video > 0 || !s.stalls.is_empty() {
        let stalls: Vec<String> = s
            .stalls
            .iter()
            .map(|w| match w.duration_ms() {
                Some(ms) => format!("{ms} ms"),
                None => "not over".to_string(),
            })
            .collect();
        out += &format!(
            "injected faults: {} audio and {} video deliveries dropped, stalls [{}], {} stalled deliveries\n",
            d.audio,
            d.video,
            stalls.join(", "),
            t.stalled_deliveries
        );
    }
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
    fn fault_flags() {
        let cfg = Cli::try_parse_from(["relay"])
            .unwrap()
            .relay
            .config()
            .unwrap();
        assert_eq!((cfg.drop_rate, cfg.drop_seed, cfg.stall), (0.0, 1, None));

        let c = Cli::try_parse_from([
            "relay",
            "--drop-rate",
            "0.25",
            "--drop-seed",
            "9",
            "--stall-after",
            "5s",
            "--stall-for",
            "1500ms",
        ])
        .unwrap()
        .relay;
        let cfg = c.config().unwrap();
        assert_eq!((cfg.drop_rate, cfg.drop_seed), (0.25, 9));
        let stall = Stall {
            after: Duration::from_secs(5),
            duration: Duration::from_millis(1500),
        };
        assert_eq!(cfg.stall, Some(stall));

        for bad in ["1.5", "-0.1", "NaN", "x"] {
            let e = Cli::try_parse_from(["relay".to_string(), format!("--drop-rate={bad}")])
                .unwrap_err()
                .to_string();
            let first = e.lines().next().unwrap();
            assert!(first.contains("--drop-rate"), "{e}");
            assert!(first.contains("from 0 to 1"), "{e}");
        }
        for half in [["--stall-for", "1s"], ["--stall-after", "1s"]] {
            let e = Cli::try_parse_from(["relay", half[0], half[1]]).unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        }
    }

    #[test]
    fn capture_flag() {
        let cfg = Cli::try_parse_from(["relay"])
            .unwrap()
            .relay
            .config()
            .unwrap();
        assert_eq!(cfg.capture, None);
        let c = Cli::try_parse_from(["relay", "--capture", "/tmp/frames"])
            .unwrap()
            .relay;
        assert_eq!(
            c.config().unwrap().capture,
            Some(PathBuf::from("/tmp/frames"))
        );
    }

    #[test]
    fn mailbox_flag() {
        let cfg = Cli::try_parse_from(["relay"])
            .unwrap()
            .relay
            .config()
            .unwrap();
        assert_eq!(cfg.mailbox, 16, "upstream's mailbox");
        for (arg, n) in [("0", 0), ("64", 64)] {
            let c = Cli::try_parse_from(["relay", "--mailbox", arg])
                .unwrap()
                .relay;
            assert_eq!(c.config().unwrap().mailbox, n);
        }
        assert!(Cli::try_parse_from(["relay", "--mailbox", "-1"]).is_err());
    }

    #[test]
    fn wire_flag() {
        let cfg = Cli::try_parse_from(["relay"])
            .unwrap()
            .relay
            .config()
            .unwrap();
        assert_eq!(cfg.wire, Wire::PerPacket);
        let c = Cli::try_parse_from(["relay", "--wire", "framed"])
            .unwrap()
            .relay;
        assert_eq!(c.config().unwrap().wire, Wire::Framed);
        let e = Cli::try_parse_from(["relay", "--wire", "rnd"])
            .unwrap_err()
            .to_string();
        let first = e.lines().next().unwrap();
        assert!(first.contains("--wire"), "{e}");
        assert!(first.contains("unknown wire \"rnd\""), "{e}");
    }

    #[test]
    fn health_listen_flag() {
        let cfg = Cli::try_parse_from(["relay"])
            .unwrap()
            .relay
            .config()
            .unwrap();
        assert_eq!(cfg.health_listen, None, "off by default");
        let c = Cli::try_parse_from(["relay", "--health-listen", "127.0.0.1:8080"])
            .unwrap()
            .relay;
        let want = Some("127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.config().unwrap().health_listen, want);
        assert!(Cli::try_parse_from(["relay", "--health-listen", "8080"]).is_err());
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
        assert!(
            !text.contains("framing"),
            "no broken streams, no word: {text}"
        );
        assert!(text.contains("audio 50 packets"), "{text}");
        assert!(!text.contains("injected"), "no faults, no line: {text}");
        assert!(!text.contains("simulcast"), "no layers, no line: {text}");

        let user = crate::UserStats {
            video_layers: [10, 10, 4],
            sent_video_layers: [20, 12, 4],
            ..Default::default()
        };
        let s = RelayStats {
            layer_filtered: 8,
            view_updates: crate::ViewUpdates {
                accepted: 2,
                rate_limited: 1,
                malformed: 0,
            },
            hints_sent: crate::HintsSent {
                suppress: 1,
                restore: 0,
            },
            per_user: [("a".to_string(), user)].into(),
            ..Default::default()
        };
        let text = summary(&s);
        assert!(
            text.contains(
                "simulcast: video by layer (0, 1, 2+) received [10, 10, 4], sent [20, 12, 4]; \
                 withheld 0 by viewports and 8 by layer preferences; 2 VIEWPORT/LAYER_PREFERENCE \
                 applied, 1 rate-limited, 0 malformed; LAYER_HINT entries: 1 suppress, 0 restore"
            ),
            "{text}"
        );

        let s = RelayStats {
            malformed_streams: 3,
            ..Default::default()
        };
        let text = summary(&s);
        assert!(
            text.contains("(3 uni streams closed for broken framing"),
            "{text}"
        );

        let s = RelayStats {
            injected_drops: crate::InjectedDrops { audio: 4, video: 7 },
            stalls: vec![crate::StallWindow {
                start_unix_ms: 1000,
                end_unix_ms: Some(2500),
            }],
            ..Default::default()
        };
        let text = summary(&s);
        assert!(
            text.contains("4 audio and 7 video deliveries dropped, stalls [1500 ms]"),
            "{text}"
        );
    }
}
