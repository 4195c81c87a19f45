//! One CSV row per participant (`run --participants FILE.csv`, `report
//! participants`): who it was, its scores and bands, and every input they
//! were computed from, worst first, so the worst participant of a run is
//! the first row and a spreadsheet or `sort` finds the rest.
//!
//! RFC 4180: comma-separated, a header row, fields quoted when they hold a
//! comma, a quote or a line break, `\r\n` line ends. An empty field is a
//! figure that was not measured for that participant (never 0).

use std::cmp::Ordering;
use std::fmt::Write as _;

use crate::model::{ParticipantScore, Report};
use crate::score::Band;

/// The columns, in order.
pub const COLUMNS: &[&str] = &[
    "id",
    "group",
    "meeting",
    "network",
    "verdict",
    "audio_mos",
    "video_score",
    "band_a",
    "band_v",
    "band_l",
    "band_q",
    "band_s",
    "audio_concealment",
    "video_freeze_share",
    "latency_p95_ms",
    "low_fps_share",
    "reconnects_per_hour",
    "audio_one_way_ms",
    "audio_jitter_ms",
    "audio_concealed_share",
    "audio_kbps",
    "video_fps",
    "video_sent_fps",
    "video_bits_per_pixel",
    "video_width",
    "video_height",
];

/// The CSV of `r`'s participants (only the header when the run was not
/// scored).
pub fn csv(r: &Report) -> String {
    let mut rows: Vec<&ParticipantScore> = r
        .scores
        .as_ref()
        .map(|s| s.participants.iter().collect())
        .unwrap_or_default();
    rows.sort_by(|a, b| worst_first(a, b));
    let mut o = String::with_capacity(64 * (rows.len() + 1));
    line(&mut o, COLUMNS.iter().map(|c| (*c).to_owned()));
    for p in rows {
        line(&mut o, row(p));
    }
    o
}

/// Red before yellow before green before unmeasured, then the lower audio
/// MOS, the lower video score, then the id.
fn worst_first(a: &ParticipantScore, b: &ParticipantScore) -> Ordering {
    let rank = |v: Option<Band>| match v {
        Some(Band::Red) => 0,
        Some(Band::Yellow) => 1,
        Some(Band::Green) => 2,
        None => 3,
    };
    let low = |x: Option<f64>| x.unwrap_or(f64::INFINITY);
    rank(a.verdict)
        .cmp(&rank(b.verdict))
        .then(low(a.audio_mos).total_cmp(&low(b.audio_mos)))
        .then(low(a.video_score).total_cmp(&low(b.video_score)))
        .then_with(|| a.id.cmp(&b.id))
}

fn row(p: &ParticipantScore) -> Vec<String> {
    let num = |x: Option<f64>| x.map(|v| format!("{v}")).unwrap_or_default();
    let band = |b: Option<Band>| b.map(|b| b.name().to_owned()).unwrap_or_default();
    let (a, v) = (p.audio.as_ref(), p.video.as_ref());
    vec![
        p.id.clone(),
        p.group.clone(),
        p.meeting.clone(),
        p.network.clone().unwrap_or_default(),
        band(p.verdict),
        num(p.audio_mos),
        num(p.video_score),
        band(p.bands.a),
        band(p.bands.v),
        band(p.bands.l),
        band(p.bands.q),
        band(p.bands.s),
        num(p.inputs.audio_concealment),
        num(p.inputs.video_freeze_share),
        num(p.inputs.latency_p95_ms),
        num(p.inputs.low_fps_share),
        num(p.inputs.reconnects_per_hour),
        num(a.map(|a| a.one_way_ms)),
        num(a.map(|a| a.jitter_ms)),
        num(a.map(|a| a.concealed_share)),
        num(a.and_then(|a| a.bitrate_kbps)),
        num(v.map(|v| v.fps)),
        num(v.map(|v| v.sent_fps)),
        num(v.and_then(|v| v.bits_per_pixel)),
        num(v.map(|v| f64::from(v.width))),
        num(v.map(|v| f64::from(v.height))),
    ]
}

/// One record, each field quoted only when RFC 4180 asks.
fn line(o: &mut String, fields: impl IntoIterator<Item = String>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        if f.contains([',', '"', '\r', '\n']) {
            let _ = write!(o, "\"{}\"", f.replace('"', "\"\""));
        } else {
            o.push_str(&f);
        }
    }
    o.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::score::summarize;
    use crate::score::{AudioIn, BandIn, BandLimits};

    fn p(id: &str, concealment: f64, one_way_ms: f64) -> ParticipantScore {
        ParticipantScore::new(
            id,
            "g,1",
            "m",
            Some(AudioIn {
                one_way_ms,
                jitter_ms: 2.0,
                concealed_share: concealment,
                bitrate_kbps: Some(32.0),
            }),
            None,
            BandIn {
                audio_concealment: Some(concealment),
                ..BandIn::default()
            },
            &BandLimits::default(),
        )
    }

    #[test]
    fn rows_come_worst_first_with_empty_fields_for_what_was_not_measured() {
        let mut r = crate::model::bare();
        let good = p("good", 0.0, 5.0);
        let worse = p("worse", 0.02, 5.0);
        let worst = p("wor\"st", 0.2, 300.0);
        r.scores = Some(summarize(
            &BandLimits::default(),
            &[],
            &[],
            vec![good.clone(), worst.clone(), worse.clone()],
        ));
        let text = csv(&r);
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert_eq!(lines[4], "");
        assert_eq!(lines[0], COLUMNS.join(","));
        let cells = |l: &str| l.split(',').count();
        // The group's comma is quoted: one more comma, same columns.
        assert_eq!(cells(lines[1]), COLUMNS.len() + 1);
        assert!(
            lines[1].starts_with("\"wor\"\"st\",\"g,1\",m,,red,"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].starts_with("worse,\"g,1\",m,,yellow,"),
            "{}",
            lines[2]
        );
        assert!(
            lines[3].starts_with("good,\"g,1\",m,,green,"),
            "{}",
            lines[3]
        );
        // Video was not watched: its score and inputs are empty, not 0.
        let good_cells: Vec<&str> = lines[3].split(',').collect();
        let at = |name: &str| COLUMNS.iter().position(|c| *c == name).unwrap() + 1;
        assert_eq!(good_cells[at("video_score")], "");
        assert_eq!(good_cells[at("video_fps")], "");
        assert_eq!(good_cells[at("band_v")], "");
        assert_eq!(good_cells[at("audio_kbps")], "32");
        assert_eq!(
            good_cells[at("audio_mos")],
            format!("{}", good.audio_mos.unwrap())
        );
    }

    #[test]
    fn an_unscored_report_is_the_header_alone() {
        let r = crate::model::bare();
        assert_eq!(csv(&r), format!("{}\r\n", COLUMNS.join(",")));
    }
}
