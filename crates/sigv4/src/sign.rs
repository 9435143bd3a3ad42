//! Signing requests as an AWS client would (for load generators and tests).

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use crate::canonical::{self, ALGORITHM, Scope, TERMINATOR};
use crate::{Error, Request, time};

/// Headers the signer never signs (botocore's list, plus the ones it sets).
const NOT_SIGNED: &[&str] = &[
    "authorization",
    "baggage",
    "connection",
    "expect",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "traceparent",
    "tracestate",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "x-amz-date",
    "x-amzn-trace-id",
];

/// The two headers to add to a request signed by [`sign`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// Value of `x-amz-date` (`YYYYMMDDTHHMMSSZ`).
    pub x_amz_date: String,
    /// Value of `authorization`.
    pub authorization: String,
}

impl SignedHeaders {
    /// `[("x-amz-date", …), ("authorization", …)]`.
    pub fn headers(&self) -> [(&'static str, &str); 2] {
        [
            ("x-amz-date", &self.x_amz_date),
            ("authorization", &self.authorization),
        ]
    }
}

/// Credentials and scope of a signing client.
#[derive(Debug, Clone, Copy)]
pub struct Signer<'a> {
    /// Access key id.
    pub access_key_id: &'a str,
    /// Secret access key.
    pub secret: &'a str,
    /// Region of the credential scope.
    pub region: &'a str,
    /// Service of the credential scope (`iot`, `iotdevicegateway`, …).
    pub service: &'a str,
}

impl Signer<'_> {
    fn scope<'s>(&'s self, date: &'s str) -> Scope<'s> {
        Scope {
            date,
            region: self.region,
            service: self.service,
        }
    }

    /// Signs `request` like botocore: every header but the hop-by-hop ones,
    /// `user-agent` and `authorization` is signed, plus `x-amz-date`.
    /// `request` must not already hold `x-amz-date` or `authorization`
    /// (they are ignored) and must hold `host`.
    pub fn sign(&self, request: &Request<'_>, now_unix: u64) -> Result<SignedHeaders, Error> {
        let amz_date = time::format_amz_date(i64::try_from(now_unix).unwrap_or(i64::MAX));
        let date = &amz_date[..8];
        let mut headers: Vec<(&str, &str)> = request
            .headers
            .iter()
            .filter(|(n, _)| !NOT_SIGNED.iter().any(|x| n.eq_ignore_ascii_case(x)))
            .copied()
            .collect();
        headers.push(("x-amz-date", &amz_date));
        let mut names: Vec<String> = headers
            .iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect();
        names.sort_unstable();
        names.dedup();
        if !names.iter().any(|n| n == "host") {
            return Err(Error::HostNotSigned);
        }
        let creq = canonical::canonical_request(
            request.method,
            request.path,
            &canonical::canonical_query(request.query, |_| false),
            &canonical::canonical_headers(&headers, &names)?,
            &names,
            &canonical::payload_hash(request, true)?,
        );
        let sts = canonical::string_to_sign(&amz_date, date, self.region, self.service, &creq);
        let signature = canonical::signature_hex(self.secret, &self.scope(date), &sts);
        let authorization = format!(
            "{ALGORITHM} Credential={}/{date}/{}/{}/{TERMINATOR}, SignedHeaders={}, Signature={signature}",
            self.access_key_id,
            self.region,
            self.service,
            names.join(";"),
        );
        Ok(SignedHeaders {
            x_amz_date: amz_date,
            authorization,
        })
    }

    /// Presigns `request` (only `host` is signed) and returns the complete
    /// query string to send: the request's own query, the `X-Amz-*`
    /// parameters, `X-Amz-Signature`, then `X-Amz-Security-Token` appended
    /// after signing as AWS IoT clients do.
    pub fn presign(
        &self,
        request: &Request<'_>,
        now_unix: u64,
        expires_secs: Option<u64>,
        security_token: Option<&str>,
    ) -> Result<String, Error> {
        let amz_date = time::format_amz_date(i64::try_from(now_unix).unwrap_or(i64::MAX));
        let date = &amz_date[..8];
        let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
        let credential = format!(
            "{}/{date}/{}/{}/{TERMINATOR}",
            self.access_key_id, self.region, self.service
        );
        let mut query = request.query.to_owned();
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(&format!(
            "X-Amz-Algorithm={ALGORITHM}&X-Amz-Credential={}&X-Amz-Date={amz_date}",
            enc(&credential)
        ));
        if let Some(e) = expires_secs {
            query.push_str(&format!("&X-Amz-Expires={e}"));
        }
        query.push_str("&X-Amz-SignedHeaders=host");
        let names = ["host".to_owned()];
        let creq = canonical::canonical_request(
            request.method,
            request.path,
            &canonical::canonical_query(&query, |_| false),
            &canonical::canonical_headers(request.headers, &names)
                .map_err(|_| Error::HostNotSigned)?,
            &names,
            &canonical::payload_hash(request, true)?,
        );
        let sts = canonical::string_to_sign(&amz_date, date, self.region, self.service, &creq);
        let signature = canonical::signature_hex(self.secret, &self.scope(date), &sts);
        query.push_str("&X-Amz-Signature=");
        query.push_str(&signature);
        if let Some(token) = security_token {
            query.push_str("&X-Amz-Security-Token=");
            query.push_str(&enc(token));
        }
        Ok(query)
    }
}

/// Signs `request` for `access_key_id`/`secret` in `region`/`service` at
/// `now_unix`; returns the `x-amz-date` and `authorization` headers to add.
/// See [`Signer::sign`].
pub fn sign(
    request: &Request<'_>,
    access_key_id: &str,
    secret: &str,
    region: &str,
    service: &str,
    now_unix: u64,
) -> Result<SignedHeaders, Error> {
    Signer {
        access_key_id,
        secret,
        region,
        service,
    }
    .sign(request, now_unix)
}
