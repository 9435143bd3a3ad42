//! Device certificates, CA certificates, registration codes and transfers between accounts.

use std::fmt;
use std::str::FromStr;

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use crate::db::{count_in, list_page};
use crate::{Page, PageRequest, Result, Scope, Store, StoreError, new_id, now_ms};

/// CAs with the same subject one account may hold in a region.
const MAX_CAS_PER_SUBJECT: i64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateStatus {
    Active,
    Inactive,
    Revoked,
    PendingTransfer,
    RegisterInactive,
    PendingActivation,
}

impl CertificateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Inactive => "INACTIVE",
            Self::Revoked => "REVOKED",
            Self::PendingTransfer => "PENDING_TRANSFER",
            Self::RegisterInactive => "REGISTER_INACTIVE",
            Self::PendingActivation => "PENDING_ACTIVATION",
        }
    }
}

impl fmt::Display for CertificateStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CertificateStatus {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "ACTIVE" => Self::Active,
            "INACTIVE" => Self::Inactive,
            "REVOKED" => Self::Revoked,
            "PENDING_TRANSFER" => Self::PendingTransfer,
            "REGISTER_INACTIVE" => Self::RegisterInactive,
            "PENDING_ACTIVATION" => Self::PendingActivation,
            other => {
                return Err(StoreError::InvalidRequest(format!(
                    "unknown certificate status {other}"
                )));
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateMode {
    Default,
    SniOnly,
}

impl CertificateMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "DEFAULT",
            Self::SniOnly => "SNI_ONLY",
        }
    }
}

impl FromStr for CertificateMode {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "DEFAULT" => Ok(Self::Default),
            "SNI_ONLY" => Ok(Self::SniOnly),
            other => Err(StoreError::InvalidRequest(format!(
                "unknown certificate mode {other}"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub cert_id: String,
    pub arn: String,
    pub pem: String,
    pub ca_cert_id: Option<String>,
    pub status: CertificateStatus,
    pub mode: CertificateMode,
    pub owned_by: String,
    pub previous_owned_by: Option<String>,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub customer_version: i64,
    pub generation_id: String,
    pub not_before: i64,
    pub not_after: i64,
    pub transfer_to: Option<String>,
    pub transfer_message: Option<String>,
    pub reject_reason: Option<String>,
    pub transfer_ms: Option<i64>,
    pub accept_ms: Option<i64>,
    pub reject_ms: Option<i64>,
}

/// A certificate to record. The caller has parsed it and verified whatever its path requires.
#[derive(Debug, Clone)]
pub struct NewCertificate {
    pub cert_id: String,
    pub pem: String,
    /// The registered CA (in the same account and region) that issued it; it must be ACTIVE.
    pub ca_cert_id: Option<String>,
    pub status: CertificateStatus,
    pub mode: CertificateMode,
    pub not_before: i64,
    pub not_after: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingCertificate {
    pub cert_id: String,
    pub arn: String,
    pub transferred_to: String,
    pub transfer_ms: Option<i64>,
    pub transfer_message: Option<String>,
    pub created_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CaCertificate {
    pub cert_id: String,
    pub arn: String,
    pub pem: String,
    pub subject_hex: String,
    pub status: CertificateStatus,
    pub auto_registration: bool,
    pub mode: CertificateMode,
    pub registration_config: Option<serde_json::Value>,
    pub owned_by: String,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub customer_version: i64,
    pub generation_id: String,
    pub not_before: i64,
    pub not_after: i64,
}

/// A CA to register; the caller has checked the proof of possession where the mode requires it.
#[derive(Debug, Clone)]
pub struct CaRegistration {
    pub cert_id: String,
    pub pem: String,
    pub subject_hex: String,
    pub mode: CertificateMode,
    pub active: bool,
    pub auto_registration: bool,
    pub registration_config: Option<serde_json::Value>,
    pub not_before: i64,
    pub not_after: i64,
}

#[derive(Debug, Clone, Default)]
pub struct CaUpdate {
    pub active: Option<bool>,
    pub auto_registration: Option<bool>,
    pub registration_config: Option<serde_json::Value>,
    pub remove_auto_registration: bool,
}

const CERT_COLUMNS: &str = "account_id, cert_id, pem, ca_cert_id, status, mode, previous_owner, created_ms,
    modified_ms, customer_version, generation_id, not_before, not_after, transfer_to, transfer_message,
    reject_reason, transfer_ms, accept_ms, reject_ms";

fn cert_from_row(region: &str, r: &SqliteRow) -> Result<Certificate> {
    let owner: String = r.try_get("account_id")?;
    let cert_id: String = r.try_get("cert_id")?;
    Ok(Certificate {
        arn: Scope::new(owner.clone(), region).arn("cert", &cert_id),
        cert_id,
        pem: r.try_get("pem")?,
        ca_cert_id: r.try_get("ca_cert_id")?,
        status: r.try_get::<String, _>("status")?.parse()?,
        mode: r.try_get::<String, _>("mode")?.parse()?,
        owned_by: owner,
        previous_owned_by: r.try_get("previous_owner")?,
        created_ms: r.try_get("created_ms")?,
        modified_ms: r.try_get("modified_ms")?,
        customer_version: r.try_get("customer_version")?,
        generation_id: r.try_get("generation_id")?,
        not_before: r.try_get("not_before")?,
        not_after: r.try_get("not_after")?,
        transfer_to: r.try_get("transfer_to")?,
        transfer_message: r.try_get("transfer_message")?,
        reject_reason: r.try_get("reject_reason")?,
        transfer_ms: r.try_get("transfer_ms")?,
        accept_ms: r.try_get("accept_ms")?,
        reject_ms: r.try_get("reject_ms")?,
    })
}

const CA_COLUMNS: &str = "account_id, cert_id, pem, subject_hex, status, auto_registration, mode,
    registration_config, created_ms, modified_ms, customer_version, generation_id, not_before, not_after";

fn ca_from_row(region: &str, r: &SqliteRow) -> Result<CaCertificate> {
    let owner: String = r.try_get("account_id")?;
    let cert_id: String = r.try_get("cert_id")?;
    let config: Option<String> = r.try_get("registration_config")?;
    Ok(CaCertificate {
        arn: Scope::new(owner.clone(), region).arn("cacert", &cert_id),
        cert_id,
        pem: r.try_get("pem")?,
        subject_hex: r.try_get("subject_hex")?,
        status: r.try_get::<String, _>("status")?.parse()?,
        auto_registration: r.try_get::<String, _>("auto_registration")? == "ENABLE",
        mode: r.try_get::<String, _>("mode")?.parse()?,
        registration_config: config
            .map(|c| serde_json::from_str(&c))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("registration config: {e}")))?,
        owned_by: owner,
        created_ms: r.try_get("created_ms")?,
        modified_ms: r.try_get("modified_ms")?,
        customer_version: r.try_get("customer_version")?,
        generation_id: r.try_get("generation_id")?,
        not_before: r.try_get("not_before")?,
        not_after: r.try_get("not_after")?,
    })
}

fn cert_key(c: &Certificate) -> (i64, String) {
    (c.created_ms, c.cert_id.clone())
}

fn cert_not_found(id: &str) -> StoreError {
    StoreError::NotFound(format!("The certificate {id} does not exist"))
}

fn ca_not_found(id: &str) -> StoreError {
    StoreError::NotFound(format!("The CA certificate {id} does not exist"))
}

type Tx = Transaction<'static, Sqlite>;

impl Store {
    async fn cert_in(tx: &mut Tx, scope: &Scope, id: &str) -> Result<Option<Certificate>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CERT_COLUMNS} FROM certificates WHERE account_id = ? AND region = ? AND cert_id = ?"
        )))
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        row.map(|r| cert_from_row(&scope.region, &r)).transpose()
    }

    async fn ca_in(tx: &mut Tx, scope: &Scope, id: &str) -> Result<Option<CaCertificate>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CA_COLUMNS} FROM ca_certificates WHERE account_id = ? AND region = ? AND cert_id = ?"
        )))
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        row.map(|r| ca_from_row(&scope.region, &r)).transpose()
    }

    /// Records a certificate (CreateKeysAndCertificate, CreateCertificateFromCsr, RegisterCertificate,
    /// RegisterCertificateWithoutCA). A certificate held in DEFAULT mode belongs to one account per region.
    pub async fn insert_certificate(
        &self,
        scope: &Scope,
        new: &NewCertificate,
    ) -> Result<Certificate> {
        let mut tx = self.begin().await?;
        if Self::cert_in(&mut tx, scope, &new.cert_id).await?.is_some() {
            return Err(StoreError::AlreadyExists {
                message: "The certificate is already provisioned or registered".into(),
                resource_id: new.cert_id.clone(),
                resource_arn: Some(scope.arn("cert", &new.cert_id)),
            });
        }
        let elsewhere: Vec<(String, String)> = sqlx::query_as(
            "SELECT account_id, mode FROM certificates WHERE cert_id = ? AND region = ? AND account_id <> ?",
        )
        .bind(&new.cert_id)
        .bind(&scope.region)
        .bind(&scope.account_id)
        .fetch_all(&mut *tx)
        .await?;
        let default_elsewhere = elsewhere.iter().any(|(_, m)| m == "DEFAULT");
        if default_elsewhere || (new.mode == CertificateMode::Default && !elsewhere.is_empty()) {
            return Err(StoreError::AlreadyExists {
                message: "The certificate is already registered in another account in this region; a certificate \
                          can be registered in several accounts only in SNI_ONLY mode"
                    .into(),
                resource_id: new.cert_id.clone(),
                resource_arn: None,
            });
        }
        if let Some(ca_id) = &new.ca_cert_id {
            let ca = Self::ca_in(&mut tx, scope, ca_id)
                .await?
                .ok_or_else(|| ca_not_found(ca_id))?;
            if ca.status != CertificateStatus::Active {
                return Err(StoreError::CertificateState(format!(
                    "The CA certificate {ca_id} is not ACTIVE; certificates can be registered only under an active CA"
                )));
            }
        }
        let now = now_ms();
        sqlx::query(
            "INSERT INTO certificates (account_id, region, cert_id, pem, ca_cert_id, status, mode, created_ms,
             modified_ms, customer_version, generation_id, not_before, not_after)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(&new.cert_id)
        .bind(&new.pem)
        .bind(&new.ca_cert_id)
        .bind(new.status.as_str())
        .bind(new.mode.as_str())
        .bind(now)
        .bind(now)
        .bind(new_id())
        .bind(new.not_before)
        .bind(new.not_after)
        .execute(&mut *tx)
        .await?;
        let cert = Self::cert_in(&mut tx, scope, &new.cert_id)
            .await?
            .ok_or_else(|| cert_not_found(&new.cert_id))?;
        tx.commit().await?;
        Ok(cert)
    }

    /// The certificate as its owner sees it, or as the target of a pending transfer sees it.
    pub async fn describe_certificate(&self, scope: &Scope, id: &str) -> Result<Certificate> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CERT_COLUMNS} FROM certificates WHERE region = ? AND cert_id = ?
             AND (account_id = ? OR (transfer_to = ? AND status = 'PENDING_TRANSFER'))
             ORDER BY account_id = ? DESC LIMIT 1"
        )))
        .bind(&scope.region)
        .bind(id)
        .bind(&scope.account_id)
        .bind(&scope.account_id)
        .bind(&scope.account_id)
        .fetch_optional(&self.read)
        .await?;
        match row {
            Some(r) => cert_from_row(&scope.region, &r),
            None => Err(cert_not_found(id)),
        }
    }

    /// ListCertificates (including certificates being transferred to this account) or, with `ca`,
    /// ListCertificatesByCA.
    pub async fn list_certificates(
        &self,
        scope: &Scope,
        ca: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Certificate>> {
        let mut sql = format!(
            "SELECT {CERT_COLUMNS} FROM certificates WHERE region = ?
             AND (account_id = ? OR (transfer_to = ? AND status = 'PENDING_TRANSFER'))"
        );
        if ca.is_some() {
            sql.push_str(" AND ca_cert_id = ?");
        }
        list_page(
            &self.read,
            &sql,
            "cert_id",
            page,
            |q| {
                let q = q
                    .bind(&scope.region)
                    .bind(&scope.account_id)
                    .bind(&scope.account_id);
                match ca {
                    Some(ca) => q.bind(ca),
                    None => q,
                }
            },
            |r| cert_from_row(&scope.region, r),
            cert_key,
        )
        .await
    }

    /// UpdateCertificate. Only ACTIVE, INACTIVE and REVOKED may be set; REVOKED is final; a certificate being
    /// transferred cannot change; activating needs the issuing CA (when registered) to be ACTIVE.
    /// Returns the certificate as it was before.
    pub async fn update_certificate_status(
        &self,
        scope: &Scope,
        id: &str,
        new_status: CertificateStatus,
    ) -> Result<Certificate> {
        use CertificateStatus::*;
        if !matches!(new_status, Active | Inactive | Revoked) {
            return Err(StoreError::CertificateState(format!(
                "The status {new_status} cannot be set by a caller; use ACTIVE, INACTIVE or REVOKED"
            )));
        }
        let mut tx = self.begin().await?;
        let cert = Self::cert_in(&mut tx, scope, id)
            .await?
            .ok_or_else(|| cert_not_found(id))?;
        match cert.status {
            Revoked if new_status != Revoked => {
                return Err(StoreError::CertificateState(format!(
                    "The certificate {id} is REVOKED; a revoked certificate cannot be reactivated"
                )));
            }
            PendingTransfer => {
                return Err(StoreError::CertificateState(format!(
                    "The certificate {id} is pending transfer; cancel or finish the transfer first"
                )));
            }
            _ => {}
        }
        if new_status == Active
            && let Some(ca_id) = &cert.ca_cert_id
            && let Some(ca) = Self::ca_in(&mut tx, scope, ca_id).await?
            && ca.status != Active
        {
            return Err(StoreError::CertificateState(format!(
                "The CA certificate {ca_id} that issued {id} is not ACTIVE"
            )));
        }
        sqlx::query(
            "UPDATE certificates SET status = ?, modified_ms = ?, customer_version = customer_version + 1,
             generation_id = ? WHERE account_id = ? AND region = ? AND cert_id = ?",
        )
        .bind(new_status.as_str())
        .bind(now_ms())
        .bind(new_id())
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(cert)
    }

    /// DeleteCertificate: refused while ACTIVE or being transferred, while a thing is attached, and while a policy
    /// is attached unless `force` (which then removes those attachments too).
    pub async fn delete_certificate(&self, scope: &Scope, id: &str, force: bool) -> Result<()> {
        let mut tx = self.begin().await?;
        let cert = Self::cert_in(&mut tx, scope, id)
            .await?
            .ok_or_else(|| cert_not_found(id))?;
        match cert.status {
            CertificateStatus::Active => {
                return Err(StoreError::CertificateState(
                    "Certificate must be deactivated (not ACTIVE) before deletion.".into(),
                ));
            }
            CertificateStatus::PendingTransfer => {
                return Err(StoreError::CertificateState(
                    "Certificate is pending transfer; cancel the transfer before deletion.".into(),
                ));
            }
            _ => {}
        }
        let things = count_in(&mut tx, "thing_principals", "principal", scope, &cert.arn).await?;
        if things > 0 {
            return Err(StoreError::DeleteConflict(format!(
                "Certificate {id} is attached to {things} thing(s); detach it first"
            )));
        }
        let policies = count_in(&mut tx, "policy_targets", "target", scope, &cert.arn).await?;
        if policies > 0 && !force {
            return Err(StoreError::DeleteConflict(format!(
                "Certificate {id} has {policies} attached polic(ies); detach them or use forceDelete"
            )));
        }
        sqlx::query(
            "DELETE FROM policy_targets WHERE account_id = ? AND region = ? AND target = ?",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(&cert.arn)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM certificates WHERE account_id = ? AND region = ? AND cert_id = ?")
            .bind(&scope.account_id)
            .bind(&scope.region)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- transfers ----

    /// TransferCertificate: the certificate must not be ACTIVE and must have no policy or thing attached.
    /// Returns the certificate's ARN in the target account.
    pub async fn transfer_certificate(
        &self,
        scope: &Scope,
        id: &str,
        target: &str,
        message: Option<&str>,
    ) -> Result<String> {
        if target == scope.account_id {
            return Err(StoreError::InvalidRequest(
                "a certificate cannot be transferred to its own account".into(),
            ));
        }
        let mut tx = self.begin().await?;
        let cert = Self::cert_in(&mut tx, scope, id)
            .await?
            .ok_or_else(|| cert_not_found(id))?;
        let known: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE account_id = ?")
            .bind(target)
            .fetch_one(&mut *tx)
            .await?;
        if known == 0 {
            return Err(StoreError::InvalidRequest(format!(
                "The target account {target} does not exist"
            )));
        }
        match cert.status {
            CertificateStatus::Active => {
                return Err(StoreError::CertificateState(format!(
                    "The certificate {id} is ACTIVE; deactivate it before transferring"
                )));
            }
            CertificateStatus::PendingTransfer => {
                return Err(StoreError::TransferConflict(format!(
                    "The certificate {id} is already pending transfer"
                )));
            }
            _ => {}
        }
        let attached: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM policy_targets WHERE account_id = ?1 AND region = ?2 AND target = ?3)
                  + (SELECT COUNT(*) FROM thing_principals WHERE account_id = ?1 AND region = ?2 AND principal = ?3)",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(&cert.arn)
        .fetch_one(&mut *tx)
        .await?;
        if attached > 0 {
            return Err(StoreError::TransferConflict(format!(
                "The certificate {id} still has policies or things attached; detach them before transferring"
            )));
        }
        let in_target: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM certificates WHERE account_id = ? AND region = ? AND cert_id = ?",
        )
        .bind(target)
        .bind(&scope.region)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        if in_target > 0 {
            return Err(StoreError::TransferConflict(format!(
                "The certificate {id} is already registered in account {target}"
            )));
        }
        sqlx::query(
            "UPDATE certificates SET status = 'PENDING_TRANSFER', transfer_to = ?, transfer_message = ?,
             transfer_ms = ?, reject_reason = NULL, reject_ms = NULL, accept_ms = NULL, modified_ms = ?
             WHERE account_id = ? AND region = ? AND cert_id = ?",
        )
        .bind(target)
        .bind(message)
        .bind(now_ms())
        .bind(now_ms())
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Scope::new(target, &scope.region).arn("cert", id))
    }

    /// The pending transfer of `id` to `scope`'s account, or the reason there is none.
    async fn incoming_transfer(tx: &mut Tx, scope: &Scope, id: &str) -> Result<Certificate> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CERT_COLUMNS} FROM certificates WHERE region = ? AND cert_id = ?
             AND transfer_to = ? ORDER BY status = 'PENDING_TRANSFER' DESC LIMIT 1"
        )))
        .bind(&scope.region)
        .bind(id)
        .bind(&scope.account_id)
        .fetch_optional(&mut **tx)
        .await?;
        match row {
            Some(r) => {
                let cert = cert_from_row(&scope.region, &r)?;
                if cert.status == CertificateStatus::PendingTransfer {
                    Ok(cert)
                } else {
                    Err(StoreError::TransferAlreadyCompleted(format!(
                        "The transfer of certificate {id} has already completed"
                    )))
                }
            }
            None => Err(cert_not_found(id)),
        }
    }

    pub async fn accept_certificate_transfer(
        &self,
        scope: &Scope,
        id: &str,
        set_active: bool,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let cert = Self::incoming_transfer(&mut tx, scope, id).await?;
        let status = if set_active {
            CertificateStatus::Active
        } else {
            CertificateStatus::Inactive
        };
        sqlx::query(
            "UPDATE certificates SET account_id = ?, previous_owner = ?, status = ?, accept_ms = ?, modified_ms = ?,
             ca_cert_id = NULL WHERE account_id = ? AND region = ? AND cert_id = ?",
        )
        .bind(&scope.account_id)
        .bind(&cert.owned_by)
        .bind(status.as_str())
        .bind(now_ms())
        .bind(now_ms())
        .bind(&cert.owned_by)
        .bind(&scope.region)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn reject_certificate_transfer(
        &self,
        scope: &Scope,
        id: &str,
        reason: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let cert = Self::incoming_transfer(&mut tx, scope, id).await?;
        sqlx::query(
            "UPDATE certificates SET status = 'INACTIVE', reject_reason = ?, reject_ms = ?, modified_ms = ?
             WHERE account_id = ? AND region = ? AND cert_id = ?",
        )
        .bind(reason)
        .bind(now_ms())
        .bind(now_ms())
        .bind(&cert.owned_by)
        .bind(&scope.region)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn cancel_certificate_transfer(&self, scope: &Scope, id: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        let cert = Self::cert_in(&mut tx, scope, id)
            .await?
            .ok_or_else(|| cert_not_found(id))?;
        if cert.status != CertificateStatus::PendingTransfer {
            return Err(StoreError::TransferAlreadyCompleted(format!(
                "The certificate {id} has no transfer in progress"
            )));
        }
        sqlx::query(
            "UPDATE certificates SET status = 'INACTIVE', transfer_to = NULL, transfer_message = NULL,
             transfer_ms = NULL, modified_ms = ? WHERE account_id = ? AND region = ? AND cert_id = ?",
        )
        .bind(now_ms())
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_outgoing_certificates(
        &self,
        scope: &Scope,
        page: &PageRequest,
    ) -> Result<Page<OutgoingCertificate>> {
        let sql = format!(
            "SELECT {CERT_COLUMNS} FROM certificates WHERE account_id = ? AND region = ?
             AND status = 'PENDING_TRANSFER'"
        );
        let page = list_page(
            &self.read,
            &sql,
            "cert_id",
            page,
            |q| q.bind(&scope.account_id).bind(&scope.region),
            |r| cert_from_row(&scope.region, r),
            cert_key,
        )
        .await?;
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(|c| OutgoingCertificate {
                    transferred_to: c.transfer_to.clone().unwrap_or_default(),
                    cert_id: c.cert_id,
                    arn: c.arn,
                    transfer_ms: c.transfer_ms,
                    transfer_message: c.transfer_message,
                    created_ms: c.created_ms,
                })
                .collect(),
            next: page.next,
        })
    }

    // ---- registration code and CA certificates ----

    /// GetRegistrationCode: created on first use, then stable until deleted.
    pub async fn registration_code(&self, scope: &Scope) -> Result<String> {
        let mut tx = self.begin().await?;
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT code FROM registration_codes WHERE account_id = ? AND region = ?",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(code) = existing {
            return Ok(code);
        }
        // Two random (v4) UUIDs give 244 random bits in AWS's 64-hex-character shape.
        let code = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        sqlx::query("INSERT INTO registration_codes (account_id, region, code) VALUES (?, ?, ?)")
            .bind(&scope.account_id)
            .bind(&scope.region)
            .bind(&code)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(code)
    }

    /// The current registration code, if one was issued (for verifying a CA registration).
    pub async fn current_registration_code(&self, scope: &Scope) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT code FROM registration_codes WHERE account_id = ? AND region = ?",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .fetch_optional(&self.read)
        .await?)
    }

    pub async fn delete_registration_code(&self, scope: &Scope) -> Result<()> {
        let mut tx = self.begin().await?;
        let gone =
            sqlx::query("DELETE FROM registration_codes WHERE account_id = ? AND region = ?")
                .bind(&scope.account_id)
                .bind(&scope.region)
                .execute(&mut *tx)
                .await?;
        if gone.rows_affected() == 0 {
            return Err(StoreError::NotFound(
                "The account has no registration code".into(),
            ));
        }
        tx.commit().await?;
        Ok(())
    }

    /// RegisterCACertificate. A CA may be held in DEFAULT mode by one account per region, and in SNI_ONLY mode by
    /// any number; an account holds at most ten CAs with the same subject.
    pub async fn register_ca_certificate(
        &self,
        scope: &Scope,
        reg: &CaRegistration,
    ) -> Result<CaCertificate> {
        let mut tx = self.begin().await?;
        if Self::ca_in(&mut tx, scope, &reg.cert_id).await?.is_some() {
            return Err(StoreError::AlreadyExists {
                message: "The CA certificate is already registered in this account".into(),
                resource_id: reg.cert_id.clone(),
                resource_arn: Some(scope.arn("cacert", &reg.cert_id)),
            });
        }
        if reg.mode == CertificateMode::Default {
            let holder: Option<String> = sqlx::query_scalar(
                "SELECT account_id FROM ca_certificates WHERE cert_id = ? AND region = ? AND mode = 'DEFAULT'
                 AND account_id <> ?",
            )
            .bind(&reg.cert_id)
            .bind(&scope.region)
            .bind(&scope.account_id)
            .fetch_optional(&mut *tx)
            .await?;
            if holder.is_some() {
                return Err(StoreError::AlreadyExists {
                    message: "The CA certificate is already registered in DEFAULT mode by another account in this \
                              region; register it with certificateMode SNI_ONLY instead"
                        .into(),
                    resource_id: reg.cert_id.clone(),
                    resource_arn: None,
                });
            }
        }
        let same_subject = count_in(
            &mut tx,
            "ca_certificates",
            "subject_hex",
            scope,
            &reg.subject_hex,
        )
        .await?;
        if same_subject >= MAX_CAS_PER_SUBJECT {
            return Err(StoreError::LimitExceeded(format!(
                "An account can register at most {MAX_CAS_PER_SUBJECT} CA certificates with the same subject"
            )));
        }
        let now = now_ms();
        sqlx::query(
            "INSERT INTO ca_certificates (account_id, region, cert_id, pem, subject_hex, status, auto_registration,
             mode, registration_config, created_ms, modified_ms, customer_version, generation_id, not_before,
             not_after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(&reg.cert_id)
        .bind(&reg.pem)
        .bind(&reg.subject_hex)
        .bind(if reg.active { "ACTIVE" } else { "INACTIVE" })
        .bind(if reg.auto_registration { "ENABLE" } else { "DISABLE" })
        .bind(reg.mode.as_str())
        .bind(reg.registration_config.as_ref().map(|c| c.to_string()))
        .bind(now)
        .bind(now)
        .bind(new_id())
        .bind(reg.not_before)
        .bind(reg.not_after)
        .execute(&mut *tx)
        .await?;
        let ca = Self::ca_in(&mut tx, scope, &reg.cert_id)
            .await?
            .ok_or_else(|| ca_not_found(&reg.cert_id))?;
        tx.commit().await?;
        Ok(ca)
    }

    pub async fn describe_ca_certificate(&self, scope: &Scope, id: &str) -> Result<CaCertificate> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CA_COLUMNS} FROM ca_certificates WHERE account_id = ? AND region = ? AND cert_id = ?"
        )))
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        match row {
            Some(r) => ca_from_row(&scope.region, &r),
            None => Err(ca_not_found(id)),
        }
    }

    /// The CAs of this account whose subject is `subject_hex` (to find the issuer of a certificate).
    pub async fn ca_certificates_by_subject(
        &self,
        scope: &Scope,
        subject_hex: &str,
    ) -> Result<Vec<CaCertificate>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CA_COLUMNS} FROM ca_certificates WHERE account_id = ? AND region = ? AND subject_hex = ?"
        )))
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(subject_hex)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(|r| ca_from_row(&scope.region, r)).collect()
    }

    pub async fn list_ca_certificates(
        &self,
        scope: &Scope,
        template_name: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<CaCertificate>> {
        let mut sql =
            format!("SELECT {CA_COLUMNS} FROM ca_certificates WHERE account_id = ? AND region = ?");
        if template_name.is_some() {
            sql.push_str(" AND json_extract(registration_config, '$.templateName') = ?");
        }
        list_page(
            &self.read,
            &sql,
            "cert_id",
            page,
            |q| {
                let q = q.bind(&scope.account_id).bind(&scope.region);
                match template_name {
                    Some(t) => q.bind(t),
                    None => q,
                }
            },
            |r| ca_from_row(&scope.region, r),
            |c| (c.created_ms, c.cert_id.clone()),
        )
        .await
    }

    pub async fn update_ca_certificate(
        &self,
        scope: &Scope,
        id: &str,
        update: &CaUpdate,
    ) -> Result<CaCertificate> {
        if update.remove_auto_registration && update.registration_config.is_some() {
            return Err(StoreError::InvalidRequest(
                "registrationConfig and removeAutoRegistration cannot be given together".into(),
            ));
        }
        let mut tx = self.begin().await?;
        let mut ca = Self::ca_in(&mut tx, scope, id)
            .await?
            .ok_or_else(|| ca_not_found(id))?;
        if let Some(active) = update.active {
            ca.status = if active {
                CertificateStatus::Active
            } else {
                CertificateStatus::Inactive
            };
        }
        if let Some(auto) = update.auto_registration {
            ca.auto_registration = auto;
        }
        if let Some(config) = &update.registration_config {
            ca.registration_config = Some(config.clone());
        }
        if update.remove_auto_registration {
            ca.registration_config = None;
        }
        sqlx::query(
            "UPDATE ca_certificates SET status = ?, auto_registration = ?, registration_config = ?, modified_ms = ?,
             customer_version = customer_version + 1, generation_id = ?
             WHERE account_id = ? AND region = ? AND cert_id = ?",
        )
        .bind(ca.status.as_str())
        .bind(if ca.auto_registration { "ENABLE" } else { "DISABLE" })
        .bind(ca.registration_config.as_ref().map(|c| c.to_string()))
        .bind(now_ms())
        .bind(new_id())
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let ca = Self::ca_in(&mut tx, scope, id)
            .await?
            .ok_or_else(|| ca_not_found(id))?;
        tx.commit().await?;
        Ok(ca)
    }

    /// DeleteCACertificate: refused while ACTIVE.
    pub async fn delete_ca_certificate(&self, scope: &Scope, id: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        let ca = Self::ca_in(&mut tx, scope, id)
            .await?
            .ok_or_else(|| ca_not_found(id))?;
        if ca.status == CertificateStatus::Active {
            return Err(StoreError::CertificateState(
                "The CA certificate must be deactivated (INACTIVE) before deletion.".into(),
            ));
        }
        sqlx::query(
            "DELETE FROM ca_certificates WHERE account_id = ? AND region = ? AND cert_id = ?",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
