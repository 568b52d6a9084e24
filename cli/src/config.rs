//! Where the deployer is and who is asking: `--url` / `DEPLOYER_URL` and `--token` /
//! `DEPLOYER_TOKEN` (clap reads both), else `url` and `token` in the user's config file.

use std::path::PathBuf;

use serde::Deserialize;

use crate::client::Failure;

pub struct Settings {
    /// Without a trailing slash, e.g. `https://deployer.example.com`.
    pub url: String,
    pub token: String,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    url: Option<String>,
    token: Option<String>,
}

impl Settings {
    pub fn resolve(url: Option<String>, token: Option<String>) -> Result<Settings, Failure> {
        let file = match (&url, &token) {
            (Some(_), Some(_)) => File::default(),
            _ => read_file()?,
        };
        let url = url
            .or(file.url)
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| {
                Failure::usage(format!(
                    "where is the deployer? pass --url, set DEPLOYER_URL, or put url = \"…\" in {}",
                    shown(config_file())
                ))
            })?;
        let token = token
            .or(file.token)
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| {
                Failure::usage(format!(
                    "no API token: set DEPLOYER_TOKEN (or pass --token), or put token = \"…\" in {}; \
                     an admin makes one on the deployer's Tokens page",
                    shown(config_file())
                ))
            })?;
        let url = url.trim().trim_end_matches('/').to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Failure::usage(format!(
                "the deployer's URL starts with http:// or https://, got {url:?}"
            )));
        }
        Ok(Settings {
            url,
            token: token.trim().to_owned(),
        })
    }
}

/// `$XDG_CONFIG_HOME/deployctl/config.toml`, else `~/.config/deployctl/config.toml`.
pub fn config_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("deployctl").join("config.toml"))
}

fn shown(path: Option<PathBuf>) -> String {
    path.map_or("~/.config/deployctl/config.toml".to_owned(), |p| {
        p.display().to_string()
    })
}

fn read_file() -> Result<File, Failure> {
    let Some(path) = config_file() else {
        return Ok(File::default());
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text)
            .map_err(|e| Failure::usage(format!("{}: {}", path.display(), e.message()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(File::default()),
        Err(e) => Err(Failure::usage(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}
