//! `synth-report`: `synth-replay report` without the engine — render,
//! merge and compare JSON reports (same arguments and exit codes).

use std::process::ExitCode;

use clap::Parser;
use synth_report::cli::{self, ReportCommand};

/// Work with JSON reports written by `synth-replay run --report`: render one
/// as an HTML page, merge the reports of several pods into one verdict, or
/// compare a report with a baseline.
#[derive(Debug, Parser)]
#[command(name = "synth-report", version)]
struct Cli {
    #[command(subcommand)]
    command: ReportCommand,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    ExitCode::from(cli::run(cli.command) as u8)
}
