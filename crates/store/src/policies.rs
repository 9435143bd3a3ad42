//! Policies, their versions, policy attachments, and thing ↔ principal attachments.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use crate::db::{delete_in, list_page, name_key, name_row};
use crate::{Page, PageRequest, Result, Scope, Store, StoreError, new_id, now_ms};

const MAX_POLICY_VERSIONS: i64 = 5;
const MAX_POLICIES_PER_CERTIFICATE: i64 = 10;
const MAX_POLICIES_PER_GROUP: i64 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub arn: String,
    pub default_version_id: i64,
    /// The default version's document.
    pub document: String,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub generation_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    pub policy_name: String,
    pub policy_arn: String,
    pub version_id: i64,
    pub document: String,
    pub is_default: bool,
    pub created_ms: i64,
    pub generation_id: String,
}

/// What a policy can be attached to (or a thing to), already checked to be in the caller's account and region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Certificate(String),
    ThingGroup(String),
    /// A Cognito identity id, `<region>:<uuid>`.
    Cognito(String),
}

impl Target {
    /// The string AWS stores and reports for this target.
    pub fn to_arn(&self, scope: &Scope) -> String {
        match self {
            Target::Certificate(id) => scope.arn("cert", id),
            Target::ThingGroup(name) => scope.arn("thinggroup", name),
            Target::Cognito(id) => id.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalType {
    Exclusive,
    NonExclusive,
}

impl PrincipalType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exclusive => "EXCLUSIVE_THING",
            Self::NonExclusive => "NON_EXCLUSIVE_THING",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "EXCLUSIVE_THING" => Ok(Self::Exclusive),
            "NON_EXCLUSIVE_THING" => Ok(Self::NonExclusive),
            other => Err(StoreError::Corrupt(format!("thing principal type {other}"))),
        }
    }
}

/// One thing ↔ principal attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThingPrincipal {
    pub thing_name: String,
    pub principal: String,
    pub principal_type: PrincipalType,
}

type Tx = Transaction<'static, Sqlite>;

fn policy_not_found(name: &str) -> StoreError {
    StoreError::NotFound(format!("Policy {name} does not exist"))
}

fn version_from_row(scope: &Scope, default_version: i64, r: &SqliteRow) -> Result<PolicyVersion> {
    let name: String = r.try_get("policy_name")?;
    let version_id: i64 = r.try_get("version_id")?;
    Ok(PolicyVersion {
        policy_arn: scope.arn("policy", &name),
        policy_name: name,
        version_id,
        document: r.try_get("document")?,
        is_default: version_id == default_version,
        created_ms: r.try_get("created_ms")?,
        generation_id: r.try_get("generation_id")?,
    })
}

impl Store {
    async fn policy_in(tx: &mut Tx, scope: &Scope, name: &str) -> Result<Option<Policy>> {
        let row = sqlx::query(
            "SELECT p.name, p.default_version, p.created_ms, p.modified_ms, p.generation_id, v.document
             FROM policies p JOIN policy_versions v ON v.account_id = p.account_id AND v.region = p.region
               AND v.policy_name = p.name AND v.version_id = p.default_version
             WHERE p.account_id = ? AND p.region = ? AND p.name = ?",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(Policy {
            name: name.to_owned(),
            arn: scope.arn("policy", name),
            default_version_id: r.try_get("default_version")?,
            document: r.try_get("document")?,
            created_ms: r.try_get("created_ms")?,
            modified_ms: r.try_get("modified_ms")?,
            generation_id: r.try_get("generation_id")?,
        }))
    }

    /// CreatePolicy: the document (already validated by the caller) becomes version 1, the default.
    pub async fn create_policy(&self, scope: &Scope, name: &str, document: &str) -> Result<Policy> {
        let mut tx = self.begin().await?;
        if Self::policy_in(&mut tx, scope, name).await?.is_some() {
            return Err(StoreError::AlreadyExists {
                message: format!("Policy {name} already exists"),
                resource_id: name.to_owned(),
                resource_arn: Some(scope.arn("policy", name)),
            });
        }
        let now = now_ms();
        let generation = new_id();
        sqlx::query(
            "INSERT INTO policies (account_id, region, name, default_version, next_version, created_ms, modified_ms,
             generation_id) VALUES (?, ?, ?, 1, 2, ?, ?, ?)",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(name)
        .bind(now)
        .bind(now)
        .bind(&generation)
        .execute(&mut *tx)
        .await?;
        Self::insert_version(&mut tx, scope, name, 1, document, now).await?;
        let p = Self::policy_in(&mut tx, scope, name)
            .await?
            .ok_or_else(|| policy_not_found(name))?;
        tx.commit().await?;
        Ok(p)
    }

    async fn insert_version(
        tx: &mut Tx,
        scope: &Scope,
        name: &str,
        version: i64,
        doc: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO policy_versions (account_id, region, policy_name, version_id, document, created_ms,
             generation_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(name)
        .bind(version)
        .bind(doc)
        .bind(now)
        .bind(new_id())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub async fn get_policy(&self, scope: &Scope, name: &str) -> Result<Policy> {
        let mut tx = self.read.begin().await?;
        let p = Self::policy_in(&mut tx, scope, name).await?;
        tx.commit().await?;
        p.ok_or_else(|| policy_not_found(name))
    }

    pub async fn list_policies(
        &self,
        scope: &Scope,
        page: &PageRequest,
    ) -> Result<Page<(String, String)>> {
        let sql = "SELECT name, created_ms FROM policies WHERE account_id = ? AND region = ?";
        let page = list_page(
            &self.read,
            sql,
            "name",
            page,
            |q| q.bind(&scope.account_id).bind(&scope.region),
            name_row("name"),
            name_key,
        )
        .await?;
        Ok(policy_refs(scope, page))
    }

    /// DeletePolicy: refused while attached or while non-default versions remain.
    pub async fn delete_policy(&self, scope: &Scope, name: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        Self::policy_in(&mut tx, scope, name)
            .await?
            .ok_or_else(|| policy_not_found(name))?;
        let (targets, versions): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM policy_targets WHERE account_id = ?1 AND region = ?2 AND policy_name = ?3),
                    (SELECT COUNT(*) FROM policy_versions WHERE account_id = ?1 AND region = ?2 AND policy_name = ?3)",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        if targets > 0 {
            return Err(StoreError::DeleteConflict(format!(
                "The policy {name} cannot be deleted as it is attached to {targets} target(s)"
            )));
        }
        if versions > 1 {
            return Err(StoreError::DeleteConflict(format!(
                "Cannot delete the policy {name} because it has {} non-default version(s); delete them first",
                versions - 1
            )));
        }
        delete_in(&mut tx, "policy_versions", "policy_name", scope, name).await?;
        delete_in(&mut tx, "policies", "name", scope, name).await?;
        tx.commit().await?;
        Ok(())
    }

    /// CreatePolicyVersion: at most five versions exist at once; version ids are never reused.
    pub async fn create_policy_version(
        &self,
        scope: &Scope,
        name: &str,
        document: &str,
        set_as_default: bool,
    ) -> Result<PolicyVersion> {
        let mut tx = self.begin().await?;
        Self::policy_in(&mut tx, scope, name)
            .await?
            .ok_or_else(|| policy_not_found(name))?;
        let (count, next): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM policy_versions WHERE account_id = ?1 AND region = ?2 AND policy_name = ?3),
                    (SELECT next_version FROM policies WHERE account_id = ?1 AND region = ?2 AND name = ?3)",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        if count >= MAX_POLICY_VERSIONS {
            return Err(StoreError::VersionsLimitExceeded(format!(
                "The policy {name} already has the maximum number of versions ({MAX_POLICY_VERSIONS})"
            )));
        }
        let now = now_ms();
        Self::insert_version(&mut tx, scope, name, next, document, now).await?;
        sqlx::query(
            "UPDATE policies SET next_version = ?, modified_ms = ?, generation_id = ?,
             default_version = CASE WHEN ? THEN ? ELSE default_version END
             WHERE account_id = ? AND region = ? AND name = ?",
        )
        .bind(next + 1)
        .bind(now)
        .bind(new_id())
        .bind(set_as_default)
        .bind(next)
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        let v = Self::version_in(&mut tx, scope, name, next).await?;
        tx.commit().await?;
        Ok(v)
    }

    async fn version_in(
        tx: &mut Tx,
        scope: &Scope,
        name: &str,
        version: i64,
    ) -> Result<PolicyVersion> {
        let default: Option<i64> = sqlx::query_scalar(
            "SELECT default_version FROM policies WHERE account_id = ? AND region = ? AND name = ?",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
        let default = default.ok_or_else(|| policy_not_found(name))?;
        let row = sqlx::query(
            "SELECT policy_name, version_id, document, created_ms, generation_id FROM policy_versions
             WHERE account_id = ? AND region = ? AND policy_name = ? AND version_id = ?",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(name)
        .bind(version)
        .fetch_optional(&mut **tx)
        .await?;
        match row {
            Some(r) => version_from_row(scope, default, &r),
            None => Err(StoreError::NotFound(format!(
                "Version {version} of policy {name} does not exist"
            ))),
        }
    }

    pub async fn get_policy_version(
        &self,
        scope: &Scope,
        name: &str,
        version: i64,
    ) -> Result<PolicyVersion> {
        let mut tx = self.read.begin().await?;
        let v = Self::version_in(&mut tx, scope, name, version).await;
        tx.commit().await?;
        v
    }

    pub async fn list_policy_versions(
        &self,
        scope: &Scope,
        name: &str,
    ) -> Result<Vec<PolicyVersion>> {
        let mut tx = self.read.begin().await?;
        let p = Self::policy_in(&mut tx, scope, name)
            .await?
            .ok_or_else(|| policy_not_found(name))?;
        let rows = sqlx::query(
            "SELECT policy_name, version_id, document, created_ms, generation_id FROM policy_versions
             WHERE account_id = ? AND region = ? AND policy_name = ? ORDER BY version_id DESC",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(name)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| version_from_row(scope, p.default_version_id, r))
            .collect()
    }

    pub async fn set_default_policy_version(
        &self,
        scope: &Scope,
        name: &str,
        version: i64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        Self::version_in(&mut tx, scope, name, version).await?;
        sqlx::query(
            "UPDATE policies SET default_version = ?, modified_ms = ?, generation_id = ?
             WHERE account_id = ? AND region = ? AND name = ?",
        )
        .bind(version)
        .bind(now_ms())
        .bind(new_id())
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_policy_version(
        &self,
        scope: &Scope,
        name: &str,
        version: i64,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let v = Self::version_in(&mut tx, scope, name, version).await?;
        if v.is_default {
            return Err(StoreError::DeleteConflict(format!(
                "Version {version} is the default version of policy {name}; set another default first, or delete \
                 the policy"
            )));
        }
        sqlx::query(
            "DELETE FROM policy_versions WHERE account_id = ? AND region = ? AND policy_name = ? AND version_id = ?",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(name)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn require_target(tx: &mut Tx, scope: &Scope, target: &Target) -> Result<()> {
        let (sql, key, what) = match target {
            Target::Certificate(id) => (
                "SELECT COUNT(*) FROM certificates WHERE account_id = ? AND region = ? AND cert_id = ?",
                id,
                "certificate",
            ),
            Target::ThingGroup(name) => (
                "SELECT COUNT(*) FROM thing_groups WHERE account_id = ? AND region = ? AND name = ?",
                name,
                "thing group",
            ),
            Target::Cognito(_) => return Ok(()),
        };
        let n: i64 = sqlx::query_scalar(sql)
            .bind(&scope.account_id)
            .bind(&scope.region)
            .bind(key)
            .fetch_one(&mut **tx)
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "The {what} {key} does not exist"
            )));
        }
        Ok(())
    }

    /// AttachPolicy (and the deprecated AttachPrincipalPolicy). Idempotent.
    pub async fn attach_policy(&self, scope: &Scope, name: &str, target: &Target) -> Result<()> {
        let mut tx = self.begin().await?;
        Self::policy_in(&mut tx, scope, name)
            .await?
            .ok_or_else(|| policy_not_found(name))?;
        Self::require_target(&mut tx, scope, target).await?;
        let arn = target.to_arn(scope);
        let attached: Vec<String> = sqlx::query_scalar(
            "SELECT policy_name FROM policy_targets WHERE account_id = ? AND region = ? AND target = ?",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(&arn)
        .fetch_all(&mut *tx)
        .await?;
        if attached.iter().any(|p| p == name) {
            return Ok(());
        }
        let max = if matches!(target, Target::ThingGroup(_)) {
            MAX_POLICIES_PER_GROUP
        } else {
            MAX_POLICIES_PER_CERTIFICATE
        };
        if attached.len() as i64 >= max {
            return Err(StoreError::LimitExceeded(format!(
                "{arn} already has the maximum of {max} attached policies"
            )));
        }
        sqlx::query(
            "INSERT INTO policy_targets (account_id, region, policy_name, target, created_ms) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(name)
        .bind(&arn)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// DetachPolicy: detaching something that is not attached succeeds.
    pub async fn detach_policy(&self, scope: &Scope, name: &str, target: &Target) -> Result<()> {
        let mut tx = self.begin().await?;
        Self::policy_in(&mut tx, scope, name)
            .await?
            .ok_or_else(|| policy_not_found(name))?;
        sqlx::query("DELETE FROM policy_targets WHERE account_id = ? AND region = ? AND policy_name = ? AND target = ?")
            .bind(&scope.account_id)
            .bind(&scope.region)
            .bind(name)
            .bind(target.to_arn(scope))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// ListAttachedPolicies: with `recursive` on a thing group, the policies of its ancestors too.
    pub async fn list_attached_policies(
        &self,
        scope: &Scope,
        target: &Target,
        recursive: bool,
        page: &PageRequest,
    ) -> Result<Page<(String, String)>> {
        let mut targets = vec![target.to_arn(scope)];
        {
            let mut tx = self.read.begin().await?;
            Self::require_target(&mut tx, scope, target).await?;
            tx.commit().await?;
        }
        if let (true, Target::ThingGroup(name)) = (recursive, target) {
            let g = self.describe_thing_group(scope, name).await?;
            targets.extend(g.ancestors.iter().map(|a| a.arn.clone()));
        }
        let placeholders = vec!["?"; targets.len()].join(", ");
        let sql = format!(
            "SELECT name, created_ms FROM (SELECT policy_name AS name, MIN(created_ms) AS created_ms
             FROM policy_targets WHERE account_id = ? AND region = ? AND target IN ({placeholders})
             GROUP BY policy_name) WHERE 1"
        );
        let page = list_page(
            &self.read,
            &sql,
            "name",
            page,
            |mut q| {
                q = q.bind(&scope.account_id).bind(&scope.region);
                for t in &targets {
                    q = q.bind(t);
                }
                q
            },
            name_row("name"),
            name_key,
        )
        .await?;
        Ok(policy_refs(scope, page))
    }

    /// ListTargetsForPolicy (and the deprecated ListPolicyPrincipals).
    pub async fn list_policy_targets(
        &self,
        scope: &Scope,
        name: &str,
        page: &PageRequest,
    ) -> Result<Page<String>> {
        self.get_policy(scope, name).await?;
        let sql = "SELECT target, created_ms FROM policy_targets WHERE account_id = ? AND region = ? AND policy_name = ?";
        let page = list_page(
            &self.read,
            sql,
            "target",
            page,
            |q| q.bind(&scope.account_id).bind(&scope.region).bind(name),
            name_row("target"),
            name_key,
        )
        .await?;
        Ok(Page {
            items: page.items.into_iter().map(|(t, _)| t).collect(),
            next: page.next,
        })
    }

    // ---- thing principals ----

    /// AttachThingPrincipal. An exclusive association means the principal belongs to that one thing only.
    pub async fn attach_thing_principal(
        &self,
        scope: &Scope,
        thing: &str,
        principal: &Target,
        kind: PrincipalType,
    ) -> Result<()> {
        if matches!(principal, Target::ThingGroup(_)) {
            return Err(StoreError::InvalidRequest(
                "a thing group cannot be attached to a thing".into(),
            ));
        }
        let mut tx = self.begin().await?;
        Self::require_thing(&mut tx, scope, thing).await?;
        Self::require_target(&mut tx, scope, principal).await?;
        let arn = principal.to_arn(scope);
        let current: Vec<(String, String)> = sqlx::query_as(
            "SELECT thing_name, principal_type FROM thing_principals WHERE account_id = ? AND region = ?
             AND principal = ?",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(&arn)
        .fetch_all(&mut *tx)
        .await?;
        let others: Vec<&(String, String)> = current.iter().filter(|(t, _)| t != thing).collect();
        if let Some((other, _)) = others
            .iter()
            .find(|(_, k)| k == PrincipalType::Exclusive.as_str())
        {
            return Err(StoreError::InvalidRequest(format!(
                "The principal {arn} is exclusively attached to thing {other}"
            )));
        }
        if kind == PrincipalType::Exclusive && !others.is_empty() {
            return Err(StoreError::InvalidRequest(format!(
                "The principal {arn} is already attached to {} other thing(s); an exclusive attachment needs it to \
                 be attached to no other thing",
                others.len()
            )));
        }
        sqlx::query(
            "INSERT INTO thing_principals (account_id, region, thing_name, principal, principal_type, created_ms)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (account_id, region, thing_name, principal) DO UPDATE SET principal_type = excluded.principal_type",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(thing)
        .bind(&arn)
        .bind(kind.as_str())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn detach_thing_principal(
        &self,
        scope: &Scope,
        thing: &str,
        principal: &Target,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        Self::require_thing(&mut tx, scope, thing).await?;
        sqlx::query(
            "DELETE FROM thing_principals WHERE account_id = ? AND region = ? AND thing_name = ? AND principal = ?",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(thing)
        .bind(principal.to_arn(scope))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// ListThingPrincipals(V2) when `thing` is given, ListPrincipalThings(V2) when `principal` is.
    pub async fn list_thing_principals(
        &self,
        scope: &Scope,
        thing: Option<&str>,
        principal: Option<&Target>,
        kind: Option<PrincipalType>,
        page: &PageRequest,
    ) -> Result<Page<ThingPrincipal>> {
        if let Some(t) = thing {
            self.describe_thing(scope, t).await?;
        }
        let mut sql = String::from(
            "SELECT thing_name, principal, principal_type, created_ms FROM thing_principals
             WHERE account_id = ? AND region = ?",
        );
        if thing.is_some() {
            sql.push_str(" AND thing_name = ?");
        }
        if principal.is_some() {
            sql.push_str(" AND principal = ?");
        }
        if kind.is_some() {
            sql.push_str(" AND principal_type = ?");
        }
        let row = |r: &SqliteRow| {
            Ok((
                ThingPrincipal {
                    thing_name: r.try_get("thing_name")?,
                    principal: r.try_get("principal")?,
                    principal_type: PrincipalType::parse(
                        &r.try_get::<String, _>("principal_type")?,
                    )?,
                },
                r.try_get::<i64, _>("created_ms")?,
            ))
        };
        // Listed by the column that varies: principals of a thing, or things of a principal.
        let (key_col, by_thing) = if thing.is_some() {
            ("principal", true)
        } else {
            ("thing_name", false)
        };
        let key = |(tp, ms): &(ThingPrincipal, i64)| {
            (
                *ms,
                if by_thing {
                    tp.principal.clone()
                } else {
                    tp.thing_name.clone()
                },
            )
        };
        let page = list_page(
            &self.read,
            &sql,
            key_col,
            page,
            |mut q| {
                q = q.bind(&scope.account_id).bind(&scope.region);
                if let Some(t) = thing {
                    q = q.bind(t);
                }
                if let Some(p) = principal {
                    q = q.bind(p.to_arn(scope));
                }
                if let Some(k) = kind {
                    q = q.bind(k.as_str());
                }
                q
            },
            row,
            key,
        )
        .await?;
        Ok(Page {
            items: page.items.into_iter().map(|(tp, _)| tp).collect(),
            next: page.next,
        })
    }
}

/// Policy names as `(arn, name)` pairs.
fn policy_refs(scope: &Scope, page: Page<(String, i64)>) -> Page<(String, String)> {
    Page {
        items: page
            .items
            .into_iter()
            .map(|(n, _)| (scope.arn("policy", &n), n))
            .collect(),
        next: page.next,
    }
}
