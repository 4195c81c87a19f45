//! `synth-scale`: the scale harness (see `synth_benches::scale` and BENCHMARKS.md).
//!
//! ```text
//! cargo build --release --locked -p synth-replayer -p synth-encoder -p synth-benches
//! target/release/synth-encode build -o packs/default.pack
//! target/release/synth-scale --json target/scale/results.json
//! ```

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use synth_benches::{live, proc, scale};

/// Measures what a synthetic client costs: send path at several N, receive
/// path in meetings of M, receive-only viewers (with `--viewers`), and one
/// live-encoding client side by side.
#[derive(Debug, Parser)]
#[command(name = "synth-scale")]
struct Args {
    #[command(flatten)]
    replay: scale::Replay,
    /// Client counts of the send path (each client alone in its meeting, drain-only relay;
    /// `--send` alone: none).
    #[arg(long, value_delimiter = ',', num_args = 0.., default_value = "10,100,300,500,1000")]
    send: Vec<usize>,
    /// Meeting sizes of the receive path (`--receive` alone: none).
    #[arg(long, value_delimiter = ',', num_args = 0.., default_value = "2,5,10")]
    receive: Vec<usize>,
    /// Clients in each receive-path run.
    #[arg(long, default_value_t = 100)]
    receive_clients: usize,
    /// Viewer counts of the viewers shape (none by default): meetings of
    /// `--senders-per-meeting` senders and `--viewers-per-meeting` receive-only viewers
    /// (`role: viewer`, observer tokens), as many whole meetings as each count fills;
    /// each is run twice, with its viewers and its senders alone, and the difference
    /// is the viewers' cost.
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    viewers: Vec<usize>,
    /// Viewers in each meeting of the viewers shape.
    #[arg(long, default_value_t = 49)]
    viewers_per_meeting: usize,
    /// Senders in each meeting of the viewers shape.
    #[arg(long, default_value_t = 1)]
    senders_per_meeting: usize,
    /// Steady window measured after all clients connected.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    window: Duration,
    /// Seconds of live encoding for the side-by-side client (0 to skip).
    #[arg(long, default_value_t = 20.0)]
    live_seconds: f64,
    /// Write all figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let work = scale::work_dir("scale");
    std::fs::create_dir_all(&work)?;
    let setup = scale::Setup {
        pack: a.replay.check()?,
        replay_bin: a.replay.replay_bin.clone(),
        rendition: a.replay.rendition.clone(),
        window: a.window,
        settle: Duration::from_secs(3),
        work,
        extra_config: a.replay.config_line.clone(),
        wire: a.replay.wire,
    };
    eprintln!("machine: {}", proc::machine());
    eprintln!("wire: {}", a.replay.wire);
    let mut rows = Vec::new();
    for &n in &a.send {
        eprintln!("send path: {n} clients ...");
        let row = scale::run(&setup, n, 1, None)?;
        eprintln!(
            "  {:.3} mCPU/client, {:.1} µs/packet",
            row.mcpu_per_client,
            row.us_per_sent_packet.unwrap_or(f64::NAN)
        );
        rows.push(row);
    }
    // The send cost per packet at the N closest to the receive runs.
    let send_us = rows
        .iter()
        .min_by_key(|r| r.clients.abs_diff(a.receive_clients))
        .and_then(|r| r.us_per_sent_packet);
    for &m in &a.receive {
        let n = a.receive_clients / m * m;
        eprintln!("receive path: {n} clients in meetings of {m} ...");
        let row = scale::run(&setup, n, m, send_us)?;
        eprintln!(
            "  {:.3} mCPU/client, {:?} µs/received packet",
            row.mcpu_per_client, row.us_per_received_packet
        );
        rows.push(row);
    }
    for &n in &a.viewers {
        let audience =
            scale::Audience::for_viewers(n, a.senders_per_meeting, a.viewers_per_meeting);
        eprintln!(
            "viewers: {} meetings of {} sender(s) + {} viewers, then the sender(s) alone ...",
            audience.meetings, audience.senders, audience.viewers
        );
        let row = scale::run_viewers(&setup, audience)?;
        eprintln!(
            "  {:.3} mCPU/viewer, {:?} µs/received packet",
            row.mcpu_per_client, row.us_per_received_packet
        );
        rows.push(row);
    }
    scale::per_client_rss(&mut rows);
    println!("machine: {}\nwire: {}\n", proc::machine(), a.replay.wire);
    println!("{}", scale::table(&rows));
    if rows.iter().any(|r| r.shape != "send") {
        println!("{}", scale::receivers_table(&rows));
    }
    for r in rows.iter().filter(|r| r.saturated) {
        println!(
            "{} {} in meetings of {}: the replayer fell behind (its losses are not the server's alone):",
            r.shape, r.clients, r.meeting_size
        );
        for why in &r.reasons {
            println!("  - {why}");
        }
    }
    let mut viewer_ratios = Vec::new();
    for v in rows.iter().filter(|r| r.shape == "viewers") {
        if let Some(p) = scale::peer_of(&rows, v) {
            let ratio = v.mcpu_per_client / p.mcpu_per_client;
            println!(
                "viewer / sender-receiver: {} viewers at {:.3} mCPU each / receive row ({} clients, meetings of {}, {:.1} recv pkt/s) at {:.3} = {ratio:.2}",
                v.clients, v.mcpu_per_client, p.clients, p.meeting_size, p.received_per_client_s, p.mcpu_per_client
            );
            viewer_ratios.push(serde_json::json!({
                "viewers": v.clients,
                "receive_clients": p.clients,
                "receive_meeting_size": p.meeting_size,
                "ratio": ratio,
            }));
        }
    }

    let replay_mcpu = rows
        .iter()
        .filter(|r| r.shape == "send")
        .min_by_key(|r| r.clients.abs_diff(500))
        .map(|r| (r.clients, r.mcpu_per_client));
    let mut live_cost = None;
    if a.live_seconds > 0.0 {
        let (w, h, kbps) = parse_rendition(&a.replay.rendition)?;
        eprintln!(
            "live encoding: one client at {w}x{h}@{kbps} for {} s ...",
            a.live_seconds
        );
        let l = live::measure(w, h, kbps, a.live_seconds)?;
        println!(
            "live-encoding client ({w}x{h}@{kbps} VP9 + Opus 32 kbps, real time): {:.1} mCPU (VP9 {:.1}, Opus {:.1}), {} frames, {:.0} kbps",
            l.mcpu, l.vp9_mcpu, l.opus_mcpu, l.frames, l.video_kbps
        );
        if let Some((n, r)) = replay_mcpu {
            // A live client pays the encoding and the same sending as a replaying one.
            println!(
                "ratio live / replay per client (replay measured at {n} clients): ({:.1} + {r:.3}) / {r:.3} = {:.0}",
                l.mcpu,
                (l.mcpu + r) / r
            );
        }
        live_cost = Some(l);
    }
    if let Some(path) = &a.json {
        let v = serde_json::json!({
            "machine": proc::machine(),
            "rows": rows,
            "live": live_cost,
            "replay_mcpu_for_ratio": replay_mcpu,
            "viewer_ratios": viewer_ratios,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&v)?)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn parse_rendition(name: &str) -> anyhow::Result<(u32, u32, u32)> {
    let size = name.strip_prefix("video-").unwrap_or(name);
    let (w, h) = size
        .split_once('x')
        .context("rendition like video-640x360")?;
    let (w, h): (u32, u32) = (w.parse()?, h.parse()?);
    // The pack's default targets; the live client aims at the same bitrate.
    let kbps = match (w, h) {
        (1280, 720) => 1200,
        (640, 360) => 500,
        (320, 180) => 150,
        _ => (w * h / 460).max(50),
    };
    Ok((w, h, kbps))
}
