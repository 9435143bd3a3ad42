//! Verifying a signed request.

use hmac::Mac;

use crate::auth::{Authorization, Presigned};
use crate::canonical::{self, Scope};
use crate::error::echo;
use crate::{Error, Request, time};

/// What the verifier accepts.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions<'a> {
    /// Accepted credential-scope services (the control plane passes
    /// `["iot", "execute-api"]`; MQTT over WebSocket `["iotdevicegateway"]`).
    pub services: &'a [&'a str],
    /// Largest tolerated difference between the request date and now (AWS: 900).
    pub max_skew_secs: u64,
    /// Accept `x-amz-content-sha256: UNSIGNED-PAYLOAD` (and [`crate::Payload::Unsigned`]).
    pub allow_unsigned_payload: bool,
}

impl Default for VerifyOptions<'static> {
    /// `["iot", "execute-api"]`, 900 s, unsigned payloads accepted.
    fn default() -> Self {
        VerifyOptions {
            services: &["iot", "execute-api"],
            max_skew_secs: 900,
            allow_unsigned_payload: true,
        }
    }
}

fn now_i64(now_unix: u64) -> i64 {
    i64::try_from(now_unix).unwrap_or(i64::MAX)
}

fn skew_i64(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// Checks what does not depend on the secret: service, `host` signed.
fn check_scope(auth: &Authorization, opts: &VerifyOptions<'_>) -> Result<(), Error> {
    if !opts.services.contains(&auth.service.as_str()) {
        return Err(Error::WrongService(echo(&auth.service)));
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(Error::HostNotSigned);
    }
    Ok(())
}

/// Parses `amz_date` and checks it against the credential date.
fn check_date(auth: &Authorization, amz_date: &str) -> Result<i64, Error> {
    let signed =
        time::parse_amz_date(amz_date).ok_or_else(|| Error::MalformedDate(echo(amz_date)))?;
    let day = amz_date.get(..8).unwrap_or_default();
    if day != auth.date {
        return Err(Error::DateMismatch {
            scope: echo(&auth.date),
            date: day.to_owned(),
            amz_date: amz_date.to_owned(),
        });
    }
    Ok(signed)
}

/// Rejects a request signed more than `max_skew_secs` before or after `now`.
fn check_skew(signed: i64, now: i64, max_skew_secs: u64) -> Result<(), Error> {
    let skew = skew_i64(max_skew_secs);
    let minutes = max_skew_secs / 60;
    if signed < now.saturating_sub(skew) {
        return Err(Error::Expired {
            signed: time::format_amz_date(signed),
            earliest: time::format_amz_date(now.saturating_sub(skew)),
            now: time::format_amz_date(now),
            minutes,
        });
    }
    if signed > now.saturating_add(skew) {
        return Err(Error::NotYetCurrent {
            signed: time::format_amz_date(signed),
            latest: time::format_amz_date(now.saturating_add(skew)),
            now: time::format_amz_date(now),
            minutes,
        });
    }
    Ok(())
}

/// Recomputes the signature over `canonical_query` and compares in constant time.
fn check_signature(
    req: &Request<'_>,
    auth: &Authorization,
    secret: &str,
    amz_date: &str,
    canonical_query: &str,
    payload_hash: &str,
) -> Result<(), Error> {
    let headers = canonical::canonical_headers(req.headers, &auth.signed_headers)?;
    let creq = canonical::canonical_request(
        req.method,
        req.path,
        canonical_query,
        &headers,
        &auth.signed_headers,
        payload_hash,
    );
    let sts = canonical::string_to_sign(amz_date, &auth.date, &auth.region, &auth.service, &creq);
    let scope = Scope {
        date: &auth.date,
        region: &auth.region,
        service: &auth.service,
    };
    let provided = hex::decode(&auth.signature).map_err(|_| Error::SignatureMismatch)?;
    canonical::signature_mac(secret, &scope, &sts)
        .verify_slice(&provided)
        .map_err(|_| Error::SignatureMismatch)
}

/// Verifies a request authenticated by an `Authorization` header.
///
/// `secret` is the secret access key of `auth.access_key_id`; `now_unix` is
/// the server's clock. Returns `Ok(())` only when the signature is valid.
pub fn verify(
    request: &Request<'_>,
    auth: &Authorization,
    secret: &str,
    now_unix: u64,
    options: &VerifyOptions<'_>,
) -> Result<(), Error> {
    check_scope(auth, options)?;
    let amz_date = request
        .header("x-amz-date")
        .or_else(|| request.header("date"))
        .ok_or(Error::MissingDate)?
        .trim();
    let signed = check_date(auth, amz_date)?;
    check_skew(signed, now_i64(now_unix), options.max_skew_secs)?;
    let payload_hash = canonical::payload_hash(request, options.allow_unsigned_payload)?;
    let query = canonical::canonical_query(request.query, |_| false);
    check_signature(request, auth, secret, amz_date, &query, &payload_hash)
}

/// Verifies a presigned request (query-string authentication), as used by
/// MQTT over WebSocket (service `iotdevicegateway`).
///
/// `X-Amz-Signature` is never part of the canonical query. AWS IoT clients
/// append `X-Amz-Security-Token` after signing, so it is left out first; a
/// signature computed with it included (generic SigV4 presigning) is also
/// accepted. The URL is valid from `X-Amz-Date - max_skew_secs` until
/// `X-Amz-Date + X-Amz-Expires` (or `+ max_skew_secs` when `X-Amz-Expires`
/// is absent, as with older IoT SDKs).
pub fn verify_presigned(
    request: &Request<'_>,
    presigned: &Presigned,
    secret: &str,
    now_unix: u64,
    options: &VerifyOptions<'_>,
) -> Result<(), Error> {
    let auth = &presigned.auth;
    check_scope(auth, options)?;
    let signed = check_date(auth, &presigned.amz_date)?;
    let now = now_i64(now_unix);
    match presigned.expires_secs {
        None => check_skew(signed, now, options.max_skew_secs)?,
        Some(expires) => {
            check_skew(signed, now, options.max_skew_secs).or_else(|e| match e {
                Error::Expired { .. } => Ok(()),
                e => Err(e),
            })?;
            if now > signed.saturating_add(skew_i64(expires)) {
                return Err(Error::PresignExpired {
                    signed: presigned.amz_date.clone(),
                    expires,
                    now: time::format_amz_date(now),
                });
            }
        }
    }
    let payload_hash = canonical::payload_hash(request, options.allow_unsigned_payload)?;
    let without_token = canonical::canonical_query(request.query, |n| {
        n == b"X-Amz-Signature" || n == b"X-Amz-Security-Token"
    });
    let amz_date = presigned.amz_date.as_str();
    let first = check_signature(
        request,
        auth,
        secret,
        amz_date,
        &without_token,
        &payload_hash,
    );
    if first.is_err() && presigned.security_token.is_some() {
        let with_token = canonical::canonical_query(request.query, |n| n == b"X-Amz-Signature");
        return check_signature(request, auth, secret, amz_date, &with_token, &payload_hash);
    }
    first
}
