//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`): verification for the server
//! and signing for clients, both on one canonicalisation.
//!
//! The crate is pure: no IO, no clock (callers pass `now` as unix seconds).
//!
//! Server side:
//! 1. build a [`Request`] view of the HTTP request;
//! 2. [`Request::authorization`] (or [`parse_authorization`]) gives the
//!    access key id, region and service; or [`Request::presigned`] for
//!    query-string authentication;
//! 3. look up the secret (unknown key: answer [`Error::UnrecognizedClient`]);
//! 4. [`verify`] / [`verify_presigned`] return `Ok(())` only for a valid signature.
//!
//! Every [`Error`] maps to AWS's error code and status ([`Error::code`],
//! [`Error::status`]) and carries a message safe to show the client.
//!
//! Canonicalisation follows botocore for non-S3 services: the path as sent is
//! normalised (dot and empty segments) and percent-encoded again, so
//! `/things/a%3Ab` is signed as `/things/a%253Ab`.
//!
//! When a request carries both an `Authorization` header and presigned query
//! parameters, use the header (as AWS does).
//!
//! ```
//! use sigv4::{Error, Payload, Request, VerifyOptions, sign, verify};
//!
//! let now = 1_795_338_351; // 20261122T090551Z
//! let headers = [("host", "127.0.0.1:8443"), ("content-type", "application/json")];
//! let req = Request {
//!     method: "POST",
//!     path: "/things/a%3Ab",
//!     query: "",
//!     headers: &headers,
//!     payload: Payload::Bytes(b"{}"),
//! };
//! // Client side: add x-amz-date and authorization.
//! let signed = sign(&req, "AKID", "secret", "us-east-1", "iot", now)?;
//! let mut sent = headers.to_vec();
//! sent.extend(signed.headers());
//!
//! // Server side.
//! let req = Request { headers: &sent, ..req };
//! let auth = req.authorization()?;
//! let secret = match auth.access_key_id.as_str() {
//!     "AKID" => "secret",
//!     _ => return Err(Error::UnrecognizedClient),
//! };
//! verify(&req, &auth, secret, now + 5, &VerifyOptions::default())?;
//! assert_eq!(auth.region, "us-east-1");
//! # Ok::<(), Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod auth;
pub mod canonical;
mod error;
mod sign;
mod time;
mod verify;

pub use auth::{Authorization, Presigned, parse_authorization, parse_presigned};
pub use error::Error;
pub use sign::{SignedHeaders, Signer, sign};
pub use verify::{VerifyOptions, verify, verify_presigned};

/// The payload of a request, or what stands for it in the canonical request.
///
/// When the client sent `x-amz-content-sha256`, its value is used (and
/// checked against `Bytes`/`Sha256Hex`); otherwise the hash comes from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    /// The raw body (empty slice when there is none).
    Bytes(&'a [u8]),
    /// A precomputed hex SHA-256 of the body.
    Sha256Hex(&'a str),
    /// The body is not signed: `UNSIGNED-PAYLOAD` (needs
    /// [`VerifyOptions::allow_unsigned_payload`] when verifying).
    Unsigned,
}

/// A view of an HTTP request, borrowed from whatever HTTP type the caller has.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Method, e.g. `GET`.
    pub method: &'a str,
    /// Path exactly as sent (still percent-encoded), without the query.
    pub path: &'a str,
    /// Raw query string as sent, without the `?` (empty when none).
    pub query: &'a str,
    /// Header `(name, value)` pairs in the order received; names are
    /// case-insensitive and may repeat. Over HTTP/2 pass `:authority` as `host`.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body or its hash.
    pub payload: Payload<'a>,
}

impl<'a> Request<'a> {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// Parses the `Authorization` header; [`Error::MissingAuthentication`]
    /// when there is none.
    pub fn authorization(&self) -> Result<Authorization, Error> {
        parse_authorization(
            self.header("authorization")
                .ok_or(Error::MissingAuthentication)?,
        )
    }

    /// Parses query-string authentication; [`Error::MissingAuthentication`]
    /// when the query carries none.
    pub fn presigned(&self) -> Result<Presigned, Error> {
        parse_presigned(self.query)
    }

    /// Does the query carry query-string authentication (`X-Amz-Algorithm`,
    /// `X-Amz-Credential` or `X-Amz-Signature`)?
    pub fn is_presigned(&self) -> bool {
        auth::has_presigned_params(self.query)
    }
}
