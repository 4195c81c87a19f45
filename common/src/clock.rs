//! The wall clock both sides stamp packets with.
//!
//! Media timestamps on the wire are milliseconds since the Unix epoch (as
//! browsers stamp them). Latency is measured against this clock only between
//! a sender and a receiver of the same process, which share it exactly.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, with sub-millisecond precision; 0 if
/// the clock is before 1970.
pub fn unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Whole milliseconds since the Unix epoch (MEETING_STARTED's `start_time_ms`).
pub fn unix_ms_u64() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Whole seconds since the Unix epoch (JWT `exp`).
pub fn unix_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_agree() {
        let (ms, whole, s) = (unix_ms(), unix_ms_u64(), unix_secs());
        // Read one after another: the same second, give or take one.
        assert!((whole as f64 - ms).abs() < 1000.0);
        assert!((s - (whole / 1000) as i64).abs() <= 1);
        assert!(s > 1_700_000_000, "after 2023");
    }
}
