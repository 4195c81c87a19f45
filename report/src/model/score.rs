//! The report's `scores` section: each participant's audio MOS, video
//! score and bands ([`crate::score`]), summed up for the run, each group
//! and each meeting, and the scores of the (sender, receiver) pairs.
//!
//! The participants are kept whole, so every summary is recomputed from
//! them when reports merge (exact); the pairs are kept as a histogram of
//! their scores ([`crate::hist`]), so merged pair percentiles are at its
//! precision (3 significant digits) and the merged mean is exact.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::hist;
use crate::num::round3;
use crate::score::{
    self, audio_mos, bands, video_score, AudioIn, Band, BandIn, BandLimits, Bands, Gate, Stats,
    VideoIn,
};

/// Pair scores are recorded in the histogram as thousandths.
const PAIR_SCALE: f64 = 1000.0;

/// One participant's scores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ParticipantScore {
    /// Its user id.
    pub id: String,
    /// Its group (the config's group name, or `clients`).
    pub group: String,
    /// Its meeting.
    pub meeting: String,
    /// Its group's network profile, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Its audio MOS (1..4.5) from `audio`; `null` when it heard no audio.
    pub audio_mos: Option<f64>,
    /// Its video score (1..5) from `video`; `null` when it watched no video.
    pub video_score: Option<f64>,
    /// Its bands under the report's limits.
    pub bands: Bands,
    /// Its worst measured band ([`Bands::verdict`]).
    pub verdict: Option<Band>,
    /// What the bands were computed from.
    pub inputs: BandIn,
    /// What the audio MOS was computed from.
    pub audio: Option<AudioIn>,
    /// What the video score was computed from.
    pub video: Option<VideoIn>,
}

impl ParticipantScore {
    /// A participant's scores from what was measured of it, its bands
    /// under `limits`; scores rounded to 3 decimals.
    pub fn new(
        id: impl Into<String>,
        group: impl Into<String>,
        meeting: impl Into<String>,
        audio: Option<AudioIn>,
        video: Option<VideoIn>,
        inputs: BandIn,
        limits: &BandLimits,
    ) -> ParticipantScore {
        let b = bands(&inputs, limits);
        ParticipantScore {
            id: id.into(),
            group: group.into(),
            meeting: meeting.into(),
            network: None,
            audio_mos: audio.as_ref().map(|a| round3(audio_mos(a))),
            video_score: video.as_ref().map(|v| round3(video_score(v))),
            bands: b,
            verdict: b.verdict(),
            inputs,
            audio,
            video,
        }
    }
}

impl ParticipantScore {
    /// The value of participant figure `name`
    /// ([`crate::scoped::PARTICIPANT_FIGURES`]); `None` when not measured.
    pub fn figure(&self, name: &str) -> Option<f64> {
        match name {
            "audio_mos" => self.audio_mos,
            "video_score" => self.video_score,
            "audio_concealment" => self.inputs.audio_concealment,
            "video_freeze_share" => self.inputs.video_freeze_share,
            "latency_p95_ms" => self.inputs.latency_p95_ms,
            "low_fps_share" => self.inputs.low_fps_share,
            "reconnects_per_hour" => self.inputs.reconnects_per_hour,
            _ => None,
        }
    }
}

/// How many participants had each verdict (or band).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BandCounts {
    /// Green.
    pub green: u64,
    /// Yellow.
    pub yellow: u64,
    /// Red.
    pub red: u64,
    /// Not measured.
    pub none: u64,
}

impl BandCounts {
    fn add(&mut self, b: Option<Band>) {
        match b {
            Some(Band::Green) => self.green += 1,
            Some(Band::Yellow) => self.yellow += 1,
            Some(Band::Red) => self.red += 1,
            None => self.none += 1,
        }
    }

    /// Green over those with a verdict; `None` when none had one.
    pub fn green_share(&self) -> Option<f64> {
        let n = self.green + self.yellow + self.red;
        (n > 0).then(|| self.green as f64 / n as f64)
    }
}

/// Something for each of the five bands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PerBand<T> {
    /// A: audio concealment.
    pub a: T,
    /// V: video freezes.
    pub v: T,
    /// L: latency.
    pub l: T,
    /// Q: low frame rate.
    pub q: T,
    /// S: reconnects.
    pub s: T,
}

/// The scores of a set of participants (the run, a group, a meeting).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScoreSummary {
    /// Participants.
    pub participants: u64,
    /// Their audio MOS.
    pub audio_mos: Stats,
    /// Their video scores.
    pub video_score: Stats,
    /// Their verdicts.
    pub verdicts: BandCounts,
    /// Their bands, each band.
    pub bands: PerBand<BandCounts>,
    /// Upstream's gate of each band over them (`null`: not measured).
    pub gates: PerBand<Option<Gate>>,
    /// `false` when a band's gate fails, `true` when all measured pass,
    /// `null` when none was measured (upstream's FAIL/PASS, without its
    /// validity gates).
    pub gates_pass: Option<bool>,
}

impl ScoreSummary {
    /// The summary of `ps` under `limits`.
    pub fn of<'a>(ps: impl IntoIterator<Item = &'a ParticipantScore>, limits: &BandLimits) -> Self {
        let mut out = ScoreSummary::default();
        let (mut audio, mut video) = (Vec::new(), Vec::new());
        let mut values: PerBand<Vec<f64>> = PerBand::default();
        for p in ps {
            out.participants += 1;
            audio.extend(p.audio_mos);
            video.extend(p.video_score);
            out.verdicts.add(p.verdict);
            out.bands.a.add(p.bands.a);
            out.bands.v.add(p.bands.v);
            out.bands.l.add(p.bands.l);
            out.bands.q.add(p.bands.q);
            out.bands.s.add(p.bands.s);
            let i = &p.inputs;
            values.a.extend(i.audio_concealment);
            values.v.extend(i.video_freeze_share);
            values.l.extend(i.latency_p95_ms);
            values.q.extend(i.low_fps_share);
            values.s.extend(i.reconnects_per_hour);
        }
        out.audio_mos = score::stats(&audio);
        out.video_score = score::stats(&video);
        let k = limits.k_red_fail;
        out.gates = PerBand {
            a: score::gate(&values.a, &limits.a, k),
            v: score::gate(&values.v, &limits.v, k),
            l: score::gate(&values.l, &limits.l, k),
            q: score::gate(&values.q, &limits.q, k),
            s: score::gate(&values.s, &limits.s, k),
        };
        let g = &out.gates;
        let measured: Vec<&Gate> = [&g.a, &g.v, &g.l, &g.q, &g.s]
            .into_iter()
            .flatten()
            .collect();
        out.gates_pass = (!measured.is_empty()).then(|| measured.iter().all(|g| !g.fail));
        out
    }
}

/// Scores over (sender, receiver) pairs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PairStats {
    /// Pairs.
    pub n: u64,
    /// 5th percentile.
    pub p5: Option<f64>,
    /// Median.
    pub p50: Option<f64>,
    /// Mean.
    pub mean: Option<f64>,
    /// The pairs' scores summed (for an exact mean when reports merge).
    pub sum: f64,
    /// The pairs' scores in thousandths, as a histogram
    /// ([`crate::model::Percentiles::hist`]'s format).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hist: Option<String>,
}

impl PairStats {
    /// The stats of `values` (NaN left out): percentiles by nearest rank
    /// of the values themselves.
    pub fn of(values: &[f64]) -> PairStats {
        let v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        let s = score::stats(&v);
        PairStats {
            n: s.n,
            p5: s.p5,
            p50: s.p50,
            mean: s.mean,
            sum: v.iter().sum(),
            hist: hist::encode_values(&v, PAIR_SCALE),
        }
    }

    /// Adds `o`'s pairs: the histograms add, percentiles come from the sum.
    pub fn merge(&mut self, o: &PairStats) -> Result<(), String> {
        let h = hist::merge([self.hist.as_deref(), o.hist.as_deref()])?;
        self.n += o.n;
        self.sum += o.sum;
        self.mean = (self.n > 0).then(|| round3(self.sum / self.n as f64));
        let q = |q| h.as_ref().and_then(|h| hist::quantile(h, q, PAIR_SCALE));
        self.p5 = q(0.05).map(round3);
        self.p50 = q(0.5).map(round3);
        self.hist = h.as_ref().and_then(hist::encode);
        Ok(())
    }
}

/// The pairs' audio MOS and video scores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PairScores {
    /// Audio MOS of each (sender, receiver) pair with audio.
    pub audio_mos: PairStats,
    /// Video score of each pair with video.
    pub video_score: PairStats,
}

/// The `scores` section of the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Scores {
    /// The band limits used (the config's `quality.bands`, else upstream's).
    pub limits: BandLimits,
    /// Every participant.
    pub run: ScoreSummary,
    /// The (sender, receiver) pairs.
    pub pairs: PairScores,
    /// Each group.
    pub groups: BTreeMap<String, ScoreSummary>,
    /// Each meeting.
    pub meetings: BTreeMap<String, ScoreSummary>,
    /// Each participant, in the order given.
    pub participants: Vec<ParticipantScore>,
}

/// The scores section from its parts: the summaries of the run, each
/// group and each meeting from `participants`, and the pairs' stats.
pub fn summarize(
    limits: &BandLimits,
    pair_audio: &[f64],
    pair_video: &[f64],
    participants: Vec<ParticipantScore>,
) -> Scores {
    let mut s = Scores {
        limits: limits.clone(),
        pairs: PairScores {
            audio_mos: PairStats::of(pair_audio),
            video_score: PairStats::of(pair_video),
        },
        participants,
        ..Scores::default()
    };
    s.resummarize();
    s
}

impl Scores {
    /// The run's, groups' and meetings' summaries again from the participants.
    fn resummarize(&mut self) {
        let ps = &self.participants;
        self.run = ScoreSummary::of(ps, &self.limits);
        let by = |key: fn(&ParticipantScore) -> &str| {
            let mut m: BTreeMap<String, Vec<&ParticipantScore>> = BTreeMap::new();
            for p in ps {
                m.entry(key(p).to_string()).or_default().push(p);
            }
            m.into_iter()
                .map(|(k, v)| (k, ScoreSummary::of(v, &self.limits)))
                .collect::<BTreeMap<_, _>>()
        };
        self.groups = by(|p| &p.group);
        self.meetings = by(|p| &p.meeting);
    }

    /// Adds another pod's scores: participants are concatenated and every
    /// summary recomputed from them (exact), the pairs' histograms add.
    /// Fails when the two were scored under different limits, or a pair
    /// histogram does not decode.
    pub fn merge(&mut self, other: &Scores) -> Result<(), String> {
        if self.limits != other.limits {
            return Err(
                "scores: the reports were scored under different band limits (quality.bands)"
                    .to_string(),
            );
        }
        self.pairs
            .audio_mos
            .merge(&other.pairs.audio_mos)
            .map_err(|e| format!("scores.pairs.audio_mos: {e}"))?;
        self.pairs
            .video_score
            .merge(&other.pairs.video_score)
            .map_err(|e| format!("scores.pairs.video_score: {e}"))?;
        self.participants.extend(other.participants.iter().cloned());
        self.resummarize();
        Ok(())
    }

    /// The group with the lowest median audio MOS, else the lowest median
    /// video score, with that median and what it is of.
    pub fn worst_group(&self) -> Option<(&str, &'static str, f64)> {
        let lowest = |f: fn(&ScoreSummary) -> Option<f64>| {
            self.groups
                .iter()
                .filter_map(|(k, s)| Some((k.as_str(), f(s)?)))
                .min_by(|a, b| a.1.total_cmp(&b.1))
        };
        lowest(|s| s.audio_mos.p50)
            .map(|(k, v)| (k, "audio MOS", v))
            .or_else(|| lowest(|s| s.video_score.p50).map(|(k, v)| (k, "video score", v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn participant(
        id: &str,
        group: &str,
        meeting: &str,
        loss: f64,
        freeze: f64,
    ) -> ParticipantScore {
        let limits = BandLimits::default();
        ParticipantScore::new(
            id,
            group,
            meeting,
            Some(AudioIn {
                one_way_ms: 40.0,
                jitter_ms: 4.0,
                concealed_share: loss,
                bitrate_kbps: Some(32.0),
            }),
            Some(VideoIn {
                freeze_share: freeze,
                fps: 30.0,
                sent_fps: 30.0,
                bits_per_pixel: None,
                width: 640,
                height: 360,
            }),
            BandIn {
                audio_concealment: Some(loss),
                video_freeze_share: Some(freeze),
                latency_p95_ms: Some(60.0),
                low_fps_share: None,
                reconnects_per_hour: Some(0.0),
            },
            &limits,
        )
    }

    fn people() -> Vec<ParticipantScore> {
        vec![
            participant("a1", "good", "m1", 0.0, 0.0),
            participant("a2", "good", "m1", 0.02, 0.0),
            participant("b1", "bad", "m2", 0.2, 0.1),
            participant("b2", "bad", "m2", 0.1, 0.04),
        ]
    }

    #[test]
    fn summaries_of_the_run_groups_and_meetings() {
        let s = summarize(&BandLimits::default(), &[4.0, 3.0], &[], people());
        assert_eq!(s.run.participants, 4);
        assert_eq!(s.run.verdicts.green, 1);
        assert_eq!(s.run.verdicts.yellow, 1);
        assert_eq!(s.run.verdicts.red, 2);
        assert_eq!(s.run.verdicts.green_share(), Some(0.25));
        assert_eq!(s.run.bands.q.none, 4, "Q not measured");
        assert_eq!(s.run.gates.q, None);
        assert_eq!(s.run.gates.a.unwrap().k_red, 2);
        assert_eq!(s.run.gates_pass, Some(false));
        assert_eq!(s.groups["good"].gates_pass, Some(true));
        assert_eq!(s.groups.len(), 2);
        assert_eq!(s.meetings["m2"].participants, 2);
        assert_eq!(s.worst_group().map(|g| g.0), Some("bad"));
        assert_eq!(s.pairs.audio_mos.n, 2);
        assert_eq!(s.pairs.audio_mos.mean, Some(3.5));
        assert_eq!(s.pairs.video_score.n, 0);
        assert_eq!(s.pairs.video_score.hist, None);
        let a1 = &s.participants[0];
        assert_eq!(a1.verdict, Some(Band::Green));
        assert!(a1.audio_mos.unwrap() > 4.0, "{:?}", a1.audio_mos);
        assert_eq!(a1.video_score, Some(5.0));
    }

    /// Merging two pods' scores gives what one pod scoring everyone would:
    /// summaries exactly, pair percentiles to the histogram's precision.
    #[test]
    fn merged_scores_equal_one_run_of_everything() {
        let l = BandLimits::default();
        let ps = people();
        let pairs: Vec<f64> = (0..40).map(|i| 1.0 + f64::from(i) * 0.1).collect();
        let mut a = summarize(&l, &pairs[..25], &pairs[..3], ps[..1].to_vec());
        let b = summarize(&l, &pairs[25..], &pairs[3..5], ps[1..].to_vec());
        let all = summarize(&l, &pairs, &pairs[..5], ps.clone());
        a.merge(&b).unwrap();
        assert_eq!(a.participants, all.participants);
        assert_eq!(a.run, all.run);
        assert_eq!(a.groups, all.groups);
        assert_eq!(a.meetings, all.meetings);
        let (m, w) = (&a.pairs.audio_mos, &all.pairs.audio_mos);
        assert_eq!((m.n, m.mean), (w.n, w.mean));
        for (x, y) in [(m.p5, w.p5), (m.p50, w.p50)] {
            assert!((x.unwrap() - y.unwrap()).abs() <= 0.005, "{x:?} {y:?}");
        }
        assert_eq!(a.pairs.video_score.n, 5);

        let other = Scores {
            limits: BandLimits {
                k_red_fail: 1,
                ..BandLimits::default()
            },
            ..Scores::default()
        };
        assert!(a
            .merge(&other)
            .unwrap_err()
            .contains("different band limits"));
    }

    #[test]
    fn a_section_round_trips_through_json() {
        let s = summarize(&BandLimits::default(), &[4.1], &[4.9], people());
        let text = serde_json::to_string(&s).unwrap();
        assert!(text.contains("\"verdict\":\"red\""), "{text}");
        let back: Scores = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
    }
}
