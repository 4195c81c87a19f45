//! `report merge` and `report diff` as a user runs them: two pods' runs
//! against one relay merged through the binary into the sums of their parts,
//! and a report diffed against itself and against a worse copy.

use std::path::Path;
use std::process::{Command, Output};

use synth_relay::{Relay, RelayConfig};
use synth_replayer::report::{Percentiles, Report};
use synth_replayer::{hist, run};

use crate::support::{quiet, settings, settled, within};

const BIN: &str = env!("CARGO_BIN_EXE_synth-replay");

fn replay(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("running synth-replay")
}

fn code_and_text(o: &Output) -> (i32, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr),
    )
}

/// One pod's config: its own ids and meetings, a threshold each pod passes.
fn pod(n: usize) -> String {
    format!(
        r#"
duration: 2s
ramp_up_delay_ms: 0
timeline_interval: 500ms
groups:
  - {{count: 4, user_id: "pod{n}-{{index}}", meeting_id: "pod{n}-{{meeting}}", meeting_size: 2}}
thresholds:
  audio_latency_p99_ms: "< 100000"
"#
    )
}

/// The histograms of `parts` added, as the merged report must give them.
fn added(parts: &[&Percentiles]) -> Percentiles {
    hist::merge(parts.iter().map(|p| p.hist.as_deref()))
        .unwrap()
        .map_or_else(Percentiles::default, |h| Percentiles::from_us(&h))
}

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap()
}

/// Two pods run at once against one relay, each writing its report; the
/// binary merges them: counts are the sums of the parts, sent packets are
/// what the relay received from both, percentiles those of the added
/// histograms, and the pods' threshold is checked on the merged figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pods_merge_into_the_sums_of_their_parts() {
    let relay = within(10, "relay start", Relay::start(RelayConfig::default()))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = within(60, "two pods", async {
        tokio::join!(
            run::run(settings(&pod(0), &relay), quiet(), std::future::pending()),
            run::run(settings(&pod(1), &relay), quiet(), std::future::pending()),
        )
    })
    .await;
    let (a, b) = (a.unwrap().report, b.unwrap().report);
    let (pa, pb, all) = (
        dir.path().join("pod-0.json"),
        dir.path().join("pod-1.json"),
        dir.path().join("all.json"),
    );
    a.write(&pa).unwrap();
    b.write(&pb).unwrap();
    let args: Vec<String> = ["report", "merge"]
        .into_iter()
        .map(String::from)
        .chain([&pa, &pb].map(|p| p.display().to_string()))
        .chain(["-o".to_string(), all.display().to_string()])
        .collect();
    let o = tokio::task::spawn_blocking(move || {
        replay(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap();
    let (code, text) = code_and_text(&o);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("PASS audio_latency_p99_ms < 100000"),
        "{text}"
    );
    let m = Report::read(&all).unwrap();

    assert_eq!(m.merged_from.len(), 2);
    assert_eq!(m.clients.planned, 8);
    assert_eq!(
        m.clients.connected,
        a.clients.connected + b.clients.connected
    );
    for (x, (ma, mb, mm)) in [
        ("audio", (&a.audio, &b.audio, &m.audio)),
        ("video", (&a.video, &b.video, &m.video)),
    ] {
        let (sa, sb, sm) = (&ma.sent, &mb.sent, &mm.sent);
        assert_eq!(sm.packets, sa.packets + sb.packets, "{x}");
        assert_eq!(sm.acked, sa.acked + sb.acked, "{x}");
        assert_eq!(sm.bytes, sa.bytes + sb.bytes, "{x}");
        assert_eq!(sm.payload_bytes, sa.payload_bytes + sb.payload_bytes, "{x}");
        let (ra, rb, rm) = (&ma.received, &mb.received, &mm.received);
        assert!(ra.packets > 0 && rb.packets > 0, "{x}: each pod received");
        assert_eq!(rm.packets, ra.packets + rb.packets, "{x}");
        assert_eq!(rm.bytes, ra.bytes + rb.bytes, "{x}");
        assert_eq!(rm.lost, ra.lost + rb.lost, "{x}");
        assert_eq!(
            rm.exact.expected,
            ra.exact.expected + rb.exact.expected,
            "{x}"
        );
        assert_eq!(rm.late, ra.late + rb.late, "{x}");
        assert_eq!(
            rm.rate_per_sender.pairs,
            ra.rate_per_sender.pairs + rb.rate_per_sender.pairs
        );
        for (name, p, q, r) in [
            ("latency", &ra.latency_ms, &rb.latency_ms, &rm.latency_ms),
            ("jitter", &ra.jitter_ms, &rb.jitter_ms, &rm.jitter_ms),
        ] {
            assert_eq!(r.count, p.count + q.count, "{x} {name}");
            assert_eq!(json(r), json(&added(&[p, q])), "{x} {name}");
        }
    }
    assert_eq!(m.heartbeats.sent, a.heartbeats.sent + b.heartbeats.sent);
    assert_eq!(
        json(&m.connect_ms),
        json(&added(&[&a.connect_ms, &b.connect_ms]))
    );
    assert_eq!(m.connect_ms.count, 8);
    assert_eq!(
        json(&m.send_lateness_ms),
        json(&added(&[&a.send_lateness_ms, &b.send_lateness_ms]))
    );
    let mut meetings: Vec<_> = a
        .meetings
        .iter()
        .chain(&b.meetings)
        .map(|x| x.meeting_id.clone())
        .collect();
    meetings.sort();
    assert_eq!(
        m.meetings
            .iter()
            .map(|x| x.meeting_id.clone())
            .collect::<Vec<_>>(),
        meetings
    );

    // What the relay received from both pods, exactly.
    let stats = settled(
        10,
        || relay.stats().total(),
        |t| (t.audio_packets, t.video_packets) == (m.audio.sent.packets, m.video.sent.packets),
    )
    .await;
    assert_eq!(stats.audio_packets, m.audio.sent.packets);
    assert_eq!(stats.video_packets, m.video.sent.packets);
    assert_eq!(stats.heartbeats, m.heartbeats.sent);

    // The timeline holds every packet of both pods once.
    let t = m.timeline.as_ref().unwrap();
    let sent: u64 = t.samples.iter().map(|s| s.sent_packets.audio).sum();
    assert_eq!(sent, m.audio.sent.packets);
    relay.shutdown().await;
}

fn write(dir: &Path, name: &str, r: &Report) -> String {
    let p = dir.join(name);
    r.write(&p).unwrap();
    p.display().to_string()
}

/// A small real report, and the run's own.
async fn one_report() -> Report {
    let relay = within(10, "relay start", Relay::start(RelayConfig::default()))
        .await
        .unwrap();
    let o = within(
        30,
        "run",
        run::run(settings(&pod(7), &relay), quiet(), std::future::pending()),
    )
    .await
    .unwrap();
    relay.shutdown().await;
    o.report
}

/// A report diffed against itself passes any limit; against a copy with a
/// worse latency p99 and loss it fails with 3, naming the figures and both
/// values; bad input and a bad limit exit 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_passes_against_itself_and_fails_against_a_worse_report() {
    let base = one_report().await;
    let dir = tempfile::tempdir().unwrap();
    let b = write(dir.path(), "base.json", &base);
    let mut worse = base.clone();
    let p99 = base
        .audio
        .received
        .latency_ms
        .p99
        .expect("latency measured");
    worse.audio.received.latency_ms.p99 = Some(p99 * 2.0 + 10.0);
    worse.audio.received.lost = base.audio.received.lost + 50;
    let w = write(dir.path(), "worse.json", &worse);
    let (b2, w2) = (b.clone(), w.clone());
    let outs = tokio::task::spawn_blocking(move || {
        let limits = [
            "--fail-on",
            "audio_latency_p99_ms:+10%",
            "--fail-on",
            "audio_lost:+5",
            "--fail-on",
            "video_fps_p5:-10%",
        ];
        let run = |cur: &str, extra: &[&str]| {
            let mut args = vec!["report", "diff", &b2, cur];
            args.extend_from_slice(extra);
            replay(&args)
        };
        [
            run(&b2, &limits),
            run(&w2, &limits),
            run(&w2, &["--json", "--fail-on", "audio_lost:+5"]),
            run(&w2, &["--fail-on", "audio_latency_p999_ms:+10%"]),
            run("/nonexistent/report.json", &[]),
        ]
    })
    .await
    .unwrap();
    let [same, worse_o, json_o, bad_limit, missing] = outs.map(|o| code_and_text(&o));

    assert_eq!(same.0, 0, "{}", same.1);
    assert!(same.1.contains("audio_latency_p99_ms"), "{}", same.1);
    assert!(!same.1.contains("FAIL"), "{}", same.1);

    assert_eq!(worse_o.0, run::EXIT_THRESHOLD, "{}", worse_o.1);
    assert!(
        worse_o
            .1
            .contains("FAIL audio_latency_p99_ms:+10%: baseline"),
        "{}",
        worse_o.1
    );
    assert!(
        worse_o.1.contains("FAIL audio_lost:+5: baseline"),
        "{}",
        worse_o.1
    );
    assert!(!worse_o.1.contains("FAIL video_fps_p5"), "{}", worse_o.1);

    assert_eq!(json_o.0, run::EXIT_THRESHOLD);
    let v: serde_json::Value = serde_json::from_str(
        json_o
            .1
            .lines()
            .take_while(|l| !l.starts_with("error:"))
            .collect::<Vec<_>>()
            .join("\n")
            .as_str(),
    )
    .unwrap();
    assert_eq!(v["passed"], false);
    assert_eq!(v["failed"][0]["limit"], "audio_lost:+5");
    assert_eq!(
        v["failed"][0]["current"].as_f64(),
        Some((base.audio.received.lost + 50) as f64)
    );

    assert_eq!(bad_limit.0, run::EXIT_CONFIG, "{}", bad_limit.1);
    assert!(bad_limit.1.contains("known: "), "{}", bad_limit.1);
    assert_eq!(missing.0, run::EXIT_CONFIG);
    assert!(
        missing.1.contains("/nonexistent/report.json"),
        "{}",
        missing.1
    );
}

/// Bad input to `report merge` exits 2 with one line naming the file.
#[test]
fn merge_refuses_bad_input_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let put = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let cases = [
        (
            dir.path().join("none.json").display().to_string(),
            "cannot read",
        ),
        (put("text.json", "hello"), "not JSON"),
        (
            put("other.json", r#"{"schema": "k6"}"#),
            "not a synth-replay report",
        ),
        (
            put(
                "old.json",
                r#"{"schema": "synth-replay-report", "version": 2}"#,
            ),
            "schema version 2",
        ),
        (
            put(
                "half.json",
                r#"{"schema": "synth-replay-report", "version": 3}"#,
            ),
            "not a valid report",
        ),
    ];
    for (file, want) in cases {
        let (code, text) = code_and_text(&replay(&["report", "merge", &file]));
        assert_eq!(code, run::EXIT_CONFIG, "{file}: {text}");
        let err = text
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect::<Vec<_>>();
        assert_eq!(err.len(), 1, "{text}");
        assert!(err[0].contains(&file) && err[0].contains(want), "{text}");
        assert_eq!(text.lines().count(), 1, "one line: {text}");
    }
}
