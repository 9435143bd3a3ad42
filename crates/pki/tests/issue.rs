//! Issuing: roots, device certificates from CSRs and with new keys, server certificates,
//! save/load, concurrency. Issued certificates are cross-checked with `openssl verify`.

mod common;

use common::{Dir, NOW, openssl_csr, openssl_root, path_str};
use pki::{
    CertificateAuthority, Csr, DEVICE_CERT_NOT_AFTER, KeyAlgorithm, PkiError, PublicKeyAlgorithm,
    SignatureAlgorithm, SigningKey, verify_chain, verify_signed_by,
};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

fn root(alg: KeyAlgorithm) -> CertificateAuthority {
    CertificateAuthority::generate_root("Onboard Test Root", alg, NOW).expect("root")
}

/// `openssl verify` at NOW (openssl's -attime) with `ca` as the only trust anchor.
fn openssl_verify(dir: &Dir, ca: &CertificateAuthority, leaf_pem: &str, purpose: Option<&str>) {
    dir.write("trust.pem", ca.certificate().pem());
    dir.write("leaf-under-test.pem", leaf_pem);
    let leaf = pki::Certificate::from_pem(leaf_pem).expect("leaf");
    let at = (leaf.not_before().max(ca.certificate().not_before()) + 3600).to_string();
    let mut args = vec![
        "verify",
        "-x509_strict",
        "-attime",
        &at,
        "-CAfile",
        "trust.pem",
    ];
    if let Some(p) = purpose {
        args.extend(["-purpose", p]);
    }
    args.push("leaf-under-test.pem");
    let out = dir.openssl_out(&args);
    assert!(out.contains(": OK"), "openssl verify said: {out}");
}

#[test]
fn generated_roots_have_the_ca_profile() {
    for (alg, sig) in [
        (KeyAlgorithm::EcdsaP256, SignatureAlgorithm::EcdsaP256Sha256),
        (KeyAlgorithm::Rsa2048, SignatureAlgorithm::RsaPkcs1Sha256),
    ] {
        let ca = root(alg);
        let c = ca.certificate();
        assert!(c.is_ca());
        assert!(c.is_self_signed());
        assert_eq!(c.common_name(), Some("Onboard Test Root"));
        assert_eq!(c.not_before(), NOW);
        assert!(c.not_after() - NOW >= 20 * 365 * 86_400);
        assert_eq!(ca.signing_key().signature_algorithm(), sig);
        let dir = Dir::new();
        dir.write("root.pem", c.pem());
        let text = dir.openssl_out(&["x509", "-in", "root.pem", "-noout", "-text"]);
        assert!(text.contains("CA:TRUE"), "{text}");
        assert!(text.contains("Certificate Sign, CRL Sign"), "{text}");
        assert!(text.contains("X509v3 Subject Key Identifier"), "{text}");
        openssl_verify(&dir, &ca, c.pem(), None);
    }
    assert!(matches!(
        CertificateAuthority::generate_root("", KeyAlgorithm::EcdsaP256, NOW),
        Err(PkiError::InvalidName(_))
    ));
}

/// The main CreateCertificateFromCsr property: exact key and subject, device profile.
#[test]
fn csr_issuance_copies_key_and_subject_exactly() {
    let dir = Dir::new();
    let cases = [
        ("rsa:2048", PublicKeyAlgorithm::Rsa { bits: 2048 }),
        ("rsa:4096", PublicKeyAlgorithm::Rsa { bits: 4096 }),
        ("P-256", PublicKeyAlgorithm::Ecdsa(pki::EcCurve::P256)),
        ("P-384", PublicKeyAlgorithm::Ecdsa(pki::EcCurve::P384)),
    ];
    let cas = [root(KeyAlgorithm::EcdsaP256), root(KeyAlgorithm::Rsa2048)];
    for (spec, key_alg) in cases {
        let name = spec.replace(':', "");
        // Repeated OU and a multi-valued RDN: rcgen could not reproduce this subject.
        openssl_csr(
            &dir,
            &name,
            spec,
            "/C=US/O=Acme/OU=a/OU=b/CN=thing-1+serialNumber=42",
            &["-addext", "subjectAltName=DNS:ignored.example.com"],
        );
        let csr = Csr::from_pem(&dir.read(&format!("{name}.csr"))).expect("csr");
        assert_eq!(csr.key_algorithm(), &key_alg);
        for ca in &cas {
            let cert = ca.issue_device_cert_from_csr(&csr, NOW).expect("issue");
            assert_eq!(
                cert.spki_der(),
                csr.spki_der(),
                "{spec}: key copied verbatim"
            );
            assert_eq!(
                cert.subject_der(),
                csr.subject().der.as_slice(),
                "{spec}: subject copied"
            );
            assert_eq!(cert.subject(), csr.subject());
            assert_eq!(cert.issuer_der(), ca.certificate().subject_der());
            verify_signed_by(&cert, ca.certificate()).expect("signed by CA");
            assert_eq!(cert.not_before(), NOW);
            assert_eq!(cert.not_after(), DEVICE_CERT_NOT_AFTER);
            assert!(!cert.is_ca());
            assert!(
                cert.subject_alt_names().is_empty(),
                "CSR extensions are not copied"
            );
            assert_eq!(cert.authority_key_id(), ca.certificate().subject_key_id());
            assert!(cert.subject_key_id().is_some());
            assert_eq!(cert.serial_hex().len(), 40, "20-byte serial");
            // The private key from openssl matches the issued certificate.
            dir.write("issued.pem", cert.pem());
            let cert_pub = dir.openssl_out(&["x509", "-in", "issued.pem", "-noout", "-pubkey"]);
            let key_pub = dir.openssl_out(&["pkey", "-in", &format!("{name}.key"), "-pubout"]);
            assert_eq!(cert_pub, key_pub);
            openssl_verify(&dir, ca, cert.pem(), Some("sslclient"));
            verify_chain(
                cert.der(),
                &[] as &[&[u8]],
                std::slice::from_ref(ca.certificate()),
                NOW + 1,
            )
            .expect("webpki accepts the device certificate");
        }
    }
}

#[test]
fn device_profile_matches_aws() {
    let dir = Dir::new();
    let ca = root(KeyAlgorithm::Rsa2048);
    let (cert, _key) = ca
        .issue_device_cert_with_new_key(KeyAlgorithm::Rsa2048, NOW)
        .expect("issue");
    dir.write("dev.pem", cert.pem());
    let text = dir.openssl_out(&["x509", "-in", "dev.pem", "-noout", "-text"]);
    for needle in [
        "Version: 3 (0x2)",
        "Signature Algorithm: sha256WithRSAEncryption",
        "Subject: CN = AWS IoT Certificate",
        "Not After : Dec 31 23:59:59 2049 GMT",
        "X509v3 Authority Key Identifier",
        "X509v3 Subject Key Identifier",
        "X509v3 Basic Constraints: critical\n                CA:FALSE",
        "X509v3 Key Usage: critical\n                Digital Signature",
        "Public-Key: (2048 bit)",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(!text.contains("Extended Key Usage"));
}

#[test]
fn create_keys_and_certificate() {
    let dir = Dir::new();
    let ca = root(KeyAlgorithm::EcdsaP256);
    for (alg, header) in [
        (KeyAlgorithm::Rsa2048, "-----BEGIN RSA PRIVATE KEY-----\n"),
        (KeyAlgorithm::EcdsaP256, "-----BEGIN EC PRIVATE KEY-----\n"),
    ] {
        let (cert, key) = ca.issue_device_cert_with_new_key(alg, NOW).expect("issue");
        assert_eq!(cert.common_name(), Some("AWS IoT Certificate"));
        assert!(key.private_key_pem().starts_with(header));
        assert!(
            key.public_key_pem()
                .starts_with("-----BEGIN PUBLIC KEY-----\n")
        );
        assert_eq!(cert.spki_der(), key.public_key_der());
        assert!(
            !format!("{key:?}").contains("PRIVATE"),
            "Debug must not print the key"
        );
        verify_signed_by(&cert, ca.certificate()).expect("signed");
        // openssl agrees the private key belongs to the certificate.
        dir.write("k.pem", key.private_key_pem());
        dir.write("c.pem", cert.pem());
        let from_key = dir.openssl_out(&["pkey", "-in", "k.pem", "-pubout"]);
        let from_cert = dir.openssl_out(&["x509", "-in", "c.pem", "-noout", "-pubkey"]);
        assert_eq!(from_key, from_cert);
        assert_eq!(from_key, key.public_key_pem());
        // Each call makes a new certificate with a new serial.
        let (again, _) = ca.issue_device_cert_with_new_key(alg, NOW).expect("issue");
        assert_ne!(again.serial_hex(), cert.serial_hex());
        assert_ne!(again.id(), cert.id());
    }
}

#[test]
fn server_certificates() {
    let dir = Dir::new();
    let ca = root(KeyAlgorithm::EcdsaP256);
    let sans: Vec<String> = [
        "iot.example.com",
        "*.iot.example.com",
        "127.0.0.1",
        "::1",
        "localhost",
    ]
    .map(String::from)
    .to_vec();
    for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048] {
        let (cert, key) = ca.issue_server_cert(&sans, alg, NOW).expect("issue");
        assert_eq!(cert.spki_der(), key.public_key_der());
        assert_eq!(cert.common_name(), Some("iot.example.com"));
        let s = cert.subject_alt_names();
        assert_eq!(
            s.dns_names,
            ["iot.example.com", "*.iot.example.com", "localhost"]
        );
        assert_eq!(s.ip_addresses.len(), 2);
        assert!(cert.is_valid_at(NOW));
        verify_signed_by(&cert, ca.certificate()).expect("signed");
        openssl_verify(&dir, &ca, cert.pem(), Some("sslserver"));
        dir.write("srv.pem", cert.pem());
        for host in [
            &["-verify_hostname", "x.iot.example.com"][..],
            &["-verify_ip", "::1"][..],
        ] {
            let mut args = vec!["verify", "-attime", "1735693200", "-CAfile", "trust.pem"];
            args.extend_from_slice(host);
            args.push("srv.pem");
            assert!(dir.openssl_out(&args).contains("OK"));
        }
    }
    for bad in [
        vec![],
        vec!["bad name".to_string()],
        vec!["ok.com".into(), "a..b".into()],
    ] {
        assert!(matches!(
            ca.issue_server_cert(&bad, KeyAlgorithm::EcdsaP256, NOW),
            Err(PkiError::InvalidSan(_))
        ));
    }
}

#[test]
fn save_and_load_round_trip_with_permissions() {
    let dir = Dir::new();
    for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048] {
        let ca = root(alg);
        let (cp, kp) = (dir.path("ca.pem"), dir.path("ca.key"));
        // A pre-existing world-readable key file must still end up 0600.
        std::fs::write(&kp, "old").expect("write");
        std::fs::set_permissions(&kp, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        ca.save(&cp, &kp).expect("save");
        let mode = |p| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&kp), 0o600);
        assert_eq!(mode(&cp) & 0o600, 0o600);
        let loaded = CertificateAuthority::load(&cp, &kp).expect("load");
        assert_eq!(loaded.certificate(), ca.certificate());
        let (cert, _) = loaded
            .issue_device_cert_with_new_key(KeyAlgorithm::EcdsaP256, NOW)
            .expect("issue");
        verify_signed_by(&cert, ca.certificate()).expect("loaded key signs for the same CA");
        // openssl can read the saved key and it matches the certificate.
        let from_key = dir.openssl_out(&["pkey", "-in", path_str(&kp), "-pubout"]);
        let from_cert = dir.openssl_out(&["x509", "-in", path_str(&cp), "-noout", "-pubkey"]);
        assert_eq!(from_key, from_cert);
        let leftovers: Vec<_> = std::fs::read_dir(dir.0.path())
            .expect("ls")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }
}

#[test]
fn load_openssl_made_cas_in_every_key_format() {
    let dir = Dir::new();
    let csr_dir = Dir::new();
    openssl_csr(&csr_dir, "dev", "P-256", "/CN=dev", &[]);
    let csr = Csr::from_pem(&csr_dir.read("dev.csr")).expect("csr");
    for (key, convert) in [
        ("rsa:2048", None),                               // PKCS#8 "PRIVATE KEY"
        ("rsa:3072", Some(&["rsa", "-traditional"][..])), // PKCS#1 "RSA PRIVATE KEY"
        ("P-256", Some(&["ec"][..])),                     // SEC1 "EC PRIVATE KEY"
        ("P-384", None),
        ("P-521", Some(&["ec"][..])),
    ] {
        openssl_root(&dir, "ca", key, "/O=Customer/CN=Customer CA");
        if let Some(cmd) = convert {
            let mut args = cmd.to_vec();
            args.extend(["-in", "ca.key", "-out", "ca2.key"]);
            dir.openssl(&args);
            std::fs::rename(dir.path("ca2.key"), dir.path("ca.key")).expect("rename");
        }
        let ca = CertificateAuthority::load(&dir.path("ca.pem"), &dir.path("ca.key"))
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        // openssl made the CA at the real current time.
        let now = ca.certificate().not_before() + 60;
        let cert = ca.issue_device_cert_from_csr(&csr, now).expect("issue");
        verify_signed_by(&cert, ca.certificate()).expect("signed");
        openssl_verify(&dir, &ca, cert.pem(), None);
    }
    // An "EC PARAMETERS" block before the key (openssl ecparam -genkey) is tolerated.
    dir.openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-out", "p.key"]);
    dir.openssl(&[
        "req", "-x509", "-key", "p.key", "-out", "p.pem", "-subj", "/CN=P", "-days", "10",
    ]);
    assert!(dir.read("p.key").contains("EC PARAMETERS"));
    CertificateAuthority::load(&dir.path("p.pem"), &dir.path("p.key")).expect("ecparam key");
}

#[test]
fn load_rejects_mismatches_and_non_cas() {
    let dir = Dir::new();
    openssl_root(&dir, "a", "P-256", "/CN=A");
    openssl_root(&dir, "b", "P-256", "/CN=B");
    let err =
        CertificateAuthority::load(&dir.path("a.pem"), &dir.path("b.key")).expect_err("mismatch");
    assert!(matches!(err, PkiError::KeyMismatch));
    openssl_csr(&dir, "leaf", "P-256", "/CN=leaf", &[]);
    common::openssl_sign(&dir, "leaf", "a", "10", None);
    let err =
        CertificateAuthority::load(&dir.path("leaf.pem"), &dir.path("leaf.key")).expect_err("leaf");
    assert!(matches!(err, PkiError::NotACa));
    let err =
        CertificateAuthority::load(&dir.path("a.pem"), &dir.path("missing.key")).expect_err("io");
    assert!(matches!(err, PkiError::Io { .. }) && err.to_string().contains("missing.key"));
    dir.openssl(&[
        "pkey", "-in", "a.key", "-aes256", "-passout", "pass:x", "-out", "enc.key",
    ]);
    let err =
        CertificateAuthority::load(&dir.path("a.pem"), &dir.path("enc.key")).expect_err("enc");
    assert!(matches!(err, PkiError::KeyParse(_)));
    // Neither message contains the key.
    let key_body: String = dir
        .read("b.key")
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(!PkiError::KeyMismatch.to_string().contains(&key_body[..20]));
}

/// A custom backend (stand-in for PKCS#11) through the trait object.
#[test]
fn custom_signing_key_backend() {
    struct Counting(pki::FileSigningKey, std::sync::atomic::AtomicUsize);
    impl SigningKey for Counting {
        fn public_key_der(&self) -> &[u8] {
            self.0.public_key_der()
        }
        fn signature_algorithm(&self) -> SignatureAlgorithm {
            self.0.signature_algorithm()
        }
        fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.0.sign(message)
        }
    }
    let dir = Dir::new();
    openssl_root(&dir, "hsm", "P-384", "/CN=HSM CA");
    let key = Arc::new(Counting(
        pki::FileSigningKey::load(&dir.path("hsm.key")).expect("key"),
        Default::default(),
    ));
    let cert = pki::Certificate::from_pem(&dir.read("hsm.pem")).expect("cert");
    let ca = CertificateAuthority::new(cert, key.clone()).expect("ca");
    let (c, _) = ca
        .issue_device_cert_with_new_key(KeyAlgorithm::EcdsaP256, NOW)
        .expect("issue");
    verify_signed_by(&c, ca.certificate()).expect("signed");
    assert_eq!(key.1.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(matches!(
        ca.save(&dir.path("x.pem"), &dir.path("x.key")),
        Err(PkiError::KeyNotExportable)
    ));
}

#[test]
fn concurrent_issuing() {
    let ca = Arc::new(root(KeyAlgorithm::EcdsaP256));
    let dir = Dir::new();
    openssl_csr(&dir, "dev", "P-256", "/CN=dev", &[]);
    let csr = Arc::new(Csr::from_pem(&dir.read("dev.csr")).expect("csr"));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (ca, csr) = (ca.clone(), csr.clone());
            std::thread::spawn(move || {
                (0..10)
                    .map(|_| ca.issue_device_cert_from_csr(&csr, NOW).expect("issue"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for h in handles {
        for cert in h.join().expect("thread") {
            verify_signed_by(&cert, ca.certificate()).expect("signed");
            assert!(
                ids.insert(cert.id().to_string()),
                "every certificate is distinct"
            );
        }
    }
    assert_eq!(ids.len(), 80);
}

#[test]
fn issuing_after_2049_is_refused() {
    let ca = root(KeyAlgorithm::EcdsaP256);
    assert!(matches!(
        ca.issue_device_cert_with_new_key(KeyAlgorithm::EcdsaP256, DEVICE_CERT_NOT_AFTER),
        Err(PkiError::InvalidTime(_))
    ));
}
