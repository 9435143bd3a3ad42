//! The one error type of this crate, mapped to the answers AWS gives.

/// Longest piece of client input echoed back inside an error message.
const ECHO_MAX: usize = 128;

/// Clips client-supplied text before it is echoed back in an error message.
pub(crate) fn echo(s: &str) -> String {
    if s.len() <= ECHO_MAX {
        return s.to_owned();
    }
    let mut end = ECHO_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Why a request was not authenticated.
///
/// Every message ([`std::fmt::Display`]) is safe to send to the client: it
/// never contains the secret key nor the signature the server expected.
/// [`Error::code`] and [`Error::status`] give the AWS error code and HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- MissingAuthenticationTokenException, 403 ----
    /// The request carries neither an `Authorization` header nor a presigned query.
    #[error("Missing Authentication Token")]
    MissingAuthentication,

    // ---- IncompleteSignatureException, 400 ----
    /// The `Authorization` header does not start with `AWS4-HMAC-SHA256`.
    #[error("Unsupported authorization algorithm '{0}': expected 'AWS4-HMAC-SHA256'.")]
    UnsupportedAlgorithm(String),
    /// A required part of the `Authorization` header or presigned query is absent.
    /// The payload is the part's name (e.g. `Credential`, `X-Amz-Signature`).
    #[error("Authorization header requires '{0}' parameter.")]
    MissingParameter(&'static str),
    /// A part of the `Authorization` header or presigned query appears twice.
    #[error("Authorization parameter '{0}' appears more than once.")]
    DuplicateParameter(String),
    /// A piece of the `Authorization` header is not of the form `Key=Value`.
    #[error("Authorization header is malformed near '{0}': expected 'Key=Value'.")]
    MalformedParameter(String),
    /// The credential is not `keyid/date/region/service/terminator`.
    #[error(
        "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{0}'"
    )]
    MalformedCredential(String),
    /// The credential date is not `YYYYMMDD`.
    #[error("Invalid credential date '{0}': expected YYYYMMDD.")]
    MalformedCredentialDate(String),
    /// `SignedHeaders` is empty or contains an empty name.
    #[error("SignedHeaders '{0}' is malformed.")]
    MalformedSignedHeaders(String),
    /// The signature is not 64 hexadecimal characters.
    #[error("Signature must be 64 hexadecimal characters.")]
    MalformedSignature,
    /// Neither `X-Amz-Date` nor `Date` is present.
    #[error("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")]
    MissingDate,
    /// The date is not in the form `YYYYMMDDTHHMMSSZ`.
    #[error("Invalid X-Amz-Date '{0}': expected the form YYYYMMDDTHHMMSSZ.")]
    MalformedDate(String),
    /// `host` is not among the signed headers.
    #[error("The 'host' header must be signed (SignedHeaders must include 'host').")]
    HostNotSigned,
    /// A header named in `SignedHeaders` is absent from the request.
    #[error("Header '{0}' is listed in SignedHeaders but absent from the request.")]
    SignedHeaderAbsent(String),
    /// `X-Amz-Expires` is not a number of seconds between 1 and 604800.
    #[error("X-Amz-Expires '{0}' must be a number of seconds between 1 and 604800.")]
    InvalidExpires(String),

    // ---- UnrecognizedClientException, 403 ----
    /// The access key id is unknown. This crate never returns it: the caller
    /// looks up the secret and returns this variant when there is none.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,

    // ---- InvalidSignatureException, 403 ----
    /// The signature does not match the one computed from the secret.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    SignatureMismatch,
    /// The request date is too far in the past.
    #[error("Signature expired: {signed} is now earlier than {earliest} ({now} - {minutes} min.)")]
    Expired {
        /// The request's `X-Amz-Date`.
        signed: String,
        /// The earliest date still accepted.
        earliest: String,
        /// The server's time.
        now: String,
        /// The tolerated skew, in minutes.
        minutes: u64,
    },
    /// The request date is too far in the future.
    #[error(
        "Signature not yet current: {signed} is still later than {latest} ({now} + {minutes} min.)"
    )]
    NotYetCurrent {
        /// The request's `X-Amz-Date`.
        signed: String,
        /// The latest date still accepted.
        latest: String,
        /// The server's time.
        now: String,
        /// The tolerated skew, in minutes.
        minutes: u64,
    },
    /// A presigned URL is used after `X-Amz-Date + X-Amz-Expires`.
    #[error("Signature expired: {signed} + {expires} seconds is now earlier than {now}")]
    PresignExpired {
        /// The URL's `X-Amz-Date`.
        signed: String,
        /// The URL's `X-Amz-Expires`.
        expires: u64,
        /// The server's time.
        now: String,
    },
    /// The credential scope names a service this server does not serve.
    #[error("Credential should be scoped to correct service: '{0}'.")]
    WrongService(String),
    /// The credential scope's region is not a region name.
    #[error("Credential should be scoped to a valid region, not '{0}'.")]
    InvalidRegion(String),
    /// The credential scope does not end with `aws4_request`.
    #[error("Credential should be scoped with a valid terminator: 'aws4_request', not '{0}'.")]
    InvalidTerminator(String),
    /// The credential date differs from the date of `X-Amz-Date`.
    #[error(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope}' != '{date}', from '{amz_date}'."
    )]
    DateMismatch {
        /// Date in the credential scope.
        scope: String,
        /// First eight characters of `amz_date`.
        date: String,
        /// The request's `X-Amz-Date`.
        amz_date: String,
    },
    /// `x-amz-content-sha256: UNSIGNED-PAYLOAD` while the options forbid it.
    #[error("UNSIGNED-PAYLOAD is not accepted; sign the payload.")]
    UnsignedPayloadRefused,

    // ---- XAmzContentSHA256Mismatch, 400 ----
    /// `x-amz-content-sha256` is neither a hex SHA-256 nor `UNSIGNED-PAYLOAD`,
    /// or does not match the body.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    ContentSha256Mismatch,
}

impl Error {
    /// The AWS error code, for the `x-amzn-ErrorType` header and the `__type` body field.
    pub fn code(&self) -> &'static str {
        match self {
            Error::MissingAuthentication => "MissingAuthenticationTokenException",
            Error::UnsupportedAlgorithm(_)
            | Error::MissingParameter(_)
            | Error::DuplicateParameter(_)
            | Error::MalformedParameter(_)
            | Error::MalformedCredential(_)
            | Error::MalformedCredentialDate(_)
            | Error::MalformedSignedHeaders(_)
            | Error::MalformedSignature
            | Error::MissingDate
            | Error::MalformedDate(_)
            | Error::HostNotSigned
            | Error::SignedHeaderAbsent(_)
            | Error::InvalidExpires(_) => "IncompleteSignatureException",
            Error::UnrecognizedClient => "UnrecognizedClientException",
            Error::SignatureMismatch
            | Error::Expired { .. }
            | Error::NotYetCurrent { .. }
            | Error::PresignExpired { .. }
            | Error::WrongService(_)
            | Error::InvalidRegion(_)
            | Error::InvalidTerminator(_)
            | Error::DateMismatch { .. }
            | Error::UnsignedPayloadRefused => "InvalidSignatureException",
            Error::ContentSha256Mismatch => "XAmzContentSHA256Mismatch",
        }
    }

    /// The HTTP status AWS answers with.
    pub fn status(&self) -> u16 {
        match self.code() {
            "IncompleteSignatureException" | "XAmzContentSHA256Mismatch" => 400,
            _ => 403,
        }
    }

    /// The message to send to the client (same as `to_string()`).
    pub fn message(&self) -> String {
        self.to_string()
    }
}
