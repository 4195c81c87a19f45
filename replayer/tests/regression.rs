//! Regressions: config input that once panicked, hung, ran out of memory or
//! busy-looped, and unclear or leaky messages. Each test names what it pins.
//!
//! Through the binary where the point is "exit 2, one line, no panic";
//! through [`config::parse`] and [`Settings::resolve`] where it is the rule.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use synth_replayer::config::{self, limits, Overrides, Settings};

use crate::support::pack;

const BIN: &str = env!("CARGO_BIN_EXE_synth-replay");

/// A client, for configs that are about something else.
const ONE: &str = "clients: [{user_id: a, meeting_id: m}]\n";

/// `synth-replay validate --config FILE args…` with `yaml` in FILE and the
/// test pack, given at most 30 s (a bound on a hang).
fn validate(yaml: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, yaml).unwrap();
    validate_file(&path, args, env)
}

fn validate_file(path: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(["validate", "--config"])
        .arg(path)
        .args(["--pack", &pack().display().to_string()])
        .args(args)
        .env_remove("SERVER_URL")
        .env_remove("CONFIG")
        .env_remove("PACK")
        .env_remove("RUST_LOG")
        .env_remove("POD_INDEX")
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("CLIENTS_PER_POD")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().expect("starting synth-replay");
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(out) => out.expect("waiting for synth-replay"),
        Err(_) => {
            // SAFETY: kill with our child's pid and a valid signal number has no memory effects.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("synth-replay validate still running after 30 s");
        }
    }
}

/// Exit 2 (a config error), no panic, one line on stderr that has every one of `want`.
fn assert_config_error(o: &Output, want: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    let lines: Vec<_> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err:?}");
    assert!(lines[0].starts_with("error: "), "{err}");
    for w in want {
        assert!(lines[0].contains(w), "want {w:?} in {err:?}");
    }
}

/// The error of resolving `yaml` (with `o` and `env`), as the binary prints it.
fn resolve_err_with(yaml: &str, o: &Overrides, env: &dyn Fn(&str) -> Option<String>) -> String {
    let e = config::parse(yaml)
        .and_then(|f| Settings::resolve(f, o, env))
        .expect_err("the config is refused");
    let msg = format!("{e:#}");
    assert!(!msg.contains('\n'), "one line: {msg:?}");
    msg
}

fn resolve_err(yaml: &str) -> String {
    resolve_err_with(yaml, &Overrides::default(), &|_| None)
}

fn resolves(yaml: &str) -> Settings {
    Settings::resolve(config::parse(yaml).unwrap(), &Overrides::default(), &|_| {
        None
    })
    .unwrap()
}

#[test]
fn cert_sha256_non_ascii_is_an_error() {
    // 64 bytes, 32 characters: byte offsets fall inside characters.
    let yaml = format!("tls: {{cert_sha256: \"{}\"}}\n{ONE}", "é".repeat(32));
    assert_config_error(&validate(&yaml, &[], &[]), &["64 hex digits"]);
}

#[test]
fn template_width_over_32_is_an_error() {
    let yaml = "groups: [{count: 1, user_id: \"u{index:070000}\", meeting_id: m}]\n";
    assert_config_error(
        &validate(yaml, &[], &[]),
        &["groups[0].user_id", "width 70000", "more than 32"],
    );
    let s = resolves("groups: [{count: 1, user_id: \"u{index:032}\", meeting_id: m}]\n");
    assert_eq!(s.clients[0].user_id.len(), 33);
}

#[test]
fn template_id_longer_than_the_server_allows_is_an_error() {
    let yaml = format!(
        "groups: [{{count: 1, user_id: \"{}{{index:032}}\", meeting_id: m}}]\n",
        "u".repeat(100)
    );
    let e = resolve_err(&yaml);
    assert!(e.contains("132 bytes, more than 128"), "{e}");
}

#[test]
fn max_concurrent_connects_over_100000_is_an_error() {
    let yaml = format!("max_concurrent_connects: 18446744073709551615\n{ONE}");
    assert_config_error(
        &validate(&yaml, &[], &[]),
        &["max_concurrent_connects 18446744073709551615 is more than 100000"],
    );
}

#[test]
fn duration_over_30_days_is_an_error() {
    let o = validate(ONE, &["--duration", "10000000000000000000s"], &[]);
    assert_config_error(&o, &["duration", "is more than 30days"]);
    let yaml = format!("duration: 10000000000000000000s\n{ONE}");
    assert_config_error(&validate(&yaml, &[], &[]), &["is more than 30days"]);
    assert_eq!(
        resolves(&format!("duration: 30days\n{ONE}")).duration,
        limits::DURATION
    );
}

/// Every duration of the file has a maximum, and its error names the field.
#[test]
fn every_duration_has_a_maximum() {
    let huge = "10000000000000000000s";
    let env = |k: &str| (k == "SECRET").then(|| "s".to_string());
    for &(name, _, max) in limits::DURATIONS {
        let field = match name.split_once('.') {
            Some(("late_after", m)) => format!("late_after: {{{m}: {huge}}}"),
            Some(("auth", f)) => format!("auth: {{jwt_secret_env: SECRET, {f}: {huge}}}"),
            Some(("thresholds", f)) => format!(
                "thresholds: {{audio_lost: {{threshold: \"< 1\", abort_on_fail: true, {f}: {huge}}}}}"
            ),
            Some(("search", f)) => {
                format!("search: {{start: 1, step: 1, max: 2, meeting_size: 2, {f}: {huge}}}")
            }
            _ => format!("{name}: {huge}"),
        };
        let yaml = match name.split_once('.') {
            // A search makes its own clients.
            Some(("search", _)) => field,
            _ => format!("{field}\n{ONE}"),
        };
        let e = resolve_err_with(&yaml, &Overrides::default(), &env);
        let want = format!("is more than {}", humantime::format_duration(max));
        assert!(
            e.starts_with(&format!("{name} ")) && e.contains(&want),
            "{name}: got {e:?}, want {want:?}"
        );
    }
}

/// The longest idle timeout allowed (and a keep-alive under it) is one QUIC takes.
#[test]
fn idle_timeout_at_its_maximum_fits_quic() {
    let s = resolves(&format!("idle_timeout: 1h\nkeep_alive: 59m\n{ONE}"));
    let live = synth_replayer::transport::Liveness {
        keep_alive: s.keep_alive,
        idle_timeout: s.idle_timeout,
    };
    synth_replayer::transport::transport_config(live).expect("QUIC takes it");
    let e = resolve_err(&format!("idle_timeout: 61m\n{ONE}"));
    assert!(e.contains("idle_timeout 1h 1m is more than 1h"), "{e}");
}

#[test]
fn group_count_over_100000_is_an_error() {
    let yaml = "groups: [{count: 1000000000000, user_id: \"u{index}\", meeting_id: m}]\n";
    assert_config_error(
        &validate(yaml, &[], &[]),
        &["groups[0].count 1000000000000 is more than 100000"],
    );
}

#[test]
fn clients_over_100000_per_process_is_an_error() {
    let yaml = "groups:\n  - {count: 60000, user_id: \"a{index}\", meeting_id: m}\n  - {count: 60000, user_id: \"b{index}\", meeting_id: m}\n";
    let e = resolve_err(yaml);
    assert!(
        e.contains("makes 120000 clients, more than 100000 in one process"),
        "{e}"
    );
    let o = validate(
        "groups: [{count: 1, user_id: \"u{index}\", meeting_id: m}]\n",
        &[],
        &[("CLIENTS_PER_POD", "100001")],
    );
    assert_config_error(&o, &["CLIENTS_PER_POD 100001 is more than 100000"]);
}

/// `POD_INDEX=2^63` with 2 clients a pod wrapped `{global}` to pod 0's ids.
#[test]
fn pod_index_overflowing_global_is_an_error() {
    let yaml = "groups: [{count: 2, user_id: \"u{global}\", meeting_id: m}]\n";
    let o = validate(yaml, &[], &[("POD_INDEX", "9223372036854775808")]);
    assert_config_error(
        &o,
        &["pod_index 9223372036854775808 × 2 clients overflows the {global} index"],
    );
    // The largest pod index that fits is accepted.
    let max = (usize::MAX / 2 - 1).to_string();
    let o = validate(yaml, &[], &[("POD_INDEX", &max)]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
}

#[test]
fn job_completion_index_not_a_number_is_an_error() {
    let env = |k: &str| (k == "JOB_COMPLETION_INDEX").then(|| "seven".to_string());
    let e = resolve_err_with(ONE, &Overrides::default(), &env);
    assert!(
        e.contains("JOB_COMPLETION_INDEX \"seven\" is not a number"),
        "{e}"
    );
}

/// A heartbeat every 0 s was a busy loop.
#[test]
fn heartbeat_interval_under_10ms_is_an_error() {
    let yaml = format!("heartbeat_interval: 0s\n{ONE}");
    assert_config_error(
        &validate(&yaml, &[], &[]),
        &["heartbeat_interval 0s is less than 10ms"],
    );
    let s = resolves(&format!("heartbeat_interval: 10ms\n{ONE}"));
    assert_eq!(s.heartbeat_interval, Duration::from_millis(10));
}

#[test]
fn connect_timeout_zero_is_an_error() {
    let yaml = format!("connect_timeout: 0s\n{ONE}");
    assert_config_error(
        &validate(&yaml, &[], &[]),
        &["connect_timeout must be more than 0"],
    );
}

#[test]
fn ramp_up_delay_over_an_hour_is_an_error() {
    let e = resolve_err(&format!("ramp_up_delay_ms: 18446744073709551615\n{ONE}"));
    assert!(
        e.contains("ramp_up_delay_ms 18446744073709551615 is more than 3600000"),
        "{e}"
    );
}

#[test]
fn threads_over_1024_is_an_error() {
    let e = resolve_err(&format!("threads: 1000000\n{ONE}"));
    assert!(e.contains("threads 1000000 is more than 1024"), "{e}");
}

#[test]
fn threshold_nan_and_inf_are_errors() {
    for bound in ["NaN", "inf", "-inf", "infinity", "1e999"] {
        let yaml = format!("thresholds: {{reconnects: \"< {bound}\"}}\n{ONE}");
        let e = resolve_err(&yaml);
        assert!(e.contains("is not a finite number"), "{bound}: {e}");
    }
}

#[test]
fn ca_cert_missing_is_a_config_error() {
    let yaml = format!("tls: {{ca_cert: /nonexistent/ca.pem}}\n{ONE}");
    assert_config_error(
        &validate(&yaml, &[], &[]),
        &["tls.ca_cert /nonexistent/ca.pem"],
    );
}

#[test]
fn ca_cert_not_pem_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let yaml = format!("tls: {{ca_cert: {}}}\n{ONE}", not_pem.display());
    assert_config_error(&validate(&yaml, &[], &[]), &["holds no PEM certificate"]);
    // A CERTIFICATE block that is not a certificate.
    std::fs::write(
        &not_pem,
        "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    assert_config_error(&validate(&yaml, &[], &[]), &["tls.ca_cert"]);
    // A real one passes.
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(&not_pem, cert.cert.pem()).unwrap();
    let s = resolves(&yaml);
    assert_eq!(s.trust, config::Trust::CaFile(not_pem));
}

/// Opening a FIFO to read blocks until a writer comes: it hung `validate`.
#[test]
fn config_fifo_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("c.yaml");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path and a mode; no memory is shared.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert_config_error(&validate_file(&fifo, &[], &[]), &["not a regular file"]);
}

/// `/dev/zero` was read until memory ran out.
#[test]
fn config_device_is_refused() {
    assert_config_error(
        &validate_file(Path::new("/dev/zero"), &[], &[]),
        &["reading config /dev/zero: is a FIFO, socket or device, not a regular file"],
    );
    let dir = tempfile::tempdir().unwrap();
    assert_config_error(
        &validate_file(dir.path(), &[], &[]),
        &["is a directory, not a regular file"],
    );
}

#[test]
fn config_over_16_mib_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    let mut text = ONE.to_string();
    text.push_str(&"#".repeat((limits::FILE_BYTES as usize) + 1 - text.len()));
    std::fs::write(&path, text).unwrap();
    assert_config_error(
        &validate_file(&path, &[], &[]),
        &["larger than 16 MiB (16777216 bytes)"],
    );
    let e = config::parse(&" ".repeat(limits::FILE_BYTES as usize + 1)).unwrap_err();
    assert!(e.to_string().contains("more than 16 MiB"), "{e}");
}

/// The parser's message named its own options (`DuplicateKeyPolicy`).
#[test]
fn duplicate_key_names_the_key_and_line() {
    let yaml = format!("duration: 5s\n{ONE}duration: 6s\n");
    let o = validate(&yaml, &[], &[]);
    assert_config_error(&o, &["line 3 column 1: duplicate key `duration`"]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("Options"));
}

/// A 52 MB server_url was echoed whole.
#[test]
fn long_server_url_is_cut_in_errors() {
    let url = format!("ftp://{}", "h".repeat(52_000_000));
    let o = Overrides {
        server_url: Some(url),
        ..Default::default()
    };
    let e = resolve_err_with(ONE, &o, &|_| None);
    assert!(e.contains("…"), "{e}");
    assert!(e.len() < 300, "{} bytes", e.len());
    // And through the environment, as a container would set it.
    let url = format!("ftp://{}", "h".repeat(100_000));
    let o = validate(ONE, &[], &[("SERVER_URL", &url)]);
    assert_config_error(&o, &["must start with https://"]);
    assert!(o.stderr.len() < 300, "{} bytes", o.stderr.len());
}

#[test]
fn long_values_are_cut_in_errors() {
    let long = "x".repeat(1000);
    for yaml in [
        format!("clients: [{{user_id: {long}, meeting_id: m}}]\n"),
        format!("clients: [{{user_id: \"{long}.\", meeting_id: m}}]\n"),
        format!("metrics_listen: {long}\n{ONE}"),
        format!("thresholds: {{{long}: \"< 1\"}}\n{ONE}"),
        format!("thresholds: {{reconnects: \"< {long}\"}}\n{ONE}"),
        format!("groups: [{{count: 1, user_id: \"{long}{{x}}\", meeting_id: m}}]\n"),
    ] {
        let e = resolve_err(&yaml);
        assert!(e.contains('…') && !e.contains(&long[..200]), "{e}");
    }
}

/// 60 000 explicit clients went past the parser's default budget (250 000
/// nodes) with "budget breached: Nodes".
#[test]
fn large_clients_list_is_accepted() {
    let n = 60_000;
    let mut yaml = String::from("clients:\n");
    for i in 0..n {
        yaml.push_str(&format!("  - {{user_id: u{i}, meeting_id: m{}}}\n", i / 2));
    }
    assert_eq!(resolves(&yaml).clients.len(), n);
}

/// Past the raised budget the message says what is too large, and the limit.
#[test]
#[ignore = "parses a 14 MB config: about 25 s in a debug build"]
fn config_over_the_node_budget_says_too_large() {
    // Two nodes an entry: one more entry than the budget has room for.
    let mut yaml = String::from("thresholds: {");
    for i in 0..=limits::YAML_NODES / 2 {
        yaml.push_str(&format!("k{i}: v, "));
    }
    yaml.push_str("}\n");
    let e = config::parse(&yaml).unwrap_err().to_string();
    assert!(
        e.contains("config too large: more than 2000000 YAML nodes (at most 100000 clients)"),
        "{e}"
    );
}

/// `user:pass@host` was printed by `validate`.
#[test]
fn server_url_password_is_never_printed() {
    let yaml = format!("server_url: \"https://me:s3cret@127.0.0.1:4433\"\n{ONE}");
    for args in [&[][..], &["--json"][..]] {
        let o = validate(&yaml, args, &[]);
        assert_eq!(o.status.code(), Some(0), "{o:?}");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("REDACTED") && !out.contains("s3cret"), "{out}");
    }
    let yaml = format!("server_url: \"http://me:s3cret@127.0.0.1:4433\"\n{ONE}");
    let o = validate(&yaml, &[], &[]);
    assert_config_error(&o, &["must start with https://"]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("s3cret"));
}

/// `abort_on_fail` on a figure only known at the end (a rate per pair) could
/// never fire: refused, naming the figures that can.
#[test]
fn abort_on_fail_on_an_end_only_figure_is_an_error() {
    let yaml = format!(
        "thresholds: {{video_fps_p5: {{threshold: \"> 20\", abort_on_fail: true}}}}\n{ONE}"
    );
    let e = resolve_err(&yaml);
    assert!(
        e.contains("video_fps_p5 is only known at the end") && e.contains("audio_lost"),
        "{e}"
    );
    let yaml =
        format!("thresholds: {{audio_lost: {{threshold: \"< 1\", delay_abort_eval: 5s}}}}\n{ONE}");
    assert!(resolve_err(&yaml).contains("without abort_on_fail"));
    let ok = resolves(&format!(
        "thresholds: {{audio_lost: {{threshold: \"< 1\", abort_on_fail: true, delay_abort_eval: 5s}}}}\n{ONE}"
    ));
    assert!(ok.thresholds[0].abort_on_fail);
    assert_eq!(
        ok.thresholds[0].delay_abort_eval,
        std::time::Duration::from_secs(5)
    );
}

/// A search makes its own clients, steps of at least one client, SLOs a
/// step's window can judge, and a hold long enough to start a step.
#[test]
fn search_refuses_what_it_cannot_run() {
    let base = "search: {start: 10, step: 5, max: 30, hold: 10s, meeting_size: 5";
    let e = resolve_err(&format!("{base}}}\n{ONE}"));
    assert!(e.contains("remove `clients:`"), "{e}");
    let e = resolve_err(&format!(
        "{base}, slo: {{video_freeze_share: \"< 0.1\"}}}}\n"
    ));
    assert!(e.contains("search.slo.video_freeze_share"), "{e}");
    let e = resolve_err("search: {start: 10, step: 0, max: 30, hold: 10s, meeting_size: 5}\n");
    assert!(e.contains("at least 1"), "{e}");
    let e = resolve_err("search: {start: 40, step: 5, max: 30, hold: 10s, meeting_size: 5}\n");
    assert!(e.contains("less than search.start"), "{e}");
    let e = resolve_err(
        "ramp_up_delay_ms: 1000\nsearch: {start: 10, step: 5, max: 30, hold: 10s, meeting_size: 5}\n",
    );
    assert!(e.contains("search.hold 10s is too short"), "{e}");
    let s = resolves(&format!("{base}}}\n"));
    let se = s.search.unwrap();
    assert_eq!((s.clients.len(), se.steps()), (30, 5));
    // Its bound: each of the 5 steps held 10 s and waiting up to the
    // connect timeout (10 s) for its clients.
    assert_eq!(s.duration, std::time::Duration::from_secs(100));
}

/// `adapt: true` needs two video renditions to choose from: the test pack
/// has one, and the run is refused in one line naming the client and the pack.
#[test]
fn adapt_on_a_pack_with_one_rendition_is_an_error() {
    let yaml = "groups: [{count: 2, user_id: \"a-{index}\", meeting_id: m, adapt: true}]\n";
    assert_config_error(
        &validate(yaml, &[], &[]),
        &[
            "client a-0",
            "adapt needs a pack with two or more video renditions",
            "has video-",
        ],
    );
    // Without video there is nothing to adapt: accepted.
    let yaml = "groups: [{count: 2, user_id: \"a-{index}\", meeting_id: m, adapt: true, enable_video: false}]\n";
    let o = validate(yaml, &[], &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `simulcast: true` needs two renditions (the test pack has one) and goes
/// with neither `adapt` nor `rendition`; a view's tiles and layer are
/// checked; each refused in one line.
#[test]
fn simulcast_and_view_are_checked() {
    let g = "groups: [{count: 2, user_id: \"s-{index}\", meeting_id: m";
    assert_config_error(
        &validate(&format!("{g}, simulcast: true}}]\n"), &[], &[]),
        &[
            "client s-0",
            "simulcast needs a pack with two or more video renditions",
        ],
    );
    assert_config_error(
        &validate(&format!("{g}, simulcast: true, adapt: true}}]\n"), &[], &[]),
        &[
            "client s-0",
            "simulcast sends every rendition at once",
            "adapt",
        ],
    );
    assert_config_error(
        &validate(&format!("{g}, view: {{tiles: 0}}}}]\n"), &[], &[]),
        &["client s-0", "view.tiles must be between 1 and 64"],
    );
    assert_config_error(
        &validate(&format!("{g}, view: {{layer: top}}}}]\n"), &[], &[]),
        &["unknown variant `top`", "low", "auto"],
    );
    let o = validate(
        &format!("{g}, view: {{tiles: 4, layer: low}}}}]\n"),
        &[],
        &[],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
