//! `wire:` and `health_url:`: which of upstream's two wires the clients
//! speak, and where the server's `GET /version` is asked when `auto`
//! leaves it to the server.

use anyhow::{bail, Context};
use synth_common::redact::shown;

use super::file::File;
use super::overrides::Overrides;

/// The port of upstream's health endpoint in its docker-compose
/// (`HEALTH_LISTEN_URL=0.0.0.0:5321`): the default `health_url` is this
/// port on the server's host.
pub const HEALTH_PORT: u16 = 5321;

/// The wire a config asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WireChoice {
    /// Ask the server's `/version` before the run and speak its wire;
    /// `per_packet` when it does not answer.
    #[default]
    Auto,
    /// One packet per uni stream (upstream `main`).
    PerPacket,
    /// Length-prefixed packets on persistent streams (upstream `RnD`).
    Framed,
}

impl std::str::FromStr for WireChoice {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<WireChoice> {
        Ok(match s.trim() {
            "auto" => WireChoice::Auto,
            "per_packet" => WireChoice::PerPacket,
            "framed" => WireChoice::Framed,
            other => bail!(
                "wire {:?} is not one of auto, per_packet, framed",
                shown(other)
            ),
        })
    }
}

/// The wire settings of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireSettings {
    /// What the config asked for.
    pub choice: WireChoice,
    /// Where `/version` is asked (`auto` only): the config's `health_url`,
    /// else port [`HEALTH_PORT`] of the server's host; `None` without a
    /// server (the embedded relay speaks what it is told).
    pub health_url: Option<url::Url>,
}

/// `wire` and `health_url`, flag over file.
pub(super) fn wire(
    file: &File,
    o: &Overrides,
    server: Option<&url::Url>,
) -> anyhow::Result<WireSettings> {
    let choice = match o.wire.as_deref() {
        Some(s) => s.parse()?,
        None => file
            .wire
            .as_deref()
            .map_or(Ok(WireChoice::Auto), str::parse)?,
    };
    let given = o.health_url.as_deref().or(file.health_url.as_deref());
    let health_url = match given {
        Some(s) => Some(parse_health_url(s)?),
        None => server
            .and_then(|u| u.host_str())
            .map(|host| {
                let host = if host.contains(':') && !host.starts_with('[') {
                    format!("[{host}]")
                } else {
                    host.to_owned()
                };
                url::Url::parse(&format!("http://{host}:{HEALTH_PORT}/"))
            })
            .transpose()
            .context("health_url from the server's host")?,
    };
    Ok(WireSettings { choice, health_url })
}

/// A plain `http://host:port` URL (the server's health port speaks HTTP
/// without TLS).
fn parse_health_url(s: &str) -> anyhow::Result<url::Url> {
    let u = url::Url::parse(s.trim()).with_context(|| {
        format!(
            "health_url {:?} is not a URL like http://127.0.0.1:5321",
            shown(s)
        )
    })?;
    if u.scheme() != "http" {
        bail!(
            "health_url {:?}: only http:// is asked (the server's health port has no TLS)",
            shown(s)
        );
    }
    if u.host_str().is_none() || u.port_or_known_default().is_none() {
        bail!(
            "health_url {:?} has no host and port, e.g. http://127.0.0.1:5321",
            shown(s)
        );
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(
        file_wire: Option<&str>,
        flag: Option<&str>,
        health: Option<&str>,
    ) -> anyhow::Result<WireSettings> {
        let f = File {
            wire: file_wire.map(str::to_owned),
            health_url: health.map(str::to_owned),
            ..File::default()
        };
        let o = Overrides {
            wire: flag.map(str::to_owned),
            ..Overrides::default()
        };
        let server = url::Url::parse("https://127.0.0.1:4433/").unwrap();
        wire(&f, &o, Some(&server))
    }

    #[test]
    fn auto_by_default_asking_the_servers_host_on_the_health_port() {
        let w = resolve(None, None, None).unwrap();
        assert_eq!(w.choice, WireChoice::Auto);
        assert_eq!(w.health_url.unwrap().as_str(), "http://127.0.0.1:5321/");
        let w = resolve(
            Some("framed"),
            Some("per_packet"),
            Some("http://127.0.0.1:9/"),
        )
        .unwrap();
        assert_eq!(w.choice, WireChoice::PerPacket, "the flag over the file");
        assert_eq!(w.health_url.unwrap().port(), Some(9));
        let v6 = url::Url::parse("https://[::1]:4433/").unwrap();
        let w = wire(&File::default(), &Overrides::default(), Some(&v6)).unwrap();
        assert_eq!(w.health_url.unwrap().as_str(), "http://[::1]:5321/");
        let w = wire(&File::default(), &Overrides::default(), None).unwrap();
        assert_eq!(w.health_url, None, "the embedded relay is not asked");
    }

    #[test]
    fn bad_values_say_what_to_write() {
        let e = resolve(None, Some("streams"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not one of auto, per_packet, framed"), "{e}");
        let e = resolve(None, None, Some("https://127.0.0.1:5321"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("only http://"), "{e}");
        let e = resolve(None, None, Some("5321")).unwrap_err().to_string();
        assert!(e.contains("is not a URL"), "{e}");
    }
}
