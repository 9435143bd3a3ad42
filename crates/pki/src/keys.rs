//! Key generation, key algorithms and the CA signing-key backend trait.

use crate::{PkiError, der, pem_util};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, EcdsaSigningAlgorithm, KeyPair as _, RsaKeyPair};
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const OID_RSA_PSS: &str = "1.2.840.113549.1.1.10";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_P521: &str = "1.3.132.0.35";

/// Key types Onboard generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 (signs with SHA-256).
    EcdsaP256,
    /// RSA 2048 bits (signs with PKCS#1 v1.5 SHA-256); what AWS's CreateKeysAndCertificate uses.
    Rsa2048,
}

impl KeyAlgorithm {
    /// The configuration name: `ec-p256` or `rsa-2048`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ec-p256",
            KeyAlgorithm::Rsa2048 => "rsa-2048",
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = PkiError;
    /// Parses `ec-p256` or `rsa-2048` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, PkiError> {
        match s.to_ascii_lowercase().as_str() {
            "ec-p256" => Ok(KeyAlgorithm::EcdsaP256),
            "rsa-2048" => Ok(KeyAlgorithm::Rsa2048),
            _ => Err(PkiError::InvalidKeyAlgorithm(s.to_string())),
        }
    }
}

/// Named elliptic curves.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EcCurve {
    /// NIST P-256 (secp256r1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
    /// NIST P-521 (secp521r1).
    P521,
    /// Any other curve, by dotted OID (or empty when the parameters are not a named curve).
    Other(String),
}

/// The algorithm and size of a subject public key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PublicKeyAlgorithm {
    /// RSA (rsaEncryption or RSASSA-PSS keys) with the modulus size in bits.
    Rsa {
        /// Modulus length in bits.
        bits: usize,
    },
    /// ECDSA on a named curve.
    Ecdsa(EcCurve),
    /// Ed25519.
    Ed25519,
    /// Anything else, by dotted OID.
    Other(String),
}

impl PublicKeyAlgorithm {
    pub(crate) fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Self {
        let oid = spki.algorithm.algorithm.to_id_string();
        match oid.as_str() {
            OID_RSA_ENCRYPTION | OID_RSA_PSS => {
                let bits = match spki.parsed() {
                    Ok(PublicKey::RSA(rsa)) => bit_len(rsa.modulus),
                    _ => 0,
                };
                PublicKeyAlgorithm::Rsa { bits }
            }
            OID_EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string())
                    .unwrap_or_default();
                PublicKeyAlgorithm::Ecdsa(match curve.as_str() {
                    OID_P256 => EcCurve::P256,
                    OID_P384 => EcCurve::P384,
                    OID_P521 => EcCurve::P521,
                    _ => EcCurve::Other(curve),
                })
            }
            OID_ED25519 => PublicKeyAlgorithm::Ed25519,
            _ => PublicKeyAlgorithm::Other(oid),
        }
    }
}

impl fmt::Display for PublicKeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublicKeyAlgorithm::Rsa { bits } => write!(f, "RSA-{bits}"),
            PublicKeyAlgorithm::Ecdsa(EcCurve::P256) => f.write_str("EC P-256"),
            PublicKeyAlgorithm::Ecdsa(EcCurve::P384) => f.write_str("EC P-384"),
            PublicKeyAlgorithm::Ecdsa(EcCurve::P521) => f.write_str("EC P-521"),
            PublicKeyAlgorithm::Ecdsa(EcCurve::Other(oid)) => write!(f, "EC curve {oid}"),
            PublicKeyAlgorithm::Ed25519 => f.write_str("Ed25519"),
            PublicKeyAlgorithm::Other(oid) => write!(f, "key type {oid}"),
        }
    }
}

/// Bit length of a big-endian unsigned integer (leading zero bytes ignored).
fn bit_len(bytes: &[u8]) -> usize {
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    match bytes.get(skip) {
        None => 0,
        Some(first) => (bytes.len() - skip - 1) * 8 + (8 - first.leading_zeros() as usize),
    }
}

/// A freshly generated key pair, as handed to a device by CreateKeysAndCertificate.
///
/// `Debug` never prints the private key.
#[derive(Clone)]
pub struct GeneratedKey {
    algorithm: KeyAlgorithm,
    private_pem: String,
    public_pem: String,
    spki_der: Vec<u8>,
}

impl GeneratedKey {
    /// The key algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The private key: `-----BEGIN RSA PRIVATE KEY-----` (PKCS#1) for RSA, exactly like AWS,
    /// or `-----BEGIN EC PRIVATE KEY-----` (SEC1 / RFC 5915) for EC.
    pub fn private_key_pem(&self) -> &str {
        &self.private_pem
    }

    /// The public key as `-----BEGIN PUBLIC KEY-----` (SubjectPublicKeyInfo).
    pub fn public_key_pem(&self) -> &str {
        &self.public_pem
    }

    /// The SubjectPublicKeyInfo DER.
    pub fn public_key_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// A signing key backed by this key pair (e.g. to make it a CA key).
    pub fn signing_key(&self) -> Result<FileSigningKey, PkiError> {
        FileSigningKey::from_pem(&self.private_pem)
    }
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("algorithm", &self.algorithm)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

/// Generates a new key pair with aws-lc-rs.
pub fn generate_key(alg: KeyAlgorithm) -> Result<GeneratedKey, PkiError> {
    let (private_pem, spki_der) = match alg {
        KeyAlgorithm::Rsa2048 => {
            let kp = RsaKeyPair::generate(KeySize::Rsa2048)
                .map_err(|_| PkiError::KeyGeneration("RSA-2048"))?;
            let pkcs8 = kp
                .as_der()
                .map_err(|_| PkiError::KeyGeneration("RSA-2048"))?;
            let pkcs1 =
                pkcs8_inner_key(pkcs8.as_ref()).ok_or(PkiError::KeyGeneration("RSA-2048"))?;
            let spki = kp
                .public_key()
                .as_der()
                .map_err(|_| PkiError::KeyGeneration("RSA-2048"))?;
            (
                pem_util::encode("RSA PRIVATE KEY", pkcs1),
                spki.as_ref().to_vec(),
            )
        }
        KeyAlgorithm::EcdsaP256 => {
            let kp = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_ASN1_SIGNING)
                .map_err(|_| PkiError::KeyGeneration("EC P-256"))?;
            let sec1 = kp
                .private_key()
                .as_der()
                .map_err(|_| PkiError::KeyGeneration("EC P-256"))?;
            let spki = kp
                .public_key()
                .as_der()
                .map_err(|_| PkiError::KeyGeneration("EC P-256"))?;
            (
                pem_util::encode("EC PRIVATE KEY", sec1.as_ref()),
                spki.as_ref().to_vec(),
            )
        }
    };
    Ok(GeneratedKey {
        algorithm: alg,
        private_pem,
        public_pem: pem_util::encode("PUBLIC KEY", &spki_der),
        spki_der,
    })
}

/// The `privateKey` OCTET STRING content of a PKCS#8 PrivateKeyInfo (for RSA: the PKCS#1 key).
fn pkcs8_inner_key(pkcs8: &[u8]) -> Option<&[u8]> {
    let (tag, body, _) = der::read_tlv(pkcs8)?;
    if tag != der::TAG_SEQUENCE {
        return None;
    }
    let (_, _version, rest) = der::read_tlv(body)?;
    let (_, _alg, rest) = der::read_tlv(rest)?;
    let (tag, key, _) = der::read_tlv(rest)?;
    (tag == der::TAG_OCTET_STRING).then_some(key)
}

/// The signature algorithms a CA key signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// sha256WithRSAEncryption (PKCS#1 v1.5), the algorithm on AWS-issued certificates.
    RsaPkcs1Sha256,
    /// ecdsa-with-SHA256 on P-256.
    EcdsaP256Sha256,
    /// ecdsa-with-SHA384 on P-384.
    EcdsaP384Sha384,
    /// ecdsa-with-SHA512 on P-521.
    EcdsaP521Sha512,
}

impl SignatureAlgorithm {
    /// DER AlgorithmIdentifier for the certificate's `signature` fields.
    pub fn algorithm_identifier_der(self) -> Vec<u8> {
        match self {
            SignatureAlgorithm::RsaPkcs1Sha256 => der::seq(&[
                &der::oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b]),
                &[0x05, 0x00],
            ]),
            // ECDSA AlgorithmIdentifiers have absent parameters (RFC 5758 3.2).
            SignatureAlgorithm::EcdsaP256Sha256 => {
                der::seq(&[&der::oid(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02])])
            }
            SignatureAlgorithm::EcdsaP384Sha384 => {
                der::seq(&[&der::oid(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03])])
            }
            SignatureAlgorithm::EcdsaP521Sha512 => {
                der::seq(&[&der::oid(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04])])
            }
        }
    }
}

/// A CA signing key backend (file now, PKCS#11 later).
///
/// Implementations must be usable from many tasks at once.
pub trait SigningKey: Send + Sync {
    /// The public key as SubjectPublicKeyInfo DER.
    fn public_key_der(&self) -> &[u8];
    /// The algorithm `sign` produces.
    fn signature_algorithm(&self) -> SignatureAlgorithm;
    /// Signs `message`, returning the signature as it goes into an X.509 BIT STRING
    /// (ECDSA: DER `Ecdsa-Sig-Value`; RSA: the raw PKCS#1 signature).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError>;
}

enum FileKeyKind {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// A signing key loaded from a PEM private key (PKCS#1 `RSA PRIVATE KEY`, SEC1
/// `EC PRIVATE KEY`, or unencrypted PKCS#8 `PRIVATE KEY`; RSA 2048–8192 or EC P-256/P-384/P-521).
///
/// `Debug` never prints the key.
pub struct FileSigningKey {
    kind: FileKeyKind,
    algorithm: SignatureAlgorithm,
    spki: Vec<u8>,
    // Kept so that `CertificateAuthority::save` can write the key back out.
    pem: String,
}

impl fmt::Debug for FileSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSigningKey")
            .field("algorithm", &self.algorithm)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

const EC_SIGNING: [(&EcdsaSigningAlgorithm, SignatureAlgorithm); 3] = [
    (
        &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        SignatureAlgorithm::EcdsaP256Sha256,
    ),
    (
        &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        SignatureAlgorithm::EcdsaP384Sha384,
    ),
    (
        &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
        SignatureAlgorithm::EcdsaP521Sha512,
    ),
];

impl FileSigningKey {
    /// Parses a PEM private key. An `EC PARAMETERS` block (as written by
    /// `openssl ecparam -genkey`) is skipped; encrypted keys are refused.
    pub fn from_pem(pem: &str) -> Result<Self, PkiError> {
        let blocks: Vec<_> = pem_util::split(pem)?
            .into_iter()
            .filter(|b| b.label != "EC PARAMETERS")
            .collect();
        let block = match blocks.as_slice() {
            [] => {
                return Err(PkiError::PemEmpty {
                    expected: "PRIVATE KEY",
                });
            }
            [one] => one,
            more => return Err(PkiError::PemTooManyBlocks { found: more.len() }),
        };
        let der = block.der.as_slice();
        let (kind, algorithm) = match block.label.as_str() {
            "RSA PRIVATE KEY" => (
                FileKeyKind::Rsa(
                    RsaKeyPair::from_der(der)
                        .map_err(|e| PkiError::KeyParse(format!("RSA key rejected: {e}")))?,
                ),
                SignatureAlgorithm::RsaPkcs1Sha256,
            ),
            "EC PRIVATE KEY" => EC_SIGNING
                .iter()
                .find_map(|(alg, sig)| {
                    EcdsaKeyPair::from_private_key_der(alg, der)
                        .ok()
                        .map(|k| (FileKeyKind::Ec(k), *sig))
                })
                .ok_or_else(|| {
                    PkiError::KeyParse("EC key is not a valid P-256, P-384 or P-521 key".into())
                })?,
            "PRIVATE KEY" => {
                if let Ok(k) = RsaKeyPair::from_pkcs8(der) {
                    (FileKeyKind::Rsa(k), SignatureAlgorithm::RsaPkcs1Sha256)
                } else {
                    EC_SIGNING
                        .iter()
                        .find_map(|(alg, sig)| {
                            EcdsaKeyPair::from_pkcs8(alg, der)
                                .ok()
                                .map(|k| (FileKeyKind::Ec(k), *sig))
                        })
                        .ok_or_else(|| {
                            PkiError::KeyParse(
                                "PKCS#8 key is neither RSA 2048-8192 nor EC P-256/P-384/P-521"
                                    .into(),
                            )
                        })?
                }
            }
            "ENCRYPTED PRIVATE KEY" => {
                return Err(PkiError::KeyParse(
                    "encrypted private keys are not supported; decrypt it first".into(),
                ));
            }
            other => {
                return Err(PkiError::PemUnexpectedLabel {
                    expected: "PRIVATE KEY",
                    found: other.to_string(),
                });
            }
        };
        let spki = match &kind {
            FileKeyKind::Rsa(k) => k.public_key().as_der().map(|d| d.as_ref().to_vec()),
            FileKeyKind::Ec(k) => k.public_key().as_der().map(|d| d.as_ref().to_vec()),
        }
        .map_err(|_| PkiError::KeyParse("cannot encode the public key".into()))?;
        Ok(Self {
            kind,
            algorithm,
            spki,
            pem: pem_util::encode(&block.label, der),
        })
    }

    /// Reads and parses a PEM private key file.
    pub fn load(path: &Path) -> Result<Self, PkiError> {
        let text = std::fs::read_to_string(path).map_err(|source| PkiError::Io {
            op: "reading",
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_pem(&text)
    }

    /// The private key PEM, for writing it back to a 0600 file.
    pub(crate) fn private_key_pem(&self) -> &str {
        &self.pem
    }
}

impl SigningKey for FileSigningKey {
    fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    fn signature_algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        let rng = SystemRandom::new();
        match &self.kind {
            FileKeyKind::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .map_err(|_| PkiError::Signing("RSA signing failed".into()))?;
                Ok(sig)
            }
            FileKeyKind::Ec(k) => k
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| PkiError::Signing("ECDSA signing failed".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_len(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bit_len(&[0x01]), 1);
        assert_eq!(bit_len(&[0x00]), 0);
        assert_eq!(bit_len(&[]), 0);
    }

    #[test]
    fn key_algorithm_names_round_trip() {
        for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048] {
            assert_eq!(alg.as_str().parse::<KeyAlgorithm>().expect("parse"), alg);
        }
        assert_eq!(
            "RSA-2048".parse::<KeyAlgorithm>().expect("parse"),
            KeyAlgorithm::Rsa2048
        );
        assert!(matches!(
            "ed25519".parse::<KeyAlgorithm>(),
            Err(PkiError::InvalidKeyAlgorithm(_))
        ));
    }
}
