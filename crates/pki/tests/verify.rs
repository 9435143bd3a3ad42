//! Signature and chain verification against openssl-made PKIs.

mod common;

use common::{Dir, openssl_csr, openssl_root, openssl_sign, openssl_verification_cert};
use pki::{
    Certificate, CertificateAuthority, KeyAlgorithm, PkiError, verify_chain, verify_signed_by,
};

const CA_EXT: &str = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n\
                      subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid";

/// root -> intermediate -> leaf, all by openssl. Returns (dir, root, intermediate, leaf).
fn openssl_chain(
    root_key: &str,
    leaf_key: &str,
    leaf_ext: Option<&str>,
) -> (Dir, Certificate, Certificate, Certificate) {
    let dir = Dir::new();
    openssl_root(&dir, "root", root_key, "/O=Customer/CN=Customer Root");
    openssl_csr(
        &dir,
        "inter",
        "P-384",
        "/O=Customer/CN=Customer Intermediate",
        &[],
    );
    openssl_sign(&dir, "inter", "root", "1000", Some(CA_EXT));
    openssl_csr(&dir, "leaf", leaf_key, "/CN=thing-1", &[]);
    openssl_sign(&dir, "leaf", "inter", "365", leaf_ext);
    let load = |n: &str| Certificate::from_pem(&dir.read(&format!("{n}.pem"))).expect("parse");
    let (r, i, l) = (load("root"), load("inter"), load("leaf"));
    (dir, r, i, l)
}

/// Flips one bit inside the signature (the last byte of the DER is in the signature BIT STRING).
fn tamper_signature(cert: &Certificate) -> Certificate {
    let mut der = cert.der().to_vec();
    if let Some(last) = der.last_mut() {
        *last ^= 0x01;
    }
    Certificate::from_der(&der).expect("still parses")
}

#[test]
fn verify_signed_by_on_real_chains() {
    for (root_key, leaf_key) in [
        ("rsa:2048", "P-256"),
        ("P-256", "rsa:2048"),
        ("P-384", "P-384"),
        ("P-521", "P-256"),
    ] {
        let (_dir, root, inter, leaf) = openssl_chain(root_key, leaf_key, None);
        verify_signed_by(&inter, &root).unwrap_or_else(|e| panic!("{root_key}: {e}"));
        verify_signed_by(&leaf, &inter).expect("leaf by intermediate");
        verify_signed_by(&root, &root).expect("self-signed root");
        // Wrong CA: name mismatch.
        assert!(matches!(
            verify_signed_by(&leaf, &root),
            Err(PkiError::IssuerMismatch { .. })
        ));
        // Tampered signature.
        assert!(matches!(
            verify_signed_by(&tamper_signature(&leaf), &inter),
            Err(PkiError::SignatureInvalid)
        ));
    }
}

#[test]
fn same_name_different_key_is_a_signature_failure() {
    let dir = Dir::new();
    openssl_root(&dir, "real", "P-256", "/CN=Same Name");
    openssl_root(&dir, "impostor", "P-256", "/CN=Same Name");
    openssl_csr(&dir, "leaf", "P-256", "/CN=leaf", &[]);
    openssl_sign(&dir, "leaf", "real", "30", None);
    let leaf = Certificate::from_pem(&dir.read("leaf.pem")).expect("leaf");
    let real = Certificate::from_pem(&dir.read("real.pem")).expect("real");
    let impostor = Certificate::from_pem(&dir.read("impostor.pem")).expect("impostor");
    verify_signed_by(&leaf, &real).expect("real CA");
    assert!(matches!(
        verify_signed_by(&leaf, &impostor),
        Err(PkiError::SignatureInvalid)
    ));
}

#[test]
fn signature_hash_variants() {
    // RSA PKCS#1 with SHA-384/512, RSA-PSS, ECDSA with SHA-512: all accepted; SHA-1 refused.
    let dir = Dir::new();
    openssl_root(&dir, "rsa", "rsa:2048", "/CN=RSA CA");
    openssl_root(&dir, "ec", "P-256", "/CN=EC CA");
    openssl_csr(&dir, "leaf", "P-256", "/CN=leaf", &[]);
    let cases: &[(&str, &[&str], bool)] = &[
        ("rsa", &["-sha384"], true),
        ("rsa", &["-sha512"], true),
        (
            "rsa",
            &[
                "-sha256",
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:32",
            ],
            true,
        ),
        ("ec", &["-sha512"], true),
        ("ec", &["-sha384"], true),
        ("rsa", &["-sha1"], false),
        ("ec", &["-sha1"], false),
    ];
    for (ca, opts, ok) in cases {
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            if *ca == "rsa" { "rsa.pem" } else { "ec.pem" },
            "-CAkey",
            if *ca == "rsa" { "rsa.key" } else { "ec.key" },
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "10",
        ];
        args.extend_from_slice(opts);
        dir.openssl(&args);
        let leaf = Certificate::from_pem(&dir.read("leaf.pem")).expect("leaf");
        let issuer = Certificate::from_pem(&dir.read(&format!("{ca}.pem"))).expect("ca");
        let res = verify_signed_by(&leaf, &issuer);
        if *ok {
            res.unwrap_or_else(|e| panic!("{ca} {opts:?}: {e}"));
        } else {
            assert!(
                matches!(res, Err(PkiError::UnsupportedSignatureAlgorithm(ref m)) if m.to_lowercase().contains("sha1")),
                "{ca} {opts:?}: {res:?}"
            );
        }
    }
}

/// RegisterCACertificate proof of possession, as the API will do it.
#[test]
fn registration_code_verification_certificate() {
    let dir = Dir::new();
    openssl_root(&dir, "ca", "rsa:2048", "/O=Customer/CN=Fleet CA");
    let ca = Certificate::from_pem(&dir.read("ca.pem")).expect("ca");
    let code = "9c4d3a40b6c7e8f90123456789abcdef0123456789abcdef0123456789abcdef";
    let vpem = openssl_verification_cert(&dir, "ca", code);
    let verification = Certificate::from_pem(&vpem).expect("verification");
    verify_signed_by(&verification, &ca).expect("signed by the CA's key");
    assert_eq!(verification.common_name(), Some(code));
    // A verification certificate signed by another key fails.
    openssl_root(&dir, "other", "rsa:2048", "/O=Customer/CN=Fleet CA");
    openssl_sign(&dir, "verification", "other", "10", None);
    let forged = Certificate::from_pem(&dir.read("verification.pem")).expect("forged");
    assert!(matches!(
        verify_signed_by(&forged, &ca),
        Err(PkiError::SignatureInvalid)
    ));
}

/// Both the webpki path (v3 leaf) and the v1-leaf path (`openssl x509 -req` without extensions).
#[test]
fn verify_chain_real_chains() {
    for leaf_ext in [Some("basicConstraints=CA:FALSE"), None] {
        chain_case(leaf_ext);
    }
}

fn chain_case(leaf_ext: Option<&str>) {
    let (_dir, root, inter, leaf) = openssl_chain("rsa:2048", "P-256", leaf_ext);
    assert_eq!(leaf.version(), if leaf_ext.is_some() { 3 } else { 1 });
    let now = leaf.not_before() + 60;
    let other = CertificateAuthority::generate_root("Other", KeyAlgorithm::EcdsaP256, now - 10)
        .expect("other root");
    let anchors = [other.certificate().clone(), root.clone()];
    let info = verify_chain(leaf.der(), &[inter.der()], &anchors, now).expect("valid chain");
    assert_eq!(info.anchor_index, 1);
    assert_eq!(info.anchor_id, root.id());
    assert_eq!(info.intermediate_ids, vec![inter.id().to_string()]);
    // The intermediate itself can be an anchor (registered intermediate CA).
    let info = verify_chain(
        leaf.der(),
        &[] as &[&[u8]],
        std::slice::from_ref(&inter),
        now,
    )
    .expect("inter anchor");
    assert!(info.intermediate_ids.is_empty());

    let failures: Vec<(&str, Result<pki::ChainInfo, PkiError>)> = vec![
        (
            "missing intermediate",
            verify_chain(leaf.der(), &[] as &[&[u8]], &anchors, now),
        ),
        (
            "wrong anchor",
            verify_chain(leaf.der(), &[inter.der()], &anchors[..1], now),
        ),
        (
            "no anchors",
            verify_chain(leaf.der(), &[inter.der()], &[], now),
        ),
        (
            "expired",
            verify_chain(leaf.der(), &[inter.der()], &anchors, leaf.not_after() + 1),
        ),
        (
            "not yet valid",
            verify_chain(leaf.der(), &[inter.der()], &anchors, leaf.not_before() - 1),
        ),
        (
            "tampered leaf",
            verify_chain(tamper_signature(&leaf).der(), &[inter.der()], &anchors, now),
        ),
        (
            "tampered intermediate",
            verify_chain(leaf.der(), &[tamper_signature(&inter).der()], &anchors, now),
        ),
        (
            "negative time",
            verify_chain(leaf.der(), &[inter.der()], &anchors, -5),
        ),
        (
            "garbage leaf",
            verify_chain(b"garbage", &[inter.der()], &anchors, now),
        ),
    ];
    for (name, res) in failures {
        let err = res.expect_err(name);
        assert!(
            matches!(
                err,
                PkiError::Chain(_) | PkiError::InvalidTime(_) | PkiError::CertificateParse(_)
            ),
            "{leaf_ext:?} {name}: {err:?}"
        );
    }
}

#[test]
fn verify_chain_eku_handling() {
    // No EKU: accepted (AWS accepts such device certificates). clientAuth: accepted.
    // serverAuth only: rejected for client authentication.
    for (ext, ok) in [
        (None, true),
        (Some("basicConstraints=CA:FALSE"), true),
        (Some("extendedKeyUsage=clientAuth"), true),
        (Some("extendedKeyUsage=serverAuth,clientAuth"), true),
        (Some("extendedKeyUsage=serverAuth"), false),
    ] {
        let (_dir, root, inter, leaf) = openssl_chain("P-256", "P-256", ext);
        let res = verify_chain(leaf.der(), &[inter.der()], &[root], leaf.not_before() + 60);
        assert_eq!(res.is_ok(), ok, "{ext:?}: {res:?}");
    }
}

#[test]
fn verify_chain_accepts_onboard_issued_device_certs() {
    let now = 1_735_689_600;
    let ca =
        CertificateAuthority::generate_root("Onboard", KeyAlgorithm::Rsa2048, now).expect("root");
    let (cert, _) = ca
        .issue_device_cert_with_new_key(KeyAlgorithm::EcdsaP256, now)
        .expect("issue");
    let anchors = [ca.certificate().clone()];
    verify_chain(cert.der(), &[] as &[&[u8]], &anchors, now).expect("valid at issue time");
    verify_chain(
        cert.der(),
        &[] as &[&[u8]],
        &anchors,
        pki::DEVICE_CERT_NOT_AFTER,
    )
    .expect("valid at the end");
    assert!(verify_chain(cert.der(), &[] as &[&[u8]], &anchors, now - 1).is_err());
}
