//! Parsed certificates.

use crate::keys::PublicKeyAlgorithm;
use crate::name::DistinguishedName;
use crate::{PkiError, cert_id, pem_util, sig};
use std::net::IpAddr;
use std::sync::Arc;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

/// Subject alternative names grouped by type (the groups AWS exposes as
/// `iot:Certificate.SubjectAlternativeName.*`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubjectAltNames {
    /// `DNSName` entries.
    pub dns_names: Vec<String>,
    /// `RFC822Name` (e-mail) entries.
    pub rfc822_names: Vec<String>,
    /// `UniformResourceIdentifier` entries.
    pub uris: Vec<String>,
    /// `IPAddress` entries (entries of a length other than 4 or 16 bytes are skipped).
    pub ip_addresses: Vec<IpAddr>,
    /// `DirectoryName` entries.
    pub directory_names: Vec<DistinguishedName>,
}

impl SubjectAltNames {
    /// True when there are no names of the supported types.
    pub fn is_empty(&self) -> bool {
        self.dns_names.is_empty()
            && self.rfc822_names.is_empty()
            && self.uris.is_empty()
            && self.ip_addresses.is_empty()
            && self.directory_names.is_empty()
    }
}

#[derive(Debug)]
struct Inner {
    der: Vec<u8>,
    pem: String,
    id: String,
    version: u32,
    subject: DistinguishedName,
    issuer: DistinguishedName,
    serial: Vec<u8>,
    not_before: i64,
    not_after: i64,
    is_ca: bool,
    sans: SubjectAltNames,
    subject_key_id: Option<Vec<u8>>,
    authority_key_id: Option<Vec<u8>>,
    spki_der: Vec<u8>,
    key_algorithm: PublicKeyAlgorithm,
}

/// A parsed X.509 certificate. Cheap to clone (shared), `Send + Sync`.
///
/// Everything is extracted once at parse time; equality is by DER.
#[derive(Clone, Debug)]
pub struct Certificate(Arc<Inner>);

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.0.der == other.0.der
    }
}
impl Eq for Certificate {}

impl Certificate {
    /// Parses exactly one `CERTIFICATE` PEM block; whitespace is the only other content allowed.
    pub fn from_pem(pem: &str) -> Result<Self, PkiError> {
        Self::from_der(&pem_util::single(pem, "CERTIFICATE")?)
    }

    /// Parses a DER certificate (no trailing bytes allowed).
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        let (rest, x509) = X509Certificate::from_der(der)
            .map_err(|e| PkiError::CertificateParse(e.to_string()))?;
        if !rest.is_empty() {
            return Err(PkiError::CertificateParse(format!(
                "{} trailing bytes after the certificate",
                rest.len()
            )));
        }
        let bad = |e: x509_parser::error::X509Error| PkiError::CertificateParse(e.to_string());
        let is_ca = x509
            .basic_constraints()
            .map_err(bad)?
            .is_some_and(|bc| bc.value.ca);
        let mut sans = SubjectAltNames::default();
        if let Some(ext) = x509.subject_alternative_name().map_err(bad)? {
            for name in &ext.value.general_names {
                match name {
                    GeneralName::DNSName(s) => sans.dns_names.push((*s).to_string()),
                    GeneralName::RFC822Name(s) => sans.rfc822_names.push((*s).to_string()),
                    GeneralName::URI(s) => sans.uris.push((*s).to_string()),
                    GeneralName::IPAddress(b) => {
                        if let Ok(v4) = <[u8; 4]>::try_from(*b) {
                            sans.ip_addresses.push(IpAddr::from(v4));
                        } else if let Ok(v6) = <[u8; 16]>::try_from(*b) {
                            sans.ip_addresses.push(IpAddr::from(v6));
                        }
                    }
                    GeneralName::DirectoryName(n) => {
                        sans.directory_names.push(DistinguishedName::from_x509(n));
                    }
                    _ => {}
                }
            }
        }
        let mut subject_key_id = None;
        let mut authority_key_id = None;
        for ext in x509.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => subject_key_id = Some(k.0.to_vec()),
                ParsedExtension::AuthorityKeyIdentifier(a) => {
                    authority_key_id = a.key_identifier.as_ref().map(|k| k.0.to_vec());
                }
                _ => {}
            }
        }
        let spki = x509.public_key();
        Ok(Certificate(Arc::new(Inner {
            der: der.to_vec(),
            pem: pem_util::encode("CERTIFICATE", der),
            id: cert_id(der),
            version: x509.version().0.saturating_add(1),
            subject: DistinguishedName::from_x509(x509.subject()),
            issuer: DistinguishedName::from_x509(x509.issuer()),
            serial: x509.raw_serial().to_vec(),
            not_before: x509.validity().not_before.timestamp(),
            not_after: x509.validity().not_after.timestamp(),
            is_ca,
            sans,
            subject_key_id,
            authority_key_id,
            spki_der: spki.raw.to_vec(),
            key_algorithm: PublicKeyAlgorithm::from_spki(spki),
        })))
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.0.der
    }

    /// PEM re-encoded from the DER: LF line endings, 64-column base64, trailing newline.
    pub fn pem(&self) -> &str {
        &self.0.pem
    }

    /// The certificate id: lowercase hex SHA-256 of the DER.
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// The X.509 version: 1, 2 or 3.
    pub fn version(&self) -> u32 {
        self.0.version
    }

    /// The subject name.
    pub fn subject(&self) -> &DistinguishedName {
        &self.0.subject
    }

    /// The issuer name.
    pub fn issuer(&self) -> &DistinguishedName {
        &self.0.issuer
    }

    /// The subject Name exactly as encoded.
    pub fn subject_der(&self) -> &[u8] {
        &self.0.subject.der
    }

    /// The issuer Name exactly as encoded.
    pub fn issuer_der(&self) -> &[u8] {
        &self.0.issuer.der
    }

    /// The first subject common name, if any.
    pub fn common_name(&self) -> Option<&str> {
        self.0.subject.common_name()
    }

    /// The serial number as lowercase hex of its magnitude (DER sign byte stripped, as
    /// `openssl x509 -serial` prints it, but lowercase).
    pub fn serial_hex(&self) -> String {
        let s = &self.0.serial;
        let skip = s
            .iter()
            .take_while(|b| **b == 0)
            .count()
            .min(s.len().saturating_sub(1));
        hex::encode(&s[skip..])
    }

    /// notBefore as unix seconds.
    pub fn not_before(&self) -> i64 {
        self.0.not_before
    }

    /// notAfter as unix seconds.
    pub fn not_after(&self) -> i64 {
        self.0.not_after
    }

    /// True when `not_before <= now_unix <= not_after`.
    pub fn is_valid_at(&self, now_unix: i64) -> bool {
        self.0.not_before <= now_unix && now_unix <= self.0.not_after
    }

    /// BasicConstraints cA=true.
    pub fn is_ca(&self) -> bool {
        self.0.is_ca
    }

    /// Subject alternative names by type.
    pub fn subject_alt_names(&self) -> &SubjectAltNames {
        &self.0.sans
    }

    /// The SubjectKeyIdentifier, when present.
    pub fn subject_key_id(&self) -> Option<&[u8]> {
        self.0.subject_key_id.as_deref()
    }

    /// The AuthorityKeyIdentifier keyIdentifier, when present.
    pub fn authority_key_id(&self) -> Option<&[u8]> {
        self.0.authority_key_id.as_deref()
    }

    /// The SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.0.spki_der
    }

    /// The subject public key's algorithm and size.
    pub fn key_algorithm(&self) -> &PublicKeyAlgorithm {
        &self.0.key_algorithm
    }

    /// True when the certificate is self-issued and its signature verifies with its own key.
    pub fn is_self_signed(&self) -> bool {
        verify_signed_by(self, self).is_ok()
    }
}

/// Parses one or more `CERTIFICATE` PEM blocks (leaf first, as in a TLS chain).
pub fn parse_pem_chain(pem: &str) -> Result<Vec<Certificate>, PkiError> {
    let blocks = pem_util::split(pem)?;
    if blocks.is_empty() {
        return Err(PkiError::PemEmpty {
            expected: "CERTIFICATE",
        });
    }
    blocks
        .into_iter()
        .map(|b| {
            if b.label == "CERTIFICATE" {
                Certificate::from_der(&b.der)
            } else {
                Err(PkiError::PemUnexpectedLabel {
                    expected: "CERTIFICATE",
                    found: b.label,
                })
            }
        })
        .collect()
}

/// Checks that `issuer` issued `child`: the child's issuer name matches the issuer's subject
/// (RFC 5280 name comparison) and the child's signature verifies with the issuer's public key.
///
/// Accepts RSA PKCS#1 v1.5 and RSA-PSS with SHA-256/384/512, ECDSA P-256/P-384/P-521 with
/// SHA-256/384/512, and Ed25519; SHA-1 and RSA keys under 2048 bits are refused. Validity
/// dates and BasicConstraints are not checked here (callers check what their operation needs).
pub fn verify_signed_by(child: &Certificate, issuer: &Certificate) -> Result<(), PkiError> {
    if !child.issuer().matches(issuer.subject()) {
        return Err(PkiError::IssuerMismatch {
            child_issuer: child.issuer().to_string(),
            ca_subject: issuer.subject().to_string(),
        });
    }
    // Both parsed successfully before, so these only fail on internal corruption.
    let (_, c) = X509Certificate::from_der(child.der())
        .map_err(|e| PkiError::CertificateParse(e.to_string()))?;
    let (_, i) = X509Certificate::from_der(issuer.der())
        .map_err(|e| PkiError::CertificateParse(e.to_string()))?;
    sig::verify(
        i.public_key(),
        &c.signature_algorithm,
        &c.signature_value.data,
        c.tbs_certificate.as_ref(),
        false,
    )
}
