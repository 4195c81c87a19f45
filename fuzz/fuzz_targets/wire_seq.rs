//! The wire parser on incoming packets, and the loss tracker and receive
//! quality on the sequence numbers they carry: nothing panics, and the
//! counts keep their invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use synth_common::quality::{Exact, Stream};
use synth_common::wire;

fuzz_target!(|data: &[u8]| {
    // Packets are length-prefixed (one byte) runs of the input.
    let mut streams = [Stream::new(false), Stream::new(true)];
    let mut rest = data;
    let mut t = 0.0f64;
    while let Some((&n, tail)) = rest.split_first() {
        let n = (n as usize).min(tail.len());
        let (pkt, tail) = tail.split_at(n);
        rest = tail;
        let Ok(p) = wire::parse(pkt) else { continue };
        let _ = wire::parse_meeting(p.data);
        let Ok(m) = wire::parse_media(p.data) else { continue };
        t += (n as f64) * 0.7;
        if let Some(seq) = m.sequence {
            let s = &mut streams[(m.media_type & 1) as usize];
            s.see(seq, m.timestamp_ms, t, m.codec % 2 == 0, 200.0);
            let c = s.counts();
            assert!(c.missing() <= c.span());
            assert!(c.received >= c.duplicate);
            let e = Exact::check(c, seq, seq.saturating_add(1));
            assert!(e.lost <= e.expected);
        }
    }
    for s in &streams {
        // Timestamps come from the input (NaN and infinities included).
        let sum = s.summary();
        let _ = (sum.rate(), sum.freeze_share());
    }
});
