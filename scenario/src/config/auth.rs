//! How the client proves who it is: `auth:` resolved into [`Credentials`]
//! (none, one token for all, or an HS256 JWT minted per client from a secret
//! the environment holds).

use std::time::Duration;

use anyhow::bail;
use synth_common::redact::shown;

use super::defaults;
use super::file::Auth;
use super::limits::bounded;

/// How the client proves who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Path form `/lobby/{user}/{meeting}`.
    None,
    /// One fixed token for every client.
    Token(String),
    /// Mint an HS256 JWT per client.
    Mint {
        /// The secret.
        secret: Vec<u8>,
        /// Lifetime of each token.
        ttl: Duration,
    },
}

pub(super) fn credentials(
    a: &Auth,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Credentials> {
    match (&a.token, &a.jwt_secret_env) {
        (Some(_), Some(_)) => bail!("auth: give either token or jwt_secret_env, not both"),
        (Some(t), None) if t.trim().is_empty() => bail!("auth.token is empty"),
        (Some(t), None) => Ok(Credentials::Token(t.trim().to_owned())),
        (None, Some(var)) => match env(var) {
            Some(s) if !s.is_empty() => Ok(Credentials::Mint {
                secret: s.into_bytes(),
                ttl: bounded("auth.jwt_ttl", a.jwt_ttl.unwrap_or(defaults::JWT_TTL))?,
            }),
            _ => bail!(
                "auth.jwt_secret_env: environment variable {} is not set (or empty)",
                shown(var)
            ),
        },
        (None, None) => Ok(Credentials::None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::assert_errors;
    use crate::config::{parse, Overrides, Settings};

    #[test]
    fn minted_tokens() {
        let yaml =
            "auth: {jwt_secret_env: S, jwt_ttl: 10m}\nclients: [{user_id: a, meeting_id: m}]";
        let env = |k: &str| (k == "S").then(|| "sekrit".to_string());
        let s = Settings::resolve(parse(yaml).unwrap(), &Overrides::default(), &env).unwrap();
        assert_eq!(
            s.credentials,
            Credentials::Mint {
                secret: b"sekrit".to_vec(),
                ttl: Duration::from_secs(600)
            }
        );
    }

    #[test]
    fn errors_name_the_problem() {
        assert_errors(&[(
            "auth: {jwt_secret_env: NOPE_SECRET}\nclients: [{user_id: a, meeting_id: m}]",
            "NOPE_SECRET is not set",
        )]);
    }
}
