//! [`Overrides`]: the options a flag or an environment variable may set over
//! the file, declared once for clap.

use std::path::PathBuf;
use std::time::Duration;

/// The options a command line or the environment may set over the config
/// file, declared once: clap reads them from the command line, then from the
/// environment; [`Settings::resolve`](super::Settings::resolve) lays them
/// over the file. So the order is CLI over env over file, for every one of
/// them.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Overrides {
    /// Server URL, e.g. https://127.0.0.1:4433 (overrides the config's server_url).
    #[arg(long, env = "SERVER_URL")]
    pub server_url: Option<String>,
    /// The wire: auto (ask the server's GET /version before the run and
    /// speak its wire; per_packet without an answer), per_packet (one
    /// packet per stream: upstream main) or framed (length-prefixed
    /// packets on persistent streams: upstream RnD).
    #[arg(long, env = "WIRE")]
    pub wire: Option<String>,
    /// Where the server's GET /version is asked before a run against a
    /// server (`wire: auto` chooses from it; the report records it): plain
    /// http, by default port 5321 of the server's host (upstream's compose
    /// file).
    #[arg(long, env = "HEALTH_URL")]
    pub health_url: Option<String>,
    /// Process id of the server on this host, whose CPU and memory the run
    /// samples (overrides the config's `server.pid`).
    #[arg(long, env = "SERVER_PID")]
    pub server_pid: Option<u32>,
    /// Pack to replay [default: the config's `pack`, else packs/default.pack].
    #[arg(long, env = "PACK")]
    pub pack: Option<PathBuf>,
    /// Run length, e.g. 30s or 5m (overrides the config's duration).
    #[arg(long, env = "DURATION", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Serve Prometheus metrics on this address, e.g. 127.0.0.1:9090 (run only).
    #[arg(long, env = "METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// After the run, keep serving /metrics this long (e.g. 30s), so that a
    /// scrape sees the final verdicts and the participants' scores;
    /// Ctrl-C ends it early. At most 1h; 0 (the default) closes at once.
    #[arg(long, env = "METRICS_HOLD", value_parser = humantime::parse_duration)]
    pub metrics_hold: Option<Duration>,
    /// Write the JSON report here (run only; schema: docs/report-schema.json).
    #[arg(long, env = "REPORT")]
    pub report: Option<PathBuf>,
    /// Write the verdicts here as JUnit XML at the end of the run, also when
    /// a threshold fails or the run is stopped: one test case per threshold
    /// and per capacity-search step (run only).
    #[arg(long, env = "JUNIT")]
    pub junit: Option<PathBuf>,
    /// Write one CSV row per participant here at the end of the run, worst
    /// first: its scores, bands and their inputs (run only; `report
    /// participants` makes the same from a report).
    #[arg(long, env = "PARTICIPANTS")]
    pub participants: Option<PathBuf>,
    /// Stream the timeline here as JSON lines while the run goes, one sample
    /// per `timeline_interval` (run only; a killed run still leaves its history).
    #[arg(long, env = "TIMELINE")]
    pub timeline: Option<PathBuf>,
    /// Pod name, for `{pod}` in id templates.
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
    /// Pod index, for `{pod_index}` and `{global}` [env: POD_INDEX, else JOB_COMPLETION_INDEX].
    #[arg(long, env = "POD_INDEX")]
    pub pod_index: Option<usize>,
    /// Clients in this process: overrides `count` of the config's single group.
    #[arg(long, env = "CLIENTS_PER_POD")]
    pub clients_per_pod: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, Settings};

    /// CLI over env over file, for the options declared once in [`Overrides`].
    #[test]
    fn cli_over_env_over_file() {
        use clap::Parser;
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            o: Overrides,
        }
        let file = || {
            parse(
                "duration: 5s\nserver_url: https://127.0.0.1:1111\npack: file.pack\n\
                 clients: [{user_id: a, meeting_id: m}]\n",
            )
            .unwrap()
        };
        let resolve = |args: &[&str]| {
            let cli = Cli::try_parse_from(args).unwrap();
            Settings::resolve(file(), &cli.o, &|_| None).unwrap()
        };
        // This test alone sets these variables in this test binary.
        std::env::remove_var("DURATION");
        std::env::remove_var("SERVER_URL");
        std::env::remove_var("PACK");
        let s = resolve(&["t"]);
        assert_eq!(s.duration, Duration::from_secs(5), "file");
        assert_eq!(s.pack, PathBuf::from("file.pack"));
        std::env::set_var("DURATION", "7s");
        std::env::set_var("SERVER_URL", "https://127.0.0.1:2222");
        let s = resolve(&["t"]);
        assert_eq!(s.duration, Duration::from_secs(7), "env over file");
        assert_eq!(s.server_url.unwrap().port(), Some(2222));
        assert_eq!(
            s.pack,
            PathBuf::from("file.pack"),
            "file where env is unset"
        );
        let s = resolve(&[
            "t",
            "--duration",
            "9s",
            "--server-url",
            "https://127.0.0.1:3333",
        ]);
        assert_eq!(s.duration, Duration::from_secs(9), "CLI over env");
        assert_eq!(s.server_url.unwrap().port(), Some(3333));
        std::env::remove_var("DURATION");
        std::env::remove_var("SERVER_URL");
        // JOB_COMPLETION_INDEX stands in for an unset POD_INDEX.
        let cli = Cli::try_parse_from(["t"]).unwrap();
        let env = |k: &str| (k == "JOB_COMPLETION_INDEX").then(|| "3".to_string());
        let yaml = "groups: [{count: 2, user_id: 'u{global}', meeting_id: 'm'}]\n";
        let s = Settings::resolve(parse(yaml).unwrap(), &cli.o, &env).unwrap();
        assert_eq!(s.clients[0].user_id, "u6");
    }
}
