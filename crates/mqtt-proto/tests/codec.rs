//! Codec tests: a table of valid and malformed packets through one `check` helper,
//! round-trip property tests for every packet type, and random-input robustness.

use bytes::{Bytes, BytesMut};
use mqtt_proto::packet::*;
use mqtt_proto::{Decoder, ReasonCode};
use proptest::prelude::*;

const V3: Option<ProtocolVersion> = Some(ProtocolVersion::V311);
const V5: Option<ProtocolVersion> = Some(ProtocolVersion::V5);

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test hex"))
        .collect()
}

/// Decodes `input` (hex) as a whole packet and incrementally byte by byte, and compares both
/// with `expected` (the packet, or the reason code of the error).
#[track_caller]
fn check(version: Option<ProtocolVersion>, input: &str, expected: Result<Packet, ReasonCode>) {
    let bytes = hex(input);
    let whole = Packet::decode(Bytes::from(bytes.clone()), version).map_err(|e| e.reason_code());
    assert_eq!(whole, expected, "whole-packet decode of {input}");
    let mut d = Decoder::new(version, 1 << 20);
    let mut got = None;
    for b in &bytes {
        d.feed(std::slice::from_ref(b));
        match d.decode() {
            Ok(None) => {}
            Ok(Some(p)) => {
                got = Some(Ok(p));
                break;
            }
            Err(e) => {
                got = Some(Err(e.reason_code()));
                break;
            }
        }
    }
    assert_eq!(got, Some(expected), "incremental decode of {input}");
}

const MALFORMED: ReasonCode = ReasonCode::MalformedPacket;
const PROTOCOL: ReasonCode = ReasonCode::ProtocolError;

fn connect_v3(client_id: &str) -> Packet {
    Packet::Connect(Box::new(Connect {
        protocol: ProtocolVersion::V311,
        clean_start: true,
        keep_alive: 60,
        client_id: client_id.into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }))
}

#[test]
fn valid_packets() {
    check(
        None,
        "10 0d 0004 4d515454 04 02 003c 0001 61",
        Ok(connect_v3("a")),
    );
    check(V3, "c0 00", Ok(Packet::PingReq));
    check(V5, "d0 00", Ok(Packet::PingResp));
    let ack = |reason| {
        Packet::PubAck(PubResp {
            packet_id: 7,
            reason,
            properties: Properties::default(),
        })
    };
    check(V5, "40 02 0007", Ok(ack(ReasonCode::Success)));
    check(V5, "40 03 0007 87", Ok(ack(ReasonCode::NotAuthorized)));
    check(
        V5,
        "40 04 0007 10 00",
        Ok(ack(ReasonCode::NoMatchingSubscribers)),
    );
    check(V3, "40 02 0007", Ok(ack(ReasonCode::Success)));
    let disc = Packet::Disconnect(Disconnect {
        reason: ReasonCode::Success,
        properties: Properties::default(),
    });
    check(V5, "e0 00", Ok(disc.clone()));
    check(V3, "e0 00", Ok(disc));
    check(
        V3,
        "32 08 0003 612f62 0001 ff",
        Ok(Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: "a/b".into(),
            packet_id: Some(1),
            properties: Properties::default(),
            payload: Bytes::from_static(&[0xff]),
        })),
    );
    // Remaining length of 2 bytes (200 bytes of payload).
    let mut long = String::from("30 c9 01 0001 61");
    long.push_str(&"00".repeat(198));
    let Ok(Packet::Publish(p)) = Packet::decode(Bytes::from(hex(&long)), V3) else {
        panic!("long publish")
    };
    assert_eq!(p.payload.len(), 198);
}

#[test]
fn malformed_packets() {
    let cases: &[(Option<ProtocolVersion>, &str, ReasonCode)] = &[
        // CONNECT
        (None, "10 0c 0004 4d515454 04 03 003c 0000", MALFORMED), // reserved flag
        (
            None,
            "10 0c 0004 4d515454 03 02 003c 0000",
            ReasonCode::UnsupportedProtocolVersion,
        ),
        (
            None,
            "10 0e 0006 4d5149736470 03 02 003c 0000",
            ReasonCode::UnsupportedProtocolVersion,
        ),
        (None, "10 0c 0004 4d515458 04 02 003c 0000", PROTOCOL), // name "MQTX"
        (None, "10 0c 0004 4d515454 04 0a 003c 0000", MALFORMED), // will QoS without will
        (None, "10 0c 0004 4d515454 04 1e 003c 0000", MALFORMED), // will QoS 3
        (None, "10 0e 0004 4d515454 04 42 003c 0000 0000", MALFORMED), // password, no user
        (None, "10 0d 0004 4d515454 04 02 003c 0001 ff", MALFORMED), // invalid UTF-8
        (None, "10 0d 0004 4d515454 04 02 003c 0001 00", MALFORMED), // U+0000
        (
            None,
            "10 0f 0004 4d515454 04 02 003c 0003 eda080",
            MALFORMED,
        ), // surrogate
        (None, "10 0d 0004 4d515454 04 02 003c 0000 00", MALFORMED), // trailing byte
        (None, "10 0b 0004 4d515454 04 02 003c 00", MALFORMED),  // truncated
        (
            None,
            "10 10 0004 4d515454 05 02 003c 03 230001 0000",
            MALFORMED,
        ), // topic alias in CONNECT
        (
            None,
            "10 17 0004 4d515454 05 02 003c 0a 1100000001 1100000002 0000",
            PROTOCOL,
        ), // dup property
        (
            None,
            "10 10 0004 4d515454 05 02 003c 03 210000 0000",
            PROTOCOL,
        ), // receive max 0
        (
            None,
            "10 13 0004 4d515454 04 06 003c 0000 0003 612f23 0000",
            ReasonCode::TopicNameInvalid,
        ),
        (None, "11 0c 0004 4d515454 04 02 003c 0000", MALFORMED), // fixed-header flags
        (None, "c0 00", PROTOCOL),                                // not CONNECT first
        // CONNACK
        (V3, "20 02 02 00", MALFORMED),
        (V3, "20 02 00 06", MALFORMED),
        (V3, "20 02 01 05", PROTOCOL),
        (V5, "20 03 00 10 00", MALFORMED), // 0x10 not a CONNACK code
        (V3, "20 03 00 00 00", MALFORMED),
        // PUBLISH
        (V3, "36 05 0001 61 0001", MALFORMED), // QoS 3
        (V3, "38 03 0001 61", MALFORMED),      // DUP on QoS 0
        (V3, "30 05 0003 612f2b", ReasonCode::TopicNameInvalid),
        (V3, "32 05 0001 61 0000", MALFORMED), // packet id 0
        (V3, "30 02 0000", ReasonCode::TopicNameInvalid), // empty topic in 3.1.1
        (V5, "30 09 0001 61 05 1100000001", MALFORMED), // session expiry in PUBLISH
        (V5, "30 06 0001 61 02 0b00", PROTOCOL), // subscription identifier 0
        (V3, "30 03 0005 61", MALFORMED),      // topic longer than packet
        (V5, "30 03 0001 61", MALFORMED),      // missing property length
        // PUBACK / PUBREC / PUBREL / PUBCOMP
        (V3, "40 03 0001 00", MALFORMED),
        (V3, "40 02 0000", MALFORMED),
        (V5, "40 03 0001 04", MALFORMED),
        (V3, "41 02 0001", MALFORMED),
        (V3, "52 02 0001", MALFORMED),
        (V3, "60 02 0001", MALFORMED),
        (V5, "70 03 0001 10", MALFORMED),
        (V5, "40 05 0001 00 01 00", MALFORMED), // property length beyond the packet
        // SUBSCRIBE
        (V3, "80 06 0001 0001 61 01", MALFORMED),
        (V3, "82 02 0001", PROTOCOL),
        (V3, "82 06 0001 0001 61 04", MALFORMED),
        (V3, "82 06 0001 0001 61 03", MALFORMED),
        (V5, "82 07 0001 00 0001 61 30", PROTOCOL),
        (V5, "82 07 0001 00 0001 61 c0", MALFORMED),
        (V3, "82 05 0001 0000 01", PROTOCOL),
        (V5, "82 09 0001 02 0b00 0001 61 01", PROTOCOL),
        (V5, "82 0b 0001 04 0b01 0b02 0001 61 01", PROTOCOL),
        // SUBACK
        (V3, "90 03 0001 03", MALFORMED),
        (V3, "90 02 0001", PROTOCOL),
        (V5, "90 04 0001 00 04", MALFORMED),
        // UNSUBSCRIBE
        (V3, "a0 05 0001 0001 61", MALFORMED),
        (V3, "a2 02 0001", PROTOCOL),
        (V5, "a2 03 0001 00", PROTOCOL),
        // UNSUBACK
        (V3, "b0 03 0001 00", MALFORMED),
        (V5, "b0 03 0001 00", PROTOCOL),
        (V5, "b0 04 0001 00 02", MALFORMED),
        // PINGREQ / PINGRESP
        (V3, "c0 01 00", MALFORMED),
        (V3, "c1 00", MALFORMED),
        (V5, "d0 01 00", MALFORMED),
        // DISCONNECT
        (V3, "e0 01 00", MALFORMED),
        (V5, "e0 01 01", MALFORMED),
        (V5, "e2 00", MALFORMED),
        (V5, "e0 03 00 01 26", MALFORMED), // truncated user property
        // AUTH
        (V3, "f0 00", MALFORMED),
        (V5, "f0 01 87", MALFORMED),
        (V5, "f0 03 18 01 99", MALFORMED), // unknown property id
        // reserved type 0, bad remaining lengths
        (V3, "00 00", MALFORMED),
        (V3, "30 80 00", MALFORMED),
        (V3, "30 ff ff ff ff 01", MALFORMED),
    ];
    for (version, input, code) in cases {
        check(*version, input, Err(*code));
    }
}

#[test]
fn oversize_is_refused_from_the_fixed_header() {
    // A PUBLISH announcing 1000 bytes with a 100-byte limit: refused after 3 bytes.
    let mut d = Decoder::new(V3, 100);
    d.feed(&hex("30 e8 07"));
    assert_eq!(
        d.decode().map_err(|e| e.reason_code()),
        Err(ReasonCode::PacketTooLarge)
    );
    // Exactly at the limit is fine.
    let mut d = Decoder::new(V3, 5);
    d.feed(&hex("30 03 0001 61"));
    assert!(matches!(d.decode(), Ok(Some(Packet::Publish(_)))));
}

#[test]
fn decoder_splits_concatenated_packets() {
    let mut d = Decoder::new(None, 1 << 16);
    d.feed(&hex("10 0d 0004 4d515454 05 02 003c 00 0000 c0"));
    assert!(matches!(d.decode(), Ok(Some(Packet::Connect(_)))));
    assert_eq!(d.version(), Some(ProtocolVersion::V5));
    assert!(matches!(d.decode(), Ok(None)));
    d.feed(&hex("00 e0 01 8e"));
    assert_eq!(d.decode(), Ok(Some(Packet::PingReq)));
    assert!(matches!(d.decode(), Ok(Some(Packet::Disconnect(_)))));
    assert_eq!(d.decode(), Ok(None));
}

// ----- round-trip property tests -----

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,6}"
}

fn topic() -> impl Strategy<Value = String> {
    "[a-z$/é]{1,10}"
}

fn bin() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..8).prop_map(Bytes::from)
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn pid() -> impl Strategy<Value = u16> {
    1..=u16::MAX
}

#[derive(Clone, Copy, Debug)]
enum Ctx {
    Connect,
    Will,
    ConnAck,
    Publish,
    PubResp,
    Subscribe,
    Ack,
    Unsubscribe,
    Disconnect,
    Auth,
}

/// Arbitrary properties restricted to those allowed in `ctx`.
fn o<S: Strategy>(s: S) -> impl Strategy<Value = Option<S::Value>> {
    prop::option::of(s)
}

fn props(ctx: Ctx) -> impl Strategy<Value = Properties> {
    let a = (
        o(any::<bool>()),
        o(any::<u32>()),
        o(text()),
        o(topic()),
        o(bin()),
        prop::collection::vec(1u32..=268_435_455, 0..3),
        o(any::<u32>()),
        o(text()),
        o(any::<u16>()),
        o(text()),
        o(bin()),
        o(any::<bool>()),
    );
    let b = (
        o(any::<u32>()),
        o(any::<bool>()),
        o(text()),
        o(text()),
        o(text()),
        o(1..=u16::MAX),
        o(any::<u16>()),
        o(1..=u16::MAX),
        o(prop_oneof![Just(QoS::AtMostOnce), Just(QoS::AtLeastOnce)]),
        o(any::<bool>()),
        prop::collection::vec((text(), text()), 0..3),
        o(1..=u32::MAX),
    );
    let c = (o(any::<bool>()), o(any::<bool>()), o(any::<bool>()));
    (a, b, c).prop_map(move |(a, b, c)| {
        use Ctx::*;
        let is = |cs: &[Ctx]| {
            cs.iter()
                .any(|x| std::mem::discriminant(x) == std::mem::discriminant(&ctx))
        };
        let keep = |cs: &[Ctx]| is(cs);
        let mut p = Properties::default();
        if keep(&[Publish, Will]) {
            p.payload_format_indicator = a.0;
            p.message_expiry_interval = a.1;
            p.content_type = a.2;
            p.response_topic = a.3;
            p.correlation_data = a.4;
        }
        if keep(&[Publish]) {
            p.subscription_identifiers = a.5.clone();
            p.topic_alias = b.7;
        }
        if keep(&[Subscribe]) {
            p.subscription_identifiers = a.5.into_iter().take(1).collect();
        }
        if keep(&[Connect, ConnAck, Disconnect]) {
            p.session_expiry_interval = a.6;
        }
        if keep(&[ConnAck]) {
            p.assigned_client_identifier = a.7;
            p.server_keep_alive = a.8;
            p.response_information = b.3;
            p.maximum_qos = b.8;
            p.retain_available = b.9;
            p.wildcard_subscription_available = c.0;
            p.subscription_identifier_available = c.1;
            p.shared_subscription_available = c.2;
        }
        if keep(&[Connect, ConnAck, Auth]) {
            p.authentication_method = a.9;
            p.authentication_data = a.10;
        }
        if keep(&[Connect]) {
            p.request_problem_information = a.11;
            p.request_response_information = b.1;
        }
        if keep(&[Will]) {
            p.will_delay_interval = b.0;
        }
        if keep(&[ConnAck, Disconnect]) {
            p.server_reference = b.2;
        }
        if keep(&[ConnAck, PubResp, Ack, Disconnect, Auth]) {
            p.reason_string = b.4;
        }
        if keep(&[Connect, ConnAck]) {
            p.receive_maximum = b.5;
            p.topic_alias_maximum = b.6;
            p.maximum_packet_size = b.11;
        }
        p.user_properties = b.10;
        p
    })
}

fn reason_in(codes: &'static [u8]) -> impl Strategy<Value = ReasonCode> {
    prop::sample::select(codes).prop_map(|c| ReasonCode::from_u8(c).expect("known code"))
}

fn packet(v5: bool) -> BoxedStrategy<Packet> {
    let pr = move |ctx| {
        if v5 {
            props(ctx).boxed()
        } else {
            Just(Properties::default()).boxed()
        }
    };
    let connect = (
        any::<bool>(),
        any::<u16>(),
        text(),
        prop::option::of((topic(), bin(), qos(), any::<bool>(), pr(Ctx::Will))),
        prop::option::of(text()),
        prop::option::of(bin()),
        pr(Ctx::Connect),
    )
        .prop_map(
            move |(clean_start, keep_alive, client_id, will, username, password, properties)| {
                let password = if !v5 && username.is_none() {
                    None
                } else {
                    password
                };
                Packet::Connect(Box::new(Connect {
                    protocol: if v5 {
                        ProtocolVersion::V5
                    } else {
                        ProtocolVersion::V311
                    },
                    clean_start,
                    keep_alive,
                    client_id,
                    will: will.map(|(topic, payload, qos, retain, properties)| Will {
                        topic,
                        payload,
                        qos,
                        retain,
                        properties,
                    }),
                    username,
                    password,
                    properties,
                }))
            },
        );
    let connack_codes: &'static [u8] = if v5 {
        &[
            0x00, 0x80, 0x81, 0x84, 0x85, 0x86, 0x87, 0x88, 0x8A, 0x8C, 0x95, 0x97, 0x9B, 0x9F,
        ]
    } else {
        &[0x00, 0x84, 0x85, 0x88, 0x86, 0x87]
    };
    let connack = (any::<bool>(), reason_in(connack_codes), pr(Ctx::ConnAck)).prop_map(
        |(sp, reason, properties)| {
            Packet::ConnAck(ConnAck {
                session_present: sp && reason == ReasonCode::Success,
                reason,
                properties,
            })
        },
    );
    let publish = (
        any::<bool>(),
        qos(),
        any::<bool>(),
        topic(),
        pid(),
        pr(Ctx::Publish),
        bin(),
    )
        .prop_map(|(dup, qos, retain, topic, id, properties, payload)| {
            let q0 = qos == QoS::AtMostOnce;
            Packet::Publish(Publish {
                dup: dup && !q0,
                qos,
                retain,
                topic,
                packet_id: (!q0).then_some(id),
                properties,
                payload,
            })
        });
    let ackrec: &'static [u8] = if v5 {
        &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99]
    } else {
        &[0x00]
    };
    let relcomp: &'static [u8] = if v5 { &[0x00, 0x92] } else { &[0x00] };
    let resp = (
        0..4u8,
        pid(),
        reason_in(ackrec),
        reason_in(relcomp),
        pr(Ctx::PubResp),
    )
        .prop_map(|(k, packet_id, r1, r2, properties)| {
            let mk = |reason| PubResp {
                packet_id,
                reason,
                properties,
            };
            match k {
                0 => Packet::PubAck(mk(r1)),
                1 => Packet::PubRec(mk(r1)),
                2 => Packet::PubRel(mk(r2)),
                _ => Packet::PubComp(mk(r2)),
            }
        });
    let opts = (qos(), any::<bool>(), any::<bool>(), 0..3u8).prop_map(move |(qos, nl, rap, rh)| {
        if v5 {
            SubscriptionOptions {
                qos,
                no_local: nl,
                retain_as_published: rap,
                retain_handling: match rh {
                    0 => RetainHandling::SendAtSubscribe,
                    1 => RetainHandling::SendIfNew,
                    _ => RetainHandling::DoNotSend,
                },
            }
        } else {
            SubscriptionOptions::new(qos)
        }
    });
    let subscribe = (
        pid(),
        pr(Ctx::Subscribe),
        prop::collection::vec(("[a-z+#/]{1,8}", opts), 1..4),
    )
        .prop_map(|(packet_id, properties, filters)| {
            Packet::Subscribe(Subscribe {
                packet_id,
                properties,
                filters,
            })
        });
    let suback_codes: &'static [u8] = if v5 {
        &[
            0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
        ]
    } else {
        &[0x00, 0x01, 0x02, 0x80]
    };
    let suback = (
        pid(),
        pr(Ctx::Ack),
        prop::collection::vec(reason_in(suback_codes), 1..4),
    )
        .prop_map(|(packet_id, properties, reasons)| {
            Packet::SubAck(SubAck {
                packet_id,
                properties,
                reasons,
            })
        });
    let unsubscribe = (
        pid(),
        pr(Ctx::Unsubscribe),
        prop::collection::vec("[a-z+#/]{1,8}", 1..4),
    )
        .prop_map(|(packet_id, properties, filters)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                properties,
                filters,
            })
        });
    let unsuback = (
        pid(),
        pr(Ctx::Ack),
        prop::collection::vec(reason_in(&[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91]), 1..4),
    )
        .prop_map(move |(packet_id, properties, reasons)| {
            Packet::UnsubAck(UnsubAck {
                packet_id,
                properties,
                reasons: if v5 { reasons } else { Vec::new() },
            })
        });
    let disc_codes: &'static [u8] = if v5 {
        &[
            0x00, 0x04, 0x80, 0x81, 0x82, 0x87, 0x8B, 0x8D, 0x8E, 0x93, 0x94, 0x95, 0x97, 0x9B,
            0xA2,
        ]
    } else {
        &[0x00]
    };
    let disconnect = (reason_in(disc_codes), pr(Ctx::Disconnect))
        .prop_map(|(reason, properties)| Packet::Disconnect(Disconnect { reason, properties }));
    let mut all = vec![
        connect.boxed(),
        connack.boxed(),
        publish.boxed(),
        resp.boxed(),
        subscribe.boxed(),
        suback.boxed(),
        unsubscribe.boxed(),
        unsuback.boxed(),
        Just(Packet::PingReq).boxed(),
        Just(Packet::PingResp).boxed(),
        disconnect.boxed(),
    ];
    if v5 {
        let auth = (reason_in(&[0x00, 0x18, 0x19]), props(Ctx::Auth))
            .prop_map(|(reason, properties)| Packet::Auth(Auth { reason, properties }));
        all.push(auth.boxed());
    }
    prop::strategy::Union::new(all).boxed()
}

fn round_trip(p: &Packet, version: ProtocolVersion) {
    let mut buf = BytesMut::new();
    p.encode(version, &mut buf).expect("encodable");
    let bytes = buf.freeze();
    let decoded = Packet::decode(bytes.clone(), Some(version)).expect("decodable");
    assert_eq!(&decoded, p);
    // Incremental decode with arbitrary split points gives the same packet.
    let mut d = Decoder::new(Some(version), u32::MAX);
    let (a, b) = bytes.split_at(bytes.len() / 2);
    d.feed(a);
    let first = d.decode().expect("no error");
    d.feed(b);
    let out = match first {
        Some(p) => p,
        None => d.decode().expect("no error").expect("complete"),
    };
    assert_eq!(&out, p);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn round_trip_v311(p in packet(false)) {
        round_trip(&p, ProtocolVersion::V311);
    }

    #[test]
    fn round_trip_v5(p in packet(true)) {
        round_trip(&p, ProtocolVersion::V5);
    }

    #[test]
    fn random_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
        version in prop_oneof![Just(None), Just(V3), Just(V5)],
        chunk in 1usize..16,
    ) {
        let mut d = Decoder::new(version, 1024);
        for c in bytes.chunks(chunk) {
            d.feed(c);
            while let Ok(Some(_)) = d.decode() {}
        }
        let _ = Packet::decode(Bytes::from(bytes), version);
    }

    #[test]
    fn mutated_valid_packets_never_panic(
        p in packet(true),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = p.to_bytes(ProtocolVersion::V5).expect("encodable").to_vec();
        for (i, b) in flips {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        let mut d = Decoder::new(V5, u32::MAX);
        d.feed(&bytes);
        while let Ok(Some(_)) = d.decode() {}
    }
}
