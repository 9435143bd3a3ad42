//! PKCS#10 certificate signing requests.

use crate::keys::{EcCurve, PublicKeyAlgorithm};
use crate::name::DistinguishedName;
use crate::{PkiError, pem_util, sig};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

/// A verified CSR: its self-signature checked and its key of an accepted type.
///
/// Parsed with x509-parser rather than rcgen because rcgen refuses CSRs carrying extensions it
/// does not know; only the subject and the public key are used, so requested extensions are
/// ignored (as AWS does).
#[derive(Clone, Debug)]
pub struct Csr {
    der: Vec<u8>,
    subject: DistinguishedName,
    spki_der: Vec<u8>,
    key_algorithm: PublicKeyAlgorithm,
}

impl Csr {
    /// Parses exactly one `CERTIFICATE REQUEST` PEM block (`NEW CERTIFICATE REQUEST` is also
    /// accepted), verifies the self-signature and checks the key: RSA 2048–4096 bits, or ECDSA
    /// P-256 / P-384.
    pub fn from_pem(pem: &str) -> Result<Self, PkiError> {
        let blocks = pem_util::split(pem)?;
        let der = match blocks.as_slice() {
            [] => {
                return Err(PkiError::PemEmpty {
                    expected: "CERTIFICATE REQUEST",
                });
            }
            [b] if b.label == "CERTIFICATE REQUEST" || b.label == "NEW CERTIFICATE REQUEST" => {
                b.der.as_slice()
            }
            [b] => {
                return Err(PkiError::PemUnexpectedLabel {
                    expected: "CERTIFICATE REQUEST",
                    found: b.label.clone(),
                });
            }
            more => return Err(PkiError::PemTooManyBlocks { found: more.len() }),
        };
        Self::from_der(der)
    }

    /// Parses and verifies a DER CSR (see [`Csr::from_pem`]).
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        let (rest, req) = X509CertificationRequest::from_der(der)
            .map_err(|e| PkiError::CsrParse(e.to_string()))?;
        if !rest.is_empty() {
            return Err(PkiError::CsrParse(format!(
                "{} trailing bytes after the request",
                rest.len()
            )));
        }
        let info = &req.certification_request_info;
        let key_algorithm = PublicKeyAlgorithm::from_spki(&info.subject_pki);
        match &key_algorithm {
            PublicKeyAlgorithm::Rsa { bits } if (2048..=4096).contains(bits) => {}
            PublicKeyAlgorithm::Ecdsa(EcCurve::P256 | EcCurve::P384) => {}
            other => {
                return Err(PkiError::UnsupportedKey(format!(
                    "CSR key is {other}; accepted are RSA 2048-4096 bits and EC P-256/P-384"
                )));
            }
        }
        // The CSR's own hash does not matter (AWS re-signs); SHA-1 is fine for proof of possession.
        sig::verify(
            &info.subject_pki,
            &req.signature_algorithm,
            &req.signature_value.data,
            info.raw,
            true,
        )
        .map_err(|e| match e {
            PkiError::SignatureInvalid => PkiError::CsrSignature,
            other => other,
        })?;
        Ok(Csr {
            der: der.to_vec(),
            subject: DistinguishedName::from_x509(&info.subject),
            spki_der: info.subject_pki.raw.to_vec(),
            key_algorithm,
        })
    }

    /// The DER encoding of the request.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The requested subject, attributes in order.
    pub fn subject(&self) -> &DistinguishedName {
        &self.subject
    }

    /// The SubjectPublicKeyInfo DER, copied verbatim into issued certificates.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The key's algorithm and size.
    pub fn key_algorithm(&self) -> &PublicKeyAlgorithm {
        &self.key_algorithm
    }
}
