//! The certificate authority: issuing with a pluggable signing key.

use crate::keys::{FileSigningKey, GeneratedKey, KeyAlgorithm, SigningKey, generate_key};
use crate::{Certificate, Csr, PkiError, der};
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

/// notAfter of every device certificate: 2049-12-31T23:59:59Z, AWS's fixed expiry.
pub const DEVICE_CERT_NOT_AFTER: i64 = 2_524_607_999;
/// Validity of a root made by [`CertificateAuthority::generate_root`]: 20 years.
pub const ROOT_VALIDITY_SECS: i64 = 20 * 36_525 * 86_400 / 100;
/// Validity of server certificates: 825 days (the longest browsers ever allowed).
pub const SERVER_CERT_VALIDITY_SECS: i64 = 825 * 86_400;
/// Server certificates are backdated this much to tolerate clients with slow clocks.
pub const SERVER_CERT_BACKDATE_SECS: i64 = 300;
/// Subject CN of certificates made by CreateKeysAndCertificate, as on AWS.
pub const CREATE_KEYS_SUBJECT_CN: &str = "AWS IoT Certificate";

// Encoded OID contents.
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_SKI: &[u8] = &[0x55, 0x1d, 0x0e];
const OID_KU: &[u8] = &[0x55, 0x1d, 0x0f];
const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];
const OID_BC: &[u8] = &[0x55, 0x1d, 0x13];
const OID_AKI: &[u8] = &[0x55, 0x1d, 0x23];
const OID_EKU: &[u8] = &[0x55, 0x1d, 0x25];
const OID_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];

// KeyUsage BIT STRINGs (first byte: number of unused bits).
const KU_DIGITAL_SIGNATURE: &[u8] = &[0x03, 0x02, 0x07, 0x80];
const KU_DIGITAL_SIGNATURE_KEY_ENCIPHERMENT: &[u8] = &[0x03, 0x02, 0x05, 0xa0];
const KU_CERT_SIGN_CRL_SIGN: &[u8] = &[0x03, 0x02, 0x01, 0x06];

/// A CA certificate plus its signing key. Cheap to clone; all issuing methods take `&self`
/// and may run concurrently.
#[derive(Clone)]
pub struct CertificateAuthority {
    cert: Certificate,
    key: Arc<dyn SigningKey>,
    // Only file-backed keys can be saved; HSM keys never leave the HSM.
    file_key: Option<Arc<FileSigningKey>>,
    // The keyIdentifier put into issued certificates' AKI.
    key_id: Vec<u8>,
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("cert_id", &self.cert.id())
            .field("subject", &self.cert.subject().to_string())
            .field("signature_algorithm", &self.key.signature_algorithm())
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Pairs a CA certificate with a signing key (any backend). Fails when the certificate is
    /// not a CA (BasicConstraints cA=true) or the key does not match its public key.
    pub fn new(cert: Certificate, key: Arc<dyn SigningKey>) -> Result<Self, PkiError> {
        Self::build(cert, key, None)
    }

    fn build(
        cert: Certificate,
        key: Arc<dyn SigningKey>,
        file_key: Option<Arc<FileSigningKey>>,
    ) -> Result<Self, PkiError> {
        if !cert.is_ca() {
            return Err(PkiError::NotACa);
        }
        // Compare key bits and algorithm, not the whole SPKI DER: encoders differ in
        // inessential ways (e.g. explicit vs. omitted NULL parameters).
        let (a_alg, a_key) = spki_parts(cert.spki_der())?;
        let (b_alg, b_key) = spki_parts(key.public_key_der())?;
        if a_alg != b_alg || a_key != b_key {
            return Err(PkiError::KeyMismatch);
        }
        let key_id = match cert.subject_key_id() {
            Some(id) => id.to_vec(),
            None => key_identifier(cert.spki_der())?,
        };
        Ok(Self {
            cert,
            key,
            file_key,
            key_id,
        })
    }

    fn from_file_key(cert: Certificate, key: FileSigningKey) -> Result<Self, PkiError> {
        let key = Arc::new(key);
        Self::build(cert, key.clone(), Some(key))
    }

    /// Makes a new self-signed root: subject `CN=<common_name>`, CA:TRUE (critical),
    /// KeyUsage keyCertSign+cRLSign (critical), SKI, valid from `now` for 20 years.
    pub fn generate_root(common_name: &str, alg: KeyAlgorithm, now: i64) -> Result<Self, PkiError> {
        if common_name.trim().is_empty() || common_name.chars().count() > 64 {
            return Err(PkiError::InvalidName(
                "CA common name must be 1 to 64 characters".into(),
            ));
        }
        let key = generate_key(alg)?.signing_key()?;
        let subject = cn_name(common_name);
        let spki = key.public_key_der().to_vec();
        let exts = [
            der::extension(OID_BC, true, &der::seq(&[&[0x01, 0x01, 0xff]])),
            der::extension(OID_KU, true, KU_CERT_SIGN_CRL_SIGN),
            der::extension(
                OID_SKI,
                false,
                &der::tlv(der::TAG_OCTET_STRING, &key_identifier(&spki)?),
            ),
        ];
        let cert = build_certificate(
            &key,
            &subject,
            &subject,
            &spki,
            now,
            now.saturating_add(ROOT_VALIDITY_SECS),
            &exts,
        )?;
        Self::from_file_key(cert, key)
    }

    /// Loads a PEM CA certificate and PEM private key (see [`FileSigningKey::from_pem`] for the
    /// key formats).
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, PkiError> {
        let text = std::fs::read_to_string(cert_path).map_err(|source| PkiError::Io {
            op: "reading",
            path: cert_path.to_path_buf(),
            source,
        })?;
        let cert = Certificate::from_pem(&text)?;
        Self::from_file_key(cert, FileSigningKey::load(key_path)?)
    }

    /// Writes the certificate (mode 0644) and private key (mode 0600, set at creation) as PEM.
    /// Each file is written to a temporary name and renamed, so readers never see half a file.
    pub fn save(&self, cert_path: &Path, key_path: &Path) -> Result<(), PkiError> {
        let key = self.file_key.as_ref().ok_or(PkiError::KeyNotExportable)?;
        write_file_atomic(key_path, key.private_key_pem().as_bytes(), 0o600)?;
        write_file_atomic(cert_path, self.cert.pem().as_bytes(), 0o644)
    }

    /// The CA certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    /// The signing key backend.
    pub fn signing_key(&self) -> &Arc<dyn SigningKey> {
        &self.key
    }

    /// Issues a TLS server certificate for `sans` (DNS names, `*.` wildcard DNS names and IP
    /// literals, mixed; IPs become IP SANs) with a new key. Subject CN is the first SAN when it
    /// fits in 64 characters. EKU serverAuth, KeyUsage digitalSignature (+keyEncipherment for
    /// RSA), CA:FALSE; valid from `now` minus 5 minutes for 825 days.
    pub fn issue_server_cert(
        &self,
        sans: &[String],
        alg: KeyAlgorithm,
        now: i64,
    ) -> Result<(Certificate, GeneratedKey), PkiError> {
        let first = sans
            .first()
            .ok_or_else(|| PkiError::InvalidSan("(no names given)".into()))?;
        let mut general_names = Vec::with_capacity(sans.len());
        for s in sans {
            general_names.push(encode_san(s)?);
        }
        let first = first.trim();
        let subject_has_cn = first.chars().count() <= 64;
        let subject = if subject_has_cn {
            cn_name(first)
        } else {
            der::seq(&[])
        };
        let key = generate_key(alg)?;
        let ku = match alg {
            KeyAlgorithm::Rsa2048 => KU_DIGITAL_SIGNATURE_KEY_ENCIPHERMENT,
            KeyAlgorithm::EcdsaP256 => KU_DIGITAL_SIGNATURE,
        };
        let refs: Vec<&[u8]> = general_names.iter().map(Vec::as_slice).collect();
        let spki = key.public_key_der();
        let exts = [
            der::extension(OID_BC, true, &der::seq(&[])),
            der::extension(OID_KU, true, ku),
            der::extension(OID_EKU, false, &der::seq(&[&der::oid(OID_SERVER_AUTH)])),
            // RFC 5280 4.2.1.6: SAN is critical when the subject is empty.
            der::extension(OID_SAN, !subject_has_cn, &der::seq(&refs)),
            self.aki_extension(),
            der::extension(
                OID_SKI,
                false,
                &der::tlv(der::TAG_OCTET_STRING, &key_identifier(spki)?),
            ),
        ];
        let not_before = now.saturating_sub(SERVER_CERT_BACKDATE_SECS);
        let cert = self.sign(
            &subject,
            spki,
            not_before,
            now.saturating_add(SERVER_CERT_VALIDITY_SECS),
            &exts,
        )?;
        Ok((cert, key))
    }

    /// Issues a device certificate for a verified CSR (CreateCertificateFromCsr): the CSR's
    /// subject DER and SubjectPublicKeyInfo DER are copied verbatim; device profile.
    pub fn issue_device_cert_from_csr(&self, csr: &Csr, now: i64) -> Result<Certificate, PkiError> {
        self.issue_device_cert(csr.subject().der.as_slice(), csr.spki_der(), now)
    }

    /// Issues a device certificate with a new key (CreateKeysAndCertificate): subject
    /// `CN=AWS IoT Certificate`; device profile.
    pub fn issue_device_cert_with_new_key(
        &self,
        alg: KeyAlgorithm,
        now: i64,
    ) -> Result<(Certificate, GeneratedKey), PkiError> {
        let key = generate_key(alg)?;
        let cert =
            self.issue_device_cert(&cn_name(CREATE_KEYS_SUBJECT_CN), key.public_key_der(), now)?;
        Ok((cert, key))
    }

    /// The device profile: notBefore `now`, notAfter 2049-12-31T23:59:59Z, AKI, SKI,
    /// CA:FALSE (critical), KeyUsage digitalSignature (critical).
    fn issue_device_cert(
        &self,
        subject: &[u8],
        spki: &[u8],
        now: i64,
    ) -> Result<Certificate, PkiError> {
        if now >= DEVICE_CERT_NOT_AFTER {
            return Err(PkiError::InvalidTime(now));
        }
        let exts = [
            self.aki_extension(),
            der::extension(
                OID_SKI,
                false,
                &der::tlv(der::TAG_OCTET_STRING, &key_identifier(spki)?),
            ),
            der::extension(OID_BC, true, &der::seq(&[])),
            der::extension(OID_KU, true, KU_DIGITAL_SIGNATURE),
        ];
        self.sign(subject, spki, now, DEVICE_CERT_NOT_AFTER, &exts)
    }

    fn aki_extension(&self) -> Vec<u8> {
        // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING }
        der::extension(OID_AKI, false, &der::seq(&[&der::tlv(0x80, &self.key_id)]))
    }

    fn sign(
        &self,
        subject: &[u8],
        spki: &[u8],
        not_before: i64,
        not_after: i64,
        exts: &[Vec<u8>],
    ) -> Result<Certificate, PkiError> {
        build_certificate(
            self.key.as_ref(),
            self.cert.subject_der(),
            subject,
            spki,
            not_before,
            not_after,
            exts,
        )
    }
}

/// Assembles and signs a v3 certificate.
fn build_certificate(
    key: &dyn SigningKey,
    issuer: &[u8],
    subject: &[u8],
    spki: &[u8],
    not_before: i64,
    not_after: i64,
    exts: &[Vec<u8>],
) -> Result<Certificate, PkiError> {
    let alg = key.signature_algorithm().algorithm_identifier_der();
    let validity = der::seq(&[&der::time(not_before)?, &der::time(not_after)?]);
    let ext_refs: Vec<&[u8]> = exts.iter().map(Vec::as_slice).collect();
    let extensions = der::tlv(0xa3, &der::seq(&ext_refs));
    let tbs = der::seq(&[
        &[0xa0, 0x03, 0x02, 0x01, 0x02], // [0] EXPLICIT version v3
        &der::uint(&random_serial()?),
        &alg,
        issuer,
        &validity,
        subject,
        spki,
        &extensions,
    ]);
    let signature = key.sign(&tbs)?;
    let cert = der::seq(&[&tbs, &alg, &der::bit_string(&signature)]);
    Certificate::from_der(&cert)
}

/// 20 random bytes, positive, first byte non-zero so the INTEGER is exactly 20 bytes.
fn random_serial() -> Result<[u8; 20], PkiError> {
    let mut serial = [0u8; 20];
    aws_lc_rs::rand::fill(&mut serial)
        .map_err(|_| PkiError::Signing("random number generator failed".into()))?;
    serial[0] = (serial[0] & 0x7f).max(1);
    Ok(serial)
}

/// Name with a single CN (UTF8String).
fn cn_name(cn: &str) -> Vec<u8> {
    let atv = der::seq(&[
        &der::oid(OID_CN),
        &der::tlv(der::TAG_UTF8_STRING, cn.as_bytes()),
    ]);
    der::seq(&[&der::tlv(der::TAG_SET, &atv)])
}

/// (algorithm identifier DER, subjectPublicKey bits) of an SPKI.
fn spki_parts(spki_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), PkiError> {
    let (_, spki) = SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|e| PkiError::UnsupportedKey(format!("unparseable public key: {e}")))?;
    let alg_oid = spki.algorithm.algorithm.to_id_string();
    let params = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string())
        .unwrap_or_default();
    Ok((
        format!("{alg_oid} {params}").into_bytes(),
        spki.subject_public_key.data.to_vec(),
    ))
}

/// Key identifier per RFC 7093 method 1: leftmost 160 bits of SHA-256 of the subjectPublicKey.
fn key_identifier(spki_der: &[u8]) -> Result<Vec<u8>, PkiError> {
    let (_, bits) = spki_parts(spki_der)?;
    Ok(Sha256::digest(&bits)[..20].to_vec())
}

/// One GeneralName for a SAN string: an IP literal (optionally in brackets) or a DNS name
/// with an optional leading `*.` label.
fn encode_san(s: &str) -> Result<Vec<u8>, PkiError> {
    let t = s.trim();
    let ip_text = t
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(t);
    if let Ok(ip) = ip_text.parse::<IpAddr>() {
        let bytes = match ip {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        return Ok(der::tlv(0x87, &bytes));
    }
    let rest = t.strip_prefix("*.").unwrap_or(t);
    let valid = !rest.is_empty()
        && t.len() <= 253
        && rest.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !valid {
        return Err(PkiError::InvalidSan(s.to_string()));
    }
    Ok(der::tlv(0x82, t.as_bytes()))
}

/// Writes `contents` to a fresh temporary file created with `mode`, then renames it over
/// `path`, so the mode holds even when `path` already existed with other permissions.
fn write_file_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    let io_err = |source| PkiError::Io {
        op: "writing",
        path: path.to_path_buf(),
        source,
    };
    let file_name = path.file_name().ok_or_else(|| {
        io_err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a file path",
        ))
    })?;
    let mut suffix = [0u8; 8];
    aws_lc_rs::rand::fill(&mut suffix)
        .map_err(|_| io_err(std::io::Error::other("random number generator failed")))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".{}.tmp", hex::encode(suffix)));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        // Best effort: do not leave a partial key file behind.
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn san_encoding() {
        let cases: &[(&str, Option<u8>)] = &[
            ("iot.example.com", Some(0x82)),
            ("*.iot.example.com", Some(0x82)),
            ("localhost", Some(0x82)),
            ("127.0.0.1", Some(0x87)),
            ("::1", Some(0x87)),
            ("[fe80::1]", Some(0x87)),
            ("", None),
            ("*.", None),
            ("a..b", None),
            ("foo.*.com", None),
            ("-bad.com", None),
            ("sp ace.com", None),
        ];
        for (input, tag) in cases {
            let got = encode_san(input).ok().and_then(|d| d.first().copied());
            assert_eq!(got, *tag, "{input:?}");
        }
    }

    #[test]
    fn serials_are_20_bytes_and_positive() {
        for _ in 0..200 {
            let s = random_serial().expect("rng");
            assert!(s[0] != 0 && s[0] & 0x80 == 0);
            assert_eq!(der::uint(&s).len(), 22);
        }
    }
}
