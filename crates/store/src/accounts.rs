//! Accounts and their access keys.

use sqlx::Row;

use crate::{Result, Store, StoreError, now_ms};

/// An account: a tenant with its own resources, keys and device endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub account_id: String,
    pub name: String,
    /// The first label of the account's device endpoint, `<prefix>-ats.iot.<region>.<domain>`.
    pub endpoint_prefix: String,
    pub created_ms: i64,
    pub access_key_ids: Vec<String>,
}

/// Everything needed to create an account; the caller generates ids and secrets.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub account_id: String,
    pub name: String,
    pub endpoint_prefix: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Store {
    /// Creates an account with its first access key, in one transaction.
    pub async fn create_account(&self, new: &NewAccount) -> Result<Account> {
        let mut tx = self.begin().await?;
        let clash: Option<String> = sqlx::query_scalar(
            "SELECT 'account id ' || account_id FROM accounts WHERE account_id = ?
             UNION ALL SELECT 'account name ' || name FROM accounts WHERE name = ?
             UNION ALL SELECT 'endpoint prefix ' || endpoint_prefix FROM accounts WHERE endpoint_prefix = ?
             UNION ALL SELECT 'access key id ' || access_key_id FROM access_keys WHERE access_key_id = ?",
        )
        .bind(&new.account_id)
        .bind(&new.name)
        .bind(&new.endpoint_prefix)
        .bind(&new.access_key_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(what) = clash {
            return Err(StoreError::AlreadyExists {
                message: format!("an account with {what} already exists"),
                resource_id: new.account_id.clone(),
                resource_arn: None,
            });
        }
        let now = now_ms();
        sqlx::query("INSERT INTO accounts (account_id, name, endpoint_prefix, created_ms) VALUES (?, ?, ?, ?)")
            .bind(&new.account_id)
            .bind(&new.name)
            .bind(&new.endpoint_prefix)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO access_keys (access_key_id, account_id, secret_access_key, created_ms) VALUES (?, ?, ?, ?)",
        )
        .bind(&new.access_key_id)
        .bind(&new.account_id)
        .bind(&new.secret_access_key)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Account {
            account_id: new.account_id.clone(),
            name: new.name.clone(),
            endpoint_prefix: new.endpoint_prefix.clone(),
            created_ms: now,
            access_key_ids: vec![new.access_key_id.clone()],
        })
    }

    /// Every account, oldest first, with its access key ids (never the secrets).
    pub async fn list_accounts(&self) -> Result<Vec<Account>> {
        let rows = sqlx::query(
            "SELECT a.account_id, a.name, a.endpoint_prefix, a.created_ms, group_concat(k.access_key_id) AS keys
             FROM accounts a LEFT JOIN access_keys k ON k.account_id = a.account_id
             GROUP BY a.account_id ORDER BY a.created_ms, a.account_id",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                let keys: Option<String> = r.try_get("keys")?;
                Ok(Account {
                    account_id: r.try_get("account_id")?,
                    name: r.try_get("name")?,
                    endpoint_prefix: r.try_get("endpoint_prefix")?,
                    created_ms: r.try_get("created_ms")?,
                    access_key_ids: keys
                        .map(|k| k.split(',').map(str::to_owned).collect())
                        .unwrap_or_default(),
                })
            })
            .collect()
    }

    /// The account and secret of an access key, for signature verification.
    pub async fn access_key(&self, access_key_id: &str) -> Result<Option<(String, String)>> {
        let row = sqlx::query(
            "SELECT account_id, secret_access_key FROM access_keys WHERE access_key_id = ?",
        )
        .bind(access_key_id)
        .fetch_optional(&self.read)
        .await?;
        Ok(match row {
            Some(r) => Some((r.try_get("account_id")?, r.try_get("secret_access_key")?)),
            None => None,
        })
    }

    /// Finds an account by id or by its endpoint prefix.
    pub async fn account(&self, account_id: &str) -> Result<Option<Account>> {
        Ok(self
            .list_accounts()
            .await?
            .into_iter()
            .find(|a| a.account_id == account_id))
    }

    pub async fn account_by_endpoint_prefix(&self, prefix: &str) -> Result<Option<Account>> {
        Ok(self
            .list_accounts()
            .await?
            .into_iter()
            .find(|a| a.endpoint_prefix == prefix))
    }
}
