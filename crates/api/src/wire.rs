//! The restJson1 wire: request bodies, query parameters, pagination tokens, name rules, timestamps.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::de::DeserializeOwned;
use store::{PageRequest, Scope};

use crate::error::{ApiError, ApiResult};

/// Who is calling: set by the signature layer once the request is verified.
#[derive(Debug, Clone)]
pub struct Caller {
    pub scope: Scope,
    pub endpoint_prefix: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> ApiResult<Self> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ApiError::new(
                "MissingAuthenticationTokenException",
                403,
                "Missing Authentication Token",
            )
        })
    }
}

/// A JSON body; an empty body reads as `{}` (the CLI sends no body for operations without body members).
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> ApiResult<Self> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::invalid(format!("could not read the request body: {e}")))?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(bytes).map(Body).map_err(|e| {
            ApiError::invalid(format!(
                "the request body is not valid for this operation: {e}"
            ))
        })
    }
}

/// Query-string parameters, decoded.
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> ApiResult<Self> {
        let query = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| ApiError::invalid(format!("the query string is malformed: {e}")))?;
        Ok(Params(pairs.into_iter().collect()))
    }
}

impl Params {
    pub fn str(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn bool(&self, name: &str) -> ApiResult<bool> {
        match self.str(name) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ApiError::invalid(format!(
                "{name} must be true or false, not {v:?}"
            ))),
        }
    }

    pub fn int(&self, name: &str, min: i64, max: i64) -> ApiResult<Option<i64>> {
        match self.str(name) {
            None => Ok(None),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(ApiError::invalid(format!(
                    "{name} must be an integer from {min} to {max}, not {v:?}"
                ))),
            },
        }
    }

    /// Token-style paging: `nextToken` + `maxResults`.
    pub fn token_page(&self) -> ApiResult<PageRequest> {
        Ok(PageRequest {
            after: self.str("nextToken").map(decode_token).transpose()?,
            limit: self.int("maxResults", 1, 250)?.unwrap_or(50) as u32,
            ascending: true,
        })
    }

    /// Marker-style paging: `marker` + `pageSize` + `isAscendingOrder`.
    pub fn marker_page(&self) -> ApiResult<PageRequest> {
        Ok(PageRequest {
            after: self.str("marker").map(decode_token).transpose()?,
            limit: self.int("pageSize", 1, 250)?.unwrap_or(25) as u32,
            ascending: self.bool("isAscendingOrder")?,
        })
    }
}

/// Page tokens are the store's cursor in base64, which also fits the model's marker pattern.
pub fn encode_token(next: Option<String>) -> Option<String> {
    next.map(|n| STANDARD.encode(n))
}

fn decode_token(token: &str) -> ApiResult<String> {
    STANDARD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::invalid("the pagination token is not valid"))
}

/// restJson timestamps are epoch seconds.
pub fn seconds(ms: i64) -> serde_json::Value {
    serde_json::json!(ms as f64 / 1000.0)
}

fn check_name(kind: &str, name: &str, max: usize, allowed: impl Fn(char) -> bool) -> ApiResult<()> {
    if name.is_empty() || name.len() > max {
        return Err(ApiError::invalid(format!(
            "{kind} must be 1 to {max} characters long"
        )));
    }
    if let Some(c) = name.chars().find(|c| !allowed(*c)) {
        return Err(ApiError::invalid(format!(
            "{kind} {name:?} contains the character {c:?}, which is not allowed"
        )));
    }
    Ok(())
}

/// Thing, thing type and thing group names: `[a-zA-Z0-9:_-]+`, 1–128.
pub fn thing_name(kind: &str, name: &str) -> ApiResult<()> {
    check_name(kind, name, 128, |c| {
        c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-')
    })
}

/// Policy names: `[\w+=,.@-]+`, 1–128.
pub fn policy_name(name: &str) -> ApiResult<()> {
    check_name("policyName", name, 128, |c| {
        c.is_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
    })
}

/// Certificate ids: 64 hex characters (AWS allows a `0x` prefix in the pattern; ids are stored lowercase).
pub fn certificate_id(id: &str) -> ApiResult<String> {
    let hex = id.strip_prefix("0x").unwrap_or(id);
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::invalid(format!(
            "{id:?} is not a certificate id (64 hexadecimal characters)"
        )));
    }
    Ok(hex.to_ascii_lowercase())
}

/// Attribute names `[a-zA-Z0-9_.,@/:#-]+` ≤128 and values `[a-zA-Z0-9_.,@/:#=\[\]-]*` ≤800.
pub fn attributes(
    map: &HashMap<String, String>,
) -> ApiResult<std::collections::BTreeMap<String, String>> {
    for (k, v) in map {
        check_name("attribute name", k, 128, |c| {
            c.is_ascii_alphanumeric() || "_.,@/:#-".contains(c)
        })?;
        if v.len() > 800 {
            return Err(ApiError::invalid(format!(
                "the value of attribute {k} is longer than 800 characters"
            )));
        }
        if let Some(c) = v
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "_.,@/:#=[]-".contains(*c)))
        {
            return Err(ApiError::invalid(format!(
                "the value of attribute {k} contains {c:?}, which is not allowed"
            )));
        }
    }
    Ok(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// Parses a principal or policy target: a certificate ARN, a thing-group ARN or a Cognito identity id. ARNs must
/// name the caller's own account and region.
pub fn target(caller: &Caller, value: &str) -> ApiResult<store::Target> {
    if let Some(rest) = value.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        let [partition, service, region, account, resource] = parts[..] else {
            return Err(ApiError::invalid(format!("{value} is not a valid ARN")));
        };
        if !partition.starts_with("aws") || service != "iot" {
            return Err(ApiError::invalid(format!("{value} is not an AWS IoT ARN")));
        }
        if account != caller.scope.account_id || region != caller.scope.region {
            return Err(ApiError::unauthorized(format!(
                "{value} belongs to another account or region; a caller can only use its own resources"
            )));
        }
        return match resource.split_once('/') {
            Some(("cert", id)) => Ok(store::Target::Certificate(certificate_id(id)?)),
            Some(("thinggroup", name)) => {
                thing_name("thingGroupName", name)?;
                Ok(store::Target::ThingGroup(name.to_owned()))
            }
            _ => Err(ApiError::invalid(format!(
                "{value} is not a certificate or thing group ARN"
            ))),
        };
    }
    // Cognito identity ids look like `us-east-1:1234abcd-...`.
    match value.split_once(':') {
        Some((region, id))
            if !region.is_empty()
                && id.len() == 36
                && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') =>
        {
            Ok(store::Target::Cognito(value.to_owned()))
        }
        _ => Err(ApiError::invalid(format!(
            "{value} is not a valid principal (a certificate ARN, thing group ARN or Cognito identity id)"
        ))),
    }
}
