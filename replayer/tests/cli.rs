//! The `synth-replay` binary as a user runs it: bad input gives one line and
//! the documented exit code; SIGTERM mid-run still writes a complete report;
//! a violated threshold exits 3; tokens are checked.
//!
//! Runs that must be under way before the test acts are watched through
//! their metrics endpoint and stopped by the test, never given a time.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use synth_relay::{Relay, RelayConfig};
use synth_replayer::config::Credentials;
use synth_replayer::run;

use crate::support::{metric, pack, quiet, run_in_background, scrape, settings, within};

const BIN: &str = env!("CARGO_BIN_EXE_synth-replay");

fn command(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("SERVER_URL")
        .env_remove("CONFIG")
        .env_remove("PACK")
        .env_remove("RUST_LOG");
    c
}

fn replay(args: &[&str]) -> Output {
    command(args).output().expect("running synth-replay")
}

fn spawn(args: &[&str]) -> Child {
    command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting synth-replay")
}

/// Waits for `child` to exit, killing it and failing the test after `secs`
/// seconds (a bound on a hang).
fn finish(child: Child, secs: u64, what: &str) -> Output {
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(out) => out.expect("waiting for synth-replay"),
        Err(_) => {
            // SAFETY: kill with our child's pid and a valid signal number has no memory effects.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("synth-replay still running after {secs} s: {what}");
        }
    }
}

/// A loopback TCP port that is free now, for a child's metrics endpoint (the
/// child does not say which port it bound; were the port taken meanwhile,
/// the child would fail to bind it and say so).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// `GET /metrics` from 127.0.0.1:`port`; None while nothing answers there.
fn get_metrics(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// Kills the child if the test fails while it runs (its run lasts an hour).
struct KillOnPanic<'a>(&'a mut Child);

impl Drop for KillOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.kill();
        }
    }
}

/// The child's metrics once `ready` holds for them; fails the test if the
/// child exits first, or after 60 s (a bound on a hang).
fn metrics_when(child: &mut Child, port: u16, ready: impl Fn(&str) -> bool) -> String {
    let child = KillOnPanic(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = None;
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("synth-replay exited mid-run ({status}); last metrics: {last:?}");
        }
        if let Some(text) = get_metrics(port) {
            if ready(&text) {
                return text;
            }
            last = Some(text);
        }
        assert!(
            Instant::now() < deadline,
            "synth-replay's metrics never got there: {last:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

const CONNECTED: &str = "synth_clients{state=\"connected\"}";
const AUDIO_SENT: &str = "synth_packets_sent_total{media=\"audio\"}";
const AUDIO_RECEIVED: &str = "synth_packets_received_total{media=\"audio\"}";

/// SIGTERM to our child.
fn sigterm(child: &Child) {
    // SAFETY: kill with a valid pid and signal number has no memory effects.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exactly one line on stderr, starting `error:` and containing `want`.
fn assert_one_line_error(o: &Output, code: i32, want: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    let lines: Vec<_> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err:?}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(lines[0].contains(want), "want {want:?} in {err:?}");
    assert!(!err.contains("panicked"));
}

#[test]
fn bad_configs_fail_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let pack = pack().display().to_string();
    let cases = [
        (
            "unknown.yaml",
            "clients: [{user_id: a, meeting_id: m, colour: red}]\n",
            "unknown field `colour`",
        ),
        (
            "badid.yaml",
            "clients: [{user_id: \"a.b\", meeting_id: m}]\n",
            "user_id",
        ),
        (
            "badmeeting.yaml",
            "clients: [{user_id: a, meeting_id: \"x@y\"}]\n",
            "'@'",
        ),
        (
            "rendition.yaml",
            "clients: [{user_id: a, meeting_id: m, rendition: video-9x9}]\n",
            "rendition \"video-9x9\"",
        ),
        ("yaml.yaml", "clients: [\n", "line"),
    ];
    for (name, text, want) in cases {
        let cfg = write(dir.path(), name, text);
        let o = replay(&["run", "--quiet", "--config", &cfg, "--pack", &pack]);
        assert_one_line_error(&o, 2, want);
        let o = replay(&["validate", "--config", &cfg, "--pack", &pack]);
        assert_one_line_error(&o, 2, want);
    }
    // The error names the file.
    let cfg = write(dir.path(), "named.yaml", "bogus: 1\n");
    let o = replay(&["run", "--quiet", "--config", &cfg, "--pack", &pack]);
    assert_one_line_error(&o, 2, "named.yaml");
    // A missing pack and a corrupt one.
    let cfg = write(
        dir.path(),
        "ok.yaml",
        "clients: [{user_id: a, meeting_id: m}]\n",
    );
    let o = replay(&[
        "run",
        "--quiet",
        "--config",
        &cfg,
        "--pack",
        "/nonexistent/x.pack",
    ]);
    assert_one_line_error(&o, 2, "opening pack /nonexistent/x.pack");
    let junk = write(dir.path(), "junk.pack", "not a pack at all, just some text that is long enough to have a header and then some more bytes to fill 128 of them ......................................");
    let o = replay(&["run", "--quiet", "--config", &cfg, "--pack", &junk]);
    assert_one_line_error(&o, 2, "not a pack");
    let o = replay(&["run", "--quiet", "--config", "/nonexistent/c.yaml"]);
    assert_one_line_error(&o, 2, "reading config /nonexistent/c.yaml");
}

#[test]
fn unreachable_server_fails_with_one_line() {
    // A bound UDP socket that never answers: the handshake times out.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let (child, report, _) = spawn_run(
        dir.path(),
        &format!(
            "server_url: https://127.0.0.1:{port}\nwire: per_packet\nconnect_timeout: 1s\nconnect_attempts: 1\nduration: 1h\ntls: {{insecure: true}}\nclients: [{{user_id: a, meeting_id: m}}]\n"
        ),
    );
    let o = finish(child, 60, "giving up on an unreachable server");
    assert_one_line_error(&o, 1, "no client could connect");
    assert!(stderr(&o).contains(&format!("127.0.0.1:{port}")));
    // It gave up once its only client had failed, not at the end of the (hour-long) run.
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(v["stopped_by"], "failure");
    assert_eq!(v["clients"]["connected"], 0);
}

#[test]
fn validate_prints_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "g.yaml",
        "groups:\n  - {count: 10, user_id: \"bot-{pod}-{index}\", meeting_id: \"room-{meeting}\", meeting_size: 5}\n",
    );
    let o = Command::new(BIN)
        .args([
            "validate",
            "--json",
            "--config",
            &cfg,
            "--pack",
            &pack().display().to_string(),
        ])
        .env("POD_NAME", "synth-7")
        .env("POD_INDEX", "3")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let clients = v["clients"].as_array().unwrap();
    assert_eq!(clients.len(), 10);
    assert_eq!(clients[0]["user_id"], "bot-synth-7-0");
    // Pod 3 of 10 clients each: global 30..39, meetings of 5: room-6 and room-7.
    assert_eq!(v["meetings"]["room-6"], 5);
    assert_eq!(v["meetings"]["room-7"], 5);
    assert_eq!(clients[0]["rendition"], "video-160x90");
    assert!(v["expected_kbps"]["video"].as_f64().unwrap() > 0.0);
}

pub fn validate_against_schema(report: &serde_json::Value) {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../docs/report-schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(report)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "report violates the schema: {errors:#?}");
}

/// `synth-replay run --quiet` of the config `yaml` (written into `dir`) on
/// the test pack, with metrics on a free port: the child, where its report
/// goes (its HTML page and JUnit XML beside it, as `.html` and `.xml`), and
/// the port.
fn spawn_run(dir: &Path, yaml: &str) -> (Child, std::path::PathBuf, u16) {
    let cfg = write(dir, "run.yaml", yaml);
    let report = dir.join("report.json");
    let port = free_port();
    let child = spawn(&[
        "run",
        "--quiet",
        "--config",
        &cfg,
        "--pack",
        &pack().display().to_string(),
        "--report",
        &report.display().to_string(),
        "--html",
        &report.with_extension("html").display().to_string(),
        "--junit",
        &report.with_extension("xml").display().to_string(),
        "--participants",
        &report.with_extension("csv").display().to_string(),
        "--metrics-listen",
        &format!("127.0.0.1:{port}"),
    ]);
    (child, report, port)
}

#[test]
fn sigterm_mid_run_exits_0_with_a_complete_report() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, report, port) = spawn_run(
        dir.path(),
        "duration: 1h\nramp_up_delay_ms: 0\ngroups: [{count: 3, user_id: \"u{index}\", meeting_id: m}]\n",
    );
    // Mid-run: all three connected, sending and receiving.
    let mid = metrics_when(&mut child, port, |m| {
        metric(m, CONNECTED) == 3.0
            && metric(m, AUDIO_SENT) > 150.0
            && metric(m, AUDIO_RECEIVED) > 0.0
    });
    sigterm(&child);
    let out = finish(child, 30, "exit after SIGTERM");
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("synth-replay report"));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    // Stopped by the signal, not by the hour-long duration.
    assert_eq!(v["stopped_by"], "signal");
    assert_eq!(v["clients"]["planned"], 3);
    assert_eq!(v["clients"]["connected"], 3);
    // Counters only grow: the report holds at least what was scraped mid-run.
    let (sent, received) = (metric(&mid, AUDIO_SENT), metric(&mid, AUDIO_RECEIVED));
    assert!(v["audio"]["sent"]["packets"].as_f64().unwrap() >= sent);
    assert!(v["audio"]["received"]["packets"].as_f64().unwrap() >= received);
    validate_against_schema(&v);
    let page = std::fs::read_to_string(report.with_extension("html")).unwrap();
    assert!(page.contains("class=\"verdict pass\">PASSED<"), "{page}");
    assert!(page.contains("<td>m</td><td class=\"n\">3</td><td class=\"n\">3</td>"));
    // The JUnit XML after a signal too: the built-in verdict, passing.
    let xml = std::fs::read_to_string(report.with_extension("xml")).unwrap();
    assert!(
        xml.contains(r#"<testsuites name="synth-replay" tests="2" failures="0""#),
        "{xml}"
    );
    assert!(xml.contains(r#"<testcase name="connected_at_end_share &gt;= 0.5 (built in)""#));
}

#[test]
fn violated_threshold_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, report, port) = spawn_run(
        dir.path(),
        "duration: 1h\nramp_up_delay_ms: 0\nthresholds:\n  audio_latency_p99_ms: \"< 0\"\n  connect_success_rate: \">= 1\"\ngroups: [{count: 2, user_id: \"u{index}\", meeting_id: m}]\n",
    );
    // Both connected, audio latency measured and the live check failing
    // on it (synth_threshold_passing): then end the run.
    let failing = r#"synth_threshold_passing{name="audio_latency_p99_ms",expr="< 0"} 0"#;
    let mid = metrics_when(&mut child, port, |m| {
        metric(m, CONNECTED) == 2.0 && metric(m, AUDIO_RECEIVED) > 0.0 && m.contains(failing)
    });
    assert!(
        mid.contains(r#"synth_threshold_passing{name="connect_success_rate",expr=">= 1"} 1"#),
        "{mid}"
    );
    sigterm(&child);
    let o = finish(child, 30, "exit after SIGTERM");
    assert_eq!(o.status.code(), Some(run::EXIT_THRESHOLD), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("FAIL audio_latency_p99_ms < 0"), "{out}");
    assert!(out.contains("PASS connect_success_rate >= 1"), "{out}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(v["passed"], false);
    let t = v["thresholds"].as_array().unwrap();
    let lat = t
        .iter()
        .find(|t| t["name"] == "audio_latency_p99_ms")
        .unwrap();
    assert_eq!(lat["pass"], false);
    assert!(lat["actual"].as_f64().unwrap() >= 0.0);
    validate_against_schema(&v);
    let page = std::fs::read_to_string(report.with_extension("html")).unwrap();
    assert!(page.contains("class=\"verdict fail\">FAILED<"));
    assert!(page.contains("<td>audio_latency_p99_ms</td><td>&lt;</td><td class=\"n\">0</td>"));
    // The JUnit XML: the two thresholds and the built-in verdict, the
    // failing one with both values; `report junit` writes the same.
    let junit = report.with_extension("xml");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(r#"<testsuites name="synth-replay" tests="4" failures="1""#),
        "{xml}"
    );
    let actual = (lat["actual"].as_f64().unwrap() * 1000.0).round() / 1000.0;
    let message = format!(r#"<failure message="actual {actual}, wanted &lt; 0""#);
    assert!(xml.contains(&message), "{message} not in {xml}");
    let again = replay(&["report", "junit", &report.display().to_string()]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(String::from_utf8_lossy(&again.stdout), xml);
    let missing = dir.path().join("none.json").display().to_string();
    assert_one_line_error(&replay(&["report", "junit", &missing]), 2, "cannot read");
    // The participants CSV: both, scored; `report participants` writes the same.
    let csv = std::fs::read_to_string(report.with_extension("csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("id,group,meeting,network,verdict,audio_mos,"));
    for l in &lines[1..] {
        let f: Vec<&str> = l.split(',').collect();
        assert!(f[0] == "u0" || f[0] == "u1", "{l}");
        assert!(
            f[5].parse::<f64>()
                .is_ok_and(|mos| (1.0..=4.5).contains(&mos)),
            "{l}"
        );
    }
    let again = replay(&["report", "participants", &report.display().to_string()]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(String::from_utf8_lossy(&again.stdout), csv);
    assert_one_line_error(
        &replay(&["report", "participants", &missing]),
        2,
        "cannot read",
    );
}

/// `metrics_hold`: once the run is over and its files written, /metrics
/// goes on serving the final verdicts and the participants' scores until
/// the hold ends or a signal cuts it; the exit code is the run's.
#[test]
fn metrics_hold_serves_the_final_values_after_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, report, port) = spawn_run(
        dir.path(),
        "duration: 2s\nmetrics_hold: 1h\nramp_up_delay_ms: 0\nthresholds:\n  connect_success_rate: \">= 1\"\ngroups: [{count: 2, user_id: \"u{index}\", meeting_id: m}]\n",
    );
    // Served once the report is out: the run is over, the endpoint is not.
    let done = metrics_when(&mut child, port, |m| {
        report.exists() && m.contains("synth_participants_by_verdict{")
    });
    let scored = metric(&done, "synth_participant_audio_mos_count");
    assert_eq!(scored, 2.0, "{done}");
    assert!(done.contains(r#"synth_threshold_passing{name="connect_success_rate",expr=">= 1"} 1"#));
    assert!(done.contains(
        r#"synth_threshold_passing{name="connected_at_end_share",expr=">= 0.5 (built in)"} 1"#
    ));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let green = v["scores"]["run"]["verdicts"]["green"].as_f64().unwrap();
    assert_eq!(
        metric(&done, r#"synth_participants_by_verdict{verdict="green"}"#),
        green
    );
    sigterm(&child);
    let o = finish(child, 30, "exit after SIGTERM in the hold");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Without an endpoint there is nothing to hold: refused before the run.
    let cfg = write(
        dir.path(),
        "hold.yaml",
        "duration: 1s\nmetrics_hold: 10s\ngroups: [{count: 1, user_id: u, meeting_id: m}]\n",
    );
    assert_one_line_error(
        &replay(&[
            "run",
            "--config",
            &cfg,
            "--pack",
            &pack().display().to_string(),
        ]),
        2,
        "metrics_hold needs metrics_listen",
    );
}

/// `report html` renders a written report; bad input is one line and exit 2.
#[test]
fn report_html_renders_a_report_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let report = write(
        dir.path(),
        "r.json",
        r#"{"schema": "synth-replay-report", "version": 2, "server": "embedded relay", "passed": true,
            "meetings": [{"meeting_id": "room-<0>", "clients": 2}]}"#,
    );
    let page = dir.path().join("out").join("r.html");
    let o = replay(&["report", "html", &report, "-o", &page.display().to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains(">PASSED<"));
    assert!(html.contains("<td>room-&lt;0&gt;</td>"));
    assert!(html.contains("A timeline is not in this report"));
    let out = page.display().to_string();
    let not_json = write(dir.path(), "bad.json", "{\"schema\": ");
    let not_ours = write(dir.path(), "other.json", r#"{"schema": "k6"}"#);
    let none = dir.path().join("none.json").display().to_string();
    for (input, want) in [
        (none.as_str(), "reading report"),
        (not_json.as_str(), "is not JSON"),
        (not_ours.as_str(), "is not a synth-replay report"),
    ] {
        assert_one_line_error(&replay(&["report", "html", input, "-o", &out]), 2, want);
    }
    let to_dir = replay(&[
        "report",
        "html",
        &report,
        "-o",
        &dir.path().display().to_string(),
    ]);
    assert_one_line_error(&to_dir, 2, "is a directory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minted_tokens_accepted_wrong_secret_rejected() {
    let relay = within(
        10,
        "relay",
        Relay::start(RelayConfig {
            jwt_secret: Some(b"right-secret".to_vec()),
            require_token: true,
            ..RelayConfig::default()
        }),
    )
    .await
    .unwrap();
    // Runs end when stopped, or (refused) once every client has failed.
    let yaml = "duration: 1h\nramp_up_delay_ms: 0\nconnect_attempts: 1\nclients: [{user_id: a, meeting_id: m}, {user_id: b, meeting_id: m}]\n";
    let mut s = settings(yaml, &relay);
    s.credentials = Credentials::Mint {
        secret: b"right-secret".to_vec(),
        ttl: Duration::from_secs(60),
    };
    let (ok, addr, stop_tx) = run_in_background(s).await;
    let mid = within(20, "both in and hearing each other", async {
        loop {
            let m = scrape(addr, "/metrics").await;
            if metric(&m, CONNECTED) == 2.0 && metric(&m, AUDIO_RECEIVED) > 0.0 {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    stop_tx.send(()).unwrap();
    let ok = within(20, "run with the right secret", ok)
        .await
        .unwrap()
        .expect("accepted");
    assert_eq!(ok.report.clients.connected, 2);
    assert!(ok.report.audio.received.packets as f64 >= metric(&mid, AUDIO_RECEIVED));

    let mut s = settings(yaml, &relay);
    s.credentials = Credentials::Mint {
        secret: b"wrong-secret".to_vec(),
        ttl: Duration::from_secs(60),
    };
    let e = within(
        20,
        "run with a wrong secret",
        run::run(s, quiet(), std::future::pending()),
    )
    .await
    .expect_err("rejected");
    let msg = format!("{e:#}");
    assert!(msg.contains("rejected"), "{msg}");
    assert!(
        msg.contains("token=REDACTED"),
        "the token is not logged: {msg}"
    );
    assert!(!msg.contains('\n'));
    // The path form is refused when the server requires tokens.
    let mut s = settings(yaml, &relay);
    s.credentials = Credentials::None;
    let e = within(
        20,
        "path form",
        run::run(s, quiet(), std::future::pending()),
    )
    .await
    .expect_err("rejected");
    assert!(format!("{e:#}").contains("rejected"));
    relay.shutdown().await;
}

#[test]
fn report_or_html_path_that_is_a_directory_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let o = replay(&[
        "run",
        "--quiet",
        "--pack",
        &pack().display().to_string(),
        "--report",
        &dir.path().display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("is a directory"), "{err}");
    assert!(o.stdout.is_empty(), "refused before any client ran");
    let o = replay(&[
        "run",
        "--quiet",
        "--pack",
        &pack().display().to_string(),
        "--html",
        &dir.path().display().to_string(),
    ]);
    assert_one_line_error(&o, 2, "--html: report");
    assert!(o.stdout.is_empty(), "refused before any client ran");
}

/// The report's folder is replaced by a file mid-run: the summary still
/// prints, the JSON goes to a fallback in the working folder, and the exit
/// code says the report is not where it was asked for.
#[test]
fn report_unwritable_at_the_end_goes_to_a_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "run.yaml",
        "duration: 3s\nramp_up_delay_ms: 0\ngroups: [{count: 2, user_id: \"u{index}\", meeting_id: m}]\n",
    );
    let out = dir.path().join("out");
    let port = free_port();
    let child = command(&[
        "run",
        "--quiet",
        "--config",
        &cfg,
        "--pack",
        &pack().display().to_string(),
        "--report",
        &out.join("r.json").display().to_string(),
        "--metrics-listen",
        &format!("127.0.0.1:{port}"),
    ])
    .current_dir(dir.path())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Once the run is up (its metrics answer), its report folder goes away.
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "the run never served metrics");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::write(&out, b"now a file").unwrap();
    let o = finish(child, 60, "run ends");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("synth-replay report"));
    assert!(err.contains("the report was written to"), "{err}");
    let fallback: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("synth-replay-report-")
        })
        .collect();
    assert_eq!(fallback.len(), 1, "{err}");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fallback[0].path()).unwrap()).unwrap();
    assert_eq!(v["clients"]["planned"], 2);
}

/// Debug logs of runs with minted tokens, a fixed token and a password in
/// the server URL never show the token, the secret or the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_logs_carry_no_secret() {
    let relay = Relay::start(RelayConfig {
        jwt_secret: Some(b"s3cret-signing-key".to_vec()),
        ..RelayConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pin = synth_common::fingerprint::hex(&relay.cert_sha256());
    let url = relay
        .url()
        .replace("https://", "https://alice:hunter2pass@");
    let base = format!(
        "duration: 2s\nramp_up_delay_ms: 0\nserver_url: \"{url}\"\nwire: per_packet\ntls: {{cert_sha256: \"{pin}\"}}\nclients: [{{user_id: a, meeting_id: m}}, {{user_id: b, meeting_id: m}}]\n"
    );
    for (name, auth) in [
        ("minted", "auth: {jwt_secret_env: SYNTH_TEST_SECRET}\n"),
        ("fixed", "auth: {token: fixed.tok3n.value}\n"),
    ] {
        let cfg = write(dir.path(), &format!("{name}.yaml"), &(base.clone() + auth));
        let o = tokio::task::spawn_blocking(move || {
            command(&[
                "run",
                "--quiet",
                "--config",
                &cfg,
                "--pack",
                &pack().display().to_string(),
            ])
            .env("RUST_LOG", "debug")
            .env("SYNTH_TEST_SECRET", "s3cret-signing-key")
            .output()
            .unwrap()
        })
        .await
        .unwrap();
        let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
        assert!(all.contains("DEBUG"), "{name}: debug logging is on");
        for secret in [
            "s3cret-signing-key",
            "hunter2pass",
            "fixed.tok3n.value",
            "token=eyJ",
        ] {
            assert!(!all.contains(secret), "{name}: {secret} leaked:\n{all}");
        }
    }
    relay.shutdown().await;
}
