#![forbid(unsafe_code)]
#![warn(missing_docs)]
//! MQTT 3.1.1 / 5.0 protocol core for the Onboard device gateway. **No IO, no clock**: bytes
//! and time (a monotonic [`Duration`](std::time::Duration) since any epoch the caller picks)
//! go in, events and bytes come out. Modelled on `quinn-proto`.
//!
//! # Driving a connection (the whole gateway-facing API)
//!
//! ```text
//! let mut conn = ServerConnection::new(Config::default(), now);
//! loop {
//!     // socket readable:        conn.handle_input(&buf[..n], now);
//!     // socket closed/errored:  conn.handle_transport_closed(now);
//!     // timer fired:            conn.handle_timeout(now);      // arm at conn.poll_timeout()
//!     while let Some(ev) = conn.poll_event() {
//!         match ev {
//!             Event::Connect(req)   => /* authn/authz; takeover of an old connection with the
//!                                        same client id: old.take_over(now), old.take_session() */
//!                                      conn.accept_connect(session, session_present, now)?,
//!                                      // or conn.reject_connect(ReasonCode::NotAuthorized, now)?
//!             Event::Publish(p)     => /* authorize, route */ conn.ack_publish(id, ReasonCode::Success)?, // QoS 1
//!             Event::Subscribe { packet_id, requests } => conn.grant_subscribe(packet_id, &results)?,
//!             Event::Unsubscribe { filters } => /* remove from router */,
//!             Event::Closed(close)  => /* log close.text; publish close.will if Some;
//!                                        store conn.take_session() unless expiry 0 */,
//!         }
//!     }
//!     // routed messages:        conn.send_publish(Message { .. }) -> Delivery
//!     // server-side kick:       conn.disconnect(ReasonCode::NotAuthorized, "cert revoked", now)
//!     while let Some(bytes) = conn.poll_transmit() { socket.write_all(&bytes) }
//!     if conn.is_closed() { break }   // after flushing
//! }
//! ```
//!
//! * [`server`] — [`ServerConnection`], [`Config`], [`Limits`] (AWS defaults: 128 KiB payload,
//!   client id ≤ 128 B, ≤ 8 filters per SUBSCRIBE, ≤ 50 subscriptions, topic ≤ 256 B and ≤ 7
//!   `/`, receive maximum and in-flight window 100, keep-alive 30..=1200 s), [`Event`],
//!   [`Close`] / [`CloseCause`] (the will to publish, if any, and `graceful()`), [`Delivery`].
//! * [`session`] — [`Session`] (subscriptions, in-flight and queued QoS 1 messages, expiry)
//!   and [`Message`]. The gateway stores sessions in a map between connections; offline
//!   messages go to [`Session::enqueue`]; drop a session when [`Session::is_expired`].
//! * [`topic`] — [`validate_topic_name`](topic::validate_topic_name),
//!   [`validate_topic_filter`](topic::validate_topic_filter),
//!   [`check_aws_limits`](topic::check_aws_limits), [`matches`](topic::matches) (with the `$`
//!   rule) and [`TopicTrie`] for the router.
//! * [`packet`] — [`Packet`] with `decode`/`encode`, the incremental [`Decoder`], and the packet
//!   structs. Errors: [`DecodeError`] → [`ReasonCode`] via `reason_code()`.
//!
//! Protocol rules the state machine enforces: CONNECT first and only once; AWS keep-alive
//! clamping with disconnect at exactly 1.5 × keep-alive of silence; QoS 2 PUBLISH refused
//! (MQTT 5 DISCONNECT 0x9B, 3.1.1 close), QoS 2 subscriptions granted QoS 1; inbound receive
//! maximum (0x93), topic aliases (0x94), size limits (0x95), topic rules (0x90/0x8F), quotas
//! (0x97); malformed input → MQTT 5 DISCONNECT 0x81/0x82 or a plain 3.1.1 close. Every close
//! surfaces as exactly one [`Event::Closed`] carrying a human-readable `text`.

mod error;
pub mod packet;
pub mod server;
pub mod session;
pub mod topic;

pub use error::{DecodeError, EncodeError, ReasonCode};
pub use packet::{Decoder, Packet, ProtocolVersion, QoS};
pub use server::{Close, CloseCause, Config, Delivery, Event, Limits, ServerConnection};
pub use session::{Message, Session};
pub use topic::TopicTrie;
