//! The config parser and the plan's expansion (groups, templates, pods,
//! thresholds) on any text, and the behaviour schedule it draws (phases,
//! churn, storms, actions, turns): a config error, or settings and a
//! schedule, never a panic, an abort or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use synth_scenario::config::{self, Overrides, Settings};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(file) = config::parse(text) else { return };
    let Ok(s) = Settings::resolve(file, &Overrides::default(), &|_| None) else {
        return;
    };
    let starts: Vec<std::time::Duration> = (0..s.clients.len() as u32)
        .map(|i| s.ramp_up_delay.saturating_mul(i))
        .collect();
    let _ = synth_scenario::plan::draw(&s, &starts);
});
