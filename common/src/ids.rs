//! Participant and meeting ids, checked against the videocall-rs server's rule.
//!
//! The server URL-decodes each id, turns spaces into `_`, and accepts only
//! `^[a-zA-Z0-9_-]*$`; an empty id is refused too. Checking before connecting
//! turns a session rejected after its handshake into a config error that names the id.

/// Why an id would be refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The id is empty.
    #[error("id is empty")]
    Empty,
    /// The id is longer than the server accepts in a URL path segment here.
    #[error("id {0:?} is longer than {MAX_LEN} bytes")]
    TooLong(String),
    /// The id has a character outside `[a-zA-Z0-9_-]` (a space counts as `_`).
    #[error("id {id:?} has {ch:?}: only letters, digits, '_' and '-' are allowed")]
    BadChar {
        /// The id.
        id: String,
        /// The first offending character.
        ch: char,
    },
}

/// Longest id accepted (keeps URLs and packets small; the server has no lower limit).
pub const MAX_LEN: usize = 128;

/// Checks `id` against the server's rule (after the server's own normalisation).
pub fn check(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if id.len() > MAX_LEN {
        return Err(IdError::TooLong(id.to_owned()));
    }
    match id
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ' '))
    {
        Some(ch) => Err(IdError::BadChar {
            id: id.to_owned(),
            ch,
        }),
        None => Ok(()),
    }
}

/// The id as the server will see it: spaces become `_`.
pub fn normalize(id: &str) -> String {
    id.replace(' ', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_rule() {
        for ok in ["bot001", "a-b_C9", "room 1", "x"] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        assert_eq!(check(""), Err(IdError::Empty));
        for (bad, ch) in [
            ("a.b", '.'),
            ("me@x", '@'),
            ("a/b", '/'),
            ("é", 'é'),
            ("a%20", '%'),
        ] {
            assert_eq!(check(bad), Err(IdError::BadChar { id: bad.into(), ch }));
        }
        assert!(matches!(check(&"a".repeat(129)), Err(IdError::TooLong(_))));
        assert_eq!(normalize("room 1"), "room_1");
    }
}
