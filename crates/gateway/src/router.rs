//! The message router: per account and region ("tenant"), a topic trie of subscriptions, the clients (online
//! connections and offline persistent sessions) and the retained messages.
//!
//! Routing never blocks and never waits on a client: a message goes to an online client's bounded channel with
//! `try_send` (a full channel drops a QoS 0 message and disconnects the client for a QoS 1 one), or into an
//! offline session's queue. The tenant lock is held only for that, never across an await.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use mqtt_proto::packet::{Properties, SubscriptionOptions};
use mqtt_proto::{Message, QoS, Session, TopicTrie};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;
use crate::registry::Scope;

/// Why the server closes a connection from outside its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kick {
    /// The client does not read fast enough: its outbound channel is full of QoS 1 messages.
    SlowConsumer,
}

/// Messages to a connection task besides application messages.
#[derive(Debug)]
pub enum Control {
    /// Another connection took the client id: close, and hand the session over.
    TakenOver {
        session_to: oneshot::Sender<Option<Session>>,
    },
    Kick(Kick),
}

/// The router's handle on an online connection.
#[derive(Debug)]
pub struct Online {
    pub conn_id: u64,
    /// Boxed: a tokio channel allocates its first block of 32 slots up front, and 32 inline `Message`s (~400
    /// bytes each) would cost every idle connection ~12 KiB.
    pub tx: mpsc::Sender<Box<Message>>,
    pub ctl: mpsc::UnboundedSender<Control>,
    pub kicked: bool,
}

#[derive(Debug, Default)]
struct Slot {
    online: Option<Online>,
    /// The persistent session of a client that is offline.
    session: Option<Session>,
}

#[derive(Debug, Clone)]
struct SubEntry {
    client: Arc<str>,
    options: SubscriptionOptions,
    subscription_id: Option<u32>,
}

/// A retained message.
#[derive(Debug, Clone)]
pub struct Retained {
    pub payload: Bytes,
    pub qos: QoS,
    pub properties: Properties,
}

/// A message to route.
#[derive(Debug, Clone)]
pub struct PubMsg {
    pub topic: String,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    pub properties: Properties,
}

/// What a new connection gets back for its client id.
pub enum Handoff {
    /// No other connection held the client id; the offline session, if any.
    Ready(Option<Session>),
    /// Another connection held it and was told to close; its session arrives here.
    Wait(oneshot::Receiver<Option<Session>>),
}

/// One account and region's data plane.
#[derive(Debug, Default)]
pub struct Tenant {
    subs: TopicTrie<Vec<SubEntry>>,
    clients: HashMap<Arc<str>, Slot>,
    retained: HashMap<String, Retained>,
    /// Lifecycle `versionNumber` per client id.
    versions: HashMap<String, Version>,
}

/// After this long offline a client id's lifecycle `versionNumber` starts again at 0 (AWS: about an hour), and
/// its entry is dropped, so client ids that never come back do not accumulate.
pub const VERSION_RESET: Duration = Duration::from_secs(3600);

#[derive(Debug)]
struct Version {
    number: u64,
    /// When the last connection with this client id closed; `None` while one is open.
    offline_since: Option<Duration>,
}

/// A write to the retained-message table, applied in order by one background task.
#[derive(Debug)]
pub enum RetainedWrite {
    Put {
        scope: Scope,
        topic: String,
        payload: Bytes,
        qos: u8,
    },
    /// Everything before this has been written; the writer stops.
    Stop,
}

pub struct Router {
    tenants: Mutex<HashMap<Scope, Arc<Mutex<Tenant>>>>,
    retained_tx: mpsc::UnboundedSender<RetainedWrite>,
    metrics: Metrics,
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (the router's invariants hold between
/// statements, so the data is usable).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Router {
    pub fn new(retained_tx: mpsc::UnboundedSender<RetainedWrite>, metrics: Metrics) -> Router {
        Router {
            tenants: Mutex::new(HashMap::new()),
            retained_tx,
            metrics,
        }
    }

    pub fn tenant(&self, scope: &Scope) -> Arc<Mutex<Tenant>> {
        lock(&self.tenants)
            .entry(scope.clone())
            .or_default()
            .clone()
    }

    /// Loads a stored retained message at start.
    pub fn load_retained(&self, scope: &Scope, topic: String, r: Retained) {
        lock(&self.tenant(scope)).retained.insert(topic, r);
    }

    pub fn stop_retained_writer(&self) {
        let _ = self.retained_tx.send(RetainedWrite::Stop);
    }

    /// Routes a message to every matching subscription of the tenant; `from` is the publishing client (for
    /// MQTT 5 No Local). A retained message also replaces (or, when empty, deletes) the topic's retained message.
    pub fn publish(&self, scope: &Scope, tenant: &Mutex<Tenant>, from: Option<&str>, msg: PubMsg) {
        let mut guard = lock(tenant);
        let t = &mut *guard;
        if msg.retain {
            if msg.payload.is_empty() {
                t.retained.remove(&msg.topic);
            } else {
                t.retained.insert(
                    msg.topic.clone(),
                    Retained {
                        payload: msg.payload.clone(),
                        qos: msg.qos,
                        properties: msg.properties.clone(),
                    },
                );
            }
            let _ = self.retained_tx.send(RetainedWrite::Put {
                scope: scope.clone(),
                topic: msg.topic.clone(),
                payload: msg.payload.clone(),
                qos: msg.qos as u8,
            });
        }
        for entries in t.subs.matches(&msg.topic) {
            for e in entries {
                if e.options.no_local && from == Some(&*e.client) {
                    continue;
                }
                let Some(slot) = t.clients.get_mut(&e.client) else {
                    continue;
                };
                let mut properties = msg.properties.clone();
                properties.topic_alias = None;
                if let Some(id) = e.subscription_id {
                    properties.subscription_identifiers = vec![id];
                }
                let out = Message {
                    topic: msg.topic.clone(),
                    payload: msg.payload.clone(),
                    qos: msg.qos.min(e.options.qos),
                    retain: msg.retain && e.options.retain_as_published,
                    properties,
                };
                deliver(slot, out, &self.metrics);
            }
        }
    }

    /// Drops expired offline sessions; updates the session gauges.
    pub fn sweep(&self, now: Duration) {
        let tenants: Vec<_> = lock(&self.tenants).values().cloned().collect();
        let (mut sessions, mut queued) = (0i64, 0i64);
        for t in tenants {
            let mut t = lock(&t);
            let expired: Vec<Arc<str>> = t
                .clients
                .iter()
                .filter(|(_, s)| {
                    s.online.is_none() && s.session.as_ref().is_none_or(|s| s.is_expired(now))
                })
                .map(|(c, _)| c.clone())
                .collect();
            for c in expired {
                if let Some(slot) = t.clients.remove(&c)
                    && let Some(s) = slot.session
                {
                    tracing::debug!(client_id = %c, "persistent session expired");
                    t.remove_subscriptions(&c, s.subscriptions().keys());
                }
            }
            t.versions.retain(|_, v| {
                v.offline_since
                    .is_none_or(|at| now.saturating_sub(at) < VERSION_RESET)
            });
            for s in t.clients.values().filter_map(|s| s.session.as_ref()) {
                sessions += 1;
                queued += i64::try_from(s.queued_len()).unwrap_or(i64::MAX);
            }
        }
        self.metrics.offline_sessions.set(sessions);
        self.metrics.offline_queued.set(queued);
    }
}

fn deliver(slot: &mut Slot, msg: Message, metrics: &Metrics) {
    if let Some(o) = slot.online.as_mut() {
        let qos = msg.qos;
        match o.tx.try_send(Box::new(msg)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) if qos == QoS::AtMostOnce => {
                metrics.dropped("client_queue_full");
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics.dropped("client_queue_full");
                if !o.kicked {
                    o.kicked = true;
                    let _ = o.ctl.send(Control::Kick(Kick::SlowConsumer));
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => metrics.dropped("connection_closing"),
        }
    } else if let Some(s) = slot.session.as_mut()
        && !s.enqueue(msg)
    {
        metrics.dropped("offline_qos0_or_queue_full");
    }
}

impl Tenant {
    /// Registers a new connection for `client`; an existing connection with that client id is told to close
    /// (session takeover, AWS `DUPLICATE_CLIENTID`).
    pub fn attach(&mut self, client: &Arc<str>, online: Online) -> Handoff {
        let slot = self.clients.entry(client.clone()).or_default();
        let old = slot.online.replace(online);
        if let Some(old) = old {
            let (tx, rx) = oneshot::channel();
            if old.ctl.send(Control::TakenOver { session_to: tx }).is_ok() {
                return Handoff::Wait(rx);
            }
        }
        Handoff::Ready(slot.session.take())
    }

    /// Unregisters a closed connection. A persistent session (expiry > 0) stays for the next connection; a clean
    /// one takes its subscriptions with it. If the connection was taken over meanwhile, the session goes to the
    /// new owner through the takeover message waiting in `ctl`.
    pub fn detach(
        &mut self,
        client: &Arc<str>,
        conn_id: u64,
        session: Option<Session>,
        ctl: &mut mpsc::UnboundedReceiver<Control>,
        now: Duration,
    ) {
        let owner = self
            .clients
            .get(client)
            .and_then(|s| s.online.as_ref())
            .map(|o| o.conn_id);
        if owner != Some(conn_id) {
            let mut session = session;
            while let Ok(c) = ctl.try_recv() {
                if let Control::TakenOver { session_to } = c {
                    let _ = session_to.send(session.take());
                }
            }
            return;
        }
        let Some(slot) = self.clients.get_mut(client) else {
            return;
        };
        slot.online = None;
        // Only here is the client id really offline: a connection that was taken over hands on its session
        // instead, and the new owner is online already.
        if let Some(v) = self.versions.get_mut(&**client) {
            v.offline_since = Some(now);
        }
        match session {
            Some(s) if s.expiry_interval() > 0 => slot.session = Some(s),
            other => {
                self.clients.remove(client);
                if let Some(s) = other {
                    self.remove_subscriptions(client, s.subscriptions().keys());
                }
            }
        }
    }

    /// Adds or replaces `client`'s subscription to `filter`; true if it is new.
    pub fn subscribe(
        &mut self,
        client: &Arc<str>,
        filter: &str,
        options: SubscriptionOptions,
        subscription_id: Option<u32>,
    ) -> bool {
        let entry = SubEntry {
            client: client.clone(),
            options,
            subscription_id,
        };
        if let Some(list) = self.subs.get_mut(filter) {
            if let Some(e) = list.iter_mut().find(|e| e.client == *client) {
                *e = entry;
                return false;
            }
            list.push(entry);
            return true;
        }
        // The filter was validated by the protocol state machine, so insertion cannot fail.
        let _ = self.subs.insert(filter, vec![entry]);
        true
    }

    pub fn remove_subscriptions<'a>(
        &mut self,
        client: &str,
        filters: impl IntoIterator<Item = &'a String>,
    ) {
        for f in filters {
            let now_empty = match self.subs.get_mut(f) {
                Some(list) => {
                    list.retain(|e| &*e.client != client);
                    list.is_empty()
                }
                None => false,
            };
            if now_empty {
                self.subs.remove(f);
            }
        }
    }

    /// Removes every subscription of `client` (when its session was lost and its filters are unknown).
    pub fn remove_all_subscriptions(&mut self, client: &str) {
        let mut filters = Vec::new();
        self.subs.for_each(|f, list| {
            if list.iter().any(|e| &*e.client == client) {
                filters.push(f.to_owned());
            }
        });
        self.remove_subscriptions(client, &filters);
    }

    pub fn retained(&self, topic: &str) -> Option<Retained> {
        self.retained.get(topic).cloned()
    }

    /// The next lifecycle `versionNumber` for a client id, which is connecting now.
    pub fn next_version(&mut self, client: &str) -> u64 {
        match self.versions.get_mut(client) {
            Some(v) => {
                v.number += 1;
                v.offline_since = None;
                v.number
            }
            None => {
                self.versions.insert(
                    client.to_owned(),
                    Version {
                        number: 0,
                        offline_since: None,
                    },
                );
                0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_number_continues_while_recent_and_resets_after_an_hour_offline() {
        let metrics = Metrics::new(&mut prometheus_client::registry::Registry::default());
        let (retained_tx, _retained_rx) = mpsc::unbounded_channel();
        let router = Router::new(retained_tx, metrics);
        let scope = Scope {
            account_id: Arc::from("111122223333"),
            region: Arc::from("us-east-1"),
        };
        let tenant = router.tenant(&scope);
        let client: Arc<str> = Arc::from("dev");
        // One connection's life: attach, take a version, close at `closed_at`.
        let session = |conn_id: u64, closed_at: Duration| -> u64 {
            let (tx, _rx) = mpsc::channel(1);
            let (ctl, mut ctl_rx) = mpsc::unbounded_channel();
            let mut t = lock(&tenant);
            let online = Online {
                conn_id,
                tx,
                ctl,
                kicked: false,
            };
            assert!(matches!(t.attach(&client, online), Handoff::Ready(None)));
            let version = t.next_version(&client);
            t.detach(&client, conn_id, None, &mut ctl_rx, closed_at);
            version
        };
        let minute = Duration::from_secs(60);
        assert_eq!(session(1, minute), 0);
        router.sweep(minute * 30);
        assert_eq!(session(2, minute * 31), 1, "offline for half an hour");
        router.sweep(minute * 31 + VERSION_RESET);
        assert_eq!(session(3, minute * 100), 0, "offline for an hour: reset");
    }
}
