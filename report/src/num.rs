//! Rounding and small statistics the report's figures share.

/// `v` rounded to 3 decimals, as the report writes most figures.
pub fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// `v` rounded to 6 decimals (shares).
pub fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// Unix milliseconds as UTC `[year, month, day, hour, minute, second]`
/// (civil from days, Howard Hinnant's algorithm).
pub fn utc_parts(ms: f64) -> [i64; 6] {
    let secs = (ms / 1000.0).floor() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    [y, m, d, rem / 3600, rem % 3600 / 60, rem % 60]
}

/// The `q` quantile of `v` (sorted in place), nearest rank.
pub fn quantile(v: &mut [f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

/// Frame bitrate, the pack's bitrate (kbps) and the error between them (%),
/// rounded as reported, from the frame bits sent, the bits the pack's
/// bitrate would have sent, and the active seconds they were sent in.
pub fn bitrates(
    bits: f64,
    target_bits: f64,
    active_s: f64,
) -> (Option<f64>, Option<f64>, Option<f64>) {
    let bitrate = (active_s > 0.0).then(|| bits / active_s / 1000.0);
    let target = (active_s > 0.0).then(|| target_bits / active_s / 1000.0);
    let err = match (bitrate, target) {
        (Some(b), Some(t)) if t > 0.0 => Some(((b - t) / t * 100.0).abs()),
        _ => None,
    };
    (bitrate.map(round3), target.map(round3), err.map(round3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let mut v = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile(&mut v, 0.5), Some(3.0));
        assert_eq!(quantile(&mut v, 0.05), Some(1.0));
        assert_eq!(quantile(&mut v, 1.0), Some(5.0));
        assert_eq!(quantile(&mut [], 0.5), None);
    }

    #[test]
    fn bitrates_and_their_error() {
        assert_eq!(
            bitrates(64_000.0, 32_000.0, 1.0),
            (Some(64.0), Some(32.0), Some(100.0))
        );
        assert_eq!(bitrates(1.0, 1.0, 0.0), (None, None, None));
        assert_eq!(bitrates(1.0, 0.0, 1.0).2, None, "no target, no error");
    }
}
