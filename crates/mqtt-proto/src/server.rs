//! The per-connection server-side state machine, sans-IO.
//!
//! Feed received bytes with [`ServerConnection::handle_input`], drain
//! [`poll_event`](ServerConnection::poll_event) and answer the events with the
//! application methods, send what [`poll_transmit`](ServerConnection::poll_transmit)
//! returns, and call [`handle_timeout`](ServerConnection::handle_timeout) at
//! [`poll_timeout`](ServerConnection::poll_timeout). Time is a caller-provided monotonic
//! [`Duration`] since an arbitrary epoch; this module never reads a clock.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use crate::packet::{
    ConnAck, Connect, Decoder, Disconnect, Packet, Properties, ProtocolVersion, PubResp, Publish,
    QoS, SubAck, Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe, Will,
};
use crate::session::{Message, Session, Subscription};
use crate::topic::{check_aws_limits, validate_topic_filter, validate_topic_name};
use crate::{DecodeError, ReasonCode};

/// Protocol limits, each defaulting to the AWS IoT Core value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest packet accepted, whole packet (default 128 KiB payload + 4 KiB for headers).
    /// Advertised to MQTT 5 clients in CONNACK.
    pub max_packet_size: u32,
    /// Largest PUBLISH / will payload (default 128 KiB).
    pub max_payload_size: usize,
    /// Longest client id in bytes (default 128).
    pub max_client_id_len: usize,
    /// Filters accepted per SUBSCRIBE; the rest are refused with 0x97 (default 8).
    pub max_filters_per_subscribe: usize,
    /// Subscriptions per connection/session; excess refused with 0x97 (default 50).
    pub max_subscriptions: usize,
    /// Topic length in bytes, basic-ingest prefix excluded (default 256).
    pub max_topic_len: usize,
    /// `/` separators per topic, basic-ingest prefix excluded (default 7).
    pub max_topic_slashes: usize,
    /// Inbound unacknowledged QoS 1 PUBLISHes allowed (server Receive Maximum, default 100).
    pub receive_maximum: u16,
    /// Outbound in-flight QoS 1 window cap; the window is min(client Receive Maximum, this)
    /// (default 100).
    pub max_inflight: u16,
    /// QoS 1 messages queued per session beyond the in-flight window (default 1000).
    pub max_queued_messages: usize,
    /// Keep-alive floor in seconds: 1..floor is raised to it (default 30).
    pub min_keep_alive: u16,
    /// Keep-alive ceiling in seconds: 0 and above-ceiling become it (default 1200).
    pub max_keep_alive: u16,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_packet_size: 128 * 1024 + 4 * 1024,
            max_payload_size: 128 * 1024,
            max_client_id_len: 128,
            max_filters_per_subscribe: 8,
            max_subscriptions: 50,
            max_topic_len: 256,
            max_topic_slashes: 7,
            receive_maximum: 100,
            max_inflight: 100,
            max_queued_messages: 1000,
            min_keep_alive: 30,
            max_keep_alive: 1200,
        }
    }
}

/// Connection configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Size and count limits.
    pub limits: Limits,
    /// Time allowed between connection start and CONNECT (default 10 s).
    pub connect_timeout: Duration,
    /// Session expiry for MQTT 3.1.1 `cleanSession=0`, seconds (default 3600).
    pub default_session_expiry: u32,
    /// Cap on the MQTT 5 Session Expiry Interval, seconds (default 7 days).
    pub max_session_expiry: u32,
    /// Server Topic Alias Maximum for inbound aliases (default 8; 0 disables aliases).
    pub topic_alias_maximum: u16,
    /// Whether RETAIN is supported (default true).
    pub retain_available: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: Limits::default(),
            connect_timeout: Duration::from_secs(10),
            default_session_expiry: 3600,
            max_session_expiry: 7 * 24 * 3600,
            topic_alias_maximum: 8,
            retain_available: true,
        }
    }
}

/// The keep-alive AWS applies for a requested value: 0 or above the ceiling → ceiling,
/// below the floor → floor.
pub fn effective_keep_alive(requested: u16, limits: &Limits) -> u16 {
    if requested == 0 || requested > limits.max_keep_alive {
        limits.max_keep_alive
    } else {
        requested.max(limits.min_keep_alive)
    }
}

/// Something the application must look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A valid CONNECT: authenticate/authorize, then call
    /// [`ServerConnection::accept_connect`] or [`ServerConnection::reject_connect`].
    /// Input after the CONNECT is held until then.
    Connect(Box<ConnectRequest>),
    /// An inbound PUBLISH, topic alias already resolved and topic validated.
    /// For QoS 1 answer with [`ServerConnection::ack_publish`].
    Publish(Publish),
    /// A SUBSCRIBE: authorize each request that is not already `refused`, then call
    /// [`ServerConnection::grant_subscribe`].
    Subscribe {
        /// Packet identifier to pass back.
        packet_id: u16,
        /// One entry per filter, in order.
        requests: Vec<SubscribeRequest>,
    },
    /// Filters removed from the session by an UNSUBSCRIBE (already acknowledged);
    /// remove them from the router.
    Unsubscribe {
        /// The removed filters.
        filters: Vec<String>,
    },
    /// The connection is closed (emitted exactly once). Flush `poll_transmit`, close the
    /// socket, then take the session back with [`ServerConnection::take_session`].
    Closed(Close),
}

/// The data of a CONNECT, with the values the server will apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    /// The CONNECT packet (its `Debug` redacts the password).
    pub connect: Connect,
    /// Keep-alive the server applies (AWS rule), seconds.
    pub keep_alive: u16,
    /// Session expiry the server applies, seconds (0 = session ends with the connection).
    pub session_expiry: u32,
}

/// One filter of a SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeRequest {
    /// The topic filter.
    pub filter: String,
    /// Options; QoS already capped at 1.
    pub options: SubscriptionOptions,
    /// MQTT 5 subscription identifier.
    pub subscription_id: Option<u32>,
    /// Set when the state machine already refuses this filter (invalid, over a limit); the
    /// application's answer for it is ignored.
    pub refused: Option<ReasonCode>,
}

/// Why a connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCause {
    /// The client sent DISCONNECT.
    ClientDisconnect,
    /// The client broke the protocol (malformed packet, limit, second CONNECT, QoS 2, ...).
    ProtocolError,
    /// No packet within 1.5 × keep-alive.
    KeepAliveTimeout,
    /// No CONNECT within the connect timeout.
    ConnectTimeout,
    /// Another connection took over the client id.
    TakenOver,
    /// The application called [`ServerConnection::disconnect`].
    ServerDisconnect,
    /// The CONNECT was refused (by the state machine or the application).
    ConnectRefused,
    /// The transport was lost ([`ServerConnection::handle_transport_closed`]).
    TransportClosed,
}

/// Details of a closed connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// What happened.
    pub cause: CloseCause,
    /// The MQTT 5 reason code (sent to MQTT 5 clients when the server closed).
    pub reason: ReasonCode,
    /// Human-readable reason for the log.
    pub text: String,
    /// The will message, present only if it must be published (the close was not graceful
    /// and the connection had been accepted). Will Delay Interval is left to the caller.
    pub will: Option<Will>,
}

impl Close {
    /// True for a normal client DISCONNECT (AWS `CLIENT_INITIATED_DISCONNECT`).
    pub fn graceful(&self) -> bool {
        self.cause == CloseCause::ClientDisconnect && self.reason == ReasonCode::Success
    }
}

/// Outcome of [`ServerConnection::send_publish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Written to the transmit buffer.
    Sent,
    /// Kept in the session queue (window full or not connected).
    Queued,
    /// Not delivered (QoS 0 while not connected, larger than the client's maximum packet
    /// size, or no session).
    Dropped,
}

/// Misuse of the application API (never caused by network input).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StateError {
    /// `accept_connect`/`reject_connect` without a pending CONNECT.
    #[error("no CONNECT is awaiting a decision")]
    NoPendingConnect,
    /// The connection is not in the connected state.
    #[error("connection is not connected")]
    NotConnected,
    /// No inbound QoS 1 PUBLISH / SUBSCRIBE with this packet id awaits an answer.
    #[error("unknown packet id {0}")]
    UnknownPacketId(u16),
    /// `grant_subscribe` got a different number of results than requests.
    #[error("expected {expected} subscribe results, got {got}")]
    ResultCount {
        /// Number of requests.
        expected: usize,
        /// Number of results given.
        got: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitConnect,
    AwaitAccept,
    Connected,
    Closed,
}

/// Server side of one MQTT connection. See the module docs.
#[derive(Debug)]
pub struct ServerConnection {
    config: Config,
    state: State,
    decoder: Decoder,
    version: Option<ProtocolVersion>,
    events: VecDeque<Event>,
    out: BytesMut,
    started: Duration,
    last_rx: Duration,
    keep_alive: u16,
    requested_keep_alive: u16,
    client_id: String,
    client_id_assigned: bool,
    will: Option<Will>,
    session_expiry: u32,
    session_expiry_capped: bool,
    session: Option<Session>,
    client_receive_maximum: u16,
    client_max_packet_size: u32,
    inbound_unacked: HashSet<u16>,
    topic_aliases: HashMap<u16, String>,
    pending_subscribes: HashMap<u16, Vec<SubscribeRequest>>,
}

impl ServerConnection {
    /// A connection that has just been accepted at time `now`.
    pub fn new(config: Config, now: Duration) -> Self {
        let decoder = Decoder::new(None, config.limits.max_packet_size);
        ServerConnection {
            config,
            state: State::AwaitConnect,
            decoder,
            version: None,
            events: VecDeque::new(),
            out: BytesMut::new(),
            started: now,
            last_rx: now,
            keep_alive: 0,
            requested_keep_alive: 0,
            client_id: String::new(),
            client_id_assigned: false,
            will: None,
            session_expiry: 0,
            session_expiry_capped: false,
            session: None,
            client_receive_maximum: u16::MAX,
            client_max_packet_size: u32::MAX,
            inbound_unacked: HashSet::new(),
            topic_aliases: HashMap::new(),
            pending_subscribes: HashMap::new(),
        }
    }

    // ----- accessors -----

    /// Protocol version, once CONNECT has been read.
    pub fn protocol(&self) -> Option<ProtocolVersion> {
        self.version
    }

    /// Client id from CONNECT (or assigned at accept).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Keep-alive applied, seconds (0 before CONNECT).
    pub fn keep_alive(&self) -> u16 {
        self.keep_alive
    }

    /// True once closed: flush `poll_transmit`, then close the transport.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// False while waiting for the application to accept a CONNECT (input is held) or once
    /// closed: the driver may stop reading the socket.
    pub fn wants_input(&self) -> bool {
        matches!(self.state, State::AwaitConnect | State::Connected)
    }

    /// The session held by this connection (after `accept_connect`).
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// Takes the session back once the connection is closed (`None` before that).
    pub fn take_session(&mut self) -> Option<Session> {
        if self.state == State::Closed {
            self.session.take()
        } else {
            None
        }
    }

    // ----- driver interface -----

    /// Processes received bytes.
    pub fn handle_input(&mut self, data: &[u8], now: Duration) {
        if self.state == State::Closed {
            return;
        }
        self.decoder.feed(data);
        self.process(now);
    }

    /// The transport closed or failed (AWS `CONNECTION_LOST`; the will is published).
    pub fn handle_transport_closed(&mut self, now: Duration) {
        self.close(
            now,
            CloseCause::TransportClosed,
            ReasonCode::UnspecifiedError,
            "connection lost".into(),
            false,
        );
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        let ev = self.events.pop_front();
        if self.events.is_empty() && self.events.capacity() > 0 {
            // Events are large and rare on an idle connection: hold no queue between them.
            self.events = VecDeque::new();
        }
        ev
    }

    /// Bytes to send, if any (all pending output in one chunk).
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if self.out.is_empty() {
            None
        } else {
            // Taken whole, not split: a split would keep the allocation's spare capacity here, alive for as
            // long as the connection waits for its next packet.
            Some(std::mem::take(&mut self.out).freeze())
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Duration> {
        match self.state {
            State::AwaitConnect => Some(self.started + self.config.connect_timeout),
            State::Connected => Some(self.last_rx + keep_alive_grace(self.keep_alive)),
            State::AwaitAccept | State::Closed => None,
        }
    }

    /// Fires expired timers: the connect timeout and keep-alive (1.5 × keep-alive since the
    /// last inbound packet; closes at exactly that instant, not before).
    pub fn handle_timeout(&mut self, now: Duration) {
        let Some(deadline) = self.poll_timeout() else {
            return;
        };
        if now < deadline {
            return;
        }
        if self.state == State::AwaitConnect {
            self.close(
                now,
                CloseCause::ConnectTimeout,
                ReasonCode::KeepAliveTimeout,
                "no CONNECT received in time".into(),
                false,
            );
        } else {
            let text = format!(
                "no packet received for 1.5 x keep-alive ({} s)",
                self.keep_alive
            );
            self.close(
                now,
                CloseCause::KeepAliveTimeout,
                ReasonCode::KeepAliveTimeout,
                text,
                true,
            );
        }
    }

    // ----- application answers -----

    /// Accepts the pending CONNECT with `session` (a new one, or the stored one for this
    /// client id). If `session_present` is false the session is cleared first. Sends CONNACK,
    /// then redelivers the session's unacknowledged messages with DUP=1, then queued ones.
    /// If the CONNECT had an empty client id (MQTT 5), the session's client id is sent as the
    /// Assigned Client Identifier.
    pub fn accept_connect(
        &mut self,
        mut session: Session,
        session_present: bool,
        now: Duration,
    ) -> Result<(), StateError> {
        if self.state != State::AwaitAccept {
            return Err(StateError::NoPendingConnect);
        }
        if !session_present {
            session.clear();
        }
        session.expiry_interval = self.session_expiry;
        session.disconnected_at = None;
        let v5 = self.version == Some(ProtocolVersion::V5);
        let mut properties = Properties::default();
        if v5 {
            let l = &self.config.limits;
            if self.session_expiry_capped {
                properties.session_expiry_interval = Some(self.session_expiry);
            }
            if self.client_id.is_empty() {
                self.client_id = session.client_id().to_owned();
                self.client_id_assigned = true;
                properties.assigned_client_identifier = Some(self.client_id.clone());
            }
            if self.keep_alive != self.requested_keep_alive {
                properties.server_keep_alive = Some(self.keep_alive);
            }
            if l.receive_maximum != u16::MAX {
                properties.receive_maximum = Some(l.receive_maximum);
            }
            properties.maximum_qos = Some(QoS::AtLeastOnce);
            if !self.config.retain_available {
                properties.retain_available = Some(false);
            }
            properties.maximum_packet_size = Some(l.max_packet_size);
            if self.config.topic_alias_maximum > 0 {
                properties.topic_alias_maximum = Some(self.config.topic_alias_maximum);
            }
            properties.shared_subscription_available = Some(false);
        } else if self.client_id.is_empty() {
            self.client_id = session.client_id().to_owned();
        }
        self.send(&Packet::ConnAck(ConnAck {
            session_present,
            reason: ReasonCode::Success,
            properties,
        }));
        self.state = State::Connected;
        self.last_rx = now;
        // Redeliver unacknowledged messages with their original packet ids and DUP=1.
        let inflight: Vec<(u16, Message)> = session.inflight.iter().cloned().collect();
        self.session = Some(session);
        for (id, msg) in inflight {
            self.transmit_publish(&msg, Some(id), true);
        }
        self.pump();
        self.process(now);
        Ok(())
    }

    /// Refuses the pending CONNECT with `reason` (mapped to a 3.1.1 return code for 3.1.1
    /// clients) and closes the connection.
    pub fn reject_connect(&mut self, reason: ReasonCode, now: Duration) -> Result<(), StateError> {
        if self.state != State::AwaitAccept {
            return Err(StateError::NoPendingConnect);
        }
        self.refuse(now, reason, format!("CONNECT refused: {reason}"));
        Ok(())
    }

    /// Acknowledges an inbound QoS 1 PUBLISH (PUBACK with `reason` for MQTT 5; 3.1.1 PUBACK
    /// has no reason).
    pub fn ack_publish(&mut self, packet_id: u16, reason: ReasonCode) -> Result<(), StateError> {
        if self.state != State::Connected {
            return Err(StateError::NotConnected);
        }
        if !self.inbound_unacked.remove(&packet_id) {
            return Err(StateError::UnknownPacketId(packet_id));
        }
        self.send(&Packet::PubAck(PubResp {
            packet_id,
            reason,
            properties: Properties::default(),
        }));
        Ok(())
    }

    /// Answers a SUBSCRIBE: one result per request (`Success`/`GrantedQos1` to grant,
    /// or a failure such as `NotAuthorized`). Granted QoS is capped at the requested QoS (≤ 1);
    /// requests the state machine refused keep their refusal. Granted filters are stored in
    /// the session. Sends SUBACK.
    pub fn grant_subscribe(
        &mut self,
        packet_id: u16,
        results: &[ReasonCode],
    ) -> Result<(), StateError> {
        if self.state != State::Connected {
            return Err(StateError::NotConnected);
        }
        let Some(requests) = self.pending_subscribes.remove(&packet_id) else {
            return Err(StateError::UnknownPacketId(packet_id));
        };
        if requests.len() != results.len() {
            let err = StateError::ResultCount {
                expected: requests.len(),
                got: results.len(),
            };
            self.pending_subscribes.insert(packet_id, requests);
            return Err(err);
        }
        let mut reasons = Vec::with_capacity(results.len());
        for (req, &res) in requests.iter().zip(results) {
            let code = match (req.refused, res) {
                (Some(r), _) => r,
                (None, ReasonCode::Success | ReasonCode::GrantedQos1 | ReasonCode::GrantedQos2) => {
                    let qos = (res.as_u8()).min(req.options.qos as u8);
                    let granted = if qos == 0 {
                        QoS::AtMostOnce
                    } else {
                        QoS::AtLeastOnce
                    };
                    if let Some(s) = self.session.as_mut() {
                        s.subscriptions_mut().insert(
                            req.filter.clone(),
                            Subscription {
                                options: SubscriptionOptions {
                                    qos: granted,
                                    ..req.options
                                },
                                subscription_id: req.subscription_id,
                            },
                        );
                    }
                    if granted == QoS::AtMostOnce {
                        ReasonCode::Success
                    } else {
                        ReasonCode::GrantedQos1
                    }
                }
                (None, other) if other.is_error() => other,
                (None, _) => ReasonCode::UnspecifiedError,
            };
            reasons.push(code);
        }
        self.send(&Packet::SubAck(SubAck {
            packet_id,
            properties: Properties::default(),
            reasons,
        }));
        Ok(())
    }

    /// Sends an application message to the client. QoS 2 is downgraded to 1. QoS 1 messages
    /// beyond the in-flight window (min(client Receive Maximum, `max_inflight`)) or sent while
    /// not connected are queued in the session.
    pub fn send_publish(&mut self, mut msg: Message) -> Delivery {
        if msg.qos == QoS::ExactlyOnce {
            msg.qos = QoS::AtLeastOnce;
        }
        if self.state != State::Connected {
            return if self.session.as_mut().is_some_and(|s| s.enqueue(msg)) {
                Delivery::Queued
            } else {
                Delivery::Dropped
            };
        }
        if msg.qos == QoS::AtMostOnce {
            return if self.transmit_publish(&msg, None, false) {
                Delivery::Sent
            } else {
                Delivery::Dropped
            };
        }
        let window = self.window();
        let Some(s) = self.session.as_mut() else {
            return Delivery::Dropped;
        };
        if s.inflight.len() < window && s.queue.is_empty() {
            let id = s.alloc_packet_id();
            if self.transmit_publish(&msg, Some(id), false) {
                if let Some(s) = self.session.as_mut() {
                    s.inflight.push_back((id, msg));
                }
                Delivery::Sent
            } else {
                Delivery::Dropped
            }
        } else if s.enqueue(msg) {
            Delivery::Queued
        } else {
            Delivery::Dropped
        }
    }

    /// Closes the connection from the server side (MQTT 5: DISCONNECT with `reason` and
    /// `text` as reason string). The will is published.
    pub fn disconnect(&mut self, reason: ReasonCode, text: &str, now: Duration) {
        if self.state == State::AwaitAccept {
            self.refuse(now, reason, text.to_owned());
            return;
        }
        self.close(
            now,
            CloseCause::ServerDisconnect,
            reason,
            text.to_owned(),
            true,
        );
    }

    /// Closes this connection because a new connection uses the same client id (MQTT 5:
    /// DISCONNECT 0x8E Session taken over). Take the session with `take_session` afterwards
    /// and hand it to the new connection.
    pub fn take_over(&mut self, now: Duration) {
        self.close(
            now,
            CloseCause::TakenOver,
            ReasonCode::SessionTakenOver,
            "another connection uses the same client id".into(),
            true,
        );
    }

    // ----- internals -----

    fn v5(&self) -> bool {
        self.version == Some(ProtocolVersion::V5)
    }

    fn window(&self) -> usize {
        usize::from(
            self.client_receive_maximum
                .min(self.config.limits.max_inflight),
        )
    }

    /// Encodes into the transmit buffer; false if it could not be encoded or exceeds the
    /// client's maximum packet size.
    fn send(&mut self, p: &Packet) -> bool {
        let version = self.version.unwrap_or(ProtocolVersion::V311);
        let mut buf = BytesMut::new();
        if p.encode(version, &mut buf).is_err() || buf.len() > self.client_max_packet_size as usize
        {
            return false;
        }
        self.out.extend_from_slice(&buf);
        true
    }

    fn transmit_publish(&mut self, msg: &Message, packet_id: Option<u16>, dup: bool) -> bool {
        self.send(&Packet::Publish(Publish {
            dup,
            qos: msg.qos,
            retain: msg.retain,
            topic: msg.topic.clone(),
            packet_id,
            properties: msg.properties.clone(),
            payload: msg.payload.clone(),
        }))
    }

    /// Moves queued messages into the in-flight window.
    fn pump(&mut self) {
        let window = self.window();
        while self.state == State::Connected {
            let Some(s) = self.session.as_mut() else {
                return;
            };
            if s.inflight.len() >= window {
                return;
            }
            let Some(msg) = s.queue.pop_front() else {
                return;
            };
            let id = s.alloc_packet_id();
            if self.transmit_publish(&msg, Some(id), false)
                && let Some(s) = self.session.as_mut()
            {
                s.inflight.push_back((id, msg));
            }
        }
    }

    fn process(&mut self, now: Duration) {
        while matches!(self.state, State::AwaitConnect | State::Connected) {
            match self.decoder.decode() {
                Ok(None) => break,
                Ok(Some(p)) => {
                    self.last_rx = now;
                    self.on_packet(p, now);
                }
                Err(e) => {
                    self.on_decode_error(e, now);
                    break;
                }
            }
        }
    }

    fn on_decode_error(&mut self, e: DecodeError, now: Duration) {
        let text = e.to_string();
        if self.state == State::AwaitConnect {
            if let DecodeError::UnsupportedProtocolVersion(_) = e {
                // MQTT 3.1.1 §3.1.2.2: CONNACK 0x01, then close.
                self.send(&Packet::ConnAck(ConnAck {
                    session_present: false,
                    reason: ReasonCode::UnsupportedProtocolVersion,
                    properties: Properties::default(),
                }));
            }
            self.close(now, CloseCause::ProtocolError, e.reason_code(), text, false);
        } else {
            self.protocol_error(now, e.reason_code(), text);
        }
    }

    fn protocol_error(&mut self, now: Duration, reason: ReasonCode, text: String) {
        self.close(now, CloseCause::ProtocolError, reason, text, true);
    }

    fn refuse(&mut self, now: Duration, reason: ReasonCode, text: String) {
        let reason = if reason == ReasonCode::Success {
            ReasonCode::UnspecifiedError
        } else {
            reason
        };
        let properties = Properties {
            reason_string: self.v5().then(|| text.clone()),
            ..Properties::default()
        };
        self.send(&Packet::ConnAck(ConnAck {
            session_present: false,
            reason,
            properties,
        }));
        self.close(now, CloseCause::ConnectRefused, reason, text, false);
    }

    fn close(
        &mut self,
        now: Duration,
        cause: CloseCause,
        reason: ReasonCode,
        text: String,
        send_disconnect: bool,
    ) {
        if self.state == State::Closed {
            return;
        }
        let accepted = self.state == State::Connected;
        if send_disconnect && accepted && self.v5() {
            let with_text = Packet::Disconnect(Disconnect {
                reason,
                properties: Properties {
                    reason_string: Some(text.clone()),
                    ..Properties::default()
                },
            });
            if !self.send(&with_text) {
                self.send(&Packet::Disconnect(Disconnect {
                    reason,
                    properties: Properties::default(),
                }));
            }
        }
        let graceful = cause == CloseCause::ClientDisconnect && reason == ReasonCode::Success;
        let will = if accepted && !graceful {
            self.will.take()
        } else {
            None
        };
        if let Some(s) = self.session.as_mut() {
            s.disconnected_at = Some(now);
        }
        self.state = State::Closed;
        self.events.push_back(Event::Closed(Close {
            cause,
            reason,
            text,
            will,
        }));
    }

    fn on_packet(&mut self, p: Packet, now: Duration) {
        match (self.state, p) {
            (State::AwaitConnect, Packet::Connect(c)) => self.on_connect(*c, now),
            (State::AwaitConnect, other) => self.protocol_error(
                now,
                ReasonCode::ProtocolError,
                format!("first packet is {}, not CONNECT", other.name()),
            ),
            (_, Packet::Connect(_)) => {
                self.protocol_error(now, ReasonCode::ProtocolError, "second CONNECT".into())
            }
            (_, Packet::Publish(p)) => self.on_publish(p, now),
            (_, Packet::PubAck(a)) => {
                if let Some(s) = self.session.as_mut() {
                    s.ack(a.packet_id);
                }
                self.pump();
            }
            (_, Packet::Subscribe(s)) => self.on_subscribe(s, now),
            (_, Packet::Unsubscribe(u)) => self.on_unsubscribe(u),
            (_, Packet::PingReq) => {
                self.send(&Packet::PingResp);
            }
            (_, Packet::Disconnect(d)) => self.on_disconnect(d, now),
            (_, other) => self.protocol_error(
                now,
                ReasonCode::ProtocolError,
                format!("unexpected {} from a client", other.name()),
            ),
        }
    }

    fn on_connect(&mut self, c: Connect, now: Duration) {
        self.version = Some(c.protocol);
        let l = &self.config.limits;
        let v5 = c.protocol == ProtocolVersion::V5;
        self.client_id = c.client_id.clone();
        let refusal = if v5 && c.properties.authentication_method.is_some() {
            Some((
                ReasonCode::BadAuthenticationMethod,
                "enhanced authentication is not supported",
            ))
        } else if c.client_id.len() > l.max_client_id_len {
            Some((ReasonCode::ClientIdentifierNotValid, "client id too long"))
        } else if c.client_id.starts_with('$') {
            Some((
                ReasonCode::ClientIdentifierNotValid,
                "client id must not start with '$'",
            ))
        } else if !v5 && c.client_id.is_empty() && !c.clean_start {
            Some((
                ReasonCode::ClientIdentifierNotValid,
                "empty client id requires cleanSession=1",
            ))
        } else if c
            .will
            .as_ref()
            .is_some_and(|w| w.payload.len() > l.max_payload_size)
        {
            Some((ReasonCode::PacketTooLarge, "will payload too large"))
        } else if c.will.as_ref().is_some_and(|w| w.qos == QoS::ExactlyOnce) {
            Some((ReasonCode::QosNotSupported, "will QoS 2 is not supported"))
        } else {
            None
        };
        self.state = State::AwaitAccept;
        if let Some((reason, text)) = refusal {
            self.refuse(now, reason, text.into());
            return;
        }
        self.requested_keep_alive = c.keep_alive;
        self.keep_alive = effective_keep_alive(c.keep_alive, l);
        let (expiry, capped) = if v5 {
            let req = c.properties.session_expiry_interval.unwrap_or(0);
            let max = self.config.max_session_expiry;
            (req.min(max), req > max)
        } else if c.clean_start {
            (0, false)
        } else {
            (self.config.default_session_expiry, false)
        };
        self.session_expiry = expiry;
        self.session_expiry_capped = capped;
        self.client_receive_maximum = c.properties.receive_maximum.unwrap_or(u16::MAX);
        self.client_max_packet_size = c.properties.maximum_packet_size.unwrap_or(u32::MAX);
        self.will = c.will.clone();
        self.events
            .push_back(Event::Connect(Box::new(ConnectRequest {
                keep_alive: self.keep_alive,
                session_expiry: expiry,
                connect: c,
            })));
    }

    fn on_publish(&mut self, mut p: Publish, now: Duration) {
        let l = &self.config.limits;
        if p.qos == QoS::ExactlyOnce {
            return self.protocol_error(
                now,
                ReasonCode::QosNotSupported,
                "QoS 2 PUBLISH is not supported".into(),
            );
        }
        if let Some(alias) = p.properties.topic_alias.take() {
            if alias == 0 || alias > self.config.topic_alias_maximum {
                return self.protocol_error(
                    now,
                    ReasonCode::TopicAliasInvalid,
                    format!(
                        "topic alias {alias} outside 1..={}",
                        self.config.topic_alias_maximum
                    ),
                );
            }
            if p.topic.is_empty() {
                match self.topic_aliases.get(&alias) {
                    Some(t) => p.topic = t.clone(),
                    None => {
                        return self.protocol_error(
                            now,
                            ReasonCode::ProtocolError,
                            format!("topic alias {alias} used before being set"),
                        );
                    }
                }
            } else {
                self.topic_aliases.insert(alias, p.topic.clone());
            }
        } else if p.topic.is_empty() {
            return self.protocol_error(
                now,
                ReasonCode::ProtocolError,
                "empty topic without a topic alias".into(),
            );
        }
        if let Err(e) = validate_topic_name(&p.topic)
            .and_then(|()| check_aws_limits(&p.topic, l.max_topic_len, l.max_topic_slashes))
        {
            return self.protocol_error(
                now,
                ReasonCode::TopicNameInvalid,
                format!("PUBLISH topic rejected: {e}"),
            );
        }
        if p.payload.len() > l.max_payload_size {
            return self.protocol_error(
                now,
                ReasonCode::PacketTooLarge,
                format!(
                    "payload of {} bytes exceeds {} bytes",
                    p.payload.len(),
                    l.max_payload_size
                ),
            );
        }
        if p.retain && !self.config.retain_available {
            return self.protocol_error(
                now,
                ReasonCode::RetainNotSupported,
                "retain is not supported".into(),
            );
        }
        if let (QoS::AtLeastOnce, Some(id)) = (p.qos, p.packet_id)
            && !self.inbound_unacked.contains(&id)
        {
            if self.inbound_unacked.len() >= usize::from(l.receive_maximum) {
                let max = l.receive_maximum;
                return self.protocol_error(
                    now,
                    ReasonCode::ReceiveMaximumExceeded,
                    format!("more than {max} unacknowledged QoS 1 PUBLISH"),
                );
            }
            self.inbound_unacked.insert(id);
        }
        self.events.push_back(Event::Publish(p));
    }

    fn on_subscribe(&mut self, s: Subscribe, now: Duration) {
        if self.pending_subscribes.contains_key(&s.packet_id) {
            return self.protocol_error(
                now,
                ReasonCode::ProtocolError,
                format!("SUBSCRIBE packet id {} already in use", s.packet_id),
            );
        }
        let v5 = self.v5();
        let l = &self.config.limits;
        let subscription_id = s.properties.subscription_identifiers.first().copied();
        let existing: HashSet<&str> = self
            .session
            .iter()
            .flat_map(|s| s.subscriptions().keys().map(String::as_str))
            .chain(
                self.pending_subscribes
                    .values()
                    .flatten()
                    .filter(|r| r.refused.is_none())
                    .map(|r| r.filter.as_str()),
            )
            .collect();
        let mut count = existing.len();
        let mut new_here: HashSet<String> = HashSet::new();
        let mut requests = Vec::with_capacity(s.filters.len());
        for (i, (filter, mut options)) in s.filters.into_iter().enumerate() {
            options.qos = options.qos.min(QoS::AtLeastOnce);
            let refused = if i >= l.max_filters_per_subscribe {
                Some(ReasonCode::QuotaExceeded)
            } else if validate_topic_filter(&filter)
                .and_then(|()| check_aws_limits(&filter, l.max_topic_len, l.max_topic_slashes))
                .is_err()
            {
                Some(ReasonCode::TopicFilterInvalid)
            } else if v5 && filter.starts_with("$share/") {
                Some(ReasonCode::SharedSubscriptionsNotSupported)
            } else if !existing.contains(filter.as_str()) && !new_here.contains(&filter) {
                if count >= l.max_subscriptions {
                    Some(ReasonCode::QuotaExceeded)
                } else {
                    count += 1;
                    new_here.insert(filter.clone());
                    None
                }
            } else {
                None
            };
            requests.push(SubscribeRequest {
                filter,
                options,
                subscription_id,
                refused,
            });
        }
        self.pending_subscribes
            .insert(s.packet_id, requests.clone());
        self.events.push_back(Event::Subscribe {
            packet_id: s.packet_id,
            requests,
        });
    }

    fn on_unsubscribe(&mut self, u: Unsubscribe) {
        let mut reasons = Vec::with_capacity(u.filters.len());
        let mut removed = Vec::new();
        for f in u.filters {
            let code = if validate_topic_filter(&f).is_err() {
                ReasonCode::TopicFilterInvalid
            } else if self
                .session
                .as_mut()
                .is_some_and(|s| s.subscriptions_mut().remove(&f).is_some())
            {
                removed.push(f);
                ReasonCode::Success
            } else {
                ReasonCode::NoSubscriptionExisted
            };
            reasons.push(code);
        }
        self.send(&Packet::UnsubAck(UnsubAck {
            packet_id: u.packet_id,
            properties: Properties::default(),
            reasons,
        }));
        if !removed.is_empty() {
            self.events
                .push_back(Event::Unsubscribe { filters: removed });
        }
    }

    fn on_disconnect(&mut self, d: Disconnect, now: Duration) {
        if let Some(x) = d.properties.session_expiry_interval {
            if self.session_expiry == 0 && x != 0 {
                return self.protocol_error(
                    now,
                    ReasonCode::ProtocolError,
                    "DISCONNECT sets a session expiry after CONNECT set 0".into(),
                );
            }
            let x = x.min(self.config.max_session_expiry);
            self.session_expiry = x;
            if let Some(s) = self.session.as_mut() {
                s.expiry_interval = x;
            }
        }
        let text = match &d.properties.reason_string {
            Some(s) => format!("client DISCONNECT {}: {s}", d.reason),
            None => format!("client DISCONNECT {}", d.reason),
        };
        self.close(now, CloseCause::ClientDisconnect, d.reason, text, false);
    }
}

/// 1.5 × keep-alive.
fn keep_alive_grace(keep_alive: u16) -> Duration {
    Duration::from_millis(u64::from(keep_alive) * 1500)
}
