//! MQTT 5 properties (MQTT 5 §2.2.2).

use bytes::{BufMut, Bytes, BytesMut};

use super::QoS;
use super::wire::{Reader, VBI_MAX, put_binary, put_str, put_vbi};
use crate::{DecodeError, EncodeError};

/// The MQTT 5 properties of a packet or will. Every field is optional; which ones a packet
/// may carry is checked by the decoder (a property not allowed in a packet is malformed,
/// a duplicate one a protocol error). 3.1.1 packets always have empty properties.
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    /// 0x01: true = payload is UTF-8.
    pub payload_format_indicator: Option<bool>,
    /// 0x02, seconds.
    pub message_expiry_interval: Option<u32>,
    /// 0x03.
    pub content_type: Option<String>,
    /// 0x08 (a topic name).
    pub response_topic: Option<String>,
    /// 0x09.
    pub correlation_data: Option<Bytes>,
    /// 0x0B: one in SUBSCRIBE, any number in PUBLISH; 1..=268,435,455.
    pub subscription_identifiers: Vec<u32>,
    /// 0x11, seconds.
    pub session_expiry_interval: Option<u32>,
    /// 0x12.
    pub assigned_client_identifier: Option<String>,
    /// 0x13, seconds.
    pub server_keep_alive: Option<u16>,
    /// 0x15.
    pub authentication_method: Option<String>,
    /// 0x16.
    pub authentication_data: Option<Bytes>,
    /// 0x17.
    pub request_problem_information: Option<bool>,
    /// 0x18, seconds.
    pub will_delay_interval: Option<u32>,
    /// 0x19.
    pub request_response_information: Option<bool>,
    /// 0x1A.
    pub response_information: Option<String>,
    /// 0x1C.
    pub server_reference: Option<String>,
    /// 0x1F: human-readable diagnostic.
    pub reason_string: Option<String>,
    /// 0x21: non-zero.
    pub receive_maximum: Option<u16>,
    /// 0x22.
    pub topic_alias_maximum: Option<u16>,
    /// 0x23: non-zero.
    pub topic_alias: Option<u16>,
    /// 0x24: 0 or 1.
    pub maximum_qos: Option<QoS>,
    /// 0x25.
    pub retain_available: Option<bool>,
    /// 0x26, in order.
    pub user_properties: Vec<(String, String)>,
    /// 0x27: non-zero.
    pub maximum_packet_size: Option<u32>,
    /// 0x28.
    pub wildcard_subscription_available: Option<bool>,
    /// 0x29.
    pub subscription_identifier_available: Option<bool>,
    /// 0x2A.
    pub shared_subscription_available: Option<bool>,
}

/// Where a property block appears; decides which identifiers are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PropCtx {
    Connect,
    Will,
    ConnAck,
    Publish,
    PubResp,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

fn allowed(id: u8, ctx: PropCtx) -> bool {
    use PropCtx::*;
    match id {
        0x01..=0x03 | 0x08 | 0x09 => matches!(ctx, Publish | Will),
        0x0B => matches!(ctx, Publish | Subscribe),
        0x11 => matches!(ctx, Connect | ConnAck | Disconnect),
        0x12 | 0x13 | 0x1A | 0x24 | 0x25 | 0x28..=0x2A => ctx == ConnAck,
        0x15 | 0x16 => matches!(ctx, Connect | ConnAck | Auth),
        0x17 | 0x19 => ctx == Connect,
        0x18 => ctx == Will,
        0x1C => matches!(ctx, ConnAck | Disconnect),
        0x1F => matches!(
            ctx,
            ConnAck | PubResp | SubAck | UnsubAck | Disconnect | Auth
        ),
        0x21 | 0x22 | 0x27 => matches!(ctx, Connect | ConnAck),
        0x23 => ctx == Publish,
        0x26 => true,
        _ => false,
    }
}

fn set_once<T>(slot: &mut Option<T>, v: T) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::Protocol("property included more than once"));
    }
    *slot = Some(v);
    Ok(())
}

fn flag(r: &mut Reader) -> Result<bool, DecodeError> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::Protocol("boolean property is not 0 or 1")),
    }
}

impl Properties {
    /// True when no property is set.
    pub fn is_empty(&self) -> bool {
        *self == Properties::default()
    }

    /// Reads a property length and the properties that follow.
    pub(crate) fn decode(r: &mut Reader, ctx: PropCtx) -> Result<Properties, DecodeError> {
        let len = r.vbi()? as usize;
        let mut r = r.sub(len)?;
        let mut p = Properties::default();
        while !r.is_empty() {
            let id = r.vbi()?;
            let id = u8::try_from(id)
                .map_err(|_| DecodeError::Malformed("unknown property identifier"))?;
            if !allowed(id, ctx) {
                return Err(DecodeError::Malformed(
                    "property identifier not valid for this packet",
                ));
            }
            match id {
                0x01 => set_once(&mut p.payload_format_indicator, flag(&mut r)?)?,
                0x02 => set_once(&mut p.message_expiry_interval, r.u32()?)?,
                0x03 => set_once(&mut p.content_type, r.utf8()?)?,
                0x08 => {
                    let t = r.utf8()?;
                    if t.is_empty() || t.contains(['+', '#']) {
                        return Err(DecodeError::Protocol("response topic is not a topic name"));
                    }
                    set_once(&mut p.response_topic, t)?
                }
                0x09 => set_once(&mut p.correlation_data, r.binary()?)?,
                0x0B => {
                    let v = r.vbi()?;
                    if v == 0 {
                        return Err(DecodeError::Protocol("subscription identifier 0"));
                    }
                    if ctx == PropCtx::Subscribe && !p.subscription_identifiers.is_empty() {
                        return Err(DecodeError::Protocol(
                            "more than one subscription identifier in SUBSCRIBE",
                        ));
                    }
                    p.subscription_identifiers.push(v);
                }
                0x11 => set_once(&mut p.session_expiry_interval, r.u32()?)?,
                0x12 => set_once(&mut p.assigned_client_identifier, r.utf8()?)?,
                0x13 => set_once(&mut p.server_keep_alive, r.u16()?)?,
                0x15 => set_once(&mut p.authentication_method, r.utf8()?)?,
                0x16 => set_once(&mut p.authentication_data, r.binary()?)?,
                0x17 => set_once(&mut p.request_problem_information, flag(&mut r)?)?,
                0x18 => set_once(&mut p.will_delay_interval, r.u32()?)?,
                0x19 => set_once(&mut p.request_response_information, flag(&mut r)?)?,
                0x1A => set_once(&mut p.response_information, r.utf8()?)?,
                0x1C => set_once(&mut p.server_reference, r.utf8()?)?,
                0x1F => set_once(&mut p.reason_string, r.utf8()?)?,
                0x21 => {
                    let v = r.u16()?;
                    if v == 0 {
                        return Err(DecodeError::Protocol("receive maximum 0"));
                    }
                    set_once(&mut p.receive_maximum, v)?
                }
                0x22 => set_once(&mut p.topic_alias_maximum, r.u16()?)?,
                0x23 => set_once(&mut p.topic_alias, r.u16()?)?,
                0x24 => {
                    let q = match r.u8()? {
                        0 => QoS::AtMostOnce,
                        1 => QoS::AtLeastOnce,
                        _ => return Err(DecodeError::Protocol("maximum QoS is not 0 or 1")),
                    };
                    set_once(&mut p.maximum_qos, q)?
                }
                0x25 => set_once(&mut p.retain_available, flag(&mut r)?)?,
                0x26 => {
                    let k = r.utf8()?;
                    let v = r.utf8()?;
                    p.user_properties.push((k, v));
                }
                0x27 => {
                    let v = r.u32()?;
                    if v == 0 {
                        return Err(DecodeError::Protocol("maximum packet size 0"));
                    }
                    set_once(&mut p.maximum_packet_size, v)?
                }
                0x28 => set_once(&mut p.wildcard_subscription_available, flag(&mut r)?)?,
                0x29 => set_once(&mut p.subscription_identifier_available, flag(&mut r)?)?,
                0x2A => set_once(&mut p.shared_subscription_available, flag(&mut r)?)?,
                _ => return Err(DecodeError::Malformed("unknown property identifier")),
            }
        }
        Ok(p)
    }

    /// Writes the property length followed by the properties, in identifier order.
    pub(crate) fn encode(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let mut b = BytesMut::new();
        fn byte(b: &mut BytesMut, id: u8, v: Option<u8>) {
            if let Some(v) = v {
                b.put_u8(id);
                b.put_u8(v);
            }
        }
        fn u16p(b: &mut BytesMut, id: u8, v: Option<u16>) {
            if let Some(v) = v {
                b.put_u8(id);
                b.put_u16(v);
            }
        }
        fn u32p(b: &mut BytesMut, id: u8, v: Option<u32>) {
            if let Some(v) = v {
                b.put_u8(id);
                b.put_u32(v);
            }
        }
        fn strp(b: &mut BytesMut, id: u8, v: &Option<String>) -> Result<(), EncodeError> {
            if let Some(v) = v {
                b.put_u8(id);
                put_str(b, v)?;
            }
            Ok(())
        }
        fn binp(b: &mut BytesMut, id: u8, v: &Option<Bytes>) -> Result<(), EncodeError> {
            if let Some(v) = v {
                b.put_u8(id);
                put_binary(b, v)?;
            }
            Ok(())
        }
        let bit = |v: Option<bool>| v.map(u8::from);
        byte(&mut b, 0x01, bit(self.payload_format_indicator));
        u32p(&mut b, 0x02, self.message_expiry_interval);
        strp(&mut b, 0x03, &self.content_type)?;
        strp(&mut b, 0x08, &self.response_topic)?;
        binp(&mut b, 0x09, &self.correlation_data)?;
        for &id in &self.subscription_identifiers {
            if id == 0 || id > VBI_MAX {
                return Err(EncodeError::Invalid("subscription identifier out of range"));
            }
            b.put_u8(0x0B);
            put_vbi(&mut b, id as usize)?;
        }
        u32p(&mut b, 0x11, self.session_expiry_interval);
        strp(&mut b, 0x12, &self.assigned_client_identifier)?;
        u16p(&mut b, 0x13, self.server_keep_alive);
        strp(&mut b, 0x15, &self.authentication_method)?;
        binp(&mut b, 0x16, &self.authentication_data)?;
        byte(&mut b, 0x17, bit(self.request_problem_information));
        u32p(&mut b, 0x18, self.will_delay_interval);
        byte(&mut b, 0x19, bit(self.request_response_information));
        strp(&mut b, 0x1A, &self.response_information)?;
        strp(&mut b, 0x1C, &self.server_reference)?;
        strp(&mut b, 0x1F, &self.reason_string)?;
        u16p(&mut b, 0x21, self.receive_maximum);
        u16p(&mut b, 0x22, self.topic_alias_maximum);
        u16p(&mut b, 0x23, self.topic_alias);
        byte(&mut b, 0x24, self.maximum_qos.map(|q| q as u8));
        byte(&mut b, 0x25, bit(self.retain_available));
        for (k, v) in &self.user_properties {
            b.put_u8(0x26);
            put_str(&mut b, k)?;
            put_str(&mut b, v)?;
        }
        u32p(&mut b, 0x27, self.maximum_packet_size);
        byte(&mut b, 0x28, bit(self.wildcard_subscription_available));
        byte(&mut b, 0x29, bit(self.subscription_identifier_available));
        byte(&mut b, 0x2A, bit(self.shared_subscription_available));
        put_vbi(buf, b.len())?;
        buf.put_slice(&b);
        Ok(())
    }
}
