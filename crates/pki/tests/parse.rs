//! Parsing: PEM strictness, names, SANs, accessors.

mod common;

use common::{Dir, openssl_csr, openssl_root, openssl_sign};
use pki::{Certificate, EcCurve, PkiError, PublicKeyAlgorithm, cert_id, parse_pem_chain};
use std::net::IpAddr;

fn fixture() -> (Dir, String) {
    let dir = Dir::new();
    openssl_root(
        &dir,
        "ca",
        "P-256",
        "/C=US/ST=Washington/L=Seattle/O=Example Corp/OU=IoT/CN=Example Root",
    );
    let pem = dir.read("ca.pem");
    (dir, pem)
}

#[test]
fn cert_id_is_sha256_of_der() {
    let (dir, pem) = fixture();
    let cert = Certificate::from_pem(&pem).expect("parse");
    let fp = dir.openssl_out(&["x509", "-in", "ca.pem", "-noout", "-fingerprint", "-sha256"]);
    let expected = fp
        .trim()
        .split('=')
        .nth(1)
        .expect("fingerprint")
        .replace(':', "")
        .to_lowercase();
    assert_eq!(cert.id(), expected);
    assert_eq!(cert_id(cert.der()), expected);
    assert_eq!(cert.id().len(), 64);
}

#[test]
fn accessors_match_openssl() {
    let (dir, pem) = fixture();
    let cert = Certificate::from_pem(&pem).expect("parse");
    let attrs: Vec<(&str, Option<&str>, &str)> = cert
        .subject()
        .attributes
        .iter()
        .map(|a| (a.short_name.as_str(), a.policy_name, a.value.as_str()))
        .collect();
    assert_eq!(
        attrs,
        vec![
            ("C", Some("Country"), "US"),
            ("ST", Some("State"), "Washington"),
            ("L", Some("Locality"), "Seattle"),
            ("O", Some("Organization"), "Example Corp"),
            ("OU", Some("OrganizationalUnit"), "IoT"),
            ("CN", Some("CommonName"), "Example Root"),
        ]
    );
    assert_eq!(cert.common_name(), Some("Example Root"));
    assert_eq!(cert.subject(), cert.issuer());
    assert_eq!(cert.subject_der(), cert.issuer_der());
    assert!(cert.is_ca());
    assert!(cert.is_self_signed());
    assert_eq!(
        cert.key_algorithm(),
        &PublicKeyAlgorithm::Ecdsa(EcCurve::P256)
    );
    let serial = dir.openssl_out(&["x509", "-in", "ca.pem", "-noout", "-serial"]);
    assert_eq!(
        cert.serial_hex(),
        serial.trim().trim_start_matches("serial=").to_lowercase()
    );
    let ski = cert.subject_key_id().expect("openssl adds SKI");
    assert_eq!(cert.authority_key_id(), Some(ski));
    assert_eq!(cert.not_after() - cert.not_before(), 3650 * 86_400);
    assert!(cert.is_valid_at(cert.not_before()));
    assert!(cert.is_valid_at(cert.not_after()));
    assert!(!cert.is_valid_at(cert.not_before() - 1));
    assert!(!cert.is_valid_at(cert.not_after() + 1));
    let spki_pem = dir.openssl_out(&["x509", "-in", "ca.pem", "-noout", "-pubkey"]);
    let spki = pem::parse(spki_pem).expect("pubkey pem");
    assert_eq!(cert.spki_der(), spki.contents());
}

#[test]
fn pem_is_normalised_and_crlf_accepted() {
    let (_dir, pem) = fixture();
    let crlf = format!("\r\n\r\n{}\r\n", pem.replace('\n', "\r\n"));
    let a = Certificate::from_pem(&pem).expect("lf");
    let b = Certificate::from_pem(&crlf).expect("crlf");
    assert_eq!(a, b);
    assert_eq!(b.pem(), pem, "openssl writes the same canonical form");
    assert!(!b.pem().contains('\r') && b.pem().ends_with("-----END CERTIFICATE-----\n"));
    // Re-wrapped base64 (one long line) still parses to the same certificate.
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let one_line = format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----");
    assert_eq!(Certificate::from_pem(&one_line).expect("one line"), a);
}

#[test]
fn bad_certificate_inputs_are_rejected_with_clear_errors() {
    let (dir, pem) = fixture();
    let key = dir.read("ca.key");
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let truncated = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        &body[..body.len() / 2 / 4 * 4]
    );
    type Check = fn(&PkiError) -> bool;
    let cases: Vec<(&str, String, Check)> = vec![
        ("empty", String::new(), |e| {
            matches!(e, PkiError::PemEmpty { .. })
        }),
        ("whitespace", "  \n\n".into(), |e| {
            matches!(e, PkiError::PemEmpty { .. })
        }),
        ("garbage", "hello world".into(), |e| {
            matches!(e, PkiError::PemTrailingData { line: 1 })
        }),
        (
            "a key",
            key.clone(),
            |e| matches!(e, PkiError::PemUnexpectedLabel { found, .. } if found == "PRIVATE KEY"),
        ),
        ("trailing junk", format!("{pem}junk\n"), |e| {
            matches!(e, PkiError::PemTrailingData { .. })
        }),
        ("leading junk", format!("junk\n{pem}"), |e| {
            matches!(e, PkiError::PemTrailingData { line: 1 })
        }),
        ("two certs", format!("{pem}{pem}"), |e| {
            matches!(e, PkiError::PemTooManyBlocks { found: 2 })
        }),
        ("cert then key", format!("{pem}{key}"), |e| {
            matches!(e, PkiError::PemTooManyBlocks { .. })
        }),
        (
            "no END",
            pem.replace("-----END CERTIFICATE-----", ""),
            |e| matches!(e, PkiError::PemMalformed(_)),
        ),
        (
            "END mismatch",
            pem.replace("END CERTIFICATE", "END X509 CRL"),
            |e| matches!(e, PkiError::PemMalformed(_)),
        ),
        ("bad base64", pem.replacen("MII", "M!I", 1), |e| {
            matches!(e, PkiError::PemMalformed(_))
        }),
        ("truncated DER", truncated, |e| {
            matches!(e, PkiError::CertificateParse(_))
        }),
        (
            "not DER",
            "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n".into(),
            |e| matches!(e, PkiError::CertificateParse(_)),
        ),
    ];
    for (name, input, check) in cases {
        let err = Certificate::from_pem(&input).expect_err(name);
        assert!(check(&err), "{name}: unexpected error {err:?}");
        let msg = err.to_string();
        assert!(!msg.is_empty());
        // Never echo key material.
        for line in key.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!msg.contains(line), "{name}: message leaks key material");
        }
    }
}

#[test]
fn der_with_trailing_bytes_is_rejected() {
    let (_dir, pem) = fixture();
    let mut der = Certificate::from_pem(&pem).expect("parse").der().to_vec();
    der.push(0);
    assert!(matches!(
        Certificate::from_der(&der),
        Err(PkiError::CertificateParse(_))
    ));
}

#[test]
fn chain_parsing() {
    let dir = Dir::new();
    openssl_root(&dir, "root", "rsa:2048", "/CN=Root");
    openssl_csr(&dir, "leaf", "P-256", "/CN=leaf", &[]);
    openssl_sign(&dir, "leaf", "root", "30", None);
    let chain_pem = format!("{}\n{}", dir.read("leaf.pem"), dir.read("root.pem"));
    let chain = parse_pem_chain(&chain_pem).expect("chain");
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[0].common_name(), Some("leaf"));
    assert_eq!(chain[1].common_name(), Some("Root"));
    assert_eq!(
        chain[1].key_algorithm(),
        &PublicKeyAlgorithm::Rsa { bits: 2048 }
    );
    assert!(parse_pem_chain(&dir.read("leaf.pem")).expect("one").len() == 1);
    assert!(matches!(
        parse_pem_chain(""),
        Err(PkiError::PemEmpty { .. })
    ));
    let with_key = format!("{}{}", dir.read("leaf.pem"), dir.read("leaf.key"));
    assert!(matches!(
        parse_pem_chain(&with_key),
        Err(PkiError::PemUnexpectedLabel { .. })
    ));
}

#[test]
fn names_sans_and_unusual_attributes() {
    let dir = Dir::new();
    openssl_root(&dir, "root", "P-256", "/CN=Root");
    // Repeated OU, a multi-valued RDN (+), serialNumber, title, SN, GN, initials, pseudonym,
    // generationQualifier, dnQualifier, a UTF-8 value, and all SAN types.
    let subj = "/C=DE/O=Acme/OU=One/OU=Two/CN=dev-1+serialNumber=SN42/title=Sensor/SN=Doe/GN=Jane\
                /initials=JD/pseudonym=jd/generationQualifier=III/dnQualifier=q1/L=M\u{fc}nchen";
    openssl_csr(&dir, "dev", "P-384", subj, &["-utf8"]);
    openssl_sign(
        &dir,
        "dev",
        "root",
        "30",
        Some(
            "subjectAltName=DNS:a.example.com,DNS:*.b.example.com,email:ops@example.com,\
              URI:urn:dev:1,IP:10.0.0.1,IP:2001:db8::1,dirName:dir_sect\n[dir_sect]\nCN=inner\nO=Org",
        ),
    );
    let cert = Certificate::from_pem(&dir.read("dev.pem")).expect("parse");
    let s = cert.subject();
    let pairs: Vec<(&str, &str, usize)> = s
        .attributes
        .iter()
        .map(|a| (a.policy_name.unwrap_or("-"), a.value.as_str(), a.rdn))
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("Country", "DE", 0),
            ("Organization", "Acme", 1),
            ("OrganizationalUnit", "One", 2),
            ("OrganizationalUnit", "Two", 3),
            // DER sorts a multi-valued RDN's SET by encoding: the shorter ATV comes first.
            ("SerialNumber", "SN42", 4),
            ("CommonName", "dev-1", 4),
            ("Title", "Sensor", 5),
            ("Surname", "Doe", 6),
            ("GivenName", "Jane", 7),
            ("Initials", "JD", 8),
            ("Pseudonym", "jd", 9),
            ("GenerationQualifier", "III", 10),
            ("DistinguishedNameQualifier", "q1", 11),
            ("Locality", "M\u{fc}nchen", 12),
        ]
    );
    assert_eq!(s.values("OU").collect::<Vec<_>>(), ["One", "Two"]);
    assert_eq!(s.values_by_policy_name("OrganizationalUnit").count(), 2);
    assert!(s.to_string().contains("serialNumber=SN42 + CN=dev-1"));
    assert_eq!(
        cert.key_algorithm(),
        &PublicKeyAlgorithm::Ecdsa(EcCurve::P384)
    );
    assert!(!cert.is_ca());
    let sans = cert.subject_alt_names();
    assert_eq!(sans.dns_names, ["a.example.com", "*.b.example.com"]);
    assert_eq!(sans.rfc822_names, ["ops@example.com"]);
    assert_eq!(sans.uris, ["urn:dev:1"]);
    assert_eq!(
        sans.ip_addresses,
        [
            "10.0.0.1".parse::<IpAddr>().expect("ip"),
            "2001:db8::1".parse().expect("ip")
        ]
    );
    assert_eq!(sans.directory_names.len(), 1);
    assert_eq!(sans.directory_names[0].to_string(), "CN=inner, O=Org");
}

#[test]
fn certificate_is_send_sync_and_cheap_to_clone() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Certificate>();
    assert_send_sync::<pki::CertificateAuthority>();
    assert_send_sync::<pki::Csr>();
    let (_dir, pem) = fixture();
    let a = Certificate::from_pem(&pem).expect("parse");
    let b = a.clone();
    assert!(std::ptr::eq(a.der().as_ptr(), b.der().as_ptr()));
}
