//! Quality scores from plain numbers: an audio MOS from the ITU-T G.107
//! E-model, a video score on the same 1..5 scale, and upstream
//! videocall-rs's five call-quality bands (A, V, L, Q, S) with its verdict
//! rule. Pure functions; the engine's collector measures the inputs and
//! [`crate::model::score`] carries the results in the report.
//!
//! Sources (each constant below names its own):
//! - ITU-T Rec. G.107 (06/2015), "The E-model: a computational model for
//!   use in transmission planning": the R factor, its default parameters
//!   (Table 3) and the R-to-MOS mapping (Annex B);
//! - ggarber/rtcscore `src/rtc_mos.js`: Opus's equipment impairment from
//!   its bitrate, its packet-loss robustness, the 20 ms packetisation, and
//!   the video formula (bits per pixel per frame, received against sent
//!   frame rate);
//! - security-union/videocall-rs `scripts/quality/call_quality_config.json`
//!   and `cq_score.py`: the bands, their limits and the gate rule.
//!
//! The chapter `docs/src/scores.md` gives every formula with its source.

use serde::{Deserialize, Serialize};

use crate::model::timeline::Sample;

/// Packetisation delay added to the measured one-way latency (ms): one
/// 20 ms Opus frame is captured before its packet leaves (rtcscore assumes
/// the same 20 ms).
pub const PACKETISATION_MS: f64 = 20.0;

/// The jitter buffer's allowance, in multiples of the RFC 3550 jitter: a
/// playout buffer holds about twice the interarrival jitter (our choice,
/// stated in the docs; rtcscore takes a measured buffer delay instead).
pub const JITTER_BUFFER_FACTOR: f64 = 2.0;

/// Opus's packet-loss robustness factor Bpl without in-band FEC (rtcscore:
/// 10 without FEC, 20 with). The packs' Opus frames are replayed as
/// recorded and no client decodes FEC, so the lower value applies.
pub const OPUS_BPL: f64 = 10.0;

/// Opus's equipment impairment factor when its bitrate is not known
/// (rtcscore's default).
pub const OPUS_IE_UNKNOWN_BITRATE: f64 = 6.0;

/// rtcscore's codec factor for VP9 (it rates a VP9 bit as 1.2 VP8 bits);
/// the packs carry VP9.
pub const VP9_FACTOR: f64 = 1.2;

/// What the audio MOS is computed from: one receiver's audio (from all
/// its senders), or one (sender, receiver) pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct AudioIn {
    /// One-way network latency, sender to receiver (ms): the median.
    pub one_way_ms: f64,
    /// RFC 3550 interarrival jitter (ms).
    pub jitter_ms: f64,
    /// Share of 20 ms playout slots concealed (lost or late), 0..1: the
    /// E-model's packet loss.
    pub concealed_share: f64,
    /// Opus bitrate (kbps); `None`: [`OPUS_IE_UNKNOWN_BITRATE`] is used.
    pub bitrate_kbps: Option<f64>,
}

impl AudioIn {
    /// The E-model's absolute one-way delay Ta (ms): the network's one-way
    /// latency, plus the jitter buffer ([`JITTER_BUFFER_FACTOR`] × jitter),
    /// plus one packet's capture ([`PACKETISATION_MS`]).
    pub fn mouth_to_ear_ms(&self) -> f64 {
        self.one_way_ms.max(0.0) + JITTER_BUFFER_FACTOR * self.jitter_ms.max(0.0) + PACKETISATION_MS
    }
}

/// Opus's equipment impairment factor Ie at `kbps` (rtcscore:
/// `clamp(55 − 4.6·ln(bits per second), 0, 30)`); `None` gives
/// [`OPUS_IE_UNKNOWN_BITRATE`].
pub fn opus_ie(kbps: Option<f64>) -> f64 {
    match kbps {
        Some(k) if k > 0.0 && k.is_finite() => (55.0 - 4.6 * (k * 1000.0).ln()).clamp(0.0, 30.0),
        _ => OPUS_IE_UNKNOWN_BITRATE,
    }
}

/// G.107's default parameters (Table 3) that this project never changes:
/// send and receive loudness ratings, sidetone masking and listener
/// sidetone ratings, D-values, talker echo loudness, weighted echo path
/// loss, quantizing distortion units, noise floors and room noise, the
/// advantage factor and the burst ratio (random loss).
mod g107 {
    pub const SLR: f64 = 8.0;
    pub const RLR: f64 = 2.0;
    pub const STMR: f64 = 15.0;
    pub const LSTR: f64 = 18.0;
    pub const DS: f64 = 3.0;
    pub const TELR: f64 = 65.0;
    pub const WEPL: f64 = 110.0;
    pub const QDU: f64 = 1.0;
    pub const NC: f64 = -70.0;
    pub const NFOR: f64 = -64.0;
    pub const PS: f64 = 35.0;
    pub const PR: f64 = 35.0;
    pub const A: f64 = 0.0;
    pub const BURST_R: f64 = 1.0;
}

/// G.107's R factor `R = Ro − Is − Id − Ie,eff + A` with every parameter
/// at its default (Table 3) except the delays and the codec: the mean
/// one-way delay of the echo path T and the absolute delay Ta are
/// `mouth_to_ear_ms` (echo-cancelled ends), the round trip Tr is twice it,
/// `ie` and `bpl` are the codec's impairment and robustness, `ppl_percent`
/// the random packet loss (%). With no delay, no codec and no loss it is
/// G.107's default 93.2.
pub fn e_model_r(mouth_to_ear_ms: f64, ie: f64, bpl: f64, ppl_percent: f64) -> f64 {
    use g107::*;
    let lg = f64::log10;
    let t = mouth_to_ear_ms.max(0.0);
    let (ta, tr) = (t, 2.0 * t);
    // Basic signal-to-noise ratio Ro (G.107 §3.2).
    let olr = SLR + RLR;
    let nfo = NFOR + RLR;
    let pre = PR + 10.0 * lg(1.0 + 10f64.powf((10.0 - LSTR) / 10.0));
    let nor = RLR - 121.0 + pre + 0.008 * (pre - 35.0).powi(2);
    let nos = PS - SLR - DS - 100.0 + 0.004 * (PS - olr - DS - 14.0).powi(2);
    let no = 10.0
        * lg(10f64.powf(NC / 10.0)
            + 10f64.powf(nos / 10.0)
            + 10f64.powf(nor / 10.0)
            + 10f64.powf(nfo / 10.0));
    let ro = 15.0 - 1.5 * (SLR + no);
    // Simultaneous impairments Is (§3.3): loudness, sidetone, quantizing.
    let xolr = olr + 0.2 * (64.0 + no - RLR);
    let iolr = 20.0 * ((1.0 + (xolr / 8.0).powi(8)).powf(1.0 / 8.0) - xolr / 8.0);
    let stmro = -10.0 * lg(10f64.powf(-STMR / 10.0) + (-t / 4.0).exp() * 10f64.powf(-TELR / 10.0));
    let ist = 12.0 * (1.0 + ((stmro - 13.0) / 6.0).powi(8)).powf(1.0 / 8.0)
        - 28.0 * (1.0 + ((stmro + 1.0) / 19.4).powi(35)).powf(1.0 / 35.0)
        - 13.0 * (1.0 + ((stmro - 3.0) / 33.0).powi(13)).powf(1.0 / 13.0)
        + 29.0;
    let q = 37.0 - 15.0 * lg(QDU);
    let g = 1.07 + 0.258 * q + 0.0602 * q * q;
    let y = (ro - 100.0) / 15.0 + 46.0 / 8.4 - g / 9.0;
    let z = 46.0 / 30.0 - g / 40.0;
    let iq = 15.0 * lg(1.0 + 10f64.powf(y) + 10f64.powf(z));
    let is = iolr + ist + iq;
    // Delay impairments Id = Idte + Idle + Idd (§3.4). STMR is 15, so
    // neither of the sidetone corrections (STMR < 9, STMR > 20) applies.
    let roe = -1.5 * (no - RLR);
    let terv = TELR - 40.0 * lg((1.0 + t / 10.0) / (1.0 + t / 150.0)) + 6.0 * (-0.3 * t * t).exp();
    let re = 80.0 + 2.5 * (terv - 14.0);
    let idte =
        ((roe - re) / 2.0 + ((roe - re).powi(2) / 4.0 + 100.0).sqrt() - 1.0) * (1.0 - (-t).exp());
    let rle = 10.5 * (WEPL + 7.0) * (tr + 1.0).powf(-0.25);
    let idle = (ro - rle) / 2.0 + ((ro - rle).powi(2) / 4.0 + 169.0).sqrt();
    let idd = idd(ta);
    // Equipment impairment with packet loss Ie,eff (§3.5).
    let ppl = ppl_percent.clamp(0.0, 100.0);
    let ie_eff = ie + (95.0 - ie) * ppl / (ppl / BURST_R + bpl);
    ro - is - (idte + idle + idd) - ie_eff + A
}

/// G.107's impairment by absolute delay Idd (§3.4): 0 up to Ta = 100 ms,
/// then `25·((1 + X⁶)^⅙ − 3·(1 + (X/3)⁶)^⅙ + 2)` with `X = log₂(Ta/100)`.
pub fn idd(ta_ms: f64) -> f64 {
    if ta_ms <= 100.0 {
        return 0.0;
    }
    let x = (ta_ms / 100.0).log2();
    25.0 * ((1.0 + x.powi(6)).powf(1.0 / 6.0) - 3.0 * (1.0 + (x / 3.0).powi(6)).powf(1.0 / 6.0)
        + 2.0)
}

/// The R factor of `a`: [`e_model_r`] at its [`AudioIn::mouth_to_ear_ms`],
/// with Opus's Ie ([`opus_ie`]) and Bpl ([`OPUS_BPL`]) and the concealed
/// share as the packet loss.
pub fn r_factor(a: &AudioIn) -> f64 {
    e_model_r(
        a.mouth_to_ear_ms(),
        opus_ie(a.bitrate_kbps),
        OPUS_BPL,
        a.concealed_share.clamp(0.0, 1.0) * 100.0,
    )
}

/// G.107 Annex B's MOS from R: 1 for R ≤ 0, 4.5 for R ≥ 100, else
/// `1 + 0.035·R + R·(R − 60)·(100 − R)·7·10⁻⁶`, held at 1 where that
/// polynomial dips below it (0 < R < 6.5: down to 0.98 near R = 3).
pub fn mos_from_r(r: f64) -> f64 {
    if r.is_nan() || r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        (1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6).max(1.0)
    }
}

/// The audio MOS of `a` (1..4.5): [`mos_from_r`] of [`r_factor`].
pub fn audio_mos(a: &AudioIn) -> f64 {
    mos_from_r(r_factor(a))
}

/// What the video score is computed from: one receiver's video, or one pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct VideoIn {
    /// Frozen time over watched time, 0..1.
    pub freeze_share: f64,
    /// Frames per second received.
    pub fps: f64,
    /// Frames per second the sender sent (the rendition's rate).
    pub sent_fps: f64,
    /// Bits per pixel per frame of the rendition sent
    /// ([`bits_per_pixel`]); `None`: the encoding term is left out and the
    /// score rates delivery alone.
    pub bits_per_pixel: Option<f64>,
    /// The rendition's width (shown with the score).
    pub width: u32,
    /// The rendition's height (shown with the score).
    pub height: u32,
}

/// Bits per pixel per frame of a rendition: its bitrate over its pixels
/// and frame rate; `None` when a term is zero or not finite.
pub fn bits_per_pixel(kbps: f64, width: u32, height: u32, fps: f64) -> Option<f64> {
    let px = f64::from(width) * f64::from(height);
    let v = kbps * 1000.0 / px / fps;
    (px > 0.0 && fps > 0.0 && v.is_finite() && v > 0.0).then_some(v)
}

/// The video score of `v`, 1..5:
/// - encoding (rtcscore): `clamp(0.56·ln(1.2·bpp) + 5.36, 1, 5)` with the
///   VP9 factor 1.2 ([`VP9_FACTOR`]), or 5 without bits per pixel;
/// - frame rate (rtcscore): minus `1.9·ln(sent_fps / fps)` (no bonus for
///   receiving more than was sent), clamped to 1..5; nothing received is 1;
/// - freezes (ours): frozen time scores the scale's floor 1, so the score
///   is `(1 − freeze)·s + freeze·1`, the time-weighted mean.
pub fn video_score(v: &VideoIn) -> f64 {
    let base = match v.bits_per_pixel {
        Some(b) if b > 0.0 && b.is_finite() => {
            (0.56 * (VP9_FACTOR * b).ln() + 5.36).clamp(1.0, 5.0)
        }
        _ => 5.0,
    };
    let flowing = if v.fps > 0.0 && v.sent_fps > 0.0 {
        (base - 1.9 * (v.sent_fps / v.fps).max(1.0).ln()).clamp(1.0, 5.0)
    } else {
        1.0
    };
    let f = if v.freeze_share.is_nan() {
        0.0
    } else {
        v.freeze_share.clamp(0.0, 1.0)
    };
    (1.0 - f) * flowing + f
}

/// One of upstream's bands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Band {
    /// At or below the green limit.
    Green,
    /// Between the limits.
    Yellow,
    /// At or above the red limit (upstream counts `value >= red` as red).
    Red,
}

impl Band {
    /// `green`, `yellow` or `red`.
    pub fn name(self) -> &'static str {
        match self {
            Band::Green => "green",
            Band::Yellow => "yellow",
            Band::Red => "red",
        }
    }
}

/// A band's two limits (higher is worse for every band).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// At or below: green.
    pub green: f64,
    /// At or above: red.
    pub red: f64,
}

impl Limit {
    /// The band of `value`: green at or below `green`, red at or above
    /// `red` (upstream's `k_red` counts `value >= red`), else yellow.
    pub fn band(&self, value: f64) -> Band {
        if value >= self.red {
            Band::Red
        } else if value <= self.green {
            Band::Green
        } else {
            Band::Yellow
        }
    }
}

/// The bands' limits, the low frame rate and the gate's red count; the
/// default is upstream's `call_quality_config.json` (`bands-v0`), and a
/// config's `quality.bands` overrides it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BandLimits {
    /// A: concealed share of audio (upstream green 0.01, red 0.05).
    #[serde(alias = "A")]
    pub a: Limit,
    /// V: frozen share of watched video (0.005, 0.03).
    #[serde(alias = "V")]
    pub v: Limit,
    /// L: 95th percentile one-way audio latency, ms (100, 300).
    #[serde(alias = "L")]
    pub l: Limit,
    /// Q: share of watched time with `0 < fps < low_fps` (0.01, 0.1).
    #[serde(alias = "Q")]
    pub q: Limit,
    /// S: unplanned reconnects per participant-hour (0, 1).
    #[serde(alias = "S")]
    pub s: Limit,
    /// Q's frame rate limit (upstream `near_frozen_fps`, 5).
    pub low_fps: f64,
    /// Upstream's gate fails a band when this many participants are red
    /// (`k_red_fail`, 2), or when the band's p95 is above red.
    pub k_red_fail: u64,
}

impl Default for BandLimits {
    fn default() -> Self {
        let l = |green, red| Limit { green, red };
        BandLimits {
            a: l(0.01, 0.05),
            v: l(0.005, 0.03),
            l: l(100.0, 300.0),
            q: l(0.01, 0.1),
            s: l(0.0, 1.0),
            low_fps: 5.0,
            k_red_fail: 2,
        }
    }
}

impl BandLimits {
    /// The bands by name, in upstream's order A, V, L, Q, S.
    pub fn each(&self) -> [(&'static str, &Limit); 5] {
        [
            ("a", &self.a),
            ("v", &self.v),
            ("l", &self.l),
            ("q", &self.q),
            ("s", &self.s),
        ]
    }

    /// Checks the limits: finite, not negative, green below red; the low
    /// frame rate positive; `k_red_fail` at least 1. The error is one line
    /// naming the field (`bands.a: green 0.05 is not below red 0.01`).
    pub fn check(&self) -> Result<(), String> {
        for (name, l) in self.each() {
            for (side, v) in [("green", l.green), ("red", l.red)] {
                if !v.is_finite() || v < 0.0 {
                    return Err(format!(
                        "bands.{name}.{side}: {v} is not a finite number at least 0"
                    ));
                }
            }
            if l.green >= l.red {
                return Err(format!(
                    "bands.{name}: green {} is not below red {}",
                    l.green, l.red
                ));
            }
        }
        if !self.low_fps.is_finite() || self.low_fps <= 0.0 {
            return Err(format!(
                "bands.low_fps: {} is not a finite number above 0",
                self.low_fps
            ));
        }
        if self.k_red_fail == 0 {
            return Err("bands.k_red_fail: 0 would fail every band; give at least 1".into());
        }
        Ok(())
    }
}

/// One participant's band inputs, as upstream defines them; `None`: not
/// measured (that band is then `None`, never invented).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BandIn {
    /// A: concealed slots over slots expected, all its senders (0..1).
    pub audio_concealment: Option<f64>,
    /// V: frozen time over watched time, all its senders (0..1).
    pub video_freeze_share: Option<f64>,
    /// L: 95th percentile of its one-way audio latency (ms).
    pub latency_p95_ms: Option<f64>,
    /// Q: share of its watched time with `0 < fps < low_fps` (0..1).
    pub low_fps_share: Option<f64>,
    /// S: its unplanned reconnects per hour of its presence.
    pub reconnects_per_hour: Option<f64>,
}

/// One participant's bands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Bands {
    /// Audio concealment.
    pub a: Option<Band>,
    /// Video freezes.
    pub v: Option<Band>,
    /// Latency.
    pub l: Option<Band>,
    /// Low frame rate.
    pub q: Option<Band>,
    /// Stability (reconnects).
    pub s: Option<Band>,
}

impl Bands {
    /// The bands in upstream's order A, V, L, Q, S.
    pub fn each(&self) -> [(&'static str, Option<Band>); 5] {
        [
            ("a", self.a),
            ("v", self.v),
            ("l", self.l),
            ("q", self.q),
            ("s", self.s),
        ]
    }

    /// The participant's verdict: its worst measured band (red if any is
    /// red, else yellow if any is yellow, else green); `None` when no band
    /// was measured. Upstream gates each band over all participants
    /// ([`gate`]); per participant, one red band is what it counts.
    pub fn verdict(&self) -> Option<Band> {
        self.each().iter().filter_map(|(_, b)| *b).max()
    }
}

/// The bands of `i` under `l`; an input `None` gives that band `None`.
pub fn bands(i: &BandIn, l: &BandLimits) -> Bands {
    let b = |v: Option<f64>, lim: &Limit| v.filter(|v| !v.is_nan()).map(|v| lim.band(v));
    Bands {
        a: b(i.audio_concealment, &l.a),
        v: b(i.video_freeze_share, &l.v),
        l: b(i.latency_p95_ms, &l.l),
        q: b(i.low_fps_share, &l.q),
        s: b(i.reconnects_per_hour, &l.s),
    }
}

/// A band over all participants, as upstream's `summarize_dimension` and
/// quality gates judge it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Gate {
    /// Participants with the band measured.
    pub n: u64,
    /// Median of their values (linear interpolation, as upstream).
    pub p50: Option<f64>,
    /// 95th percentile (linear interpolation, as upstream).
    pub p95: Option<f64>,
    /// Participants at or above red.
    pub k_red: u64,
    /// Upstream's rule: `p95 > red` or `k_red >= k_red_fail`.
    pub fail: bool,
}

/// The `q` (0..1) percentile of `v` by linear interpolation between the
/// closest ranks (upstream's `percentile`, numpy's default); `None` when empty.
pub fn percentile_linear(v: &[f64], q: f64) -> Option<f64> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(f64::total_cmp);
    let k = (s.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let (lo, hi) = (k.floor() as usize, k.ceil() as usize);
    Some(s[lo] + (s[hi] - s[lo]) * (k - lo as f64))
}

/// Upstream's gate of one band over the participants' `values`; `None`
/// when none was measured.
pub fn gate(values: &[f64], limit: &Limit, k_red_fail: u64) -> Option<Gate> {
    let p95 = percentile_linear(values, 0.95)?;
    let k_red = values.iter().filter(|v| **v >= limit.red).count() as u64;
    Some(Gate {
        n: values.iter().filter(|v| !v.is_nan()).count() as u64,
        p50: percentile_linear(values, 0.5),
        p95: Some(p95),
        k_red,
        fail: p95 > limit.red || k_red >= k_red_fail,
    })
}

/// Count, 5th percentile, median and mean of some scores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// How many.
    pub n: u64,
    /// 5th percentile (nearest rank): the worst served.
    pub p5: Option<f64>,
    /// Median (nearest rank).
    pub p50: Option<f64>,
    /// Mean.
    pub mean: Option<f64>,
}

/// The [`Stats`] of `values` (NaN left out), rounded to 3 decimals.
pub fn stats(values: &[f64]) -> Stats {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    let n = v.len();
    let mean = (n > 0).then(|| v.iter().sum::<f64>() / n as f64);
    let r = |x: Option<f64>| x.map(crate::num::round3);
    Stats {
        n: n as u64,
        p5: r(crate::num::quantile(&mut v, 0.05)),
        p50: r(crate::num::quantile(&mut v, 0.5)),
        mean: r(mean),
    }
}

/// The audio MOS of one interval of the timeline: from the interval's
/// audio latency median, its jitter's 99th percentile and its loss
/// `lost / (received + lost)` (the holes opened in the interval stand for
/// the concealed slots), Opus at `kbps`. `None` when the interval received
/// no audio latency sample.
pub fn interval_audio_mos(s: &Sample, kbps: Option<f64>) -> Option<f64> {
    let one_way_ms = s.latency_ms.audio.p50?;
    let lost = s.lost.audio.max(0) as f64;
    let got = s.recv_packets.audio as f64;
    let concealed_share = if got + lost > 0.0 {
        lost / (got + lost)
    } else {
        0.0
    };
    Some(audio_mos(&AudioIn {
        one_way_ms,
        jitter_ms: s.jitter_ms.audio.unwrap_or(0.0),
        concealed_share,
        bitrate_kbps: kbps,
    }))
}

/// The video score of one interval: the sample has no frame rate or
/// frozen time of its own, so the engine measures them over the interval
/// and passes them as `v`; `None` when it has none.
pub fn interval_video_score(v: Option<&VideoIn>) -> Option<f64> {
    v.map(video_score)
}

impl Sample {
    /// Fills the interval's scores once its other fields are in: the
    /// audio MOS from its latency, jitter and loss with Opus at
    /// `audio_kbps`, the video score from what the engine measured over
    /// the interval (`video`, `None` when it has nothing). Rounded to 3
    /// decimals.
    pub fn score(&mut self, audio_kbps: Option<f64>, video: Option<&VideoIn>) {
        self.audio_mos = interval_audio_mos(self, audio_kbps).map(crate::num::round3);
        self.video_score = interval_video_score(video).map(crate::num::round3);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mos_never_drops_below_the_scale() {
        // The polynomial alone gives 0.989 at R = 3.
        assert_eq!(mos_from_r(3.0), 1.0);
        for r in 0..=110 {
            let m = mos_from_r(f64::from(r));
            assert!((1.0..=4.5).contains(&m), "R {r}: {m}");
        }
        assert!(mos_from_r(7.0) > 1.0);
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// G.107: all parameters at their defaults give R = 93.2 (93.2062 with
    /// the unrounded formulas, as manucorporat/e-model's implementation prints).
    #[test]
    fn default_parameters_give_r_93_2_and_mos_4_41() {
        let r = e_model_r(0.0, 0.0, 1.0, 0.0);
        assert!(close(r, 93.2062, 0.001), "R {r}");
        assert!(close(mos_from_r(r), 4.41, 0.005), "MOS {}", mos_from_r(r));
    }

    /// The R-to-MOS pairs G.107 Annex B tabulates for its user-satisfaction
    /// categories (R 90/80/70/60/50 → MOS 4.34/4.03/3.60/3.10/2.58), to
    /// their two decimals (the formula gives 4.024 at R 80), and the bounds.
    #[test]
    fn mos_of_published_r_values_and_bounds() {
        for (r, mos) in [
            (90.0, 4.34),
            (80.0, 4.03),
            (70.0, 3.60),
            (60.0, 3.10),
            (50.0, 2.58),
        ] {
            assert!(close(mos_from_r(r), mos, 0.01), "R {r}: {}", mos_from_r(r));
        }
        assert_eq!(mos_from_r(0.0), 1.0);
        assert_eq!(mos_from_r(-20.0), 1.0);
        assert_eq!(mos_from_r(100.0), 4.5);
        assert_eq!(mos_from_r(130.0), 4.5);
        assert_eq!(mos_from_r(f64::NAN), 1.0);
    }

    /// Idd by G.107's formula: 0 up to 100 ms; X = 1 at 200 ms gives
    /// 25·(2^⅙ − 3·(1 + 3⁻⁶)^⅙ + 2) ≈ 3.04; X = 2 at 400 ms ≈ 24.07.
    #[test]
    fn delay_impairment_at_its_edges() {
        assert_eq!(idd(100.0), 0.0);
        assert!(close(idd(200.0), 3.044, 0.002), "{}", idd(200.0));
        assert!(close(idd(400.0), 24.07, 0.02), "{}", idd(400.0));
    }

    /// Ie,eff = Ie + (95 − Ie)·Ppl/(Ppl/BurstR + Bpl): G.711 with PLC
    /// (G.113 Appendix I: Ie 0, Bpl 25.1) at 2 % random loss loses 7.01.
    #[test]
    fn packet_loss_impairment() {
        let clean = e_model_r(0.0, 0.0, 25.1, 0.0);
        let lossy = e_model_r(0.0, 0.0, 25.1, 2.0);
        assert!(close(clean - lossy, 95.0 * 2.0 / 27.1, 1e-9));
    }

    #[test]
    fn opus_impairment_from_its_bitrate() {
        // 55 − 4.6·ln(32000) = 7.28.
        assert!(close(opus_ie(Some(32.0)), 7.282, 0.001));
        assert_eq!(opus_ie(Some(0.1)), 30.0, "clamped at 30");
        assert_eq!(opus_ie(Some(1e9)), 0.0, "clamped at 0");
        assert_eq!(opus_ie(None), OPUS_IE_UNKNOWN_BITRATE);
        assert_eq!(opus_ie(Some(0.0)), OPUS_IE_UNKNOWN_BITRATE);
    }

    #[test]
    fn audio_mos_falls_with_loss_and_delay() {
        let a = |one_way_ms, jitter_ms, concealed_share| AudioIn {
            one_way_ms,
            jitter_ms,
            concealed_share,
            bitrate_kbps: Some(32.0),
        };
        let mut last = f64::INFINITY;
        for loss in [0.0, 0.005, 0.01, 0.05, 0.1, 0.3, 1.0] {
            let m = audio_mos(&a(30.0, 2.0, loss));
            assert!(m < last, "loss {loss}: {m} not below {last}");
            last = m;
        }
        let mut last = f64::INFINITY;
        for d in [0.0, 50.0, 100.0, 150.0, 200.0, 300.0, 500.0] {
            let m = audio_mos(&a(d, 0.0, 0.0));
            assert!(m < last, "delay {d}: {m} not below {last}");
            last = m;
        }
        // Jitter adds to the delay through the buffer.
        assert!(audio_mos(&a(100.0, 40.0, 0.0)) < audio_mos(&a(100.0, 0.0, 0.0)));
        assert_eq!(a(100.0, 40.0, 0.0).mouth_to_ear_ms(), 200.0);
        for m in [audio_mos(&a(0.0, 0.0, 0.0)), audio_mos(&a(5e3, 1e3, 1.0))] {
            assert!((1.0..=4.5).contains(&m), "{m}");
        }
    }

    #[test]
    fn video_score_from_rate_bits_and_freezes() {
        let v = |freeze_share, fps, bits_per_pixel| VideoIn {
            freeze_share,
            fps,
            sent_fps: 30.0,
            bits_per_pixel,
            width: 1280,
            height: 720,
        };
        assert_eq!(video_score(&v(0.0, 30.0, None)), 5.0);
        // Half the frames: 5 − 1.9·ln 2.
        assert!(close(
            video_score(&v(0.0, 15.0, None)),
            5.0 - 1.9 * 2f64.ln(),
            1e-9
        ));
        // More frames than sent is no bonus.
        assert_eq!(video_score(&v(0.0, 40.0, None)), 5.0);
        // Nothing received, or frozen throughout: the floor.
        assert_eq!(video_score(&v(0.0, 0.0, None)), 1.0);
        assert_eq!(video_score(&v(1.0, 30.0, None)), 1.0);
        // 10 % frozen: 0.9·5 + 0.1·1.
        assert!(close(video_score(&v(0.1, 30.0, None)), 4.6, 1e-9));
        // 0.1 bit per pixel per frame: 0.56·ln(0.12) + 5.36.
        assert!(close(
            video_score(&v(0.0, 30.0, Some(0.1))),
            0.56 * 0.12f64.ln() + 5.36,
            1e-9
        ));
        assert_eq!(video_score(&v(0.0, 30.0, Some(1e-9))), 1.0);
        let bpp = bits_per_pixel(1500.0, 1280, 720, 30.0).unwrap();
        assert!(close(bpp, 1.5e6 / (1280.0 * 720.0 * 30.0), 1e-12));
        assert_eq!(bits_per_pixel(1500.0, 0, 720, 30.0), None);
        assert_eq!(bits_per_pixel(1500.0, 1280, 720, 0.0), None);
    }

    /// A value exactly at a limit: green at the green limit, red at the
    /// red one (upstream counts `value >= red` in red).
    #[test]
    fn each_band_at_its_edges() {
        let l = BandLimits::default();
        let edges = |lim: &Limit| {
            assert_eq!(lim.band(lim.green), Band::Green);
            assert_eq!(lim.band(lim.red), Band::Red);
            let mid = (lim.green + lim.red) / 2.0;
            assert_eq!(lim.band(mid), Band::Yellow);
            assert_eq!(lim.band(lim.red - 1e-9), Band::Yellow);
            assert_eq!(lim.band(lim.green + 1e-9), Band::Yellow);
        };
        for (_, lim) in l.each() {
            edges(lim);
        }
        let at = |i: BandIn| bands(&i, &l);
        let b = at(BandIn {
            audio_concealment: Some(0.01),
            video_freeze_share: Some(0.03),
            latency_p95_ms: Some(100.0),
            low_fps_share: Some(0.1),
            reconnects_per_hour: Some(0.0),
        });
        assert_eq!(b.a, Some(Band::Green));
        assert_eq!(b.v, Some(Band::Red));
        assert_eq!(b.l, Some(Band::Green));
        assert_eq!(b.q, Some(Band::Red));
        assert_eq!(b.s, Some(Band::Green));
        let b = at(BandIn {
            audio_concealment: Some(0.0500001),
            latency_p95_ms: Some(299.9),
            reconnects_per_hour: Some(1.0),
            ..BandIn::default()
        });
        assert_eq!(b.a, Some(Band::Red));
        assert_eq!(b.l, Some(Band::Yellow));
        assert_eq!(b.s, Some(Band::Red));
        assert_eq!((b.v, b.q), (None, None), "not measured stays None");
    }

    #[test]
    fn verdict_is_the_worst_measured_band() {
        let mut b = Bands::default();
        assert_eq!(b.verdict(), None);
        b.l = Some(Band::Green);
        assert_eq!(b.verdict(), Some(Band::Green));
        b.a = Some(Band::Yellow);
        assert_eq!(b.verdict(), Some(Band::Yellow));
        b.s = Some(Band::Red);
        assert_eq!(b.verdict(), Some(Band::Red));
    }

    /// Upstream's gate: fail when the p95 is above red, or when
    /// `k_red_fail` participants are at or above red.
    #[test]
    fn gate_follows_upstream() {
        let lim = Limit {
            green: 0.01,
            red: 0.05,
        };
        assert_eq!(gate(&[], &lim, 2), None);
        let g = gate(
            &[0.0; 19].iter().copied().chain([0.05]).collect::<Vec<_>>(),
            &lim,
            2,
        )
        .unwrap();
        assert_eq!((g.n, g.k_red, g.fail), (20, 1, false));
        // p95 of 0..=20 twentieths by interpolation: 0.95 × 20 = 19 → 0.0475.
        let v: Vec<f64> = (0..=20).map(|i| f64::from(i) * 0.0025).collect();
        assert!(close(g.p95.unwrap(), 0.0025, 1e-12), "{:?}", g.p95);
        let g = gate(&v, &lim, 2).unwrap();
        assert!(close(g.p95.unwrap(), 0.0475, 1e-12));
        assert_eq!((g.k_red, g.fail), (1, false), "one red, p95 below red");
        let g = gate(&[0.05, 0.05, 0.0], &lim, 2).unwrap();
        assert_eq!((g.k_red, g.fail), (2, true), "two red");
        let g = gate(&[0.05, 0.0], &lim, 3).unwrap();
        assert!(
            !g.fail,
            "p95 0.0475 is not above red, and one red is below 3"
        );
        let g = gate(&[0.06, 0.06], &lim, 3).unwrap();
        assert!(g.fail, "p95 above red");
    }

    #[test]
    fn stats_nearest_rank_and_mean() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        let s = stats(&v);
        assert_eq!(s.n, 20);
        assert_eq!(s.p5, Some(1.0));
        assert_eq!(s.p50, Some(10.0));
        assert_eq!(s.mean, Some(10.5));
        assert_eq!(stats(&[]), Stats::default());
        assert_eq!(stats(&[f64::NAN, 2.0]).n, 1);
    }

    #[test]
    fn limits_are_checked() {
        assert_eq!(BandLimits::default().check(), Ok(()));
        let with = |f: fn(&mut BandLimits)| {
            let mut l = BandLimits::default();
            f(&mut l);
            l.check().unwrap_err()
        };
        assert_eq!(
            with(|l| l.a = Limit {
                green: 0.05,
                red: 0.01
            }),
            "bands.a: green 0.05 is not below red 0.01"
        );
        assert_eq!(
            with(|l| l.v.green = l.v.red),
            "bands.v: green 0.03 is not below red 0.03"
        );
        assert!(with(|l| l.l.red = f64::INFINITY).starts_with("bands.l.red: inf"));
        assert!(with(|l| l.q.red = f64::NAN).starts_with("bands.q.red: NaN"));
        assert!(with(|l| l.s.green = -1.0).starts_with("bands.s.green"));
        assert!(with(|l| l.k_red_fail = 0).starts_with("bands.k_red_fail"));
        assert!(with(|l| l.low_fps = 0.0).starts_with("bands.low_fps"));
    }

    #[test]
    fn interval_scores_from_a_sample() {
        let mut s = Sample::default();
        assert_eq!(interval_audio_mos(&s, None), None, "no audio received");
        s.latency_ms.audio.p50 = Some(40.0);
        s.jitter_ms.audio = Some(5.0);
        s.recv_packets.audio = 990;
        s.lost.audio = 10;
        let expect = audio_mos(&AudioIn {
            one_way_ms: 40.0,
            jitter_ms: 5.0,
            concealed_share: 0.01,
            bitrate_kbps: Some(32.0),
        });
        assert_eq!(interval_audio_mos(&s, Some(32.0)), Some(expect));
        // Holes filled late (a negative change) are no loss.
        s.lost.audio = -3;
        assert!(interval_audio_mos(&s, Some(32.0)).unwrap() > expect);
        assert_eq!(interval_video_score(None), None);
    }
}
