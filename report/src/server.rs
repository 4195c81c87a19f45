//! The server beside the run: what the engine reads of the server's own
//! cost (a process on this host, a Prometheus server) and how it becomes
//! the timeline's [`ServerSample`]s and the report's [`ServerCost`].
//!
//! - a process: user + system CPU from `/proc/PID/stat` (fields 14 and 15,
//!   in clock ticks) and resident memory from `/proc/PID/statm` (its second
//!   field, in pages), parsed here by [`ProcReading::parse`] (the engine's
//!   own memory is read with [`statm_rss_pages`] too);
//! - Prometheus: an instant query's answer, parsed by [`prometheus_value`].
//!
//! Pure: the engine passes the files' text and the HTTP bodies, the tests
//! made-up text.

use std::collections::BTreeMap;

use crate::model::{Sample, ServerCost, ServerQuery, ServerSample};
use crate::num::round3;

/// What was read of the server at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerReading {
    /// The process's user + system CPU seconds since it started; `None`
    /// without a pid, or once the process is gone.
    pub cpu_seconds: Option<f64>,
    /// Its resident memory.
    pub rss_bytes: Option<u64>,
    /// Each Prometheus query's latest value; `None` when its last request failed.
    pub queries: BTreeMap<String, Option<f64>>,
}

impl ServerReading {
    /// The server as seen from `self` to `later`, `secs` apart: cores used
    /// over the interval, memory and query values at its end.
    pub fn sample_until(&self, later: &ServerReading, secs: f64) -> ServerSample {
        let cores = match (self.cpu_seconds, later.cpu_seconds) {
            (Some(a), Some(b)) if secs > 0.01 && b >= a => Some(round3((b - a) / secs)),
            _ => None,
        };
        ServerSample {
            cores,
            rss_mb: later.rss_bytes.map(|b| round3(b as f64 / 1e6)),
            queries: later.queries.clone(),
        }
    }
}

/// A process's CPU and memory from its `/proc` files.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcReading {
    /// User + system CPU seconds.
    pub cpu_seconds: f64,
    /// Resident memory.
    pub rss_bytes: u64,
}

impl ProcReading {
    /// From the text of `/proc/PID/stat` and `/proc/PID/statm`, with the
    /// clock ticks per second (`CLK_TCK`) and the page size; `None` when
    /// either does not parse, `ticks_per_s` is 0, or the process has ended
    /// (a zombie waiting for its parent).
    pub fn parse(stat: &str, statm: &str, ticks_per_s: u32, page: u64) -> Option<ProcReading> {
        // The command name (field 2) is in parentheses and may hold spaces
        // or parentheses itself: count the fields after its last `)`.
        let rest = &stat[stat.rfind(')')? + 1..];
        let mut f = rest.split_whitespace();
        // After the name: state (3) ... utime (14), stime (15). A zombie
        // (or a dead task) has ended: no reading.
        if matches!(f.next()?, "Z" | "X" | "x") {
            return None;
        }
        let utime: u64 = f.nth(10)?.parse().ok()?;
        let stime: u64 = f.next()?.parse().ok()?;
        (ticks_per_s > 0).then_some(())?;
        Some(ProcReading {
            cpu_seconds: (utime + stime) as f64 / f64::from(ticks_per_s),
            rss_bytes: statm_rss_pages(statm)? * page,
        })
    }
}

/// Resident pages from the text of a `/proc/PID/statm` (its second field).
pub fn statm_rss_pages(statm: &str) -> Option<u64> {
    statm.split_whitespace().nth(1)?.parse().ok()
}

/// The value of a Prometheus instant query's answer (`/api/v1/query`):
/// a scalar's value, or a vector's series summed (a query over several
/// instances or labels gives one series each: the server's total is their
/// sum). An error names what was wrong: a status other than `success`, an
/// empty vector, a value that is not a number.
pub fn prometheus_value(body: &str) -> Result<f64, String> {
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    if v["status"] != "success" {
        let why = v["error"].as_str().unwrap_or("no error given");
        return Err(format!("status {}: {why}", v["status"]));
    }
    let data = &v["data"];
    let number = |pair: &serde_json::Value| -> Result<f64, String> {
        let s = pair[1]
            .as_str()
            .ok_or_else(|| format!("a value that is not [time, \"number\"]: {pair}"))?;
        let x: f64 = s
            .parse()
            .map_err(|_| format!("the value {s:?} is not a number"))?;
        if x.is_finite() {
            Ok(x)
        } else {
            Err(format!("the value {s:?} is not finite"))
        }
    };
    match data["resultType"].as_str() {
        Some("scalar") => number(&data["result"]),
        Some("vector") => {
            let series = data["result"]
                .as_array()
                .ok_or("a vector without a result list")?;
            if series.is_empty() {
                return Err("no series (the query matched nothing)".into());
            }
            series.iter().map(|s| number(&s["value"])).sum()
        }
        Some(other) => Err(format!(
            "a {other} result: give an instant query whose result is a vector or a scalar"
        )),
        None => Err("no data.resultType".into()),
    }
}

/// What the run knew of the server's watch, besides the samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Watched {
    /// The pid watched.
    pub pid: Option<u32>,
    /// The Prometheus server asked.
    pub prometheus: Option<String>,
    /// The reading at the run's start.
    pub first: Option<ServerReading>,
    /// The last reading with the process's CPU (the end's, or the last one
    /// before it was gone).
    pub last: Option<ServerReading>,
    /// Seconds from the start's reading to the end's.
    pub secs: f64,
    /// When the process was found gone, seconds since the run started.
    pub gone_at_s: Option<f64>,
    /// Prometheus requests that failed.
    pub query_failures: u64,
}

impl ServerCost {
    /// The server's cost over a run: the CPU between the first and the last
    /// reading, the peaks and means over the timeline's `samples`.
    pub fn new(w: &Watched, samples: &[Sample]) -> ServerCost {
        let server: Vec<&ServerSample> = samples.iter().filter_map(|s| s.server.as_ref()).collect();
        let cpu_seconds = match (
            w.first.as_ref().and_then(|r| r.cpu_seconds),
            w.last.as_ref().and_then(|r| r.cpu_seconds),
        ) {
            (Some(a), Some(b)) if b >= a => Some(round3(b - a)),
            _ => None,
        };
        let cores: Vec<f64> = server.iter().filter_map(|s| s.cores).collect();
        let rss: Vec<f64> = server.iter().filter_map(|s| s.rss_mb).collect();
        let mut queries = BTreeMap::new();
        for s in &server {
            for name in s.queries.keys() {
                queries.entry(name.clone()).or_insert_with(Vec::new);
            }
        }
        for (name, values) in queries.iter_mut() {
            values.extend(
                server
                    .iter()
                    .filter_map(|s| s.queries.get(name).copied().flatten()),
            );
        }
        ServerCost {
            pid: w.pid,
            prometheus: w.prometheus.clone(),
            cpu_seconds,
            // Over the readings' own span, when the process lived through it.
            cores_mean: cpu_seconds
                .filter(|_| w.gone_at_s.is_none() && w.secs > 0.01)
                .map(|c| round3(c / w.secs)),
            cores_max: max(&cores),
            rss_peak_mb: max(&rss),
            gone_at_s: w.gone_at_s,
            queries: queries
                .into_iter()
                .map(|(name, v)| {
                    let q = ServerQuery {
                        mean: (!v.is_empty())
                            .then(|| round3(v.iter().sum::<f64>() / v.len() as f64)),
                        max: max(&v),
                        last: server
                            .last()
                            .and_then(|s| s.queries.get(&name).copied().flatten()),
                    };
                    (name, q)
                })
                .collect(),
            query_failures: w.query_failures,
        }
    }
}

fn max(v: &[f64]) -> Option<f64> {
    v.iter().copied().reduce(f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (my (odd) server) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 9 0 100 123456789 2500 18446744073709551615 1 1 0 0 0 0 0 4096 17414 0 0 0 17 1 0 0 0 0 0\n";

    #[test]
    fn proc_files_give_cpu_seconds_and_resident_memory() {
        let r = ProcReading::parse(STAT, "30000 2500 400 10 0 900 0\n", 100, 4096).unwrap();
        assert_eq!(r.cpu_seconds, 3.0, "(250 + 50) ticks at 100 a second");
        assert_eq!(r.rss_bytes, 2500 * 4096);
        assert_eq!(ProcReading::parse(STAT, "1 2\n", 0, 4096), None);
        let zombie = STAT.replace(") S ", ") Z ");
        assert_eq!(ProcReading::parse(&zombie, "1 2\n", 100, 4096), None);
        assert_eq!(
            ProcReading::parse("4242 (x) S 1 2\n", "1 2\n", 100, 4096),
            None
        );
        assert_eq!(ProcReading::parse(STAT, "1\n", 100, 4096), None);
        assert_eq!(ProcReading::parse("", "1 2\n", 100, 4096), None);
        assert_eq!(statm_rss_pages("10 7 3"), Some(7));
        assert_eq!(statm_rss_pages(""), None);
    }

    #[test]
    fn cores_are_cpu_seconds_over_the_interval() {
        let a = ServerReading {
            cpu_seconds: Some(10.0),
            rss_bytes: Some(1_000_000),
            queries: BTreeMap::new(),
        };
        let b = ServerReading {
            cpu_seconds: Some(13.0),
            rss_bytes: Some(5_000_000),
            queries: [("conns".to_string(), Some(7.0))].into(),
        };
        let s = a.sample_until(&b, 2.0);
        assert_eq!((s.cores, s.rss_mb), (Some(1.5), Some(5.0)));
        assert_eq!(s.queries["conns"], Some(7.0));
        let gone = ServerReading::default();
        assert_eq!(
            a.sample_until(&gone, 2.0).cores,
            None,
            "gone: unknown, not 0"
        );
        assert_eq!(a.sample_until(&b, 0.0).cores, None);
    }

    #[test]
    fn prometheus_answers_scalars_vectors_and_errors() {
        let vector = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"instance":"a"},"value":[1700000000.1,"0.25"]},
            {"metric":{"instance":"b"},"value":[1700000000.1,"0.5"]}]}}"#;
        assert_eq!(prometheus_value(vector), Ok(0.75), "series summed");
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"3"]}}"#;
        assert_eq!(prometheus_value(scalar), Ok(3.0));
        let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(prometheus_value(empty).unwrap_err().contains("no series"));
        let bad = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        assert!(prometheus_value(bad)
            .unwrap_err()
            .contains("parse error at char 5"));
        let nan = r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"NaN"]}}"#;
        assert!(prometheus_value(nan).unwrap_err().contains("not finite"));
        let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(prometheus_value(matrix).unwrap_err().contains("matrix"));
        assert!(prometheus_value("<html>").unwrap_err().contains("not JSON"));
    }

    #[test]
    fn the_cost_over_a_run() {
        let sample = |cores, rss, q| Sample {
            server: Some(ServerSample {
                cores,
                rss_mb: rss,
                queries: [("conns".to_string(), q)].into(),
            }),
            ..Sample::default()
        };
        let samples = [
            sample(Some(0.5), Some(10.0), Some(2.0)),
            sample(Some(1.5), Some(30.0), None),
            sample(Some(1.0), Some(20.0), Some(4.0)),
            Sample::default(),
        ];
        let reading = |cpu| ServerReading {
            cpu_seconds: Some(cpu),
            ..ServerReading::default()
        };
        let w = Watched {
            pid: Some(9),
            prometheus: Some("http://127.0.0.1:9090/".into()),
            first: Some(reading(100.0)),
            last: Some(reading(103.0)),
            secs: 3.0,
            gone_at_s: None,
            query_failures: 1,
        };
        let c = ServerCost::new(&w, &samples);
        assert_eq!(c.cpu_seconds, Some(3.0));
        assert_eq!(c.cores_mean, Some(1.0));
        assert_eq!((c.cores_max, c.rss_peak_mb), (Some(1.5), Some(30.0)));
        let q = &c.queries["conns"];
        assert_eq!((q.mean, q.max, q.last), (Some(3.0), Some(4.0), Some(4.0)));
        assert_eq!(c.query_failures, 1);
        // The process gone before the end: its CPU until then, no mean
        // over the run.
        let gone = Watched {
            last: Some(reading(102.0)),
            gone_at_s: Some(2.0),
            ..w
        };
        let c = ServerCost::new(&gone, &samples);
        assert_eq!((c.cpu_seconds, c.cores_mean), (Some(2.0), None));
        assert_eq!(c.cores_max, Some(1.5), "what was measured before stays");
    }
}
