//! The wall clock both sides stamp packets with.
//!
//! Media timestamps on the wire are milliseconds since the Unix epoch (as
//! browsers stamp them). Latency is measured against this clock only between
//! a sender and a receiver of the same process, which share it exactly.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, with sub-millisecond precision; 0 if
/// the clock is before 1970.
pub fn unix_ms() -> f64 {
    ms_at(SystemTime::now())
}

/// Whole milliseconds since the Unix epoch (MEETING_STARTED's `start_time_ms`).
pub fn unix_ms_u64() -> u64 {
    whole_ms_at(SystemTime::now())
}

/// Whole seconds since the Unix epoch (JWT `exp`).
pub fn unix_secs() -> i64 {
    secs_at(SystemTime::now())
}

fn since_epoch(t: SystemTime) -> Duration {
    t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO)
}

fn ms_at(t: SystemTime) -> f64 {
    since_epoch(t).as_secs_f64() * 1000.0
}

fn whole_ms_at(t: SystemTime) -> u64 {
    u64::try_from(since_epoch(t).as_millis()).unwrap_or(u64::MAX)
}

fn secs_at(t: SystemTime) -> i64 {
    i64::try_from(since_epoch(t).as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_agree_on_one_instant() {
        let t = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        assert!((ms_at(t) - 1_700_000_000_123.456).abs() < 1e-3);
        assert_eq!(whole_ms_at(t), 1_700_000_000_123);
        assert_eq!(secs_at(t), 1_700_000_000);
        // Before 1970: 0, not a panic or a negative time.
        let early = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(
            (ms_at(early), whole_ms_at(early), secs_at(early)),
            (0.0, 0, 0)
        );
    }

    #[test]
    fn reads_the_system_clock() {
        // Only that it reads a clock at all (a real one is past 2023).
        assert!(unix_secs() > 1_700_000_000);
        assert!(unix_ms() > 1.7e12 && unix_ms_u64() > 1_700_000_000_000);
    }
}
