//! Keeping secrets out of logs, errors and reports.
//!
//! Session URLs carry a JWT in `?token=` and may carry a password
//! (`https://user:pass@host`). Anything that prints a URL prints it through
//! [`url()`]. A value a user wrote goes into an error through [`shown`], so a
//! pasted secret or a megabyte of YAML is echoed only in part.

/// What a secret is replaced with.
pub const REDACTED: &str = "REDACTED";

/// `u` with its password and the value of every `token` query parameter
/// replaced by [`REDACTED`].
pub fn url(u: &url::Url) -> String {
    let has_token = u.query_pairs().any(|(k, _)| k == "token");
    if !has_token && u.password().is_none() {
        return u.to_string();
    }
    let mut c = u.clone();
    if c.password().is_some() {
        let _ = c.set_password(Some(REDACTED));
    }
    if has_token {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "token" {
                    REDACTED.into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        c.query_pairs_mut().clear().extend_pairs(pairs);
    }
    c.to_string()
}

/// Characters of a user's value an error echoes before it cuts with `…`.
pub const SHOWN_CHARS: usize = 100;

/// `s` as an error shows it: at most [`SHOWN_CHARS`] characters, then `…`.
pub fn shown(s: &str) -> String {
    match s.char_indices().nth(SHOWN_CHARS) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

/// A URL given as text: parsed and redacted, or (unparseable) cut before any
/// `?` and `@`, so a secret never survives either way.
pub fn url_str(s: &str) -> String {
    match url::Url::parse(s) {
        Ok(u) => url(&u),
        Err(_) => {
            let head = s.split('?').next().unwrap_or("");
            match head.rsplit_once('@') {
                Some((_, host)) => format!("{REDACTED}@{host}"),
                None => head.to_owned(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_and_password_are_hidden() {
        let u = url::Url::parse("https://127.0.0.1:4433/lobby?token=eyJabc.def.ghi").unwrap();
        assert_eq!(url(&u), "https://127.0.0.1:4433/lobby?token=REDACTED");
        let u = url::Url::parse("https://me:s3cret@127.0.0.1/lobby?a=1&token=x").unwrap();
        let shown = url(&u);
        assert!(
            !shown.contains("s3cret") && !shown.contains("token=x"),
            "{shown}"
        );
        assert!(shown.contains("a=1"), "{shown}");
        let plain = "https://127.0.0.1:4433/lobby/alice/m1";
        assert_eq!(url(&url::Url::parse(plain).unwrap()), plain);
    }

    #[test]
    fn long_values_are_cut() {
        assert_eq!(shown("short"), "short");
        let exact = "é".repeat(SHOWN_CHARS);
        assert_eq!(shown(&exact), exact);
        let long = format!("{exact}xyz");
        assert_eq!(shown(&long), format!("{exact}…"));
    }

    #[test]
    fn unparseable_text_is_cut() {
        assert_eq!(url_str("not a url?token=abc"), "not a url");
        assert_eq!(url_str("bad://u:p@h:x"), "REDACTED@h:x");
    }
}
