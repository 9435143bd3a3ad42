#![forbid(unsafe_code)]
//! X.509 for Onboard: parsing, certificate ids, CSR verification, signature and chain checks,
//! key generation and a certificate authority with pluggable signing keys.
//!
//! # API
//!
//! * [`cert_id`]`(der) -> String`: lowercase hex SHA-256 of the DER; the id of device and CA
//!   certificates alike.
//! * [`Certificate::from_pem`] (exactly one `CERTIFICATE` block; only whitespace around it),
//!   [`Certificate::from_der`], [`parse_pem_chain`] (one or more). A [`Certificate`] is an
//!   `Arc` inside (cheap clone, `Send + Sync`) and exposes the DER, a normalised PEM, the id,
//!   subject/issuer as [`DistinguishedName`] (ordered [`NameAttribute`]s with OpenSSL short
//!   key, AWS policy-variable name and value; repeated and multi-valued allowed) plus their
//!   raw DER, serial, validity in unix seconds, `is_ca`, SANs by type, SKI/AKI, SPKI DER and
//!   [`PublicKeyAlgorithm`].
//! * [`verify_signed_by`]`(child, issuer)`: issuer name matches and signature verifies
//!   (RegisterCertificate, and RegisterCACertificate's proof of possession, where the caller
//!   also compares `verification_cert.common_name()` with the registration code).
//! * [`verify_chain`]`(leaf, intermediates, anchors, now)`: rustls-webpki path validation for
//!   TLS client auth; leaves without EKU are accepted. X.509 v1 leaves (what `openssl x509 -req`
//!   makes without an extension file, and AWS accepts) are checked by a small built-in path
//!   check because webpki refuses v1.
//! * [`Csr::from_pem`]: PKCS#10, self-signature verified, key RSA 2048–4096 or EC P-256/P-384.
//! * [`generate_key`]`(`[`KeyAlgorithm`]`) -> `[`GeneratedKey`]: RSA keys are PKCS#1
//!   `RSA PRIVATE KEY` like AWS's CreateKeysAndCertificate; EC keys are SEC1 `EC PRIVATE KEY`;
//!   public keys are SPKI `PUBLIC KEY`.
//! * [`CertificateAuthority`]: `generate_root`, `load`/`save` (key file 0600 from creation),
//!   `issue_server_cert`, `issue_device_cert_from_csr`, `issue_device_cert_with_new_key`, all
//!   `&self` and safe to call concurrently. The key sits behind the [`SigningKey`] trait
//!   (public key, algorithm, sign); [`FileSigningKey`] is the file backend.
//!
//! Every function that depends on time takes `now` as unix seconds; nothing here reads the clock.
//!
//! # Device certificate profile (as AWS issues them)
//!
//! v3; 20-byte random positive serial; issuer = the CA certificate's subject DER verbatim;
//! notBefore = `now`, notAfter = 2049-12-31T23:59:59Z; subject and SubjectPublicKeyInfo copied
//! byte for byte from the CSR (or `CN=AWS IoT Certificate` with a new key); extensions AKI,
//! SKI, BasicConstraints CA:FALSE (critical), KeyUsage digitalSignature (critical). Signed with
//! sha256WithRSAEncryption for RSA CA keys, ecdsa-with-SHA256/384/512 for P-256/384/521 CA keys.
//! Key identifiers are RFC 7093 method 1 (truncated SHA-256).
//!
//! # Why it is built this way
//!
//! * Certificates are assembled by hand in DER (module `der`) instead of with rcgen: rcgen's
//!   name type keeps one value per attribute type and no multi-valued RDNs, so it cannot copy
//!   a CSR subject exactly, and it re-encodes the issuer name, which could break byte-wise
//!   issuer/subject matching. By hand, subject, issuer and SPKI are copied verbatim and any
//!   [`SigningKey`] backend (PKCS#11 later) signs the TBS bytes.
//! * CSRs are parsed with x509-parser, not rcgen, because rcgen refuses CSRs with extensions
//!   it does not know. Requested extensions are ignored, as AWS ignores them.
//! * Signature verification dispatches to aws-lc-rs itself: x509-parser's helper lacks
//!   ECDSA-SHA512 and P-521 and accepts SHA-1. SHA-1 is accepted only for CSR
//!   self-signatures (proof of possession, not trust; AWS re-signs anyway).
//! * PEM input is split strictly (only whitespace outside blocks), because the API stores
//!   what it accepts and trailing junk is more likely a mistake than intent.

mod ca;
mod cert;
mod chain;
mod csr;
mod der;
mod error;
mod keys;
mod name;
mod pem_util;
mod sig;

pub use ca::{
    CREATE_KEYS_SUBJECT_CN, CertificateAuthority, DEVICE_CERT_NOT_AFTER, ROOT_VALIDITY_SECS,
    SERVER_CERT_BACKDATE_SECS, SERVER_CERT_VALIDITY_SECS,
};
pub use cert::{Certificate, SubjectAltNames, parse_pem_chain, verify_signed_by};
pub use chain::{ChainInfo, verify_chain};
pub use csr::Csr;
pub use error::PkiError;
pub use keys::{
    EcCurve, FileSigningKey, GeneratedKey, KeyAlgorithm, PublicKeyAlgorithm, SignatureAlgorithm,
    SigningKey, generate_key,
};
pub use name::{DistinguishedName, NameAttribute};

use sha2::{Digest, Sha256};

/// The certificate id: lowercase hex SHA-256 of the DER encoding.
pub fn cert_id(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}
