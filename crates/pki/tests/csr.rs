//! CSR parsing and checks.

mod common;

use common::{Dir, openssl_csr};
use pki::{Csr, EcCurve, PkiError, PublicKeyAlgorithm};

#[test]
fn accepted_keys() {
    let dir = Dir::new();
    for (spec, alg) in [
        ("rsa:2048", PublicKeyAlgorithm::Rsa { bits: 2048 }),
        ("rsa:3072", PublicKeyAlgorithm::Rsa { bits: 3072 }),
        ("P-256", PublicKeyAlgorithm::Ecdsa(EcCurve::P256)),
        ("P-384", PublicKeyAlgorithm::Ecdsa(EcCurve::P384)),
    ] {
        openssl_csr(&dir, "r", spec, "/C=US/O=Acme/CN=dev", &[]);
        let csr = Csr::from_pem(&dir.read("r.csr")).unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(csr.key_algorithm(), &alg);
        assert_eq!(csr.subject().common_name(), Some("dev"));
        assert_eq!(csr.subject().to_string(), "C=US, O=Acme, CN=dev");
        let pubkey = dir.openssl_out(&["req", "-in", "r.csr", "-noout", "-pubkey"]);
        assert_eq!(csr.spki_der(), pem::parse(pubkey).expect("pem").contents());
    }
}

#[test]
fn rejected_keys_name_the_key() {
    let dir = Dir::new();
    for (spec, needle) in [
        ("rsa:1024", "RSA-1024"),
        ("P-521", "EC P-521"),
        ("ed25519", "Ed25519"),
    ] {
        openssl_csr(&dir, "r", spec, "/CN=dev", &[]);
        let err = Csr::from_pem(&dir.read("r.csr")).expect_err(spec);
        assert!(
            matches!(err, PkiError::UnsupportedKey(_)),
            "{spec}: {err:?}"
        );
        assert!(err.to_string().contains(needle), "{spec}: {err}");
    }
    // secp256k1 is an EC key on an unaccepted curve.
    dir.openssl(&[
        "ecparam",
        "-name",
        "secp256k1",
        "-genkey",
        "-noout",
        "-out",
        "k1.key",
    ]);
    dir.openssl(&[
        "req", "-new", "-key", "k1.key", "-out", "k1.csr", "-subj", "/CN=x",
    ]);
    let err = Csr::from_pem(&dir.read("k1.csr")).expect_err("k1");
    assert!(err.to_string().contains("1.3.132.0.10"), "{err}");
}

#[test]
fn bad_signature_is_csr_signature() {
    let dir = Dir::new();
    for spec in ["rsa:2048", "P-256"] {
        openssl_csr(&dir, "r", spec, "/CN=dev", &[]);
        let der = pem::parse(dir.read("r.csr")).expect("pem").into_contents();
        let mut tampered = der.clone();
        if let Some(b) = tampered.last_mut() {
            *b ^= 0x01;
        }
        assert!(
            matches!(Csr::from_der(&tampered), Err(PkiError::CsrSignature)),
            "{spec}"
        );
        // Changing the subject (inside the signed part) also breaks it.
        let pos = der.windows(3).position(|w| w == b"dev").expect("CN bytes");
        let mut changed = der.clone();
        changed[pos] = b'x';
        assert!(
            matches!(Csr::from_der(&changed), Err(PkiError::CsrSignature)),
            "{spec}"
        );
    }
}

#[test]
fn sha1_signed_csr_is_accepted() {
    // The CSR's own hash does not matter: AWS re-signs.
    let dir = Dir::new();
    openssl_csr(&dir, "r", "rsa:2048", "/CN=old-device", &["-sha1"]);
    let csr = Csr::from_pem(&dir.read("r.csr")).expect("sha1 csr");
    assert_eq!(csr.subject().common_name(), Some("old-device"));
}

#[test]
fn unusual_extensions_and_attributes_are_fine() {
    let dir = Dir::new();
    openssl_csr(
        &dir,
        "r",
        "P-256",
        "/CN=dev/OU=a/OU=b",
        &[
            "-addext",
            "1.2.3.4.5.6=critical,DER:01:02:03",
            "-addext",
            "subjectAltName=DNS:dev.example.com,IP:10.1.2.3",
            "-addext",
            "keyUsage=critical,digitalSignature,keyAgreement",
            "-addext",
            "extendedKeyUsage=clientAuth,1.3.6.1.4.1.311.20.2.2",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ],
    );
    // A challengePassword attribute as well.
    let csr = Csr::from_pem(&dir.read("r.csr")).expect("unusual csr");
    assert_eq!(csr.subject().values("OU").collect::<Vec<_>>(), ["a", "b"]);
}

#[test]
fn malformed_inputs() {
    let dir = Dir::new();
    openssl_csr(&dir, "r", "P-256", "/CN=dev", &[]);
    let csr = dir.read("r.csr");
    let key = dir.read("r.key");
    let new_label = csr.replace("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST");
    Csr::from_pem(&new_label).expect("NEW CERTIFICATE REQUEST label (old Netscape/MS tools)");
    let cases: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("key", key.clone()),
        ("two", format!("{csr}{csr}")),
        ("junk", format!("{csr}x")),
        (
            "not der",
            "-----BEGIN CERTIFICATE REQUEST-----\naGVsbG8=\n-----END CERTIFICATE REQUEST-----\n"
                .into(),
        ),
    ];
    for (name, input) in cases {
        let err = Csr::from_pem(&input).expect_err(name);
        let msg = err.to_string();
        for line in key.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!msg.contains(line), "{name} leaks key");
        }
    }
    let mut der = pem::parse(&csr).expect("pem").into_contents();
    der.push(0);
    assert!(matches!(Csr::from_der(&der), Err(PkiError::CsrParse(_))));
}
