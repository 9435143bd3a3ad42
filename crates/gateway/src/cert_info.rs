//! The policy variables of a client certificate (`iot:Certificate.*`).

use policy::CertificateInfo;

/// What the policies of a connection may read of its client certificate.
pub fn certificate_info(cert: &pki::Certificate) -> CertificateInfo {
    let mut info = CertificateInfo {
        serial_number: Some(cert.serial_hex()),
        ..Default::default()
    };
    for a in &cert.subject().attributes {
        if let Some(name) = a.policy_name {
            info.subject
                .entry(name.to_owned())
                .or_default()
                .push(a.value.clone());
        }
    }
    for a in &cert.issuer().attributes {
        if let Some(name) = a.policy_name {
            info.issuer
                .entry(name.to_owned())
                .or_default()
                .push(a.value.clone());
        }
    }
    let san = cert.subject_alt_names();
    let mut put = |k: &str, v: Vec<String>| {
        if !v.is_empty() {
            info.subject_alt_names.insert(k.to_owned(), v);
        }
    };
    put("DNSName", san.dns_names.clone());
    put("RFC822Name", san.rfc822_names.clone());
    put("UniformResourceIdentifier", san.uris.clone());
    put(
        "IPAddress",
        san.ip_addresses.iter().map(ToString::to_string).collect(),
    );
    info
}
