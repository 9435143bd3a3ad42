//! Things, thing types and static thing groups.

use std::collections::BTreeMap;

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use crate::db::{count_in, delete_in, list_page, name_key, name_row};
use crate::{Page, PageRequest, Result, Scope, Store, StoreError, check_version, new_id, now_ms};

/// Attribute limits from AWS's quotas.
const MAX_ATTRIBUTES_UNTYPED: usize = 3;
const MAX_ATTRIBUTES_TYPED: usize = 50;
const MAX_GROUPS_PER_THING: i64 = 10;
const MAX_GROUP_DEPTH: usize = 7;

pub type Attributes = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thing {
    pub name: String,
    pub thing_id: String,
    pub arn: String,
    pub thing_type: Option<String>,
    pub attributes: Attributes,
    pub version: i64,
    pub billing_group: Option<String>,
    pub created_ms: i64,
}

#[derive(Debug, Clone, Default)]
pub struct NewThing {
    pub name: String,
    pub thing_type: Option<String>,
    pub attributes: Attributes,
    pub billing_group: Option<String>,
}

/// An attribute payload: with `merge`, attributes are added or replaced and an empty value removes one; without
/// it, the set replaces the existing attributes.
#[derive(Debug, Clone, Default)]
pub struct AttributeUpdate {
    pub attributes: Attributes,
    pub merge: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ThingUpdate {
    pub thing_type: Option<String>,
    pub remove_thing_type: bool,
    pub attributes: Option<AttributeUpdate>,
    pub expected_version: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct ThingFilter {
    pub attribute_name: Option<String>,
    pub attribute_value: Option<String>,
    pub use_prefix_attribute_value: bool,
    pub thing_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ThingType {
    pub name: String,
    pub type_id: String,
    pub arn: String,
    /// `thingTypeProperties` exactly as given.
    pub properties: serde_json::Value,
    pub deprecated: bool,
    pub deprecated_ms: Option<i64>,
    pub created_ms: i64,
}

#[derive(Debug, Clone)]
pub struct NewThingType {
    pub name: String,
    pub properties: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub name: String,
    pub arn: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThingGroup {
    pub name: String,
    pub group_id: String,
    pub arn: String,
    pub parent: Option<String>,
    /// Root first, ending with the parent.
    pub ancestors: Vec<GroupRef>,
    pub description: Option<String>,
    pub attributes: Attributes,
    pub version: i64,
    pub created_ms: i64,
}

#[derive(Debug, Clone, Default)]
pub struct NewThingGroup {
    pub name: String,
    pub parent: Option<String>,
    pub description: Option<String>,
    pub attributes: Attributes,
}

fn parse_attributes(text: &str) -> Result<Attributes> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("attributes: {e}")))
}

fn attributes_json(a: &Attributes) -> String {
    serde_json::to_string(a).unwrap_or_else(|_| "{}".into())
}

fn thing_from_row(scope: &Scope, r: &SqliteRow) -> Result<Thing> {
    let name: String = r.try_get("name")?;
    Ok(Thing {
        arn: scope.arn("thing", &name),
        name,
        thing_id: r.try_get("thing_id")?,
        thing_type: r.try_get("thing_type")?,
        attributes: parse_attributes(&r.try_get::<String, _>("attributes")?)?,
        version: r.try_get("version")?,
        billing_group: r.try_get("billing_group")?,
        created_ms: r.try_get("created_ms")?,
    })
}

/// The error for a thing that does not exist, worded as AWS words it.
pub(crate) fn thing_not_found(name: &str) -> StoreError {
    StoreError::NotFound(format!("Thing {name} cannot be found."))
}

fn check_attribute_count(attributes: &Attributes, typed: bool) -> Result<()> {
    let max = if typed {
        MAX_ATTRIBUTES_TYPED
    } else {
        MAX_ATTRIBUTES_UNTYPED
    };
    if attributes.len() > max {
        let why = if typed {
            "with a thing type"
        } else {
            "without a thing type"
        };
        return Err(StoreError::InvalidRequest(format!(
            "a thing {why} can have at most {max} attributes; {} were given",
            attributes.len()
        )));
    }
    Ok(())
}

const THING_COLUMNS: &str =
    "name, thing_id, thing_type, attributes, version, billing_group, created_ms";

impl Store {
    async fn thing_in(
        tx: &mut Transaction<'static, Sqlite>,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<Thing>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {THING_COLUMNS} FROM things WHERE account_id = ? AND region = ? AND name = ?"
        )))
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
        row.map(|r| thing_from_row(scope, &r)).transpose()
    }

    /// Refuses (inside a transaction) when the thing does not exist.
    pub(crate) async fn require_thing(
        tx: &mut Transaction<'static, Sqlite>,
        scope: &Scope,
        name: &str,
    ) -> Result<()> {
        match count_in(tx, "things", "name", scope, name).await? {
            0 => Err(thing_not_found(name)),
            _ => Ok(()),
        }
    }

    async fn require_usable_type(
        tx: &mut Transaction<'static, Sqlite>,
        scope: &Scope,
        name: &str,
    ) -> Result<()> {
        let deprecated: Option<i64> = sqlx::query_scalar(
            "SELECT deprecated FROM thing_types WHERE account_id = ? AND region = ? AND name = ?",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
        match deprecated {
            None => Err(StoreError::NotFound(format!(
                "Thing type {name} does not exist"
            ))),
            Some(1) => Err(StoreError::InvalidRequest(format!(
                "Thing type {name} is deprecated; new things cannot be associated with it"
            ))),
            Some(_) => Ok(()),
        }
    }

    /// CreateThing: idempotent when the name and configuration match an existing thing.
    pub async fn create_thing(&self, scope: &Scope, new: &NewThing) -> Result<Thing> {
        check_attribute_count(&new.attributes, new.thing_type.is_some())?;
        let mut tx = self.begin().await?;
        if let Some(existing) = Self::thing_in(&mut tx, scope, &new.name).await? {
            if existing.thing_type == new.thing_type
                && existing.attributes == new.attributes
                && existing.billing_group == new.billing_group
            {
                return Ok(existing);
            }
            return Err(StoreError::AlreadyExists {
                message: format!(
                    "Thing {} already exists in account with different attributes",
                    new.name
                ),
                resource_id: existing.thing_id,
                resource_arn: Some(existing.arn),
            });
        }
        if let Some(t) = &new.thing_type {
            Self::require_usable_type(&mut tx, scope, t).await?;
        }
        let thing = Thing {
            name: new.name.clone(),
            thing_id: new_id(),
            arn: scope.arn("thing", &new.name),
            thing_type: new.thing_type.clone(),
            attributes: new.attributes.clone(),
            version: 1,
            billing_group: new.billing_group.clone(),
            created_ms: now_ms(),
        };
        sqlx::query(
            "INSERT INTO things (account_id, region, name, thing_id, thing_type, attributes, version, billing_group,
             created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(&thing.name)
        .bind(&thing.thing_id)
        .bind(&thing.thing_type)
        .bind(attributes_json(&thing.attributes))
        .bind(thing.version)
        .bind(&thing.billing_group)
        .bind(thing.created_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(thing)
    }

    pub async fn describe_thing(&self, scope: &Scope, name: &str) -> Result<Thing> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {THING_COLUMNS} FROM things WHERE account_id = ? AND region = ? AND name = ?"
        )))
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(name)
        .fetch_optional(&self.read)
        .await?;
        match row {
            Some(r) => thing_from_row(scope, &r),
            None => Err(thing_not_found(name)),
        }
    }

    pub async fn list_things(
        &self,
        scope: &Scope,
        filter: &ThingFilter,
        page: &PageRequest,
    ) -> Result<Page<Thing>> {
        let mut sql =
            format!("SELECT {THING_COLUMNS} FROM things WHERE account_id = ? AND region = ?");
        if filter.thing_type.is_some() {
            sql.push_str(" AND thing_type = ?");
        }
        match (&filter.attribute_name, &filter.attribute_value) {
            (Some(_), Some(_)) if filter.use_prefix_attribute_value => sql.push_str(
                " AND EXISTS (SELECT 1 FROM json_each(things.attributes) WHERE key = ? AND substr(value, 1, length(?)) = ?)",
            ),
            (Some(_), Some(_)) => {
                sql.push_str(" AND EXISTS (SELECT 1 FROM json_each(things.attributes) WHERE key = ? AND value = ?)")
            }
            (Some(_), None) => sql.push_str(" AND EXISTS (SELECT 1 FROM json_each(things.attributes) WHERE key = ?)"),
            (None, Some(_)) => {
                return Err(StoreError::InvalidRequest("attributeValue requires attributeName".into()));
            }
            (None, None) => {}
        }
        list_page(
            &self.read,
            &sql,
            "name",
            page,
            |mut q| {
                q = q.bind(&scope.account_id).bind(&scope.region);
                if let Some(t) = &filter.thing_type {
                    q = q.bind(t);
                }
                if let Some(n) = &filter.attribute_name {
                    q = q.bind(n);
                    if let Some(v) = &filter.attribute_value {
                        q = q.bind(v);
                        if filter.use_prefix_attribute_value {
                            q = q.bind(v);
                        }
                    }
                }
                q
            },
            |r| thing_from_row(scope, r),
            |t| (t.created_ms, t.name.clone()),
        )
        .await
    }

    pub async fn update_thing(
        &self,
        scope: &Scope,
        name: &str,
        update: &ThingUpdate,
    ) -> Result<Thing> {
        if update.remove_thing_type && update.thing_type.is_some() {
            return Err(StoreError::InvalidRequest(
                "thingTypeName and removeThingType cannot be given together".into(),
            ));
        }
        let mut tx = self.begin().await?;
        let mut thing = Self::thing_in(&mut tx, scope, name)
            .await?
            .ok_or_else(|| thing_not_found(name))?;
        check_version("thing", name, update.expected_version, thing.version)?;
        if let Some(t) = &update.thing_type {
            if thing.thing_type.as_deref() != Some(t) {
                Self::require_usable_type(&mut tx, scope, t).await?;
            }
            thing.thing_type = Some(t.clone());
        }
        if update.remove_thing_type {
            thing.thing_type = None;
        }
        if let Some(a) = &update.attributes {
            if a.merge {
                for (k, v) in &a.attributes {
                    if v.is_empty() {
                        thing.attributes.remove(k);
                    } else {
                        thing.attributes.insert(k.clone(), v.clone());
                    }
                }
            } else {
                thing.attributes = a
                    .attributes
                    .iter()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
            }
        }
        check_attribute_count(&thing.attributes, thing.thing_type.is_some())?;
        thing.version += 1;
        sqlx::query(
            "UPDATE things SET thing_type = ?, attributes = ?, version = ?
             WHERE account_id = ? AND region = ? AND name = ?",
        )
        .bind(&thing.thing_type)
        .bind(attributes_json(&thing.attributes))
        .bind(thing.version)
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(thing)
    }

    /// DeleteThing: succeeds when the thing does not exist; refused while principals are attached.
    pub async fn delete_thing(
        &self,
        scope: &Scope,
        name: &str,
        expected_version: Option<i64>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let Some(thing) = Self::thing_in(&mut tx, scope, name).await? else {
            return Ok(());
        };
        check_version("thing", name, expected_version, thing.version)?;
        let principals = count_in(&mut tx, "thing_principals", "thing_name", scope, name).await?;
        if principals > 0 {
            return Err(StoreError::InvalidRequest(format!(
                "Cannot delete thing {name}: it has {principals} attached principal(s); detach them first"
            )));
        }
        delete_in(&mut tx, "thing_group_members", "thing_name", scope, name).await?;
        delete_in(&mut tx, "things", "name", scope, name).await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- thing types ----

    pub async fn create_thing_type(&self, scope: &Scope, new: &NewThingType) -> Result<ThingType> {
        let mut tx = self.begin().await?;
        if let Some(existing) = Self::thing_type_in(&mut tx, scope, &new.name).await? {
            if existing.properties == new.properties {
                return Ok(existing);
            }
            return Err(StoreError::AlreadyExists {
                message: format!(
                    "Thing type {} already exists with different properties",
                    new.name
                ),
                resource_id: existing.type_id,
                resource_arn: Some(existing.arn),
            });
        }
        let t = ThingType {
            name: new.name.clone(),
            type_id: new_id(),
            arn: scope.arn("thingtype", &new.name),
            properties: new.properties.clone(),
            deprecated: false,
            deprecated_ms: None,
            created_ms: now_ms(),
        };
        sqlx::query(
            "INSERT INTO thing_types (account_id, region, name, type_id, properties, created_ms)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(&t.name)
        .bind(&t.type_id)
        .bind(t.properties.to_string())
        .bind(t.created_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(t)
    }

    async fn thing_type_in(
        tx: &mut Transaction<'static, Sqlite>,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<ThingType>> {
        let row = sqlx::query(
            "SELECT name, type_id, properties, deprecated, deprecated_ms, created_ms FROM thing_types
             WHERE account_id = ? AND region = ? AND name = ?",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
        row.map(|r| thing_type_from_row(scope, &r)).transpose()
    }

    pub async fn describe_thing_type(&self, scope: &Scope, name: &str) -> Result<ThingType> {
        let row = sqlx::query(
            "SELECT name, type_id, properties, deprecated, deprecated_ms, created_ms FROM thing_types
             WHERE account_id = ? AND region = ? AND name = ?",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(name)
        .fetch_optional(&self.read)
        .await?;
        match row {
            Some(r) => thing_type_from_row(scope, &r),
            None => Err(StoreError::NotFound(format!(
                "Thing type {name} does not exist"
            ))),
        }
    }

    pub async fn list_thing_types(
        &self,
        scope: &Scope,
        name: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<ThingType>> {
        let mut sql = String::from(
            "SELECT name, type_id, properties, deprecated, deprecated_ms, created_ms FROM thing_types
             WHERE account_id = ? AND region = ?",
        );
        if name.is_some() {
            sql.push_str(" AND name = ?");
        }
        list_page(
            &self.read,
            &sql,
            "name",
            page,
            |q| {
                let q = q.bind(&scope.account_id).bind(&scope.region);
                match name {
                    Some(n) => q.bind(n),
                    None => q,
                }
            },
            |r| thing_type_from_row(scope, r),
            |t| (t.created_ms, t.name.clone()),
        )
        .await
    }

    pub async fn update_thing_type(
        &self,
        scope: &Scope,
        name: &str,
        properties: &serde_json::Value,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        if Self::thing_type_in(&mut tx, scope, name).await?.is_none() {
            return Err(StoreError::NotFound(format!(
                "Thing type {name} does not exist"
            )));
        }
        sqlx::query("UPDATE thing_types SET properties = ? WHERE account_id = ? AND region = ? AND name = ?")
            .bind(properties.to_string())
            .bind(&scope.account_id)
            .bind(&scope.region)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn deprecate_thing_type(&self, scope: &Scope, name: &str, undo: bool) -> Result<()> {
        let mut tx = self.begin().await?;
        if Self::thing_type_in(&mut tx, scope, name).await?.is_none() {
            return Err(StoreError::NotFound(format!(
                "Thing type {name} does not exist"
            )));
        }
        let (flag, when) = if undo { (0, None) } else { (1, Some(now_ms())) };
        sqlx::query(
            "UPDATE thing_types SET deprecated = ?, deprecated_ms = ? WHERE account_id = ? AND region = ? AND name = ?",
        )
        .bind(flag)
        .bind(when)
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// DeleteThingType: the type must be deprecated first and no thing may still use it. (AWS also waits five
    /// minutes after deprecation; a self-hosted registry has no propagation delay to wait for.)
    pub async fn delete_thing_type(&self, scope: &Scope, name: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        let t = Self::thing_type_in(&mut tx, scope, name)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("Thing type {name} does not exist")))?;
        if !t.deprecated {
            return Err(StoreError::InvalidRequest(format!(
                "Thing type {name} must be deprecated before it can be deleted"
            )));
        }
        let users = count_in(&mut tx, "things", "thing_type", scope, name).await?;
        if users > 0 {
            return Err(StoreError::InvalidRequest(format!(
                "Thing type {name} is still associated with {users} thing(s)"
            )));
        }
        sqlx::query("DELETE FROM thing_types WHERE account_id = ? AND region = ? AND name = ?")
            .bind(&scope.account_id)
            .bind(&scope.region)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- thing groups ----

    async fn group_row(
        tx: &mut Transaction<'static, Sqlite>,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<(String, Option<String>, Option<String>, String, i64, i64)>> {
        let row = sqlx::query(
            "SELECT group_id, parent, description, attributes, version, created_ms FROM thing_groups
             WHERE account_id = ? AND region = ? AND name = ?",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
        Ok(match row {
            Some(r) => Some((
                r.try_get("group_id")?,
                r.try_get("parent")?,
                r.try_get("description")?,
                r.try_get("attributes")?,
                r.try_get("version")?,
                r.try_get("created_ms")?,
            )),
            None => None,
        })
    }

    async fn group_in(
        tx: &mut Transaction<'static, Sqlite>,
        scope: &Scope,
        name: &str,
    ) -> Result<Option<ThingGroup>> {
        let Some((group_id, parent, description, attributes, version, created_ms)) =
            Self::group_row(tx, scope, name).await?
        else {
            return Ok(None);
        };
        // Walk up to the root; the depth limit bounds the loop.
        let mut ancestors = Vec::new();
        let mut next = parent.clone();
        while let Some(p) = next {
            if ancestors.len() > MAX_GROUP_DEPTH {
                return Err(StoreError::Corrupt(format!(
                    "thing group {name} has a cyclic or too deep hierarchy"
                )));
            }
            next = Self::group_row(tx, scope, &p).await?.and_then(|g| g.1);
            ancestors.push(GroupRef {
                arn: scope.arn("thinggroup", &p),
                name: p,
            });
        }
        ancestors.reverse();
        Ok(Some(ThingGroup {
            name: name.to_owned(),
            group_id,
            arn: scope.arn("thinggroup", name),
            parent,
            ancestors,
            description,
            attributes: parse_attributes(&attributes)?,
            version,
            created_ms,
        }))
    }

    /// The group, read in a short transaction so its ancestor chain is consistent.
    pub async fn describe_thing_group(&self, scope: &Scope, name: &str) -> Result<ThingGroup> {
        let mut tx = self.read.begin().await?;
        let g = Self::group_in(&mut tx, scope, name).await?;
        tx.commit().await?;
        g.ok_or_else(|| StoreError::NotFound(format!("Thing group {name} does not exist")))
    }

    pub async fn create_thing_group(
        &self,
        scope: &Scope,
        new: &NewThingGroup,
    ) -> Result<ThingGroup> {
        let mut tx = self.begin().await?;
        if let Some(existing) = Self::group_in(&mut tx, scope, &new.name).await? {
            if existing.parent == new.parent
                && existing.description == new.description
                && existing.attributes == new.attributes
            {
                return Ok(existing);
            }
            return Err(StoreError::AlreadyExists {
                message: format!(
                    "Thing group {} already exists with different properties",
                    new.name
                ),
                resource_id: existing.group_id,
                resource_arn: Some(existing.arn),
            });
        }
        if let Some(parent) = &new.parent {
            let p = Self::group_in(&mut tx, scope, parent)
                .await?
                .ok_or_else(|| {
                    StoreError::NotFound(format!("Parent thing group {parent} does not exist"))
                })?;
            if p.ancestors.len() + 2 > MAX_GROUP_DEPTH {
                return Err(StoreError::LimitExceeded(format!(
                    "a thing group hierarchy can be at most {MAX_GROUP_DEPTH} levels deep"
                )));
            }
        }
        let now = now_ms();
        let group_id = new_id();
        sqlx::query(
            "INSERT INTO thing_groups (account_id, region, name, group_id, parent, description, attributes, version,
             created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(&new.name)
        .bind(&group_id)
        .bind(&new.parent)
        .bind(&new.description)
        .bind(attributes_json(&new.attributes))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let g = Self::group_in(&mut tx, scope, &new.name)
            .await?
            .ok_or_else(|| {
                StoreError::Corrupt("thing group vanished while being created".into())
            })?;
        tx.commit().await?;
        Ok(g)
    }

    /// UpdateThingGroup; returns the new version.
    pub async fn update_thing_group(
        &self,
        scope: &Scope,
        name: &str,
        description: Option<String>,
        attributes: Option<AttributeUpdate>,
        expected_version: Option<i64>,
    ) -> Result<i64> {
        let mut tx = self.begin().await?;
        let mut g = Self::group_in(&mut tx, scope, name)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("Thing group {name} does not exist")))?;
        check_version("thing group", name, expected_version, g.version)?;
        if description.is_some() {
            g.description = description;
        }
        if let Some(a) = attributes {
            if !a.merge {
                g.attributes.clear();
            }
            for (k, v) in a.attributes {
                if v.is_empty() {
                    g.attributes.remove(&k);
                } else {
                    g.attributes.insert(k, v);
                }
            }
        }
        g.version += 1;
        sqlx::query(
            "UPDATE thing_groups SET description = ?, attributes = ?, version = ?
             WHERE account_id = ? AND region = ? AND name = ?",
        )
        .bind(&g.description)
        .bind(attributes_json(&g.attributes))
        .bind(g.version)
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(g.version)
    }

    /// DeleteThingGroup: succeeds when absent; refused while it has child groups. Memberships and policy
    /// attachments of the group go with it.
    pub async fn delete_thing_group(
        &self,
        scope: &Scope,
        name: &str,
        expected_version: Option<i64>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let Some(g) = Self::group_in(&mut tx, scope, name).await? else {
            return Ok(());
        };
        check_version("thing group", name, expected_version, g.version)?;
        let children = count_in(&mut tx, "thing_groups", "parent", scope, name).await?;
        if children > 0 {
            return Err(StoreError::InvalidRequest(format!(
                "Cannot delete thing group {name} while it still has child groups"
            )));
        }
        delete_in(&mut tx, "thing_group_members", "group_name", scope, name).await?;
        delete_in(&mut tx, "thing_groups", "name", scope, name).await?;
        sqlx::query(
            "DELETE FROM policy_targets WHERE account_id = ? AND region = ? AND target = ?",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(&g.arn)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// ListThingGroups: every group, or the children of `parent` (with `recursive`, all its descendants).
    pub async fn list_thing_groups(
        &self,
        scope: &Scope,
        parent: Option<&str>,
        name_prefix: Option<&str>,
        recursive: bool,
        page: &PageRequest,
    ) -> Result<Page<GroupRef>> {
        let mut sql = String::from(
            "WITH RECURSIVE descendants(name) AS (
                 SELECT name FROM thing_groups WHERE account_id = ? AND region = ? AND parent = ?
                 UNION SELECT g.name FROM thing_groups g JOIN descendants d ON g.parent = d.name
                 WHERE ? AND g.account_id = ? AND g.region = ?)
             SELECT name, created_ms FROM thing_groups WHERE account_id = ? AND region = ?",
        );
        if parent.is_some() {
            sql.push_str(" AND name IN (SELECT name FROM descendants)");
        }
        if name_prefix.is_some() {
            sql.push_str(" AND substr(name, 1, length(?)) = ?");
        }
        let page = list_page(
            &self.read,
            &sql,
            "name",
            page,
            |q| {
                let q = q
                    .bind(&scope.account_id)
                    .bind(&scope.region)
                    .bind(parent)
                    .bind(recursive)
                    .bind(&scope.account_id)
                    .bind(&scope.region)
                    .bind(&scope.account_id)
                    .bind(&scope.region);
                match name_prefix {
                    Some(p) => q.bind(p).bind(p),
                    None => q,
                }
            },
            name_row("name"),
            name_key,
        )
        .await?;
        Ok(group_refs(scope, page))
    }

    /// AddThingToThingGroup. A thing is in at most ten groups and in at most one group of each hierarchy.
    pub async fn add_thing_to_group(&self, scope: &Scope, group: &str, thing: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        let g = Self::group_in(&mut tx, scope, group)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("Thing group {group} does not exist")))?;
        Self::require_thing(&mut tx, scope, thing).await?;
        let current: Vec<String> = sqlx::query_scalar(
            "SELECT group_name FROM thing_group_members WHERE account_id = ? AND region = ? AND thing_name = ?",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(thing)
        .fetch_all(&mut *tx)
        .await?;
        if current.iter().any(|c| c == group) {
            return Ok(());
        }
        if current.len() as i64 >= MAX_GROUPS_PER_THING {
            return Err(StoreError::LimitExceeded(format!(
                "Thing {thing} is already in {MAX_GROUPS_PER_THING} thing groups"
            )));
        }
        let root = |g: &ThingGroup| {
            g.ancestors
                .first()
                .map(|a| a.name.clone())
                .unwrap_or_else(|| g.name.clone())
        };
        let new_root = root(&g);
        for other in &current {
            if let Some(o) = Self::group_in(&mut tx, scope, other).await?
                && root(&o) == new_root
            {
                return Err(StoreError::InvalidRequest(format!(
                    "Thing {thing} is already in thing group {other} of the same hierarchy as {group}"
                )));
            }
        }
        sqlx::query(
            "INSERT INTO thing_group_members (account_id, region, group_name, thing_name, created_ms)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(group)
        .bind(thing)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn remove_thing_from_group(
        &self,
        scope: &Scope,
        group: &str,
        thing: &str,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        if Self::group_row(&mut tx, scope, group).await?.is_none() {
            return Err(StoreError::NotFound(format!(
                "Thing group {group} does not exist"
            )));
        }
        Self::require_thing(&mut tx, scope, thing).await?;
        sqlx::query(
            "DELETE FROM thing_group_members WHERE account_id = ? AND region = ? AND group_name = ? AND thing_name = ?",
        )
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(group)
        .bind(thing)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_groups_for_thing(
        &self,
        scope: &Scope,
        thing: &str,
        page: &PageRequest,
    ) -> Result<Page<GroupRef>> {
        self.describe_thing(scope, thing).await?;
        let sql = "SELECT group_name, created_ms FROM thing_group_members
                   WHERE account_id = ? AND region = ? AND thing_name = ?";
        let page = list_page(
            &self.read,
            sql,
            "group_name",
            page,
            |q| q.bind(&scope.account_id).bind(&scope.region).bind(thing),
            name_row("group_name"),
            name_key,
        )
        .await?;
        Ok(group_refs(scope, page))
    }

    /// ListThingsInThingGroup: the group's things, and with `recursive` those of all its descendants too.
    pub async fn list_things_in_group(
        &self,
        scope: &Scope,
        group: &str,
        recursive: bool,
        page: &PageRequest,
    ) -> Result<Page<String>> {
        self.describe_thing_group(scope, group).await?;
        let sql = "WITH RECURSIVE groups(name) AS (
                       SELECT ? UNION SELECT g.name FROM thing_groups g JOIN groups ON g.parent = groups.name
                       WHERE ? AND g.account_id = ? AND g.region = ?)
                   SELECT thing_name, created_ms FROM (
                       SELECT thing_name, MIN(created_ms) AS created_ms FROM thing_group_members
                       WHERE account_id = ? AND region = ? AND group_name IN (SELECT name FROM groups)
                       GROUP BY thing_name) WHERE 1";
        let page = list_page(
            &self.read,
            sql,
            "thing_name",
            page,
            |q| {
                q.bind(group)
                    .bind(recursive)
                    .bind(&scope.account_id)
                    .bind(&scope.region)
                    .bind(&scope.account_id)
                    .bind(&scope.region)
            },
            name_row("thing_name"),
            name_key,
        )
        .await?;
        Ok(Page {
            items: page.items.into_iter().map(|(n, _)| n).collect(),
            next: page.next,
        })
    }
}

fn thing_type_from_row(scope: &Scope, r: &SqliteRow) -> Result<ThingType> {
    let name: String = r.try_get("name")?;
    let properties: String = r.try_get("properties")?;
    Ok(ThingType {
        arn: scope.arn("thingtype", &name),
        name,
        type_id: r.try_get("type_id")?,
        properties: serde_json::from_str(&properties)
            .map_err(|e| StoreError::Corrupt(format!("thing type: {e}")))?,
        deprecated: r.try_get::<i64, _>("deprecated")? != 0,
        deprecated_ms: r.try_get("deprecated_ms")?,
        created_ms: r.try_get("created_ms")?,
    })
}

/// Names of thing groups as `GroupRef`s.
fn group_refs(scope: &Scope, page: Page<(String, i64)>) -> Page<GroupRef> {
    Page {
        items: page
            .items
            .into_iter()
            .map(|(n, _)| GroupRef {
                arn: scope.arn("thinggroup", &n),
                name: n,
            })
            .collect(),
        next: page.next,
    }
}
