//! Distinguished names as ordered attribute lists.

use std::fmt;
use x509_parser::asn1_rs::Tag;
use x509_parser::x509::X509Name;

/// One attribute of a distinguished name, e.g. `CN=thing-1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAttribute {
    /// Dotted OID of the attribute type, e.g. `2.5.4.3`.
    pub oid: String,
    /// Short key as OpenSSL prints it (`CN`, `O`, `serialNumber`, ...), or the dotted OID
    /// when the type is unknown.
    pub short_name: String,
    /// The AWS IoT policy-variable name (`CommonName`, `Organization`, ...) for the attribute
    /// types AWS exposes as `iot:Certificate.Subject.*`; `None` for other types.
    pub policy_name: Option<&'static str>,
    /// The value as text. Non-string values are rendered as `#` + hex of their DER
    /// (RFC 4514 style).
    pub value: String,
    /// Index of the RDN this attribute belongs to; equal indexes mean a multi-valued RDN.
    pub rdn: usize,
}

/// A distinguished name: raw DER plus its attributes in encoding order.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DistinguishedName {
    /// The Name exactly as encoded in the certificate or CSR.
    pub der: Vec<u8>,
    /// Attributes in order of appearance; repeated types are kept.
    pub attributes: Vec<NameAttribute>,
}

/// (OID, short name, AWS policy-variable name).
const KNOWN: &[(&str, &str, Option<&str>)] = &[
    ("2.5.4.3", "CN", Some("CommonName")),
    ("2.5.4.10", "O", Some("Organization")),
    ("2.5.4.11", "OU", Some("OrganizationalUnit")),
    ("2.5.4.6", "C", Some("Country")),
    ("2.5.4.8", "ST", Some("State")),
    ("2.5.4.7", "L", Some("Locality")),
    ("2.5.4.5", "serialNumber", Some("SerialNumber")),
    (
        "2.5.4.46",
        "dnQualifier",
        Some("DistinguishedNameQualifier"),
    ),
    ("2.5.4.12", "title", Some("Title")),
    ("2.5.4.4", "SN", Some("Surname")),
    ("2.5.4.42", "GN", Some("GivenName")),
    ("2.5.4.43", "initials", Some("Initials")),
    ("2.5.4.65", "pseudonym", Some("Pseudonym")),
    (
        "2.5.4.44",
        "generationQualifier",
        Some("GenerationQualifier"),
    ),
    ("2.5.4.9", "street", None),
    ("2.5.4.17", "postalCode", None),
    ("2.5.4.15", "businessCategory", None),
    ("1.2.840.113549.1.9.1", "emailAddress", None),
    ("0.9.2342.19200300.100.1.25", "DC", None),
    ("0.9.2342.19200300.100.1.1", "UID", None),
];

impl DistinguishedName {
    pub(crate) fn from_x509(name: &X509Name<'_>) -> Self {
        let mut attributes = Vec::new();
        for (rdn_idx, rdn) in name.iter_rdn().enumerate() {
            for atv in rdn.iter() {
                let oid = atv.attr_type().to_id_string();
                let (short_name, policy_name) = KNOWN
                    .iter()
                    .find(|(o, _, _)| *o == oid)
                    .map(|(_, s, p)| ((*s).to_string(), *p))
                    .unwrap_or_else(|| (oid.clone(), None));
                let any = atv.attr_value();
                let value = decode_string(any.header.tag(), any.data)
                    .unwrap_or_else(|| format!("#{}", hex::encode(any.data)));
                attributes.push(NameAttribute {
                    oid,
                    short_name,
                    policy_name,
                    value,
                    rdn: rdn_idx,
                });
            }
        }
        Self {
            der: name.as_raw().to_vec(),
            attributes,
        }
    }

    /// All values of the attribute with this AWS policy-variable name (`CommonName`, ...), in order.
    pub fn values_by_policy_name<'a>(
        &'a self,
        policy_name: &'a str,
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.attributes
            .iter()
            .filter(move |a| a.policy_name == Some(policy_name))
            .map(|a| a.value.as_str())
    }

    /// All values of the attribute with this short key (`CN`, `O`, ...) or dotted OID, in order.
    pub fn values<'a>(&'a self, short_name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.attributes
            .iter()
            .filter(move |a| a.short_name == short_name || a.oid == short_name)
            .map(|a| a.value.as_str())
    }

    /// The first common name, if any.
    pub fn common_name(&self) -> Option<&str> {
        self.values("CN").next()
    }

    /// RFC 5280 7.1 style comparison: equal DER, or the same attribute types in the same RDN
    /// structure with values equal after trimming, whitespace folding and case folding.
    pub fn matches(&self, other: &DistinguishedName) -> bool {
        if self.der == other.der {
            return true;
        }
        self.attributes.len() == other.attributes.len()
            && self
                .attributes
                .iter()
                .zip(&other.attributes)
                .all(|(a, b)| a.oid == b.oid && a.rdn == b.rdn && fold(&a.value) == fold(&b.value))
    }
}

fn fold(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl fmt::Display for DistinguishedName {
    /// `CN=a, O=b` in encoding order (multi-valued RDNs joined with `+`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut prev: Option<usize> = None;
        for a in &self.attributes {
            match prev {
                None => {}
                Some(p) if p == a.rdn => f.write_str(" + ")?,
                Some(_) => f.write_str(", ")?,
            }
            write!(f, "{}={}", a.short_name, a.value)?;
            prev = Some(a.rdn);
        }
        Ok(())
    }
}

/// Decodes the ASN.1 string types found in names.
fn decode_string(tag: Tag, data: &[u8]) -> Option<String> {
    match tag {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::VisibleString
        | Tag::NumericString => std::str::from_utf8(data).ok().map(str::to_string),
        // T61 in practice carries Latin-1.
        Tag::T61String => Some(data.iter().map(|b| char::from(*b)).collect()),
        Tag::BmpString => {
            if !data.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        Tag::UniversalString => {
            if !data.len().is_multiple_of(4) {
                return None;
            }
            data.chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect()
        }
        _ => None,
    }
}
