//! Who may connect: the two URL forms of the upstream server.
//!
//! - `/lobby/{user_id}/{meeting_id}`: ids URL-decoded, spaces turned into `_`,
//!   checked against the server's id rule; refused when only tokens are allowed.
//! - `/lobby?token=JWT` (any path under `/lobby`): a token wins over the path,
//!   and needs the relay to have a secret; the claims give the ids.

use synth_common::ids::{self, IdError};
use url::Url;
use videocall_types::SYSTEM_USER_ID;

use super::session::Identity;
use synth_common::jwt::{self, JwtError};

/// Why a session was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The path is neither form.
    #[error("path is not /lobby/{{user_id}}/{{meeting_id}} or /lobby?token=")]
    BadPath,
    /// An id breaks the server's rule.
    #[error("bad id: {0}")]
    BadId(#[from] IdError),
    /// The path form while tokens are required.
    #[error("a token is required (/lobby?token=JWT)")]
    TokenRequired,
    /// A token, but the relay has no secret to check it with.
    #[error("token given but the relay has no JWT secret")]
    NoSecret,
    /// The token did not verify.
    #[error("{0}")]
    Token(#[from] JwtError),
    /// The reserved system user id.
    #[error("user id is reserved")]
    Reserved,
}

impl Refusal {
    /// A short fixed label for counting refusals by reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::BadPath => "bad_path",
            Refusal::BadId(_) => "bad_id",
            Refusal::TokenRequired => "token_required",
            Refusal::NoSecret => "no_jwt_secret",
            Refusal::Token(e) => e.reason(),
            Refusal::Reserved => "reserved_id",
        }
    }
}

/// Decides whether a CONNECT to `url` is admitted, and as whom.
pub(crate) fn admit(
    url: &Url,
    secret: Option<&[u8]>,
    require_token: bool,
) -> Result<Identity, Refusal> {
    let path = percent_decode(url.path()).ok_or(Refusal::BadPath)?;
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if parts.first() != Some(&"lobby") {
        return Err(Refusal::BadPath);
    }
    let token = url
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned());
    if let Some(token) = token {
        let secret = secret.ok_or(Refusal::NoSecret)?;
        let c = jwt::verify(&token, secret)?;
        ids::check(&c.room)?;
        if c.sub == SYSTEM_USER_ID {
            return Err(Refusal::Reserved);
        }
        return Ok(Identity {
            user_id: c.sub,
            room: c.room,
            display_name: c.display_name,
            observer: c.observer,
        });
    }
    if require_token {
        return Err(Refusal::TokenRequired);
    }
    let [_, user, room] = parts[..] else {
        return Err(Refusal::BadPath);
    };
    ids::check(user)?;
    ids::check(room)?;
    let user = ids::normalize(user);
    Ok(Identity {
        display_name: user.clone(),
        user_id: user,
        room: ids::normalize(room),
        observer: false,
    })
}

/// Decodes `%XX` escapes; `None` if an escape is malformed or the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use synth_common::jwt::Claims;

    fn url(s: &str) -> Url {
        Url::parse(&format!("https://127.0.0.1:4433{s}")).unwrap()
    }

    #[test]
    fn path_form() {
        let who = admit(&url("/lobby/bot%20001/room-1"), None, false).unwrap();
        assert_eq!(
            (who.user_id.as_str(), who.room.as_str()),
            ("bot_001", "room-1")
        );
        assert_eq!(who.display_name, "bot_001");
        assert!(!who.observer);
        for (bad, reason) in [
            ("/lobby/a.b/room", "bad_id"),
            ("/lobby/me%40x/room", "bad_id"),
            ("/lobby/a/b/c", "bad_path"),
            ("/lobby/a", "bad_path"),
            ("/other/a/b", "bad_path"),
            ("/lobby/%zz/b", "bad_path"),
            ("/lobby/%C3%28/b", "bad_path"),
        ] {
            let e = admit(&url(bad), None, false).unwrap_err();
            assert_eq!(e.reason(), reason, "{bad}: {e}");
        }
        let e = admit(&url("/lobby/a/b"), Some(b"s"), true).unwrap_err();
        assert_eq!(e.reason(), "token_required");
    }

    #[test]
    fn token_form() {
        let mut c = Claims::participant("alice", "room-1", Duration::from_secs(60));
        c.display_name = "Alice A.".into();
        let t = jwt::mint(&c, b"s3cret");
        let who = admit(&url(&format!("/lobby?token={t}")), Some(b"s3cret"), true).unwrap();
        assert_eq!(
            who,
            Identity {
                user_id: "alice".into(),
                room: "room-1".into(),
                display_name: "Alice A.".into(),
                observer: false,
            }
        );
        // The token wins over ids in the path.
        let who = admit(
            &url(&format!("/lobby/x/y?token={t}")),
            Some(b"s3cret"),
            false,
        )
        .unwrap();
        assert_eq!(who.user_id, "alice");

        let q = format!("/lobby?token={t}");
        assert_eq!(
            admit(&url(&q), None, false).unwrap_err().reason(),
            "no_jwt_secret"
        );
        assert_eq!(
            admit(&url(&q), Some(b"wrong"), false).unwrap_err().reason(),
            "token_bad_signature"
        );
        let mut bad_room = c.clone();
        bad_room.room = "a.b".into();
        let q = format!("/lobby?token={}", jwt::mint(&bad_room, b"s3cret"));
        assert_eq!(
            admit(&url(&q), Some(b"s3cret"), false)
                .unwrap_err()
                .reason(),
            "bad_id"
        );
    }

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode("/a%20b%2Fc").as_deref(), Some("/a b/c"));
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}
