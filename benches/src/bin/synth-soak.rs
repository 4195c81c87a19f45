//! `synth-soak`: the soak harness (see `synth_benches::soak`, BENCHMARKS.md
//! and RELIABILITY.md).
//!
//! ```text
//! cargo build --release --locked -p synth-replayer -p synth-encoder -p synth-benches
//! target/release/synth-encode build -o packs/default.pack
//! target/release/synth-soak --clients 300 --meeting-size 3 --minutes 5 --json target/soak/300.json
//! ```

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use synth_benches::{proc, scale, soak};

/// Runs N synthetic clients (meetings of M) for T minutes against the relay in
/// its own process, both on 127.0.0.1, and samples every interval the RSS, open
/// descriptors, threads and CPU of the replayer and the relay, plus the
/// interval's audio latency p50/p99 and send lateness p99 (from the replayer's
/// /metrics buckets). Prints a line per sample, then each process's RSS slope
/// in MB/min (least squares over the samples after all clients connected plus
/// the warm-up). Always stops by itself; Ctrl-C stops it early and kills both
/// children.
#[derive(Debug, Parser)]
#[command(name = "synth-soak")]
struct Args {
    /// Clients.
    #[arg(long, default_value_t = 300)]
    clients: usize,
    /// Participants per meeting (1: each client alone, against a drain-only relay).
    #[arg(long, default_value_t = 3)]
    meeting_size: usize,
    /// Length of the run in minutes, from the replayer's start (at most 1440).
    #[arg(long, default_value_t = 5.0)]
    minutes: f64,
    /// Time between samples.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Left out of the slopes after every client has connected.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Delay between client starts, ms.
    #[arg(long, default_value_t = 5)]
    ramp_ms: u64,
    #[command(flatten)]
    replay: scale::Replay,
    /// Write the samples and the slopes as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    anyhow::ensure!(a.clients > 0, "--clients must be at least 1");
    anyhow::ensure!(a.meeting_size > 0, "--meeting-size must be at least 1");
    anyhow::ensure!(
        a.minutes > 0.0 && a.minutes <= 1440.0,
        "--minutes must be more than 0 and at most 1440 (a day)"
    );
    anyhow::ensure!(
        a.interval >= Duration::from_secs(1),
        "--interval must be at least 1s"
    );
    let work = scale::work_dir("soak");
    std::fs::create_dir_all(&work)?;
    let setup = soak::Setup {
        pack: a.replay.check()?,
        replay_bin: a.replay.replay_bin,
        rendition: a.replay.rendition,
        clients: a.clients,
        meeting_size: a.meeting_size,
        duration: Duration::from_secs_f64(a.minutes * 60.0),
        interval: a.interval,
        warmup: a.warmup,
        ramp_ms: a.ramp_ms,
        work,
        extra_config: a.replay.config_line,
        wire: a.replay.wire,
    };
    soak::catch_signals();
    let machine = proc::machine();
    println!("machine: {machine}");
    println!(
        "{} clients in meetings of {} for {:.1} min, a sample every {:?}\n",
        a.clients, a.meeting_size, a.minutes, a.interval
    );
    println!("{}", soak::header());
    let result = soak::run(&setup)?;
    println!("\n{}", soak::summary(&result));
    if let Some(path) = &a.json {
        let v = serde_json::json!({ "machine": machine, "soak": result });
        std::fs::write(path, serde_json::to_vec_pretty(&v)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if result.stopped_by != "time" {
        std::process::exit(130);
    }
    Ok(())
}
