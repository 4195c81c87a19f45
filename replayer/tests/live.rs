//! What a run does while it goes: the timeline (in the report and streamed
//! as JSON lines), live thresholds with `abort_on_fail`, and the capacity
//! search against a relay that refuses sessions beyond N.

use synth_relay::{Relay, RelayConfig};
use synth_replayer::report::StopReason;
use synth_replayer::run;
use synth_replayer::timeline::Sample;

use crate::support::{quiet, settings, within};

async fn relay(cfg: RelayConfig) -> Relay {
    within(10, "relay start", Relay::start(cfg))
        .await
        .expect("relay starts")
}

/// One sample per interval (plus the end's), each interval's counts adding
/// up to the report's totals exactly, and the same samples streamed to the
/// JSON lines file as the run went.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_has_a_sample_per_interval_that_adds_up_to_the_totals() {
    let r = relay(RelayConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let lines = dir.path().join("timeline.jsonl");
    let mut s = settings(
        r#"
duration: 3s
timeline_interval: 500ms
ramp_up_delay_ms: 0
groups:
  - {count: 4, user_id: "tl-{index}", meeting_id: "tl-{meeting}", meeting_size: 2}
"#,
        &r,
    );
    s.timeline = Some(lines.clone());
    let o = within(30, "run", run::run(s, quiet(), std::future::pending()))
        .await
        .unwrap();
    let rep = &o.report;
    let t = rep.timeline.as_ref().expect("a timeline");
    assert_eq!(t.interval_s, 0.5);
    let (ticks, end) = t.samples.split_at(t.samples.len() - 1);
    assert_eq!(end[0].phase.as_deref(), Some("end"));
    // 3 s at 0.5 s: the samples at 0.5 … 3.0 s (the last may coincide with the stop).
    assert!(
        (5..=6).contains(&ticks.len()),
        "{} samples: {:?}",
        ticks.len(),
        ticks.iter().map(|s| s.t_s).collect::<Vec<_>>()
    );
    for (k, s) in ticks.iter().enumerate() {
        let due = 0.5 * (k + 1) as f64;
        assert!(s.t_s >= due, "sample {k} at {} before {due}", s.t_s);
        assert!(s.unix_ms >= t.start_unix_ms);
    }
    let sum = |f: fn(&Sample) -> u64| t.samples.iter().map(f).sum::<u64>();
    assert_eq!(sum(|s| s.sent_packets.audio), rep.audio.sent.packets);
    assert_eq!(sum(|s| s.sent_packets.video), rep.video.sent.packets);
    assert_eq!(sum(|s| s.recv_packets.audio), rep.audio.received.packets);
    assert_eq!(sum(|s| s.recv_packets.video), rep.video.received.packets);
    assert!(rep.audio.received.packets > 0);
    assert!(ticks.iter().any(|s| s.latency_ms.audio.p99.is_some()));
    assert!(ticks
        .iter()
        .all(|s| s.clients.connected + s.clients.stalled <= 4));
    assert!(ticks.iter().any(|s| s.rss_mb > 0.0));

    // The stream: a start event, then the same samples, in order.
    let text = std::fs::read_to_string(&lines).unwrap();
    let values: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(values[0]["kind"], "start");
    let streamed: Vec<Sample> = values
        .iter()
        .filter(|v| v.get("kind").is_none())
        .map(|v| serde_json::from_value(v.clone()).unwrap())
        .collect();
    assert_eq!(&streamed, &t.samples);
    r.shutdown().await;
}

/// A threshold with `abort_on_fail` ends a run meant to last a minute as
/// soon as it fails after its `delay_abort_eval`: stopped by `abort`, a
/// complete report, exit code 3. Without `abort_on_fail` the same failure
/// is only a timeline mark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_on_fail_ends_the_run_early_with_exit_3() {
    let r = relay(RelayConfig::default()).await;
    let s = settings(
        r#"
duration: 60s
ramp_up_delay_ms: 0
timeline_interval: 250ms
groups:
  - {count: 2, user_id: "ab-{index}", meeting_id: "ab-room"}
thresholds:
  audio_received_packets:
    threshold: "< 20"
    abort_on_fail: true
    delay_abort_eval: 1s
  video_received_packets: "< 1"
"#,
        &r,
    );
    let o = within(
        30,
        "aborted run",
        run::run(s, quiet(), std::future::pending()),
    )
    .await
    .unwrap();
    let rep = &o.report;
    assert_eq!(rep.stopped_by, StopReason::Abort);
    assert_eq!(o.exit_code, run::EXIT_THRESHOLD);
    assert!(!rep.passed);
    let line = rep.aborted.as_deref().expect("the abort's verdict line");
    assert!(line.starts_with("audio_received_packets < 20"), "{line}");
    let abort = rep
        .events
        .iter()
        .find(|e| e.kind == "abort")
        .expect("an abort event");
    assert_eq!(abort.name, "audio_received_packets");
    assert!(
        abort.t_s >= 1.0,
        "not before delay_abort_eval: {}",
        abort.t_s
    );
    // The other failing threshold was seen failing but did not abort.
    assert!(rep
        .events
        .iter()
        .any(|e| e.kind == "threshold_failed" && e.name == "video_received_packets"));
    assert!(rep.elapsed_s < 60.0);
    // The report is complete: the honest end ran, every send accounted for.
    assert_eq!(rep.audio.sent.unacked, 0);
    assert!(rep.timeline.as_ref().unwrap().samples.len() >= 4);
    r.shutdown().await;
}

/// A capacity search against a relay that refuses sessions beyond 37 finds
/// 37 with step 1: the step of 38 clients breaks (a client refused), and
/// the knee is the step before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_the_relays_max_sessions() {
    let r = relay(RelayConfig {
        max_sessions: Some(37),
        ..RelayConfig::default()
    })
    .await;
    let s = settings(
        r#"
ramp_up_delay_ms: 10
search:
  start: 35
  step: 1
  max: 45
  hold: 1500ms
  meeting_size: 2
  enable_video: false
  # The relay runs in this process: its CPU would count as the generator's.
  ignore_saturation: true
  slo:
    audio_lost: "< 1000000"
"#,
        &r,
    );
    assert_eq!(s.clients.len(), 45);
    let o = within(60, "search", run::run(s, quiet(), std::future::pending()))
        .await
        .unwrap();
    let rep = &o.report;
    assert_eq!(rep.stopped_by, StopReason::Search);
    let se = rep.search.as_ref().expect("a search report");
    let steps: Vec<(usize, bool)> = se.steps.iter().map(|s| (s.clients, s.passed)).collect();
    assert_eq!(
        steps,
        [(35, true), (36, true), (37, true), (38, false)],
        "{:#?}",
        se.steps
    );
    assert_eq!(se.knee, Some(37));
    assert_eq!(se.ended, "broken");
    let first = se.first_broken.as_deref().unwrap();
    assert!(first.starts_with("connect_success_rate >= 1"), "{first}");
    assert!(se.steps[3].figures.contains_key("audio_lost"));
    assert!(rep.events.iter().any(|e| e.kind == "step_end"));
    // The 38th client was refused: one failed client, nothing else broke.
    assert_eq!(rep.clients.failed, 1);
    assert!(rep.passed, "a search that found its knee passes");
    r.shutdown().await;
}
