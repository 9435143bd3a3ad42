//! AWS shared credentials file (`~/.aws/credentials` format).

use std::path::Path;

use anyhow::{Context, bail};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

/// Reads profile `profile` of the INI credentials file at `path`.
pub fn load(path: &Path, profile: &str) -> anyhow::Result<Credentials> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read credentials file {}", path.display()))?;
    parse(&text, profile).with_context(|| format!("in {}", path.display()))
}

/// Parses profile `profile` (`[profile]`, or `[profile name]` as in AWS config files).
pub fn parse(text: &str, profile: &str) -> anyhow::Result<Credentials> {
    let mut in_profile = false;
    let mut seen_profile = false;
    let (mut key, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let section = section.trim();
            let name = section.strip_prefix("profile ").unwrap_or(section).trim();
            in_profile = name == profile;
            seen_profile |= in_profile;
            continue;
        }
        if !in_profile {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().to_owned();
        match k.trim().to_ascii_lowercase().as_str() {
            "aws_access_key_id" => key = Some(v),
            "aws_secret_access_key" => secret = Some(v),
            "aws_session_token" => token = Some(v),
            _ => {}
        }
    }
    if !seen_profile {
        bail!("no [{profile}] profile");
    }
    match (key, secret) {
        (Some(access_key_id), Some(secret_access_key))
            if !access_key_id.is_empty() && !secret_access_key.is_empty() =>
        {
            Ok(Credentials {
                access_key_id,
                secret_access_key,
                session_token: token.filter(|t| !t.is_empty()),
            })
        }
        _ => bail!("profile [{profile}] lacks aws_access_key_id or aws_secret_access_key"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# comment\n[other]\naws_access_key_id = OTHER\naws_secret_access_key = x\n\n\
                        [default]\naws_access_key_id = AKIAEXAMPLE\n  aws_secret_access_key=se/cr+et= \n";

    #[test]
    fn parses_default_profile() -> anyhow::Result<()> {
        let c = parse(FILE, "default")?;
        assert_eq!(c.access_key_id, "AKIAEXAMPLE");
        assert_eq!(c.secret_access_key, "se/cr+et=");
        assert_eq!(c.session_token, None);
        assert_eq!(parse(FILE, "other")?.access_key_id, "OTHER");
        Ok(())
    }

    #[test]
    fn session_token_and_profile_prefix() -> anyhow::Result<()> {
        let c = parse(
            "[profile dev]\naws_access_key_id=A\naws_secret_access_key=B\naws_session_token=T\n",
            "dev",
        )?;
        assert_eq!(c.session_token.as_deref(), Some("T"));
        Ok(())
    }

    #[test]
    fn missing_profile_or_keys() {
        assert!(parse(FILE, "nope").is_err());
        assert!(parse("[default]\naws_access_key_id=A\n", "default").is_err());
    }
}
