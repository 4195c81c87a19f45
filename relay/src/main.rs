//! `synth-relay`: the relay alone, as `synth-replay relay` runs it.

use std::process::ExitCode;

use clap::Parser;

/// The relay: a WebTransport server that behaves like the videocall-rs
/// server, for local tests and the scale harness (same options as
/// `synth-replay relay`).
///
/// Example: synth-relay --listen 127.0.0.1:4433 --stats-json relay.json
#[derive(Debug, Parser)]
#[command(name = "synth-relay", version, verbatim_doc_comment)]
struct Cli {
    #[command(flatten)]
    relay: synth_relay::RelayArgs,
    /// Log filter (tracing env-filter syntax), e.g. `info`.
    #[arg(
        long,
        env = "RUST_LOG",
        default_value = "warn,web_transport_quinn=error"
    )]
    log: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(rt) = synth_common::net::main_runtime(&cli.log) else {
        return ExitCode::from(1);
    };
    match rt.block_on(synth_relay::run_cli(
        cli.relay,
        synth_common::net::terminated(),
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
