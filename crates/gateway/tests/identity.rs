//! End-to-end tests of who may connect: the TLS layer's proof of possession (X.509 v1 and v3 client
//! certificates, TLS 1.2 and 1.3), registered CAs, SNI_ONLY certificates in several accounts, the ALPN listener,
//! and the metrics a connection leaves.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use mqtt_proto::{ProtocolVersion, QoS, ReasonCode};
use rustls::version::{TLS12, TLS13};
use store::{CaUpdate, CertificateMode, CertificateStatus};

const V5: ProtocolVersion = ProtocolVersion::V5;
const ACCT: &str = "111122223333";
const ACCT_B: &str = "444455556666";
const EC256: &str = "ec -pkeyopt ec_paramgen_curve:P-256";

/// Retries until the server has applied a registry change (it polls every 200 ms); bounded by `WAIT`.
async fn retry_pause(start: Instant) {
    assert!(start.elapsed() < WAIT, "condition not reached in time");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Connects over exactly `version` presenting `d`'s certificate and signing with `key_pem`; true if the server
/// accepted the TLS session.
async fn accepted(
    f: &Fixture,
    d: &Device,
    key_pem: &str,
    version: &'static rustls::SupportedProtocolVersion,
) -> bool {
    let conn = connect_tls_raw(
        f.addr,
        &f.root,
        d.cert.der(),
        key_pem,
        version,
        Some("localhost"),
    )
    .await;
    tls_session_accepted(conn).await
}

#[tokio::test]
async fn handshake_signature_is_verified_for_v1_and_v3_certificates() {
    if !openssl_available() {
        eprintln!("openssl not available; skipped");
        return;
    }
    let f = Fixture::new().await;
    let ca = OpensslCa::new(f.dir.path(), EC256);
    // v1 certificates of every key type the verifier maps, plus the fixture's v3 (pki-issued, P-256) one.
    let mut devices = Vec::new();
    for (name, newkey) in [
        ("ec256", EC256),
        ("ec384", "ec -pkeyopt ec_paramgen_curve:P-384"),
        ("rsa", "rsa:2048"),
        ("ed25519", "ed25519"),
    ] {
        let d = ca.device(name, newkey);
        assert_eq!(d.cert.version(), 1, "openssl x509 -req issues v1");
        devices.push((name, d));
    }
    let v3 = f.unregistered_device();
    assert_eq!(v3.cert.version(), 3);
    devices.push(("v3", v3));
    // Someone else's keys: same type (P-256) and another type (RSA).
    let other_ec = ca.device("other-ec", EC256);
    let other_rsa = ca.device("other-rsa", "rsa:2048");

    for (name, d) in &devices {
        for version in [&TLS12, &TLS13] {
            assert!(
                accepted(&f, d, &d.key_pem, version).await,
                "{name} {version:?}: own key accepted"
            );
            for wrong in [&other_ec, &other_rsa] {
                assert!(
                    !accepted(&f, d, &wrong.key_pem, version).await,
                    "{name} {version:?}: a certificate without its key must fail the handshake"
                );
            }
        }
    }
    // The server counts a failure after sending its alert, so the client can get there first.
    let start = Instant::now();
    while metric(
        &f.metrics_text(),
        r#"onboard_gateway_handshakes_total{result="failed"}"#,
    ) < 20.0
    {
        retry_pause(start).await;
    }
}

#[tokio::test]
async fn openssl_v1_device_certificate_under_a_registered_ca_connects_and_publishes() {
    if !openssl_available() {
        eprintln!("openssl not available; skipped");
        return;
    }
    let f = Fixture::new().await;
    let ca = OpensslCa::new(f.dir.path(), EC256);
    f.register_ca(ACCT, &ca.cert).await;
    let d = ca.device("dev", EC256);
    assert_eq!(d.cert.version(), 1);
    f.register_with(
        ACCT,
        &d,
        CertificateStatus::Active,
        CertificateMode::Default,
        Some(ca.cert.id()),
    )
    .await;
    f.allow_all(ACCT, &d).await;
    let mut c = f.connected(&d, V5, "v1-dev").await;
    c.subscribe("v1/t", QoS::AtLeastOnce).await;
    let ack = c
        .publish("v1/t", b"hello", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    assert_eq!(ack.reason, ReasonCode::Success);
    assert_eq!(&c.expect_publish().await.payload[..], b"hello");
}

#[tokio::test]
async fn inactive_issuing_ca_disconnects_and_refuses() {
    let f = Fixture::new().await;
    f.register_ca(ACCT, f.device_ca.certificate()).await;
    let ca_id = f.device_ca.certificate().id().to_owned();
    let d = f.unregistered_device();
    f.register_with(
        ACCT,
        &d,
        CertificateStatus::Active,
        CertificateMode::Default,
        Some(&ca_id),
    )
    .await;
    f.allow_all(ACCT, &d).await;
    let mut live = f.connected(&d, V5, "dev").await;
    live.subscribe("t", QoS::AtLeastOnce).await;

    let started = Instant::now();
    f.store
        .update_ca_certificate(
            &scope(ACCT),
            &ca_id,
            &CaUpdate {
                active: Some(false),
                ..CaUpdate::default()
            },
        )
        .await
        .unwrap();
    let disc = live.expect_closed().await.expect("MQTT 5 DISCONNECT");
    assert_eq!(disc.reason, ReasonCode::NotAuthorized);
    // The promise is about a second (200 ms polling); the bound is generous for a loaded machine.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    let mut again = f.client(&d, V5).await;
    let ack = again.connect("dev", true).await;
    assert_eq!(ack.reason, ReasonCode::NotAuthorized);
    let text = ack.properties.reason_string.unwrap();
    assert!(
        text.contains(&ca_id) && text.contains("not ACTIVE"),
        "{text}"
    );
    assert!(
        metric(
            &f.metrics_text(),
            r#"onboard_gateway_refusals_total{reason="ca_inactive"}"#
        ) >= 2.0,
        "the live disconnection and the refused reconnection"
    );
}

#[tokio::test]
async fn sni_only_certificate_in_two_accounts_needs_the_account_endpoint() {
    let f = Fixture::new().await;
    f.account(ACCT_B, "acct-b").await;
    let d = f.unregistered_device();
    for account in [ACCT, ACCT_B] {
        f.register_with(
            account,
            &d,
            CertificateStatus::Active,
            CertificateMode::SniOnly,
            None,
        )
        .await;
        f.allow_all(account, &d).await;
    }
    // A subscriber registered only in account B sees what the SNI_ONLY device publishes there.
    let watcher = f.device(ACCT_B).await;
    f.allow_all(ACCT_B, &watcher).await;
    let endpoint_b = format!("acct-b-ats.iot.{REGION}.{DOMAIN}");

    // No SNI at all, and an SNI that is no account endpoint: refused, with the reason in CONNACK and metrics.
    for sni in [None, Some("localhost")] {
        let tls = connect_tls_raw(f.addr, &f.root, d.cert.der(), &d.key_pem, &TLS13, sni)
            .await
            .unwrap();
        let mut c = Client::new(tls, V5);
        let ack = c.connect("dev", true).await;
        assert_eq!(ack.reason, ReasonCode::NotAuthorized, "SNI {sni:?}");
        let text = ack.properties.reason_string.unwrap();
        assert!(text.contains("several accounts"), "{text}");
    }
    assert_eq!(
        metric(
            &f.metrics_text(),
            r#"onboard_gateway_refusals_total{reason="ambiguous_account"}"#
        ),
        2.0
    );

    // Account B's endpoint: accepted as account B. Account B reaches the identity cache within a poll
    // interval; until then its name is unknown and the default certificate (not naming it) is served.
    let start = Instant::now();
    let tls = loop {
        if let Ok(tls) = connect_tls(f.addr, &f.root, &d, &endpoint_b, &[]).await {
            break tls;
        }
        retry_pause(start).await;
    };
    let mut w = f.connected(&watcher, V5, "watcher").await;
    w.subscribe("sni/t", QoS::AtLeastOnce).await;
    let mut c = Client::new(tls, V5);
    assert_eq!(c.connect("dev", true).await.reason, ReasonCode::Success);
    c.publish("sni/t", b"in-b", QoS::AtLeastOnce, false).await;
    let m = w.expect_publish().await;
    assert_eq!((&m.topic[..], &m.payload[..]), ("sni/t", &b"in-b"[..]));
}

#[tokio::test]
async fn alpn_listener_serves_x_amzn_mqtt_ca() {
    let f = Fixture::new().await;
    let d = f.device(ACCT).await;
    f.allow_all(ACCT, &d).await;
    let tls = connect_tls(f.alpn_addr, &f.root, &d, "localhost", &[b"x-amzn-mqtt-ca"])
        .await
        .unwrap();
    assert_eq!(
        tls.get_ref().1.alpn_protocol(),
        Some(&b"x-amzn-mqtt-ca"[..])
    );
    let mut c = Client::new(tls, V5);
    assert_eq!(c.connect("alpn", true).await.reason, ReasonCode::Success);
    c.subscribe("alpn/t", QoS::AtLeastOnce).await;
    // The two listeners share one broker.
    let mut other = f.connected(&d, V5, "plain").await;
    other
        .publish("alpn/t", b"x", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    assert_eq!(&c.expect_publish().await.payload[..], b"x");
}

#[tokio::test]
async fn metrics_count_handshakes_and_connections() {
    let f = Fixture::new().await;
    let d = f.device(ACCT).await;
    f.allow_all(ACCT, &d).await;
    let mut c = f.connected(&d, V5, "m").await;
    c.publish("m/t", b"x", QoS::AtLeastOnce, false).await;
    let text = f.metrics_text();
    for family in [
        "onboard_gateway_connections_open",
        "onboard_gateway_handshakes_total",
        "onboard_gateway_messages_in_total",
        "onboard_gateway_offline_sessions",
        "onboard_gateway_registry_reloads_total",
    ] {
        assert!(text.contains(family), "{family} missing:\n{text}");
    }
    assert!(metric(&text, r#"onboard_gateway_handshakes_total{result="ok"}"#) >= 1.0);
    assert_eq!(metric(&text, "onboard_gateway_connections_open"), 1.0);
    assert_eq!(
        metric(&text, r#"onboard_gateway_messages_in_total{qos="1"}"#),
        1.0
    );
    c.disconnect().await;
    let start = Instant::now();
    loop {
        let text = f.metrics_text();
        if metric(&text, "onboard_gateway_connections_open") == 0.0 {
            assert_eq!(
                metric(
                    &text,
                    r#"onboard_gateway_disconnects_total{reason="CLIENT_INITIATED_DISCONNECT"}"#
                ),
                1.0
            );
            break;
        }
        retry_pause(start).await;
    }
}
