//! MQTT 3.1.1 and 5.0 control packets: types, a strict decoder and an encoder.
//!
//! * [`Packet::decode`] decodes one complete packet; [`Decoder`] is the incremental form
//!   (feed bytes, get packets or "need more") that enforces a maximum packet size from the
//!   fixed header, before the body is buffered.
//! * [`Packet::encode`] appends the wire form to a buffer.

mod codec;
mod properties;
mod wire;

pub use codec::Decoder;
pub use properties::Properties;

use bytes::Bytes;

use crate::ReasonCode;

/// MQTT protocol version, from the protocol level byte of CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolVersion {
    /// MQTT 3.1.1 (protocol level 4).
    V311,
    /// MQTT 5.0 (protocol level 5).
    V5,
}

impl ProtocolVersion {
    /// The protocol level byte.
    pub fn level(self) -> u8 {
        match self {
            ProtocolVersion::V311 => 4,
            ProtocolVersion::V5 => 5,
        }
    }
}

/// Quality of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QoS {
    /// At most once (0).
    AtMostOnce = 0,
    /// At least once (1).
    AtLeastOnce = 1,
    /// Exactly once (2). Decoded, never granted by the server.
    ExactlyOnce = 2,
}

impl QoS {
    /// Parses 0, 1 or 2.
    pub fn from_u8(v: u8) -> Option<QoS> {
        match v {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// A control packet. `Connect` is boxed to keep the enum small.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT (1).
    Connect(Box<Connect>),
    /// CONNACK (2).
    ConnAck(ConnAck),
    /// PUBLISH (3).
    Publish(Publish),
    /// PUBACK (4).
    PubAck(PubResp),
    /// PUBREC (5).
    PubRec(PubResp),
    /// PUBREL (6).
    PubRel(PubResp),
    /// PUBCOMP (7).
    PubComp(PubResp),
    /// SUBSCRIBE (8).
    Subscribe(Subscribe),
    /// SUBACK (9).
    SubAck(SubAck),
    /// UNSUBSCRIBE (10).
    Unsubscribe(Unsubscribe),
    /// UNSUBACK (11).
    UnsubAck(UnsubAck),
    /// PINGREQ (12).
    PingReq,
    /// PINGRESP (13).
    PingResp,
    /// DISCONNECT (14).
    Disconnect(Disconnect),
    /// AUTH (15, MQTT 5 only).
    Auth(Auth),
}

impl Packet {
    /// The packet type name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Packet::Connect(_) => "CONNECT",
            Packet::ConnAck(_) => "CONNACK",
            Packet::Publish(_) => "PUBLISH",
            Packet::PubAck(_) => "PUBACK",
            Packet::PubRec(_) => "PUBREC",
            Packet::PubRel(_) => "PUBREL",
            Packet::PubComp(_) => "PUBCOMP",
            Packet::Subscribe(_) => "SUBSCRIBE",
            Packet::SubAck(_) => "SUBACK",
            Packet::Unsubscribe(_) => "UNSUBSCRIBE",
            Packet::UnsubAck(_) => "UNSUBACK",
            Packet::PingReq => "PINGREQ",
            Packet::PingResp => "PINGRESP",
            Packet::Disconnect(_) => "DISCONNECT",
            Packet::Auth(_) => "AUTH",
        }
    }
}

/// CONNECT. The `Debug` output never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Connect {
    /// Protocol version (from the protocol level byte).
    pub protocol: ProtocolVersion,
    /// Clean Session (3.1.1) / Clean Start (5).
    pub clean_start: bool,
    /// Requested keep-alive in seconds.
    pub keep_alive: u16,
    /// Client identifier (may be empty).
    pub client_id: String,
    /// Will message.
    pub will: Option<Will>,
    /// User name.
    pub username: Option<String>,
    /// Password (binary).
    pub password: Option<Bytes>,
    /// MQTT 5 properties (empty for 3.1.1).
    pub properties: Properties,
}

impl std::fmt::Debug for Connect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connect")
            .field("protocol", &self.protocol)
            .field("clean_start", &self.clean_start)
            .field("keep_alive", &self.keep_alive)
            .field("client_id", &self.client_id)
            .field("will", &self.will)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("properties", &self.properties)
            .finish()
    }
}

/// The will message of a CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// Topic name (validated: no wildcards).
    pub topic: String,
    /// Payload.
    pub payload: Bytes,
    /// QoS.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// MQTT 5 will properties (will delay interval, message expiry, ...).
    pub properties: Properties,
}

/// CONNACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    /// Session present flag.
    pub session_present: bool,
    /// Reason code (3.1.1 return codes are mapped, see [`ReasonCode::from_v3_connack`]).
    pub reason: ReasonCode,
    /// MQTT 5 properties.
    pub properties: Properties,
}

/// PUBLISH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// DUP flag.
    pub dup: bool,
    /// QoS.
    pub qos: QoS,
    /// RETAIN flag.
    pub retain: bool,
    /// Topic name (empty only in MQTT 5 when a topic alias is used).
    pub topic: String,
    /// Packet identifier; `Some` exactly when `qos > 0`.
    pub packet_id: Option<u16>,
    /// MQTT 5 properties.
    pub properties: Properties,
    /// Application payload.
    pub payload: Bytes,
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubResp {
    /// Packet identifier.
    pub packet_id: u16,
    /// Reason code (always `Success` in 3.1.1).
    pub reason: ReasonCode,
    /// MQTT 5 properties.
    pub properties: Properties,
}

/// Retain handling option of a subscription (MQTT 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RetainHandling {
    /// Send retained messages at subscribe time (0).
    #[default]
    SendAtSubscribe = 0,
    /// Send retained messages only if the subscription is new (1).
    SendIfNew = 1,
    /// Never send retained messages at subscribe time (2).
    DoNotSend = 2,
}

/// Options of one subscription (the byte after each filter in SUBSCRIBE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriptionOptions {
    /// Maximum QoS.
    pub qos: QoS,
    /// No Local (MQTT 5).
    pub no_local: bool,
    /// Retain As Published (MQTT 5).
    pub retain_as_published: bool,
    /// Retain Handling (MQTT 5).
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// Options with this QoS and MQTT 5 defaults for the rest.
    pub fn new(qos: QoS) -> Self {
        SubscriptionOptions {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::SendAtSubscribe,
        }
    }
}

/// SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Packet identifier.
    pub packet_id: u16,
    /// MQTT 5 properties (subscription identifier, user properties).
    pub properties: Properties,
    /// Topic filters with their options (at least one).
    pub filters: Vec<(String, SubscriptionOptions)>,
}

/// SUBACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// Packet identifier.
    pub packet_id: u16,
    /// MQTT 5 properties.
    pub properties: Properties,
    /// One code per filter: `Success`/`GrantedQos1`/`GrantedQos2` or a failure.
    pub reasons: Vec<ReasonCode>,
}

/// UNSUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Packet identifier.
    pub packet_id: u16,
    /// MQTT 5 properties.
    pub properties: Properties,
    /// Topic filters (at least one).
    pub filters: Vec<String>,
}

/// UNSUBACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    /// Packet identifier.
    pub packet_id: u16,
    /// MQTT 5 properties.
    pub properties: Properties,
    /// One code per filter (MQTT 5); empty for 3.1.1.
    pub reasons: Vec<ReasonCode>,
}

/// DISCONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    /// Reason code (`Success` = normal disconnection; always `Success` in 3.1.1).
    pub reason: ReasonCode,
    /// MQTT 5 properties (session expiry, reason string, server reference).
    pub properties: Properties,
}

/// AUTH (MQTT 5 only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// Reason code.
    pub reason: ReasonCode,
    /// Properties (authentication method and data).
    pub properties: Properties,
}
