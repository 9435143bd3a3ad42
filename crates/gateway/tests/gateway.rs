//! End-to-end tests of the gateway: real TLS over loopback, a real store in a temp dir.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use mqtt_proto::packet::Will;
use mqtt_proto::{Packet, ProtocolVersion, QoS, ReasonCode};
use store::{CertificateStatus, NewThing, PrincipalType, Target};

const V3: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;
const ACCT: &str = "111122223333";

/// Retries until the server has applied a registry change (it polls every 200 ms); bounded by `WAIT`. Used only
/// where there is no event to wait for.
async fn retry_pause(start: std::time::Instant) {
    assert!(start.elapsed() < WAIT, "condition not reached in time");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[tokio::test]
async fn pubsub_qos0_and_qos1_across_protocol_versions() {
    let f = Fixture::new().await;
    let d = f.device(ACCT).await;
    f.allow_all(ACCT, &d).await;
    for (sub_v, pub_v) in [(V3, V5), (V5, V3)] {
        let mut sub = f.connected(&d, sub_v, "sub").await;
        let ack = sub.subscribe("room/+/temp", QoS::AtLeastOnce).await;
        assert_eq!(ack.reasons, vec![ReasonCode::GrantedQos1]);
        let mut publ = f.connected(&d, pub_v, "pub").await;
        publ.publish("room/1/temp", b"q0", QoS::AtMostOnce, false)
            .await;
        let ack = publ
            .publish("room/1/temp", b"q1", QoS::AtLeastOnce, false)
            .await
            .unwrap();
        assert_eq!(ack.reason, ReasonCode::Success);
        let m = sub.expect_publish().await;
        assert_eq!((&m.payload[..], m.qos), (&b"q0"[..], QoS::AtMostOnce));
        let m = sub.expect_publish().await;
        assert_eq!((&m.payload[..], m.qos), (&b"q1"[..], QoS::AtLeastOnce));
        assert_eq!(m.topic, "room/1/temp");
        publ.disconnect().await;
        sub.disconnect().await;
    }
}

#[tokio::test]
async fn large_messages_and_bursts_cross_tls_records_intact_on_tls12_and_tls13() {
    let f = Fixture::new().await;
    let d = f.device(ACCT).await;
    f.allow_all(ACCT, &d).await;
    let client = async |version, client_id: &str| {
        let stream = connect_tls_raw(
            f.addr,
            &f.root,
            d.cert.der(),
            &d.key_pem,
            version,
            Some("localhost"),
        )
        .await
        .unwrap();
        let mut c = Client::new(stream, V5);
        let ack = c.connect(client_id, true).await;
        assert_eq!(ack.reason, ReasonCode::Success, "{ack:?}");
        c
    };
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let mut sub = client(version, "big-sub").await;
        sub.subscribe("big/#", QoS::AtMostOnce).await;
        let mut publ = client(version, "big-pub").await;
        // The largest payload AWS allows spans eight full TLS records each way.
        let largest: Vec<u8> = (0..128 * 1024).map(|i| (i % 251) as u8).collect();
        let ack = publ
            .publish("big/one", &largest, QoS::AtLeastOnce, false)
            .await;
        assert_eq!(ack.unwrap().reason, ReasonCode::Success);
        // Many messages at once: records that hold several packets, and packets split across records.
        let burst: Vec<Vec<u8>> = (0..40u8)
            .map(|i| vec![i; 20_000 + usize::from(i)])
            .collect();
        for m in &burst {
            publ.publish("big/burst", m, QoS::AtMostOnce, false).await;
        }
        publ.ping().await;
        assert_eq!(&sub.expect_publish().await.payload[..], &largest[..]);
        for m in &burst {
            assert_eq!(&sub.expect_publish().await.payload[..], &m[..]);
        }
        publ.disconnect().await;
        sub.disconnect().await;
    }
}

#[tokio::test]
async fn unknown_and_inactive_certificates_are_refused_after_connect() {
    let f = Fixture::new().await;
    let unknown = f.unregistered_device();
    let inactive = f.device_with(ACCT, CertificateStatus::Inactive).await;
    f.allow_all(ACCT, &inactive).await;
    for d in [&unknown, &inactive] {
        let mut c = f.client(d, V3).await;
        let ack = c.connect("dev", true).await;
        assert_eq!(ack.reason, ReasonCode::NotAuthorized, "3.1.1 return code 5");
        assert!(c.recv().await.is_none(), "closed after the refusal");

        let mut c = f.client(d, V5).await;
        let ack = c.connect("dev", true).await;
        assert_eq!(ack.reason, ReasonCode::NotAuthorized);
        let text = ack.properties.reason_string.unwrap();
        assert!(text.contains("not authorized"), "{text}");
    }
}

#[tokio::test]
async fn policy_denies_publish_and_subscribe() {
    let f = Fixture::new().await;
    let d = f.device(ACCT).await;
    f.policy(
        ACCT,
        "limited",
        r#"[{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": "arn:aws:iot:us-east-1:111122223333:topic/ok/*"},
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": "arn:aws:iot:us-east-1:111122223333:topicfilter/ok/*"},
            {"Effect": "Deny", "Action": "iot:Publish", "Resource": "arn:aws:iot:us-east-1:111122223333:topic/ok/secret"}]"#,
        &d,
    )
    .await;
    let mut c = f.connected(&d, V5, "c5").await;
    assert_eq!(
        c.subscribe("no/x", QoS::AtLeastOnce).await.reasons,
        vec![ReasonCode::NotAuthorized]
    );
    assert_eq!(
        c.subscribe("ok/x", QoS::AtLeastOnce).await.reasons,
        vec![ReasonCode::GrantedQos1]
    );
    let ack = c
        .publish("no/x", b"x", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    assert_eq!(ack.reason, ReasonCode::NotAuthorized);
    // Explicit deny wins over the allow on ok/*.
    let ack = c
        .publish("ok/secret", b"x", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    assert_eq!(ack.reason, ReasonCode::NotAuthorized);
    // Retained publish needs iot:RetainPublish too.
    let ack = c
        .publish("ok/x", b"x", QoS::AtLeastOnce, true)
        .await
        .unwrap();
    assert_eq!(ack.reason, ReasonCode::NotAuthorized);
    // Clients may not publish lifecycle events.
    let ack = c
        .publish(
            "$aws/events/presence/connected/x",
            b"x",
            QoS::AtLeastOnce,
            false,
        )
        .await
        .unwrap();
    assert_eq!(ack.reason, ReasonCode::NotAuthorized);
    let ack = c
        .publish("ok/x", b"fine", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    assert_eq!(ack.reason, ReasonCode::Success);
    assert_eq!(&c.expect_publish().await.payload[..], b"fine");

    // MQTT 3.1.1: a refused filter gets 0x80; an unauthorized publish closes the connection (as AWS does).
    let mut c3 = f.connected(&d, V3, "c3").await;
    let ack = c3.subscribe("no/x", QoS::AtMostOnce).await;
    assert!(ack.reasons[0].is_error(), "{ack:?}");
    assert!(
        c3.publish("no/x", b"x", QoS::AtLeastOnce, false)
            .await
            .is_none()
    );
}

#[tokio::test]
async fn thing_name_policy_variable() {
    let f = Fixture::new().await;
    let d = f.device(ACCT).await;
    let s = scope(ACCT);
    for name in ["dev-1", "dev-2"] {
        f.store
            .create_thing(
                &s,
                &NewThing {
                    name: name.into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    f.store
        .attach_thing_principal(
            &s,
            "dev-1",
            &Target::Certificate(d.id().to_owned()),
            PrincipalType::NonExclusive,
        )
        .await
        .unwrap();
    f.policy(
        ACCT,
        "own-topic",
        r#"[{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
            {"Effect": "Allow", "Action": "iot:Publish",
             "Resource": "arn:aws:iot:us-east-1:111122223333:topic/things/${iot:Connection.Thing.ThingName}/*"}]"#,
        &d,
    )
    .await;
    let mut c = f.connected(&d, V5, "dev-1").await;
    let ok = c
        .publish("things/dev-1/t", b"x", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    assert_eq!(ok.reason, ReasonCode::Success);
    let no = c
        .publish("things/dev-2/t", b"x", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    assert_eq!(no.reason, ReasonCode::NotAuthorized);
    c.disconnect().await;
    // With a client id that is not the attached thing, the variable does not resolve: nothing is allowed.
    let mut c = f.connected(&d, V5, "dev-2").await;
    let no = c
        .publish("things/dev-2/t", b"x", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    assert_eq!(no.reason, ReasonCode::NotAuthorized);
}

#[tokio::test]
async fn revocation_disconnects_a_live_subscriber_and_refuses_reconnection() {
    let f = Fixture::new().await;
    let d = f.device(ACCT).await;
    f.allow_all(ACCT, &d).await;
    let mut sub5 = f.connected(&d, V5, "sub5").await;
    sub5.subscribe("t", QoS::AtLeastOnce).await;
    let mut sub3 = f.connected(&d, V3, "sub3").await;
    sub3.subscribe("t", QoS::AtLeastOnce).await;
    let started = std::time::Instant::now();
    f.store
        .update_certificate_status(&scope(ACCT), d.id(), CertificateStatus::Revoked)
        .await
        .unwrap();
    let disc = sub5.expect_closed().await.expect("MQTT 5 DISCONNECT");
    assert_eq!(disc.reason, ReasonCode::NotAuthorized);
    assert!(sub3.expect_closed().await.is_none(), "3.1.1: plain close");
    // Not a timing assertion on the machine, a generous bound on the one-second promise.
    assert!(started.elapsed() < Duration::from_secs(5));
    let mut again = f.client(&d, V5).await;
    assert_eq!(
        again.connect("sub5", true).await.reason,
        ReasonCode::NotAuthorized
    );
}

#[tokio::test]
async fn detached_policy_takes_effect_without_reconnect() {
    let f = Fixture::new().await;
    let d = f.device(ACCT).await;
    f.policy(
        ACCT,
        "base",
        r#"[{"Effect": "Allow", "Action": ["iot:Connect", "iot:Subscribe"], "Resource": "*"},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": "arn:aws:iot:us-east-1:111122223333:topic/marker"}]"#,
        &d,
    )
    .await;
    f.policy(
        ACCT,
        "extra",
        r#"[{"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": "arn:aws:iot:us-east-1:111122223333:topic/data"}]"#,
        &d,
    )
    .await;
    let mut sub = f.connected(&d, V5, "sub").await;
    sub.subscribe("data", QoS::AtLeastOnce).await;
    sub.subscribe("marker", QoS::AtLeastOnce).await;
    let mut publ = f.connected(&d, V5, "pub").await;
    publ.publish("data", b"1", QoS::AtLeastOnce, false).await;
    assert_eq!(&sub.expect_publish().await.payload[..], b"1");

    f.store
        .detach_policy(
            &scope(ACCT),
            "extra",
            &Target::Certificate(d.id().to_owned()),
        )
        .await
        .unwrap();
    // Wait until the publisher's connection sees the change (its PUBLISH becomes unauthorized) ...
    let start = std::time::Instant::now();
    loop {
        let ack = publ
            .publish("data", b"2", QoS::AtLeastOnce, false)
            .await
            .unwrap();
        if ack.reason == ReasonCode::NotAuthorized {
            break;
        }
        retry_pause(start).await;
    }
    // ... then the subscriber's too: a fresh publisher with the same rights ends the race.
    let other = f.device(ACCT).await;
    f.allow_all(ACCT, &other).await;
    let mut publ2 = f.connected(&other, V5, "pub2").await;
    // Every connection reacts to the same registry notification; ping the subscriber so that its task has run.
    sub.ping().await;
    publ2.publish("data", b"3", QoS::AtLeastOnce, false).await;
    publ2.publish("marker", b"m", QoS::AtLeastOnce, false).await;
    // Messages "2" may have been delivered before the subscriber recompiled; "3" must not be.
    loop {
        let m = sub.expect_publish().await;
        assert_ne!(&m.payload[..], b"3", "iot:Receive no longer allowed");
        if &m.payload[..] == b"m" {
            break;
        }
    }
}

#[tokio::test]
async fn retained_message_survives_a_restart_and_only_exact_filters_get_it() {
    let mut f = Fixture::new().await;
    let d = f.device(ACCT).await;
    f.allow_all(ACCT, &d).await;
    let mut c = f.connected(&d, V3, "pub").await;
    c.publish("state/lamp", b"on", QoS::AtLeastOnce, true).await;
    c.publish("state/gone", b"x", QoS::AtLeastOnce, true).await;
    c.publish("state/gone", b"", QoS::AtLeastOnce, true).await;
    c.disconnect().await;
    f.restart().await;

    let mut s = f.connected(&d, V5, "sub").await;
    s.subscribe("state/lamp", QoS::AtLeastOnce).await;
    let m = s.expect_publish().await;
    assert_eq!((&m.payload[..], m.retain), (&b"on"[..], true));
    // Wildcard filters and deleted topics deliver nothing; the marker proves nothing was queued before it.
    s.subscribe("state/#", QoS::AtLeastOnce).await;
    s.subscribe("state/gone", QoS::AtLeastOnce).await;
    s.publish("state/marker", b"m", QoS::AtLeastOnce, false)
        .await;
    let m = s.expect_publish().await;
    assert_eq!(m.topic, "state/marker");
}

#[tokio::test]
async fn session_takeover_and_lifecycle_events() {
    let f = Fixture::new().await;
    let d = f.device(ACCT).await;
    f.allow_all(ACCT, &d).await;
    let mut watcher = f.connected(&d, V5, "watcher").await;
    assert!(
        !watcher
            .subscribe("$aws/events/presence/+/dev", QoS::AtLeastOnce)
            .await
            .reasons[0]
            .is_error()
    );
    // `#` does not see `$` topics.
    watcher.subscribe("#", QoS::AtLeastOnce).await;

    let will = Will {
        topic: "wills/dev".into(),
        payload: bytes::Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    };
    let mut first = f.client(&d, V5).await;
    assert_eq!(
        first.connect_with("dev", true, Some(will)).await.reason,
        ReasonCode::Success
    );
    let m = watcher.expect_publish().await;
    assert_eq!(m.topic, "$aws/events/presence/connected/dev");
    let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
    assert_eq!(v["clientId"], "dev");
    assert_eq!(v["eventType"], "connected");
    assert_eq!(v["principalIdentifier"], d.id());
    assert_eq!(v["ipAddress"], "127.0.0.1");
    assert!(v["timestamp"].is_i64() && v["sessionIdentifier"].is_string());
    let version = v["versionNumber"].as_u64().unwrap();

    let second = f.connected(&d, V5, "dev").await;
    let disc = first
        .expect_closed()
        .await
        .expect("DISCONNECT to the old connection");
    assert_eq!(disc.reason, ReasonCode::SessionTakenOver);
    // The old connection's will (AWS publishes it for DUPLICATE_CLIENTID), its disconnect event and the new
    // connection's connect event, in whatever order they were routed.
    let mut seen = std::collections::HashMap::new();
    for _ in 0..3 {
        let m = watcher.expect_publish().await;
        seen.insert(m.topic.clone(), m.payload);
    }
    assert_eq!(&seen["wills/dev"][..], b"gone");
    let v: serde_json::Value =
        serde_json::from_slice(&seen["$aws/events/presence/disconnected/dev"]).unwrap();
    assert_eq!(v["disconnectReason"], "DUPLICATE_CLIENTID");
    assert_eq!(v["clientInitiatedDisconnect"], false);
    assert_eq!(v["versionNumber"].as_u64(), Some(version));
    let v: serde_json::Value =
        serde_json::from_slice(&seen["$aws/events/presence/connected/dev"]).unwrap();
    assert!(v["versionNumber"].as_u64().unwrap() > version);

    second.disconnect().await;
    let m = watcher.expect_publish().await;
    let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
    assert_eq!(v["disconnectReason"], "CLIENT_INITIATED_DISCONNECT");
    assert_eq!(v["clientInitiatedDisconnect"], true);
}

#[tokio::test]
async fn subscription_events() {
    let f = Fixture::new().await;
    let d = f.device(ACCT).await;
    f.allow_all(ACCT, &d).await;
    let mut watcher = f.connected(&d, V3, "watcher").await;
    watcher
        .subscribe("$aws/events/subscriptions/+/dev", QoS::AtMostOnce)
        .await;
    let mut c = f.connected(&d, V3, "dev").await;
    c.subscribe("a/b", QoS::AtMostOnce).await;
    let m = watcher.expect_publish().await;
    assert_eq!(m.topic, "$aws/events/subscriptions/subscribed/dev");
    let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
    assert_eq!(v["topics"], serde_json::json!(["a/b"]));
    c.unsubscribe("a/b").await;
    let m = watcher.expect_publish().await;
    assert_eq!(m.topic, "$aws/events/subscriptions/unsubscribed/dev");
}

#[tokio::test]
async fn accounts_are_isolated() {
    let f = Fixture::new().await;
    f.account("444455556666", "acct-b").await;
    let a = f.device(ACCT).await;
    f.allow_all(ACCT, &a).await;
    let b = f.device("444455556666").await;
    f.allow_all("444455556666", &b).await;
    let mut sub_b = f.connected(&b, V5, "same-id").await;
    sub_b.subscribe("shared/t", QoS::AtLeastOnce).await;
    // The same client id in another account is another client: no takeover.
    let mut sub_a = f.connected(&a, V5, "same-id").await;
    sub_a.subscribe("shared/t", QoS::AtLeastOnce).await;
    sub_a
        .publish("shared/t", b"from-a", QoS::AtLeastOnce, false)
        .await;
    assert_eq!(&sub_a.expect_publish().await.payload[..], b"from-a");
    sub_b
        .publish("shared/t", b"from-b", QoS::AtLeastOnce, false)
        .await;
    assert_eq!(&sub_b.expect_publish().await.payload[..], b"from-b");
    sub_a.ping().await;
}

#[tokio::test]
async fn sni_selects_the_account_and_gets_a_matching_certificate_alpn_optional() {
    let f = Fixture::new().await;
    let d = f.device(ACCT).await;
    f.allow_all(ACCT, &d).await;
    // The account endpoint name verifies against the root CA (a certificate is minted for it), and ALPN
    // x-amzn-mqtt-ca is negotiated when offered on the 8883 listener.
    let endpoint = format!("acct-a-ats.iot.{REGION}.{DOMAIN}");
    let tls = connect_tls(f.addr, &f.root, &d, &endpoint, &[b"x-amzn-mqtt-ca"])
        .await
        .unwrap();
    assert_eq!(
        tls.get_ref().1.alpn_protocol(),
        Some(&b"x-amzn-mqtt-ca"[..])
    );
    let mut c = Client::new(tls, V5);
    assert_eq!(c.connect("dev", true).await.reason, ReasonCode::Success);
    // Another ALPN protocol is not a handshake failure.
    let tls = connect_tls(f.addr, &f.root, &d, "localhost", &[b"mqtt"])
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), None);
    // An SNI naming an account the certificate is not registered in is refused with a reason.
    f.account("444455556666", "acct-b").await;
    let other = format!("acct-b.iot.{REGION}.{DOMAIN}");
    // The new account reaches the identity cache within a poll interval; until then its endpoint name is
    // unknown and the default certificate (which does not name it) is served.
    let start = std::time::Instant::now();
    let ack = loop {
        if let Ok(tls) = connect_tls(f.addr, &f.root, &d, &other, &[]).await {
            break Client::new(tls, V5).connect("dev", true).await;
        }
        retry_pause(start).await;
    };
    assert_eq!(ack.reason, ReasonCode::NotAuthorized);
    assert!(
        ack.properties
            .reason_string
            .unwrap()
            .contains("444455556666")
    );
}

#[tokio::test]
async fn ip_literal_sni_does_not_break_the_handshake() {
    let f = Fixture::new().await;
    let d = f.device(ACCT).await;
    let dir = f.dir.path();
    std::fs::write(dir.join("root.pem"), f.root.certificate().pem()).unwrap();
    std::fs::write(dir.join("dev.pem"), d.cert.pem()).unwrap();
    std::fs::write(dir.join("dev.key"), &d.key_pem).unwrap();
    let addr = f.addr;
    let out = tokio::task::spawn_blocking({
        let dir = dir.to_owned();
        move || {
            std::process::Command::new("openssl")
                .args([
                    "s_client",
                    "-connect",
                    &addr.to_string(),
                    "-servername",
                    "127.0.0.1",
                ])
                .args(["-alpn", "x-amzn-mqtt-ca", "-verify_return_error", "-brief"])
                .arg("-CAfile")
                .arg(dir.join("root.pem"))
                .arg("-cert")
                .arg(dir.join("dev.pem"))
                .arg("-key")
                .arg(dir.join("dev.key"))
                .stdin(std::process::Stdio::null())
                .output()
        }
    })
    .await
    .unwrap();
    let Ok(out) = out else {
        eprintln!("openssl not available; skipped");
        return;
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("CONNECTION ESTABLISHED"), "{text}");
}

#[tokio::test]
async fn a_client_that_never_sends_connect_or_garbage_does_not_affect_others() {
    let f = Fixture::new().await;
    let d = f.device(ACCT).await;
    f.allow_all(ACCT, &d).await;
    let _idle_tcp = tokio::net::TcpStream::connect(f.addr).await.unwrap();
    let mut garbage = f.client(&d, V3).await;
    tokio::io::AsyncWriteExt::write_all(&mut garbage.stream, b"\x10\xff\xff\xff\xff\x7f")
        .await
        .unwrap();
    assert!(
        garbage.recv().await.is_none(),
        "malformed packet closes the connection"
    );
    let mut c = f.connected(&d, V5, "ok").await;
    c.subscribe("x", QoS::AtMostOnce).await;
    c.publish("x", b"1", QoS::AtMostOnce, false).await;
    assert!(matches!(c.recv().await, Some(Packet::Publish(_))));
}

/// A CONNECT resuming (clean start 0) with the given MQTT 5 session expiry interval.
async fn resume(f: &Fixture, d: &Device, client_id: &str, expiry: u32) -> (Client, bool) {
    use mqtt_proto::packet::{Connect, Properties};
    let mut c = f.client(d, V5).await;
    c.send(Packet::Connect(Box::new(Connect {
        protocol: V5,
        clean_start: false,
        keep_alive: 60,
        client_id: client_id.into(),
        will: None,
        username: None,
        password: None,
        properties: Properties {
            session_expiry_interval: Some(expiry),
            ..Properties::default()
        },
    })))
    .await;
    match c.recv().await {
        Some(Packet::ConnAck(a)) => {
            assert_eq!(a.reason, ReasonCode::Success, "{a:?}");
            (c, a.session_present)
        }
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

// The periodic sweep (every 10 s, not configurable) is not waited for here: an expired session must not be
// resumed even before the sweep has removed it.
#[tokio::test]
async fn an_expired_session_is_not_resumed() {
    let f = Fixture::new().await;
    let d = f.device(ACCT).await;
    f.allow_all(ACCT, &d).await;
    let (mut c, present) = resume(&f, &d, "dev", 1).await;
    assert!(!present);
    c.subscribe("exp/t", QoS::AtLeastOnce).await;
    c.disconnect().await;
    // Within the expiry the session is there (the reconnection may race the server noticing the close).
    let start = std::time::Instant::now();
    loop {
        let (c, present) = resume(&f, &d, "dev", 1).await;
        c.disconnect().await;
        if present {
            break;
        }
        retry_pause(start).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (mut c, present) = resume(&f, &d, "dev", 1).await;
    assert!(!present, "expired one second after the disconnection");
    // Its subscription went with it: only the marker, subscribed now, arrives.
    c.subscribe("exp/marker", QoS::AtLeastOnce).await;
    let mut p = f.connected(&d, V5, "pub").await;
    p.publish("exp/t", b"old", QoS::AtLeastOnce, false).await;
    p.publish("exp/marker", b"m", QoS::AtLeastOnce, false).await;
    assert_eq!(c.expect_publish().await.topic, "exp/marker");
}
