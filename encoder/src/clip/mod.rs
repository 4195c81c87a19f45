//! Clips copied into a pack as they are (passthrough): a real encoder's VP9
//! frames and Opus packets, with no second encode.
//!
//! - [`read_video`] takes the VP9 track of a WebM/Matroska file ([`webm`],
//!   demuxed by `matroska-demuxer`) or an IVF file (`synth_common::ivf`). Key
//!   frames come from each frame's VP9 header (`synth_common::vp9`), not the
//!   container's flags; a profile other than 0 (8-bit 4:2:0) is refused.
//! - [`read_audio`] takes the Opus track of a WebM/Matroska file or the Opus
//!   stream of an Ogg file ([`crate::ogg::read_streams`]). Each packet's
//!   duration comes from its own TOC byte, and every packet of a clip must
//!   last the same (browsers and libopus write 20 ms; Chrome's MediaRecorder
//!   60 ms).
//!
//! Timing ([`timing`]): the container's timestamps, taken from the first
//! frame. When they sit on a constant frame rate's grid to within the
//! container's precision (WebM stores milliseconds, so 30 fps comes as 0, 33,
//! 67, 100 ...), the frames get that rate's exact 90 kHz times, as encoded
//! tracks have; otherwise (a browser's recording, frames as the camera gave
//! them) they keep their own times, converted to 90 kHz, and the track says
//! its mean rate.
//!
//! [`crate::build`] then cuts the clips to the loop, which never extends a
//! clip: see `fit_loop` there.

pub mod webm;

use std::path::{Path, PathBuf};

use synth_common::vp9;

use crate::container::Container;
use crate::plan::VIDEO_CLOCK;
use crate::Error;

/// The VP9 frames of one clip, timed on the 90 kHz clock.
#[derive(Debug, Clone)]
pub struct VideoClip {
    /// The file.
    pub path: PathBuf,
    /// Where in the file, for the user: `WebM track 1`, `IVF`.
    pub track: String,
    /// Width in pixels (from the first key frame).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The frames as the file holds them.
    pub frames: Vec<Vec<u8>>,
    /// Which frames are key frames (from their VP9 headers).
    pub keys: Vec<bool>,
    /// Each frame's time, 90 kHz ticks from the first frame; strictly increasing.
    pub pts: Vec<u64>,
    /// Where the last frame ends, in ticks.
    pub end: u64,
    /// The frame rate.
    pub rate: Rate,
}

/// A video clip's frame rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// Frames on a constant grid of `num/den` frames a second.
    Constant {
        /// Frames.
        num: u32,
        /// Per this many seconds.
        den: u32,
    },
    /// Frames at their own times; the mean rate, frames a second.
    Variable(f64),
}

impl Rate {
    /// A whole number of frames a second, if the rate is one.
    pub fn whole(self) -> Option<u32> {
        match self {
            Rate::Constant { num, den: 1 } => Some(num),
            _ => None,
        }
    }

    /// The rate as a fraction for a track record: exact when constant,
    /// to a thousandth of a frame when variable.
    pub fn fraction(self) -> (u32, u32) {
        match self {
            Rate::Constant { num, den } => (num, den),
            Rate::Variable(fps) => (((fps * 1000.0).round() as u32).max(1), 1000),
        }
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Rate::Constant { num, den: 1 } => write!(f, "{num} fps"),
            Rate::Constant { num, den } => write!(f, "{:.3} fps", num as f64 / den as f64),
            Rate::Variable(fps) => write!(f, "variable rate, {fps:.2} fps on average"),
        }
    }
}

impl VideoClip {
    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        self.end as f64 / VIDEO_CLOCK as f64
    }

    /// One line for the user and the pack's source table.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}, VP9 {}x{}, {}, {} frames, {:.2} s)",
            self.path.display(),
            self.track,
            self.width,
            self.height,
            self.rate,
            self.frames.len(),
            self.seconds()
        )
    }
}

/// The Opus packets of one clip.
#[derive(Debug, Clone)]
pub struct AudioClip {
    /// The file.
    pub path: PathBuf,
    /// Where in the file, for the user: `WebM track 2`, `Ogg stream 1234`.
    pub track: String,
    /// Channels the stream was encoded with (1 or 2).
    pub channels: u8,
    /// The packets as the file holds them.
    pub packets: Vec<Vec<u8>>,
    /// 48 kHz samples each packet decodes to (the same for all).
    pub packet_samples: u32,
    /// The sample rate the encoder was fed, as the file says (informative:
    /// Opus itself runs at 48 kHz); 0 when it does not say.
    pub input_rate: u32,
}

impl AudioClip {
    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        self.packets.len() as f64 * self.packet_samples as f64 / 48_000.0
    }

    /// One line for the user and the pack's source table.
    pub fn describe(&self) -> String {
        let input = match self.input_rate {
            0 | 48_000 => String::new(),
            rate => format!(", encoded from {rate} Hz"),
        };
        format!(
            "{} ({}, Opus {}{input}, {} ms packets, {:.2} s)",
            self.path.display(),
            self.track,
            if self.channels == 1 { "mono" } else { "stereo" },
            self.packet_samples as f64 / 48.0,
            self.seconds()
        )
    }
}

/// The encode path offered to a video clip that cannot be copied.
pub fn video_encode_hint(path: &Path) -> String {
    format!(
        "to encode it instead, convert it to Y4M and pass that: ffmpeg -i {} -pix_fmt yuv420p clip.y4m, then --video clip.y4m",
        path.display()
    )
}

/// The encode path offered to an audio clip that cannot be copied.
pub fn audio_encode_hint(path: &Path) -> String {
    format!(
        "to decode and encode it instead, pass --audio encode:{}",
        path.display()
    )
}

/// Reads the VP9 frames of the WebM, Matroska or IVF file at `path`.
pub fn read_video(path: &Path, container: Container) -> Result<VideoClip, Error> {
    let raw = match container {
        Container::Matroska { .. } => webm::read(path, container)?.video(path)?,
        Container::Ivf => read_ivf(path)?,
        other => {
            return Err(Error::media(
                path,
                format!(
                    "is {} {} file, not WebM or IVF: passthrough copies VP9 from WebM or IVF",
                    article(other.name()),
                    other.name()
                ),
            ))
        }
    };
    raw.into_clip(path)
}

/// Reads the Opus packets of the WebM, Matroska or Ogg file at `path`.
pub fn read_audio(path: &Path, container: Container) -> Result<AudioClip, Error> {
    match container {
        Container::Matroska { .. } => webm::read(path, container)?.audio(path),
        Container::Ogg => read_ogg(path),
        other => Err(Error::media(
            path,
            format!(
                "is {} {} file: passthrough copies Opus from WebM or Ogg; {}",
                article(other.name()),
                other.name(),
                audio_encode_hint(path)
            ),
        )),
    }
}

fn article(word: &str) -> &'static str {
    match word.chars().next() {
        Some('A' | 'E' | 'I' | 'O' | 'M') => "an",
        _ => "a",
    }
}

/// A video track as demuxed, before its frames are checked and timed.
pub(crate) struct Demuxed {
    /// Where in the file, e.g. `WebM track 1`.
    pub track: String,
    /// The frames, in file order.
    pub frames: Vec<Vec<u8>>,
    /// Their timestamps, in container units, as stored.
    pub timestamps: Vec<u64>,
    /// One container unit in seconds, as `num / den`.
    pub unit: (u64, u64),
    /// The length of one frame the container declares, if any (units).
    pub default_duration: Option<f64>,
}

impl Demuxed {
    /// Checks every frame's VP9 header, finds the key frames and the size,
    /// and times the frames.
    fn into_clip(self, path: &Path) -> Result<VideoClip, Error> {
        let bad = |reason: String| Error::media(path, reason);
        if self.frames.is_empty() {
            return Err(bad(format!("{} holds no frames", self.track)));
        }
        let mut keys = Vec::with_capacity(self.frames.len());
        let mut size = None;
        for (i, data) in self.frames.iter().enumerate() {
            match vp9::profile(data) {
                Some(0) => {}
                Some(p) => {
                    let depth = vp9::key_frame(data)
                        .map_or(String::new(), |k| format!(", {}-bit", k.bit_depth));
                    return Err(bad(format!(
                        "{} is VP9 profile {p}{depth}, not profile 0 (8-bit 4:2:0, what browsers decode): {}",
                        self.track,
                        video_encode_hint(path)
                    )));
                }
                None => {
                    return Err(bad(format!(
                        "frame {i} of {} is not a VP9 frame (damaged file?)",
                        self.track
                    )))
                }
            }
            let key = vp9::key_frame(data);
            if let Some(k) = key {
                let this = (k.width, k.height);
                match size {
                    None => size = Some(this),
                    Some(first) if first != this => {
                        return Err(bad(format!(
                            "{} changes size at frame {i}, from {}x{} to {}x{}: a pack's track keeps one size",
                            self.track, first.0, first.1, this.0, this.1
                        )))
                    }
                    Some(_) => {}
                }
            } else if i == 0 {
                return Err(bad(format!(
                    "{} does not start with a key frame, so a decoder cannot start on its first frame",
                    self.track
                )));
            }
            keys.push(key.is_some());
        }
        let (width, height) = size.expect("frame 0 is a key frame");
        let timed = timing::time(&self.timestamps, self.unit, self.default_duration)
            .map_err(|reason| bad(format!("{}: {reason}", self.track)))?;
        Ok(VideoClip {
            path: path.to_path_buf(),
            track: self.track,
            width,
            height,
            frames: self.frames,
            keys,
            pts: timed.pts,
            end: timed.end,
            rate: timed.rate,
        })
    }
}

/// An IVF file's frames; its time base is the header's `scale/rate` seconds.
fn read_ivf(path: &Path) -> Result<Demuxed, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |e: synth_common::ivf::IvfError| Error::media(path, e.to_string());
    let (header, frames) = synth_common::ivf::frames(&bytes).map_err(bad)?;
    if &header.fourcc != b"VP90" {
        let fourcc = String::from_utf8_lossy(&header.fourcc).into_owned();
        return Err(Error::media(
            path,
            format!(
                "is an IVF file of {fourcc}, not VP9 (VP90): passthrough copies VP9 profile 0 only; {}",
                video_encode_hint(path)
            ),
        ));
    }
    if header.rate == 0 || header.scale == 0 {
        return Err(Error::media(
            path,
            format!(
                "IVF time base {}/{} is not valid",
                header.scale, header.rate
            ),
        ));
    }
    let mut raw = Demuxed {
        track: "IVF".into(),
        frames: Vec::new(),
        timestamps: Vec::new(),
        unit: (header.scale as u64, header.rate as u64),
        default_duration: None,
    };
    for frame in frames {
        let (pts, data) = frame.map_err(|e| match e {
            synth_common::ivf::IvfError::Truncated => Error::media(
                path,
                format!("truncated: the file ends inside frame {}", raw.frames.len()),
            ),
            e => bad(e),
        })?;
        raw.frames.push(data.to_vec());
        raw.timestamps.push(pts);
    }
    // The header's frame count is not checked: ffmpeg writes its duration
    // there, and a cut inside a frame is caught above.
    Ok(raw)
}

/// The Opus stream of an Ogg file.
fn read_ogg(path: &Path) -> Result<AudioClip, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let streams =
        crate::ogg::read_streams(&bytes).map_err(|e| Error::media(path, e.to_string()))?;
    let codec = |first: &[u8]| -> &'static str {
        if first.starts_with(b"OpusHead") {
            "Opus"
        } else if first.starts_with(b"\x01vorbis") {
            "Vorbis"
        } else if first.starts_with(b"\x7fFLAC") {
            "FLAC"
        } else if first.starts_with(b"Speex") {
            "Speex"
        } else if first.starts_with(b"\x80theora") {
            "Theora"
        } else {
            "an unknown codec"
        }
    };
    let opus = streams
        .iter()
        .find(|s| s.packets.first().is_some_and(|p| codec(p) == "Opus"));
    let Some(stream) = opus else {
        let held: Vec<String> = streams
            .iter()
            .map(|s| {
                s.packets
                    .first()
                    .map_or("nothing", |p| codec(p))
                    .to_string()
            })
            .collect();
        return Err(Error::media(
            path,
            format!(
                "holds {} audio, not Opus: passthrough copies Opus only; {}",
                if held.is_empty() {
                    "no".to_string()
                } else {
                    held.join(" and ")
                },
                audio_encode_hint(path)
            ),
        ));
    };
    let track = format!("Ogg stream {}", stream.serial);
    if !stream.ended {
        return Err(Error::media(
            path,
            format!("truncated: {track} stops before its end-of-stream page"),
        ));
    }
    let head = &stream.packets[0];
    if head.len() < 19 {
        return Err(Error::media(
            path,
            format!("{track}: OpusHead of {} bytes", head.len()),
        ));
    }
    let channels = head[9];
    let packets = stream.packets.get(2..).unwrap_or(&[]).to_vec();
    let mut clip = opus_clip(path, track, channels, packets)?;
    clip.input_rate = u32::from_le_bytes(head[12..16].try_into().expect("4 bytes"));
    Ok(clip)
}

/// Checks Opus packets (sizes from their TOC bytes) and the channel count.
pub(crate) fn opus_clip(
    path: &Path,
    track: String,
    channels: u8,
    packets: Vec<Vec<u8>>,
) -> Result<AudioClip, Error> {
    let bad = |reason: String| Error::media(path, reason);
    if !(1..=2).contains(&channels) {
        return Err(bad(format!(
            "{track} is Opus with {channels} channels: the pack takes mono or stereo; {}",
            audio_encode_hint(path)
        )));
    }
    if packets.is_empty() {
        return Err(bad(format!("{track} holds no audio packets")));
    }
    let mut samples = None;
    for (i, p) in packets.iter().enumerate() {
        let n = opus::packet::get_nb_samples(p, 48_000)
            .map_err(|e| bad(format!("{track}: packet {i} is not an Opus packet ({e})")))?
            as u32;
        match samples {
            None => samples = Some(n),
            // The last packet may be shorter only in a stream that ends early; libopus pads it.
            Some(first) if first != n => {
                return Err(bad(format!(
                    "{track}: packet {i} lasts {} ms where the first lasts {} ms: passthrough needs one packet length throughout; {}",
                    n as f64 / 48.0,
                    first as f64 / 48.0,
                    audio_encode_hint(path)
                )))
            }
            Some(_) => {}
        }
    }
    let packet_samples = samples.expect("at least one packet");
    // The silence track beside the clip is encoded with the clip's packet
    // length (it replaces the voice packet for packet), so the length must be
    // one libopus encodes in one frame.
    if !crate::opus::FRAME_LENGTHS.contains(&(packet_samples as usize)) {
        return Err(bad(format!(
            "{track}: {} ms Opus packets; passthrough takes packets of 10, 20, 40 or 60 ms; {}",
            packet_samples as f64 / 48.0,
            audio_encode_hint(path)
        )));
    }
    Ok(AudioClip {
        path: path.to_path_buf(),
        track,
        channels,
        packets,
        packet_samples,
        input_rate: 0,
    })
}

/// Frame times from container timestamps: see the module's doc.
pub mod timing {
    use super::Rate;
    use crate::plan::VIDEO_CLOCK;

    /// Frame times on the 90 kHz clock.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Timed {
        /// Each frame's time from the first, strictly increasing.
        pub pts: Vec<u64>,
        /// Where the last frame ends.
        pub end: u64,
        /// The rate found.
        pub rate: Rate,
    }

    /// Rates tried for a constant grid besides whole numbers: the NTSC ones.
    const NTSC: [(u32, u32); 4] = [
        (24_000, 1001),
        (30_000, 1001),
        (48_000, 1001),
        (60_000, 1001),
    ];

    /// Times `timestamps` (container units of `unit.0 / unit.1` s each, in
    /// file order), given the length of a frame the container declares
    /// (`default_duration`, units), if any.
    pub fn time(
        timestamps: &[u64],
        unit: (u64, u64),
        default_duration: Option<f64>,
    ) -> Result<Timed, String> {
        let n = timestamps.len();
        let secs = |units: f64| units * unit.0 as f64 / unit.1 as f64;
        let t0 = timestamps[0];
        let rel: Vec<f64> = timestamps
            .iter()
            .map(|&t| secs(t as f64 - t0 as f64))
            .collect();
        if let Some(i) = (1..n).find(|&i| timestamps[i] < timestamps[i - 1]) {
            return Err(format!(
                "frame {i}'s timestamp goes back ({} after {})",
                timestamps[i],
                timestamps[i - 1]
            ));
        }
        // The typical frame interval: the container's, else the median gap.
        let mut gaps: Vec<f64> = rel.windows(2).map(|w| w[1] - w[0]).collect();
        gaps.sort_by(f64::total_cmp);
        let typical = default_duration
            .map(secs)
            .filter(|&d| d > 0.0)
            .or_else(|| gaps.get(gaps.len() / 2).copied().filter(|&g| g > 0.0))
            .unwrap_or(1.0 / 30.0);
        // Timestamps are exact to within one container unit (WebM: 1 ms).
        let tolerance = secs(1.0).max(1e-6) + 1e-9;
        let on_grid = |num: u32, den: u32| {
            let period = den as f64 / num as f64;
            rel.iter()
                .enumerate()
                .all(|(i, &t)| (t - i as f64 * period).abs() <= tolerance)
        };
        let estimate = 1.0 / typical;
        let whole = estimate.round().clamp(1.0, 240.0) as u32;
        let grid = std::iter::once((whole, 1))
            .chain(NTSC.iter().copied())
            .find(|&(num, den)| on_grid(num, den));
        if let Some((num, den)) = grid {
            let at = |i: u64| i * VIDEO_CLOCK as u64 * den as u64 / num as u64;
            return Ok(Timed {
                pts: (0..n as u64).map(at).collect(),
                end: at(n as u64),
                rate: Rate::Constant { num, den },
            });
        }
        // Variable rate: the frames' own times, each at least a tick after the last.
        let ticks = |s: f64| (s * VIDEO_CLOCK as f64).round() as u64;
        let mut pts: Vec<u64> = Vec::with_capacity(n);
        for &t in &rel {
            let at = ticks(t);
            pts.push(match pts.last() {
                Some(&prev) if at <= prev => prev + 1,
                _ => at,
            });
        }
        let end = pts[n - 1] + ticks(typical).max(1);
        let rate = Rate::Variable(n as f64 * VIDEO_CLOCK as f64 / end as f64);
        Ok(Timed { pts, end, rate })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn millisecond_timestamps_of_30_fps_snap_to_the_exact_grid() {
            // What ffmpeg's WebM muxer writes for 30 fps, from 7 ms on.
            let ts: Vec<u64> = (0..90u64).map(|i| 7 + (i * 1000 + 15) / 30).collect();
            let t = time(&ts, (1, 1000), None).unwrap();
            assert_eq!(t.rate, Rate::Constant { num: 30, den: 1 });
            assert_eq!(&t.pts[..4], &[0, 3000, 6000, 9000]);
            assert_eq!(t.end, 270_000);
            // 29.97 fps in milliseconds.
            let ts: Vec<u64> = (0..100u64).map(|i| i * 1001 * 1000 / 30_000).collect();
            let t = time(&ts, (1, 1000), Some(33.0)).unwrap();
            assert_eq!(
                t.rate,
                Rate::Constant {
                    num: 30_000,
                    den: 1001
                }
            );
            assert_eq!(t.pts[1], 3003);
            // IVF with a 1/30 time base: frame numbers.
            let ts: Vec<u64> = (0..10).collect();
            let t = time(&ts, (1, 30), None).unwrap();
            assert_eq!((t.rate.whole(), t.end), (Some(30), 30_000));
        }

        #[test]
        fn irregular_timestamps_keep_their_times() {
            // A camera's frames: 33, 34, 40, 27 ms apart, one frame dropped.
            let ts = [0u64, 33, 67, 107, 134, 200, 233];
            let t = time(&ts, (1, 1000), None).unwrap();
            assert!(matches!(t.rate, Rate::Variable(_)), "{:?}", t.rate);
            assert_eq!(t.pts, [0, 2970, 6030, 9630, 12_060, 18_000, 20_970]);
            // The last frame lasts the median gap (of 27, 33, 33, 34, 40, 66 ms: 34 ms).
            assert_eq!(t.end, 20_970 + 3060);
            // Equal timestamps still give increasing times.
            let t = time(&[0, 40, 40, 80], (1, 1000), None).unwrap();
            assert!(t.pts.windows(2).all(|w| w[1] > w[0]), "{:?}", t.pts);
            assert!(time(&[0, 40, 30], (1, 1000), None).is_err());
        }
    }
}
