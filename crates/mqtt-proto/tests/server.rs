//! Server state machine tests, deterministic with virtual time (no sleeps, no clock).

use std::time::Duration;

use bytes::Bytes;
use mqtt_proto::packet::*;
use mqtt_proto::server::{ConnectRequest, SubscribeRequest};
use mqtt_proto::{
    Close, CloseCause, Config, Decoder, Delivery, Event, Message, ReasonCode, ServerConnection,
    Session,
};
use proptest::prelude::*;

const V3: ProtocolVersion = ProtocolVersion::V311;
const V5: ProtocolVersion = ProtocolVersion::V5;
const BOTH: [ProtocolVersion; 2] = [V3, V5];

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A client talking to one `ServerConnection`, with a virtual clock.
struct Client {
    conn: ServerConnection,
    version: ProtocolVersion,
    decoder: Decoder,
    now: Duration,
}

fn connect_packet(version: ProtocolVersion, client_id: &str) -> Connect {
    Connect {
        protocol: version,
        clean_start: true,
        keep_alive: 60,
        client_id: client_id.into(),
        will: Some(Will {
            topic: "will/topic".into(),
            payload: Bytes::from_static(b"gone"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Properties::default(),
        }),
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

impl Client {
    fn new(version: ProtocolVersion, config: Config, now: Duration) -> Self {
        Client {
            conn: ServerConnection::new(config, now),
            version,
            decoder: Decoder::new(Some(version), u32::MAX),
            now,
        }
    }

    fn send(&mut self, p: Packet) {
        let bytes = p.to_bytes(self.version).expect("encodable");
        self.conn.handle_input(&bytes, self.now);
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.conn.handle_input(bytes, self.now);
    }

    /// Packets the server sent since the last call.
    fn recv(&mut self) -> Vec<Packet> {
        while let Some(b) = self.conn.poll_transmit() {
            self.decoder.feed(&b);
        }
        let mut out = Vec::new();
        while let Some(p) = self.decoder.decode().expect("server output decodes") {
            out.push(p);
        }
        out
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.conn.poll_event()).collect()
    }

    fn advance_to(&mut self, t: Duration) {
        self.now = t;
        if let Some(deadline) = self.conn.poll_timeout()
            && deadline <= t
        {
            self.conn.handle_timeout(t);
        }
    }

    /// Sends CONNECT and returns the Connect request event.
    fn request(&mut self, c: Connect) -> ConnectRequest {
        self.send(Packet::Connect(Box::new(c)));
        match self.events().as_slice() {
            [Event::Connect(req)] => (**req).clone(),
            other => panic!("expected Connect event, got {other:?}"),
        }
    }

    /// Connects, accepts with `session`, and returns the CONNACK plus following packets.
    fn connect_with(&mut self, c: Connect, session: Session, present: bool) -> Vec<Packet> {
        self.request(c);
        self.conn
            .accept_connect(session, present, self.now)
            .expect("accept");
        let out = self.recv();
        assert!(matches!(out.first(), Some(Packet::ConnAck(a)) if a.reason == ReasonCode::Success));
        out
    }

    fn connected(version: ProtocolVersion, client_id: &str) -> Self {
        let mut c = Client::new(version, Config::default(), Duration::ZERO);
        c.connect_with(
            connect_packet(version, client_id),
            Session::new(client_id, 1000),
            false,
        );
        c
    }

    fn closed(&mut self) -> Close {
        let evs = self.events();
        match evs.last() {
            Some(Event::Closed(c)) => c.clone(),
            other => panic!("expected Closed, got {other:?} in {evs:?}"),
        }
    }
}

fn publish(topic: &str, qos: QoS, id: Option<u16>, payload: &[u8]) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        packet_id: id,
        properties: Properties::default(),
        payload: Bytes::copy_from_slice(payload),
    })
}

fn msg(topic: &str, payload: &str) -> Message {
    Message {
        topic: topic.into(),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Properties::default(),
    }
}

fn puback(id: u16) -> Packet {
    Packet::PubAck(PubResp {
        packet_id: id,
        reason: ReasonCode::Success,
        properties: Properties::default(),
    })
}

fn subscribe(id: u16, filters: &[(&str, QoS)]) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id: id,
        properties: Properties::default(),
        filters: filters
            .iter()
            .map(|(f, q)| (f.to_string(), SubscriptionOptions::new(*q)))
            .collect(),
    })
}

#[allow(clippy::large_enum_variant)]
enum Input {
    Packet(Packet),
    Raw(&'static [u8]),
}

/// Connects a client (with a will), feeds `input`, and checks the connection closed with
/// `cause` and `reason`: MQTT 5 clients receive DISCONNECT with that reason, 3.1.1 clients
/// receive nothing; the will is handed out; the event carries a readable text.
#[track_caller]
fn check(version: ProtocolVersion, input: Vec<Input>, cause: CloseCause, reason: ReasonCode) {
    let mut c = Client::connected(version, "dev");
    for i in input {
        match i {
            Input::Packet(p) => c.send(p),
            Input::Raw(b) => c.send_raw(b),
        }
    }
    let close = c.closed();
    assert_eq!((close.cause, close.reason), (cause, reason), "{close:?}");
    assert!(!close.text.is_empty());
    assert!(close.will.is_some() && !close.graceful());
    assert!(c.conn.is_closed() && !c.conn.wants_input());
    let out = c.recv();
    match version {
        V5 => assert!(
            matches!(out.last(), Some(Packet::Disconnect(d)) if d.reason == reason),
            "{out:?}"
        ),
        V3 => assert!(
            out.iter().all(|p| !matches!(p, Packet::Disconnect(_))),
            "{out:?}"
        ),
    }
    // Nothing is processed after the close.
    c.send(Packet::PingReq);
    assert!(c.recv().is_empty() && c.events().is_empty());
}

#[test]
fn protocol_errors_close_with_the_right_reason() {
    use CloseCause::ProtocolError as PE;
    let big = vec![0u8; 128 * 1024 + 1];
    let deep = "a/b/c/d/e/f/g/h/i";
    for v in BOTH {
        let p = Input::Packet;
        check(
            v,
            vec![p(Packet::Connect(Box::new(connect_packet(v, "dev"))))],
            PE,
            ReasonCode::ProtocolError,
        );
        check(
            v,
            vec![p(publish("a", QoS::ExactlyOnce, Some(1), b"x"))],
            PE,
            ReasonCode::QosNotSupported,
        );
        check(
            v,
            vec![p(publish("a", QoS::AtMostOnce, None, &big))],
            PE,
            ReasonCode::PacketTooLarge,
        );
        check(
            v,
            vec![p(publish(deep, QoS::AtMostOnce, None, b""))],
            PE,
            ReasonCode::TopicNameInvalid,
        );
        check(
            v,
            vec![Input::Raw(&[0x30, 0xff, 0xff, 0xff, 0x7f])],
            PE,
            ReasonCode::PacketTooLarge,
        );
        check(
            v,
            vec![Input::Raw(&[0xc0, 0x01, 0x00])],
            PE,
            ReasonCode::MalformedPacket,
        );
        check(
            v,
            vec![Input::Raw(&[0x30, 0x03, 0x00, 0x01, b'#'])],
            PE,
            ReasonCode::TopicNameInvalid,
        );
        check(
            v,
            vec![p(Packet::PubRec(PubResp {
                packet_id: 1,
                reason: ReasonCode::Success,
                properties: Properties::default(),
            }))],
            PE,
            ReasonCode::ProtocolError,
        );
        check(v, vec![p(Packet::PingResp)], PE, ReasonCode::ProtocolError);
    }
    let aliased = |topic: &str, alias| {
        let Packet::Publish(mut p) = publish(topic, QoS::AtMostOnce, None, b"x") else {
            unreachable!()
        };
        p.properties.topic_alias = Some(alias);
        Input::Packet(Packet::Publish(p))
    };
    check(V5, vec![aliased("a", 0)], PE, ReasonCode::TopicAliasInvalid);
    check(V5, vec![aliased("a", 9)], PE, ReasonCode::TopicAliasInvalid);
    check(V5, vec![aliased("", 1)], PE, ReasonCode::ProtocolError);
    check(
        V5,
        vec![Input::Packet(publish("", QoS::AtMostOnce, None, b""))],
        PE,
        ReasonCode::ProtocolError,
    );
    check(
        V5,
        vec![Input::Raw(&[0xf0, 0x00])],
        PE,
        ReasonCode::ProtocolError,
    );
    let disc = Packet::Disconnect(Disconnect {
        reason: ReasonCode::Success,
        properties: Properties {
            session_expiry_interval: Some(60),
            ..Properties::default()
        },
    });
    check(V5, vec![Input::Packet(disc)], PE, ReasonCode::ProtocolError);
}

#[test]
fn keep_alive_is_clamped_and_enforced_at_exactly_one_and_a_half() {
    for v in BOTH {
        for (requested, effective) in [
            (0u16, 1200u16),
            (1, 30),
            (29, 30),
            (30, 30),
            (600, 600),
            (1200, 1200),
            (1201, 1200),
            (u16::MAX, 1200),
        ] {
            let mut c = Client::new(v, Config::default(), secs(100));
            let mut connect = connect_packet(v, "ka");
            connect.keep_alive = requested;
            let req = c.request(connect);
            assert_eq!(req.keep_alive, effective);
            c.conn
                .accept_connect(Session::new("ka", 10), false, c.now)
                .expect("accept");
            let out = c.recv();
            let Some(Packet::ConnAck(ack)) = out.first() else {
                panic!("{out:?}")
            };
            let told = ack.properties.server_keep_alive;
            if v == V5 && requested != effective {
                assert_eq!(told, Some(effective));
            } else {
                assert_eq!(told, None);
            }
            // Activity at t+10 s pushes the deadline.
            c.advance_to(secs(110));
            c.send(Packet::PingReq);
            assert_eq!(c.recv(), vec![Packet::PingResp]);
            let deadline = secs(110) + Duration::from_millis(u64::from(effective) * 1500);
            assert_eq!(c.conn.poll_timeout(), Some(deadline));
            c.advance_to(deadline - Duration::from_millis(1));
            c.conn.handle_timeout(c.now); // early call is harmless
            assert!(!c.conn.is_closed());
            assert!(c.events().is_empty());
            c.advance_to(deadline);
            let close = c.closed();
            assert_eq!(close.cause, CloseCause::KeepAliveTimeout);
            assert!(close.will.is_some());
            let out = c.recv();
            if v == V5 {
                assert!(
                    matches!(out.as_slice(), [Packet::Disconnect(d)] if d.reason == ReasonCode::KeepAliveTimeout)
                );
            } else {
                assert!(out.is_empty());
            }
        }
    }
}

#[test]
fn connect_timeout_and_connect_first() {
    let mut c = Client::new(V3, Config::default(), secs(5));
    assert_eq!(c.conn.poll_timeout(), Some(secs(15)));
    c.advance_to(secs(15));
    assert_eq!(c.closed().cause, CloseCause::ConnectTimeout);

    let mut c = Client::new(V3, Config::default(), secs(0));
    c.send_raw(&[0xc0, 0x00]);
    let close = c.closed();
    assert_eq!(
        (close.cause, close.reason),
        (CloseCause::ProtocolError, ReasonCode::ProtocolError)
    );
    assert!(c.recv().is_empty());
}

#[test]
fn connect_refusals() {
    type Edit = Box<dyn Fn(&mut Connect)>;
    let cases: Vec<(ProtocolVersion, Edit, ReasonCode)> = vec![
        (
            V3,
            Box::new(|c| c.client_id = "x".repeat(129)),
            ReasonCode::ClientIdentifierNotValid,
        ),
        (
            V5,
            Box::new(|c| c.client_id = "x".repeat(129)),
            ReasonCode::ClientIdentifierNotValid,
        ),
        (
            V3,
            Box::new(|c| c.client_id = "$sys".into()),
            ReasonCode::ClientIdentifierNotValid,
        ),
        (
            V3,
            Box::new(|c| {
                c.client_id.clear();
                c.clean_start = false;
            }),
            ReasonCode::ClientIdentifierNotValid,
        ),
        (
            V5,
            Box::new(|c| c.properties.authentication_method = Some("SCRAM".into())),
            ReasonCode::BadAuthenticationMethod,
        ),
        (
            V5,
            Box::new(|c| {
                if let Some(w) = c.will.as_mut() {
                    w.qos = QoS::ExactlyOnce
                }
            }),
            ReasonCode::QosNotSupported,
        ),
    ];
    for (v, edit, reason) in cases {
        let mut c = Client::new(v, Config::default(), secs(0));
        let mut connect = connect_packet(v, "dev");
        edit(&mut connect);
        c.send(Packet::Connect(Box::new(connect)));
        let close = c.closed();
        assert_eq!(
            (close.cause, close.reason),
            (CloseCause::ConnectRefused, reason)
        );
        assert!(close.will.is_none());
        let out = c.recv();
        let expected = if v == V5 {
            reason
        } else {
            ReasonCode::from_v3_connack(reason.to_v3_connack()).expect("v3")
        };
        assert!(
            matches!(out.as_slice(), [Packet::ConnAck(a)] if a.reason == expected),
            "{out:?}"
        );
    }
    // The application refuses.
    for v in BOTH {
        let mut c = Client::new(v, Config::default(), secs(0));
        c.request(connect_packet(v, "dev"));
        c.conn
            .reject_connect(ReasonCode::NotAuthorized, c.now)
            .expect("pending");
        assert_eq!(c.closed().cause, CloseCause::ConnectRefused);
        assert!(
            matches!(c.recv().as_slice(), [Packet::ConnAck(a)] if a.reason == ReasonCode::NotAuthorized)
        );
        assert!(
            c.conn
                .reject_connect(ReasonCode::NotAuthorized, c.now)
                .is_err()
        );
    }
    // Unsupported protocol level: 3.1.1-style CONNACK 0x01.
    let mut c = Client::new(V3, Config::default(), secs(0));
    c.send_raw(&[0x10, 0x0c, 0, 4, b'M', b'Q', b'T', b'T', 3, 2, 0, 60, 0, 0]);
    assert_eq!(c.closed().reason, ReasonCode::UnsupportedProtocolVersion);
    assert!(
        matches!(c.recv().as_slice(), [Packet::ConnAck(a)] if a.reason == ReasonCode::UnsupportedProtocolVersion)
    );
}

#[test]
fn v5_connack_advertises_limits_and_assigns_client_id() {
    let mut c = Client::new(V5, Config::default(), secs(0));
    let mut connect = connect_packet(V5, "");
    connect.properties.session_expiry_interval = Some(u32::MAX);
    let req = c.request(connect);
    assert_eq!(req.session_expiry, 7 * 24 * 3600);
    c.conn
        .accept_connect(Session::new("assigned-1", 10), false, c.now)
        .expect("accept");
    let out = c.recv();
    let Some(Packet::ConnAck(a)) = out.first() else {
        panic!()
    };
    let p = &a.properties;
    assert_eq!(p.assigned_client_identifier.as_deref(), Some("assigned-1"));
    assert_eq!(p.session_expiry_interval, Some(7 * 24 * 3600));
    assert_eq!(p.receive_maximum, Some(100));
    assert_eq!(p.maximum_qos, Some(QoS::AtLeastOnce));
    assert_eq!(p.topic_alias_maximum, Some(8));
    assert_eq!(p.maximum_packet_size, Some(132 * 1024));
    assert_eq!(c.conn.client_id(), "assigned-1");
}

#[test]
fn input_after_connect_is_held_until_accepted() {
    for v in BOTH {
        let mut c = Client::new(v, Config::default(), secs(0));
        let mut bytes = Packet::Connect(Box::new(connect_packet(v, "dev")))
            .to_bytes(v)
            .expect("enc")
            .to_vec();
        bytes.extend_from_slice(&[0xc0, 0x00]);
        c.send_raw(&bytes);
        assert!(!c.conn.wants_input());
        assert!(matches!(c.events().as_slice(), [Event::Connect(_)]));
        assert!(c.recv().is_empty());
        c.conn
            .accept_connect(Session::new("dev", 10), false, c.now)
            .expect("accept");
        let out = c.recv();
        assert!(
            matches!(out.as_slice(), [Packet::ConnAck(_), Packet::PingResp]),
            "{out:?}"
        );
    }
}

#[test]
fn qos1_inbound_and_receive_maximum() {
    for v in BOTH {
        let mut c = Client::connected(v, "dev");
        for id in 1..=100u16 {
            c.send(publish("t", QoS::AtLeastOnce, Some(id), b"x"));
        }
        assert_eq!(c.events().len(), 100);
        // A retransmission of an unacked id does not count twice.
        c.send(publish("t", QoS::AtLeastOnce, Some(7), b"x"));
        assert_eq!(c.events().len(), 1);
        c.conn.ack_publish(1, ReasonCode::Success).expect("pending");
        assert_eq!(c.recv(), vec![puback(1)]);
        assert!(c.conn.ack_publish(1, ReasonCode::Success).is_err());
        c.send(publish("t", QoS::AtLeastOnce, Some(101), b"x"));
        assert!(matches!(c.events().as_slice(), [Event::Publish(_)]));
        c.send(publish("t", QoS::AtLeastOnce, Some(102), b"x"));
        let close = c.closed();
        assert_eq!(
            (close.cause, close.reason),
            (
                CloseCause::ProtocolError,
                ReasonCode::ReceiveMaximumExceeded
            )
        );
    }
}

#[test]
fn outbound_window_follows_client_receive_maximum() {
    let mut c = Client::new(V5, Config::default(), secs(0));
    let mut connect = connect_packet(V5, "dev");
    connect.properties.receive_maximum = Some(2);
    connect.properties.maximum_packet_size = Some(64);
    c.connect_with(connect, Session::new("dev", 10), false);
    assert_eq!(c.conn.send_publish(msg("a", "1")), Delivery::Sent);
    assert_eq!(c.conn.send_publish(msg("a", "2")), Delivery::Sent);
    assert_eq!(c.conn.send_publish(msg("a", "3")), Delivery::Queued);
    // Larger than the client's Maximum Packet Size: dropped, not sent.
    assert_eq!(
        c.conn.send_publish(Message {
            qos: QoS::AtMostOnce,
            ..msg("a", &"x".repeat(100))
        }),
        Delivery::Dropped
    );
    let ids: Vec<_> = c
        .recv()
        .into_iter()
        .map(|p| match p {
            Packet::Publish(p) => p.packet_id,
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec![Some(1), Some(2)]);
    c.send(puback(1));
    let out = c.recv();
    assert!(
        matches!(out.as_slice(), [Packet::Publish(p)] if p.packet_id == Some(3) && &p.payload[..] == b"3")
    );
    assert_eq!(c.conn.session().map(Session::inflight_len), Some(2));
}

#[test]
fn topic_aliases_are_resolved() {
    let mut c = Client::connected(V5, "dev");
    let aliased = |topic: &str, alias| {
        let Packet::Publish(mut p) = publish(topic, QoS::AtMostOnce, None, b"x") else {
            unreachable!()
        };
        p.properties.topic_alias = Some(alias);
        Packet::Publish(p)
    };
    c.send(aliased("sensors/1", 3));
    c.send(aliased("", 3));
    c.send(aliased("sensors/2", 3));
    c.send(aliased("", 3));
    let topics: Vec<_> = c
        .events()
        .into_iter()
        .map(|e| match e {
            Event::Publish(p) => {
                assert_eq!(p.properties.topic_alias, None);
                p.topic
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(topics, ["sensors/1", "sensors/1", "sensors/2", "sensors/2"]);
}

#[test]
fn subscribe_rules() {
    for v in BOTH {
        let mut c = Client::connected(v, "dev");
        c.send(subscribe(
            1,
            &[
                ("a/#", QoS::ExactlyOnce),
                ("a/#/b", QoS::AtLeastOnce),
                ("b", QoS::AtMostOnce),
                ("c", QoS::AtLeastOnce),
            ],
        ));
        let evs = c.events();
        let [
            Event::Subscribe {
                packet_id: 1,
                requests,
            },
        ] = evs.as_slice()
        else {
            panic!("{evs:?}")
        };
        let r: Vec<_> = requests
            .iter()
            .map(|r: &SubscribeRequest| (r.options.qos, r.refused))
            .collect();
        assert_eq!(
            r,
            vec![
                (QoS::AtLeastOnce, None),
                (QoS::AtLeastOnce, Some(ReasonCode::TopicFilterInvalid)),
                (QoS::AtMostOnce, None),
                (QoS::AtLeastOnce, None),
            ]
        );
        assert!(c.conn.grant_subscribe(1, &[ReasonCode::Success]).is_err());
        c.conn
            .grant_subscribe(
                1,
                &[
                    ReasonCode::GrantedQos2,
                    ReasonCode::GrantedQos1,
                    ReasonCode::GrantedQos1,
                    ReasonCode::NotAuthorized,
                ],
            )
            .expect("pending");
        let out = c.recv();
        let Some(Packet::SubAck(ack)) = out.first() else {
            panic!("{out:?}")
        };
        let expected = match v {
            V5 => vec![
                ReasonCode::GrantedQos1,
                ReasonCode::TopicFilterInvalid,
                ReasonCode::Success,
                ReasonCode::NotAuthorized,
            ],
            V3 => vec![
                ReasonCode::GrantedQos1,
                ReasonCode::UnspecifiedError,
                ReasonCode::Success,
                ReasonCode::UnspecifiedError,
            ],
        };
        assert_eq!(ack.reasons, expected);
        let subs: Vec<_> = c
            .conn
            .session()
            .expect("session")
            .subscriptions()
            .keys()
            .cloned()
            .collect();
        assert_eq!(subs, ["a/#", "b"]);

        // At most 8 filters per SUBSCRIBE.
        let names: Vec<String> = (0..9).map(|i| format!("f/{i}")).collect();
        let filters: Vec<(&str, QoS)> = names
            .iter()
            .map(|n| (n.as_str(), QoS::AtLeastOnce))
            .collect();
        c.send(subscribe(2, &filters));
        let evs = c.events();
        let [Event::Subscribe { requests, .. }] = evs.as_slice() else {
            panic!()
        };
        assert_eq!(requests.iter().filter(|r| r.refused.is_some()).count(), 1);
        assert_eq!(requests[8].refused, Some(ReasonCode::QuotaExceeded));
        c.conn
            .grant_subscribe(2, &[ReasonCode::GrantedQos1; 9])
            .expect("pending");
        c.recv();
        // At most 50 subscriptions: 10 held, 40 more fit, the 41st does not; re-subscribing an
        // existing filter is not a new subscription.
        for batch in 0..5 {
            let names: Vec<String> = (0..8).map(|i| format!("g/{batch}/{i}")).collect();
            let filters: Vec<(&str, QoS)> = names
                .iter()
                .map(|n| (n.as_str(), QoS::AtMostOnce))
                .collect();
            c.send(subscribe(10 + batch, &filters));
            c.events();
            c.conn
                .grant_subscribe(10 + batch, &[ReasonCode::Success; 8])
                .expect("pending");
        }
        c.recv();
        assert_eq!(c.conn.session().map(|s| s.subscriptions().len()), Some(50));
        c.send(subscribe(
            20,
            &[("h", QoS::AtMostOnce), ("b", QoS::AtMostOnce)],
        ));
        let evs = c.events();
        let [Event::Subscribe { requests, .. }] = evs.as_slice() else {
            panic!()
        };
        assert_eq!(requests[0].refused, Some(ReasonCode::QuotaExceeded));
        assert_eq!(requests[1].refused, None);

        // Unsubscribe.
        c.send(Packet::Unsubscribe(Unsubscribe {
            packet_id: 30,
            properties: Properties::default(),
            filters: vec!["b".into(), "zz".into()],
        }));
        let out = c.recv();
        let Some(Packet::UnsubAck(u)) = out.first() else {
            panic!("{out:?}")
        };
        if v == V5 {
            assert_eq!(
                u.reasons,
                vec![ReasonCode::Success, ReasonCode::NoSubscriptionExisted]
            );
        }
        assert!(
            matches!(c.events().as_slice(), [Event::Unsubscribe { filters }] if filters == &["b"])
        );
    }
}

#[test]
fn shared_subscriptions_are_refused_in_v5() {
    let mut c = Client::connected(V5, "dev");
    c.send(subscribe(1, &[("$share/g/a", QoS::AtMostOnce)]));
    let evs = c.events();
    let [Event::Subscribe { requests, .. }] = evs.as_slice() else {
        panic!()
    };
    assert_eq!(
        requests[0].refused,
        Some(ReasonCode::SharedSubscriptionsNotSupported)
    );
}

#[test]
fn disconnect_and_will_bookkeeping() {
    for v in BOTH {
        // Normal DISCONNECT: graceful, will discarded.
        let mut c = Client::connected(v, "dev");
        c.send(Packet::Disconnect(Disconnect {
            reason: ReasonCode::Success,
            properties: Properties::default(),
        }));
        let close = c.closed();
        assert!(close.graceful() && close.will.is_none());
        assert!(c.recv().is_empty());
        // Transport loss: will published.
        let mut c = Client::connected(v, "dev");
        c.conn.handle_transport_closed(c.now);
        let close = c.closed();
        assert_eq!(close.cause, CloseCause::TransportClosed);
        assert!(!close.graceful() && close.will.is_some());
        // Server-initiated.
        let mut c = Client::connected(v, "dev");
        c.conn
            .disconnect(ReasonCode::NotAuthorized, "certificate revoked", c.now);
        let close = c.closed();
        assert_eq!(close.cause, CloseCause::ServerDisconnect);
        assert!(close.will.is_some());
        let out = c.recv();
        if v == V5 {
            assert!(
                matches!(out.as_slice(), [Packet::Disconnect(d)] if d.reason == ReasonCode::NotAuthorized
                && d.properties.reason_string.as_deref() == Some("certificate revoked"))
            );
        } else {
            assert!(out.is_empty());
        }
    }
    // MQTT 5 "disconnect with will message".
    let mut c = Client::connected(V5, "dev");
    c.send(Packet::Disconnect(Disconnect {
        reason: ReasonCode::DisconnectWithWill,
        properties: Properties::default(),
    }));
    let close = c.closed();
    assert!(!close.graceful() && close.will.is_some());
}

#[test]
fn session_expiry() {
    // 3.1.1: cleanSession=0 → 1 h; cleanSession=1 → 0.
    for (clean, expiry) in [(false, 3600u32), (true, 0)] {
        let mut c = Client::new(V3, Config::default(), secs(0));
        let mut connect = connect_packet(V3, "dev");
        connect.clean_start = clean;
        c.connect_with(connect, Session::new("dev", 10), false);
        assert_eq!(c.conn.session().and_then(Session::expires_at), None);
        c.advance_to(secs(50));
        c.conn.handle_transport_closed(c.now);
        let s = c.conn.take_session().expect("session");
        assert_eq!(s.expiry_interval(), expiry);
        let at = secs(50 + u64::from(expiry));
        assert_eq!(s.expires_at(), Some(at));
        assert!(s.is_expired(at));
        assert!(expiry == 0 || !s.is_expired(at - Duration::from_millis(1)));
    }
    // MQTT 5: CONNECT asks 100 s, DISCONNECT lowers it to 5 s.
    let mut c = Client::new(V5, Config::default(), secs(0));
    let mut connect = connect_packet(V5, "dev");
    connect.properties.session_expiry_interval = Some(100);
    c.connect_with(connect, Session::new("dev", 10), false);
    c.send(Packet::Disconnect(Disconnect {
        reason: ReasonCode::Success,
        properties: Properties {
            session_expiry_interval: Some(5),
            ..Properties::default()
        },
    }));
    assert!(c.closed().graceful());
    let s = c.conn.take_session().expect("session");
    assert_eq!(s.expires_at(), Some(secs(5)));
}

/// QoS 1 delivery across a reconnect: unacked messages are redelivered first with DUP=1 and
/// their original ids, then messages queued while offline; the queue is bounded.
#[test]
fn qos1_redelivery_after_reconnect() {
    for v in BOTH {
        let mut c = Client::new(v, Config::default(), secs(0));
        let mut connect = connect_packet(v, "dev");
        connect.clean_start = false;
        connect.properties.session_expiry_interval = Some(600);
        c.connect_with(connect.clone(), Session::new("dev", 2), false);
        for i in 1..=3 {
            assert_eq!(
                c.conn.send_publish(msg("t", &format!("m{i}"))),
                Delivery::Sent
            );
        }
        assert_eq!(
            c.conn.send_publish(Message {
                qos: QoS::AtMostOnce,
                ..msg("t", "q0")
            }),
            Delivery::Sent
        );
        assert_eq!(c.recv().len(), 4);
        c.send(puback(1));
        c.conn.handle_transport_closed(c.now);
        assert_eq!(c.closed().cause, CloseCause::TransportClosed);
        // Messages for the offline session are queued through the closed connection or the
        // stored session alike; QoS 0 is not kept; the queue keeps the newest 2.
        assert_eq!(c.conn.send_publish(msg("t", "q1")), Delivery::Queued);
        let mut session = c.conn.take_session().expect("session");
        assert!(!session.enqueue(Message {
            qos: QoS::AtMostOnce,
            ..msg("t", "x")
        }));
        assert!(session.enqueue(msg("t", "q2")));
        assert!(session.enqueue(msg("t", "q3")));
        assert_eq!(
            (
                session.queued_len(),
                session.dropped_count(),
                session.inflight_len()
            ),
            (2, 1, 2)
        );

        let mut c2 = Client::new(v, Config::default(), secs(30));
        let out = c2.connect_with(connect, session, true);
        assert!(matches!(&out[0], Packet::ConnAck(a) if a.session_present));
        let got: Vec<(bool, Option<u16>, String)> = out[1..]
            .iter()
            .map(|p| match p {
                Packet::Publish(p) => (
                    p.dup,
                    p.packet_id,
                    String::from_utf8_lossy(&p.payload).into_owned(),
                ),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (true, Some(2), "m2".into()),
                (true, Some(3), "m3".into()),
                (false, Some(4), "q2".into()),
                (false, Some(5), "q3".into()),
            ]
        );
        c2.send(puback(2));
        c2.send(puback(4));
        assert_eq!(c2.conn.session().map(Session::inflight_len), Some(2));
    }
}

#[test]
fn clean_start_discards_a_passed_session() {
    let mut c = Client::connected(V5, "dev");
    c.conn.send_publish(msg("t", "x"));
    c.conn.handle_transport_closed(c.now);
    let s = c.conn.take_session().expect("session");
    assert_eq!(s.inflight_len(), 1);
    let mut c2 = Client::new(V5, Config::default(), secs(1));
    let out = c2.connect_with(connect_packet(V5, "dev"), s, false);
    assert!(matches!(out.as_slice(), [Packet::ConnAck(a)] if !a.session_present));
}

#[test]
fn session_takeover() {
    for v in BOTH {
        let mut old = Client::connected(v, "dev");
        old.send(subscribe(1, &[("a/b", QoS::AtLeastOnce)]));
        old.events();
        old.conn
            .grant_subscribe(1, &[ReasonCode::GrantedQos1])
            .expect("pending");
        old.conn.send_publish(msg("a/b", "unacked"));
        old.recv();

        let mut new = Client::new(v, Config::default(), secs(10));
        let mut connect = connect_packet(v, "dev");
        connect.clean_start = false;
        let req = new.request(connect);
        assert_eq!(req.connect.client_id, "dev");
        // The gateway finds "dev" connected: take it over.
        old.conn.take_over(secs(10));
        let close = old.closed();
        assert_eq!(
            (close.cause, close.reason),
            (CloseCause::TakenOver, ReasonCode::SessionTakenOver)
        );
        assert!(close.will.is_some());
        let out = old.recv();
        if v == V5 {
            assert!(
                matches!(out.as_slice(), [Packet::Disconnect(d)] if d.reason == ReasonCode::SessionTakenOver)
            );
        } else {
            assert!(out.is_empty());
        }
        let session = old.conn.take_session().expect("session");
        assert!(old.conn.take_session().is_none());
        new.conn
            .accept_connect(session, true, new.now)
            .expect("accept");
        let out = new.recv();
        assert!(matches!(&out[0], Packet::ConnAck(a) if a.session_present));
        assert!(matches!(&out[1], Packet::Publish(p) if p.dup && p.packet_id == Some(1)));
        assert!(
            new.conn
                .session()
                .expect("session")
                .subscriptions()
                .contains_key("a/b")
        );
    }
}

#[test]
fn api_misuse_is_an_error_not_a_panic() {
    let mut c = Client::new(V3, Config::default(), secs(0));
    assert!(
        c.conn
            .accept_connect(Session::new("x", 1), false, c.now)
            .is_err()
    );
    assert!(c.conn.ack_publish(1, ReasonCode::Success).is_err());
    assert!(c.conn.grant_subscribe(1, &[]).is_err());
    assert_eq!(c.conn.send_publish(msg("t", "x")), Delivery::Dropped);
    assert!(c.conn.take_session().is_none());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Random bytes after a valid CONNECT never panic and always end in at most one Closed.
    #[test]
    fn random_input_never_panics(
        v5 in any::<bool>(),
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8),
        ticks in prop::collection::vec(0u64..4000, 0..4),
    ) {
        let v = if v5 { V5 } else { V3 };
        let mut c = Client::connected(v, "dev");
        let mut t = 0;
        for (i, chunk) in chunks.iter().enumerate() {
            c.send_raw(chunk);
            if let Some(dt) = ticks.get(i) {
                t += dt;
                c.advance_to(secs(t));
            }
            c.conn.send_publish(msg("x", "y"));
            for e in c.events() {
                match e {
                    Event::Subscribe { packet_id, requests } => {
                        let _ = c.conn.grant_subscribe(packet_id, &vec![ReasonCode::GrantedQos1; requests.len()]);
                    }
                    Event::Publish(p) => if let Some(id) = p.packet_id {
                        let _ = c.conn.ack_publish(id, ReasonCode::Success);
                    },
                    _ => {}
                }
            }
            let _ = c.recv();
        }
        c.conn.handle_transport_closed(c.now);
        let closes = c.events().into_iter().filter(|e| matches!(e, Event::Closed(_))).count();
        prop_assert!(closes <= 1);
        prop_assert!(c.conn.is_closed());
    }
}
