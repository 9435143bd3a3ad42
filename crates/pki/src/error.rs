//! The crate's single error type.

use std::path::PathBuf;

/// Everything that can go wrong in this crate.
///
/// Messages describe what was wrong with the input; they never contain key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// The input contained no PEM block at all.
    #[error("no PEM block found (expected {expected})")]
    PemEmpty {
        /// The PEM label that was expected, e.g. `CERTIFICATE`.
        expected: &'static str,
    },
    /// A PEM block was syntactically broken (bad BEGIN/END lines, bad base64, ...).
    #[error("malformed PEM: {0}")]
    PemMalformed(String),
    /// A PEM block had the wrong label, e.g. a key where a certificate was expected.
    #[error("expected a PEM block labelled '{expected}' but found '{found}'")]
    PemUnexpectedLabel {
        /// The label that was expected.
        expected: &'static str,
        /// The label that was found (labels never contain key material).
        found: String,
    },
    /// Text other than whitespace appeared outside the PEM blocks.
    #[error("unexpected text outside PEM blocks at line {line}")]
    PemTrailingData {
        /// 1-based line number of the first offending line.
        line: usize,
    },
    /// More PEM blocks than allowed.
    #[error("expected exactly one PEM block but found {found}")]
    PemTooManyBlocks {
        /// How many blocks the input had.
        found: usize,
    },
    /// The DER inside a certificate PEM is not a valid X.509 certificate.
    #[error("invalid X.509 certificate: {0}")]
    CertificateParse(String),
    /// The DER inside a CSR PEM is not a valid PKCS#10 request.
    #[error("invalid certificate signing request: {0}")]
    CsrParse(String),
    /// The CSR's self-signature does not verify with the CSR's own public key.
    #[error("the certificate signing request's signature does not verify with its own public key")]
    CsrSignature,
    /// A key type or size that is not accepted here.
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    /// A signature algorithm that is not accepted here.
    #[error("unsupported signature algorithm: {0}")]
    UnsupportedSignatureAlgorithm(String),
    /// The child certificate's issuer name differs from the issuer's subject name.
    #[error(
        "certificate issuer name '{child_issuer}' does not match the CA subject '{ca_subject}'"
    )]
    IssuerMismatch {
        /// The child's issuer name.
        child_issuer: String,
        /// The presumed issuer's subject name.
        ca_subject: String,
    },
    /// The certificate's signature does not verify with the issuer's public key.
    #[error("certificate signature does not verify with the issuer's public key")]
    SignatureInvalid,
    /// Path building / validation with webpki failed.
    #[error("certificate chain validation failed: {0}")]
    Chain(String),
    /// A private key could not be parsed (the message never includes the key).
    #[error("invalid private key: {0}")]
    KeyParse(String),
    /// The CA private key does not belong to the CA certificate.
    #[error("the private key does not match the certificate's public key")]
    KeyMismatch,
    /// The certificate is not a CA certificate (BasicConstraints cA is not true).
    #[error("certificate is not a CA certificate (BasicConstraints cA=true missing)")]
    NotACa,
    /// The key backend does not allow exporting the private key.
    #[error("this CA's signing key cannot be exported to a file")]
    KeyNotExportable,
    /// Key generation failed inside the crypto library.
    #[error("key generation failed for {0}")]
    KeyGeneration(&'static str),
    /// Signing failed inside the key backend.
    #[error("signing failed: {0}")]
    Signing(String),
    /// A subject alternative name was rejected.
    #[error(
        "invalid subject alternative name '{0}': expected a DNS name, wildcard DNS name or IP address"
    )]
    InvalidSan(String),
    /// A name given for a new certificate was rejected.
    #[error("invalid name: {0}")]
    InvalidName(String),
    /// Unknown key algorithm name.
    #[error("unknown key algorithm '{0}' (expected 'ec-p256' or 'rsa-2048')")]
    InvalidKeyAlgorithm(String),
    /// A time could not be represented in a certificate.
    #[error("time {0} cannot be encoded in a certificate")]
    InvalidTime(i64),
    /// Reading or writing a file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("reading", "writing").
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}
