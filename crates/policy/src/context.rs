//! What is known about a connection, and how policy variables / condition keys resolve
//! against it.

use std::borrow::Cow;
use std::net::IpAddr;

/// Everything the policy engine may know about one connection. Built by the gateway at
/// CONNECT; all of it is stable for the life of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionContext {
    /// MQTT client id (`iot:ClientId`).
    pub client_id: Box<str>,
    /// Account id the connection belongs to (ARN account field).
    pub account_id: Box<str>,
    /// Region (ARN region field).
    pub region: Box<str>,
    /// ARN partition, `"aws"` by default.
    pub partition: Cow<'static, str>,
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
        client_id: impl Into<Box<str>>,
        account_id: impl Into<Box<str>>,
        region: impl Into<Box<str>>,
    ) -> ConnectionContext {
        ConnectionContext {
            client_id: client_id.into(),
            account_id: account_id.into(),
            region: region.into(),
            partition: Cow::Borrowed("aws"),
            source_ip: None,
            certificate: None,
            thing: None,
            connect_attributes: ConnectAttributes::default(),
        }
    }
}

/// Certificate attributes, keyed by the names AWS uses in policy variables. Built with
/// [`CertificateInfo::builder`]; stored compactly, as every connection keeps one.
///
/// `subject`/`issuer` names: `CommonName`, `Organization`, `OrganizationalUnit`, `Country`,
/// `State`, `SerialNumber`, `DistinguishedNameQualifier`, `Title`, `Surname`, `GivenName`,
/// `Initials`, `Pseudonym`, `GenerationQualifier`. Alternative-name types: `RFC822Name`,
/// `DNSName`, `DirectoryName`, `UniformResourceIdentifier`, `IPAddress`. Names are
/// case-insensitive; values keep certificate order; only the first five values of each are
/// kept, as only those are visible to policies (AWS's limit); other names are dropped, as no
/// policy variable can read them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CertificateInfo {
    /// All values, concatenated in `entries` order.
    text: Box<str>,
    /// One per value, sorted by key (values of one key in certificate order).
    entries: Box<[Entry]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    key: Key,
    /// Where the value ends in `CertificateInfo::text`; it starts where the previous one ends.
    end: u32,
}

/// A name in one of the four groups, or the serial number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    group: Group,
    /// Index into [`Group::names`].
    name: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    Subject,
    Issuer,
    SubjectAltName,
    IssuerAltName,
    SerialNumber,
}

impl Group {
    const ALL: [Group; 5] = [
        Group::Subject,
        Group::Issuer,
        Group::SubjectAltName,
        Group::IssuerAltName,
        Group::SerialNumber,
    ];

    fn names(self) -> &'static [&'static str] {
        match self {
            Group::Subject | Group::Issuer => DN_ATTRS,
            Group::SubjectAltName | Group::IssuerAltName => ALT_NAMES,
            Group::SerialNumber => &["SerialNumber"],
        }
    }

    /// `name` (any case) as a key of this group.
    fn key(self, name: &str) -> Option<Key> {
        let i = self
            .names()
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name))?;
        Some(Key {
            group: self,
            name: u8::try_from(i).ok()?,
        })
    }
}

impl CertificateInfo {
    /// An empty builder.
    pub fn builder() -> CertificateInfoBuilder {
        CertificateInfoBuilder::default()
    }

    /// The values of subject DN attribute `name` (e.g. `"CommonName"`), in certificate order.
    pub fn subject<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + use<'a> {
        self.values(Group::Subject.key(name))
    }

    /// The values of issuer DN attribute `name`, in certificate order.
    pub fn issuer<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + use<'a> {
        self.values(Group::Issuer.key(name))
    }

    /// The subject alternative names of type `name` (e.g. `"DNSName"`), in certificate order.
    pub fn subject_alt_names<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + use<'a> {
        self.values(Group::SubjectAltName.key(name))
    }

    /// The issuer alternative names of type `name`, in certificate order.
    pub fn issuer_alt_names<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + use<'a> {
        self.values(Group::IssuerAltName.key(name))
    }

    /// The serial number as AWS prints it (`iot:Certificate.SerialNumber`).
    pub fn serial_number(&self) -> Option<&str> {
        self.values(Some(SERIAL)).next()
    }

    fn values(&self, key: Option<Key>) -> impl Iterator<Item = &str> + use<'_> {
        self.entries()
            .filter(move |(k, _)| Some(*k) == key)
            .map(|(_, v)| v)
    }

    fn entries(&self) -> impl Iterator<Item = (Key, &str)> {
        let mut start = 0;
        self.entries.iter().map(move |e| {
            let end = e.end as usize;
            let value = self.text.get(start..end).unwrap_or_default();
            start = end;
            (e.key, value)
        })
    }
}

const SERIAL: Key = Key {
    group: Group::SerialNumber,
    name: 0,
};

impl std::fmt::Debug for CertificateInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        struct Values<'a>(&'a CertificateInfo, Key);
        impl std::fmt::Debug for Values<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_list().entries(self.0.values(Some(self.1))).finish()
            }
        }
        struct Names<'a>(&'a CertificateInfo, Group);
        impl std::fmt::Debug for Names<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut keys: Vec<Key> = self.0.entries.iter().map(|e| e.key).collect();
                keys.dedup();
                let names = self.1.names();
                f.debug_map()
                    .entries(keys.into_iter().filter(|k| k.group == self.1).map(|k| {
                        let name = names.get(usize::from(k.name)).copied().unwrap_or("?");
                        (name, Values(self.0, k))
                    }))
                    .finish()
            }
        }
        f.debug_struct("CertificateInfo")
            .field("subject", &Names(self, Group::Subject))
            .field("issuer", &Names(self, Group::Issuer))
            .field("subject_alt_names", &Names(self, Group::SubjectAltName))
            .field("issuer_alt_names", &Names(self, Group::IssuerAltName))
            .field("serial_number", &self.serial_number())
            .finish()
    }
}

/// Collects the attributes of a certificate for a [`CertificateInfo`].
#[derive(Debug, Clone, Default)]
pub struct CertificateInfoBuilder {
    values: Vec<(Key, String)>,
}

impl CertificateInfoBuilder {
    /// Adds a value of subject DN attribute `name`.
    pub fn subject(&mut self, name: &str, value: &str) -> &mut Self {
        self.add(Group::Subject.key(name), value)
    }

    /// Adds a value of issuer DN attribute `name`.
    pub fn issuer(&mut self, name: &str, value: &str) -> &mut Self {
        self.add(Group::Issuer.key(name), value)
    }

    /// Adds a subject alternative name of type `name`.
    pub fn subject_alt_name(&mut self, name: &str, value: &str) -> &mut Self {
        self.add(Group::SubjectAltName.key(name), value)
    }

    /// Adds an issuer alternative name of type `name`.
    pub fn issuer_alt_name(&mut self, name: &str, value: &str) -> &mut Self {
        self.add(Group::IssuerAltName.key(name), value)
    }

    /// Sets the serial number.
    pub fn serial_number(&mut self, serial: &str) -> &mut Self {
        self.values.retain(|(k, _)| *k != SERIAL);
        self.add(Some(SERIAL), serial)
    }

    fn add(&mut self, key: Option<Key>, value: &str) -> &mut Self {
        if let Some(key) = key {
            let count = self.values.iter().filter(|(k, _)| *k == key).count();
            if count < MAX_LIST {
                self.values.push((key, value.to_owned()));
            }
        }
        self
    }

    /// The certificate info, with exactly the memory it needs.
    pub fn build(&self) -> CertificateInfo {
        let mut values: Vec<&(Key, String)> = self.values.iter().collect();
        // Stable: keeps certificate order within a key.
        values.sort_by_key(|(k, _)| *k);
        let mut text = String::with_capacity(values.iter().map(|(_, v)| v.len()).sum());
        let mut entries = Vec::with_capacity(values.len());
        for (key, value) in values {
            let Ok(end) = u32::try_from(text.len() + value.len()) else {
                break; // Over 4 GiB of names: not from a real certificate.
            };
            text.push_str(value);
            entries.push(Entry { key: *key, end });
        }
        CertificateInfo {
            text: text.into_boxed_str(),
            entries: entries.into_boxed_slice(),
        }
    }
}

/// The thing associated with the connection.
///
/// Thing variables (`ThingName`, `ThingTypeName`, `Attributes[...]`) resolve only when
/// `is_attached` is true; `IsAttached` resolves to `"true"`/`"false"` whenever the gateway
/// looked for a thing, and to `"false"` when `ConnectionContext::thing` is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThingInfo {
    /// Thing name.
    pub name: Box<str>,
    /// Thing type, if any.
    pub type_name: Option<Box<str>>,
    /// Thing attributes.
    pub attributes: ThingAttributes,
    /// Whether the thing is attached to the connecting principal.
    pub is_attached: bool,
}

/// A thing's attributes, sorted by name: built once per connection and only looked up, so a boxed slice (no
/// capacity slack, one allocation for the pairs) rather than a map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThingAttributes(Box<[(Box<str>, Box<str>)]>);

impl ThingAttributes {
    /// The value of attribute `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        let i = self.0.binary_search_by(|(k, _)| (**k).cmp(name)).ok()?;
        self.0.get(i).map(|(_, v)| &**v)
    }
}

impl<K: Into<Box<str>>, V: Into<Box<str>>> FromIterator<(K, V)> for ThingAttributes {
    /// A later value for the same name replaces an earlier one, as in a map.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut pairs: Vec<(Box<str>, Box<str>)> = iter
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        // Stable: of equal names, the last one given comes last.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut unique: Vec<(Box<str>, Box<str>)> = Vec::with_capacity(pairs.len());
        for pair in pairs {
            if unique.last().is_some_and(|last| last.0 == pair.0) {
                unique.pop();
            }
            unique.push(pair);
        }
        ThingAttributes(unique.into_boxed_slice())
    }
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
                .and_then(CertificateInfo::serial_number)
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
            .map_or(KeyValue::Missing, one);
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
    let group = match (issuer, alt) {
        (false, false) => Group::Subject,
        (true, false) => Group::Issuer,
        (false, true) => Group::SubjectAltName,
        (true, true) => Group::IssuerAltName,
    };
    let values: Vec<String> = cert
        .values(group.key(canonical))
        .take(MAX_LIST)
        .map(|s| if alt { s.to_owned() } else { escape_dn(s) })
        .collect();
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
    for group in Group::ALL {
        let label = match group {
            Group::Subject => "Subject.",
            Group::Issuer => "Issuer.",
            Group::SubjectAltName => "Subject.AlternativeName.",
            Group::IssuerAltName => "Issuer.AlternativeName.",
            Group::SerialNumber => "",
        };
        for name in group.names() {
            if cert.values(group.key(name)).next().is_some() {
                keys.push(format!("iot:Certificate.{label}{name}"));
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ConnectionContext {
        let mut c = ConnectionContext::new("dev-1", "123456789012", "us-east-1");
        c.source_ip = "192.0.2.7".parse().ok();
        c.certificate = Some(
            CertificateInfo::builder()
                .subject("CommonName", "dev-1")
                .subject("Country", "US")
                .subject("Organization", "Acme, Inc")
                .subject("Country", "DE")
                .issuer("CommonName", "Acme CA")
                .subject_alt_name("DNSName", "a.example")
                .subject_alt_name("DNSName", "b.example")
                .serial_number("0a1b")
                .build(),
        );
        c.thing = Some(ThingInfo {
            name: "thing-1".into(),
            type_name: Some("Meter".into()),
            attributes: [("floor", "3")].into_iter().collect(),
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
    fn thing_attributes_are_looked_up_by_exact_name_and_the_last_value_wins() {
        let a: ThingAttributes = [("site", "berlin"), ("floor", "3"), ("site", "paris")]
            .into_iter()
            .collect();
        assert_eq!(a.get("site"), Some("paris"));
        assert_eq!(a.get("floor"), Some("3"));
        assert_eq!(a.get("Floor"), None);
        assert_eq!(a.get("model"), None);
        assert_eq!(ThingAttributes::default().get("site"), None);
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
    fn certificate_info_builder() {
        let mut b = CertificateInfo::builder();
        for i in 0..7 {
            b.issuer("organizationalunit", &format!("ou{i}"));
        }
        b.subject("Colour", "blue")
            .subject("CommonName", "a")
            .serial_number("01")
            .serial_number("02");
        let info = b.build();
        assert_eq!(
            info.issuer("OrganizationalUnit").collect::<Vec<_>>(),
            ["ou0", "ou1", "ou2", "ou3", "ou4"]
        );
        assert_eq!(info.subject("COMMONNAME").collect::<Vec<_>>(), ["a"]);
        assert_eq!(info.subject("Colour").count(), 0);
        assert_eq!(info.subject_alt_names("DNSName").count(), 0);
        assert_eq!(info.serial_number(), Some("02"));
        assert_eq!(
            format!("{info:?}"),
            r#"CertificateInfo { subject: {"CommonName": ["a"]}, issuer: {"OrganizationalUnit": ["ou0", "ou1", "ou2", "ou3", "ou4"]}, subject_alt_names: {}, issuer_alt_names: {}, serial_number: Some("02") }"#
        );
        assert_eq!(
            CertificateInfo::builder().build(),
            CertificateInfo::default()
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
        c.client_id = "a".repeat(1025).into();
        assert_eq!(substitution(&c, "iot:ClientId"), None);
        c.client_id = "a".repeat(1024).into();
        assert!(substitution(&c, "iot:ClientId").is_some());
        assert_eq!(
            substitution(&c, "iot:Certificate.Subject.Country.List"),
            None
        );
    }
}
