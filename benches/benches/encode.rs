//! What live encoding costs, per frame: the work a pack saves every client.
//!
//! - `vp9_encode/1280x720@1200`, `vp9_encode/640x360@500`: one VP9 frame with
//!   the pack's encoder settings (libvpx real time, CBR, speed 7, one thread,
//!   a key frame every 2 s), frames/s as `Throughput::Elements`. The input
//!   cycles through 60 pre-rendered frames of the `bars` pattern (motion,
//!   counter, grain), so drawing and colour conversion are not measured.
//! - `opus_encode/20ms`: one 20 ms mono frame of the built-in speech at
//!   32 kb/s CBR (VOIP), frames/s likewise; the input cycles through 2 s of speech.
//!
//! The encoders keep state between iterations (rate control, references), as
//! a live client's do, so each iteration encodes the next frame of the cycle.
//!
//! Run: `cargo bench -p synth-benches --bench encode`
//! (`-- vp9_encode` or `-- opus_encode` for one group).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use synth_encoder::audio::speech;
use synth_encoder::opus::{OpusFrameEncoder, FRAME_SAMPLES};
use synth_encoder::video::{Footage, Pattern, VideoSource};
use synth_encoder::vp9::{Encoder, EncoderConfig};
use synth_encoder::yuv::I420;

const FPS: u32 = 30;
/// Distinct input frames cycled through (2 s).
const CYCLE: u32 = 60;

fn vp9_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("vp9_encode");
    group.throughput(Throughput::Elements(1));
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(8));
    for (width, height, kbps) in [(1280, 720, 1200), (640, 360, 500)] {
        let footage = Footage::load(&VideoSource::Pattern(Pattern::Bars), 1, &[])
            .expect("patterns need no files");
        let mut frames = footage
            .frames(width, height, FPS)
            .expect("a pattern renders any size");
        let inputs: Vec<I420> = (0..CYCLE).map(|i| frames.render(i).clone()).collect();
        let mut encoder =
            Encoder::new(EncoderConfig::new(width, height, FPS, kbps)).expect("libvpx VP9 encoder");
        let mut i = 0u32;
        group.bench_function(format!("{width}x{height}@{kbps}"), |b| {
            b.iter(|| {
                let key = i % (2 * FPS) == 0;
                let bytes: usize = encoder
                    .encode(&inputs[(i % CYCLE) as usize], key)
                    .expect("encoding")
                    .map(|p| p.data.len())
                    .sum();
                i += 1;
                black_box(bytes)
            })
        });
    }
    group.finish();
}

fn opus_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("opus_encode");
    group.throughput(Throughput::Elements(1));
    let pcm = speech::synthesize(2 * 48_000, 48_000, speech::DEFAULT_SEED);
    let frames: Vec<&[f32]> = pcm.chunks_exact(FRAME_SAMPLES).collect();
    let mut encoder = OpusFrameEncoder::new(32_000).expect("libopus encoder");
    let mut i = 0usize;
    group.bench_function("20ms", |b| {
        b.iter(|| {
            let len = encoder
                .encode(frames[i % frames.len()])
                .expect("encoding")
                .len();
            i += 1;
            black_box(len)
        })
    });
    group.finish();
}

criterion_group!(benches, vp9_encode, opus_encode);
criterion_main!(benches);
