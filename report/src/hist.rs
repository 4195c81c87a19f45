//! Histograms carried in the report, so that reports of several pods can be
//! merged exactly: HdrHistogram's V2 deflate format, in base64.
//!
//! Every histogram of the run (latency, jitter, lateness, connect time …)
//! spans 1 µs to 1 hour at 3 significant digits ([`new`]); distributions over
//! pairs (rates, shares) are recorded as scaled integers in the same shape.

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use hdrhistogram::Histogram;

/// The largest value any report histogram holds: one hour in µs.
pub const HIGHEST: u64 = 3_600_000_000;

/// An empty histogram of the report's shape: 1 to [`HIGHEST`], 3 significant digits.
pub fn new() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST, 3).expect("static histogram bounds are valid")
}

/// `h` in V2 deflate format, base64; `None` when it is empty.
pub fn encode(h: &Histogram<u64>) -> Option<String> {
    if h.is_empty() {
        return None;
    }
    let mut buf = Vec::new();
    V2DeflateSerializer::new().serialize(h, &mut buf).ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(buf))
}

/// A histogram of `values × scale` (rounded, negatives as 0), encoded;
/// `None` when there are none.
pub fn encode_values(values: &[f64], scale: f64) -> Option<String> {
    let mut h = new();
    for v in values {
        // Zero stays zero (HdrHistogram counts it below its lowest
        // discernible value): a receiver with no freeze is not one with one.
        h.saturating_record(((v * scale).round().max(0.0) as u64).min(HIGHEST));
    }
    encode(&h)
}

/// Decodes what [`encode`] wrote.
pub fn decode(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("not base64 ({e})"))?;
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("not an HdrHistogram ({e:?})"))?;
    Ok(h)
}

/// Adds every encoded histogram of `parts` (skipping `None`) into one of the
/// report's shape; `Ok(None)` when all are empty.
pub fn merge<'a>(
    parts: impl IntoIterator<Item = Option<&'a str>>,
) -> Result<Option<Histogram<u64>>, String> {
    let mut all = new();
    let mut any = false;
    for p in parts.into_iter().flatten() {
        let h = decode(p)?;
        all.add(&h)
            .map_err(|e| format!("histogram out of range ({e:?})"))?;
        any = true;
    }
    Ok(any.then_some(all))
}

/// The `q` quantile of a histogram of scaled values, unscaled: the lowest
/// value of its bucket, so a value recorded on a bucket's edge (a whole
/// 30 fps) comes back as it was, and any other at most 0.1 % below.
pub fn quantile(h: &Histogram<u64>, q: f64, scale: f64) -> Option<f64> {
    (!h.is_empty()).then(|| h.lowest_equivalent(h.value_at_quantile(q)) as f64 / scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_every_count() {
        let mut h = new();
        for v in [1u64, 7, 1_000, 20_000, 20_001, 3_000_000, HIGHEST] {
            h.record(v).unwrap();
        }
        let back = decode(&encode(&h).unwrap()).unwrap();
        assert_eq!(back, h);
        assert_eq!(encode(&new()), None, "empty is None");
    }

    #[test]
    fn merged_histograms_equal_one_histogram_of_everything() {
        let (mut a, mut b, mut all) = (new(), new(), new());
        for v in 1..=5_000u64 {
            let h = if v % 3 == 0 { &mut a } else { &mut b };
            h.record(v * 37).unwrap();
            all.record(v * 37).unwrap();
        }
        let (ea, eb) = (encode(&a), encode(&b));
        let m = merge([ea.as_deref(), None, eb.as_deref()])
            .unwrap()
            .unwrap();
        assert_eq!(m, all);
        assert_eq!(merge([None, None]).unwrap(), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode("%%%").is_err());
        assert!(decode("AAAA").is_err());
        assert!(merge([Some("bm90IGEgaGlzdG9ncmFt")]).is_err());
    }

    /// Regression: zeros were recorded as 1, so the median of freezes per
    /// receiver (mostly none) read 1 once taken from the histogram.
    #[test]
    fn zero_values_stay_zero() {
        let h = decode(&encode_values(&[0.0, 0.0, 0.0, 2.0], 1.0).unwrap()).unwrap();
        assert_eq!(quantile(&h, 0.5, 1.0), Some(0.0));
        assert_eq!(h.len(), 4);
        assert_eq!(quantile(&h, 1.0, 1.0), Some(2.0));
    }

    /// Regression: the quantile was the highest value of its bucket, so a
    /// rate of 30 fps recorded as 30000 read 30.015.
    #[test]
    fn scaled_values_come_back_unscaled() {
        let h = decode(&encode_values(&[29.5, 30.0, 30.0, 30.0], 1000.0).unwrap()).unwrap();
        // Within the histogram's precision: 3 significant digits.
        assert!((quantile(&h, 0.5, 1000.0).unwrap() - 30.0).abs() < 0.03);
        assert!((quantile(&h, 0.0, 1000.0).unwrap() - 29.5).abs() < 0.03);
        assert_eq!(quantile(&crate::hist::new(), 0.5, 1000.0), None);
    }
}
