//! What the config's unit tests share.

use super::file::parse;
use super::overrides::Overrides;
use super::settings::Settings;

/// `yaml` resolved over `o`, with no environment.
pub(super) fn resolve(yaml: &str, o: &Overrides) -> anyhow::Result<Settings> {
    Settings::resolve(parse(yaml)?, o, &|_| None)
}

/// Each config of `cases` fails with one line that holds its `want`.
pub(super) fn assert_errors(cases: &[(&str, &str)]) {
    for (yaml, want) in cases {
        let e = resolve(yaml, &Overrides::default()).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains(want), "{yaml:?}: got {msg:?}, want {want:?}");
        assert!(!msg.contains('\n'), "one line: {msg:?}");
    }
}
