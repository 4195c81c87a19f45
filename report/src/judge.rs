//! A report's verdict: its figures read through the registry, every
//! threshold checked against them, and the built-in verdicts.

use crate::figure;
use crate::model::{Received, Report, WireReport};
use crate::threshold::{Threshold, Verdict, BUILT_IN};

/// The share of started clients connected at the end below which a run
/// fails whatever its thresholds (`connected_at_end_share`).
pub const CONNECTED_AT_END_FLOOR: f64 = 0.5;

/// The share of the media expected from senders of this process that
/// must arrive, or the run fails whatever its thresholds
/// (`delivered_share`): below it, (almost) nothing was delivered.
pub const DELIVERED_FLOOR: f64 = 0.01;

impl Report {
    /// Checks `thresholds` and the built-in verdicts against the report's
    /// figures and sets `thresholds` and `passed`.
    pub fn judge(&mut self, thresholds: &[Threshold]) {
        self.thresholds = thresholds
            .iter()
            .map(|t| t.check(self.threshold_value(t)))
            .collect();
        // Built in: a run whose clients are mostly gone at the end never passes.
        let share = self.figure("connected_at_end_share");
        self.thresholds.push(Verdict {
            name: "connected_at_end_share".into(),
            expr: format!(">= {CONNECTED_AT_END_FLOOR}{BUILT_IN}"),
            actual: share,
            pass: share.is_some_and(|v| v >= CONNECTED_AT_END_FLOOR),
        });
        // Built in: a run in which peers were to hear each other and
        // (almost) nothing arrived never passes.
        if let Some(share) = self.delivered_share() {
            self.thresholds.push(Verdict {
                name: "delivered_share".into(),
                expr: format!(">= {DELIVERED_FLOOR}{BUILT_IN}"),
                actual: Some(crate::num::round3(share)),
                pass: share >= DELIVERED_FLOOR,
            });
        }
        let no_knee = self.search.as_ref().is_some_and(|s| s.knee.is_none());
        self.passed = self.thresholds.iter().all(|v| v.pass) && self.aborted.is_none() && !no_knee;
    }

    /// When the built-in `delivered_share` failed: one line naming the
    /// likely cause ([`nothing_delivered`]).
    pub fn nothing_delivered(&self) -> Option<String> {
        nothing_delivered(
            &self.thresholds,
            &self.audio.received,
            &self.video.received,
            self.wire.as_ref(),
        )
    }

    /// Media packets received in time over those expected from senders
    /// of this process (audio and video, exact; [`delivered_share`]);
    /// `None` when none were expected.
    pub fn delivered_share(&self) -> Option<f64> {
        delivered_share(&self.audio.received, &self.video.received)
    }

    /// The value of a figure of the registry ([`crate::figure::FIGURES`]);
    /// `None` for an unknown name or when the run gave none.
    pub fn figure(&self, name: &str) -> Option<f64> {
        figure::get(name).and_then(|f| (f.end)(self))
    }
}

/// Media packets delivered in time over those expected from senders of
/// this process, audio and video together: the expected less the lost and
/// less the late (arrived more than `late_after` after they were due: a
/// packet held back until the end of the run is not a call); `None` when
/// none were expected.
pub fn delivered_share(audio: &Received, video: &Received) -> Option<f64> {
    let expected = audio.exact.expected + video.exact.expected;
    let missed = audio.exact.lost + video.exact.lost + audio.late + video.late;
    (expected > 0).then(|| expected.saturating_sub(missed) as f64 / expected as f64)
}

/// When the built-in `delivered_share` of `verdicts` failed: one line
/// naming the likely cause (the wire, an observer token, or a server that
/// relays nothing), with the server's `/version` when it answered.
pub fn nothing_delivered(
    verdicts: &[Verdict],
    audio: &Received,
    video: &Received,
    wire: Option<&WireReport>,
) -> Option<String> {
    let failed = verdicts
        .iter()
        .any(|v| v.name == "delivered_share" && v.is_built_in() && !v.pass);
    if !failed {
        return None;
    }
    let share = delivered_share(audio, video).unwrap_or(0.0);
    let got = format!(
        "{:.2} % of the media expected arrived in time",
        share * 100.0
    );
    let version = wire.and_then(|w| w.server_version.as_ref());
    let said = version.map_or(String::new(), |v| format!(" (/version: {})", v.line()));
    let used = wire.map_or("per_packet", |w| w.used.as_str());
    let branch = version.and_then(|v| v.git_branch.as_deref()).unwrap_or("");
    let their_wire = version
        .and_then(|v| v.wire.clone())
        .or_else(|| branch.eq_ignore_ascii_case("rnd").then(|| "framed".into()))
        .or_else(|| {
            branch
                .eq_ignore_ascii_case("main")
                .then(|| "per_packet".into())
        });
    let cause = match their_wire {
        Some(theirs) if theirs != used => format!(
            "the wire: the server speaks {theirs}{said} and this run spoke {used}; set wire: {theirs} (or auto)"
        ),
        _ if wire.is_some_and(|w| w.observer_token) => format!(
            "an observer token: every client joined with auth.token whose claims say observer: true, and the server drops what observers send{said}"
        ),
        _ => format!(
            "a server that relays nothing: every client connected but what they sent did not come back{said}; check that it relays between sessions of one meeting (its logs), or the wire (wire: framed for upstream's RnD branch)"
        ),
    };
    Some(format!("nothing delivered: {got}; likely cause: {cause}"))
}
