//! The loop plan: how long the pack loops, and how many audio and video frames fill it.
//!
//! Audio frames last 20 ms and video frames `1/fps` s, and both tracks must loop
//! after exactly the same time, so the loop length is a multiple of the least
//! common multiple of the two frame periods: `1/gcd(50, fps)` s (100 ms at 30
//! fps, 40 ms at 25 fps, 500 ms at 24 fps). A requested duration that is not a
//! multiple is rounded up, and [`Plan::rounded`] says so.
//!
//! A screen track at its own frame rate ([`Plan::with_screen`]) loops with the
//! others, so the loop is then a multiple of its frame period too (the LCM of
//! both units: 200 ms at 30 fps with a 5 fps screen).
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
    /// The screen track's frames per second, if the pack has one.
    pub screen_fps: Option<u32>,
    /// Screen frames in one loop (0 without a screen track).
    pub screen_frames: u32,
    /// At most this many screen frames between key frames.
    pub screen_keyframe_interval: u32,
}

impl Plan {
    /// Plans a loop of at least `duration` at `fps`, with a key frame every `keyframe_interval`.
    pub fn new(fps: u32, duration: Duration, keyframe_interval: Duration) -> Result<Plan, Error> {
        Plan::with_screen(fps, None, duration, keyframe_interval)
    }

    /// [`Plan::new`] with a screen track at `screen_fps` frames a second, if
    /// any: the loop also holds whole screen frames.
    pub fn with_screen(
        fps: u32,
        screen_fps: Option<u32>,
        duration: Duration,
        keyframe_interval: Duration,
    ) -> Result<Plan, Error> {
        for (what, rate) in [("frame rate", Some(fps)), ("screen frame rate", screen_fps)] {
            match rate {
                Some(r) if r == 0 || r > MAX_FPS => {
                    return Err(Error::invalid(
                        what,
                        format!("{r} fps (must be 1..={MAX_FPS})"),
                    ))
                }
                _ => {}
            }
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
        let unit = screen_fps.map_or(Self::unit_ms(fps), |s| {
            lcm(Self::unit_ms(fps), Self::unit_ms(s))
        });
        // Round up to whole milliseconds first, then to whole units.
        let requested_ms = duration.as_nanos().div_ceil(1_000_000) as u64;
        let loop_ms = requested_ms.div_ceil(unit) * unit;
        Ok(Plan::of_loop(
            fps,
            screen_fps,
            duration,
            loop_ms,
            keyframe_interval,
        ))
    }

    /// A plan whose loop is exactly `loop_ms` long, for a pack that copies
    /// clips: the loop was fitted to them ([`loop_unit_ms`]), so it is not
    /// rounded again. `loop_ms` must hold whole 20 ms audio frames and whole
    /// screen frames; with copied video, [`Plan::video_frames`] is unused.
    /// The arguments are checked as [`Plan::with_screen`] checks them.
    pub fn fitted(
        fps: u32,
        screen_fps: Option<u32>,
        requested: Duration,
        loop_ms: u64,
        keyframe_interval: Duration,
    ) -> Result<Plan, Error> {
        Plan::with_screen(fps, screen_fps, requested, keyframe_interval)?;
        Ok(Plan::of_loop(
            fps,
            screen_fps,
            requested,
            loop_ms,
            keyframe_interval,
        ))
    }

    fn of_loop(
        fps: u32,
        screen_fps: Option<u32>,
        duration: Duration,
        loop_ms: u64,
        keyframe_interval: Duration,
    ) -> Plan {
        let video_frames = (loop_ms * fps as u64 / 1000) as u32;
        let audio_frames = (loop_ms / 20) as u32;
        let frames_in = |secs: f64, fps: u32| {
            ((secs * fps as f64).round() as u64).clamp(1, u32::MAX as u64) as u32
        };
        Plan {
            fps,
            requested: duration,
            loop_ms,
            video_frames,
            audio_frames,
            keyframe_interval: frames_in(keyframe_interval.as_secs_f64(), fps),
            screen_fps,
            screen_frames: screen_fps.map_or(0, |s| (loop_ms * s as u64 / 1000) as u32),
            screen_keyframe_interval: screen_fps
                .map_or(1, |s| frames_in(keyframe_interval.as_secs_f64(), s)),
        }
    }

    /// The loop-length granularity of this plan, ms (see [`Plan::unit_ms`];
    /// with a screen track, the LCM of both frame rates' units).
    pub fn loop_unit_ms(&self) -> u64 {
        self.screen_fps.map_or(Self::unit_ms(self.fps), |s| {
            lcm(Self::unit_ms(self.fps), Self::unit_ms(s))
        })
    }

    /// The loop-length granularity in ms at `fps`: the LCM of 20 ms and one video frame.
    pub fn unit_ms(fps: u32) -> u64 {
        1000 / gcd(AUDIO_FPS as u64, fps as u64)
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
        pts_at(self.fps, i)
    }

    /// Duration of video frame `i`, in 90 kHz ticks.
    pub fn video_duration(&self, i: u32) -> u32 {
        duration_at(self.fps, i)
    }

    /// Pts of screen frame `i`, in 90 kHz ticks (0 without a screen track).
    pub fn screen_pts(&self, i: u32) -> u64 {
        self.screen_fps.map_or(0, |s| pts_at(s, i))
    }

    /// Duration of screen frame `i`, in 90 kHz ticks (0 without a screen track).
    pub fn screen_duration(&self, i: u32) -> u32 {
        self.screen_fps.map_or(0, |s| duration_at(s, i))
    }

    /// Whether video frame `i` is forced to be a key frame.
    pub fn is_keyframe(&self, i: u32) -> bool {
        i % self.keyframe_interval == 0
    }
}

/// The shortest loop, in ms, that holds whole audio packets of `audio_ms`
/// and whole frames at each of `rates` frames a second: the LCM of their
/// periods (`1000/f` ms need not be whole, the LCM is: 100 ms for 20 ms and
/// 30 fps, 300 ms for 60 ms packets and 30 fps).
pub fn loop_unit_ms(audio_ms: u64, rates: &[u32]) -> u64 {
    rates
        .iter()
        .filter(|&&f| f > 0)
        .fold(audio_ms.max(1), |unit, &f| {
            // lcm(unit, 1000/f) = lcm(unit·f, 1000) / f.
            lcm(unit * f as u64, 1000) / f as u64
        })
}

/// Pts of frame `i` at `fps`, in 90 kHz ticks (floored).
fn pts_at(fps: u32, i: u32) -> u64 {
    i as u64 * VIDEO_CLOCK as u64 / fps as u64
}

/// Duration of frame `i` at `fps`, in 90 kHz ticks.
fn duration_at(fps: u32, i: u32) -> u32 {
    (pts_at(fps, i + 1) - pts_at(fps, i)) as u32
}

/// The least common multiple of `a` and `b`.
pub fn lcm(a: u64, b: u64) -> u64 {
    a / gcd(a, b) * b
}

/// The greatest common divisor of `a` and `b`.
pub fn gcd(mut a: u64, mut b: u64) -> u64 {
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
    fn a_screen_track_loops_with_the_others() {
        let p = Plan::with_screen(30, Some(5), secs(10.0), secs(2.0)).unwrap();
        assert_eq!(
            (p.loop_ms, p.screen_frames, p.screen_keyframe_interval),
            (10_000, 50, 10)
        );
        assert_eq!(
            p.screen_pts(49) + p.screen_duration(49) as u64,
            p.video_loop_ticks()
        );
        // 2.1 s holds whole 30 fps frames but not whole 5 fps ones: 2.2 s.
        let p = Plan::with_screen(30, Some(5), secs(2.1), secs(2.0)).unwrap();
        assert_eq!(
            (p.loop_ms, p.loop_unit_ms(), p.screen_frames),
            (2_200, 200, 11)
        );
        assert!(Plan::with_screen(30, Some(0), secs(1.0), secs(1.0)).is_err());
        assert_eq!(
            Plan::new(30, secs(1.0), secs(1.0)).unwrap().screen_frames,
            0
        );
    }

    #[test]
    fn loop_units_hold_whole_packets_and_frames() {
        assert_eq!(loop_unit_ms(20, &[30]), 100);
        assert_eq!(loop_unit_ms(20, &[30, 5]), 200);
        assert_eq!(loop_unit_ms(20, &[24]), 500);
        assert_eq!(loop_unit_ms(60, &[30]), 300);
        assert_eq!(loop_unit_ms(20, &[]), 20);
        for (audio, fps) in [(20, 30), (20, 25), (20, 7), (40, 24)] {
            assert_eq!(loop_unit_ms(audio, &[fps]), lcm(audio, Plan::unit_ms(fps)));
        }
        let p = Plan::fitted(30, Some(5), secs(10.0), 3_600, secs(2.0)).unwrap();
        assert_eq!(
            (p.loop_ms, p.audio_frames, p.screen_frames),
            (3_600, 180, 18)
        );
        assert!(Plan::fitted(0, None, secs(1.0), 1000, secs(1.0)).is_err());
    }

    #[test]
    fn keyframes_fall_on_the_interval() {
        let p = Plan::new(30, secs(4.0), secs(1.0)).unwrap();
        let keys: Vec<u32> = (0..p.video_frames).filter(|&i| p.is_keyframe(i)).collect();
        assert_eq!(keys, vec![0, 30, 60, 90]);
    }
}
