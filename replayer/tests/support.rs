//! Shared by the test modules: a small pack built once, settings aimed at an
//! in-process relay, a probe participant, a scrape of the metrics endpoint,
//! and a timeout on every await (a bound on a hang, never a measure of speed).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use synth_encoder::audio::AudioSource;
use synth_encoder::build::{build, BuildOptions};
use synth_encoder::rendition::{Rendition, Screen};
use synth_encoder::video::{Pattern, VideoSource};
use synth_relay::Relay;
use synth_replayer::config::{self, Overrides, Settings, Trust};

/// Awaits `f`, failing the test after `secs` seconds.
pub async fn within<T>(secs: u64, what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("timed out after {secs} s: {what}"))
}

/// Awaits `check` every 20 ms until it gives a value, failing the test after `secs` seconds.
pub async fn until<T>(secs: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    within(secs, what, async {
        loop {
            if let Some(v) = check() {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// `sample` every 20 ms until `done` holds for it; after `secs` seconds the
/// last sample anyway, for the caller's assertions to show what is wrong.
pub async fn settled<T>(secs: u64, mut sample: impl FnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let v = sample();
        if done(&v) || tokio::time::Instant::now() >= deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Length of the test pack's loop, in seconds.
pub const PACK_SECONDS: u64 = 30;

/// A 30 s pack: speech + one 160x90@100 rendition whose only key frame is
/// frame 0. No test lets a client send for as long as the loop, so any other
/// key frame from a client proves a request was answered.
pub fn pack() -> &'static Path {
    static PACK: OnceLock<PathBuf> = OnceLock::new();
    PACK.get_or_init(|| {
        build_pack(
            "replayer-test.pack",
            vec![Rendition::new(160, 90, 100).unwrap()],
            PACK_SECONDS,
            PACK_SECONDS,
        )
    })
}

/// Builds a speech + bars pack of `renditions` into the test target
/// directory: one voice, one variant, no screen track.
fn build_pack(name: &str, renditions: Vec<Rendition>, secs: u64, keyframe_secs: u64) -> PathBuf {
    build_with(
        name,
        BuildOptions {
            renditions,
            duration: Duration::from_secs(secs),
            keyframe_interval: Duration::from_secs(keyframe_secs),
            voices: Some(1),
            variants: 1,
            screen: Screen(None),
            ..BuildOptions::default()
        },
    )
}

/// Builds a speech + bars pack from `opts` into the test target directory.
fn build_with(name: &str, opts: BuildOptions) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let opts = BuildOptions {
        audio: AudioSource::Speech,
        video: VideoSource::Pattern(Pattern::Bars),
        output: path.clone(),
        ..opts
    };
    build(&opts, &mut |_| {}).unwrap_or_else(|e| panic!("building the test pack {name}: {e}"));
    path
}

/// Length of the two-rendition pack's loop, in seconds.
pub const PACK_TWO_SECONDS: u64 = 10;

/// A 10 s pack for adaptation: speech + two renditions, 320x180@500 and
/// 160x90@150 (tracks `video-320x180`, `video-160x90`), with a key frame
/// every second at the same positions.
pub fn pack_two() -> &'static Path {
    static PACK: OnceLock<PathBuf> = OnceLock::new();
    PACK.get_or_init(|| {
        build_pack(
            "replayer-test-two.pack",
            vec![
                Rendition::new(320, 180, 500).unwrap(),
                Rendition::new(160, 90, 150).unwrap(),
            ],
            PACK_TWO_SECONDS,
            1,
        )
    })
}

/// Length of the behaviour pack's loop, in seconds.
pub const PACK_PEOPLE_SECONDS: u64 = 10;

/// A 10 s pack for behaviour: two voices (with voice activity and a silence
/// track), two variants of two renditions (`video-192x108`, `video-160x90`,
/// key frames every second), and a 320x180 screen track at 5 fps.
pub fn pack_people() -> &'static Path {
    static PACK: OnceLock<PathBuf> = OnceLock::new();
    PACK.get_or_init(|| {
        build_with(
            "replayer-test-people.pack",
            BuildOptions {
                renditions: vec![
                    Rendition::new(192, 108, 150).unwrap(),
                    Rendition::new(160, 90, 100).unwrap(),
                ],
                duration: Duration::from_secs(PACK_PEOPLE_SECONDS),
                keyframe_interval: Duration::from_secs(1),
                voices: Some(2),
                variants: 2,
                screen: Screen(Some(Rendition::new(320, 180, 100).unwrap())),
                screen_fps: 5,
                ..BuildOptions::default()
            },
        )
    })
}

/// Settings from `yaml`, aimed at `relay` (pinned by hash) and the test pack.
pub fn settings(yaml: &str, relay: &Relay) -> Settings {
    settings_at(yaml, relay.url(), relay.cert_sha256())
}

/// Settings from `yaml`, aimed at `relay` (pinned by hash) and the pack `pack`.
pub fn settings_with_pack(yaml: &str, relay: &Relay, pack: &Path) -> Settings {
    let mut s = settings(yaml, relay);
    s.pack = pack.to_path_buf();
    s
}

/// Settings from `yaml`, aimed at the server at `url` with the certificate
/// hash `pin`, and the test pack.
pub fn settings_at(yaml: &str, url: String, pin: [u8; 32]) -> Settings {
    let file = config::parse(yaml).expect("test config parses");
    let o = Overrides {
        server_url: Some(url),
        pack: Some(pack().to_path_buf()),
        ..Default::default()
    };
    let mut s = Settings::resolve(file, &o, &|_| None).expect("test config resolves");
    s.trust = Trust::Pinned(vec![pin]);
    // Hermetic: `/version` is asked only where a test says (the default
    // port on loopback may be anybody's).
    if !yaml.contains("health_url") {
        s.wire.health_url = None;
    }
    s
}

/// Options for an in-process run: no progress, no summary.
pub fn quiet() -> synth_replayer::run::Options {
    synth_replayer::run::Options {
        progress: false,
        summary: false,
        ..Default::default()
    }
}

/// A participant made by hand, to look at what the server relays.
pub struct Probe {
    pub session: web_transport_quinn::Session,
    /// Every packet it received, in the order they were read.
    pub packets: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
}

impl Probe {
    /// Joins `meeting` as `user` and starts collecting every packet it receives.
    pub async fn join(relay: &Relay, user: &str, meeting: &str) -> Probe {
        let client = web_transport_quinn::ClientBuilder::new()
            .with_server_certificate_hashes(vec![relay.cert_sha256().to_vec()])
            .unwrap();
        let url: url::Url = format!("{}/lobby/{user}/{meeting}", relay.url())
            .parse()
            .unwrap();
        let session = within(10, "probe connect", client.connect(url))
            .await
            .expect("probe connects");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let s = session.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    st = s.accept_uni() => match st {
                        Ok(mut st) => {
                            if let Ok(b) = st.read_to_end(4_000_000).await {
                                let _ = tx.send(b);
                            }
                        }
                        Err(_) => return,
                    },
                    d = s.read_datagram() => match d {
                        Ok(d) => { let _ = tx.send(d.to_vec()); }
                        Err(_) => return,
                    },
                }
            }
        });
        let probe = Probe {
            session,
            packets: rx,
        };
        // The first non-RTT packet joins the room.
        probe
            .send(&synth_common::wire::connection(user, meeting))
            .await;
        probe
    }

    /// Sends one packet on its own uni stream.
    pub async fn send(&self, bytes: &[u8]) {
        let mut s = within(5, "probe open_uni", self.session.open_uni())
            .await
            .unwrap();
        within(5, "probe write", s.write_all(bytes)).await.unwrap();
        s.finish().unwrap();
    }
}

/// GETs `path` from a metrics endpoint; the body.
pub async fn scrape(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or(out)
}

/// Scrapes `/metrics` every 50 ms until `done` holds (failing after 30 s: a
/// bound on a hang); the scrape that held.
pub async fn scraped(
    addr: std::net::SocketAddr,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    within(30, what, async {
        loop {
            let t = scrape(addr, "/metrics").await;
            if done(&t) {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// The value of the sample `name` (with its labels) in a scrape.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("no metric {name}"))
}

/// The shutdown future of an in-process run: completes when `rx` gets its
/// message (a dropped sender never stops the run).
pub async fn stopped(rx: tokio::sync::oneshot::Receiver<()>) {
    if rx.await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A quiet run of `s` in the background with metrics on a free port: its
/// task, the metrics address once bound, and the sender that stops it.
pub async fn run_in_background(
    mut s: Settings,
) -> (
    tokio::task::JoinHandle<anyhow::Result<synth_replayer::run::Outcome>>,
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
) {
    s.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let opts = synth_replayer::run::Options {
        metrics_bound: Some(bound_tx),
        ..quiet()
    };
    let run = tokio::spawn(synth_replayer::run::run(s, opts, stopped(stop_rx)));
    let addr = within(10, "metrics bound", bound_rx).await.unwrap();
    (run, addr, stop_tx)
}
