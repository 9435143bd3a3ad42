//! The canonical request, string to sign and signing key: the one place both
//! the verifier and the signer take them from.

use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, percent_encode};
use sha2::{Digest, Sha256};

use crate::{Error, Payload, Request};

/// The only algorithm supported.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The last element of every credential scope.
pub const TERMINATOR: &str = "aws4_request";
/// The payload hash used when the payload is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Hex SHA-256 of the empty string.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Everything but RFC 3986 unreserved characters (`A-Za-z0-9-._~`).
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// As [`RFC3986`], but `/` is kept too (for paths).
const RFC3986_PATH: &AsciiSet = &RFC3986.remove(b'/');

type HmacSha256 = Hmac<Sha256>;

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> HmacSha256 {
    #[allow(clippy::expect_used)]
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac
}

/// The SigV4 signing key: HMAC chain over date, region, service, `aws4_request`.
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in [date, region, service, TERMINATOR] {
        key = hmac(&key, part.as_bytes()).finalize().into_bytes().to_vec();
    }
    key
}

/// The MAC over the string to sign, not yet finalised (so the verifier can
/// compare in constant time with [`Mac::verify_slice`]).
pub(crate) fn signature_mac(secret: &str, scope: &Scope<'_>, string_to_sign: &str) -> Hmac<Sha256> {
    let key = signing_key(secret, scope.date, scope.region, scope.service);
    hmac(&key, string_to_sign.as_bytes())
}

/// Hex signature of `string_to_sign` under `secret` and `scope`.
pub(crate) fn signature_hex(secret: &str, scope: &Scope<'_>, string_to_sign: &str) -> String {
    hex::encode(
        signature_mac(secret, scope, string_to_sign)
            .finalize()
            .into_bytes(),
    )
}

/// The credential scope `date/region/service/aws4_request`, borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope<'a> {
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

/// `AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256(canonical request)>`.
pub fn string_to_sign(
    amz_date: &str,
    date: &str,
    region: &str,
    service: &str,
    canonical_request: &str,
) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{date}/{region}/{service}/{TERMINATOR}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// Canonical URI: dot segments and empty segments removed as botocore does,
/// then the path *as sent* (already percent-encoded) is percent-encoded again,
/// keeping `/` and the unreserved characters. An empty path is `/`.
pub fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut normalized = String::with_capacity(path.len() + 1);
    if path.starts_with('/') {
        normalized.push('/');
    }
    normalized.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        normalized.push('/');
    }
    percent_encode(normalized.as_bytes(), RFC3986_PATH).to_string()
}

fn encode(bytes: &[u8]) -> String {
    percent_encode(bytes, RFC3986).to_string()
}

/// Splits a raw query string into `(name, value)` pairs, percent-decoded
/// (`+` is kept as a literal `+`). Empty pieces (`a&&b`) are skipped.
pub(crate) fn query_pairs(query: &str) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (
            percent_decode(name.as_bytes()).collect(),
            percent_decode(value.as_bytes()).collect(),
        )
    })
}

/// Canonical query: each parameter decoded then re-encoded RFC 3986 style,
/// sorted by encoded name then encoded value, `name=` when valueless.
/// Parameters for which `skip(decoded_name)` is true are left out.
pub fn canonical_query(query: &str, skip: impl Fn(&[u8]) -> bool) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(query)
        .filter(|(name, _)| !skip(name))
        .map(|(name, value)| (encode(&name), encode(&value)))
        .collect();
    pairs.sort_unstable();
    let mut out = String::with_capacity(query.len() + 8);
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// Trimall: trims and collapses inner whitespace runs to one space.
fn trimall(value: &str, out: &mut String) {
    for (i, word) in value.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
}

/// Canonical headers block (`name:value\n` per signed header, in the order
/// given; values of repeated headers joined with `,`).
pub fn canonical_headers(
    headers: &[(&str, &str)],
    signed_headers: &[String],
) -> Result<String, Error> {
    let mut out = String::new();
    for name in signed_headers {
        out.push_str(name);
        out.push(':');
        let mut found = false;
        for (_, value) in headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)) {
            if found {
                out.push(',');
            }
            found = true;
            trimall(value, &mut out);
        }
        if !found {
            return Err(Error::SignedHeaderAbsent(crate::error::echo(name)));
        }
        out.push('\n');
    }
    Ok(out)
}

/// The payload hash line: `x-amz-content-sha256` when the client sent it
/// (checked against the body when the body is known), else from [`Payload`].
pub(crate) fn payload_hash(req: &Request<'_>, allow_unsigned: bool) -> Result<String, Error> {
    let computed = match req.payload {
        Payload::Bytes(body) => Some(sha256_hex(body)),
        Payload::Sha256Hex(h) => Some(h.to_ascii_lowercase()),
        Payload::Unsigned => None,
    };
    match req.header("x-amz-content-sha256") {
        Some(h) if h.trim() == UNSIGNED_PAYLOAD => {
            if allow_unsigned {
                Ok(UNSIGNED_PAYLOAD.to_owned())
            } else {
                Err(Error::UnsignedPayloadRefused)
            }
        }
        Some(h) => {
            let h = h.trim();
            let is_hex = h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
            match computed {
                _ if !is_hex => Err(Error::ContentSha256Mismatch),
                Some(c) if !c.eq_ignore_ascii_case(h) => Err(Error::ContentSha256Mismatch),
                _ => Ok(h.to_owned()),
            }
        }
        None => match computed {
            Some(c) => Ok(c),
            None if allow_unsigned => Ok(UNSIGNED_PAYLOAD.to_owned()),
            None => Err(Error::UnsignedPayloadRefused),
        },
    }
}

/// The canonical request:
/// method, URI, query, headers, signed header names, payload hash.
pub fn canonical_request(
    method: &str,
    path: &str,
    canonical_query: &str,
    canonical_headers: &str,
    signed_headers: &[String],
    payload_hash: &str,
) -> String {
    format!(
        "{method}\n{}\n{canonical_query}\n{canonical_headers}\n{}\n{payload_hash}",
        canonical_uri(path),
        signed_headers.join(";")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(f: impl Fn(&str) -> String, cases: &[(&str, &str)]) {
        for (input, want) in cases {
            assert_eq!(f(input), *want, "input {input:?}");
        }
    }

    #[test]
    fn uri() {
        check(
            canonical_uri,
            &[
                ("", "/"),
                ("/", "/"),
                ("/things/x", "/things/x"),
                ("/things/a%3Ab", "/things/a%253Ab"),
                ("/things/a:b", "/things/a%3Ab"),
                ("/a b/~c_d-e.f", "/a%20b/~c_d-e.f"),
                ("//example//", "/example/"),
                ("/example/..", "/"),
                ("/a/./b/../c/", "/a/c/"),
                ("/é", "/%C3%A9"),
                ("/%E1%88%B4", "/%25E1%2588%25B4"),
            ],
        );
    }

    #[test]
    fn query() {
        check(
            |q| canonical_query(q, |_| false),
            &[
                ("", ""),
                ("endpointType=iot%3AData-ATS", "endpointType=iot%3AData-ATS"),
                ("endpointType=iot:Data-ATS", "endpointType=iot%3AData-ATS"),
                ("b=2&a=1&a=0", "a=0&a=1&b=2"),
                ("Param2=value2&Param1=value1", "Param1=value1&Param2=value2"),
                ("a", "a="),
                ("a=&b", "a=&b="),
                ("a=b%20c&x=y+z", "a=b%20c&x=y%2Bz"),
                ("%7E~=%2f", "~~=%2F"),
                ("a=1&&b=2&", "a=1&b=2"),
                ("a=%zz", "a=%25zz"),
                ("B=1&a=1", "B=1&a=1"),
            ],
        );
        assert_eq!(
            canonical_query("a=1&X-Amz-Signature=f&b=2", |n| n == b"X-Amz-Signature"),
            "a=1&b=2"
        );
    }

    #[test]
    fn headers() {
        let hs = [
            ("Host", "example.com"),
            ("My-Header1", "  a   b \t c "),
            ("my-header2", "\"x   y\""),
            ("MY-HEADER1", "second"),
        ];
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            canonical_headers(&hs, &names(&["host", "my-header1", "my-header2"])),
            Ok("host:example.com\nmy-header1:a b c,second\nmy-header2:\"x y\"\n".to_owned())
        );
        assert_eq!(
            canonical_headers(&hs, &names(&["host", "x-amz-date"])),
            Err(Error::SignedHeaderAbsent("x-amz-date".to_owned()))
        );
    }
}
