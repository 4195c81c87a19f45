//! The server beside the run (`server:`): a process's CPU and memory read
//! from `/proc` (a child this test spawns, one that ends), Prometheus
//! queries asked of a tiny HTTP server on 127.0.0.1, and a capacity search
//! with both, whose steps and report carry the server's cost.

use std::collections::BTreeMap;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use synth_relay::{Relay, RelayConfig};
use synth_replayer::config::ServerWatch;
use synth_replayer::run;
use synth_replayer::server_cost::{ServerProbe, ServerReading, QUERY_TIMEOUT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{quiet, settings, within};

/// A child killed (and reaped) when the test ends, even on a failure.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(script: &str) -> Reaped {
    Reaped(
        Command::new("sh")
            .args(["-c", script])
            .spawn()
            .expect("sh starts"),
    )
}

fn pid_watch(pid: u32) -> ServerWatch {
    ServerWatch {
        pid: Some(pid),
        ..ServerWatch::default()
    }
}

/// Cores used from `a` to `b`, `secs` apart.
fn cores(a: &ServerReading, b: &ServerReading, secs: f64) -> Option<f64> {
    a.sample_until(b, secs).cores
}

/// A busy child uses most of a core, a sleeping one none; once the busy
/// one is gone its figures are null, with no panic and no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_on_this_host_cpu_memory_and_its_end() {
    let busy = spawn("while :; do :; done");
    let idle = spawn("sleep 30");
    let second = Duration::from_millis(1500);
    let watch = |c: &Reaped| pid_watch(c.0.id());
    let mut b = within(5, "probe", ServerProbe::start(&watch(&busy), second))
        .await
        .unwrap();
    let mut i = within(5, "probe", ServerProbe::start(&watch(&idle), second))
        .await
        .unwrap();
    let (b0, i0) = (b.read(0.0), i.read(0.0));
    let started = std::time::Instant::now();
    tokio::time::sleep(second).await;
    let secs = started.elapsed().as_secs_f64();
    let (b1, i1) = (b.read(secs), i.read(secs));
    let busy_cores = cores(&b0, &b1, secs).unwrap();
    // A generous bound: the machine is shared, but a spinning shell gets
    // far more than a third of a core over 1.5 s.
    assert!(busy_cores > 0.3 && busy_cores < 1.2, "{busy_cores}");
    let idle_cores = cores(&i0, &i1, secs).unwrap();
    assert!(idle_cores < 0.1, "{idle_cores}");
    let rss = b1.rss_bytes.unwrap();
    assert!(
        rss > 100_000 && rss < 100_000_000,
        "a shell's memory: {rss}"
    );

    drop(busy); // killed and reaped
    let b2 = b.read(secs + 1.0);
    assert_eq!((b2.cpu_seconds, b2.rss_bytes), (None, None));
    assert_eq!(b.read(secs + 2.0).cpu_seconds, None, "gone for good");
    let w = b.watched();
    assert_eq!(w.gone_at_s, Some(secs + 1.0));
    assert_eq!(
        w.last.unwrap().cpu_seconds,
        b1.cpu_seconds,
        "the last alive"
    );
}

#[tokio::test]
async fn a_pid_that_does_not_exist_is_refused_at_the_start() {
    let mut ended = Command::new("true").spawn().unwrap();
    ended.wait().unwrap();
    let pid = ended.id();
    let e = ServerProbe::start(&pid_watch(pid), Duration::from_secs(1))
        .await
        .unwrap_err();
    let e = format!("{e:#}");
    assert!(
        e.contains(&format!("server.pid {pid}: no such process")),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
}

/// A tiny Prometheus on 127.0.0.1: answers each request with `answer(path)`
/// (status and body), or never when it gives `None`; keeps the request lines.
async fn prometheus(
    answer: impl Fn(&str) -> Option<(u16, String)> + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (answer, kept) = (Arc::new(answer), seen.clone());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let (answer, kept) = (answer.clone(), kept.clone());
            tokio::spawn(async move {
                let mut buf = vec![0; 4096];
                let mut n = 0;
                while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => n += k,
                    }
                }
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let line = head.lines().next().unwrap_or("").to_string();
                kept.lock().unwrap().push(line.clone());
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                match answer(&path) {
                    Some((status, body)) => {
                        let r = format!(
                            "HTTP/1.0 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = s.write_all(r.as_bytes()).await;
                    }
                    // Holds the connection open without a word.
                    None => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    (url, seen)
}

fn vector(values: &[&str]) -> String {
    let series: Vec<String> = values
        .iter()
        .map(|v| format!(r#"{{"metric":{{}},"value":[1700000000.5,"{v}"]}}"#))
        .collect();
    format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
        series.join(",")
    )
}

/// Each query is asked as `GET /api/v1/query?query=…`; series are summed;
/// a bad query (HTTP 400 with Prometheus's error) and one never answered
/// are `null` and counted as failures, and the others still come through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_queries_their_values_and_failures() {
    let (url, seen) = prometheus(|path| {
        if path.contains("query=conns") {
            Some((200, vector(&["3", "4.5"])))
        } else if path.contains("query=bad") {
            let e = r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
            Some((400, e.to_string()))
        } else {
            None
        }
    })
    .await;
    let w = ServerWatch {
        pid: None,
        prometheus: Some(url.parse().unwrap()),
        queries: BTreeMap::from([
            ("conns".to_string(), "conns".to_string()),
            ("bad".to_string(), "bad(".to_string()),
            ("slow".to_string(), "slow".to_string()),
        ]),
    };
    let bound = QUERY_TIMEOUT.as_secs() + 5;
    let mut p = within(
        bound,
        "first queries",
        ServerProbe::start(&w, Duration::from_secs(60)),
    )
    .await
    .unwrap();
    let r = p.read(0.0);
    assert_eq!(r.queries["conns"], Some(7.5), "two series summed");
    assert_eq!(r.queries["bad"], None);
    assert_eq!(r.queries["slow"], None, "no answer within the timeout");
    assert_eq!(r.cpu_seconds, None, "no pid");
    assert_eq!(p.watched().query_failures, 2);
    let lines = seen.lock().unwrap().clone();
    assert!(
        lines.contains(&"GET /api/v1/query?query=bad%28 HTTP/1.0".to_string()),
        "{lines:?}"
    );
}

/// A capacity search with the server watched: this test's own process runs
/// the relay, so its CPU is the server's. Each step has the server's cores,
/// the knee its participants per server core, every sample the server's
/// figures and the Prometheus query's value, and the text and the HTML
/// page show them, and the report keeps to its schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_with_the_server_watched() {
    let r = within(10, "relay start", Relay::start(RelayConfig::default()))
        .await
        .expect("relay starts");
    let (url, _) = prometheus(|_| Some((200, vector(&["12"])))).await;
    let yaml = format!(
        r#"
ramp_up_delay_ms: 10
timeline_interval: 500ms
server:
  pid: {pid}
  prometheus: {url}
  queries:
    sessions: videocall_sessions
search:
  start: 2
  step: 2
  max: 4
  hold: 1500ms
  meeting_size: 2
  enable_video: false
  ignore_saturation: true
  slo:
    audio_lost: "< 1000000"
"#,
        pid = std::process::id()
    );
    let s = settings(&yaml, &r);
    let o = within(60, "search", run::run(s, quiet(), std::future::pending()))
        .await
        .unwrap();
    let rep = &o.report;
    let se = rep.search.as_ref().unwrap();
    assert_eq!(se.knee, Some(4), "{:#?}", se.steps);
    for st in &se.steps {
        let c = st.server_cores.expect("each step has the server's cores");
        assert!(c > 0.0, "the relay and the clients ran here: {c}");
    }
    let at_knee = se.server_cores_at_knee.unwrap();
    assert_eq!(at_knee, se.steps[1].server_cores.unwrap());
    let per_core = se.participants_per_server_core.unwrap();
    assert!(
        (per_core - 4.0 / at_knee).abs() < 0.01 * per_core,
        "{per_core}"
    );

    let cost = rep.server_cost.as_ref().expect("server_cost");
    assert_eq!(cost.pid, Some(std::process::id()));
    assert!(cost.cpu_seconds.unwrap() > 0.0);
    assert!(cost.cores_max.unwrap() >= cost.cores_mean.unwrap() * 0.5);
    assert!(cost.rss_peak_mb.unwrap() > 1.0);
    assert_eq!(cost.queries["sessions"].last, Some(12.0));
    assert_eq!(cost.query_failures, 0);
    let samples = &rep.timeline.as_ref().unwrap().samples;
    assert!(samples.len() >= 4);
    for s in samples {
        let sv = s.server.as_ref().expect("every sample has the server");
        assert!(sv.rss_mb.is_some());
        assert_eq!(sv.queries["sessions"], Some(12.0));
    }
    crate::cli::validate_against_schema(&serde_json::to_value(rep).unwrap());
    let text = rep.summary();
    assert!(text.contains("server beside the run"), "{text}");
    let html = synth_replayer::html::render(rep);
    assert!(html.contains("Server beside the run"), "the server plot");
    assert!(html.contains("participants per server core"));
    r.shutdown().await;
}
