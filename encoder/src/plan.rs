//! The loop plan: how long the pack loops, and how many audio and video frames fill it.
//!
//! Audio frames last 20 ms and video frames `1/fps` s, and both tracks must loop
//! after exactly the same time, so the loop length is a multiple of the least
//! common multiple of the two frame periods: `1/gcd(50, fps)` s (100 ms at 30
//! fps, 40 ms at 25 fps, 500 ms at 24 fps). A requested duration that is not a
//! multiple is rounded up, and [`Plan::rounded`] says so.
//!
//! Video pts are `i * 90000 / fps` ticks, floored, so an fps that does not
//! divide 90000 still gets integer ticks; durations are the pts differences, and
//! the last frame ends exactly at the loop length.

use std::time::Duration;

use crate::Error;

/// Audio clock: Opus always runs at 48 kHz.
pub const AUDIO_CLOCK: u32 = 48_000;
/// Video clock: the RTP/MPEG 90 kHz clock.
pub const VIDEO_CLOCK: u32 = 90_000;
/// Samples (= ticks) in one 20 ms audio frame.
pub const AUDIO_FRAME_TICKS: u32 = 960;
/// Audio frames per second.
pub const AUDIO_FPS: u32 = AUDIO_CLOCK / AUDIO_FRAME_TICKS;

/// Highest frame rate accepted.
pub const MAX_FPS: u32 = 120;
/// Longest loop accepted (one hour): enough for any soak test, and frame counts stay small.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);

/// Frame counts and timing for one pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Video frames per second.
    pub fps: u32,
    /// The duration the user asked for.
    pub requested: Duration,
    /// Loop length in milliseconds (`requested` rounded up to a multiple of [`Plan::unit_ms`]).
    pub loop_ms: u64,
    /// Video frames in one loop (per rendition).
    pub video_frames: u32,
    /// 20 ms audio frames in one loop.
    pub audio_frames: u32,
    /// A key frame is forced every this many video frames (frame 0 always).
    pub keyframe_interval: u32,
}

impl Plan {
    /// Plans a loop of at least `duration` at `fps`, with a key frame every `keyframe_interval`.
    pub fn new(fps: u32, duration: Duration, keyframe_interval: Duration) -> Result<Plan, Error> {
        if fps == 0 || fps > MAX_FPS {
            return Err(Error::invalid(
                "frame rate",
                format!("{fps} fps (must be 1..={MAX_FPS})"),
            ));
        }
        if duration.is_zero() || duration > MAX_DURATION {
            return Err(Error::invalid(
                "duration",
                format!(
                    "{} (must be more than 0 and at most {})",
                    humantime::format_duration(duration),
                    humantime::format_duration(MAX_DURATION)
                ),
            ));
        }
        if keyframe_interval.is_zero() {
            return Err(Error::invalid("key-frame interval", "must be more than 0"));
        }
        let unit = Self::unit_ms(fps);
        // Round up to whole milliseconds first, then to whole units.
        let requested_ms = duration.as_nanos().div_ceil(1_000_000) as u64;
        let loop_ms = requested_ms.div_ceil(unit) * unit;
        let video_frames = (loop_ms * fps as u64 / 1000) as u32;
        let audio_frames = (loop_ms / 20) as u32;
        let keyframe_interval = ((keyframe_interval.as_secs_f64() * fps as f64).round() as u64)
            .clamp(1, u32::MAX as u64) as u32;
        Ok(Plan {
            fps,
            requested: duration,
            loop_ms,
            video_frames,
            audio_frames,
            keyframe_interval,
        })
    }

    /// The loop-length granularity in ms at `fps`: the LCM of 20 ms and one video frame.
    pub fn unit_ms(fps: u32) -> u64 {
        1000 / gcd(AUDIO_FPS, fps) as u64
    }

    /// True when the requested duration was rounded up to fit whole frames of both tracks.
    pub fn rounded(&self) -> bool {
        Duration::from_millis(self.loop_ms) != self.requested
    }

    /// The loop length.
    pub fn loop_duration(&self) -> Duration {
        Duration::from_millis(self.loop_ms)
    }

    /// Loop length in audio ticks (48 kHz).
    pub fn audio_loop_ticks(&self) -> u64 {
        self.audio_frames as u64 * AUDIO_FRAME_TICKS as u64
    }

    /// Loop length in audio samples at 48 kHz (the same as ticks).
    pub fn audio_samples(&self) -> usize {
        self.audio_loop_ticks() as usize
    }

    /// Loop length in video ticks (90 kHz).
    pub fn video_loop_ticks(&self) -> u64 {
        self.loop_ms * (VIDEO_CLOCK as u64 / 1000)
    }

    /// Pts of video frame `i`, in 90 kHz ticks.
    pub fn video_pts(&self, i: u32) -> u64 {
        i as u64 * VIDEO_CLOCK as u64 / self.fps as u64
    }

    /// Duration of video frame `i`, in 90 kHz ticks.
    pub fn video_duration(&self, i: u32) -> u32 {
        (self.video_pts(i + 1) - self.video_pts(i)) as u32
    }

    /// Whether video frame `i` is forced to be a key frame.
    pub fn is_keyframe(&self, i: u32) -> bool {
        i % self.keyframe_interval == 0
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn units_are_the_lcm_of_both_frame_periods() {
        assert_eq!(Plan::unit_ms(30), 100);
        assert_eq!(Plan::unit_ms(25), 40);
        assert_eq!(Plan::unit_ms(24), 500);
        assert_eq!(Plan::unit_ms(50), 20);
        assert_eq!(Plan::unit_ms(7), 1000);
    }

    #[test]
    fn ten_seconds_at_30_fps_is_exact() {
        let p = Plan::new(30, secs(10.0), secs(2.0)).unwrap();
        assert!(!p.rounded());
        assert_eq!(p.loop_ms, 10_000);
        assert_eq!(p.video_frames, 300);
        assert_eq!(p.audio_frames, 500);
        assert_eq!(p.keyframe_interval, 60);
        assert_eq!(p.video_loop_ticks(), 900_000);
        assert_eq!(p.audio_loop_ticks(), 480_000);
        assert_eq!(p.video_pts(299) + p.video_duration(299) as u64, 900_000);
    }

    #[test]
    fn odd_durations_round_up_to_whole_units() {
        let p = Plan::new(30, Duration::from_millis(2_050), secs(2.0)).unwrap();
        assert!(p.rounded());
        assert_eq!(p.loop_ms, 2_100);
        assert_eq!(p.video_frames, 63);
        assert_eq!(p.audio_frames, 105);
        let p = Plan::new(24, secs(1.2), secs(1.0)).unwrap();
        assert_eq!(p.loop_ms, 1_500);
        assert_eq!(p.video_frames, 36);
    }

    #[test]
    fn fps_that_does_not_divide_90000_still_ends_on_the_loop() {
        let p = Plan::new(7, secs(3.0), secs(1.0)).unwrap();
        assert_eq!(p.video_frames, 21);
        let sum: u64 = (0..p.video_frames)
            .map(|i| p.video_duration(i) as u64)
            .sum();
        assert_eq!(sum, p.video_loop_ticks());
        assert!((0..21).all(|i| p.video_duration(i) >= 12_857));
    }

    #[test]
    fn rejects_out_of_range_arguments() {
        assert!(Plan::new(0, secs(1.0), secs(1.0)).is_err());
        assert!(Plan::new(121, secs(1.0), secs(1.0)).is_err());
        assert!(Plan::new(30, Duration::ZERO, secs(1.0)).is_err());
        assert!(Plan::new(30, secs(3601.0), secs(1.0)).is_err());
        assert!(Plan::new(30, secs(1.0), Duration::ZERO).is_err());
    }

    #[test]
    fn keyframes_fall_on_the_interval() {
        let p = Plan::new(30, secs(4.0), secs(1.0)).unwrap();
        let keys: Vec<u32> = (0..p.video_frames).filter(|&i| p.is_keyframe(i)).collect();
        assert_eq!(keys, vec![0, 30, 60, 90]);
    }
}
