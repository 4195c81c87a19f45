//! The server beside the run: the file's `server:` (and `--server-pid`)
//! checked into a [`ServerWatch`], which says where the server's own cost
//! is read while the run goes.
//!
//! Both sources may be given together: a server on this host whose process
//! is read from `/proc`, and a Prometheus server with figures of its own
//! (connections, queue depths) that `/proc` cannot give.

use std::collections::BTreeMap;

use anyhow::bail;

use super::file::ServerSpec;
use super::overrides::Overrides;

/// The most Prometheus queries of one config: each is an HTTP request every
/// timeline interval.
pub const MAX_QUERIES: usize = 16;

/// Where the server's cost is read, checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerWatch {
    /// The server's process on this host. Whether it exists is checked when
    /// the run starts (a config may be checked on another machine).
    pub pid: Option<u32>,
    /// Base URL of a Prometheus server (`http://`, without a trailing `/`).
    pub prometheus: Option<url::Url>,
    /// Instant PromQL queries by name.
    pub queries: BTreeMap<String, String>,
}

/// The `server` section with `--server-pid` over its `pid`; `None` when
/// neither says anything.
pub(super) fn server_watch(
    spec: Option<&ServerSpec>,
    o: &Overrides,
) -> anyhow::Result<Option<ServerWatch>> {
    let spec = match (spec, o.server_pid) {
        (None, None) => return Ok(None),
        (spec, pid) => {
            let mut spec = spec.cloned().unwrap_or_default();
            spec.pid = pid.or(spec.pid);
            spec
        }
    };
    if spec.pid == Some(0) {
        bail!("server.pid: 0 is not a process id");
    }
    let prometheus = match &spec.prometheus {
        Some(u) => Some(prometheus_url(u)?),
        None => None,
    };
    match (&prometheus, spec.queries.is_empty()) {
        (Some(_), true) => {
            bail!("server.prometheus is set but server.queries is empty: name at least one PromQL query, e.g. `queries: {{cpu: 'rate(process_cpu_seconds_total[15s])'}}`")
        }
        (None, false) => {
            bail!("server.queries needs server.prometheus, the Prometheus server to ask")
        }
        _ => {}
    }
    if spec.pid.is_none() && prometheus.is_none() {
        bail!("server: give `pid` (a process on this host), `prometheus` with `queries`, or both");
    }
    if spec.queries.len() > MAX_QUERIES {
        bail!(
            "server.queries has {} queries, more than {MAX_QUERIES}",
            spec.queries.len()
        );
    }
    for (name, q) in &spec.queries {
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            bail!("server.queries: the name {name:?} may only have letters, digits, `_` and `-`");
        }
        if q.trim().is_empty() {
            bail!("server.queries.{name} is empty");
        }
    }
    Ok(Some(ServerWatch {
        pid: spec.pid,
        prometheus,
        queries: spec.queries,
    }))
}

/// A Prometheus base URL: `http://host[:port][/path]`, no query.
fn prometheus_url(s: &str) -> anyhow::Result<url::Url> {
    let u = url::Url::parse(s.trim())
        .map_err(|e| anyhow::anyhow!("server.prometheus {s:?} is not a URL: {e}"))?;
    match u.scheme() {
        "http" => {}
        "https" => bail!(
            "server.prometheus {s:?}: https is not supported; give the Prometheus server's plain http:// address"
        ),
        other => bail!("server.prometheus {s:?}: the scheme must be http, not {other}"),
    }
    if u.host_str().is_none_or(str::is_empty) {
        bail!("server.prometheus {s:?} has no host");
    }
    if u.query().is_some() || u.fragment().is_some() {
        bail!("server.prometheus {s:?}: give the base URL, without `?` or `#`");
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, Settings};

    fn resolve(server: &str, o: &Overrides) -> anyhow::Result<Option<ServerWatch>> {
        let yaml = format!("clients: [{{user_id: a, meeting_id: m}}]\n{server}");
        Ok(Settings::resolve(parse(&yaml)?, o, &|_| None)?.server)
    }

    fn err(server: &str) -> String {
        format!("{:#}", resolve(server, &Overrides::default()).unwrap_err())
    }

    #[test]
    fn pid_prometheus_or_both() {
        let o = Overrides::default();
        assert_eq!(resolve("", &o).unwrap(), None);
        let w = resolve("server: {pid: 1234}\n", &o).unwrap().unwrap();
        assert_eq!(
            (w.pid, w.prometheus, w.queries.len()),
            (Some(1234), None, 0)
        );
        let w = resolve(
            "server:\n  pid: 7\n  prometheus: http://127.0.0.1:9090\n  queries:\n    cpu: rate(process_cpu_seconds_total[15s])\n",
            &o,
        )
        .unwrap()
        .unwrap();
        assert_eq!(w.pid, Some(7));
        assert_eq!(w.prometheus.unwrap().as_str(), "http://127.0.0.1:9090/");
        assert_eq!(w.queries["cpu"], "rate(process_cpu_seconds_total[15s])");
    }

    /// `--server-pid` wins over the file's pid, and stands alone without a section.
    #[test]
    fn the_flag_wins_over_the_file() {
        let o = Overrides {
            server_pid: Some(42),
            ..Overrides::default()
        };
        let w = resolve("server: {pid: 1}\n", &o).unwrap().unwrap();
        assert_eq!(w.pid, Some(42));
        let w = resolve("", &o).unwrap().unwrap();
        assert_eq!((w.pid, w.prometheus), (Some(42), None));
    }

    #[test]
    fn bad_sections_are_one_line_errors() {
        assert!(
            err("server: {}\n").contains("give `pid`"),
            "{}",
            err("server: {}\n")
        );
        assert!(err("server: {pid: 0}\n").contains("not a process id"));
        let e = err("server: {pid: -3}\n");
        assert!(e.contains("line 2") && e.contains("invalid u32"), "{e}");
        assert!(err("server: {port: 3}\n").contains("unknown field `port`"));
        let e = err("server: {prometheus: 'ftp://127.0.0.1:9090', queries: {a: up}}\n");
        assert!(e.contains("must be http, not ftp"), "{e}");
        let e = err("server: {prometheus: 'https://127.0.0.1:9090', queries: {a: up}}\n");
        assert!(e.contains("https is not supported"), "{e}");
        let e = err("server: {prometheus: '127.0.0.1:9090', queries: {a: up}}\n");
        assert!(e.contains("server.prometheus"), "{e}");
        let e = err("server: {prometheus: 'http://127.0.0.1:9090'}\n");
        assert!(e.contains("queries is empty"), "{e}");
        let e = err("server: {pid: 3, queries: {a: up}}\n");
        assert!(e.contains("needs server.prometheus"), "{e}");
        let e = err("server: {prometheus: 'http://127.0.0.1:9090', queries: {'a b': up}}\n");
        assert!(e.contains("only have letters"), "{e}");
        let e = err("server: {prometheus: 'http://127.0.0.1:9090', queries: {a: ' '}}\n");
        assert!(e.contains("server.queries.a is empty"), "{e}");
        let many: Vec<String> = (0..=MAX_QUERIES).map(|i| format!("q{i}: up")).collect();
        let e = err(&format!(
            "server: {{prometheus: 'http://127.0.0.1:9090', queries: {{{}}}}}\n",
            many.join(", ")
        ));
        assert!(e.contains("more than 16"), "{e}");
        for e in [err("server: {}\n"), err("server: {pid: 0}\n")] {
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
