//! The policy variables of a client certificate (`iot:Certificate.*`).

use policy::CertificateInfo;

/// What the policies of a connection may read of its client certificate.
pub fn certificate_info(cert: &pki::Certificate) -> CertificateInfo {
    let mut info = CertificateInfo::builder();
    info.serial_number(&cert.serial_hex());
    for a in &cert.subject().attributes {
        if let Some(name) = a.policy_name {
            info.subject(name, &a.value);
        }
    }
    for a in &cert.issuer().attributes {
        if let Some(name) = a.policy_name {
            info.issuer(name, &a.value);
        }
    }
    let san = cert.subject_alt_names();
    for v in &san.dns_names {
        info.subject_alt_name("DNSName", v);
    }
    for v in &san.rfc822_names {
        info.subject_alt_name("RFC822Name", v);
    }
    for v in &san.uris {
        info.subject_alt_name("UniformResourceIdentifier", v);
    }
    for ip in &san.ip_addresses {
        info.subject_alt_name("IPAddress", &ip.to_string());
    }
    info.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pki::{CertificateAuthority, KeyAlgorithm};

    #[test]
    fn names_alternative_names_and_serial() {
        let now = 1_700_000_000;
        let ca = CertificateAuthority::generate_root("Acme Root", KeyAlgorithm::EcdsaP256, now)
            .expect("root");
        let sans = ["dev-1.example", "dev-1.example.net", "192.0.2.7"].map(String::from);
        let (cert, _) = ca
            .issue_server_cert(&sans, KeyAlgorithm::EcdsaP256, now)
            .expect("cert");
        let info = certificate_info(&cert);
        let all = |it: &mut dyn Iterator<Item = &str>| it.map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(all(&mut info.subject("CommonName")), ["dev-1.example"]);
        assert_eq!(all(&mut info.issuer("CommonName")), ["Acme Root"]);
        assert_eq!(
            all(&mut info.subject_alt_names("DNSName")),
            ["dev-1.example", "dev-1.example.net"]
        );
        assert_eq!(all(&mut info.subject_alt_names("IPAddress")), ["192.0.2.7"]);
        assert_eq!(info.serial_number(), Some(cert.serial_hex().as_str()));
    }
}
