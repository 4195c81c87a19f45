//! The `report html|junit|participants|merge|diff` command line: its arguments (clap) and what
//! each does, with the exit codes of `synth-replay report` (which embeds
//! it) and of the `synth-report` binary.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::diff::{self, Limit};
use crate::model::Report;
use crate::{html, io, junit, merge, participants, EXIT_INPUT, EXIT_THRESHOLD};

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
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
    /// Write a report's verdicts as JUnit XML, for CI systems that show test
    /// results: one test case per threshold (built-in ones too) and per
    /// capacity-search step; a failing one gives both values ("actual 180.2,
    /// wanted < 150"). For a merged report (`report merge -o`), or any
    /// report of this version; `run --junit FILE` writes the same at the end
    /// of a run.
    ///
    /// Examples:
    ///   synth-replay report junit all.json -o junit.xml
    ///   synth-replay report junit report.json            # to stdout
    ///
    /// Exit codes: 0 written (whatever the verdicts), 1 the file could not
    /// be written, 2 bad input (no such file, not JSON, not a synth-replay
    /// report of schema version 3).
    #[command(verbatim_doc_comment)]
    Junit(OutputArgs),
    /// Write one CSV row per participant, worst first: id, group, meeting,
    /// network, verdict, audio MOS, video score, the five bands (A V L Q S)
    /// and every input they were computed from (concealment, freeze share,
    /// p95 latency, low-fps share, reconnects per hour, one-way latency,
    /// jitter, Opus kbps, frame rates, bits per pixel, rendition). An empty
    /// field was not measured for that participant. `run --participants
    /// FILE.csv` writes the same at the end of a run.
    ///
    /// Examples:
    ///   synth-replay report participants report.json -o participants.csv
    ///   synth-replay report participants report.json | head -5   # the worst
    ///
    /// Exit codes: 0 written, 1 the file could not be written, 2 bad input
    /// (no such file, not JSON, not a synth-replay report of schema
    /// version 3).
    #[command(verbatim_doc_comment)]
    Participants(OutputArgs),
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
    /// NAME may be scoped as a threshold is: audio_lost{group=3g}:+10. Every
    /// group's, network's, meeting's and phase's figures are compared too.
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
pub struct HtmlArgs {
    /// The JSON report (from `synth-replay run --report FILE.json`).
    pub report: PathBuf,
    /// Where to write the page (written whole, through a temporary file).
    #[arg(long, short)]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// The JSON report (from `run --report FILE.json` or `report merge -o`).
    pub report: PathBuf,
    /// Where to write it (written whole); stdout without it.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The pods' JSON reports.
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// Write the merged JSON report here.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The report to compare with.
    pub baseline: PathBuf,
    /// The report under test.
    pub current: PathBuf,
    /// A limit: NAME:+X%, NAME:+N, NAME:-X% or NAME:-N (repeatable).
    #[arg(long = "fail-on", value_name = "LIMIT", allow_hyphen_values = true)]
    pub fail_on: Vec<String>,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs a report command; returns its exit code (0 ok, 1 a file could not be
/// written, [`EXIT_INPUT`] bad input, [`EXIT_THRESHOLD`] a failed verdict or
/// a crossed limit). Errors go to stderr as one line.
pub fn run(c: ReportCommand) -> i32 {
    match c {
        ReportCommand::Html(a) => report_html(&a),
        ReportCommand::Junit(a) => report_to(&a, junit::junit),
        ReportCommand::Participants(a) => report_to(&a, participants::csv),
        ReportCommand::Merge(a) => report_merge(&a),
        ReportCommand::Diff(a) => report_diff(&a),
    }
}

/// `report html`: bad input exits 2, a page that cannot be written 1.
fn report_html(a: &HtmlArgs) -> i32 {
    let v = match io::read_any(&a.report) {
        Ok(v) => v,
        Err(e) => return fail(&e, EXIT_INPUT),
    };
    if let Err(e) = io::check_path(&a.output) {
        return fail(&e.context("--output"), EXIT_INPUT);
    }
    match io::write_atomic(&a.output, html::render_value(&v).as_bytes()) {
        Ok(()) => 0,
        Err(e) => fail(&e, 1),
    }
}

/// `report junit` and `report participants`: what `render` makes of the
/// report, to `--output` or stdout. Bad input exits 2, a file that cannot
/// be written 1; the verdicts do not change the exit code (the output
/// carries them).
fn report_to(a: &OutputArgs, render: fn(&Report) -> String) -> i32 {
    let r = match Report::read(&a.report) {
        Ok(r) => r,
        Err(e) => return fail(&e, EXIT_INPUT),
    };
    let text = render(&r);
    let Some(out) = &a.output else {
        print!("{text}");
        return 0;
    };
    if let Err(e) = io::check_path(out) {
        return fail(&e.context("--output"), EXIT_INPUT);
    }
    match io::write_atomic(out, text.as_bytes()) {
        Ok(()) => 0,
        Err(e) => fail(&e, 1),
    }
}

/// `report merge`: the merged summary on stdout, the exit code of its verdict.
fn report_merge(a: &MergeArgs) -> i32 {
    let merged = a
        .reports
        .iter()
        .map(|p| Ok((p.display().to_string(), Report::read(p)?)))
        .collect::<anyhow::Result<Vec<_>>>()
        .and_then(|reports| merge::merge(&reports));
    let merged = match merged {
        Ok(m) => m,
        Err(e) => return fail(&e, EXIT_INPUT),
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
        EXIT_THRESHOLD
    }
}

/// `report diff`: the comparison on stdout, exit 3 when a limit is crossed.
fn report_diff(a: &DiffArgs) -> i32 {
    let inputs = (|| -> anyhow::Result<_> {
        let limits = a
            .fail_on
            .iter()
            .map(|l| Limit::parse(l))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok((
            Report::read(&a.baseline)?,
            Report::read(&a.current)?,
            limits,
        ))
    })();
    let (baseline, current, limits) = match inputs {
        Ok(i) => i,
        Err(e) => return fail(&e, EXIT_INPUT),
    };
    let d = diff::diff(&baseline, &current, &limits);
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
        EXIT_THRESHOLD
    }
}

/// Prints `e` as one line and returns `code`.
pub fn fail(e: &anyhow::Error, code: i32) -> i32 {
    eprintln!("error: {e:#}");
    code
}
