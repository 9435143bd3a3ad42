//! Parsing the `Authorization` header and the presigned query parameters.

use crate::canonical::{ALGORITHM, TERMINATOR, query_pairs};
use crate::error::echo;
use crate::{Error, time};

/// A parsed `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
///
/// Parsing checks the syntax, the credential date, the region's form and the
/// terminator; [`crate::verify`] checks the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The access key id; the caller looks up its secret.
    pub access_key_id: String,
    /// Credential scope date, `YYYYMMDD`.
    pub date: String,
    /// Credential scope region (e.g. `us-east-1`).
    pub region: String,
    /// Credential scope service (e.g. `iot`, `execute-api`).
    pub service: String,
    /// Signed header names, lowercase, in the order the client listed them.
    pub signed_headers: Vec<String>,
    /// The client's signature, 64 lowercase hex characters.
    pub signature: String,
}

/// Query-string authentication (`X-Amz-Algorithm`, `X-Amz-Credential`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presigned {
    /// Credential, signed headers and signature, as for header authentication.
    pub auth: Authorization,
    /// `X-Amz-Date`, `YYYYMMDDTHHMMSSZ`.
    pub amz_date: String,
    /// `X-Amz-Expires` in seconds, when present (1..=604800).
    pub expires_secs: Option<u64>,
    /// `X-Amz-Security-Token`, when present.
    pub security_token: Option<String>,
}

/// Is `region` shaped like a region name (`us-east-1`, `cn-north-1`, `local`)?
fn valid_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 64
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-')
}

/// Builds an [`Authorization`] from the three values, checking each.
fn build(credential: &str, signed_headers: &str, signature: &str) -> Result<Authorization, Error> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, terminator] = parts[..] else {
        return Err(Error::MalformedCredential(echo(credential)));
    };
    if key.is_empty() || service.is_empty() {
        return Err(Error::MalformedCredential(echo(credential)));
    }
    if time::parse_ymd(date).is_none() {
        return Err(Error::MalformedCredentialDate(echo(date)));
    }
    if terminator != TERMINATOR {
        return Err(Error::InvalidTerminator(echo(terminator)));
    }
    if !valid_region(region) {
        return Err(Error::InvalidRegion(echo(region)));
    }
    let names: Vec<String> = signed_headers
        .split(';')
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    if names.iter().any(String::is_empty) {
        return Err(Error::MalformedSignedHeaders(echo(signed_headers)));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::MalformedSignature);
    }
    Ok(Authorization {
        access_key_id: key.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_headers: names,
        signature: signature.to_ascii_lowercase(),
    })
}

/// Stores `value` in `slot`, refusing a second occurrence of `name`.
fn set<'a>(slot: &mut Option<&'a str>, name: &str, value: &'a str) -> Result<(), Error> {
    if slot.replace(value).is_some() {
        return Err(Error::DuplicateParameter(echo(name)));
    }
    Ok(())
}

/// Parses the value of an `Authorization` header.
///
/// Accepts the separators real SDKs use: `", "` (botocore), `","` (some JS
/// and Go versions), or plain spaces. Unknown `Key=Value` parts are ignored.
pub fn parse_authorization(header_value: &str) -> Result<Authorization, Error> {
    let value = header_value.trim();
    if value.is_empty() {
        return Err(Error::MissingAuthentication);
    }
    let (algorithm, rest) = value
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(Error::UnsupportedAlgorithm(echo(algorithm)));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest
        .split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|p| !p.is_empty())
    {
        let Some((key, val)) = part.split_once('=') else {
            return Err(Error::MalformedParameter(echo(part)));
        };
        match key {
            "Credential" => set(&mut credential, key, val)?,
            "SignedHeaders" => set(&mut signed_headers, key, val)?,
            "Signature" => set(&mut signature, key, val)?,
            _ => {}
        }
    }
    build(
        credential.ok_or(Error::MissingParameter("Credential"))?,
        signed_headers.ok_or(Error::MissingParameter("SignedHeaders"))?,
        signature.ok_or(Error::MissingParameter("Signature"))?,
    )
}

/// Does this raw query string carry query-string authentication?
pub(crate) fn has_presigned_params(query: &str) -> bool {
    query_pairs(query).any(|(name, _)| {
        matches!(
            &name[..],
            b"X-Amz-Algorithm" | b"X-Amz-Credential" | b"X-Amz-Signature"
        )
    })
}

/// Parses query-string authentication from a raw (percent-encoded) query string.
///
/// Returns [`Error::MissingAuthentication`] when none of `X-Amz-Algorithm`,
/// `X-Amz-Credential`, `X-Amz-Signature` is present.
pub fn parse_presigned(query: &str) -> Result<Presigned, Error> {
    if !has_presigned_params(query) {
        return Err(Error::MissingAuthentication);
    }
    let decoded: Vec<(String, String)> = query_pairs(query)
        .filter(|(name, _)| name.starts_with(b"X-Amz-"))
        .map(|(name, value)| {
            let name = String::from_utf8_lossy(&name).into_owned();
            match String::from_utf8(value) {
                Ok(v) => Ok((name, v)),
                Err(_) => Err(Error::MalformedParameter(echo(&name))),
            }
        })
        .collect::<Result<_, _>>()?;
    let (mut algorithm, mut credential, mut date, mut expires) = (None, None, None, None);
    let (mut signed_headers, mut signature, mut token) = (None, None, None);
    for (name, value) in &decoded {
        let slot = match name.as_str() {
            "X-Amz-Algorithm" => &mut algorithm,
            "X-Amz-Credential" => &mut credential,
            "X-Amz-Date" => &mut date,
            "X-Amz-Expires" => &mut expires,
            "X-Amz-SignedHeaders" => &mut signed_headers,
            "X-Amz-Signature" => &mut signature,
            "X-Amz-Security-Token" => &mut token,
            _ => continue,
        };
        set(slot, name, value)?;
    }
    let algorithm = algorithm.ok_or(Error::MissingParameter("X-Amz-Algorithm"))?;
    if algorithm != ALGORITHM {
        return Err(Error::UnsupportedAlgorithm(echo(algorithm)));
    }
    let auth = build(
        credential.ok_or(Error::MissingParameter("X-Amz-Credential"))?,
        signed_headers.ok_or(Error::MissingParameter("X-Amz-SignedHeaders"))?,
        signature.ok_or(Error::MissingParameter("X-Amz-Signature"))?,
    )?;
    let amz_date = date.ok_or(Error::MissingParameter("X-Amz-Date"))?;
    if time::parse_amz_date(amz_date).is_none() {
        return Err(Error::MalformedDate(echo(amz_date)));
    }
    let expires_secs = match expires {
        None => None,
        Some(e) => match e.parse::<u64>() {
            Ok(n) if (1..=604_800).contains(&n) && !e.starts_with('+') => Some(n),
            _ => return Err(Error::InvalidExpires(echo(e))),
        },
    };
    Ok(Presigned {
        auth,
        amz_date: amz_date.to_owned(),
        expires_secs,
        security_token: token.map(str::to_owned),
    })
}
