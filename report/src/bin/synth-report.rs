//! `synth-report`: `synth-replay report` without the engine — render,
//! write as JUnit XML, merge and compare JSON reports (same arguments and exit codes) — and
//! the figures a threshold may name.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use synth_report::cli::{self, ReportCommand};

/// Work with JSON reports written by `synth-replay run --report`: render one
/// as an HTML page or its verdicts as JUnit XML, merge the reports of several pods into one verdict, or
/// compare a report with a baseline.
#[derive(Debug, Parser)]
#[command(name = "synth-report", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Report(ReportCommand),
    /// Print every figure a threshold, `--fail-on` or a search SLO may name,
    /// as a markdown table: unit, which way is worse, whether it is known
    /// while the run goes (live) or only at its end, how it merges.
    Figures,
}

fn main() -> ExitCode {
    let code = match Cli::parse().command {
        Command::Report(c) => cli::run(c),
        Command::Figures => {
            print!("{}", synth_report::figure::markdown());
            0
        }
    };
    ExitCode::from(code as u8)
}
