//! `synth-replay`: parse the command line, set up logging, call the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use synth_replayer::config::{self, Overrides, Settings};
use synth_replayer::report;
use synth_replayer::run::{self, Options, EXIT_CONFIG};
use synth_report::cli::{self as report_cli, fail, ReportCommand};

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
    /// HTML page or its verdicts as JUnit XML, merge the reports of several
    /// pods into one verdict, or compare a report with a baseline.
    #[command(subcommand)]
    Report(ReportCommand),
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
                    html: a.html.clone(),
                    ..Options::default()
                };
                match run::run(s, opts, shutdown_on_signal()).await {
                    Ok(o) => {
                        let code = o.exit_code;
                        if a.print_report {
                            match serde_json::to_string_pretty(&o.report) {
                                Ok(json) => println!("{REPORT_BEGIN}\n{json}\n{REPORT_END}"),
                                Err(e) => eprintln!("error: encoding the report: {e}"),
                            }
                        }
                        if o.exit_code == run::EXIT_THRESHOLD {
                            match o.report.nothing_delivered() {
                                Some(line) => eprintln!("error: {line}"),
                                None => {
                                    eprintln!("error: a threshold was violated (see the report)")
                                }
                            }
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
                match synth_scenario::summary::summary(&s) {
                    Ok(p) if a.json => {
                        println!("{}", serde_json::to_string_pretty(&p).unwrap_or_default());
                        0
                    }
                    Ok(p) => {
                        print!("{p}");
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
            Command::Report(c) => report_cli::run(c),
        }
    });
    ExitCode::from(code as u8)
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
