//! Reports read back from their JSON files (`synth-replay report …`), and
//! files written from them.
//!
//! A saved report is handled as a JSON value, not as
//! [`crate::report::Report`], so that reports of every version can be read.

use std::path::Path;

use anyhow::Context as _;
use serde_json::Value;

/// Reads `path` as a `synth-replay` report: a JSON object whose `schema` is
/// `"synth-replay-report"`. Each error is one line naming the file.
pub fn read(path: &Path) -> anyhow::Result<Value> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading report {}", path.display()))?;
    let v: Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("report {} is not JSON", path.display()))?;
    match v.get("schema").and_then(Value::as_str) {
        Some("synth-replay-report") => Ok(v),
        _ => anyhow::bail!(
            "{} is not a synth-replay report (no \"schema\": \"synth-replay-report\")",
            path.display()
        ),
    }
}

/// Writes `contents` to `path` through a temporary file beside it, renamed
/// into place, so a reader never sees half of it.
pub fn write(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, contents)
        .with_context(|| format!("writing {}", Path::new(&tmp).display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_reports() {
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let ok = p(
            "ok.json",
            r#"{"schema": "synth-replay-report", "version": 2}"#,
        );
        assert_eq!(read(&ok).unwrap()["version"], 2);
        let e = |path: &Path| format!("{:#}", read(path).unwrap_err());
        assert!(e(&dir.path().join("none.json")).contains("reading report"));
        assert!(e(&p("bad.json", "{not json")).contains("is not JSON"));
        assert!(e(&p("other.json", r#"{"schema": "x"}"#)).contains("not a synth-replay report"));
        assert!(e(&p("list.json", "[1]")).contains("not a synth-replay report"));
    }

    #[test]
    fn write_replaces_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.html");
        write(&p, b"one").unwrap();
        write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left");
    }
}
