//! Persistent session state that outlives a connection.
//!
//! A [`Session`] is plain data plus logic: subscriptions, outbound QoS 1 messages in flight
//! (sent, awaiting PUBACK) and queued (not yet sent), and the expiry bookkeeping. While a
//! client is connected its [`ServerConnection`](crate::server::ServerConnection) owns the
//! session; when the connection closes the gateway takes it back
//! ([`take_session`](crate::server::ServerConnection::take_session)), keeps it in a map keyed
//! by client id, feeds it offline messages with [`Session::enqueue`], drops it once
//! [`Session::is_expired`], and hands it to the next connection with the same client id.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;

use crate::packet::{Properties, QoS, SubscriptionOptions};

/// An application message to deliver to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Topic name.
    pub topic: String,
    /// Payload.
    pub payload: Bytes,
    /// Delivery QoS (the router has already applied min(message QoS, granted QoS);
    /// QoS 2 is downgraded to 1).
    pub qos: QoS,
    /// RETAIN flag as delivered.
    pub retain: bool,
    /// MQTT 5 properties to send (subscription identifiers, user properties, ...).
    pub properties: Properties,
}

/// One stored subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscription {
    /// Options, with the granted QoS.
    pub options: SubscriptionOptions,
    /// MQTT 5 subscription identifier, if the SUBSCRIBE carried one.
    pub subscription_id: Option<u32>,
}

/// Session expiry value meaning "never expires" (MQTT 5 0xFFFFFFFF).
pub const NEVER_EXPIRES: u32 = u32::MAX;

/// Persistent session state for one client id.
#[derive(Debug, Clone)]
pub struct Session {
    client_id: String,
    subscriptions: BTreeMap<String, Subscription>,
    pub(crate) inflight: VecDeque<(u16, Message)>,
    pub(crate) queue: VecDeque<Message>,
    max_queued: usize,
    dropped: u64,
    next_packet_id: u16,
    pub(crate) expiry_interval: u32,
    pub(crate) disconnected_at: Option<Duration>,
}

impl Session {
    /// A fresh, empty session that keeps at most `max_queued` undelivered QoS 1 messages.
    pub fn new(client_id: impl Into<String>, max_queued: usize) -> Self {
        Session {
            client_id: client_id.into(),
            subscriptions: BTreeMap::new(),
            inflight: VecDeque::new(),
            queue: VecDeque::new(),
            max_queued,
            dropped: 0,
            next_packet_id: 1,
            expiry_interval: 0,
            disconnected_at: None,
        }
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The subscriptions, by filter.
    pub fn subscriptions(&self) -> &BTreeMap<String, Subscription> {
        &self.subscriptions
    }

    pub(crate) fn subscriptions_mut(&mut self) -> &mut BTreeMap<String, Subscription> {
        &mut self.subscriptions
    }

    /// Queues a message for later delivery (typically while the client is offline).
    /// QoS 0 messages are not kept (returns `false`); for QoS ≥ 1, when the queue is full the
    /// oldest queued message is dropped and counted in [`Session::dropped_count`].
    pub fn enqueue(&mut self, mut msg: Message) -> bool {
        if msg.qos == QoS::AtMostOnce || self.max_queued == 0 {
            if msg.qos != QoS::AtMostOnce {
                self.dropped += 1;
            }
            return false;
        }
        msg.qos = QoS::AtLeastOnce;
        while self.queue.len() >= self.max_queued {
            self.queue.pop_front();
            self.dropped += 1;
        }
        self.queue.push_back(msg);
        true
    }

    /// Messages queued and not yet sent.
    pub fn queued_len(&self) -> usize {
        self.queue.len()
    }

    /// Messages sent and awaiting PUBACK (redelivered with DUP=1 on resume).
    pub fn inflight_len(&self) -> usize {
        self.inflight.len()
    }

    /// Messages dropped because the queue was full.
    pub fn dropped_count(&self) -> u64 {
        self.dropped
    }

    /// Session expiry interval in seconds ([`NEVER_EXPIRES`] = never), as negotiated at
    /// CONNECT and possibly updated by an MQTT 5 DISCONNECT.
    pub fn expiry_interval(&self) -> u32 {
        self.expiry_interval
    }

    /// When the session expires: `None` while a connection holds it or if it never expires.
    pub fn expires_at(&self) -> Option<Duration> {
        let at = self.disconnected_at?;
        if self.expiry_interval == NEVER_EXPIRES {
            return None;
        }
        Some(at + Duration::from_secs(u64::from(self.expiry_interval)))
    }

    /// True once the session has been disconnected for its whole expiry interval.
    pub fn is_expired(&self, now: Duration) -> bool {
        self.expires_at().is_some_and(|at| now >= at)
    }

    /// Forgets all state (used when a connection starts without a present session).
    pub(crate) fn clear(&mut self) {
        self.subscriptions.clear();
        self.inflight.clear();
        self.queue.clear();
        self.next_packet_id = 1;
    }

    /// Allocates a packet id not in flight.
    pub(crate) fn alloc_packet_id(&mut self) -> u16 {
        loop {
            let id = self.next_packet_id;
            self.next_packet_id = self.next_packet_id.checked_add(1).unwrap_or(1);
            if id != 0 && !self.inflight.iter().any(|(i, _)| *i == id) {
                return id;
            }
        }
    }

    /// Removes an in-flight message on PUBACK; false if the id is unknown.
    pub(crate) fn ack(&mut self, packet_id: u16) -> bool {
        match self.inflight.iter().position(|(i, _)| *i == packet_id) {
            Some(pos) => {
                self.inflight.remove(pos);
                true
            }
            None => false,
        }
    }
}
