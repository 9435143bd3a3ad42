//! Packet decoding and encoding.

use bytes::{BufMut, Bytes, BytesMut};

use super::properties::PropCtx;
use super::wire::{Reader, peek_vbi, put_binary, put_str, put_vbi};
use super::*;
use crate::error::ReasonCtx;
use crate::{DecodeError, EncodeError, ReasonCode};

fn packet_id(r: &mut Reader) -> Result<u16, DecodeError> {
    match r.u16()? {
        0 => Err(DecodeError::Malformed("packet identifier 0")),
        id => Ok(id),
    }
}

fn reason(r: &mut Reader, ctx: ReasonCtx) -> Result<ReasonCode, DecodeError> {
    let v = r.u8()?;
    match ReasonCode::from_u8(v) {
        Some(c) if c.allowed_in(ctx) => Ok(c),
        _ => Err(DecodeError::Malformed(
            "reason code not valid for this packet",
        )),
    }
}

fn finish(r: &Reader) -> Result<(), DecodeError> {
    if r.is_empty() {
        Ok(())
    } else {
        Err(DecodeError::Malformed(
            "unexpected bytes at the end of the packet",
        ))
    }
}

fn topic_name(s: &str) -> Result<(), DecodeError> {
    if s.contains(['+', '#']) {
        return Err(DecodeError::TopicNameInvalid("wildcard in a topic name"));
    }
    Ok(())
}

/// `Reason + properties` tail shared by PUBACK..PUBCOMP (v5), DISCONNECT and AUTH: an empty
/// tail means Success, a lone reason code means no properties.
fn reason_tail(
    r: &mut Reader,
    rctx: ReasonCtx,
    pctx: PropCtx,
) -> Result<(ReasonCode, Properties), DecodeError> {
    if r.is_empty() {
        return Ok((ReasonCode::Success, Properties::default()));
    }
    let code = reason(r, rctx)?;
    let props = if r.is_empty() {
        Properties::default()
    } else {
        Properties::decode(r, pctx)?
    };
    finish(r)?;
    Ok((code, props))
}

fn decode_connect(r: &mut Reader) -> Result<Connect, DecodeError> {
    let name = r.binary()?;
    let level = r.u8()?;
    let protocol = match (&name[..], level) {
        (b"MQTT", 4) => ProtocolVersion::V311,
        (b"MQTT", 5) => ProtocolVersion::V5,
        (b"MQTT", l) | (b"MQIsdp", l) => return Err(DecodeError::UnsupportedProtocolVersion(l)),
        _ => return Err(DecodeError::Protocol("protocol name is not \"MQTT\"")),
    };
    let v5 = protocol == ProtocolVersion::V5;
    let flags = r.u8()?;
    if flags & 0x01 != 0 {
        return Err(DecodeError::Malformed("reserved CONNECT flag set"));
    }
    let clean_start = flags & 0x02 != 0;
    let will_flag = flags & 0x04 != 0;
    let will_qos = (flags >> 3) & 0x03;
    let will_retain = flags & 0x20 != 0;
    let password_flag = flags & 0x40 != 0;
    let username_flag = flags & 0x80 != 0;
    if !will_flag && (will_qos != 0 || will_retain) {
        return Err(DecodeError::Malformed(
            "will QoS or retain set without a will",
        ));
    }
    let will_qos = QoS::from_u8(will_qos).ok_or(DecodeError::Malformed("will QoS 3"))?;
    if !v5 && password_flag && !username_flag {
        return Err(DecodeError::Malformed("password without user name"));
    }
    let keep_alive = r.u16()?;
    let properties = if v5 {
        Properties::decode(r, PropCtx::Connect)?
    } else {
        Properties::default()
    };
    let client_id = r.utf8()?;
    let will = if will_flag {
        let properties = if v5 {
            Properties::decode(r, PropCtx::Will)?
        } else {
            Properties::default()
        };
        let topic = r.utf8()?;
        if topic.is_empty() {
            return Err(DecodeError::TopicNameInvalid("empty will topic"));
        }
        topic_name(&topic)?;
        let payload = r.binary()?;
        Some(Will {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
            properties,
        })
    } else {
        None
    };
    let username = if username_flag { Some(r.utf8()?) } else { None };
    let password = if password_flag {
        Some(r.binary()?)
    } else {
        None
    };
    finish(r)?;
    Ok(Connect {
        protocol,
        clean_start,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    })
}

fn decode_publish(flags: u8, r: &mut Reader, v5: bool) -> Result<Publish, DecodeError> {
    let dup = flags & 0x08 != 0;
    let qos = QoS::from_u8((flags >> 1) & 0x03).ok_or(DecodeError::Malformed("PUBLISH QoS 3"))?;
    let retain = flags & 0x01 != 0;
    if dup && qos == QoS::AtMostOnce {
        return Err(DecodeError::Malformed("DUP set on a QoS 0 PUBLISH"));
    }
    let topic = r.utf8()?;
    if topic.is_empty() && !v5 {
        return Err(DecodeError::TopicNameInvalid("empty topic name"));
    }
    topic_name(&topic)?;
    let packet_id = if qos == QoS::AtMostOnce {
        None
    } else {
        Some(packet_id(r)?)
    };
    let properties = if v5 {
        Properties::decode(r, PropCtx::Publish)?
    } else {
        Properties::default()
    };
    Ok(Publish {
        dup,
        qos,
        retain,
        topic,
        packet_id,
        properties,
        payload: r.rest(),
    })
}

fn decode_body(
    ptype: u8,
    flags: u8,
    body: Bytes,
    version: Option<ProtocolVersion>,
) -> Result<Packet, DecodeError> {
    let expected_flags = match ptype {
        3 => flags,
        6 | 8 | 10 => 0b0010,
        _ => 0,
    };
    if flags != expected_flags {
        return Err(DecodeError::Malformed(
            "reserved fixed-header flags are wrong",
        ));
    }
    let mut r = Reader::new(body);
    if ptype == 1 {
        return Ok(Packet::Connect(Box::new(decode_connect(&mut r)?)));
    }
    let Some(version) = version else {
        return Err(DecodeError::Protocol("the first packet must be CONNECT"));
    };
    let v5 = version == ProtocolVersion::V5;
    let r = &mut r;
    let packet = match ptype {
        2 => {
            let ack_flags = r.u8()?;
            if ack_flags & 0xFE != 0 {
                return Err(DecodeError::Malformed("reserved CONNACK flags set"));
            }
            let session_present = ack_flags & 1 != 0;
            let code = r.u8()?;
            let reason = if v5 {
                ReasonCode::from_u8(code)
                    .filter(|c| c.allowed_in(ReasonCtx::ConnAck))
                    .ok_or(DecodeError::Malformed("reason code not valid for CONNACK"))?
            } else {
                ReasonCode::from_v3_connack(code)
                    .ok_or(DecodeError::Malformed("CONNACK return code above 5"))?
            };
            if session_present && reason != ReasonCode::Success {
                return Err(DecodeError::Protocol(
                    "session present set in a refusing CONNACK",
                ));
            }
            let properties = if v5 {
                Properties::decode(r, PropCtx::ConnAck)?
            } else {
                Properties::default()
            };
            finish(r)?;
            Packet::ConnAck(ConnAck {
                session_present,
                reason,
                properties,
            })
        }
        3 => Packet::Publish(decode_publish(flags, r, v5)?),
        4..=7 => {
            let packet_id = packet_id(r)?;
            let (reason, properties) = if v5 {
                let rctx = if ptype <= 5 {
                    ReasonCtx::PubAckRec
                } else {
                    ReasonCtx::PubRelComp
                };
                reason_tail(r, rctx, PropCtx::PubResp)?
            } else {
                finish(r)?;
                (ReasonCode::Success, Properties::default())
            };
            let resp = PubResp {
                packet_id,
                reason,
                properties,
            };
            match ptype {
                4 => Packet::PubAck(resp),
                5 => Packet::PubRec(resp),
                6 => Packet::PubRel(resp),
                _ => Packet::PubComp(resp),
            }
        }
        8 => {
            let packet_id = packet_id(r)?;
            let properties = if v5 {
                Properties::decode(r, PropCtx::Subscribe)?
            } else {
                Properties::default()
            };
            let mut filters = Vec::new();
            while !r.is_empty() {
                let filter = r.utf8()?;
                if filter.is_empty() {
                    return Err(DecodeError::Protocol("empty topic filter"));
                }
                let o = r.u8()?;
                let reserved = if v5 { 0xC0 } else { 0xFC };
                if o & reserved != 0 {
                    return Err(DecodeError::Malformed(
                        "reserved subscription option bits set",
                    ));
                }
                let qos =
                    QoS::from_u8(o & 0x03).ok_or(DecodeError::Malformed("subscription QoS 3"))?;
                let retain_handling = match (o >> 4) & 0x03 {
                    0 => RetainHandling::SendAtSubscribe,
                    1 => RetainHandling::SendIfNew,
                    2 => RetainHandling::DoNotSend,
                    _ => return Err(DecodeError::Protocol("retain handling 3")),
                };
                filters.push((
                    filter,
                    SubscriptionOptions {
                        qos,
                        no_local: o & 0x04 != 0,
                        retain_as_published: o & 0x08 != 0,
                        retain_handling,
                    },
                ));
            }
            if filters.is_empty() {
                return Err(DecodeError::Protocol("SUBSCRIBE without a topic filter"));
            }
            Packet::Subscribe(Subscribe {
                packet_id,
                properties,
                filters,
            })
        }
        9 => {
            let packet_id = packet_id(r)?;
            let properties = if v5 {
                Properties::decode(r, PropCtx::SubAck)?
            } else {
                Properties::default()
            };
            let mut reasons = Vec::new();
            while !r.is_empty() {
                let v = r.u8()?;
                let code = if v5 {
                    ReasonCode::from_u8(v).filter(|c| c.allowed_in(ReasonCtx::SubAck))
                } else {
                    match v {
                        0..=2 | 0x80 => ReasonCode::from_u8(v),
                        _ => None,
                    }
                };
                reasons.push(code.ok_or(DecodeError::Malformed("invalid SUBACK return code"))?);
            }
            if reasons.is_empty() {
                return Err(DecodeError::Protocol("SUBACK without a return code"));
            }
            Packet::SubAck(SubAck {
                packet_id,
                properties,
                reasons,
            })
        }
        10 => {
            let packet_id = packet_id(r)?;
            let properties = if v5 {
                Properties::decode(r, PropCtx::Unsubscribe)?
            } else {
                Properties::default()
            };
            let mut filters = Vec::new();
            while !r.is_empty() {
                let filter = r.utf8()?;
                if filter.is_empty() {
                    return Err(DecodeError::Protocol("empty topic filter"));
                }
                filters.push(filter);
            }
            if filters.is_empty() {
                return Err(DecodeError::Protocol("UNSUBSCRIBE without a topic filter"));
            }
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                properties,
                filters,
            })
        }
        11 => {
            let packet_id = packet_id(r)?;
            let mut reasons = Vec::new();
            let properties = if v5 {
                let p = Properties::decode(r, PropCtx::UnsubAck)?;
                while !r.is_empty() {
                    reasons.push(reason(r, ReasonCtx::UnsubAck)?);
                }
                if reasons.is_empty() {
                    return Err(DecodeError::Protocol("UNSUBACK without a reason code"));
                }
                p
            } else {
                finish(r)?;
                Properties::default()
            };
            Packet::UnsubAck(UnsubAck {
                packet_id,
                properties,
                reasons,
            })
        }
        12 | 13 => {
            finish(r)?;
            if ptype == 12 {
                Packet::PingReq
            } else {
                Packet::PingResp
            }
        }
        14 => {
            let (reason, properties) = if v5 {
                reason_tail(r, ReasonCtx::Disconnect, PropCtx::Disconnect)?
            } else {
                finish(r)?;
                (ReasonCode::Success, Properties::default())
            };
            Packet::Disconnect(Disconnect { reason, properties })
        }
        15 if v5 => {
            let (reason, properties) = reason_tail(r, ReasonCtx::Auth, PropCtx::Auth)?;
            Packet::Auth(Auth { reason, properties })
        }
        _ => return Err(DecodeError::Malformed("reserved packet type")),
    };
    Ok(packet)
}

impl Packet {
    /// Decodes exactly one complete packet from `bytes` (fixed header included).
    ///
    /// `version` is the connection's protocol version; `None` before CONNECT, in which case
    /// only CONNECT is accepted (it carries its own version).
    pub fn decode(bytes: Bytes, version: Option<ProtocolVersion>) -> Result<Packet, DecodeError> {
        let Some(&first) = bytes.first() else {
            return Err(DecodeError::Malformed("empty packet"));
        };
        let rest = bytes.get(1..).unwrap_or_default();
        let Some((len, n)) = peek_vbi(rest)? else {
            return Err(DecodeError::Malformed("incomplete fixed header"));
        };
        if rest.len() != n + len as usize {
            return Err(DecodeError::Malformed("remaining length does not match"));
        }
        decode_body(first >> 4, first & 0x0F, bytes.slice(1 + n..), version)
    }

    /// Appends the encoded packet to `buf`.
    ///
    /// CONNECT is encoded in its own `protocol`; every other packet in `version`. Fields
    /// that do not exist in 3.1.1 (properties, reason codes other than the 3.1.1 return
    /// codes) are not written for 3.1.1.
    pub fn encode(&self, version: ProtocolVersion, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let v5 = version == ProtocolVersion::V5;
        let mut b = BytesMut::new();
        let header: u8 = match self {
            Packet::Connect(c) => {
                let v5 = c.protocol == ProtocolVersion::V5;
                put_str(&mut b, "MQTT")?;
                b.put_u8(c.protocol.level());
                let mut flags = 0u8;
                if c.clean_start {
                    flags |= 0x02;
                }
                if let Some(w) = &c.will {
                    flags |= 0x04 | ((w.qos as u8) << 3);
                    if w.retain {
                        flags |= 0x20;
                    }
                }
                if c.password.is_some() {
                    if !v5 && c.username.is_none() {
                        return Err(EncodeError::Invalid("3.1.1 password without user name"));
                    }
                    flags |= 0x40;
                }
                if c.username.is_some() {
                    flags |= 0x80;
                }
                b.put_u8(flags);
                b.put_u16(c.keep_alive);
                if v5 {
                    c.properties.encode(&mut b)?;
                }
                put_str(&mut b, &c.client_id)?;
                if let Some(w) = &c.will {
                    if v5 {
                        w.properties.encode(&mut b)?;
                    }
                    put_str(&mut b, &w.topic)?;
                    put_binary(&mut b, &w.payload)?;
                }
                if let Some(u) = &c.username {
                    put_str(&mut b, u)?;
                }
                if let Some(p) = &c.password {
                    put_binary(&mut b, p)?;
                }
                0x10
            }
            Packet::ConnAck(a) => {
                b.put_u8(u8::from(a.session_present));
                if v5 {
                    b.put_u8(a.reason.as_u8());
                    a.properties.encode(&mut b)?;
                } else {
                    b.put_u8(a.reason.to_v3_connack());
                }
                0x20
            }
            Packet::Publish(p) => {
                put_str(&mut b, &p.topic)?;
                match (p.qos, p.packet_id) {
                    (QoS::AtMostOnce, _) => {}
                    (_, Some(id)) if id != 0 => b.put_u16(id),
                    _ => return Err(EncodeError::Invalid("QoS > 0 PUBLISH without packet id")),
                }
                if v5 {
                    p.properties.encode(&mut b)?;
                }
                b.put_slice(&p.payload);
                0x30 | (u8::from(p.dup) << 3) | ((p.qos as u8) << 1) | u8::from(p.retain)
            }
            Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
                b.put_u16(r.packet_id);
                if v5 && (r.reason != ReasonCode::Success || !r.properties.is_empty()) {
                    b.put_u8(r.reason.as_u8());
                    if !r.properties.is_empty() {
                        r.properties.encode(&mut b)?;
                    }
                }
                match self {
                    Packet::PubAck(_) => 0x40,
                    Packet::PubRec(_) => 0x50,
                    Packet::PubRel(_) => 0x62,
                    _ => 0x70,
                }
            }
            Packet::Subscribe(s) => {
                b.put_u16(s.packet_id);
                if v5 {
                    s.properties.encode(&mut b)?;
                }
                for (f, o) in &s.filters {
                    put_str(&mut b, f)?;
                    let mut byte = o.qos as u8;
                    if v5 {
                        byte |= (u8::from(o.no_local) << 2)
                            | (u8::from(o.retain_as_published) << 3)
                            | ((o.retain_handling as u8) << 4);
                    }
                    b.put_u8(byte);
                }
                0x82
            }
            Packet::SubAck(s) => {
                b.put_u16(s.packet_id);
                if v5 {
                    s.properties.encode(&mut b)?;
                }
                for r in &s.reasons {
                    b.put_u8(if v5 { r.as_u8() } else { r.to_v3_suback() });
                }
                0x90
            }
            Packet::Unsubscribe(u) => {
                b.put_u16(u.packet_id);
                if v5 {
                    u.properties.encode(&mut b)?;
                }
                for f in &u.filters {
                    put_str(&mut b, f)?;
                }
                0xA2
            }
            Packet::UnsubAck(u) => {
                b.put_u16(u.packet_id);
                if v5 {
                    u.properties.encode(&mut b)?;
                    for r in &u.reasons {
                        b.put_u8(r.as_u8());
                    }
                }
                0xB0
            }
            Packet::PingReq => 0xC0,
            Packet::PingResp => 0xD0,
            Packet::Disconnect(d) => {
                if v5 && (d.reason != ReasonCode::Success || !d.properties.is_empty()) {
                    b.put_u8(d.reason.as_u8());
                    if !d.properties.is_empty() {
                        d.properties.encode(&mut b)?;
                    }
                }
                0xE0
            }
            Packet::Auth(a) => {
                if !v5 {
                    return Err(EncodeError::NotInVersion("AUTH"));
                }
                if a.reason != ReasonCode::Success || !a.properties.is_empty() {
                    b.put_u8(a.reason.as_u8());
                    if !a.properties.is_empty() {
                        a.properties.encode(&mut b)?;
                    }
                }
                0xF0
            }
        };
        buf.reserve(b.len() + 5);
        buf.put_u8(header);
        put_vbi(buf, b.len())?;
        buf.put_slice(&b);
        Ok(())
    }

    /// Encodes into a fresh buffer.
    pub fn to_bytes(&self, version: ProtocolVersion) -> Result<Bytes, EncodeError> {
        let mut buf = BytesMut::new();
        self.encode(version, &mut buf)?;
        Ok(buf.freeze())
    }
}

/// Incremental decoder: [`feed`](Decoder::feed) bytes as they arrive, then call
/// [`decode`](Decoder::decode) until it returns `Ok(None)` ("need more").
///
/// The maximum packet size is checked against the size announced in the fixed header, so an
/// oversize packet is refused after at most 5 bytes, never buffered. The protocol version is
/// learned from CONNECT (or preset with [`Decoder::new`]). After an error the decoder keeps
/// returning that error: the connection must be closed.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    version: Option<ProtocolVersion>,
    max_packet_size: u32,
    error: Option<DecodeError>,
}

impl Decoder {
    /// A decoder for a connection of `version` (`None` before CONNECT) that refuses packets
    /// larger than `max_packet_size` bytes (whole packet, fixed header included).
    pub fn new(version: Option<ProtocolVersion>, max_packet_size: u32) -> Self {
        Decoder {
            buf: BytesMut::new(),
            version,
            max_packet_size,
            error: None,
        }
    }

    /// The protocol version in use, once known.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.version
    }

    /// Appends received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Number of bytes buffered but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete packet, `Ok(None)` if more bytes are needed.
    pub fn decode(&mut self) -> Result<Option<Packet>, DecodeError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let r = self.decode_inner();
        if let Err(e) = &r {
            self.error = Some(e.clone());
        }
        r
    }

    fn decode_inner(&mut self) -> Result<Option<Packet>, DecodeError> {
        let Some(&first) = self.buf.first() else {
            return Ok(None);
        };
        let rest = self.buf.get(1..).unwrap_or_default();
        let Some((len, n)) = peek_vbi(rest)? else {
            return Ok(None);
        };
        let total = 1 + n + len as usize;
        if total > self.max_packet_size as usize {
            return Err(DecodeError::PacketTooLarge {
                size: total,
                max: self.max_packet_size,
            });
        }
        if self.buf.len() < total {
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        let mut packet = self.buf.split_to(total).freeze();
        if self.buf.is_empty() {
            // Let go of the allocation the packet was split from (it lives on in the packet only), so a
            // connection waiting for its next packet holds no buffer.
            self.buf = BytesMut::new();
        }
        let body = packet.split_off(1 + n);
        let p = decode_body(first >> 4, first & 0x0F, body, self.version)?;
        if let (Packet::Connect(c), None) = (&p, self.version) {
            self.version = Some(c.protocol);
        }
        Ok(Some(p))
    }
}
