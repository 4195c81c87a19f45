//! `synth-replay`: parse the command line, set up logging, call the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use synth_replayer::config::{self, Overrides, Settings};
use synth_replayer::report::Report;
use synth_replayer::run::{self, Options, EXIT_CONFIG};
use synth_replayer::{html, plan, report, saved};

/// Synthetic videocall-rs participants: join meetings over WebTransport and
/// replay a pack of pre-encoded Opus audio and VP9 video, measuring what the
/// server relays back.
#[derive(Debug, Parser)]
#[command(name = "synth-replay", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log filter (tracing env-filter syntax), e.g. `info` or `synth_replayer=debug`.
    #[arg(
        long,
        global = true,
        env = "RUST_LOG",
        default_value = "warn,web_transport_quinn=error"
    )]
    log: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the load test. Without a server URL (config, SERVER_URL or
    /// --server-url) it starts the embedded relay in-process and runs against it.
    ///
    /// Examples:
    ///   synth-replay run                         # built-in default: 6 clients, 10 s, embedded relay
    ///   synth-replay run --config load.yaml --report report.json
    ///   synth-replay run --config load.yaml --server-url https://127.0.0.1:4433 --duration 1m
    ///
    /// Exit codes: 0 ok, 1 runtime error (e.g. no client could connect),
    /// 2 bad config or input, 3 a threshold failed.
    #[command(verbatim_doc_comment)]
    Run(RunArgs),
    /// Check a config and print the expanded plan (clients per meeting, media,
    /// expected bitrate) without connecting.
    ///
    /// Example: synth-replay validate --config load.yaml --json
    #[command(verbatim_doc_comment)]
    Validate(ValidateArgs),
    /// Run the relay alone: an in-process WebTransport server that behaves like
    /// the videocall-rs server (for local tests and the scale harness).
    ///
    /// Example: synth-replay relay --listen 127.0.0.1:4433 --stats-json relay.json
    #[command(verbatim_doc_comment)]
    Relay(synth_relay::RelayArgs),
    /// Work with JSON reports written by `run --report`: render one as an
    /// HTML page, merge the reports of several pods into one verdict, or
    /// compare a report with a baseline.
    #[command(subcommand)]
    Report(ReportCommand),
}

#[derive(Debug, Subcommand)]
enum ReportCommand {
    /// Render a report as one self-contained HTML page: the verdict, plots of
    /// the timeline (clients, Mbit/s, latency, loss, freezes, send lateness,
    /// CPU, memory) with events marked, and the tables of the summary. It
    /// loads nothing from the network; open it in any browser.
    ///
    /// Example: synth-replay report html report.json -o report.html
    ///
    /// Exit codes: 0 written, 1 the page could not be written, 2 bad input
    /// (no such file, not JSON, not a synth-replay report).
    #[command(verbatim_doc_comment)]
    Html(HtmlArgs),
    /// Merge the reports of several pods of one test into one report, as if
    /// one process had run every client: counts add, percentiles come from
    /// the pods' histograms added together (exact), thresholds are checked
    /// again on the merged figures. Prints the merged summary.
    ///
    /// Examples:
    ///   synth-replay report merge pod-0.json pod-1.json pod-2.json -o all.json
    ///   synth-replay report merge reports/*.json
    ///
    /// Exit codes: 0 the merged report passes, 2 bad input (a file missing,
    /// not JSON, not a synth-replay report of schema version 3, reports that
    /// cannot be merged), 3 a threshold fails on the merged figures.
    #[command(verbatim_doc_comment)]
    Merge(MergeArgs),
    /// Compare a report with a baseline, figure by figure: both values, the
    /// change and the change in %, "worse" where it regressed. --fail-on
    /// sets how much a figure may get worse:
    ///   NAME:+X%   fail when it rises more than X % of the baseline
    ///   NAME:+N    fail when it rises more than N
    ///   NAME:-X%   fail when it falls more than X % (for figures where
    ///   NAME:-N    lower is worse, e.g. video_fps_p5:-10%)
    /// With a baseline of 0, a % limit fails on any change its way. A figure
    /// the current report has no value for (the baseline has) fails its limit.
    ///
    /// Examples:
    ///   synth-replay report diff baseline.json current.json
    ///   synth-replay report diff baseline.json current.json --fail-on audio_latency_p99_ms:+10% --fail-on video_fps_p5:-10%
    ///   synth-replay report diff baseline.json current.json --json
    ///
    /// Exit codes: 0 no limit crossed, 2 bad input or a bad --fail-on,
    /// 3 a limit was crossed.
    #[command(verbatim_doc_comment)]
    Diff(DiffArgs),
}

#[derive(Debug, Args)]
struct HtmlArgs {
    /// The JSON report (from `synth-replay run --report FILE.json`).
    report: PathBuf,
    /// Where to write the page (written whole, through a temporary file).
    #[arg(long, short)]
    output: PathBuf,
}

#[derive(Debug, Args)]
struct MergeArgs {
    /// The pods' JSON reports.
    #[arg(required = true)]
    reports: Vec<PathBuf>,
    /// Write the merged JSON report here.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct DiffArgs {
    /// The report to compare with.
    baseline: PathBuf,
    /// The report under test.
    current: PathBuf,
    /// A limit: NAME:+X%, NAME:+N, NAME:-X% or NAME:-N (repeatable).
    #[arg(long = "fail-on", value_name = "LIMIT", allow_hyphen_values = true)]
    fail_on: Vec<String>,
    /// Print the comparison as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args, Clone)]
struct Common {
    /// Config file (YAML). Without one, the built-in default (6 clients in 2
    /// meetings, 10 s) is used.
    #[arg(long, short, env = "CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    overrides: Overrides,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
    /// Also write the report as a self-contained HTML page here (as
    /// `synth-replay report html` does); its folder is checked before the run.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// After the summary, print the JSON report on stdout between the lines
    /// "----- BEGIN SYNTH-REPLAY JSON REPORT -----" and "----- END
    /// SYNTH-REPLAY JSON REPORT -----", for pods whose files are out of reach
    /// (scripts/merge-pod-reports.sh reads them from `kubectl logs`).
    #[arg(long, env = "PRINT_REPORT")]
    print_report: bool,
}

/// The lines around the JSON report printed by `run --print-report`.
const REPORT_BEGIN: &str = "----- BEGIN SYNTH-REPLAY JSON REPORT -----";
/// See [`REPORT_BEGIN`].
const REPORT_END: &str = "----- END SYNTH-REPLAY JSON REPORT -----";

#[derive(Debug, Args)]
struct ValidateArgs {
    #[command(flatten)]
    common: Common,
    /// Print the plan as JSON.
    #[arg(long)]
    json: bool,
}

// Thousands of streams a second each allocate a little in quinn and tokio;
// mimalloc does that with less CPU than glibc's malloc (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEFAULT_CONFIG: &str = include_str!("../default-config.yaml");

fn settings(c: &Common) -> anyhow::Result<Settings> {
    let file = match &c.config {
        Some(path) => config::read_file(path)?,
        None => config::parse(DEFAULT_CONFIG)?,
    };
    Settings::resolve(file, &c.overrides, &|k| std::env::var(k).ok())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(rt) = synth_common::net::main_runtime(&cli.log) else {
        return ExitCode::from(1);
    };
    let code = rt.block_on(async {
        match cli.command {
            Command::Run(a) => {
                let s = match settings(&a.common) {
                    Ok(s) => s,
                    Err(e) => return fail(&e, EXIT_CONFIG),
                };
                if let Some(path) = &a.html {
                    if let Err(e) = report::check_path(path) {
                        return fail(&e.context("--html"), EXIT_CONFIG);
                    }
                }
                let opts = Options {
                    progress: !a.quiet,
                    ..Options::default()
                };
                match run::run(s, opts, shutdown_on_signal()).await {
                    Ok(o) => {
                        let mut code = o.exit_code;
                        if a.print_report {
                            match serde_json::to_string_pretty(&o.report) {
                                Ok(json) => println!("{REPORT_BEGIN}\n{json}\n{REPORT_END}"),
                                Err(e) => eprintln!("error: encoding the report: {e}"),
                            }
                        }
                        if let Some(path) = &a.html {
                            if let Err(e) = write_html(&o.report, path) {
                                code = fail(&e, 1).max(code);
                            }
                        }
                        if o.exit_code == run::EXIT_THRESHOLD {
                            eprintln!("error: a threshold was violated (see the report)");
                        }
                        code
                    }
                    Err(e) if e.is::<run::BadInput>() => fail(&e, EXIT_CONFIG),
                    Err(e) => fail(&e, 1),
                }
            }
            Command::Validate(a) => {
                let s = match settings(&a.common) {
                    Ok(s) => s,
                    Err(e) => return fail(&e, EXIT_CONFIG),
                };
                match plan::summary(&s) {
                    Ok(p) if a.json => {
                        println!("{}", serde_json::to_string_pretty(&p).unwrap_or_default());
                        0
                    }
                    Ok(p) => {
                        print_plan(&p);
                        0
                    }
                    Err(e) => fail(&e, EXIT_CONFIG),
                }
            }
            Command::Relay(a) => {
                match synth_relay::run_cli(a, synth_common::net::terminated()).await {
                    Ok(()) => 0,
                    Err(e) => fail(&e, 1),
                }
            }
            Command::Report(c) => report_command(c),
        }
    });
    ExitCode::from(code as u8)
}

/// `synth-replay report …`: bad input exits 2, a file that cannot be written 1.
fn report_command(c: ReportCommand) -> i32 {
    match c {
        ReportCommand::Html(a) => {
            let v = match saved::read(&a.report) {
                Ok(v) => v,
                Err(e) => return fail(&e, EXIT_CONFIG),
            };
            if let Err(e) = report::check_path(&a.output) {
                return fail(&e.context("--output"), EXIT_CONFIG);
            }
            match saved::write(&a.output, html::render(&v).as_bytes()) {
                Ok(()) => 0,
                Err(e) => fail(&e, 1),
            }
        }
        ReportCommand::Merge(a) => report_merge(&a),
        ReportCommand::Diff(a) => report_diff(&a),
    }
}

/// Renders the run's report to `path` (`run --html`).
fn write_html(r: &report::Report, path: &std::path::Path) -> anyhow::Result<()> {
    let v = serde_json::to_value(r)?;
    saved::write(path, html::render(&v).as_bytes())
}

/// The run's shutdown: the first Ctrl-C or SIGTERM ends the run with a
/// complete report; a second one exits at once.
async fn shutdown_on_signal() {
    synth_common::net::terminated().await;
    eprintln!("stopping: closing sessions (signal again to exit at once)");
    tokio::spawn(async {
        synth_common::net::terminated().await;
        eprintln!("second signal: exiting now");
        std::process::exit(130);
    });
}

/// `report merge`: the merged summary on stdout, the exit code of its verdict.
fn report_merge(a: &MergeArgs) -> i32 {
    let merged = a
        .reports
        .iter()
        .map(|p| Ok((p.display().to_string(), Report::read(p)?)))
        .collect::<anyhow::Result<Vec<_>>>()
        .and_then(|reports| synth_replayer::merge::merge(&reports));
    let merged = match merged {
        Ok(m) => m,
        Err(e) => return fail(&e, EXIT_CONFIG),
    };
    print!("{}", merged.summary());
    println!("merged   {}", merged.merged_from.join(", "));
    if let Some(out) = &a.output {
        if let Err(e) = merged.write(out) {
            return fail(&e, 1);
        }
    }
    if merged.passed {
        0
    } else {
        eprintln!("error: the merged report fails (see its thresholds)");
        run::EXIT_THRESHOLD
    }
}

/// `report diff`: the comparison on stdout, exit 3 when a limit is crossed.
fn report_diff(a: &DiffArgs) -> i32 {
    let inputs = (|| -> anyhow::Result<_> {
        let limits = a
            .fail_on
            .iter()
            .map(|l| synth_replayer::diff::Limit::parse(l))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok((
            Report::read(&a.baseline)?,
            Report::read(&a.current)?,
            limits,
        ))
    })();
    let (baseline, current, limits) = match inputs {
        Ok(i) => i,
        Err(e) => return fail(&e, EXIT_CONFIG),
    };
    let d = synth_replayer::diff::diff(&baseline, &current, &limits);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&d).unwrap_or_default());
    } else {
        print!("{}", d.text());
    }
    if d.passed {
        0
    } else {
        eprintln!(
            "error: {} limit(s) crossed: {}",
            d.failed.len(),
            d.failed
                .iter()
                .map(|b| b.limit.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        run::EXIT_THRESHOLD
    }
}

fn fail(e: &anyhow::Error, code: i32) -> i32 {
    eprintln!("error: {e:#}");
    code
}

fn print_plan(p: &plan::Summary) {
    println!("server    {}", p.server);
    println!("pack      {}", p.pack);
    println!(
        "duration  {:.1} s (ramp-up {:.1} s)",
        p.duration_s, p.ramp_up_s
    );
    let audio = p.clients.iter().filter(|c| c.audio).count();
    let video = p.clients.iter().filter(|c| c.video).count();
    println!(
        "clients   {} ({} with audio, {} with video) in {} meetings",
        p.clients.len(),
        audio,
        video,
        p.meetings.len()
    );
    let mut sizes = std::collections::BTreeMap::new();
    for n in p.meetings.values() {
        *sizes.entry(*n).or_insert(0) += 1;
    }
    for (size, count) in sizes {
        println!("          {count} meeting(s) of {size}");
    }
    println!(
        "expected  {:.1} kbps audio + {:.1} kbps video sent ({:.2} Mbit/s)",
        p.expected_kbps.audio,
        p.expected_kbps.video,
        (p.expected_kbps.audio + p.expected_kbps.video) / 1000.0
    );
    for c in p.clients.iter().take(5) {
        println!(
            "          {} -> {} (audio {}, video {})",
            c.user_id,
            c.meeting_id,
            c.audio,
            c.rendition.as_deref().unwrap_or("off")
        );
    }
    if p.clients.len() > 5 {
        println!("          ... and {} more", p.clients.len() - 5);
    }
    if let Some(se) = &p.search {
        println!("search    {se}");
    }
    for n in &p.networks {
        println!("network   {n}");
    }
    for b in &p.behaviour {
        println!("behaviour {b}");
    }
    for w in &p.warnings {
        println!("warning   {w}");
    }
    println!("ok");
}
