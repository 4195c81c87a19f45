//! The config parser and the plan's expansion (groups, templates, pods,
//! thresholds) on any text: a config error, or settings, never a panic, an
//! abort or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use synth_replayer::config::{self, Overrides, Settings};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(file) = config::parse(text) else { return };
    let _ = Settings::resolve(file, &Overrides::default(), &|_| None);
});
