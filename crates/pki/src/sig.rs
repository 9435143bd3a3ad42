//! Signature verification over raw X.509 structures, dispatched by OID to aws-lc-rs.
//!
//! x509-parser's own `verify_signature` lacks ECDSA with SHA-512 and P-521 and accepts SHA-1,
//! so the dispatch is done here.

use crate::PkiError;
use crate::keys::{EcCurve, PublicKeyAlgorithm};
use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::signature_algorithm::RsaSsaPssParams;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

const RSA_SHA1: &str = "1.2.840.113549.1.1.5";
const RSA_SHA256: &str = "1.2.840.113549.1.1.11";
const RSA_SHA384: &str = "1.2.840.113549.1.1.12";
const RSA_SHA512: &str = "1.2.840.113549.1.1.13";
const RSA_PSS: &str = "1.2.840.113549.1.1.10";
const ECDSA_SHA1: &str = "1.2.840.10045.4.1";
const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
const ECDSA_SHA512: &str = "1.2.840.10045.4.3.4";
const ED25519: &str = "1.3.101.112";
const SHA256: &str = "2.16.840.1.101.3.4.2.1";
const SHA384: &str = "2.16.840.1.101.3.4.2.2";
const SHA512: &str = "2.16.840.1.101.3.4.2.3";

/// Human-readable name of a signature algorithm OID, for error messages.
pub(crate) fn signature_algorithm_name(oid: &str) -> String {
    let name = match oid {
        RSA_SHA1 => "sha1WithRSAEncryption",
        RSA_SHA256 => "sha256WithRSAEncryption",
        RSA_SHA384 => "sha384WithRSAEncryption",
        RSA_SHA512 => "sha512WithRSAEncryption",
        RSA_PSS => "RSASSA-PSS",
        ECDSA_SHA1 => "ecdsa-with-SHA1",
        ECDSA_SHA256 => "ecdsa-with-SHA256",
        ECDSA_SHA384 => "ecdsa-with-SHA384",
        ECDSA_SHA512 => "ecdsa-with-SHA512",
        ED25519 => "Ed25519",
        other => return other.to_string(),
    };
    name.to_string()
}

/// Verifies `signature` over `message` with `spki`, using the algorithm named by `alg`.
///
/// SHA-1 is only accepted when `allow_sha1` is set (CSR self-signatures: they prove possession
/// of the key, they do not establish trust). A wrong signature is `SignatureInvalid`.
pub(crate) fn verify(
    spki: &SubjectPublicKeyInfo<'_>,
    alg: &AlgorithmIdentifier<'_>,
    signature: &[u8],
    message: &[u8],
    allow_sha1: bool,
) -> Result<(), PkiError> {
    let key_alg = PublicKeyAlgorithm::from_spki(spki);
    let sig_oid = alg.algorithm.to_id_string();
    let unsupported = || {
        PkiError::UnsupportedSignatureAlgorithm(format!(
            "{} with a {key_alg} key",
            signature_algorithm_name(&sig_oid)
        ))
    };
    let verifier: &'static dyn VerificationAlgorithm = match (&key_alg, sig_oid.as_str()) {
        (PublicKeyAlgorithm::Rsa { bits }, _) if *bits < 2048 => {
            return Err(PkiError::UnsupportedKey(format!(
                "RSA key of {bits} bits is too small for signature verification (minimum 2048)"
            )));
        }
        (PublicKeyAlgorithm::Rsa { .. }, RSA_SHA1) if allow_sha1 => {
            &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
        }
        (PublicKeyAlgorithm::Rsa { .. }, RSA_SHA256) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (PublicKeyAlgorithm::Rsa { .. }, RSA_SHA384) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (PublicKeyAlgorithm::Rsa { .. }, RSA_SHA512) => &signature::RSA_PKCS1_2048_8192_SHA512,
        (PublicKeyAlgorithm::Rsa { .. }, RSA_PSS) => {
            let params = alg
                .parameters
                .as_ref()
                .and_then(|p| RsaSsaPssParams::try_from(p).ok())
                .ok_or_else(unsupported)?;
            match params.hash_algorithm_oid().to_id_string().as_str() {
                SHA256 => &signature::RSA_PSS_2048_8192_SHA256,
                SHA384 => &signature::RSA_PSS_2048_8192_SHA384,
                SHA512 => &signature::RSA_PSS_2048_8192_SHA512,
                _ => return Err(unsupported()),
            }
        }
        (PublicKeyAlgorithm::Ecdsa(curve), oid) => match (curve, oid) {
            (EcCurve::P256, ECDSA_SHA1) if allow_sha1 => &signature::ECDSA_P256_SHA1_ASN1,
            (EcCurve::P256, ECDSA_SHA256) => &signature::ECDSA_P256_SHA256_ASN1,
            (EcCurve::P256, ECDSA_SHA384) => &signature::ECDSA_P256_SHA384_ASN1,
            (EcCurve::P256, ECDSA_SHA512) => &signature::ECDSA_P256_SHA512_ASN1,
            (EcCurve::P384, ECDSA_SHA256) => &signature::ECDSA_P384_SHA256_ASN1,
            (EcCurve::P384, ECDSA_SHA384) => &signature::ECDSA_P384_SHA384_ASN1,
            (EcCurve::P384, ECDSA_SHA512) => &signature::ECDSA_P384_SHA512_ASN1,
            (EcCurve::P521, ECDSA_SHA1) if allow_sha1 => &signature::ECDSA_P521_SHA1_ASN1,
            (EcCurve::P521, ECDSA_SHA256) => &signature::ECDSA_P521_SHA256_ASN1,
            (EcCurve::P521, ECDSA_SHA384) => &signature::ECDSA_P521_SHA384_ASN1,
            (EcCurve::P521, ECDSA_SHA512) => &signature::ECDSA_P521_SHA512_ASN1,
            _ => return Err(unsupported()),
        },
        (PublicKeyAlgorithm::Ed25519, ED25519) => &signature::ED25519,
        _ => return Err(unsupported()),
    };
    UnparsedPublicKey::new(verifier, &spki.subject_public_key.data)
        .verify(message, signature)
        .map_err(|_| PkiError::SignatureInvalid)
}
