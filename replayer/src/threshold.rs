//! k6-style pass/fail thresholds: `audio_latency_p99_ms: "< 150"`.
//!
//! Each threshold names one figure of the run report and a comparison. A run
//! that violates any of them exits with [`crate::EXIT_THRESHOLD`], and the report
//! lists every threshold with its measured value and verdict.

use anyhow::bail;
use serde::{Deserialize, Serialize};

use crate::config::shown;

/// The figures a threshold may name, with what each measures.
pub const NAMES: &[(&str, &str)] = &[
    (
        "connect_success_rate",
        "clients connected / clients planned, less those a behaviour schedule never needed (0..1)",
    ),
    ("connect_p95_ms", "95th percentile of connect time"),
    ("connect_p99_ms", "99th percentile of connect time"),
    ("failed_clients", "clients that gave up: rejected, TLS refused, or no first connection within connect_attempts"),
    ("reconnects", "reconnections after a dropped session"),
    ("audio_latency_p50_ms", "median one-way audio latency"),
    (
        "audio_latency_p95_ms",
        "95th percentile one-way audio latency",
    ),
    (
        "audio_latency_p99_ms",
        "99th percentile one-way audio latency",
    ),
    ("audio_latency_max_ms", "largest one-way audio latency"),
    ("video_latency_p50_ms", "median one-way video latency"),
    (
        "video_latency_p95_ms",
        "95th percentile one-way video latency",
    ),
    (
        "video_latency_p99_ms",
        "99th percentile one-way video latency",
    ),
    ("video_latency_max_ms", "largest one-way video latency"),
    (
        "send_lateness_p50_ms",
        "median send lateness (actual - scheduled send time)",
    ),
    ("send_lateness_p99_ms", "99th percentile send lateness"),
    ("send_lateness_max_ms", "largest send lateness"),
    (
        "audio_bitrate_error_pct",
        "|sent audio bitrate - pack bitrate| / pack bitrate, in %",
    ),
    (
        "video_bitrate_error_pct",
        "|sent video bitrate - pack bitrate| / pack bitrate, in %",
    ),
    ("audio_gaps", "older name of audio_lost"),
    ("video_gaps", "older name of video_lost"),
    (
        "audio_received_packets",
        "audio packets received by all clients",
    ),
    (
        "video_received_packets",
        "video packets received by all clients",
    ),
    ("audio_lost", "audio packets never received by the end of the run (exact for senders of this process)"),
    ("video_lost", "video packets never received by the end of the run (exact for senders of this process)"),
    ("audio_late", "audio packets that arrived more than late_after.audio after they were due"),
    ("video_late", "video packets that arrived more than late_after.video after they were due"),
    ("audio_unacked", "audio packets sent but never acknowledged by the server"),
    ("video_unacked", "video packets sent but never acknowledged by the server"),
    ("corrupted_frames", "received frames from senders of this process that match no frame of the pack"),
    ("audio_concealment", "share of 20 ms audio slots concealed: lost or late (0..1)"),
    ("video_freezes", "video freezes, all (sender, receiver) pairs"),
    ("video_freeze_share", "frozen time over watched time, all pairs (0..1)"),
    ("video_longest_freeze_ms", "the longest video freeze"),
    ("video_fps_p5", "5th percentile of received frames per second per (sender, receiver) pair"),
    ("video_fps_p50", "median received frames per second per (sender, receiver) pair"),
    ("audio_rate_p5", "5th percentile of received audio packets per second per pair"),
    ("congestion_received", "CONGESTION packets the server sent our clients"),
    ("keyframe_answer_p99_ms", "99th percentile from a key-frame request's arrival to the key frame's send"),
    ("join_visibility_p99_ms", "99th percentile from a client's first packet to its first packet at a peer"),
    ("joins", "sessions that came up: first joins, rejoins and returns after a storm"),
    ("leaves", "sessions ended on purpose by the schedule (churn, storms, phases)"),
    ("rejoins", "sessions that came up after one ended on purpose"),
    ("rejoin_p99_ms", "99th percentile from going back after leaving on purpose to the new session being up"),
    ("connected_at_end_share", "clients connected (or stalled) when the run stopped over clients started (0..1); also built in as >= 0.5"),
    ("stalls", "times a client stalled: session open, nothing acknowledged for stall_after"),
    ("generator_saturated", "1 when this process could not keep its schedule (so \"< 1\" requires it false)"),
    ("audio_cross_host_latency_p50_ms", "median one-way audio latency from senders in other processes (clock sync)"),
    ("audio_cross_host_latency_p95_ms", "95th percentile one-way audio latency from senders in other processes (clock sync)"),
    ("audio_cross_host_latency_p99_ms", "99th percentile one-way audio latency from senders in other processes (clock sync)"),
    ("audio_cross_host_latency_max_ms", "largest one-way audio latency from senders in other processes (clock sync)"),
    ("audio_jitter_p50_ms", "median RFC 3550 audio interarrival jitter"),
    ("audio_jitter_p95_ms", "95th percentile RFC 3550 audio interarrival jitter"),
    ("audio_jitter_p99_ms", "99th percentile RFC 3550 audio interarrival jitter"),
    ("audio_jitter_max_ms", "largest RFC 3550 audio interarrival jitter"),
    ("video_cross_host_latency_p50_ms", "median one-way video latency from senders in other processes (clock sync)"),
    ("video_cross_host_latency_p95_ms", "95th percentile one-way video latency from senders in other processes (clock sync)"),
    ("video_cross_host_latency_p99_ms", "99th percentile one-way video latency from senders in other processes (clock sync)"),
    ("video_cross_host_latency_max_ms", "largest one-way video latency from senders in other processes (clock sync)"),
    ("video_jitter_p50_ms", "median RFC 3550 video interarrival jitter"),
    ("video_jitter_p95_ms", "95th percentile RFC 3550 video interarrival jitter"),
    ("video_jitter_p99_ms", "99th percentile RFC 3550 video interarrival jitter"),
    ("video_jitter_max_ms", "largest RFC 3550 video interarrival jitter"),
];

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
    /// `==`
    #[serde(rename = "==")]
    Eq,
}

/// One threshold from the config.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Threshold {
    /// Figure name (one of [`NAMES`]).
    pub name: String,
    /// The expression as written, e.g. `"< 150"`.
    pub expr: String,
    /// Comparison.
    #[serde(skip)]
    pub op: Op,
    /// Bound.
    #[serde(skip)]
    pub value: f64,
    /// End the run at once when this fails while the run goes (k6's `abortOnFail`).
    #[serde(skip)]
    pub abort_on_fail: bool,
    /// No abort before this much of the run has passed (k6's `delayAbortEval`).
    #[serde(skip)]
    pub delay_abort_eval: std::time::Duration,
}

/// A threshold checked against a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Figure name.
    pub name: String,
    /// The expression as written.
    pub expr: String,
    /// The measured value (`null` when the run produced none, e.g. no latency samples).
    pub actual: Option<f64>,
    /// Whether the threshold holds. A figure with no value fails.
    pub pass: bool,
}

impl Threshold {
    /// Parses `name: "OP NUMBER"`.
    pub fn parse(name: &str, expr: &str) -> anyhow::Result<Threshold> {
        if !NAMES.iter().any(|(n, _)| *n == name) {
            let known: Vec<_> = NAMES.iter().map(|(n, _)| *n).collect();
            bail!(
                "thresholds: unknown figure {:?} (known: {})",
                shown(name),
                known.join(", ")
            );
        }
        let e = expr.trim();
        let (op, rest) = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .iter()
        .find_map(|(s, op)| e.strip_prefix(s).map(|rest| (*op, rest)))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "thresholds.{name}: {:?} must look like \"< 150\" (ops < <= > >= ==)",
                shown(expr)
            )
        })?;
        let value: f64 = rest
            .trim()
            .parse()
            // `NaN` and `inf` parse, but no figure compares with them as meant.
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "thresholds.{name}: {:?} in {:?} is not a finite number",
                    shown(rest.trim()),
                    shown(expr)
                )
            })?;
        Ok(Threshold {
            name: name.to_owned(),
            expr: e.to_owned(),
            op,
            value,
            abort_on_fail: false,
            delay_abort_eval: std::time::Duration::ZERO,
        })
    }

    /// Checks the threshold against a measured value.
    pub fn check(&self, actual: Option<f64>) -> Verdict {
        let pass = actual.is_some_and(|a| match self.op {
            Op::Lt => a < self.value,
            Op::Le => a <= self.value,
            Op::Gt => a > self.value,
            Op::Ge => a >= self.value,
            Op::Eq => a == self.value,
        });
        Verdict {
            name: self.name.clone(),
            expr: self.expr.clone(),
            actual,
            pass,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_check() {
        let t = Threshold::parse("audio_latency_p99_ms", "< 150").unwrap();
        assert!(t.check(Some(149.9)).pass);
        assert!(!t.check(Some(150.0)).pass);
        assert!(!t.check(None).pass, "no samples fails");
        let t = Threshold::parse("connect_success_rate", ">=0.999").unwrap();
        assert!(t.check(Some(1.0)).pass);
        assert!(!t.check(Some(0.99)).pass);
        assert!(Threshold::parse("nope", "< 1").is_err());
        assert!(Threshold::parse("reconnects", "about 3").is_err());
        assert!(Threshold::parse("reconnects", "< many").is_err());
        assert_eq!(Threshold::parse("reconnects", "== 0").unwrap().op, Op::Eq);
    }
}
