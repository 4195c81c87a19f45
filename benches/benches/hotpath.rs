//! The replayer's per-packet hot paths, one at a time.
//!
//! - `packet_build/{audio,video}`: one packet of a client's lane (prefix into
//!   the reused buffer, the frame as a slice of the pack's buffer), plus the allocations
//!   it makes, printed once (a counting global allocator).
//! - `pacer_tick/1000_clients`: one tick in which 1000 clients each have an
//!   audio and a video frame due: build, lateness histogram, counters.
//! - `pack/{open,frame_lookup}`: mapping and validating the default-size pack;
//!   getting one frame as `&[u8]` and as a shared `Bytes`.
//! - `receive/parse`: parsing a relayed video packet and tracking its sequence;
//!   `receive/handle`: the client's whole receive accounting of one packet
//!   (parse, per-sender tracker, counters, latency).
//! - `metrics/{per_packet,render_1000_clients}`: what metrics cost per packet
//!   sent, and one `/metrics` scrape of 1000 clients.
//! - `timeline/tick_1000_clients`: what the run does every `timeline_interval`
//!   (1 s by default) at 1000 clients whose histograms hold a run's values:
//!   a snapshot of every counter and histogram, the interval's window as a
//!   sample, and the window since the start for the live thresholds.
//! - `digest/new`: hashing every frame of the default pack at load;
//!   `digest/contains/{video,audio}`: checking one received payload against
//!   the pack's frames (the 640x360 frame nearest 2 KB, the audio frame
//!   nearest 100 bytes).
//!
//! Run: `cargo bench -p synth-benches --bench hotpath` (results in BENCHMARKS.md).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use synth_common::pack::{FrameDigests, Reader, TrackKind};
use synth_common::seq::Tracker;
use synth_common::wire::{self, MediaPrefix};
use synth_replayer::metrics::{Media, Metrics};
use synth_replayer::pacer::{Heads, Lane};
use synth_replayer::receive::{Accounting, Context};

struct Counting;
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The default pack's layout (speech + 640x360@500 + 320x180@150, 10 s), built once.
fn pack_path() -> PathBuf {
    let path = std::env::temp_dir().join("synth-bench-default.pack");
    if Reader::open(&path).is_err() {
        let opts = synth_encoder::build::BuildOptions {
            output: path.clone(),
            ..Default::default()
        };
        synth_encoder::build::build(&opts, &mut |_| {}).expect("building the bench pack");
    }
    path
}

fn allocations_per_call(n: u64, mut f: impl FnMut()) -> f64 {
    let before = ALLOCATIONS.load(Relaxed);
    for _ in 0..n {
        f();
    }
    (ALLOCATIONS.load(Relaxed) - before) as f64 / n as f64
}

fn packet_build(c: &mut Criterion) {
    let pack = Reader::open(pack_path()).unwrap();
    let audio = pack.first_track(TrackKind::Audio).unwrap();
    let video = pack.track_by_name("video-640x360").unwrap();
    let mut g = c.benchmark_group("packet_build");
    g.throughput(Throughput::Elements(1));
    for (name, track, media) in [
        ("audio", audio, Media::Audio),
        ("video", video, Media::Video),
    ] {
        let mut lane = Lane::new(&pack, track, media, Instant::now());
        let mut prefix = MediaPrefix::new("bot-0001");
        let mut heads = Heads::default();
        let allocs = allocations_per_call(10_000, || {
            let now = lane.due();
            black_box(lane.next_packet(&pack, &mut prefix, &mut heads, now, 1.7e12));
        });
        eprintln!("packet_build/{name}: {allocs:.2} allocations per packet");
        g.bench_function(name, |b| {
            b.iter(|| {
                let now = lane.due();
                black_box(lane.next_packet(&pack, &mut prefix, &mut heads, now, 1.7e12))
            })
        });
    }
    g.finish();
}

fn pacer_tick(c: &mut Criterion) {
    let pack = Reader::open(pack_path()).unwrap();
    let audio = pack.first_track(TrackKind::Audio).unwrap();
    let video = pack.track_by_name("video-640x360").unwrap();
    let metrics = Metrics::new(1000);
    let t0 = Instant::now();
    let mut clients: Vec<(Lane, Lane, MediaPrefix, Heads)> = (0..1000)
        .map(|i| {
            (
                Lane::new(&pack, audio, Media::Audio, t0),
                Lane::new(&pack, video, Media::Video, t0),
                MediaPrefix::new(&format!("bot-{i:04}")),
                Heads::default(),
            )
        })
        .collect();
    let mut g = c.benchmark_group("pacer_tick");
    g.throughput(Throughput::Elements(2000));
    g.bench_function("1000_clients", |b| {
        b.iter(|| {
            let now = Instant::now();
            for (i, (a, v, prefix, heads)) in clients.iter_mut().enumerate() {
                for lane in [&mut *a, &mut *v] {
                    if let Some(p) = lane.next_packet(&pack, prefix, heads, now, 1.7e12) {
                        metrics.lateness.record(p.lateness.as_micros() as u64, i);
                        let s = &metrics.clients[i];
                        s.sent(p.media, p.len());
                        s.sent_payload[p.media as usize].fetch_add(p.data.len() as u64, Relaxed);
                        s.mark_media_sent(metrics.started);
                        black_box(p);
                    }
                }
            }
        })
    });
    g.finish();
}

fn pack_access(c: &mut Criterion) {
    let path = pack_path();
    let mut g = c.benchmark_group("pack");
    g.throughput(Throughput::Bytes(std::fs::metadata(&path).unwrap().len()));
    g.bench_function("open", |b| {
        b.iter(|| black_box(Reader::open(&path).unwrap()))
    });
    let pack = Reader::open(&path).unwrap();
    let video = pack.track_by_name("video-640x360").unwrap();
    let n = pack.frame_count(video);
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("frame_lookup", |b| {
        b.iter(|| {
            i = (i + 7) % n;
            black_box(pack.frame(video, i))
        })
    });
    g.bench_function("frame_bytes", |b| {
        b.iter(|| {
            i = (i + 7) % n;
            black_box(pack.frame_bytes(video, i))
        })
    });
    g.finish();
}

fn receive(c: &mut Criterion) {
    let pack = Reader::open(pack_path()).unwrap();
    let video = pack.track_by_name("video-640x360").unwrap();
    let mut lane = Lane::new(&pack, video, Media::Video, Instant::now());
    let mut prefix = MediaPrefix::new("bot-0001");
    let mut heads = Heads::default();
    let p = lane
        .next_packet(&pack, &mut prefix, &mut heads, Instant::now(), 1.7e12)
        .unwrap();
    let mut bytes = p.head.to_vec();
    bytes.extend_from_slice(&p.data);
    let mut g = c.benchmark_group("receive");
    g.throughput(Throughput::Elements(1));
    let mut tracker = Tracker::default();
    let mut seq = 0;
    g.bench_function("parse", |b| {
        b.iter(|| {
            let w = wire::parse(black_box(&bytes)).unwrap();
            let m = wire::parse_media(w.data).unwrap();
            seq += 1;
            black_box(tracker.see(m.sequence.unwrap_or(0) + seq));
        })
    });
    // Packets of four senders in turn, with rising sequence numbers.
    let senders: Vec<Vec<Vec<u8>>> = (0..4)
        .map(|k| {
            let mut prefix = MediaPrefix::new(&format!("bot-{k:04}"));
            let mut lane = Lane::new(&pack, video, Media::Video, Instant::now());
            (0..256)
                .map(|_| {
                    let p = lane
                        .next_packet(&pack, &mut prefix, &mut heads, Instant::now(), 1.7e12)
                        .unwrap();
                    let mut v = p.head.to_vec();
                    v.extend_from_slice(&p.data);
                    v
                })
                .collect()
        })
        .collect();
    // The four senders are of this process (latency, lateness and the
    // integrity check all run), client 4 is the receiver.
    let ours: std::collections::HashMap<Box<[u8]>, usize> = (0..4)
        .map(|k| (format!("bot-{k:04}").into_bytes().into_boxed_slice(), k))
        .collect();
    let metrics = Metrics::new(5);
    let digests = FrameDigests::new(&pack);
    let cx = Context {
        ours: &ours,
        clients: &metrics.clients,
        digests: &digests,
        late_after_ms: [200.0, 500.0],
    };
    let mut acc = Accounting::new("me");
    acc.join(
        1,
        (0..4).map(|k| {
            (
                format!("bot-{k:04}").into_bytes().into_boxed_slice(),
                k,
                [0, 0],
            )
        }),
    );
    let mut n = 0usize;
    g.bench_function("handle", |b| {
        b.iter(|| {
            n += 1;
            let pkt = &senders[n % 4][(n / 4) % 256];
            black_box(acc.handle(black_box(pkt), 1.7e12 + 5.0, &cx, &metrics.clients[4]));
        })
    });
    g.finish();
}

fn metrics_cost(c: &mut Criterion) {
    let metrics = Metrics::new(1000);
    let mut g = c.benchmark_group("metrics");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("per_packet", |b| {
        b.iter(|| {
            i = (i + 1) % 1000;
            metrics.lateness.record(black_box(700), i);
            let s = &metrics.clients[i];
            s.sent(Media::Video, 2100);
            s.sent_payload[1].fetch_add(2000, Relaxed);
            s.mark_media_sent(metrics.started);
        })
    });
    g.bench_function("render_1000_clients", |b| {
        b.iter_batched(
            || (),
            |_| black_box(metrics.render()),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn timeline_tick(c: &mut Criterion) {
    use synth_replayer::timeline::{take, zero, Window};
    let m = Metrics::new(1000);
    // A minute of 1000 clients in meetings of 5: each shard holds many values.
    for i in 0..200_000u64 {
        let shard = (i % 1000) as usize;
        m.latency[(i % 2) as usize].record(1_000 + i % 50_000, shard);
        m.jitter[(i % 2) as usize].record(100 + i % 5_000, shard);
        m.lateness.record(200 + i % 20_000, shard);
    }
    let zero = zero(&m);
    let prev = take(&m);
    let mut g = c.benchmark_group("timeline");
    g.throughput(Throughput::Elements(1));
    g.bench_function("tick_1000_clients", |b| {
        b.iter(|| {
            let now = take(&m);
            let sample = Window::new(&prev, &now, 2.0).sample(None, Vec::new());
            let so_far = Window::new(&zero, &now, 2.0).figure("audio_latency_p99_ms");
            black_box((sample, so_far))
        })
    });
    g.finish();
}

fn digest(c: &mut Criterion) {
    let pack = Reader::open(pack_path()).unwrap();
    let mut g = c.benchmark_group("digest");
    let all: u64 = (0..pack.tracks().len())
        .map(|t| pack.payload_bytes(t))
        .sum();
    g.throughput(Throughput::Bytes(all));
    g.bench_function("new", |b| b.iter(|| black_box(FrameDigests::new(&pack))));
    let digests = FrameDigests::new(&pack);
    let nearest = |track: usize, len: usize| {
        pack.frames(track)
            .min_by_key(|f| f.data.len().abs_diff(len))
            .unwrap()
            .data
    };
    let audio = pack.first_track(TrackKind::Audio).unwrap();
    let video = pack.track_by_name("video-640x360").unwrap();
    for (name, kind, frame) in [
        ("contains/video", TrackKind::Video, nearest(video, 2000)),
        ("contains/audio", TrackKind::Audio, nearest(audio, 100)),
    ] {
        eprintln!("digest/{name}: a frame of {} bytes", frame.len());
        g.throughput(Throughput::Bytes(frame.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| black_box(digests.contains(kind, black_box(frame))))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = packet_build, pacer_tick, pack_access, receive, metrics_cost, timeline_tick, digest
}
criterion_main!(benches);
