//! Prometheus metrics, registered under the `onboard_gateway` prefix.
//!
//! Counters on the per-message path are resolved once (a `Counter` clone shares its atomic), so counting a
//! message is one atomic add with no label lookup or allocation.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, &'static str)>;

#[derive(Clone)]
pub struct Metrics {
    pub connections_open: Gauge,
    handshakes: Family<Labels, Counter>,
    refusals: Family<Labels, Counter>,
    policy_denials: Family<Labels, Counter>,
    disconnects: Family<Labels, Counter>,
    dropped: Family<Labels, Counter>,
    pub messages_in: [Counter; 2],
    pub messages_out: [Counter; 2],
    pub offline_sessions: Gauge,
    pub offline_queued: Gauge,
    pub registry_reloads: Counter,
}

impl Metrics {
    pub fn new(registry: &mut Registry) -> Metrics {
        let reg = registry.sub_registry_with_prefix("onboard_gateway");
        let messages_in: Family<Labels, Counter> = Family::default();
        let messages_out: Family<Labels, Counter> = Family::default();
        // One statement per counter: `get_or_create` returns a read guard, and a second call creating another
        // entry while a guard from the same statement is alive would deadlock.
        let in0 = messages_in.get_or_create(&vec![("qos", "0")]).clone();
        let in1 = messages_in.get_or_create(&vec![("qos", "1")]).clone();
        let out0 = messages_out.get_or_create(&vec![("qos", "0")]).clone();
        let out1 = messages_out.get_or_create(&vec![("qos", "1")]).clone();
        let m = Metrics {
            connections_open: Gauge::default(),
            handshakes: Family::default(),
            refusals: Family::default(),
            policy_denials: Family::default(),
            disconnects: Family::default(),
            dropped: Family::default(),
            messages_in: [in0, in1],
            messages_out: [out0, out1],
            offline_sessions: Gauge::default(),
            offline_queued: Gauge::default(),
            registry_reloads: Counter::default(),
        };
        reg.register(
            "connections_open",
            "MQTT connections currently accepted",
            m.connections_open.clone(),
        );
        reg.register(
            "handshakes",
            "TLS handshakes by result (ok, failed, timeout)",
            m.handshakes.clone(),
        );
        reg.register(
            "refusals",
            "Connections refused after the handshake, by reason",
            m.refusals.clone(),
        );
        reg.register(
            "messages_in",
            "PUBLISH packets accepted from clients, by QoS",
            messages_in,
        );
        reg.register(
            "messages_out",
            "PUBLISH packets sent to clients, by QoS",
            messages_out,
        );
        reg.register(
            "policy_denials",
            "Requests denied by policy, by action",
            m.policy_denials.clone(),
        );
        reg.register(
            "disconnects",
            "Closed MQTT connections by AWS disconnect reason",
            m.disconnects.clone(),
        );
        reg.register(
            "messages_dropped",
            "Messages not delivered, by reason",
            m.dropped.clone(),
        );
        reg.register(
            "offline_sessions",
            "Persistent sessions kept for disconnected clients",
            m.offline_sessions.clone(),
        );
        reg.register(
            "offline_queued_messages",
            "QoS 1 messages queued in offline sessions",
            m.offline_queued.clone(),
        );
        reg.register(
            "registry_reloads",
            "Identity cache reloads after a registry change",
            m.registry_reloads.clone(),
        );
        m
    }

    pub fn handshake(&self, result: &'static str) {
        self.handshakes
            .get_or_create(&vec![("result", result)])
            .inc();
    }

    pub fn refusal(&self, reason: &'static str) {
        self.refusals.get_or_create(&vec![("reason", reason)]).inc();
    }

    pub fn policy_denial(&self, action: &'static str) {
        self.policy_denials
            .get_or_create(&vec![("action", action)])
            .inc();
    }

    pub fn disconnect(&self, reason: &'static str) {
        self.disconnects
            .get_or_create(&vec![("reason", reason)])
            .inc();
    }

    pub fn dropped(&self, reason: &'static str) {
        self.dropped.get_or_create(&vec![("reason", reason)]).inc();
    }
}
