//! IAM condition operators, evaluated against a [`ConnectionContext`].
//!
//! Every condition key this engine knows depends only on the connection, so conditions are
//! evaluated once, at compile time.

use std::net::IpAddr;

use crate::context::{ConnectionContext, KeyValue, resolve_key, substitution};
use crate::glob::Glob;
use crate::template::Template;

/// The comparison an operator performs, before negation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    ArnLike,
    Null,
}

/// `ForAllValues:` / `ForAnyValue:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Qualifier {
    Single,
    ForAllValues,
    ForAnyValue,
}

/// A parsed condition operator such as `ForAnyValue:StringNotLikeIfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Operator {
    pub(crate) base: Base,
    pub(crate) negated: bool,
    pub(crate) if_exists: bool,
    pub(crate) qualifier: Qualifier,
}

impl Operator {
    /// Parses an operator name; `None` if unknown.
    pub(crate) fn parse(name: &str) -> Option<Operator> {
        let (qualifier, rest) = if let Some(r) = strip_prefix_ci(name, "ForAllValues:") {
            (Qualifier::ForAllValues, r)
        } else if let Some(r) = strip_prefix_ci(name, "ForAnyValue:") {
            (Qualifier::ForAnyValue, r)
        } else {
            (Qualifier::Single, name)
        };
        let (if_exists, rest) = match rest.len().checked_sub("IfExists".len()) {
            Some(n)
                if rest.is_char_boundary(n)
                    && rest[n..].eq_ignore_ascii_case("IfExists")
                    && n > 0 =>
            {
                (true, &rest[..n])
            }
            _ => (false, rest),
        };
        use Base::*;
        let table: &[(&str, Base, bool)] = &[
            ("StringEquals", StringEquals, false),
            ("StringNotEquals", StringEquals, true),
            ("StringEqualsIgnoreCase", StringEqualsIgnoreCase, false),
            ("StringNotEqualsIgnoreCase", StringEqualsIgnoreCase, true),
            ("StringLike", StringLike, false),
            ("StringNotLike", StringLike, true),
            ("NumericEquals", NumericEquals, false),
            ("NumericNotEquals", NumericEquals, true),
            ("NumericLessThan", NumericLessThan, false),
            ("NumericLessThanEquals", NumericLessThanEquals, false),
            ("NumericGreaterThan", NumericGreaterThan, false),
            ("NumericGreaterThanEquals", NumericGreaterThanEquals, false),
            ("DateEquals", DateEquals, false),
            ("DateNotEquals", DateEquals, true),
            ("DateLessThan", DateLessThan, false),
            ("DateLessThanEquals", DateLessThanEquals, false),
            ("DateGreaterThan", DateGreaterThan, false),
            ("DateGreaterThanEquals", DateGreaterThanEquals, false),
            ("Bool", Bool, false),
            ("BinaryEquals", BinaryEquals, false),
            ("IpAddress", IpAddress, false),
            ("NotIpAddress", IpAddress, true),
            ("ArnEquals", ArnLike, false),
            ("ArnLike", ArnLike, false),
            ("ArnNotEquals", ArnLike, true),
            ("ArnNotLike", ArnLike, true),
            ("Null", Null, false),
        ];
        let &(_, base, negated) = table
            .iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(rest))?;
        if base == Null && (if_exists || qualifier != Qualifier::Single) {
            return None;
        }
        Some(Operator {
            base,
            negated,
            if_exists,
            qualifier,
        })
    }

    /// Checks a literal (variable-free) policy value; `Err(reason)` if it can never be valid.
    pub(crate) fn validate_value(self, value: &str) -> Result<(), &'static str> {
        match self.base {
            Base::NumericEquals
            | Base::NumericLessThan
            | Base::NumericLessThanEquals
            | Base::NumericGreaterThan
            | Base::NumericGreaterThanEquals => value
                .trim()
                .parse::<f64>()
                .map(|_| ())
                .map_err(|_| "not a number"),
            Base::Bool | Base::Null => {
                if value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false") {
                    Ok(())
                } else {
                    Err("must be \"true\" or \"false\"")
                }
            }
            Base::IpAddress => parse_cidr(value)
                .map(|_| ())
                .ok_or("not an IP address or CIDR block"),
            _ => Ok(()),
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// One `"<operator>": {"<key>": <values>}` entry of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Condition {
    pub(crate) op: Operator,
    pub(crate) key: String,
    pub(crate) values: Vec<Template>,
}

impl Condition {
    /// Evaluates the condition for a connection.
    pub(crate) fn evaluate(&self, ctx: &ConnectionContext) -> bool {
        let op = self.op;
        let resolved = resolve_key(ctx, &self.key);
        let resolve = |name: &str| substitution(ctx, name);
        if op.base == Base::Null {
            let present = match &resolved {
                KeyValue::Unknown | KeyValue::Missing => false,
                KeyValue::One(_) => true,
                KeyValue::Many(v) => !v.is_empty(),
            };
            return self
                .values
                .iter()
                .filter_map(|t| t.to_plain(&resolve))
                .any(|v| v.eq_ignore_ascii_case("true") != present);
        }
        let ctx_values: Vec<&str> = match &resolved {
            KeyValue::Unknown => {
                return op.if_exists;
            }
            KeyValue::Missing => Vec::new(),
            KeyValue::One(v) => vec![v.as_str()],
            KeyValue::Many(v) => v.iter().map(String::as_str).collect(),
        };
        if ctx_values.is_empty() {
            return op.if_exists
                || match op.qualifier {
                    Qualifier::ForAllValues => true,
                    Qualifier::ForAnyValue => false,
                    Qualifier::Single => op.negated,
                };
        }
        let policy_values = self.compile_values(ctx);
        let pred = |v: &str| policy_values.iter().any(|p| p.matches(op.base, v)) != op.negated;
        match (op.qualifier, op.negated) {
            (Qualifier::ForAllValues, _) | (Qualifier::Single, true) => {
                ctx_values.iter().all(|v| pred(v))
            }
            (Qualifier::ForAnyValue, _) | (Qualifier::Single, false) => {
                ctx_values.iter().any(|v| pred(v))
            }
        }
    }

    /// Substitutes variables in the policy values; values that don't resolve are dropped.
    fn compile_values(&self, ctx: &ConnectionContext) -> Vec<PolicyValue> {
        let resolve = |name: &str| substitution(ctx, name);
        self.values
            .iter()
            .filter_map(|t| match self.op.base {
                Base::StringLike => t.to_glob(&resolve).map(PolicyValue::Glob),
                Base::ArnLike => t
                    .split_colon(6)
                    .iter()
                    .map(|c| c.to_glob(&resolve))
                    .collect::<Option<Vec<_>>>()
                    .map(PolicyValue::Arn),
                _ => t.to_plain(&resolve).map(PolicyValue::Plain),
            })
            .collect()
    }
}

enum PolicyValue {
    Plain(String),
    Glob(Glob),
    Arn(Vec<Glob>),
}

impl PolicyValue {
    /// Non-negated comparison of one context value against this policy value.
    fn matches(&self, base: Base, v: &str) -> bool {
        match (self, base) {
            (PolicyValue::Glob(g), _) => g.is_match(v),
            (PolicyValue::Arn(parts), _) => {
                let ctx_parts: Vec<&str> = v.splitn(6, ':').collect();
                ctx_parts.len() == parts.len()
                    && parts.iter().zip(&ctx_parts).all(|(g, c)| g.is_match(c))
            }
            (PolicyValue::Plain(p), base) => compare_plain(base, p, v),
        }
    }
}

fn compare_plain(base: Base, p: &str, v: &str) -> bool {
    use std::cmp::Ordering::*;
    match base {
        Base::StringEquals | Base::BinaryEquals => p == v,
        Base::StringEqualsIgnoreCase => p.to_lowercase() == v.to_lowercase(),
        Base::Bool => p.eq_ignore_ascii_case(v),
        Base::IpAddress => match (parse_cidr(p), v.parse::<IpAddr>()) {
            (Some((net, len)), Ok(ip)) => in_cidr(ip, net, len),
            _ => false,
        },
        Base::NumericEquals
        | Base::NumericLessThan
        | Base::NumericLessThanEquals
        | Base::NumericGreaterThan
        | Base::NumericGreaterThanEquals => {
            let (Ok(v), Ok(p)) = (v.trim().parse::<f64>(), p.trim().parse::<f64>()) else {
                return false;
            };
            match base {
                Base::NumericEquals => v == p,
                Base::NumericLessThan => v < p,
                Base::NumericLessThanEquals => v <= p,
                Base::NumericGreaterThan => v > p,
                _ => v >= p,
            }
        }
        Base::DateEquals
        | Base::DateLessThan
        | Base::DateLessThanEquals
        | Base::DateGreaterThan
        | Base::DateGreaterThanEquals => {
            // Epoch numbers compare numerically, ISO-8601 timestamps in the same format
            // lexicographically. No condition key of this engine yields a date today.
            let ord = match (v.parse::<f64>(), p.parse::<f64>()) {
                (Ok(v), Ok(p)) => v.partial_cmp(&p),
                _ => Some(v.cmp(p)),
            };
            matches!(
                (base, ord),
                (Base::DateEquals, Some(Equal))
                    | (Base::DateLessThan, Some(Less))
                    | (Base::DateLessThanEquals, Some(Less | Equal))
                    | (Base::DateGreaterThan, Some(Greater))
                    | (Base::DateGreaterThanEquals, Some(Greater | Equal))
            )
        }
        Base::StringLike | Base::ArnLike | Base::Null => false,
    }
}

/// Parses `1.2.3.4`, `1.2.3.0/24`, `2001:db8::/32`.
pub(crate) fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let ip: IpAddr = addr.trim().parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l.trim().parse::<u8>().ok().filter(|&l| l <= max)?,
        None => max,
    };
    Some((ip, len))
}

fn in_cidr(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    let (ip, net, bits) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(a.to_bits()), u128::from(b.to_bits()), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (a.to_bits(), b.to_bits(), 128),
        (IpAddr::V6(a), IpAddr::V4(b)) => match a.to_ipv4_mapped() {
            Some(a) => (u128::from(a.to_bits()), u128::from(b.to_bits()), 32),
            None => return false,
        },
        (IpAddr::V4(_), IpAddr::V6(_)) => return false,
    };
    let shift = bits - u32::from(len);
    if shift >= 128 {
        return true;
    }
    (ip >> shift) == (net >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{CertificateInfo, ThingInfo};

    fn ctx() -> ConnectionContext {
        let mut c = ConnectionContext::new("dev-1", "123456789012", "us-east-1");
        c.source_ip = "192.0.2.7".parse().ok();
        c.thing = Some(ThingInfo {
            name: "dev-1".into(),
            type_name: None,
            attributes: [("floor", "3")].into_iter().collect(),
            is_attached: true,
        });
        c.certificate = Some(
            CertificateInfo::builder()
                .subject("Country", "US")
                .subject("Country", "DE")
                .build(),
        );
        c.connect_attributes.persistent_connect = true;
        c
    }

    /// `check(operator, key, values, expected)` against [`ctx`].
    fn check(op: &str, key: &str, values: &[&str], expected: bool) {
        let Some(parsed) = Operator::parse(op) else {
            panic!("operator {op} did not parse");
        };
        let cond = Condition {
            op: parsed,
            key: key.into(),
            values: values.iter().map(|v| Template::parse(v)).collect(),
        };
        assert_eq!(cond.evaluate(&ctx()), expected, "{op} {key} {values:?}");
    }

    #[test]
    fn operators() {
        let id = "iot:ClientId";
        check("StringEquals", id, &["dev-1"], true);
        check("StringEquals", id, &["x", "dev-1"], true);
        check("StringEquals", id, &["DEV-1"], false);
        check("StringNotEquals", id, &["dev-1"], false);
        check("StringNotEquals", id, &["x", "y"], true);
        check("StringEqualsIgnoreCase", id, &["DEV-1"], true);
        check("StringNotEqualsIgnoreCase", id, &["DEV-1"], false);
        check("StringLike", id, &["dev-*"], true);
        check("StringLike", id, &["dev-?"], true);
        check("StringLike", id, &["dev${*}"], false);
        check("StringNotLike", id, &["x*"], true);
        check(
            "StringEquals",
            id,
            &["${iot:Connection.Thing.ThingName}"],
            true,
        );
        check(
            "StringEquals",
            "iot:Connection.Thing.ThingName",
            &["${iot:ClientId}"],
            true,
        );
        check("Bool", "iot:Connection.Thing.IsAttached", &["true"], true);
        check("Bool", "iot:Connection.Thing.IsAttached", &["false"], false);
        check("IpAddress", "aws:SourceIp", &["192.0.2.0/24"], true);
        check("IpAddress", "aws:SourceIp", &["198.51.100.0/24"], false);
        check("IpAddress", "aws:SourceIp", &["0.0.0.0/0"], true);
        check("IpAddress", "aws:SourceIp", &["192.0.2.7"], true);
        check("IpAddress", "aws:SourceIp", &["2001:db8::/32"], false);
        check("NotIpAddress", "aws:SourceIp", &["10.0.0.0/8"], true);
        check(
            "NumericEquals",
            "iot:Connection.Thing.Attributes[floor]",
            &["3"],
            true,
        );
        check(
            "NumericNotEquals",
            "iot:Connection.Thing.Attributes[floor]",
            &["3"],
            false,
        );
        check(
            "NumericLessThan",
            "iot:Connection.Thing.Attributes[floor]",
            &["4"],
            true,
        );
        check(
            "NumericLessThanEquals",
            "iot:Connection.Thing.Attributes[floor]",
            &["3"],
            true,
        );
        check(
            "NumericGreaterThan",
            "iot:Connection.Thing.Attributes[floor]",
            &["3"],
            false,
        );
        check(
            "NumericGreaterThanEquals",
            "iot:Connection.Thing.Attributes[floor]",
            &["3.0"],
            true,
        );
        check("NumericEquals", id, &["3"], false);
        check("ArnLike", id, &["*"], true);
        check("ArnLike", id, &["arn:*:*:*:*:*"], false);
        check("DateLessThan", id, &["e"], true);
    }

    #[test]
    fn missing_unknown_and_qualifiers() {
        let missing = "iot:Connection.Thing.ThingTypeName";
        check("StringEquals", missing, &["x"], false);
        check("StringNotEquals", missing, &["x"], true);
        check("StringEqualsIfExists", missing, &["x"], true);
        check("StringEqualsIfExists", "iot:ClientId", &["x"], false);
        check("Null", missing, &["true"], true);
        check("Null", missing, &["false"], false);
        check("Null", "iot:ClientId", &["false"], true);
        // Unknown keys never match, whatever the operator, unless IfExists.
        check("StringEquals", "iot:Bogus", &["x"], false);
        check("StringNotEquals", "iot:Bogus", &["x"], false);
        check("StringNotEqualsIfExists", "iot:Bogus", &["x"], true);
        check("Null", "iot:Bogus", &["true"], true);

        let attrs = "iot:ConnectAttributes";
        check(
            "ForAllValues:StringEquals",
            attrs,
            &["PersistentConnect"],
            true,
        );
        check("ForAllValues:StringEquals", attrs, &["LastWill"], false);
        check(
            "ForAnyValue:StringEquals",
            attrs,
            &["PersistentConnect", "x"],
            true,
        );
        check("ForAnyValue:StringEquals", attrs, &["LastWill"], false);
        let countries = "iot:Certificate.Subject.Country.List";
        check(
            "ForAllValues:StringEquals",
            countries,
            &["US", "DE", "FR"],
            true,
        );
        check("ForAllValues:StringEquals", countries, &["US"], false);
        check("ForAnyValue:StringLike", countries, &["D*"], true);
        check("ForAllValues:StringNotEquals", countries, &["FR"], true);
        check("ForAnyValue:StringNotEquals", countries, &["US"], true);
        // ForAllValues over an empty set is vacuously true; ForAnyValue false.
        check(
            "ForAllValues:StringEquals",
            "iot:Certificate.Issuer.Country.List",
            &["x"],
            true,
        );
        check(
            "ForAnyValue:StringEquals",
            "iot:Certificate.Issuer.Country.List",
            &["x"],
            false,
        );
    }

    #[test]
    fn operator_parsing() {
        for ok in [
            "StringEquals",
            "stringequals",
            "ForAllValues:StringLikeIfExists",
            "ForAnyValue:NotIpAddress",
            "ArnNotLikeIfExists",
            "Null",
            "DateGreaterThanEquals",
        ] {
            assert!(Operator::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "IfExists",
            "StringEq",
            "NullIfExists",
            "ForAllValues:Null",
            "Foo:Bool",
        ] {
            assert!(Operator::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn cidrs() {
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        let cases = [
            ("10.1.2.3", "10.0.0.0/8", true),
            ("11.1.2.3", "10.0.0.0/8", false),
            ("2001:db8::1", "2001:db8::/32", true),
            ("2001:db9::1", "2001:db8::/32", false),
            ("::ffff:10.1.2.3", "10.0.0.0/8", true),
            ("10.1.2.3", "::/0", false),
            ("::1", "::/0", true),
        ];
        for (addr, cidr, expected) in cases {
            let (Some(a), Some((n, l))) = (ip(addr), parse_cidr(cidr)) else {
                panic!("bad case {addr} {cidr}");
            };
            assert_eq!(in_cidr(a, n, l), expected, "{addr} in {cidr}");
        }
        assert!(parse_cidr("10.0.0.0/33").is_none());
        assert!(parse_cidr("nope").is_none());
    }

    #[test]
    fn arn_like_is_per_component() {
        let op = Operator::parse("ArnLike");
        let Some(op) = op else { panic!() };
        let v = PolicyValue::Arn(
            Template::parse("arn:aws:iot:*:123:thing/*")
                .split_colon(6)
                .iter()
                .filter_map(|t| t.to_glob(&|_| None))
                .collect(),
        );
        assert!(v.matches(op.base, "arn:aws:iot:us-east-1:123:thing/a:b"));
        assert!(!v.matches(op.base, "arn:aws:iot:us-east-1:x:123:thing/a"));
    }
}
