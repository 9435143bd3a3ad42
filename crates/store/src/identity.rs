//! Read queries for the device gateway: the registry snapshot its identity cache is built from, the change
//! counter it polls, and retained MQTT messages.
//!
//! The gateway never queries per connection or per message: it loads one [`GatewaySnapshot`] at start and again
//! whenever [`Store::registry_version`] changes (triggers in `0002_gateway.sql` bump it on every registry write,
//! from any process), then answers every lookup from memory.

use std::collections::BTreeMap;

use sqlx::Row;

use crate::{CertificateMode, CertificateStatus, PrincipalType, Result, StoreError, now_ms};

/// One registration of a device certificate (a certificate may be registered in several accounts, MAR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRegistration {
    pub cert_id: String,
    pub account_id: String,
    pub region: String,
    pub status: CertificateStatus,
    pub mode: CertificateMode,
    pub ca_cert_id: Option<String>,
    /// Validity in unix seconds.
    pub not_before: i64,
    pub not_after: i64,
}

/// A registered CA certificate, as far as connection-time checks need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaRecord {
    pub cert_id: String,
    pub account_id: String,
    pub region: String,
    pub status: CertificateStatus,
    pub mode: CertificateMode,
}

/// The default version of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDefault {
    pub account_id: String,
    pub region: String,
    pub name: String,
    pub version_id: i64,
    /// Unique per policy version row: equal ids mean an identical document.
    pub generation_id: String,
    pub document: String,
}

/// A policy attachment (`target` is a certificate or thing-group ARN, or a Cognito id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyAttachment {
    pub account_id: String,
    pub region: String,
    pub policy_name: String,
    pub target: String,
}

/// A thing ↔ principal attachment (`principal` is a certificate ARN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalAttachment {
    pub account_id: String,
    pub region: String,
    pub thing_name: String,
    pub principal: String,
    pub principal_type: PrincipalType,
}

/// A thing that has at least one principal attached, with what policy variables need, and its direct groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedThing {
    pub account_id: String,
    pub region: String,
    pub name: String,
    pub thing_type: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub groups: Vec<String>,
}

/// A thing group and its parent (for policy inheritance through ancestors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupParent {
    pub account_id: String,
    pub region: String,
    pub name: String,
    pub parent: Option<String>,
}

/// Everything the gateway's identity and authorization cache is built from.
#[derive(Debug, Clone, Default)]
pub struct GatewaySnapshot {
    /// The registry version this snapshot was read at (see [`Store::registry_version`]).
    pub version: i64,
    /// `(account_id, endpoint_prefix)`.
    pub accounts: Vec<(String, String)>,
    pub certificates: Vec<CertRegistration>,
    pub ca_certificates: Vec<CaRecord>,
    pub policies: Vec<PolicyDefault>,
    pub policy_attachments: Vec<PolicyAttachment>,
    pub principal_attachments: Vec<PrincipalAttachment>,
    pub things: Vec<AttachedThing>,
    pub groups: Vec<GroupParent>,
}

/// A retained MQTT message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedMessage {
    pub account_id: String,
    pub region: String,
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub updated_ms: i64,
}

impl crate::Store {
    /// The registry change counter: it changes whenever any table the gateway caches changes.
    pub async fn registry_version(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT counter FROM registry_changes WHERE id = 1")
                .fetch_one(&self.read)
                .await?,
        )
    }

    /// Reads the whole gateway snapshot in one read transaction, so it is consistent with its `version`.
    pub async fn gateway_snapshot(&self) -> Result<GatewaySnapshot> {
        let mut tx = self.read.begin().await?;
        let version: i64 = sqlx::query_scalar("SELECT counter FROM registry_changes WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let accounts: Vec<(String, String)> =
            sqlx::query_as("SELECT account_id, endpoint_prefix FROM accounts")
                .fetch_all(&mut *tx)
                .await?;

        let rows = sqlx::query(
            "SELECT cert_id, account_id, region, status, mode, ca_cert_id, not_before, not_after FROM certificates",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut certificates = Vec::with_capacity(rows.len());
        for r in &rows {
            certificates.push(CertRegistration {
                cert_id: r.try_get("cert_id")?,
                account_id: r.try_get("account_id")?,
                region: r.try_get("region")?,
                status: parse_status(r.try_get("status")?)?,
                mode: parse_mode(r.try_get("mode")?)?,
                ca_cert_id: r.try_get("ca_cert_id")?,
                not_before: r.try_get("not_before")?,
                not_after: r.try_get("not_after")?,
            });
        }

        let rows =
            sqlx::query("SELECT cert_id, account_id, region, status, mode FROM ca_certificates")
                .fetch_all(&mut *tx)
                .await?;
        let mut ca_certificates = Vec::with_capacity(rows.len());
        for r in &rows {
            ca_certificates.push(CaRecord {
                cert_id: r.try_get("cert_id")?,
                account_id: r.try_get("account_id")?,
                region: r.try_get("region")?,
                status: parse_status(r.try_get("status")?)?,
                mode: parse_mode(r.try_get("mode")?)?,
            });
        }

        let rows = sqlx::query(
            "SELECT p.account_id, p.region, p.name, v.version_id, v.generation_id, v.document
             FROM policies p JOIN policy_versions v ON v.account_id = p.account_id AND v.region = p.region
               AND v.policy_name = p.name AND v.version_id = p.default_version",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut policies = Vec::with_capacity(rows.len());
        for r in &rows {
            policies.push(PolicyDefault {
                account_id: r.try_get("account_id")?,
                region: r.try_get("region")?,
                name: r.try_get("name")?,
                version_id: r.try_get("version_id")?,
                generation_id: r.try_get("generation_id")?,
                document: r.try_get("document")?,
            });
        }

        let rows =
            sqlx::query("SELECT account_id, region, policy_name, target FROM policy_targets")
                .fetch_all(&mut *tx)
                .await?;
        let mut policy_attachments = Vec::with_capacity(rows.len());
        for r in &rows {
            policy_attachments.push(PolicyAttachment {
                account_id: r.try_get("account_id")?,
                region: r.try_get("region")?,
                policy_name: r.try_get("policy_name")?,
                target: r.try_get("target")?,
            });
        }

        let rows = sqlx::query(
            "SELECT account_id, region, thing_name, principal, principal_type FROM thing_principals",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut principal_attachments = Vec::with_capacity(rows.len());
        for r in &rows {
            let kind: String = r.try_get("principal_type")?;
            principal_attachments.push(PrincipalAttachment {
                account_id: r.try_get("account_id")?,
                region: r.try_get("region")?,
                thing_name: r.try_get("thing_name")?,
                principal: r.try_get("principal")?,
                principal_type: match kind.as_str() {
                    "EXCLUSIVE_THING" => PrincipalType::Exclusive,
                    _ => PrincipalType::NonExclusive,
                },
            });
        }

        // Only things with a principal can ever be a connection's thing; the rest of the fleet is not loaded.
        let rows = sqlx::query(
            "SELECT t.account_id, t.region, t.name, t.thing_type, t.attributes,
                    (SELECT group_concat(m.group_name, char(31)) FROM thing_group_members m
                      WHERE m.account_id = t.account_id AND m.region = t.region AND m.thing_name = t.name) AS groups
             FROM things t
             WHERE EXISTS (SELECT 1 FROM thing_principals p
                            WHERE p.account_id = t.account_id AND p.region = t.region AND p.thing_name = t.name)",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut things = Vec::with_capacity(rows.len());
        for r in &rows {
            let attributes: String = r.try_get("attributes")?;
            let groups: Option<String> = r.try_get("groups")?;
            things.push(AttachedThing {
                account_id: r.try_get("account_id")?,
                region: r.try_get("region")?,
                name: r.try_get("name")?,
                thing_type: r.try_get("thing_type")?,
                attributes: serde_json::from_str(&attributes)
                    .map_err(|e| StoreError::Corrupt(format!("thing attributes: {e}")))?,
                groups: groups
                    .map(|g| g.split('\u{1f}').map(str::to_owned).collect())
                    .unwrap_or_default(),
            });
        }

        let rows = sqlx::query("SELECT account_id, region, name, parent FROM thing_groups")
            .fetch_all(&mut *tx)
            .await?;
        let mut groups = Vec::with_capacity(rows.len());
        for r in &rows {
            groups.push(GroupParent {
                account_id: r.try_get("account_id")?,
                region: r.try_get("region")?,
                name: r.try_get("name")?,
                parent: r.try_get("parent")?,
            });
        }
        tx.commit().await?;
        Ok(GatewaySnapshot {
            version,
            accounts,
            certificates,
            ca_certificates,
            policies,
            policy_attachments,
            principal_attachments,
            things,
            groups,
        })
    }

    /// Every retained message of every account.
    pub async fn retained_messages(&self) -> Result<Vec<RetainedMessage>> {
        let rows = sqlx::query(
            "SELECT account_id, region, topic, payload, qos, updated_ms FROM retained_messages",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                let qos: i64 = r.try_get("qos")?;
                Ok(RetainedMessage {
                    account_id: r.try_get("account_id")?,
                    region: r.try_get("region")?,
                    topic: r.try_get("topic")?,
                    payload: r.try_get("payload")?,
                    qos: u8::try_from(qos).unwrap_or(1),
                    updated_ms: r.try_get("updated_ms")?,
                })
            })
            .collect()
    }

    /// Stores (replaces) the retained message of a topic; an empty payload deletes it (MQTT rule).
    pub async fn put_retained_message(
        &self,
        account_id: &str,
        region: &str,
        topic: &str,
        payload: &[u8],
        qos: u8,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        if payload.is_empty() {
            sqlx::query(
                "DELETE FROM retained_messages WHERE account_id = ? AND region = ? AND topic = ?",
            )
            .bind(account_id)
            .bind(region)
            .bind(topic)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(
                "INSERT INTO retained_messages (account_id, region, topic, payload, qos, updated_ms)
                 VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (account_id, region, topic)
                 DO UPDATE SET payload = excluded.payload, qos = excluded.qos, updated_ms = excluded.updated_ms",
            )
            .bind(account_id)
            .bind(region)
            .bind(topic)
            .bind(payload)
            .bind(i64::from(qos))
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

fn parse_status(s: String) -> Result<CertificateStatus> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("certificate status {s}")))
}

fn parse_mode(s: String) -> Result<CertificateMode> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("certificate mode {s}")))
}
