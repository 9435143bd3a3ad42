//! Heap retained per connection by a compiled policy and a connection context. Allocation
//! sizes are deterministic, so the bounds cannot flake; they leave some slack for changes in
//! the standard library. Run with `--nocapture` for the figures.
#![allow(clippy::unwrap_used)]

use policy::{CertificateInfo, ConnectionContext, PolicyDocument, ThingInfo, compile};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const BENCH: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/*"},{"Effect":"Allow","Action":["iot:Publish","iot:Receive","iot:Subscribe"],"Resource":["arn:aws:iot:us-east-1:123456789012:topic/bench/*","arn:aws:iot:us-east-1:123456789012:topicfilter/bench/*"]}]}"#;

const THING: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"},
 {"Effect":"Allow","Action":"iot:Publish","Resource":[
   "arn:aws:iot:us-east-1:123456789012:topic/things/${iot:Connection.Thing.ThingName}/*",
   "arn:aws:iot:us-east-1:123456789012:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*",
   "arn:aws:iot:us-east-1:123456789012:topic/clients/${iot:ClientId}/*"]},
 {"Effect":"Allow","Action":"iot:Subscribe","Resource":[
   "arn:aws:iot:us-east-1:123456789012:topicfilter/things/${iot:Connection.Thing.ThingName}/*",
   "arn:aws:iot:us-east-1:123456789012:topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*",
   "arn:aws:iot:us-east-1:123456789012:topicfilter/clients/${iot:ClientId}/*"]},
 {"Effect":"Allow","Action":"iot:Receive","Resource":[
   "arn:aws:iot:us-east-1:123456789012:topic/things/${iot:Connection.Thing.ThingName}/*",
   "arn:aws:iot:us-east-1:123456789012:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*",
   "arn:aws:iot:us-east-1:123456789012:topic/clients/${iot:ClientId}/*"]},
 {"Effect":"Deny","Action":["iot:Publish","iot:Receive"],"Resource":"arn:aws:iot:us-east-1:123456789012:topic/things/${iot:Connection.Thing.ThingName}/admin/*"}
]}"#;

fn context() -> ConnectionContext {
    let mut c = ConnectionContext::new("sensor-0042", "123456789012", "us-east-1");
    c.source_ip = "192.0.2.7".parse().ok();
    c.thing = Some(ThingInfo {
        name: "sensor-0042".into(),
        type_name: Some("TempSensor".into()),
        attributes: [("site", "berlin"), ("floor", "3"), ("model", "TS-200")]
            .into_iter()
            .collect(),
        is_attached: true,
    });
    c.certificate = Some(certificate());
    c
}

fn certificate() -> CertificateInfo {
    let mut cert = CertificateInfo::builder();
    cert.subject("CommonName", "sensor-0042");
    for (k, v) in [
        ("Country", "US"),
        ("State", "Washington"),
        ("Organization", "Acme Devices Inc"),
        ("OrganizationalUnit", "Fleet"),
        ("CommonName", "Acme Device CA 1"),
    ] {
        cert.issuer(k, v);
    }
    cert.serial_number("5f3a9c0e7b214d8e9a6c1f0b2d4e6a8c0e1f2a3b");
    cert.build()
}

/// Live heap bytes and blocks held by what `make` returns.
fn retained<T>(make: impl FnOnce() -> T) -> (T, usize, usize) {
    let before = dhat::HeapStats::get();
    let value = make();
    let after = dhat::HeapStats::get();
    (
        value,
        after.curr_bytes - before.curr_bytes,
        after.curr_blocks - before.curr_blocks,
    )
}

#[test]
fn heap_per_connection() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let ctx = context();
    let (ctx2, ctx_bytes, ctx_blocks) = retained(context);
    let bench = [PolicyDocument::parse(BENCH).unwrap()];
    let thing_policy = [PolicyDocument::parse(THING).unwrap()];
    let (p1, b1, n1) = retained(|| compile(&bench, &ctx));
    let (p2, b2, n2) = retained(|| compile(&thing_policy, &ctx));
    let (cert, cb, cn) = retained(certificate);
    let (thing, tb, tn) = retained(|| context().thing);
    for (what, bytes, blocks, inline, max_bytes, max_blocks) in [
        ("bench policy", b1, n1, size_of_val(&p1), 256, 8),
        ("thing policy", b2, n2, size_of_val(&p2), 640, 16),
        ("certificate", cb, cn, size_of_val(&cert), 200, 2),
        ("thing", tb, tn, size_of_val(&thing), 200, 10),
        (
            "context",
            ctx_bytes,
            ctx_blocks,
            size_of_val(&ctx2),
            400,
            16,
        ),
    ] {
        println!("{what}: {bytes} B in {blocks} blocks (+{inline} inline)");
        assert!(
            bytes <= max_bytes && blocks <= max_blocks,
            "{what}: {bytes} B in {blocks} blocks, expected at most {max_bytes} B in {max_blocks}"
        );
    }
    assert!(size_of_val(&p1) <= 48);
    assert!(size_of_val(&ctx2) <= 224);
    drop((p1, p2, ctx2, cert, thing));
}
