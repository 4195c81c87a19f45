//! The report as JUnit XML, for CI systems that show test results (GitLab,
//! Jenkins, GitHub's test reporters): one test case per verdict, as k6's
//! `junit` summary output and Gatling's JUnit report do.
//!
//! The document is `<testsuites>` with:
//! - `synth-replay.thresholds`: one test case per verdict of
//!   [`Report::thresholds`] (the config's thresholds and the built-in ones),
//!   named as the verdict (a scope in the name is kept as written), plus a
//!   failing `aborted` case when a threshold ended the run early;
//! - `synth-replay.search`, when the run was a capacity search: one test
//!   case per step, failing with what broke in it.
//!
//! Phases carry figures but no verdict of their own, so they get no suite.
//! A failing case's `message` gives both values: `actual 180.2, wanted < 150`
//! (`no value` when the run measured none). Everything taken from the
//! config or the run is XML-escaped. The layout is that of the JUnit schema
//! Jenkins' xUnit plugin publishes (`junit-10.xsd`), which CI validates
//! against (`scripts/check-junit.sh`).

use std::fmt::Write as _;

use crate::model::{Report, Step, Verdict};
use crate::num::round3;

/// The `classname` of the thresholds' test cases (and their suite's name).
pub const THRESHOLDS: &str = "synth-replay.thresholds";

/// The `classname` of the capacity search's test cases (and their suite's name).
pub const SEARCH: &str = "synth-replay.search";

/// One test case: its name, its time when known, its failure message if it failed.
struct Case {
    name: String,
    time_s: Option<f64>,
    failure: Option<String>,
}

/// The report as a JUnit XML document (UTF-8, ends with a newline).
pub fn junit(r: &Report) -> String {
    let timestamp = r
        .timeline
        .as_ref()
        .map(|t| t.start_unix_ms)
        .filter(|&ms| ms > 0)
        .map(timestamp);
    let mut suites = vec![(THRESHOLDS, Some(r.elapsed_s), thresholds(r))];
    if let Some(s) = &r.search {
        let time = s.steps.iter().map(|st| st.t_end_s - st.t_start_s).sum();
        suites.push((SEARCH, Some(time), s.steps.iter().map(step).collect()));
    }
    let tests: usize = suites.iter().map(|s| s.2.len()).sum();
    let failures: usize = suites.iter().map(|s| failed(&s.2)).sum();
    let mut o = String::with_capacity(1024);
    o.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<testsuites name=\"synth-replay\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{}\">",
        seconds(r.elapsed_s)
    );
    for (name, time, cases) in &suites {
        let _ = write!(
            o,
            "  <testsuite name=\"{name}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"0\"",
            cases.len(),
            failed(cases)
        );
        if let Some(t) = time {
            let _ = write!(o, " time=\"{}\"", seconds(*t));
        }
        if let Some(ts) = &timestamp {
            let _ = write!(o, " timestamp=\"{ts}\"");
        }
        o.push_str(">\n");
        for c in cases {
            let _ = write!(
                o,
                "    <testcase name=\"{}\" classname=\"{name}\"",
                escape(&c.name)
            );
            if let Some(t) = c.time_s {
                let _ = write!(o, " time=\"{}\"", seconds(t));
            }
            match &c.failure {
                None => o.push_str("/>\n"),
                Some(m) => {
                    let m = escape(m);
                    let _ = writeln!(
                        o,
                        ">\n      <failure message=\"{m}\" type=\"threshold\">{m}</failure>\n    </testcase>"
                    );
                }
            }
        }
        o.push_str("  </testsuite>\n");
    }
    o.push_str("</testsuites>\n");
    o
}

/// The thresholds' cases: one per verdict, then the abort if there was one.
fn thresholds(r: &Report) -> Vec<Case> {
    let mut cases: Vec<Case> = r.thresholds.iter().map(verdict).collect();
    if let Some(line) = &r.aborted {
        cases.push(Case {
            name: "aborted".into(),
            time_s: None,
            failure: Some(format!("the run was ended early by {line}")),
        });
    }
    cases
}

/// A verdict as a test case: `audio_latency_p99_ms < 150`, failing with
/// `actual 180.2, wanted < 150`.
fn verdict(v: &Verdict) -> Case {
    Case {
        name: format!("{} {}", v.name, v.expr),
        time_s: None,
        failure: (!v.pass).then(|| format!("{}, wanted {}", actual(v.actual), v.expr)),
    }
}

/// A search step as a test case, failing with what broke in it.
fn step(st: &Step) -> Case {
    let failure = (!st.passed).then(|| {
        if st.broken.is_empty() {
            "the step did not pass".to_string()
        } else {
            st.broken.join("; ")
        }
    });
    Case {
        name: format!("{} clients", st.clients),
        time_s: Some(st.t_end_s - st.t_start_s),
        failure,
    }
}

/// Failing cases among `cases`.
fn failed(cases: &[Case]) -> usize {
    cases.iter().filter(|c| c.failure.is_some()).count()
}

/// A measured value as a failure message shows it.
fn actual(v: Option<f64>) -> String {
    v.map_or("no value".into(), |v| format!("actual {}", round3(v)))
}

/// Seconds with at most 3 decimals and no thousands separator (the schema's
/// `SUREFIRE_TIME`); a negative or non-finite time (a clock gone back) is 0.
fn seconds(s: f64) -> String {
    let s = if s.is_finite() && s > 0.0 { s } else { 0.0 };
    format!("{s:.3}")
}

/// Unix milliseconds as an ISO 8601 UTC time without zone, as JUnit writers
/// give `timestamp`: `2024-05-01T12:30:00`.
fn timestamp(ms: u64) -> String {
    let [y, m, d, hh, mm, ss] = crate::num::utc_parts(ms as f64);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}")
}

/// `s` escaped for an XML attribute or text: the five markup characters as
/// entities, tab and line breaks as character references (an attribute keeps
/// them then), and the control characters XML 1.0 cannot carry at all as U+FFFD.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\t' => o.push_str("&#9;"),
            '\n' => o.push_str("&#10;"),
            '\r' => o.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SearchReport, Timeline, BUILT_IN};

    /// A report as the run writes it, from JSON (the model has no `Default`).
    fn report() -> Report {
        let mut r: Report = serde_json::from_value(serde_json::json!({
            "schema": "synth-replay-report", "version": 3, "server": "s", "pack": "p",
            "elapsed_s": 12.5, "stopped_by": "duration", "clients": {}, "connect_ms": {},
            "connect_failures": {}, "audio": {}, "video": {}, "heartbeats": {},
            "server_signals": {}, "send_lateness_ms": {}, "generator": {}, "process": {},
            "meetings": [], "thresholds": [], "passed": true
        }))
        .unwrap();
        r.thresholds = vec![
            Verdict {
                name: "audio_latency_p99_ms".into(),
                expr: "< 150".into(),
                actual: Some(180.2004),
                pass: false,
            },
            Verdict {
                name: "video_lost".into(),
                expr: "== 0".into(),
                actual: Some(0.0),
                pass: true,
            },
            Verdict {
                name: "audio_mos_p5{group=\"3g\"}".into(),
                expr: "> 3 & <5".into(),
                actual: None,
                pass: false,
            },
            Verdict {
                name: "connected_at_end_share".into(),
                expr: format!(">= 0.5{BUILT_IN}"),
                actual: Some(1.0),
                pass: true,
            },
        ];
        r.timeline = Some(Timeline {
            start_unix_ms: 1_714_566_600_000,
            ..Timeline::default()
        });
        r
    }

    /// The text between `open` and the next `close`, every occurrence.
    fn between<'a>(s: &'a str, open: &str, close: &str) -> Vec<&'a str> {
        s.split(open)
            .skip(1)
            .map(|rest| rest.split(close).next().unwrap())
            .collect()
    }

    #[test]
    fn escapes_markup_line_breaks_and_control_characters() {
        assert_eq!(
            escape("a<b & c>\"d\" 'e'"),
            "a&lt;b &amp; c&gt;&quot;d&quot; &apos;e&apos;"
        );
        assert_eq!(escape("x\ny\tz\r"), "x&#10;y&#9;z&#13;");
        assert_eq!(escape("\u{1}\u{1b}ok"), "\u{FFFD}\u{FFFD}ok");
        assert_eq!(escape("µs ✓"), "µs ✓", "other characters as they are");
    }

    #[test]
    fn one_case_per_verdict_with_counts_and_both_values() {
        let x = junit(&report());
        assert!(x.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "));
        assert!(x.ends_with("</testsuites>\n"));
        assert_eq!(x.matches("<testsuite ").count(), 1, "no search: one suite");
        assert_eq!(
            between(&x, "<testsuites ", ">"),
            [r#"name="synth-replay" tests="4" failures="2" errors="0" time="12.500""#]
        );
        assert!(x.contains(
            r#"<testsuite name="synth-replay.thresholds" tests="4" failures="2" errors="0" skipped="0" time="12.500" timestamp="2024-05-01T12:30:00">"#
        ));
        assert_eq!(
            between(&x, "<testcase name=\"", "\""),
            [
                "audio_latency_p99_ms &lt; 150",
                "video_lost == 0",
                "audio_mos_p5{group=&quot;3g&quot;} &gt; 3 &amp; &lt;5",
                "connected_at_end_share &gt;= 0.5 (built in)",
            ],
            "named as the verdict, the scope kept, escaped"
        );
        assert_eq!(
            between(&x, "<failure message=\"", "\""),
            [
                "actual 180.2, wanted &lt; 150",
                "no value, wanted &gt; 3 &amp; &lt;5"
            ]
        );
        assert!(x.contains(r#"classname="synth-replay.thresholds"/>"#));
        // Every value is escaped: no markup character in it, every `&` an entity.
        for value in between(&x, "=\"", "\"") {
            assert!(!value.contains(['<', '>']), "{value}");
            for (i, _) in value.match_indices('&') {
                let entity = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"];
                assert!(entity.iter().any(|e| value[i..].starts_with(e)), "{value}");
            }
        }
    }

    #[test]
    fn an_abort_is_a_failing_case() {
        let mut r = report();
        r.thresholds.truncate(2);
        r.aborted = Some("audio_latency_p99_ms < 150 (was 180.2)".into());
        let x = junit(&r);
        assert!(x.contains(r#"tests="3" failures="2""#), "{x}");
        assert!(x.contains(r#"<testcase name="aborted" classname="synth-replay.thresholds">"#));
        assert!(x.contains(
            r#"message="the run was ended early by audio_latency_p99_ms &lt; 150 (was 180.2)""#
        ));
    }

    #[test]
    fn a_search_is_a_suite_with_a_case_per_step() {
        let mut r = report();
        r.thresholds.clear();
        r.timeline = None;
        let step = |clients, t: f64, broken: &[&str]| Step {
            clients,
            t_start_s: t,
            t_end_s: t + 10.25,
            passed: broken.is_empty(),
            broken: broken.iter().map(|b| b.to_string()).collect(),
            ..Step::default()
        };
        r.search = Some(SearchReport {
            steps: vec![
                step(10, 0.0, &[]),
                step(20, 10.25, &[]),
                step(
                    30,
                    20.5,
                    &[
                        "audio_latency_p99_ms < 150 (was 180.2)",
                        "generator saturated",
                    ],
                ),
            ],
            ..SearchReport::default()
        });
        let x = junit(&r);
        assert_eq!(
            between(&x, "<testsuites ", ">"),
            [r#"name="synth-replay" tests="3" failures="1" errors="0" time="12.500""#]
        );
        assert!(x.contains(
            r#"<testsuite name="synth-replay.search" tests="3" failures="1" errors="0" skipped="0" time="30.750">"#
        ), "{x}");
        assert!(!x.contains("timestamp="), "no timeline, no start time");
        assert_eq!(
            between(&x, "<testcase name=\"", "\""),
            ["10 clients", "20 clients", "30 clients"]
        );
        assert!(x.contains(
            r#"<testcase name="30 clients" classname="synth-replay.search" time="10.250">"#
        ));
        assert_eq!(
            between(&x, "<failure message=\"", "\""),
            ["audio_latency_p99_ms &lt; 150 (was 180.2); generator saturated"]
        );
        // The thresholds' suite is there, empty.
        assert!(x.contains(r#"<testsuite name="synth-replay.thresholds" tests="0" failures="0""#));
    }

    #[test]
    fn times_fit_the_schema() {
        assert_eq!(seconds(1234.56789), "1234.568");
        assert_eq!(seconds(-1.0), "0.000");
        assert_eq!(seconds(f64::NAN), "0.000");
        assert_eq!(timestamp(0), "1970-01-01T00:00:00");
        assert_eq!(timestamp(951_782_400_000), "2000-02-29T00:00:00");
    }
}
