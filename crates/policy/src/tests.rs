//! End-to-end tests: documents from AWS's docs and the spec, parsed, compiled for a
//! connection and evaluated. Each table goes through one `check*` helper.

use proptest::prelude::*;

use crate::{
    Action, CertificateInfo, CompiledPolicy, ConnectionContext, DEFAULT_MAX_CHARS, Decision,
    PolicyDocument, ResourceKind, ThingInfo, compile, resource_arn,
};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const ARN: &str = "arn:aws:iot:us-east-1:123456789012";

use Action::{Connect, Publish, Receive, RetainPublish, Subscribe};
use Decision::{Allow as A, ExplicitDeny as D, ImplicitDeny as I};

fn ctx(client_id: &str) -> ConnectionContext {
    ConnectionContext::new(client_id, ACCOUNT, REGION)
}

fn with_thing(mut c: ConnectionContext, name: &str) -> ConnectionContext {
    c.thing = Some(ThingInfo {
        name: name.into(),
        type_name: Some("Meter".into()),
        attributes: [("site", "berlin")].into_iter().collect(),
        is_attached: true,
    });
    c
}

fn parse(doc: &str) -> PolicyDocument {
    match PolicyDocument::parse(doc) {
        Ok(d) => d,
        Err(e) => panic!("policy did not parse: {e}\n{doc}"),
    }
}

/// Parses `policies`, compiles them for `ctx` and checks every `(action, "<kind>/<name>",
/// expected)`; `<kind>/<name>` is expanded to the connection's ARN unless it starts with
/// `arn:`. Also checks that `evaluate_resource` agrees with `evaluate`.
fn check(policies: &[&str], ctx: &ConnectionContext, cases: &[(Action, &str, Decision)]) {
    let docs: Vec<PolicyDocument> = policies.iter().map(|p| parse(p)).collect();
    let compiled = compile(&docs, ctx);
    for &(action, resource, expected) in cases {
        let arn = if resource.starts_with("arn:") {
            resource.to_owned()
        } else {
            format!("{ARN}:{resource}")
        };
        assert_eq!(
            compiled.evaluate(action, &arn),
            expected,
            "{action} on {arn} for client {:?}",
            ctx.client_id
        );
        let kind = [
            ResourceKind::Client,
            ResourceKind::Topic,
            ResourceKind::TopicFilter,
            ResourceKind::Thing,
            ResourceKind::RoleAlias,
        ]
        .into_iter()
        .find_map(|k| {
            let prefix = resource_arn(ctx, k, "");
            arn.strip_prefix(prefix.as_str()).map(|name| (k, name))
        });
        if let Some((kind, name)) = kind {
            assert_eq!(
                compiled.evaluate_resource(action, kind, name),
                expected,
                "evaluate_resource {action} {kind:?} {name}"
            );
        }
    }
}

fn allow(action: &str, resource: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":{action},"Resource":{resource}}}]}}"#
    )
}

#[test]
fn per_thing_topics() {
    // AWS docs: a thing may only publish/subscribe/receive on its own topics.
    let doc = format!(
        r#"{{"Version": "2012-10-17", "Statement": [
        {{"Effect": "Allow", "Action": "iot:Connect",
          "Resource": "{ARN}:client/${{iot:Connection.Thing.ThingName}}"}},
        {{"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
          "Resource": "{ARN}:topic/things/${{iot:Connection.Thing.ThingName}}/*"}},
        {{"Effect": "Allow", "Action": "iot:Subscribe",
          "Resource": "{ARN}:topicfilter/things/${{iot:Connection.Thing.ThingName}}/*"}},
        {{"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
          "Resource": "{ARN}:topic/$aws/things/${{iot:Connection.Thing.ThingName}}/shadow/*"}}
    ]}}"#
    );
    let c = with_thing(ctx("meter-1"), "meter-1");
    check(
        &[&doc],
        &c,
        &[
            (Connect, "client/meter-1", A),
            (Connect, "client/meter-2", I),
            (Publish, "topic/things/meter-1/telemetry", A),
            (Publish, "topic/things/meter-1/a/b/c", A),
            (Publish, "topic/things/meter-2/telemetry", I),
            (Publish, "topic/things/meter-1", I),
            (Receive, "topic/things/meter-1/cmd", A),
            (Subscribe, "topicfilter/things/meter-1/#", A),
            (Subscribe, "topicfilter/things/meter-1/+/x", A),
            (Subscribe, "topicfilter/things/+/cmd", I),
            (Publish, "topic/$aws/things/meter-1/shadow/update", A),
            (Publish, "topic/$aws/things/meter-2/shadow/update", I),
            (RetainPublish, "topic/things/meter-1/telemetry", I),
            // Another account's ARN never matches.
            (
                Publish,
                "arn:aws:iot:us-east-1:999999999999:topic/things/meter-1/x",
                I,
            ),
        ],
    );
    // Without an (attached) thing the variables do not resolve: nothing is allowed.
    check(
        &[&doc],
        &ctx("meter-1"),
        &[
            (Connect, "client/meter-1", I),
            (Publish, "topic/things/meter-1/telemetry", I),
        ],
    );
    let mut unattached = with_thing(ctx("meter-1"), "meter-1");
    if let Some(t) = unattached.thing.as_mut() {
        t.is_attached = false;
    }
    check(&[&doc], &unattached, &[(Connect, "client/meter-1", I)]);
}

#[test]
fn client_id_restriction() {
    let doc = format!(
        r#"{{"Version": "2012-10-17", "Statement": [
        {{"Effect": "Allow", "Action": "iot:Connect", "Resource": "{ARN}:client/${{iot:ClientId}}"}},
        {{"Effect": "Allow", "Action": "iot:Publish", "Resource": "{ARN}:topic/${{iot:ClientId}}/*"}}
    ]}}"#
    );
    check(
        &[&doc],
        &ctx("sensor-7"),
        &[
            (Connect, "client/sensor-7", A),
            (Publish, "topic/sensor-7/data", A),
            (Publish, "topic/sensor-8/data", I),
        ],
    );
    // A client id with a policy wildcard in it is not substituted: no match at all.
    check(
        &[&doc],
        &ctx("sensor-*"),
        &[
            (Connect, "client/sensor-*", I),
            (Publish, "topic/sensor-8/data", I),
            (Publish, "topic/sensor-*/data", I),
        ],
    );
}

#[test]
fn fixed_client_ids_and_question_mark() {
    let doc = allow(
        r#""iot:Connect""#,
        &format!(r#"["{ARN}:client/dev-??", "{ARN}:client/gw-${{*}}"]"#),
    );
    check(
        &[&doc],
        &ctx("x"),
        &[
            (Connect, "client/dev-01", A),
            (Connect, "client/dev-1", I),
            (Connect, "client/dev-001", I),
            (Connect, "client/gw-*", A),
            (Connect, "client/gw-1", I),
        ],
    );
}

#[test]
fn deny_overrides_allow() {
    let doc = format!(
        r#"{{"Version": "2012-10-17", "Statement": [
        {{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}},
        {{"Effect": "Deny", "Action": ["iot:Publish", "iot:Receive"], "Resource": "{ARN}:topic/admin/*"}},
        {{"Effect": "Deny", "Action": "iot:Connect", "Resource": "{ARN}:client/bad-*"}}
    ]}}"#
    );
    check(
        &[&doc],
        &ctx("x"),
        &[
            (Publish, "topic/any/thing", A),
            (Publish, "topic/admin/reboot", D),
            (Receive, "topic/admin/reboot", D),
            (Subscribe, "topicfilter/admin/#", A),
            (Connect, "client/good", A),
            (Connect, "client/bad-1", D),
        ],
    );
    // Deny in one policy beats Allow in another.
    let open = allow(r#""iot:Publish""#, r#""*""#);
    let deny = format!(
        r#"{{"Statement": {{"Effect": "Deny", "Action": "iot:Publish", "Resource": "{ARN}:topic/x"}}}}"#
    );
    check(
        &[&open, &deny],
        &ctx("c"),
        &[(Publish, "topic/x", D), (Publish, "topic/y", A)],
    );
}

#[test]
fn mqtt_wildcards_are_literal() {
    let doc = allow(
        r#"["iot:Subscribe", "iot:Publish"]"#,
        &format!(r#"["{ARN}:topicfilter/a/+/c", "{ARN}:topicfilter/b/#", "{ARN}:topic/p/#"]"#),
    );
    check(
        &[&doc],
        &ctx("c"),
        &[
            (Subscribe, "topicfilter/a/+/c", A),
            (Subscribe, "topicfilter/a/b/c", I),
            (Subscribe, "topicfilter/a/#", I),
            (Subscribe, "topicfilter/b/#", A),
            (Subscribe, "topicfilter/b/x", I),
            (Publish, "topic/p/x", I),
            (Publish, "topic/p/#", A),
        ],
    );
}

/// The known AWS hole: with `topicfilter/my/${iot:ClientId}/x`, a client connecting as `+`
/// could subscribe to `my/+/x` and receive every client's messages. Onboard applies the
/// "values containing `+`/`#`/`*`/`?`/`$` are not substituted" rule to every variable, so
/// the `+` client gets nothing. Restricting client ids with an `iot:Connect` statement
/// remains the recommended protection.
#[test]
fn plus_client_id_does_not_widen_subscriptions() {
    let doc = allow(
        r#""iot:Subscribe""#,
        &format!(r#""{ARN}:topicfilter/my/${{iot:ClientId}}/x""#),
    );
    check(
        &[&doc],
        &ctx("+"),
        &[
            (Subscribe, "topicfilter/my/+/x", I),
            (Subscribe, "topicfilter/my/a/x", I),
        ],
    );
    check(&[&doc], &ctx("#"), &[(Subscribe, "topicfilter/my/#/x", I)]);
    check(&[&doc], &ctx("a"), &[(Subscribe, "topicfilter/my/a/x", A)]);
}

fn cert_ctx() -> ConnectionContext {
    let mut c = ctx("client-1");
    c.certificate = Some(
        CertificateInfo::builder()
            .subject("CommonName", "device-42")
            .subject("Country", "US")
            .subject("Country", "DE")
            .subject("Organization", "Acme, Inc")
            .issuer("CommonName", "Acme Root")
            .subject_alt_name("DNSName", "device-42.example.com")
            .serial_number("123456789")
            .build(),
    );
    c
}

#[test]
fn certificate_variables() {
    let doc = format!(
        r#"{{"Version": "2012-10-17", "Statement": [
        {{"Effect": "Allow", "Action": "iot:Connect",
          "Resource": "{ARN}:client/${{iot:Certificate.Subject.CommonName}}"}},
        {{"Effect": "Allow", "Action": "iot:Publish", "Resource": [
          "{ARN}:topic/cn/${{iot:Certificate.Subject.CommonName}}",
          "{ARN}:topic/country/${{iot:Certificate.Subject.Country.1}}",
          "{ARN}:topic/country5/${{iot:Certificate.Subject.Country.5}}",
          "{ARN}:topic/issuer/${{iot:Certificate.Issuer.CommonName}}",
          "{ARN}:topic/san/${{iot:Certificate.Subject.AlternativeName.DNSName}}",
          "{ARN}:topic/serial/${{iot:Certificate.SerialNumber}}",
          "{ARN}:topic/org/${{iot:Certificate.Subject.Organization}}",
          "{ARN}:topic/list/${{iot:Certificate.Subject.Country.List}}"
        ]}}
    ]}}"#
    );
    check(
        &[&doc],
        &cert_ctx(),
        &[
            (Connect, "client/device-42", A),
            (Connect, "client/client-1", I),
            (Publish, "topic/cn/device-42", A),
            // `.1` is the second value, per AWS's example.
            (Publish, "topic/country/DE", A),
            (Publish, "topic/country/US", I),
            (Publish, "topic/issuer/Acme Root", A),
            (Publish, "topic/san/device-42.example.com", A),
            (Publish, "topic/serial/123456789", A),
            // DN special characters appear backslash-escaped.
            (Publish, "topic/org/Acme\\, Inc", A),
            (Publish, "topic/org/Acme, Inc", I),
            // `.List` is multi-valued: only usable in conditions.
            (Publish, "topic/list/US", I),
        ],
    );
    // No certificate: nothing resolves.
    check(
        &[&doc],
        &ctx("device-42"),
        &[(Connect, "client/device-42", I)],
    );
}

/// The claim policy of spec §2.4 (with `create-from-csr`) and AWS's doc example (without).
#[test]
fn fleet_provisioning_claim_policy() {
    let arn = "arn:aws:iot:eu-west-1:111122223333";
    let doc = format!(
        r#"{{
  "Version": "2012-10-17",
  "Statement": [
    {{ "Effect": "Allow", "Action": "iot:Connect", "Resource": "{arn}:client/${{iot:ClientId}}" }},
    {{ "Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
      "Resource": [
        "{arn}:topic/$aws/certificates/create/json*",
        "{arn}:topic/$aws/certificates/create-from-csr/json*",
        "{arn}:topic/$aws/provisioning-templates/MeterTemplate/provision/json*" ] }},
    {{ "Effect": "Allow", "Action": "iot:Subscribe",
      "Resource": [
        "{arn}:topicfilter/$aws/certificates/create/json/*",
        "{arn}:topicfilter/$aws/certificates/create-from-csr/json/*",
        "{arn}:topicfilter/$aws/provisioning-templates/MeterTemplate/provision/json/*" ] }}
  ]
}}"#
    );
    let c = ConnectionContext::new("claim-1", "111122223333", "eu-west-1");
    let cases = [
        (Connect, "client/claim-1", A),
        (Publish, "topic/$aws/certificates/create/json", A),
        (Publish, "topic/$aws/certificates/create-from-csr/json", A),
        (Publish, "topic/$aws/certificates/create/cbor", I),
        (Receive, "topic/$aws/certificates/create/json/accepted", A),
        (
            Subscribe,
            "topicfilter/$aws/certificates/create/json/accepted",
            A,
        ),
        (Subscribe, "topicfilter/$aws/certificates/create/json/+", A),
        (
            Publish,
            "topic/$aws/provisioning-templates/MeterTemplate/provision/json",
            A,
        ),
        (
            Publish,
            "topic/$aws/provisioning-templates/Other/provision/json",
            I,
        ),
        (Publish, "topic/$aws/things/x/shadow/update", I),
    ];
    let full = |r: &str| format!("{arn}:{r}");
    let docs = [parse(&doc)];
    let compiled = compile(&docs, &c);
    for (action, r, expected) in cases {
        assert_eq!(
            compiled.evaluate(action, &full(r)),
            expected,
            "{action} {r}"
        );
    }
    assert_eq!(
        docs[0].warnings(),
        vec![],
        "the spec's claim policy is tidy"
    );

    let aws_example = format!(
        r#"{{"Version": "2012-10-17", "Statement": [
        {{"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": [
            "{arn}:topic/$aws/certificates/create/*",
            "{arn}:topic/$aws/provisioning-templates/MeterTemplate/provision/*"]}},
        {{"Effect": "Allow", "Action": "iot:Subscribe", "Resource": [
            "{arn}:topicfilter/$aws/certificates/create/*",
            "{arn}:topicfilter/$aws/provisioning-templates/MeterTemplate/provision/*"]}}
    ]}}"#
    );
    let docs = [parse(&aws_example)];
    let compiled = compile(&docs, &c);
    assert_eq!(
        compiled.evaluate(Publish, &full("topic/$aws/certificates/create/json")),
        A
    );
    assert_eq!(
        compiled.evaluate(
            Publish,
            &full("topic/$aws/certificates/create-from-csr/json")
        ),
        I
    );
    let warnings: Vec<String> = docs[0].warnings().iter().map(|w| w.to_string()).collect();
    assert!(
        warnings.iter().any(|w| w.contains("create-from-csr")),
        "{warnings:?}"
    );
}

#[test]
fn not_action_and_not_resource() {
    let doc = format!(
        r#"{{"Version": "2012-10-17", "Statement": [
        {{"Effect": "Allow", "NotAction": ["iot:Connect", "iot:RetainPublish"], "Resource": "*"}},
        {{"Effect": "Allow", "Action": "iot:Connect", "NotResource": "{ARN}:client/admin-*"}},
        {{"Effect": "Deny", "Action": "iot:Publish", "NotResource": ["{ARN}:topic/ok/*", "{ARN}:topic/fine/*"]}}
    ]}}"#
    );
    check(
        &[&doc],
        &ctx("c"),
        &[
            (Connect, "client/dev-1", A),
            (Connect, "client/admin-1", I),
            (Publish, "topic/ok/1", A),
            (Publish, "topic/fine/1", A),
            (Publish, "topic/other", D),
            (Receive, "topic/other", A),
            (RetainPublish, "topic/ok/1", I),
        ],
    );
}

#[test]
fn conditions_are_decided_at_compile_time() {
    let doc = format!(
        r#"{{"Version": "2012-10-17", "Statement": [
        {{"Effect": "Allow", "Action": "iot:Connect", "Resource": "{ARN}:client/${{iot:Connection.Thing.ThingName}}",
          "Condition": {{"Bool": {{"iot:Connection.Thing.IsAttached": "true"}}}}}},
        {{"Effect": "Allow", "Action": "iot:Publish", "Resource": "{ARN}:topic/office/*",
          "Condition": {{"IpAddress": {{"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]}}}}}},
        {{"Effect": "Allow", "Action": "iot:Publish", "Resource": "{ARN}:topic/site/*",
          "Condition": {{"StringEquals": {{"iot:Connection.Thing.Attributes[site]": "berlin"}}}}}},
        {{"Effect": "Deny", "Action": "iot:Connect", "Resource": "*",
          "Condition": {{"ForAnyValue:StringEquals": {{"iot:ConnectAttributes": "LastWill"}}}}}},
        {{"Effect": "Allow", "Action": "iot:Publish", "Resource": "{ARN}:topic/de/*",
          "Condition": {{"ForAnyValue:StringEquals": {{"iot:Certificate.Subject.Country.List": "DE"}}}}}}
    ]}}"#
    );
    let mut c = with_thing(cert_ctx(), "meter-1");
    c.source_ip = "10.1.2.3".parse().ok();
    check(
        &[&doc],
        &c,
        &[
            (Connect, "client/meter-1", A),
            (Publish, "topic/office/1", A),
            (Publish, "topic/site/1", A),
            (Publish, "topic/de/1", A),
        ],
    );
    c.source_ip = "2001:db8::7".parse().ok();
    check(&[&doc], &c, &[(Publish, "topic/office/1", A)]);
    c.source_ip = "192.0.2.1".parse().ok();
    c.connect_attributes.last_will = true;
    check(
        &[&doc],
        &c,
        &[
            (Publish, "topic/office/1", I),
            (Connect, "client/meter-1", D),
        ],
    );
    // No thing: IsAttached is "false" and thing attributes are missing.
    let c = cert_ctx();
    check(
        &[&doc],
        &c,
        &[(Connect, "client/meter-1", I), (Publish, "topic/site/1", I)],
    );
}

#[test]
fn escapes_and_other_partitions() {
    let doc = allow(
        r#""iot:Publish""#,
        r#"["arn:aws-cn:iot:cn-north-1:123456789012:topic/${$}{iot:ClientId}", "arn:aws-cn:iot:cn-north-1:123456789012:topic/q${?}""#
            .to_owned()
            .replace(r#"q${?}""#, r#"q${?}"]"#)
            .as_str(),
    );
    let mut c = ConnectionContext::new("c", ACCOUNT, "cn-north-1");
    c.partition = "aws-cn".into();
    let compiled = compile(&[parse(&doc)], &c);
    let arn = |t: &str| resource_arn(&c, ResourceKind::Topic, t);
    assert_eq!(compiled.evaluate(Publish, &arn("${iot:ClientId}")), A);
    assert_eq!(compiled.evaluate(Publish, &arn("c")), I);
    assert_eq!(compiled.evaluate(Publish, &arn("q?")), A);
    assert_eq!(compiled.evaluate(Publish, &arn("qx")), I);
    assert!(arn("x").starts_with("arn:aws-cn:iot:cn-north-1:123456789012:topic/"));
}

#[test]
fn empty_and_default() {
    let c = CompiledPolicy::default();
    for a in Action::ALL {
        assert_eq!(c.evaluate(a, "*"), I);
        assert!(!c.may_allow(a));
    }
    let compiled = compile(&[parse(&allow(r#""greengrass:*""#, r#""*""#))], &ctx("c"));
    assert_eq!(compiled.evaluate(Connect, "x"), I);
    let compiled = compile(&[parse(&allow(r#""iot:Connect""#, r#""*""#))], &ctx("c"));
    assert!(compiled.may_allow(Connect));
    assert!(!compiled.may_allow(Publish));
}

/// `check_parse(document, Ok(()) | Err(substring of the error message))`.
fn check_parse(doc: &str, expected: Result<(), &str>) {
    match (PolicyDocument::parse(doc), expected) {
        (Ok(_), Ok(())) => {}
        (Err(e), Err(want)) => {
            let msg = e.to_string();
            assert!(msg.contains(want), "error {msg:?} lacks {want:?} for {doc}");
        }
        (got, want) => panic!("{doc}\n got {got:?}\n want {want:?}"),
    }
}

#[test]
fn parse_errors() {
    let st = |body: &str| format!(r#"{{"Version":"2012-10-17","Statement":[{{{body}}}]}}"#);
    let ok_ar = r#""Action":"iot:Connect","Resource":"*""#;
    let cases: Vec<(String, Result<(), &str>)> = vec![
        ("".into(), Err("not valid JSON")),
        ("{".into(), Err("not valid JSON")),
        ("[]".into(), Err("must be a JSON object")),
        (r#""x""#.into(), Err("must be a JSON object")),
        ("{}".into(), Err("no Statement")),
        (r#"{"Statement": []}"#.into(), Err("must not be empty")),
        (r#"{"Statement": "x"}"#.into(), Err("Statement must be an object or an array")),
        (r#"{"Statement": [1]}"#.into(), Err("Statement[0]: Statement must be an object")),
        (
            r#"{"Statement": {"Effect":"Allow","Action":"iot:Connect","Resource":"*"}}"#.into(),
            Ok(()),
        ),
        (r#"{"Version":"2012-10-17","Id":"x","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#.into(), Ok(())),
        (r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#.into(), Ok(())),
        (r#"{"Version":"2020-01-01","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#.into(), Err("unsupported policy Version \"2020-01-01\"")),
        (r#"{"Version":1,"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#.into(), Err("unsupported policy Version 1")),
        (r#"{"statement":[]}"#.into(), Err("unknown element \"statement\"")),
        (st(&format!(r#""Effect":"allow",{ok_ar}"#)), Err("Statement[0]: Effect must be \"Allow\" or \"Deny\", found \"allow\"")),
        (st(ok_ar), Err("Statement[0]: missing Effect")),
        (st(r#""Effect":"Allow","Resource":"*""#), Err("Statement[0]: missing Action")),
        (st(r#""Effect":"Allow","Action":"iot:Connect""#), Err("Statement[0]: missing Resource")),
        (st(r#""Effect":"Allow","Action":"iot:Connect","NotAction":"iot:Publish","Resource":"*""#), Err("Action and NotAction cannot both be present")),
        (st(r#""Effect":"Allow","Action":"iot:Connect","Resource":"*","NotResource":"*""#), Err("Resource and NotResource cannot both be present")),
        (st(r#""Effect":"Allow","Action":5,"Resource":"*""#), Err("Action must be a string or a non-empty array of strings, found 5")),
        (st(r#""Effect":"Allow","Action":[],"Resource":"*""#), Err("Action must be a string or a non-empty array")),
        (st(r#""Effect":"Allow","Action":["iot:Connect",null],"Resource":"*""#), Err("found null")),
        (st(r#""Effect":"Allow","Action":"iot:Connect","Resource":{"a":1}"#), Err("Resource must be a string or a non-empty array")),
        (st(r#""Effect":"Allow","Action":"iot:Conect","Resource":"*""#), Err("unknown action \"iot:Conect\"")),
        (st(r#""Effect":"Allow","Action":["iot:Publish","s3:GetObject"],"Resource":"*""#), Err("unknown action \"s3:GetObject\"")),
        (st(r#""Effect":"Allow","Action":"iot:Nope*","Resource":"*""#), Err("unknown action \"iot:Nope*\"")),
        (st(r#""Effect":"Allow","Action":["iot:Get*","iot:creatething","greengrass:*"],"Resource":"*""#), Ok(())),
        (st(r#""Effect":"Allow","Action":"iot:Connect","Resource":"client/x""#), Err("invalid resource \"client/x\"")),
        (st(r#""Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:s3:::bucket/x""#), Err("service must be \"iot\"")),
        (st(r#""Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:1:client""#), Err("resource part must be <type>/<name>")),
        (st(r#""Effect":"Allow","Action":"iot:Connect","Resource":"arx:aws:iot:us-east-1:1:client/x""#), Err("must start with \"arn:\"")),
        (st(r#""Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:1:*""#), Ok(())),
        (st(r#""Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:*:*:client/${iot:ClientId}""#), Ok(())),
        (st(r#""Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:${iot:Bogus}:1:client/x""#), Ok(())),
        (st(r#""Effect":"Allow","Action":"iot:Connect","Resource":"*","Principal":"*""#), Err("Statement[0]: unknown element \"Principal\"")),
        (st(r#""Sid":"a","Effect":"Allow","Action":"iot:Connect","Resource":"*","Condition":{"StringEquals":{"iot:ClientId":["a","b"]}}"#), Ok(())),
        (st(r#""Effect":"Allow","Action":"iot:Connect","Resource":"*","Condition":{"Bool":{"iot:Connection.Thing.IsAttached":true}}"#), Ok(())),
        (st(r#""Effect":"Allow","Action":"iot:Connect","Resource":"*","Condition":{"StringEqual":{"iot:ClientId":"a"}}"#), Err("unknown condition operator \"StringEqual\"")),
        (st(r#""Effect":"Allow","Action":"iot:Connect","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/40"}}"#), Err("IpAddress value \"10.0.0.0/40\" for aws:SourceIp is invalid")),
        (st(r#""Effect":"Allow","Action":"iot:Connect","Resource":"*","Condition":{"NumericLessThan":{"k":"ten"}}"#), Err("not a number")),
        (st(r#""Effect":"Allow","Action":"iot:Connect","Resource":"*","Condition":{"Bool":{"k":"yes"}}"#), Err("must be \"true\" or \"false\"")),
        (st(r#""Effect":"Allow","Action":"iot:Connect","Resource":"*","Condition":{"StringEquals":"x"}"#), Err("Condition must be an object of condition keys")),
        (st(r#""Effect":"Allow","Action":"iot:Connect","Resource":"*","Condition":{"StringEquals":{"k":{}}}"#), Err("condition values")),
        (st(r#""Effect":"Allow","Action":"iot:Connect","Resource":"*","Condition":[]"#), Err("Condition must be an object")),
    ];
    for (doc, expected) in cases {
        check_parse(&doc, expected);
    }
}

#[test]
fn size_limit_excludes_whitespace() {
    let base = r#"{"Statement":{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:r:1:topic/"#;
    let tail = r#""}}"#;
    let fill = DEFAULT_MAX_CHARS - base.len() - tail.len();
    let exact = format!("{base}{}{tail}", "a".repeat(fill));
    check_parse(&exact, Ok(()));
    let spaced = format!("  {}\n\n\t", exact.replace(',', " ,  "));
    check_parse(&spaced, Ok(()));
    let over = format!("{base}{}{tail}", "a".repeat(fill + 1));
    check_parse(
        &over,
        Err("2049 characters long excluding whitespace; the limit is 2048"),
    );
    assert!(PolicyDocument::parse_with_limit(&over, 4096).is_ok());
    assert!(PolicyDocument::parse_with_limit(&exact, 100).is_err());
}

/// `check_warnings(document, substrings expected, one per warning, in order)`.
fn check_warnings(doc: &str, expected: &[&str]) {
    let got: Vec<String> = parse(doc)
        .warnings()
        .iter()
        .map(|w| w.to_string())
        .collect();
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for (g, e) in got.iter().zip(expected) {
        assert!(g.contains(e), "{g:?} lacks {e:?}");
    }
}

#[test]
fn warnings() {
    check_warnings(
        &allow(
            r#""iot:Connect""#,
            &format!(r#""{ARN}:client/${{iot:ClientId}}""#),
        ),
        &[],
    );
    check_warnings(
        &allow(r#""iot:Connect""#, &format!(r#""{ARN}:client/*""#)),
        &["Statement[0]: allows iot:Connect with any client id"],
    );
    check_warnings(
        &allow(r#"["iot:Connect","iot:Publish"]"#, r#""*""#),
        &["any client id"],
    );
    check_warnings(
        &allow(r#""iot:*""#, r#""*""#),
        &["every AWS IoT action on every resource"],
    );
    check_warnings(
        &allow(r#""iot:Publish""#, &format!(r#""{ARN}:topic/a/#""#)),
        &["contains an MQTT wildcard"],
    );
    check_warnings(
        &allow(r#""iot:Subscribe""#, &format!(r#""{ARN}:topicfilter/a/#""#)),
        &[],
    );
    check_warnings(
        &allow(
            r#""iot:Publish""#,
            &format!(r#""{ARN}:topic/${{iot:ClientID}}/${{iot:Nope}}""#),
        ),
        &["unknown policy variable ${iot:Nope}"],
    );
    check_warnings(
        &format!(
            r#"{{"Statement":{{"Effect":"Allow","Action":"iot:Publish","Resource":"{ARN}:topic/${{iot:ClientId}}"}}}}"#
        ),
        &["Version is not \"2012-10-17\""],
    );
    check_warnings(
        &allow(
            r#""iot:Publish""#,
            &format!(r#""{ARN}:topic/$aws/certificates/create/*""#),
        ),
        &["fleet provisioning by CSR will be refused"],
    );
    check_warnings(
        &allow(
            r#""iot:Publish""#,
            &format!(r#""{ARN}:topic/$aws/certificates/create*""#),
        ),
        &[],
    );
}

proptest! {
    /// `evaluate` on a built ARN and `evaluate_resource` always agree, and a document's
    /// decision is Allow exactly when the naive reading of its one statement says so.
    #[test]
    fn evaluate_paths_agree(
        pattern in "[ab*?/+#]{0,6}",
        name in "[ab/+#]{0,6}",
        deny in any::<bool>(),
    ) {
        let effect = if deny { "Deny" } else { "Allow" };
        let doc = format!(
            r#"{{"Statement":{{"Effect":"{effect}","Action":"iot:Publish","Resource":"{ARN}:topic/{pattern}"}}}}"#
        );
        let c = ctx("c");
        let compiled = compile(&[parse(&doc)], &c);
        let by_arn = compiled.evaluate(Publish, &resource_arn(&c, ResourceKind::Topic, &name));
        let by_kind = compiled.evaluate_resource(Publish, ResourceKind::Topic, &name);
        prop_assert_eq!(by_arn, by_kind);
        prop_assert_eq!(compiled.evaluate(Subscribe, &resource_arn(&c, ResourceKind::Topic, &name)), I);
        let impossible = if deny { A } else { D };
        prop_assert_ne!(by_arn, impossible);
    }
}

/// The meaning of a set of documents, straight from the statements, as an oracle.
fn naive(docs: &[PolicyDocument], c: &ConnectionContext, action: Action, arn: &str) -> Decision {
    let resolve = |n: &str| crate::context::substitution(c, n);
    let mut allowed = false;
    for st in docs.iter().flat_map(|d| d.statements.iter()) {
        if !st.action_set().contains(action) || !st.conditions.iter().all(|x| x.evaluate(c)) {
            continue;
        }
        let hit = st
            .resources
            .iter()
            .filter_map(|r| r.to_glob(&resolve))
            .any(|g| g.is_match(arn));
        if hit != st.not_resource {
            if st.effect == crate::document::Effect::Deny {
                return D;
            }
            allowed = true;
        }
    }
    if allowed { A } else { I }
}

/// Resource patterns for [`compiled_agrees_with_statements`]: `{}` is replaced by a short
/// wildcard pattern.
const RESOURCES: &[&str] = &[
    "*",
    "{ARN}:topic/{}",
    "{ARN}:topicfilter/{}",
    "{ARN}:client/{}",
    "{ARN}:*{}",
    "{ARN}:topic/${iot:ClientId}/{}",
    "{ARN}:topic/${iot:Connection.Thing.ThingName}/{}",
    "arn:aws:iot:*:123456789012:topic/{}",
    "arn:aws:iot:us-east-?:123456789012:*{}",
    "arn:aws:iot:us-east-1:123456789012:t*{}",
    "arn:aws:iot:eu-west-1:123456789012:topic/{}",
];

proptest! {
    /// Compiling (pattern splitting, merging of statements, deny first) does not change any
    /// decision.
    #[test]
    fn compiled_agrees_with_statements(
        statements in prop::collection::vec(
            (any::<bool>(), 1u8..16, any::<bool>(), any::<bool>(),
             prop::collection::vec((0..RESOURCES.len(), "[ab*?/]{0,4}"), 0..3)),
            1..5),
        names in prop::collection::vec("[ab/:?*]{0,5}", 1..4),
    ) {
        let actions = [Connect, Publish, Subscribe, Receive];
        let mut list = Vec::new();
        for (deny, mask, not_action, not_resource, resources) in &statements {
            let effect = if *deny { "Deny" } else { "Allow" };
            let acts: Vec<String> = actions
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, a)| format!("{:?}", a.name()))
                .collect();
            let res: Vec<String> = resources
                .iter()
                .map(|(i, p)| format!("{:?}", RESOURCES[*i].replace("{ARN}", ARN).replace("{}", p)))
                .collect();
            let res = if res.is_empty() { r#""*""#.to_owned() } else { format!("[{}]", res.join(",")) };
            list.push(format!(
                r#"{{"Effect":"{effect}","{}":[{}],"{}":{res}}}"#,
                if *not_action { "NotAction" } else { "Action" },
                acts.join(","),
                if *not_resource { "NotResource" } else { "Resource" },
            ));
        }
        let doc = format!(r#"{{"Version":"2012-10-17","Statement":[{}]}}"#, list.join(","));
        let Ok(parsed) = PolicyDocument::parse(&doc) else {
            return Ok(());
        };
        let docs = [parsed];
        let c = with_thing(ctx("a"), "b");
        let compiled = compile(&docs, &c);
        for name in &names {
            for kind in [ResourceKind::Client, ResourceKind::Topic, ResourceKind::TopicFilter] {
                let arn = resource_arn(&c, kind, name);
                for a in actions {
                    let expected = naive(&docs, &c, a, &arn);
                    prop_assert_eq!(compiled.evaluate(a, &arn), expected, "{} {}", a, arn);
                    prop_assert_eq!(compiled.evaluate_resource(a, kind, name), expected);
                }
            }
            for arn in [
                format!("arn:aws:iot:eu-west-1:123456789012:topic/{name}"),
                format!("arn:aws:iot:us-east-1:123456789012{name}"),
                name.clone(),
            ] {
                for a in actions {
                    prop_assert_eq!(compiled.evaluate(a, &arn), naive(&docs, &c, a, &arn), "{} {}", a, arn);
                }
            }
        }
    }
}

/// Rough cost of the hot path (printed, not asserted): run with `--nocapture`.
#[test]
fn timing() {
    let doc = format!(
        r#"{{"Version": "2012-10-17", "Statement": [
        {{"Effect": "Allow", "Action": "iot:Connect", "Resource": "{ARN}:client/${{iot:ClientId}}"}},
        {{"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": [
            "{ARN}:topic/things/${{iot:ClientId}}/*",
            "{ARN}:topic/$aws/things/${{iot:ClientId}}/shadow/*",
            "{ARN}:topic/broadcast/*/status"]}},
        {{"Effect": "Allow", "Action": "iot:Subscribe", "Resource": "{ARN}:topicfilter/things/${{iot:ClientId}}/*"}},
        {{"Effect": "Deny", "Action": "iot:Publish", "Resource": "{ARN}:topic/things/*/admin"}}
    ]}}"#
    );
    let c = ctx("meter-000042");
    let docs = [parse(&doc)];
    let start = std::time::Instant::now();
    let compiled = compile(&docs, &c);
    let compile_time = start.elapsed();
    let topics = [
        "things/meter-000042/telemetry/temperature",
        "broadcast/region-7/status",
        "things/meter-000043/telemetry",
        "$aws/things/meter-000042/shadow/update",
    ];
    let n = 200_000u32;
    let start = std::time::Instant::now();
    let mut allowed = 0u32;
    for i in 0..n {
        let t = topics[i as usize % topics.len()];
        if compiled
            .evaluate_resource(Publish, ResourceKind::Topic, std::hint::black_box(t))
            .is_allowed()
        {
            allowed += 1;
        }
    }
    let per = start.elapsed() / n;
    println!("compile: {compile_time:?}; evaluate_resource: {per:?} per call ({allowed} allowed)");
    assert_eq!(allowed, n / 4 * 3);
}
