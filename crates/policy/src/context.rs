//! What is known about a connection, and how policy variables / condition keys resolve
//! against it.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// Everything the policy engine may know about one connection. Built by the gateway at
/// CONNECT; all of it is stable for the life of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionContext {
    /// MQTT client id (`iot:ClientId`).
    pub client_id: String,
    /// Account id the connection belongs to (ARN account field).
    pub account_id: String,
    /// Region (ARN region field).
    pub region: String,
    /// ARN partition, `"aws"` by default.
    pub partition: String,
    /// Peer address (`aws:SourceIp`).
    pub source_ip: Option<IpAddr>,
    /// The client certificate, if the connection authenticated with one.
    pub certificate: Option<CertificateInfo>,
    /// The thing associated with the connection, if any (`iot:Connection.Thing.*`).
    pub thing: Option<ThingInfo>,
    /// MQTT connect attributes (`iot:ConnectAttributes`).
    pub connect_attributes: ConnectAttributes,
}

impl ConnectionContext {
    /// A context with the given client id, account and region, partition `aws`, and nothing
    /// else known.
    pub fn new(
        client_id: impl Into<String>,
        account_id: impl Into<String>,
        region: impl Into<String>,
    ) -> ConnectionContext {
        ConnectionContext {
            client_id: client_id.into(),
            account_id: account_id.into(),
            region: region.into(),
            partition: "aws".to_owned(),
            source_ip: None,
            certificate: None,
            thing: None,
            connect_attributes: ConnectAttributes::default(),
        }
    }
}

/// Certificate attributes, keyed by the names AWS uses in policy variables.
///
/// `subject`/`issuer` keys: `CommonName`, `Organization`, `OrganizationalUnit`, `Country`,
/// `State`, `SerialNumber`, `DistinguishedNameQualifier`, `Title`, `Surname`, `GivenName`,
/// `Initials`, `Pseudonym`, `GenerationQualifier`. Alternative-name keys: `RFC822Name`,
/// `DNSName`, `DirectoryName`, `UniformResourceIdentifier`, `IPAddress`. Values in
/// certificate order; only the first five of each are visible to policies (AWS's limit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Subject DN attributes.
    pub subject: BTreeMap<String, Vec<String>>,
    /// Issuer DN attributes.
    pub issuer: BTreeMap<String, Vec<String>>,
    /// Subject alternative names by type.
    pub subject_alt_names: BTreeMap<String, Vec<String>>,
    /// Issuer alternative names by type.
    pub issuer_alt_names: BTreeMap<String, Vec<String>>,
    /// Certificate serial number as AWS prints it (`iot:Certificate.SerialNumber`).
    pub serial_number: Option<String>,
}

/// The thing associated with the connection.
///
/// Thing variables (`ThingName`, `ThingTypeName`, `Attributes[...]`) resolve only when
/// `is_attached` is true; `IsAttached` resolves to `"true"`/`"false"` whenever the gateway
/// looked for a thing, and to `"false"` when `ConnectionContext::thing` is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThingInfo {
    /// Thing name.
    pub name: String,
    /// Thing type, if any.
    pub type_name: Option<String>,
    /// Thing attributes.
    pub attributes: BTreeMap<String, String>,
    /// Whether the thing is attached to the connecting principal.
    pub is_attached: bool,
}

/// MQTT connect attributes visible through `iot:ConnectAttributes`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectAttributes {
    /// Clean session / clean start was false.
    pub persistent_connect: bool,
    /// The CONNECT carried a will message.
    pub last_will: bool,
}

/// Result of resolving a condition key / variable name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyValue {
    /// Not a key this engine knows.
    Unknown,
    /// A known key with no value for this connection.
    Missing,
    /// A single value.
    One(String),
    /// A multi-valued key (`.List`, `AvailableKeys`, `ConnectAttributes`).
    Many(Vec<String>),
}

/// Maximum number of values of a multi-valued certificate attribute AWS exposes.
const MAX_LIST: usize = 5;
/// Values longer than this are never substituted.
const MAX_SUBSTITUTED_LEN: usize = 1024;

const DN_ATTRS: &[&str] = &[
    "CommonName",
    "Organization",
    "OrganizationalUnit",
    "Country",
    "State",
    "SerialNumber",
    "DistinguishedNameQualifier",
    "Title",
    "Surname",
    "GivenName",
    "Initials",
    "Pseudonym",
    "GenerationQualifier",
];
const ALT_NAMES: &[&str] = &[
    "RFC822Name",
    "DNSName",
    "DirectoryName",
    "UniformResourceIdentifier",
    "IPAddress",
];

/// The value substituted for `${name}` in a resource or condition value, or `None` when the
/// variable cannot be substituted (unknown, missing, multi-valued, too long, or containing
/// one of `* $ + ? #`).
pub(crate) fn substitution(ctx: &ConnectionContext, name: &str) -> Option<String> {
    match resolve_key(ctx, name) {
        KeyValue::One(v)
            if v.len() <= MAX_SUBSTITUTED_LEN && !v.contains(['*', '$', '+', '?', '#']) =>
        {
            Some(v)
        }
        _ => None,
    }
}

/// Resolves a condition key or variable name (case-insensitive, except attribute names
/// inside `Attributes[...]`).
pub(crate) fn resolve_key(ctx: &ConnectionContext, name: &str) -> KeyValue {
    let lower = name.to_ascii_lowercase();
    let one = |v: &str| KeyValue::One(v.to_owned());
    let attached_thing = ctx.thing.as_ref().filter(|t| t.is_attached);
    match lower.as_str() {
        "iot:clientid" => return one(&ctx.client_id),
        "aws:sourceip" => {
            return ctx
                .source_ip
                .map_or(KeyValue::Missing, |ip| KeyValue::One(ip.to_string()));
        }
        "iot:connection.thing.thingname" => {
            return attached_thing.map_or(KeyValue::Missing, |t| one(&t.name));
        }
        "iot:connection.thing.thingtypename" => {
            return attached_thing
                .and_then(|t| t.type_name.as_deref())
                .map_or(KeyValue::Missing, one);
        }
        "iot:connection.thing.isattached" => {
            let attached = ctx.thing.as_ref().is_some_and(|t| t.is_attached);
            return one(if attached { "true" } else { "false" });
        }
        "iot:connectattributes" => {
            let a = ctx.connect_attributes;
            let mut v = Vec::new();
            if a.persistent_connect {
                v.push("PersistentConnect".to_owned());
            }
            if a.last_will {
                v.push("LastWill".to_owned());
            }
            return KeyValue::Many(v);
        }
        "iot:certificate.serialnumber" => {
            return ctx
                .certificate
                .as_ref()
                .and_then(|c| c.serial_number.as_deref())
                .map_or(KeyValue::Missing, one);
        }
        "iot:certificate.availablekeys" => {
            return ctx
                .certificate
                .as_ref()
                .map_or(KeyValue::Missing, |c| KeyValue::Many(available_keys(c)));
        }
        _ => {}
    }
    const ATTRS: &str = "iot:connection.thing.attributes[";
    if lower.starts_with(ATTRS) && lower.ends_with(']') {
        let attr = name.get(ATTRS.len()..name.len() - 1).unwrap_or_default();
        return attached_thing
            .and_then(|t| t.attributes.get(attr))
            .map_or(KeyValue::Missing, |v| one(v));
    }
    for (prefix, issuer) in [
        ("iot:certificate.subject.", false),
        ("iot:certificate.issuer.", true),
    ] {
        if let Some(rest) = lower.strip_prefix(prefix) {
            return resolve_cert(ctx, issuer, rest);
        }
    }
    KeyValue::Unknown
}

/// `rest` is lower-case: `<attr>[.<n>|.list]` or `alternativename.<type>[.<n>|.list]`.
fn resolve_cert(ctx: &ConnectionContext, issuer: bool, rest: &str) -> KeyValue {
    let (alt, rest) = match rest.strip_prefix("alternativename.") {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let (attr, selector) = match rest.split_once('.') {
        Some((a, s)) => (a, Some(s)),
        None => (rest, None),
    };
    let known: &[&str] = if alt { ALT_NAMES } else { DN_ATTRS };
    let Some(canonical) = known.iter().find(|k| k.eq_ignore_ascii_case(attr)) else {
        return KeyValue::Unknown;
    };
    enum Sel {
        Index(usize),
        List,
    }
    let sel = match selector {
        None => Sel::Index(0),
        Some("list") => Sel::List,
        Some(n) => match n.parse::<usize>() {
            Ok(i) if n.bytes().all(|b| b.is_ascii_digit()) => Sel::Index(i),
            _ => return KeyValue::Unknown,
        },
    };
    let Some(cert) = ctx.certificate.as_ref() else {
        return KeyValue::Missing;
    };
    let map = match (issuer, alt) {
        (false, false) => &cert.subject,
        (true, false) => &cert.issuer,
        (false, true) => &cert.subject_alt_names,
        (true, true) => &cert.issuer_alt_names,
    };
    let values: Vec<String> = map
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(canonical))
        .map(|(_, v)| {
            v.iter()
                .take(MAX_LIST)
                .map(|s| if alt { s.clone() } else { escape_dn(s) })
                .collect()
        })
        .unwrap_or_default();
    match sel {
        Sel::List if values.is_empty() => KeyValue::Missing,
        Sel::List => KeyValue::Many(values),
        Sel::Index(i) => values
            .into_iter()
            .nth(i)
            .map_or(KeyValue::Missing, KeyValue::One),
    }
}

/// AWS presents DN attribute values with `, " \ + = < > ;` backslash-escaped.
fn escape_dn(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ',' | '"' | '\\' | '+' | '=' | '<' | '>' | ';') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn available_keys(cert: &CertificateInfo) -> Vec<String> {
    let mut keys = Vec::new();
    for (label, map, names) in [
        ("Subject.", &cert.subject, DN_ATTRS),
        ("Issuer.", &cert.issuer, DN_ATTRS),
        (
            "Subject.AlternativeName.",
            &cert.subject_alt_names,
            ALT_NAMES,
        ),
        ("Issuer.AlternativeName.", &cert.issuer_alt_names, ALT_NAMES),
    ] {
        for name in names {
            if map
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case(name) && !v.is_empty())
            {
                keys.push(format!("iot:Certificate.{label}{name}"));
            }
        }
    }
    if cert.serial_number.is_some() {
        keys.push("iot:Certificate.SerialNumber".to_owned());
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ConnectionContext {
        let mut c = ConnectionContext::new("dev-1", "123456789012", "us-east-1");
        c.source_ip = "192.0.2.7".parse().ok();
        let mut cert = CertificateInfo::default();
        cert.subject
            .insert("CommonName".into(), vec!["dev-1".into()]);
        cert.subject
            .insert("Country".into(), vec!["US".into(), "DE".into()]);
        cert.subject
            .insert("Organization".into(), vec!["Acme, Inc".into()]);
        cert.issuer
            .insert("CommonName".into(), vec!["Acme CA".into()]);
        cert.subject_alt_names.insert(
            "DNSName".into(),
            vec!["a.example".into(), "b.example".into()],
        );
        cert.serial_number = Some("0a1b".into());
        c.certificate = Some(cert);
        c.thing = Some(ThingInfo {
            name: "thing-1".into(),
            type_name: Some("Meter".into()),
            attributes: [("floor".to_owned(), "3".to_owned())].into(),
            is_attached: true,
        });
        c.connect_attributes.persistent_connect = true;
        c
    }

    fn check(key: &str, expected: KeyValue) {
        assert_eq!(resolve_key(&ctx(), key), expected, "{key}");
    }

    fn one(s: &str) -> KeyValue {
        KeyValue::One(s.into())
    }

    #[test]
    fn keys() {
        check("iot:ClientId", one("dev-1"));
        check("IOT:CLIENTID", one("dev-1"));
        check("aws:SourceIp", one("192.0.2.7"));
        check("iot:Connection.Thing.ThingName", one("thing-1"));
        check("iot:Connection.Thing.ThingTypeName", one("Meter"));
        check("iot:Connection.Thing.Attributes[floor]", one("3"));
        check("iot:Connection.Thing.Attributes[Floor]", KeyValue::Missing);
        check("iot:Connection.Thing.IsAttached", one("true"));
        check("iot:Certificate.Subject.CommonName", one("dev-1"));
        check("iot:Certificate.Subject.Country", one("US"));
        check("iot:Certificate.Subject.Country.0", one("US"));
        check("iot:Certificate.Subject.Country.1", one("DE"));
        check("iot:Certificate.Subject.Country.2", KeyValue::Missing);
        check(
            "iot:Certificate.Subject.Country.List",
            KeyValue::Many(vec!["US".into(), "DE".into()]),
        );
        check("iot:Certificate.Subject.Organization", one("Acme\\, Inc"));
        check("iot:Certificate.Subject.Title", KeyValue::Missing);
        check("iot:Certificate.Subject.Colour", KeyValue::Unknown);
        check("iot:Certificate.Issuer.CommonName", one("Acme CA"));
        check(
            "iot:Certificate.Subject.AlternativeName.DNSName.1",
            one("b.example"),
        );
        check("iot:Certificate.SerialNumber", one("0a1b"));
        check(
            "iot:ConnectAttributes",
            KeyValue::Many(vec!["PersistentConnect".into()]),
        );
        check("iot:Nonsense", KeyValue::Unknown);
        check(
            "iot:Certificate.AvailableKeys",
            KeyValue::Many(
                [
                    "iot:Certificate.Subject.CommonName",
                    "iot:Certificate.Subject.Organization",
                    "iot:Certificate.Subject.Country",
                    "iot:Certificate.Issuer.CommonName",
                    "iot:Certificate.Subject.AlternativeName.DNSName",
                    "iot:Certificate.SerialNumber",
                ]
                .map(String::from)
                .to_vec(),
            ),
        );
    }

    #[test]
    fn unattached_thing_does_not_resolve() {
        let mut c = ctx();
        if let Some(t) = c.thing.as_mut() {
            t.is_attached = false;
        }
        assert_eq!(
            resolve_key(&c, "iot:Connection.Thing.ThingName"),
            KeyValue::Missing
        );
        assert_eq!(
            resolve_key(&c, "iot:Connection.Thing.IsAttached"),
            one("false")
        );
        c.thing = None;
        assert_eq!(
            resolve_key(&c, "iot:Connection.Thing.IsAttached"),
            one("false")
        );
    }

    #[test]
    fn substitution_rules() {
        let mut c = ctx();
        assert_eq!(substitution(&c, "iot:ClientId").as_deref(), Some("dev-1"));
        for bad in ["a+b", "#", "x*", "q?", "$x"] {
            c.client_id = bad.into();
            assert_eq!(substitution(&c, "iot:ClientId"), None, "{bad}");
        }
        c.client_id = "a".repeat(1025);
        assert_eq!(substitution(&c, "iot:ClientId"), None);
        c.client_id = "a".repeat(1024);
        assert!(substitution(&c, "iot:ClientId").is_some());
        assert_eq!(
            substitution(&c, "iot:Certificate.Subject.Country.List"),
            None
        );
    }
}
