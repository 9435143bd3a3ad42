//! Differential tests against `mqttbytes` (MQTT 3.1.1): for the same logical packet both
//! encoders produce identical bytes, and each decoder accepts the other's output.

use bytes::{Bytes, BytesMut};
use mqtt_proto::ProtocolVersion;
use mqtt_proto::packet::*;
use mqttbytes::v4 as o;
use proptest::prelude::*;

fn oqos(q: QoS) -> mqttbytes::QoS {
    match q {
        QoS::AtMostOnce => mqttbytes::QoS::AtMostOnce,
        QoS::AtLeastOnce => mqttbytes::QoS::AtLeastOnce,
        QoS::ExactlyOnce => mqttbytes::QoS::ExactlyOnce,
    }
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

/// A packet in both representations.
fn pair() -> impl Strategy<Value = (Packet, o::Packet)> {
    let s = || "[a-zA-Z0-9/é]{1,10}";
    let payload = || prop::collection::vec(any::<u8>(), 0..300);
    prop_oneof![
        (
            s(),
            qos(),
            1..=u16::MAX,
            payload(),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(topic, qos, id, payload, retain, dup)| {
                let q0 = qos == QoS::AtMostOnce;
                let ours = Publish {
                    dup: dup && !q0,
                    qos,
                    retain,
                    topic: topic.clone(),
                    packet_id: (!q0).then_some(id),
                    properties: Properties::default(),
                    payload: Bytes::from(payload.clone()),
                };
                let mut theirs = o::Publish::new(topic, oqos(qos), payload);
                theirs.retain = retain;
                theirs.dup = ours.dup;
                theirs.pkid = if q0 { 0 } else { id };
                (Packet::Publish(ours), o::Packet::Publish(theirs))
            }),
        (
            "[a-z0-9]{0,20}",
            any::<u16>(),
            any::<bool>(),
            prop::option::of((s(), payload(), qos(), any::<bool>())),
            prop::option::of((s(), s()))
        )
            .prop_map(|(id, ka, clean, will, login)| {
                let ours = Connect {
                    protocol: ProtocolVersion::V311,
                    clean_start: clean,
                    keep_alive: ka,
                    client_id: id.clone(),
                    will: will.clone().map(|(topic, p, qos, retain)| Will {
                        topic,
                        payload: Bytes::from(p),
                        qos,
                        retain,
                        properties: Properties::default(),
                    }),
                    username: login.clone().map(|l| l.0),
                    password: login.clone().map(|l| Bytes::from(l.1)),
                    properties: Properties::default(),
                };
                let mut theirs = o::Connect::new(id);
                theirs.keep_alive = ka;
                theirs.clean_session = clean;
                theirs.last_will = will.map(|(t, p, q, r)| o::LastWill::new(t, p, oqos(q), r));
                if let Some((u, p)) = login {
                    theirs.set_login(u, p);
                }
                (Packet::Connect(Box::new(ours)), o::Packet::Connect(theirs))
            }),
        (1..=u16::MAX, prop::collection::vec((s(), qos()), 1..5)).prop_map(|(id, fs)| {
            let ours = Subscribe {
                packet_id: id,
                properties: Properties::default(),
                filters: fs
                    .iter()
                    .map(|(f, q)| (f.clone(), SubscriptionOptions::new(*q)))
                    .collect(),
            };
            let theirs = o::Subscribe {
                pkid: id,
                filters: fs
                    .into_iter()
                    .map(|(f, q)| o::SubscribeFilter::new(f, oqos(q)))
                    .collect(),
            };
            (Packet::Subscribe(ours), o::Packet::Subscribe(theirs))
        }),
        (1..=u16::MAX, prop::collection::vec(s(), 1..5)).prop_map(|(id, fs)| {
            let ours = Unsubscribe {
                packet_id: id,
                properties: Properties::default(),
                filters: fs.clone(),
            };
            (
                Packet::Unsubscribe(ours),
                o::Packet::Unsubscribe(o::Unsubscribe {
                    pkid: id,
                    topics: fs,
                }),
            )
        }),
        (1..=u16::MAX).prop_map(|id| {
            let ours = PubResp {
                packet_id: id,
                reason: mqtt_proto::ReasonCode::Success,
                properties: Properties::default(),
            };
            (Packet::PubAck(ours), o::Packet::PubAck(o::PubAck::new(id)))
        }),
        Just((Packet::PingReq, o::Packet::PingReq)),
    ]
}

fn write_theirs(p: &o::Packet, buf: &mut BytesMut) {
    let r = match p {
        o::Packet::Publish(x) => x.write(buf),
        o::Packet::Connect(x) => x.write(buf),
        o::Packet::Subscribe(x) => x.write(buf),
        o::Packet::Unsubscribe(x) => x.write(buf),
        o::Packet::PubAck(x) => x.write(buf),
        o::Packet::PingReq => o::PingReq.write(buf),
        other => panic!("not generated: {other:?}"),
    };
    r.expect("oracle encodes");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn same_bytes_and_mutual_decoding((ours, theirs) in pair()) {
        let mut a = BytesMut::new();
        ours.encode(ProtocolVersion::V311, &mut a).expect("encodes");
        let mut b = BytesMut::new();
        write_theirs(&theirs, &mut b);
        prop_assert_eq!(&a[..], &b[..]);
        let version = (!matches!(ours, Packet::Connect(_))).then_some(ProtocolVersion::V311);
        prop_assert_eq!(Packet::decode(b.freeze(), version).expect("we decode theirs"), ours);
        let decoded = o::read(&mut a, 1 << 20).expect("they decode ours");
        prop_assert_eq!(decoded, theirs);
    }
}
