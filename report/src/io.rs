//! Reports on disk: written whole (through a temporary file renamed into
//! place), read back typed for `report merge` and `report diff` (this
//! schema version only), or as JSON for `report html` (any version).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::Value;

use crate::model::{Report, SCHEMA, SCHEMA_VERSION};

/// Writes `contents` to `path` through a temporary file beside it, renamed
/// into place, so a reader never sees half of it.
pub fn write_atomic(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, contents)
        .with_context(|| format!("writing {}", Path::new(&tmp).display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

impl Report {
    /// Writes the JSON report (its folder made first; written whole).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the report's folder {}", dir.display()))?;
        }
        let json = serde_json::to_vec_pretty(self).context("encoding the report")?;
        write_atomic(path, &json).with_context(|| format!("writing report {}", path.display()))
    }

    /// Reads a JSON report written by [`Report::write`]: one line of error
    /// naming the file when it is missing, not JSON, not a synth-replay
    /// report, or of another [`SCHEMA_VERSION`].
    pub fn read(path: &Path) -> anyhow::Result<Report> {
        let shown = path.display();
        let bytes = std::fs::read(path).with_context(|| format!("report {shown}: cannot read"))?;
        let v: Value =
            serde_json::from_slice(&bytes).with_context(|| format!("report {shown}: not JSON"))?;
        if v.get("schema").and_then(|s| s.as_str()) != Some(SCHEMA) {
            anyhow::bail!(
                "report {shown}: not a synth-replay report (no \"schema\": \"{SCHEMA}\")"
            );
        }
        match v.get("version").and_then(|n| n.as_u64()) {
            Some(n) if n == u64::from(SCHEMA_VERSION) => {}
            n => anyhow::bail!(
                "report {shown}: schema version {} is not {SCHEMA_VERSION}, the one this synth-replay reads",
                n.map_or("missing".to_string(), |n| n.to_string())
            ),
        }
        serde_json::from_value(v).with_context(|| format!("report {shown}: not a valid report"))
    }
}

/// Reads `path` as a `synth-replay` report of any version: a JSON object
/// whose `schema` is `"synth-replay-report"`. Each error is one line
/// naming the file.
pub fn read_any(path: &Path) -> anyhow::Result<Value> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading report {}", path.display()))?;
    let v: Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("report {} is not JSON", path.display()))?;
    match v.get("schema").and_then(Value::as_str) {
        Some(SCHEMA) => Ok(v),
        _ => anyhow::bail!(
            "{} is not a synth-replay report (no \"schema\": \"{SCHEMA}\")",
            path.display()
        ),
    }
}

/// Checks before a run that its report can be written to `path`: not a
/// directory, its folder creatable, and a file creatable there.
pub fn check_path(path: &Path) -> anyhow::Result<()> {
    if path.is_dir() {
        anyhow::bail!("report {} is a directory: give a file name", path.display());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("report {}: creating its folder", path.display()))?;
    }
    let probe = path.with_extension("json.tmp");
    std::fs::write(&probe, b"")
        .with_context(|| format!("report {}: cannot write there", path.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Where the report goes when its own path could not be written at the end:
/// the working folder, or the temporary one when that is not writable.
pub fn fallback_path() -> PathBuf {
    let name = format!(
        "synth-replay-report-{}.json",
        synth_common::clock::unix_secs()
    );
    let here = PathBuf::from(&name);
    if std::fs::write(&here, b"").is_ok() {
        return here;
    }
    std::env::temp_dir().join(name)
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
        assert_eq!(read_any(&ok).unwrap()["version"], 2);
        let e = |path: &Path| format!("{:#}", read_any(path).unwrap_err());
        assert!(e(&dir.path().join("none.json")).contains("reading report"));
        assert!(e(&p("bad.json", "{not json")).contains("is not JSON"));
        assert!(e(&p("other.json", r#"{"schema": "x"}"#)).contains("not a synth-replay report"));
        assert!(e(&p("list.json", "[1]")).contains("not a synth-replay report"));
        let typed = |path: &Path| format!("{:#}", Report::read(path).unwrap_err());
        assert!(typed(&ok).contains("schema version 2 is not 3"));
        assert!(typed(&p(
            "half.json",
            r#"{"schema": "synth-replay-report", "version": 3}"#
        ))
        .contains("not a valid report"));
    }

    #[test]
    fn write_replaces_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.html");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left");
    }
}
