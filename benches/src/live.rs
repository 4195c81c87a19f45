//! The cost of one client that encodes live, in real time, with the project's
//! own encoders: what upstream's bot and CLI do instead of replaying a pack.
//!
//! Each video frame is drawn (a moving pattern, as upstream's test pattern),
//! converted to I420 and VP9-encoded; each 20 ms of audio is synthesized and
//! Opus-encoded. The loop is paced in real time so the encoders see the same
//! frame rate as a live client, and the thread's CPU time is measured.

use std::time::{Duration, Instant};

use synth_encoder::opus::OpusFrameEncoder;
use synth_encoder::video::Pattern;
use synth_encoder::vp9::{Encoder, EncoderConfig};
use synth_encoder::yuv::I420;

/// What a live client cost.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct LiveCost {
    /// Wall time measured.
    pub seconds: f64,
    /// Thread CPU per wall second, in thousandths of a core (mCPU), all of it.
    pub mcpu: f64,
    /// Of which VP9 encoding.
    pub vp9_mcpu: f64,
    /// Of which Opus encoding.
    pub opus_mcpu: f64,
    /// Video frames encoded.
    pub frames: u64,
    /// Measured video bitrate, kbps.
    pub video_kbps: f64,
}

/// Encodes live for `seconds` at `width`x`height`@`kbps`, 30 fps, plus Opus at 32 kbps.
pub fn measure(width: u32, height: u32, kbps: u32, seconds: f64) -> anyhow::Result<LiveCost> {
    let fps = 30u32;
    let mut vp9 = Encoder::new(EncoderConfig::new(width, height, fps, kbps))?;
    let mut opus = OpusFrameEncoder::new(32_000)?;
    let mut rgb = image::RgbImage::new(width, height);
    let mut yuv = I420::new(width, height);
    let pcm: Vec<f32> = (0..960)
        .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / 48_000.0).sin() * 0.3)
        .collect();
    let start = Instant::now();
    let cpu0 = crate::proc::thread_cpu();
    let (mut vp9_cpu, mut opus_cpu) = (Duration::ZERO, Duration::ZERO);
    let (mut frames, mut audio, mut bytes) = (0u64, 0u64, 0u64);
    let end = Duration::from_secs_f64(seconds);
    loop {
        let now = start.elapsed();
        if now >= end {
            break;
        }
        if Duration::from_secs_f64(frames as f64 / fps as f64) <= now {
            Pattern::Bars.draw(&mut rgb, frames as u32, fps);
            yuv.fill_from_rgb(&rgb);
            let c = crate::proc::thread_cpu();
            let key = frames % (2 * fps as u64) == 0;
            for p in vp9.encode(&yuv, key)? {
                bytes += p.data.len() as u64;
            }
            vp9_cpu += crate::proc::thread_cpu() - c;
            frames += 1;
        }
        if Duration::from_millis(20 * audio) <= now {
            let c = crate::proc::thread_cpu();
            std::hint::black_box(opus.encode(&pcm)?);
            opus_cpu += crate::proc::thread_cpu() - c;
            audio += 1;
        }
        let next = Duration::from_secs_f64(frames as f64 / fps as f64)
            .min(Duration::from_millis(20 * audio));
        if let Some(wait) = next.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = (crate::proc::thread_cpu() - cpu0).as_secs_f64();
    Ok(LiveCost {
        seconds: wall,
        mcpu: cpu / wall * 1000.0,
        vp9_mcpu: vp9_cpu.as_secs_f64() / wall * 1000.0,
        opus_mcpu: opus_cpu.as_secs_f64() / wall * 1000.0,
        frames,
        video_kbps: bytes as f64 * 8.0 / wall / 1000.0,
    })
}
