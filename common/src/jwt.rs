//! HS256 room-access tokens, as the videocall-rs meeting backend issues them.
//!
//! The server's `/lobby?token=JWT` form takes a JWT signed with its `JWT_SECRET`
//! (HMAC-SHA256) whose claims are `videocall-meeting-types`'
//! `RoomAccessTokenClaims`. [`mint`] makes one (a client minting its own token
//! from a shared secret); [`verify`] checks one the way the server does
//! (`jsonwebtoken` with HS256, `exp` with its default 60 s leeway, `iss`), and
//! also insists on `room_join || observer` as the server does right after.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The only issuer the server accepts.
pub const ISSUER: &str = "videocall-meeting-backend";

/// Seconds an expired token is still accepted (`jsonwebtoken`'s default leeway).
pub const LEEWAY_SECS: i64 = 60;

/// The base64url of `{"alg":"HS256","typ":"JWT"}`, the header every token here carries.
const HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// The claims of a room-access token (field names and types as upstream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id the session gets.
    pub sub: String,
    /// The meeting (room) id.
    pub room: String,
    /// Whether the holder may join the room as a participant.
    pub room_join: bool,
    /// Whether the holder is the meeting's host.
    pub is_host: bool,
    /// The name peers see in PARTICIPANT_JOINED/LEFT.
    pub display_name: String,
    /// An observer receives but the server drops its media.
    #[serde(default)]
    pub observer: bool,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Must be [`ISSUER`].
    pub iss: String,
}

impl Claims {
    /// Claims for a participant `sub` of `room`, valid for `ttl` from now.
    pub fn participant(sub: &str, room: &str, ttl: Duration) -> Claims {
        Claims {
            sub: sub.to_owned(),
            room: room.to_owned(),
            room_join: true,
            is_host: false,
            display_name: sub.to_owned(),
            observer: false,
            exp: crate::clock::unix_secs()
                .saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
            iss: ISSUER.to_owned(),
        }
    }
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// Not three dot-separated base64url parts.
    #[error("token is not a JWT (three base64url parts)")]
    Malformed,
    /// The header does not say HS256.
    #[error("token algorithm is not HS256")]
    Algorithm,
    /// The signature does not match the secret.
    #[error("token signature does not match the secret")]
    BadSignature,
    /// The header or claims are not the expected JSON.
    #[error("token claims are invalid: {0}")]
    Claims(#[from] serde_json::Error),
    /// `exp` is in the past (beyond the leeway).
    #[error("token expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// The time of the check.
        now: i64,
    },
    /// `iss` is not [`ISSUER`].
    #[error("token issuer is {0:?}, expected {ISSUER:?}")]
    Issuer(String),
    /// Neither `room_join` nor `observer` is set.
    #[error("token grants neither room_join nor observer")]
    NoRoomJoin,
}

impl JwtError {
    /// A short fixed label for counting rejections by reason.
    pub fn reason(&self) -> &'static str {
        match self {
            JwtError::Malformed | JwtError::Algorithm | JwtError::Claims(_) => "token_malformed",
            JwtError::BadSignature => "token_bad_signature",
            JwtError::Expired { .. } => "token_expired",
            JwtError::Issuer(_) => "token_wrong_issuer",
            JwtError::NoRoomJoin => "token_no_room_join",
        }
    }
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length")
}

/// Signs `claims` with `secret` (HS256).
pub fn mint(claims: &Claims, secret: &[u8]) -> String {
    let payload = serde_json::to_vec(claims).expect("claims serialize to JSON");
    let mut token = String::with_capacity(HEADER.len() + payload.len() * 2 + 48);
    token.push_str(HEADER);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
    let mut m = mac(secret);
    m.update(token.as_bytes());
    let sig = m.finalize().into_bytes();
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(sig, &mut token);
    token
}

/// Checks `token` against `secret` now; see [`verify_at`].
pub fn verify(token: &str, secret: &[u8]) -> Result<Claims, JwtError> {
    verify_at(token, secret, crate::clock::unix_secs())
}

/// Checks `token` as the server does at time `now` (seconds since the epoch):
/// HS256 signature, `exp` (with [`LEEWAY_SECS`]), `iss`, then `room_join || observer`.
pub fn verify_at(token: &str, secret: &[u8], now: i64) -> Result<Claims, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };

    #[derive(Deserialize)]
    struct Header {
        alg: String,
    }
    let header_json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| JwtError::Malformed)?;
    let h: Header = serde_json::from_slice(&header_json)?;
    if h.alg != "HS256" {
        return Err(JwtError::Algorithm);
    }

    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| JwtError::Malformed)?;
    let mut m = mac(secret);
    m.update(&token.as_bytes()[..header.len() + 1 + payload.len()]);
    m.verify_slice(&sig).map_err(|_| JwtError::BadSignature)?;

    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| JwtError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&payload)?;
    if claims.exp < now.saturating_sub(LEEWAY_SECS) {
        return Err(JwtError::Expired {
            exp: claims.exp,
            now,
        });
    }
    if claims.iss != ISSUER {
        return Err(JwtError::Issuer(claims.iss));
    }
    if !claims.room_join && !claims.observer {
        return Err(JwtError::NoRoomJoin);
    }
    Ok(claims)
}

/// Whether `token`'s claims say `observer: true`, read without checking
/// its signature (the run holds no secret for a token it was given): the
/// server drops what such a client sends. `false` for what is not a JWT.
pub fn says_observer(token: &str) -> bool {
    #[derive(Deserialize)]
    struct Observer {
        #[serde(default)]
        observer: bool,
    }
    let Some(payload) = token.split('.').nth(1) else {
        return false;
    };
    URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|p| serde_json::from_slice::<Observer>(&p).ok())
        .is_some_and(|c| c.observer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_observer_token_is_seen_without_its_secret() {
        let mut c = Claims::participant("u", "m", Duration::from_secs(60));
        assert!(!says_observer(&mint(&c, b"s")));
        c.observer = true;
        assert!(says_observer(&mint(&c, b"s")));
        assert!(!says_observer("not-a-token"));
        assert!(!says_observer("a.%%%.c"));
    }

    const SECRET: &[u8] = b"test-secret";

    #[test]
    fn header_constant_is_hs256_jwt() {
        let h = URL_SAFE_NO_PAD.decode(HEADER).unwrap();
        assert_eq!(h, br#"{"alg":"HS256","typ":"JWT"}"#);
    }

    #[test]
    fn round_trip() {
        let c = Claims::participant("bot-1", "room-1", Duration::from_secs(3600));
        let t = mint(&c, SECRET);
        assert_eq!(verify(&t, SECRET).unwrap(), c);
    }

    /// A token computed independently (Python's `hmac`/`hashlib`/`base64`, compact
    /// JSON in upstream's field order, secret "secret"): pins our signing input
    /// and encoding, both ways.
    #[test]
    fn matches_an_independently_made_token() {
        const REFERENCE: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsInJvb20iOiJyMSIsInJvb21fam9pbiI6dHJ1ZSwiaXNfaG9zdCI6ZmFsc2UsImRpc3BsYXlfbmFtZSI6IkFsaWNlIiwib2JzZXJ2ZXIiOmZhbHNlLCJleHAiOjQxMDI0NDQ4MDAsImlzcyI6InZpZGVvY2FsbC1tZWV0aW5nLWJhY2tlbmQifQ.R3-BwA08Y-sPU1uQBGondUeVzjvv2zn3DfO8rXNm3xg";
        let c = Claims {
            sub: "alice".into(),
            room: "r1".into(),
            room_join: true,
            is_host: false,
            display_name: "Alice".into(),
            observer: false,
            exp: 4_102_444_800,
            iss: ISSUER.into(),
        };
        assert_eq!(mint(&c, b"secret"), REFERENCE);
        assert_eq!(verify_at(REFERENCE, b"secret", 0).unwrap(), c);
    }

    #[test]
    fn rejections() {
        let now = 1_000_000;
        let mut c = Claims::participant("u", "r", Duration::ZERO);
        c.exp = now + 10;
        let good = mint(&c, SECRET);
        assert!(verify_at(&good, SECRET, now).is_ok());
        assert!(matches!(
            verify_at(&good, b"other", now),
            Err(JwtError::BadSignature)
        ));
        // Within the leeway, then past it.
        assert!(verify_at(&good, SECRET, now + 10 + LEEWAY_SECS).is_ok());
        assert!(matches!(
            verify_at(&good, SECRET, now + 11 + LEEWAY_SECS),
            Err(JwtError::Expired { .. })
        ));

        let mut bad_iss = c.clone();
        bad_iss.iss = "someone-else".into();
        let e = verify_at(&mint(&bad_iss, SECRET), SECRET, now).unwrap_err();
        assert!(matches!(e, JwtError::Issuer(_)), "{e}");
        assert_eq!(e.reason(), "token_wrong_issuer");

        let mut no_join = c.clone();
        no_join.room_join = false;
        assert!(matches!(
            verify_at(&mint(&no_join, SECRET), SECRET, now),
            Err(JwtError::NoRoomJoin)
        ));
        no_join.observer = true;
        assert!(verify_at(&mint(&no_join, SECRET), SECRET, now).is_ok());

        for junk in ["", "a.b", "a.b.c.d", "!!.??.**", &good[1..]] {
            assert!(verify_at(junk, SECRET, now).is_err(), "{junk:?}");
        }
        // Tampered payload with the original signature.
        let mut parts: Vec<&str> = good.split('.').collect();
        let other = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&bad_iss).unwrap());
        parts[1] = &other;
        assert!(matches!(
            verify_at(&parts.join("."), SECRET, now),
            Err(JwtError::BadSignature)
        ));
    }

    #[test]
    fn observer_defaults_to_false() {
        let json = br#"{"sub":"u","room":"r","room_join":true,"is_host":false,"display_name":"u","exp":9999999999,"iss":"videocall-meeting-backend"}"#;
        let mut t = String::from(HEADER);
        t.push('.');
        URL_SAFE_NO_PAD.encode_string(json, &mut t);
        let mut m = mac(SECRET);
        m.update(t.as_bytes());
        t.push('.');
        URL_SAFE_NO_PAD.encode_string(m.finalize().into_bytes(), &mut t);
        assert!(!verify(&t, SECRET).unwrap().observer);
    }
}
