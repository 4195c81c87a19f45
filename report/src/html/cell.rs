//! How the page writes a value: escaped text, numbers for people, a dash
//! for a value the report does not have.

/// `s` safe in HTML text and in quoted attributes.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A number for people: whole numbers as such, others with 1 to 3 decimals.
pub fn fmt(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{v:.0}");
    }
    let s = match v.abs() {
        a if a >= 100.0 => format!("{v:.1}"),
        a if a >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    };
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A number that may be missing (a dash).
pub fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), fmt)
}

/// A count.
pub fn n(v: impl Into<u64>) -> String {
    fmt(v.into() as f64)
}

/// A count held in a `usize`.
pub fn us(v: usize) -> String {
    fmt(v as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_for_people() {
        assert_eq!(fmt(3.0), "3");
        assert_eq!(fmt(180.25), "180.2");
        assert_eq!(fmt(9.5), "9.5");
        assert_eq!(fmt(0.0012), "0.001");
        assert_eq!(fmt(f64::NAN), "–");
        assert_eq!(opt(None), "–");
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
