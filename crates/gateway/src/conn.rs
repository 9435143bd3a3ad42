//! One connection: TLS handshake, identity, then a task driving the sans-IO `ServerConnection`.
//!
//! One task owns the TLS transport and the protocol state, and never blocks on the socket: it reads and writes
//! only when the socket is ready. While more than `WRITE_HIGH_WATER` encrypted bytes wait for a client, the task
//! stops reading from it and stops taking its deliveries. So a client that does not read blocks no one: its
//! delivery queue fills (QoS 0 messages are then dropped, a QoS 1 message gets it disconnected by the router), and
//! as its packets are not read either, keep-alive ends it. Application messages arrive from the router on a
//! bounded channel, control messages (takeover, kick) on an unbounded one, registry changes through a watch channel.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use mqtt_proto::server::{ConnectRequest, SubscribeRequest};
use mqtt_proto::{
    Close, CloseCause, Event, Message, ProtocolVersion, QoS, ReasonCode, ServerConnection, Session,
};
use policy::{Action, CompiledPolicy, ConnectAttributes, ConnectionContext, ResourceKind};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::Shared;
use crate::cert_info::certificate_info;
use crate::events;
use crate::registry::{Authz, AuthzKey, Refusal, Registry, Scope};
use crate::router::{Control, Handoff, Kick, Online, PubMsg, Tenant, lock};
use crate::tls::now_unix;
use crate::transport::{Hello, Transport, TransportError};

/// Time allowed for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Application messages buffered for a connection before QoS 0 ones are dropped / the client is disconnected.
const DELIVERY_QUEUE: usize = 1024;
/// Encrypted bytes waiting for the client above which its input and deliveries wait (see the module docs).
const WRITE_HIGH_WATER: usize = 256 * 1024;
/// How long a closing connection waits for the client to take what is left to send.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Most messages taken from the delivery queue per wake-up, so one busy subscription cannot starve input.
const DELIVERY_BATCH: usize = 64;
/// How long a new connection waits for the connection it takes over to hand its session over.
const TAKEOVER_WAIT: Duration = Duration::from_secs(5);

/// Accepts TLS on a fresh TCP connection and runs the MQTT connection. `_guard` is dropped when the task ends
/// (shutdown waits for all of them).
pub async fn serve(
    shared: Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    _guard: mpsc::Sender<()>,
) {
    let _ = tcp.set_nodelay(true);
    // The task's future is as large as its largest state and lives as long as the connection, and a local moved
    // away before an `.await` still takes room in it. So the handshake is boxed (freed when done), and the
    // connection runs in a boxed future built in a block that ends before it is awaited: an idle connection
    // holds only what `drive` keeps.
    let handshake = Box::pin(Transport::accept(tcp, &shared.tls));
    let connection = {
        let (io, hello, early) = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                shared.metrics.handshake("failed");
                tracing::info!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                shared.metrics.handshake("timeout");
                tracing::info!(%peer, "TLS handshake not completed within 10 s; connection dropped");
                return;
            }
        };
        shared.metrics.handshake("ok");
        Box::pin(drive(establish(shared, io, hello, peer), early))
    };
    connection.await;
}

/// The protocol state of an established TLS connection.
fn establish(shared: Arc<Shared>, io: Transport, hello: Hello, peer: SocketAddr) -> Box<Conn> {
    // The verifier made a client certificate mandatory, so there is one; parse it for ids and policy variables.
    let cert = io
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|der| pki::Certificate::from_der(der));
    let cert = match cert {
        Some(Ok(c)) => PeerCert::Parsed(c),
        Some(Err(e)) => {
            tracing::info!(%peer, error = %e, "client certificate does not parse");
            PeerCert::Bad(Refusal::BadCertificate)
        }
        None => PeerCert::Bad(Refusal::BadCertificate),
    };
    let sni = hello.sni;
    let registry = shared.registry();
    let sni_scope = sni
        .as_deref()
        .and_then(|s| registry.account_for_sni(s, &shared.domain));
    drop(registry);
    let (data_tx, data_rx) = mpsc::channel(DELIVERY_QUEUE);
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
    let now = shared.now();
    Box::new(Conn {
        conn: ServerConnection::new(shared.mqtt.clone(), now),
        io,
        id: shared.next_conn_id(),
        shared,
        peer,
        cert,
        sni,
        sni_scope,
        session_uuid: uuid::Uuid::new_v4().to_string(),
        data_tx,
        ctl_tx,
        data_rx,
        ctl_rx,
        state: None,
        kick_reason: None,
        takeover_tx: None,
    })
}

/// Runs the connection until it closes, then sends what is left and closes the TLS session; a client that does not
/// read gets `CLOSE_TIMEOUT`. `early` is application data that arrived with the handshake.
///
/// `conn` is boxed because an async fn's future keeps its by-value arguments twice (as received and as bound).
async fn drive(mut conn: Box<Conn>, early: Vec<u8>) {
    if !early.is_empty() {
        conn.conn.handle_input(&early, conn.shared.now());
    }
    drop(early);
    conn.run().await;
    let Conn { mut io, .. } = *conn;
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, io.close()).await;
}

/// State of an accepted (CONNACKed) connection.
struct Connected {
    scope: Scope,
    tenant: Arc<Mutex<Tenant>>,
    client_id: Arc<str>,
    ctx: ConnectionContext,
    policy: CompiledPolicy,
    authz_key: AuthzKey,
    version: u64,
    v5: bool,
}

struct Conn {
    shared: Arc<Shared>,
    conn: ServerConnection,
    io: Transport,
    id: u64,
    peer: SocketAddr,
    cert: PeerCert,
    sni: Option<String>,
    sni_scope: Option<Scope>,
    session_uuid: String,
    data_tx: mpsc::Sender<Box<Message>>,
    ctl_tx: mpsc::UnboundedSender<Control>,
    data_rx: mpsc::Receiver<Box<Message>>,
    ctl_rx: mpsc::UnboundedReceiver<Control>,
    state: Option<Connected>,
    /// The AWS disconnect reason when the server closes the connection for a reason of its own.
    kick_reason: Option<&'static str>,
    /// Where the session goes when another connection took this client id over.
    takeover_tx: Option<oneshot::Sender<Option<Session>>>,
}

/// The client certificate. The parsed form (with its names, ~1.5 KiB) is needed only to decide the CONNECT;
/// afterwards only the id is kept, so an idle connection does not hold it.
enum PeerCert {
    Parsed(pki::Certificate),
    /// After an accepted CONNECT.
    Id(Box<str>),
    Bad(Refusal),
}

impl PeerCert {
    fn id(&self) -> Option<&str> {
        match self {
            PeerCert::Parsed(c) => Some(c.id()),
            PeerCert::Id(id) => Some(id),
            PeerCert::Bad(_) => None,
        }
    }
}

/// What woke the connection task. Lives on the stack for one iteration.
enum Wake {
    Readable(std::io::Result<()>),
    Writable(std::io::Result<()>),
    Data(Option<Box<Message>>),
    Control(Option<Control>),
    Registry,
    Timer,
    Shutdown,
}

impl Conn {
    fn cert_id(&self) -> &str {
        self.cert.id().unwrap_or("-")
    }

    async fn run(&mut self) {
        let mut registry_rx = self.shared.registry_rx.clone();
        registry_rx.mark_unchanged();
        let mut shutdown = self.shared.shutdown_rx.clone();
        loop {
            self.process().await;
            if self.conn.is_closed() {
                return;
            }
            let deadline = self
                .conn
                .poll_timeout()
                .map(|d| tokio::time::Instant::from_std(self.shared.epoch + d));
            if let Err(e) = self.io.try_send() {
                self.transport_failed(&e.into());
                continue;
            }
            // A client that does not take what it is sent gets nothing more and is not read from (see module docs).
            let open = self.io.unsent() < WRITE_HIGH_WATER;
            let reading = open && self.io.may_read() && self.conn.wants_input();
            let writing = self.io.unsent() > 0;
            let delivering = open && self.state.is_some();
            let wake = tokio::select! {
                r = self.io.readable(), if reading => Wake::Readable(r),
                r = self.io.writable(), if writing => Wake::Writable(r),
                m = self.data_rx.recv(), if delivering => Wake::Data(m),
                c = self.ctl_rx.recv() => Wake::Control(c),
                r = registry_rx.changed() => match r {
                    Ok(()) => Wake::Registry,
                    Err(_) => Wake::Shutdown,
                },
                _ = sleep_until(deadline) => Wake::Timer,
                _ = shutdown.changed() => Wake::Shutdown,
            };
            let now = self.shared.now();
            match wake {
                Wake::Readable(Ok(())) => self.receive(now),
                Wake::Writable(Ok(())) => {} // written at the top of the loop
                Wake::Readable(Err(e)) | Wake::Writable(Err(e)) => {
                    self.transport_failed(&e.into());
                }
                Wake::Data(Some(m)) => {
                    self.deliver(*m);
                    for _ in 1..DELIVERY_BATCH {
                        match self.data_rx.try_recv() {
                            Ok(m) => self.deliver(*m),
                            Err(_) => break,
                        }
                    }
                }
                Wake::Data(None) | Wake::Control(None) => {}
                Wake::Control(Some(Control::TakenOver { session_to })) => {
                    self.takeover_tx = Some(session_to);
                    self.kick_reason = Some("DUPLICATE_CLIENTID");
                    self.conn.take_over(now);
                }
                Wake::Control(Some(Control::Kick(Kick::SlowConsumer))) => {
                    tracing::warn!(
                        client_id = self.client_id(),
                        cert_id = self.cert_id(),
                        "disconnecting: the client does not read its messages (delivery queue full)"
                    );
                    self.kick_reason = Some("SERVER_INITIATED_DISCONNECT");
                    self.conn
                        .disconnect(ReasonCode::QuotaExceeded, "delivery queue full", now);
                }
                Wake::Registry => self.recheck(),
                Wake::Timer => self.conn.handle_timeout(now),
                Wake::Shutdown => {
                    self.kick_reason = Some("SERVER_INITIATED_DISCONNECT");
                    self.conn.disconnect(
                        ReasonCode::ServerShuttingDown,
                        "server shutting down",
                        now,
                    );
                }
            }
        }
    }

    fn client_id(&self) -> &str {
        self.conn.client_id()
    }

    /// Handles every pending event and sends what the protocol produced, until nothing is left.
    async fn process(&mut self) {
        loop {
            while let Some(ev) = self.conn.poll_event() {
                self.on_event(ev).await;
            }
            if !self.flush() {
                return;
            }
        }
    }

    /// Encrypts the protocol's output for the client. True if that failed just now (the connection is then
    /// closed, which produces an event to handle).
    fn flush(&mut self) -> bool {
        while let Some(b) = self.conn.poll_transmit() {
            if let Err(e) = self.io.send(&b) {
                self.transport_failed(&e);
                return true;
            }
        }
        false
    }

    /// Decrypts what the socket has and hands it to the protocol; the end of the stream closes the connection.
    fn receive(&mut self, now: Duration) {
        let mut plain = Vec::new();
        let result = self.io.try_receive(&mut plain);
        if !plain.is_empty() {
            self.conn.handle_input(&plain, now);
        }
        match result {
            Ok(()) if self.io.may_read() => {}
            Ok(()) => self.conn.handle_transport_closed(now),
            Err(e) => self.transport_failed(&e),
        }
    }

    /// The socket or the TLS session failed: the connection is lost (its will is published).
    fn transport_failed(&mut self, e: &TransportError) {
        if !self.conn.is_closed() {
            tracing::info!(client_id = self.client_id(), cert_id = self.cert_id(), peer = %self.peer,
                error = %e, "connection lost");
        }
        let now = self.shared.now();
        self.conn.handle_transport_closed(now);
    }

    async fn on_event(&mut self, ev: Event) {
        match ev {
            // Boxed: the CONNECT future is large and runs once; inline it would stay in every idle connection's
            // task.
            Event::Connect(req) => Box::pin(self.on_connect(req)).await,
            Event::Publish(p) => self.on_publish(p),
            Event::Subscribe {
                packet_id,
                requests,
            } => self.on_subscribe(packet_id, requests),
            Event::Unsubscribe { filters } => self.on_unsubscribe(filters),
            Event::Closed(close) => self.on_closed(close),
        }
    }

    fn refuse(&mut self, client_id: &str, why: &Refusal) {
        tracing::warn!(cert_id = self.cert_id(), client_id, peer = %self.peer, sni = ?self.sni,
            reason = %why, "connection refused");
        self.shared.metrics.refusal(why.label());
        let now = self.shared.now();
        self.conn.disconnect(
            ReasonCode::NotAuthorized,
            &format!("not authorized: {why}"),
            now,
        );
    }

    /// Decides a CONNECT: the account, the client id, the policies compiled for this connection.
    fn authorize(
        &self,
        registry: &Registry,
        cert: &pki::Certificate,
        req: &ConnectRequest,
    ) -> Result<(Scope, Arc<str>, Authz, ConnectionContext, CompiledPolicy), Refusal> {
        let connect = &req.connect;
        let scope = registry.resolve(cert.id(), self.sni_scope.as_ref(), now_unix())?;
        let client_id: Arc<str> = if connect.client_id.is_empty() {
            Arc::from(format!("onboard-{}", uuid::Uuid::new_v4().simple()).as_str())
        } else {
            Arc::from(connect.client_id.as_str())
        };
        let mut authz = registry.authz(&scope, cert.id(), &client_id);
        let mut ctx = ConnectionContext::new(&*client_id, &*scope.account_id, &*scope.region);
        ctx.source_ip = Some(self.peer.ip());
        ctx.certificate = Some(certificate_info(cert));
        ctx.connect_attributes = ConnectAttributes {
            persistent_connect: !connect.clean_start || req.session_expiry > 0,
            last_will: connect.will.is_some(),
        };
        let compiled = compile(&mut authz, &mut ctx);
        if !compiled
            .evaluate_resource(Action::Connect, ResourceKind::Client, &client_id)
            .is_allowed()
        {
            self.shared.metrics.policy_denial("connect");
            return Err(Refusal::ConnectDenied);
        }
        Ok((scope, client_id, authz, ctx, compiled))
    }

    async fn on_connect(&mut self, req: Box<ConnectRequest>) {
        let requested_id = req.connect.client_id.clone();
        let cert = match &self.cert {
            PeerCert::Parsed(c) => c.clone(),
            PeerCert::Bad(e) => {
                let e = e.clone();
                return self.refuse(&requested_id, &e);
            }
            // The protocol machine produces one Connect event per connection.
            PeerCert::Id(_) => return,
        };
        let mut registry = self.shared.registry();
        let mut decision = self.authorize(&registry, &cert, &req);
        if decision.is_err()
            && let Some(fresh) = self.shared.fresher_registry(registry.version).await
        {
            registry = fresh;
            decision = self.authorize(&registry, &cert, &req);
        }
        drop(registry);
        let (scope, client_id, authz, ctx, compiled) = match decision {
            Ok(x) => x,
            Err(why) => return self.refuse(&requested_id, &why),
        };
        let connect = &req.connect;
        let clean_start = connect.clean_start;
        let v5 = connect.protocol == ProtocolVersion::V5;

        let tenant = self.shared.router.tenant(&scope);
        let online = Online {
            conn_id: self.id,
            tx: self.data_tx.clone(),
            ctl: self.ctl_tx.clone(),
            kicked: false,
        };
        let handoff = lock(&tenant).attach(&client_id, online);
        let previous = match handoff {
            Handoff::Ready(s) => s,
            Handoff::Wait(rx) => match tokio::time::timeout(TAKEOVER_WAIT, rx).await {
                Ok(Ok(s)) => s,
                _ => {
                    // The old connection did not hand its session over; its subscriptions are unknown.
                    lock(&tenant).remove_all_subscriptions(&client_id);
                    None
                }
            },
        };
        let max_queued = self.shared.mqtt.limits.max_queued_messages;
        let now = self.shared.now();
        let (session, present) = match previous {
            // A session that expired offline is gone even if the periodic sweep has not removed it yet.
            Some(s) if !clean_start && !s.is_expired(now) => (s, true),
            Some(s) => {
                lock(&tenant).remove_subscriptions(&client_id, s.subscriptions().keys());
                (Session::new(&*client_id, max_queued), false)
            }
            None => (Session::new(&*client_id, max_queued), false),
        };
        if let Err(e) = self.conn.accept_connect(session, present, now) {
            // Only possible if the connection closed meanwhile; the Closed event handles the rest.
            tracing::debug!(error = %e, "CONNECT no longer pending");
            let now = self.shared.now();
            lock(&tenant).detach(&client_id, self.id, None, &mut self.ctl_rx, now);
            return;
        }
        let version = lock(&tenant).next_version(&client_id);
        self.shared.metrics.connections_open.inc();
        tracing::info!(cert_id = cert.id(), client_id = &*client_id, account = &*scope.account_id,
            peer = %self.peer, session_present = present, "client connected");
        let exclusive_thing = authz
            .key
            .exclusive_thing
            .then(|| authz.key.thing.as_ref().map(|t| t.name.clone()))
            .flatten();
        let st = Connected {
            scope,
            tenant,
            client_id,
            ctx,
            policy: compiled,
            authz_key: authz.key,
            version,
            v5,
        };
        let payload = events::connected(
            &st.client_id,
            &self.session_uuid,
            cert.id(),
            self.peer.ip(),
            version,
            exclusive_thing.as_deref(),
        );
        self.emit_event(&st, "presence/connected", payload);
        self.state = Some(st);
        self.cert = PeerCert::Id(cert.id().into());
    }

    /// Publishes a lifecycle event into the connection's own account.
    fn emit_event(&self, st: &Connected, kind: &str, payload: String) {
        if st.client_id.contains(['#', '+']) {
            return; // AWS sends no lifecycle events for such client ids (they are not valid topic levels)
        }
        let topic = format!("$aws/events/{kind}/{}", st.client_id);
        self.shared.router.publish(
            &st.scope,
            &st.tenant,
            None,
            PubMsg {
                topic,
                payload: Bytes::from(payload),
                qos: QoS::AtLeastOnce,
                retain: false,
                properties: Default::default(),
            },
        );
    }

    fn on_publish(&mut self, p: mqtt_proto::packet::Publish) {
        let Some(st) = &self.state else { return };
        let denial = if let Some(why) = reserved_publish_refusal(&p.topic, p.retain) {
            Some(("publish", why.to_owned()))
        } else if !st
            .policy
            .evaluate_resource(Action::Publish, ResourceKind::Topic, &p.topic)
            .is_allowed()
        {
            Some((
                "publish",
                format!("not authorized to publish to {}", p.topic),
            ))
        } else if p.retain
            && !st
                .policy
                .evaluate_resource(Action::RetainPublish, ResourceKind::Topic, &p.topic)
                .is_allowed()
        {
            Some((
                "retain_publish",
                format!("not authorized to publish retained messages to {}", p.topic),
            ))
        } else {
            None
        };
        if let Some((action, text)) = denial {
            self.shared.metrics.policy_denial(action);
            tracing::info!(client_id = &*st.client_id, cert_id = self.cert_id(), topic = %p.topic,
                reason = %text, "PUBLISH refused");
            // AWS: an unauthorized PUBLISH closes an MQTT 3.1.1 connection; MQTT 5 QoS 1 gets PUBACK 0x87 and
            // the connection stays; MQTT 5 QoS 0 has no acknowledgement to carry a refusal, so it closes too.
            if let (true, Some(id)) = (st.v5, p.packet_id) {
                let _ = self.conn.ack_publish(id, ReasonCode::NotAuthorized);
            } else {
                self.kick_reason = Some("AUTH_ERROR");
                let now = self.shared.now();
                self.conn.disconnect(ReasonCode::NotAuthorized, &text, now);
            }
            return;
        }
        self.shared.metrics.messages_in[usize::from(p.qos != QoS::AtMostOnce)].inc();
        let packet_id = p.packet_id;
        let mut properties = p.properties;
        properties.topic_alias = None;
        self.shared.router.publish(
            &st.scope,
            &st.tenant,
            Some(&st.client_id),
            PubMsg {
                topic: p.topic,
                payload: p.payload,
                qos: p.qos,
                retain: p.retain,
                properties,
            },
        );
        if let Some(id) = packet_id {
            let _ = self.conn.ack_publish(id, ReasonCode::Success);
        }
    }

    /// Sends a routed message if the connection's policy allows `iot:Receive` on its topic (checked per delivery,
    /// so a policy change applies to existing subscriptions at once).
    fn deliver(&mut self, msg: Message) {
        let Some(st) = &self.state else { return };
        if !st
            .policy
            .evaluate_resource(Action::Receive, ResourceKind::Topic, &msg.topic)
            .is_allowed()
        {
            self.shared.metrics.policy_denial("receive");
            return;
        }
        let qos = msg.qos;
        match self.conn.send_publish(msg) {
            mqtt_proto::Delivery::Sent => {
                self.shared.metrics.messages_out[usize::from(qos != QoS::AtMostOnce)].inc();
            }
            mqtt_proto::Delivery::Queued => {}
            mqtt_proto::Delivery::Dropped => self.shared.metrics.dropped("not_deliverable"),
        }
    }

    fn on_subscribe(&mut self, packet_id: u16, requests: Vec<SubscribeRequest>) {
        let Some(st) = &self.state else { return };
        let mut results = Vec::with_capacity(requests.len());
        for r in &requests {
            if r.refused.is_some() {
                results.push(ReasonCode::UnspecifiedError);
                continue;
            }
            if st
                .policy
                .evaluate_resource(Action::Subscribe, ResourceKind::TopicFilter, &r.filter)
                .is_allowed()
            {
                results.push(ReasonCode::GrantedQos1);
            } else {
                self.shared.metrics.policy_denial("subscribe");
                tracing::info!(client_id = &*st.client_id, cert_id = self.cert_id(), filter = %r.filter,
                    "SUBSCRIBE refused: not authorized");
                results.push(ReasonCode::NotAuthorized);
            }
        }
        if self.conn.grant_subscribe(packet_id, &results).is_err() {
            return;
        }
        let mut topics = Vec::new();
        let mut retained = Vec::new();
        {
            let Some(session) = self.conn.session() else {
                return;
            };
            let mut t = lock(&st.tenant);
            for (r, res) in requests.iter().zip(&results) {
                if r.refused.is_some() || res.is_error() {
                    continue;
                }
                let Some(sub) = session.subscriptions().get(&r.filter) else {
                    continue;
                };
                let new = t.subscribe(&st.client_id, &r.filter, sub.options, sub.subscription_id);
                topics.push(r.filter.clone());
                // AWS delivers a retained message on subscribe only when the filter is exactly its topic.
                use mqtt_proto::packet::RetainHandling;
                let send_retained = match sub.options.retain_handling {
                    RetainHandling::SendAtSubscribe => true,
                    RetainHandling::SendIfNew => new,
                    RetainHandling::DoNotSend => false,
                };
                if send_retained
                    && !r.filter.contains(['+', '#'])
                    && let Some(m) = t.retained(&r.filter)
                {
                    let mut properties = m.properties;
                    properties.subscription_identifiers = sub.subscription_id.into_iter().collect();
                    retained.push(Message {
                        topic: r.filter.clone(),
                        payload: m.payload,
                        qos: m.qos.min(sub.options.qos),
                        retain: true,
                        properties,
                    });
                }
            }
        }
        if !topics.is_empty() {
            let payload = events::subscriptions(
                "subscribed",
                &st.client_id,
                &self.session_uuid,
                self.cert_id(),
                &topics,
            );
            self.emit_event(st, "subscriptions/subscribed", payload);
        }
        for m in retained {
            self.deliver(m);
        }
    }

    fn on_unsubscribe(&mut self, filters: Vec<String>) {
        let Some(st) = &self.state else { return };
        lock(&st.tenant).remove_subscriptions(&st.client_id, &filters);
        if !filters.is_empty() {
            let payload = events::subscriptions(
                "unsubscribed",
                &st.client_id,
                &self.session_uuid,
                self.cert_id(),
                &filters,
            );
            self.emit_event(st, "subscriptions/unsubscribed", payload);
        }
    }

    fn on_closed(&mut self, close: Close) {
        let Some(st) = self.state.take() else {
            // A refused CONNECT was logged with its reason already; a client that simply went away is routine.
            // Anything else (garbage instead of CONNECT, no CONNECT in time) is the client's fault, and the
            // operator needs to see why the connection went.
            match close.cause {
                CloseCause::ConnectRefused
                | CloseCause::TransportClosed
                | CloseCause::ClientDisconnect => {
                    tracing::debug!(cert_id = self.cert_id(), peer = %self.peer, reason = %close.text,
                        "connection closed before it was accepted");
                }
                _ => {
                    tracing::info!(cert_id = self.cert_id(), peer = %self.peer, reason = %close.text,
                    "connection closed before CONNECT was accepted")
                }
            }
            return;
        };
        let reason = self.kick_reason.unwrap_or(match close.cause {
            CloseCause::ClientDisconnect => "CLIENT_INITIATED_DISCONNECT",
            CloseCause::ProtocolError => "CLIENT_ERROR",
            CloseCause::KeepAliveTimeout => "MQTT_KEEP_ALIVE_TIMEOUT",
            CloseCause::TakenOver => "DUPLICATE_CLIENTID",
            CloseCause::TransportClosed => "CONNECTION_LOST",
            CloseCause::ServerDisconnect
            | CloseCause::ConnectTimeout
            | CloseCause::ConnectRefused => "SERVER_INITIATED_DISCONNECT",
        });
        self.shared.metrics.connections_open.dec();
        self.shared.metrics.disconnect(reason);
        tracing::info!(client_id = &*st.client_id, cert_id = self.cert_id(), peer = %self.peer,
            disconnect_reason = reason, detail = %close.text, "client disconnected");
        if self.io.unsent() >= WRITE_HIGH_WATER {
            // Its input was not being read either, so a keep-alive timeout here means it stopped reading.
            tracing::warn!(
                client_id = &*st.client_id,
                cert_id = self.cert_id(),
                unsent_bytes = self.io.unsent(),
                "the client did not read what it was sent"
            );
        }
        if let Some(w) = close.will {
            let allowed = reserved_publish_refusal(&w.topic, w.retain).is_none()
                && st
                    .policy
                    .evaluate_resource(Action::Publish, ResourceKind::Topic, &w.topic)
                    .is_allowed()
                && (!w.retain
                    || st
                        .policy
                        .evaluate_resource(Action::RetainPublish, ResourceKind::Topic, &w.topic)
                        .is_allowed());
            if allowed {
                self.shared.router.publish(
                    &st.scope,
                    &st.tenant,
                    Some(&st.client_id),
                    PubMsg {
                        topic: w.topic,
                        payload: w.payload,
                        qos: w.qos.min(QoS::AtLeastOnce),
                        retain: w.retain,
                        properties: w.properties,
                    },
                );
            } else {
                self.shared.metrics.policy_denial("publish");
                tracing::info!(client_id = &*st.client_id, topic = %w.topic, "last will not published: not authorized");
            }
        }
        let session = self.conn.take_session();
        match self.takeover_tx.take() {
            Some(tx) => {
                let _ = tx.send(session);
            }
            None => {
                let now = self.shared.now();
                lock(&st.tenant).detach(&st.client_id, self.id, session, &mut self.ctl_rx, now);
            }
        }
        let exclusive_thing = if st.authz_key.exclusive_thing {
            st.authz_key.thing.as_ref().map(|t| &*t.name)
        } else {
            None
        };
        let payload = events::disconnected(
            &st.client_id,
            &self.session_uuid,
            self.cert_id(),
            close.cause == CloseCause::ClientDisconnect,
            reason,
            st.version,
            exclusive_thing,
        );
        self.emit_event(&st, "presence/disconnected", payload);
    }

    /// After a registry change: re-resolve the certificate and recompile the policies if their inputs changed.
    fn recheck(&mut self) {
        let Some(st) = self.state.as_mut() else {
            return; // not yet connected: the CONNECT will be checked against the current registry
        };
        let Some(cert_id) = self.cert.id() else {
            return;
        };
        let registry = self.shared.registry();
        let now = self.shared.now();
        let refusal = match registry.resolve(cert_id, self.sni_scope.as_ref(), now_unix()) {
            Ok(scope) if scope == st.scope => None,
            Ok(_) => Some(Refusal::UnknownCertificate),
            Err(e) => Some(e),
        };
        if let Some(why) = refusal {
            tracing::warn!(cert_id = cert_id, client_id = &*st.client_id, reason = %why,
                "disconnecting: the certificate may no longer connect");
            self.shared.metrics.refusal(why.label());
            self.kick_reason = Some("AUTH_ERROR");
            self.conn.disconnect(
                ReasonCode::NotAuthorized,
                &format!("not authorized: {why}"),
                now,
            );
            return;
        }
        let mut authz = registry.authz(&st.scope, cert_id, &st.client_id);
        if authz.key == st.authz_key {
            return;
        }
        st.policy = compile(&mut authz, &mut st.ctx);
        st.authz_key = authz.key;
        tracing::debug!(
            client_id = &*st.client_id,
            "policies recompiled after a registry change"
        );
        if !st
            .policy
            .evaluate_resource(Action::Connect, ResourceKind::Client, &st.client_id)
            .is_allowed()
        {
            tracing::warn!(
                cert_id = cert_id,
                client_id = &*st.client_id,
                "disconnecting: the policies no longer allow iot:Connect"
            );
            self.shared.metrics.policy_denial("connect");
            self.kick_reason = Some("FORBIDDEN_ACCESS");
            self.conn.disconnect(
                ReasonCode::NotAuthorized,
                "not authorized: iot:Connect is no longer allowed",
                now,
            );
        }
    }
}

/// Compiles the connection's policies. The thing is lent to the context only for compiling, so a connection keeps
/// one copy of it (in its `AuthzKey`).
fn compile(authz: &mut Authz, ctx: &mut ConnectionContext) -> CompiledPolicy {
    ctx.thing = authz.key.thing.take();
    let compiled = policy::compile(authz.policies.iter().map(|p| &p.document), ctx);
    authz.key.thing = ctx.thing.take();
    compiled
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Why a client may not publish to a reserved (`$`) topic, if it may not. Clients may publish only the requests
/// of the services AWS defines there (shadows, jobs, basic ingest, fleet provisioning); the server owns the
/// events and every response topic, and no retained message may be published to a `$` topic.
pub fn reserved_publish_refusal(topic: &str, retain: bool) -> Option<&'static str> {
    if !topic.starts_with('$') {
        return None;
    }
    if retain {
        return Some("retained messages cannot be published to reserved ($) topics");
    }
    let Some(rest) = topic.strip_prefix("$aws/") else {
        return Some("reserved topic not available to clients");
    };
    if rest.starts_with("events/") {
        return Some("$aws/events/ topics are published by the server only");
    }
    let service = [
        "things/",
        "rules/",
        "certificates/",
        "provisioning-templates/",
    ]
    .iter()
    .any(|p| rest.starts_with(p));
    if !service {
        return Some("reserved topic not available to clients");
    }
    let response = [
        "/accepted",
        "/rejected",
        "/delta",
        "/documents",
        "/notify",
        "/notify-next",
    ]
    .iter()
    .any(|s| topic.ends_with(s));
    if response {
        return Some("response topics are published by the server only");
    }
    None
}
