//! Lifecycle event payloads, as AWS IoT publishes them (spec §8.5).

use std::net::IpAddr;

use serde_json::{Value, json};

fn timestamp_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

fn with_thing(mut v: Value, thing: Option<&str>) -> String {
    if let (Some(t), Some(obj)) = (thing, v.as_object_mut()) {
        obj.insert("thingName".into(), Value::from(t));
    }
    v.to_string()
}

/// `$aws/events/presence/connected/<clientId>`.
pub fn connected(
    client_id: &str,
    session: &str,
    principal: &str,
    ip: IpAddr,
    version: u64,
    thing: Option<&str>,
) -> String {
    with_thing(
        json!({
            "clientId": client_id,
            "timestamp": timestamp_ms(),
            "eventType": "connected",
            "sessionIdentifier": session,
            "principalIdentifier": principal,
            "ipAddress": ip.to_string(),
            "versionNumber": version,
        }),
        thing,
    )
}

/// `$aws/events/presence/disconnected/<clientId>`.
pub fn disconnected(
    client_id: &str,
    session: &str,
    principal: &str,
    client_initiated: bool,
    reason: &str,
    version: u64,
    thing: Option<&str>,
) -> String {
    with_thing(
        json!({
            "clientId": client_id,
            "timestamp": timestamp_ms(),
            "eventType": "disconnected",
            "clientInitiatedDisconnect": client_initiated,
            "sessionIdentifier": session,
            "principalIdentifier": principal,
            "disconnectReason": reason,
            "versionNumber": version,
        }),
        thing,
    )
}

/// `$aws/events/subscriptions/subscribed|unsubscribed/<clientId>`.
pub fn subscriptions(
    event_type: &str,
    client_id: &str,
    session: &str,
    principal: &str,
    topics: &[String],
) -> String {
    json!({
        "clientId": client_id,
        "timestamp": timestamp_ms(),
        "eventType": event_type,
        "sessionIdentifier": session,
        "principalIdentifier": principal,
        "topics": topics,
    })
    .to_string()
}
