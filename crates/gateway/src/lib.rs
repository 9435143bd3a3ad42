#![forbid(unsafe_code)]
//! The device gateway: a mutual-TLS MQTT 3.1.1/5 broker that authenticates devices by certificate and enforces
//! AWS IoT policies.
//!
//! # Design
//!
//! ```text
//! TCP accept ─► TLS (rustls unbuffered: SNI, ALPN) ─► identity ─► connection task ─► router
//!                 any well-formed client cert,                  cert id =     ServerConnection    per (account,
//!                 handshake signature verified                  sha256(DER)   (mqtt-proto),       region): trie,
//!                                                               → Registry    compiled policy     sessions, retained
//! ```
//!
//! * **TLS** (`tls`, `transport`): a client certificate is required, but any well-formed one passes the handshake (only the
//!   handshake signature, i.e. possession of the key, is verified; X.509 v1 certificates, which webpki refuses
//!   but `openssl x509 -req` issues, have it verified over their bare public key). The registry decides
//!   afterwards, so the refusal carries a reason (CONNACK not-authorized with a reason string, and the log line
//!   with the certificate id), and JIT registration can later accept certificates of CAs registered at runtime.
//!   ALPN `x-amzn-mqtt-ca` is selected when offered, on either listener; clients offering no ALPN (or another
//!   one) are served without ALPN. An SNI naming an account endpoint gets a server certificate for that name,
//!   minted from the root CA on first use.
//! * **Identity** (`registry`): an immutable in-memory [`registry::Registry`] built from one store snapshot answers
//!   "which account, may it connect, which thing, which policies" without touching the database. A watcher polls
//!   the store's change counter (bumped by SQLite triggers on every registry table, from any process) every 200 ms
//!   and swaps in a new registry when it moved, then notifies every connection through a watch channel.
//! * **Connections** (`conn`): one task per connection drives the sans-IO `mqtt_proto::ServerConnection` with the
//!   socket, the router's delivery channel, control messages and the registry notification. Policies are compiled
//!   once at CONNECT; every PUBLISH, SUBSCRIBE and delivery is checked against the compiled form (no database, no
//!   ARN building). On a registry change each connection re-resolves its certificate (disconnecting with
//!   AWS reason `AUTH_ERROR` when it is no longer acceptable) and recompiles only if its policy versions or thing
//!   changed. The task drives the TLS session itself through rustls's unbuffered API (`transport`), so an idle
//!   connection holds no TLS buffers, and never waits on the socket: a client that stops reading gets nothing more
//!   and is not read from until it catches up, so it blocks no one and keep-alive or its full delivery queue ends
//!   it.
//! * **Router** (`router`): per account and region a topic trie, the clients (online or offline persistent
//!   session) and retained messages; lifecycle events are published into the same tenant. Retained messages are
//!   written through to the store by one background task, in order, and loaded at start.
//!
//! Behaviour choices (AWS's where known): an unauthorized PUBLISH closes an MQTT 3.1.1 connection and an MQTT 5
//! QoS 0 one; MQTT 5 QoS 1 gets PUBACK 0x87. An unauthorized SUBSCRIBE filter gets 0x80 (3.1.1) / 0x87 (5).
//! Unauthorized deliveries are skipped silently.

mod cert_info;
mod conn;
mod events;
mod metrics;
mod registry;
mod router;
mod tls;
mod transport;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mqtt_proto::QoS;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use conn::reserved_publish_refusal;

use crate::metrics::Metrics;
use crate::registry::{Registry, Scope};
use crate::router::{Retained, RetainedWrite, Router};

/// How often the registry change counter is polled.
const REGISTRY_POLL: Duration = Duration::from_millis(200);
/// How often expired persistent sessions are dropped.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// How long shutdown waits for connections to close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Where and how the gateway listens.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Mutual-TLS MQTT listener (AWS's 8883). ALPN is optional; `x-amzn-mqtt-ca` is accepted when offered.
    pub mqtt_listen: SocketAddr,
    /// AWS's 443 listener for ALPN `x-amzn-mqtt-ca`, if configured.
    pub alpn_listen: Option<SocketAddr>,
    /// Account endpoints are `<prefix>-ats.iot.<region>.<domain>`.
    pub domain: String,
    /// SANs of the default server certificate (`localhost`, `127.0.0.1`, ...).
    pub server_names: Vec<String>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            mqtt_listen: SocketAddr::from(([0, 0, 0, 0], 8883)),
            alpn_listen: None,
            domain: "localhost".into(),
            server_names: vec!["localhost".into(), "127.0.0.1".into()],
        }
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot read the registry: {0}")]
    Store(#[from] store::StoreError),
    #[error("cannot issue the server certificate: {0}")]
    ServerCertificate(String),
    #[error("TLS configuration: {0}")]
    Tls(String),
}

/// State shared by all tasks.
pub(crate) struct Shared {
    pub domain: String,
    pub store: store::Store,
    /// Wakes the registry watcher before its next poll.
    pub reload_now: tokio::sync::Notify,
    pub registry: Arc<RwLock<Arc<Registry>>>,
    pub registry_rx: watch::Receiver<i64>,
    pub shutdown_rx: watch::Receiver<bool>,
    pub router: Router,
    pub metrics: Metrics,
    pub tls: tls::TlsConfigs,
    pub mqtt: mqtt_proto::Config,
    /// The origin of the monotonic time given to the protocol state machines.
    pub epoch: Instant,
    next_conn_id: AtomicU64,
}

impl Shared {
    pub fn registry(&self) -> Arc<Registry> {
        self.registry
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// When a CONNECT is about to be refused by the registry of version `decided_with`, the registry may have
    /// changed since (a certificate registered a moment ago): if the store's version is newer, return a registry at
    /// least that new, reloading now if the watcher has not yet. This costs one single-row query per refusal,
    /// never anything for accepted connections.
    pub async fn fresher_registry(&self, decided_with: i64) -> Option<Arc<Registry>> {
        let stored = self.store.registry_version().await.ok()?;
        if stored <= decided_with {
            return None;
        }
        // The watcher may already have swapped in the new registry since the decision was made.
        let current = self.registry();
        if current.version >= stored {
            return Some(current);
        }
        self.reload_now.notify_one();
        let mut rx = self.registry_rx.clone();
        tokio::time::timeout(Duration::from_secs(2), rx.wait_for(|v| *v >= stored))
            .await
            .ok()?
            .ok()?;
        Some(self.registry())
    }

    pub fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    pub fn next_conn_id(&self) -> u64 {
        self.next_conn_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// A running gateway.
pub struct Gateway {
    local_addrs: Vec<SocketAddr>,
    shutdown_tx: watch::Sender<bool>,
    shared: Arc<Shared>,
    listeners: Vec<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
    retained_writer: JoinHandle<()>,
    conn_guard: mpsc::Sender<()>,
    conn_done: mpsc::Receiver<()>,
}

impl Gateway {
    /// Binds the listeners (so errors like "address in use" surface here) and starts serving in the background.
    pub async fn start(
        config: GatewayConfig,
        store: store::Store,
        root_ca: Arc<pki::CertificateAuthority>,
        registry: &mut prometheus_client::registry::Registry,
    ) -> Result<Gateway, GatewayError> {
        let metrics = Metrics::new(registry);
        let snapshot = store.gateway_snapshot().await?;
        let version = snapshot.version;
        let cache = Arc::new(RwLock::new(Arc::new(Registry::from_snapshot(snapshot))));
        let tls =
            tls::server_configs(root_ca, &config.server_names, &config.domain, cache.clone())?;

        let mut bound = Vec::new();
        for addr in std::iter::once(config.mqtt_listen).chain(config.alpn_listen) {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| GatewayError::Bind { addr, source })?;
            bound.push(l);
        }
        let local_addrs = bound
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect::<Vec<_>>();

        let (retained_tx, retained_rx) = mpsc::unbounded_channel();
        let router = Router::new(retained_tx, metrics.clone());
        for m in store.retained_messages().await? {
            let scope = Scope {
                account_id: Arc::from(m.account_id.as_str()),
                region: Arc::from(m.region.as_str()),
            };
            let qos = if m.qos == 0 {
                QoS::AtMostOnce
            } else {
                QoS::AtLeastOnce
            };
            router.load_retained(
                &scope,
                m.topic,
                Retained {
                    payload: Bytes::from(m.payload),
                    qos,
                    properties: Default::default(),
                },
            );
        }

        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (registry_tx, registry_rx) = watch::channel(version);
        let shared = Arc::new(Shared {
            domain: config.domain.trim_matches('.').to_ascii_lowercase(),
            store: store.clone(),
            reload_now: tokio::sync::Notify::new(),
            registry: cache,
            registry_rx,
            shutdown_rx: shutdown_rx.clone(),
            router,
            metrics,
            tls,
            mqtt: mqtt_proto::Config::default(),
            epoch: Instant::now(),
            next_conn_id: AtomicU64::new(1),
        });

        let background = vec![
            tokio::spawn(watch_registry(store.clone(), shared.clone(), registry_tx)),
            tokio::spawn(sweep_sessions(shared.clone())),
        ];
        let retained_writer = tokio::spawn(write_retained(store, retained_rx));
        let (conn_guard, conn_done) = mpsc::channel(1);
        let listeners = bound
            .into_iter()
            .map(|l| {
                tokio::spawn(accept_loop(
                    l,
                    shared.clone(),
                    shutdown_rx.clone(),
                    conn_guard.clone(),
                ))
            })
            .collect();
        tracing::info!(addrs = ?local_addrs, "device gateway listening");
        Ok(Gateway {
            local_addrs,
            shutdown_tx,
            shared,
            listeners,
            background,
            retained_writer,
            conn_guard,
            conn_done,
        })
    }

    /// The addresses actually bound: the MQTT listener first, then the ALPN listener if configured.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.local_addrs.clone()
    }

    /// Stops accepting, disconnects every client (MQTT 5: DISCONNECT 0x8B), waits for the connections to end
    /// (at most 10 s) and for pending retained-message writes.
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        for l in self.listeners {
            let _ = l.await;
        }
        drop(self.conn_guard);
        let mut done = self.conn_done;
        if tokio::time::timeout(SHUTDOWN_GRACE, done.recv())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after the shutdown grace period");
        }
        self.shared.router.stop_retained_writer();
        let _ = self.retained_writer.await;
        for b in self.background {
            b.abort();
        }
        tracing::info!("device gateway stopped");
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    guard: mpsc::Sender<()>,
) {
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((tcp, peer)) => {
                    tokio::spawn(conn::serve(shared.clone(), tcp, peer, guard.clone()));
                }
                Err(e) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

/// Polls the registry change counter and swaps in a fresh identity cache when it moved.
async fn watch_registry(store: store::Store, shared: Arc<Shared>, tx: watch::Sender<i64>) {
    let mut current = *tx.borrow();
    let mut interval = tokio::time::interval(REGISTRY_POLL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shared.reload_now.notified() => {}
        }
        let version = match store.registry_version().await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the registry change counter");
                continue;
            }
        };
        if version == current {
            continue;
        }
        match store.gateway_snapshot().await {
            Ok(snap) => {
                current = snap.version;
                let fresh = Arc::new(Registry::from_snapshot(snap));
                *shared
                    .registry
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
                shared.metrics.registry_reloads.inc();
                tracing::debug!(version = current, "identity cache reloaded");
                let _ = tx.send(current);
            }
            Err(e) => tracing::warn!(error = %e, "cannot reload the registry"),
        }
    }
}

async fn sweep_sessions(shared: Arc<Shared>) {
    let mut interval = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        interval.tick().await;
        shared.router.sweep(shared.now());
    }
}

async fn write_retained(store: store::Store, mut rx: mpsc::UnboundedReceiver<RetainedWrite>) {
    while let Some(w) = rx.recv().await {
        match w {
            RetainedWrite::Put {
                scope,
                topic,
                payload,
                qos,
            } => {
                if let Err(e) = store
                    .put_retained_message(&scope.account_id, &scope.region, &topic, &payload, qos)
                    .await
                {
                    tracing::warn!(error = %e, topic = %topic, "cannot store a retained message");
                }
            }
            RetainedWrite::Stop => return,
        }
    }
}
