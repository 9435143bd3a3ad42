//! Opening the database, migrations, and the transaction discipline.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use crate::{Result, StoreError};

/// Migrations in order. Each runs in its own transaction and is recorded in `schema_migrations`.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_registry.sql")),
    (2, include_str!("migrations/0002_gateway.sql")),
];

/// Tables wiped by [`Store::reset`]: the registry, not accounts or their keys.
const REGISTRY_TABLES: &[&str] = &[
    "registration_codes",
    "thing_types",
    "things",
    "thing_groups",
    "thing_group_members",
    "certificates",
    "ca_certificates",
    "policies",
    "policy_versions",
    "policy_targets",
    "thing_principals",
];

/// The registry store. Cheap to clone; share one per process.
///
/// SQLite allows one writer at a time. Writes go through a one-connection pool and start with `BEGIN IMMEDIATE`, so
/// a transaction that reads then writes never fails on a lock upgrade; reads use a separate pool and, in WAL mode,
/// never wait for the writer. Another process (`onboard account create`) waits on the busy timeout.
#[derive(Clone)]
pub struct Store {
    pub(crate) read: SqlitePool,
    pub(crate) write: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        let store = Store {
            read: SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await?,
            write,
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER)")
            .execute(&mut *tx)
            .await?;
        let applied: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
            .fetch_one(&mut *tx)
            .await?;
        let applied = applied.unwrap_or(0);
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > applied) {
            sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO schema_migrations (version, applied_ms) VALUES (?, ?)")
                .bind(version)
                .bind(crate::now_ms())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Starts a write transaction. Every change to the registry happens inside exactly one.
    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.write.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Wipes every registry resource in every account (development mode only); accounts and keys stay.
    pub async fn reset(&self) -> Result<()> {
        let mut tx = self.begin().await?;
        for table in REGISTRY_TABLES {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Closes both pools, flushing the WAL.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// Keyset pagination over `(created_ms, key)`: the page token is `"<created_ms>:<key>"`.
pub(crate) struct Cursor {
    pub created_ms: i64,
    pub key: String,
}

impl Cursor {
    pub fn parse(token: &str) -> Result<Self> {
        let bad = || StoreError::InvalidRequest("the pagination token is not valid".into());
        let (ms, key) = token.split_once(':').ok_or_else(bad)?;
        Ok(Cursor {
            created_ms: ms.parse().map_err(|_| bad())?,
            key: key.to_owned(),
        })
    }

    pub fn token(created_ms: i64, key: &str) -> String {
        format!("{created_ms}:{key}")
    }
}

/// Splits `rows` (fetched with `limit + 1`) into a page and the token of its last item.
fn paginate<T>(mut rows: Vec<T>, limit: u32, key: impl Fn(&T) -> (i64, String)) -> crate::Page<T> {
    let limit = limit as usize;
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| {
            let (ms, k) = key(r);
            Cursor::token(ms, &k)
        })
    } else {
        None
    };
    crate::Page { items: rows, next }
}

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments>;

/// One page of a keyset-paginated listing, ordered by `(created_ms, key_col)`.
///
/// `select` is a complete `SELECT ... WHERE ...` yielding `created_ms` and `key_col`, to which the page condition,
/// order and limit are appended; `bind` binds its own parameters in order; `row` reads one item; `key` gives an
/// item's `(created_ms, key)` for the next page's token.
pub(crate) async fn list_page<'q, T>(
    pool: &SqlitePool,
    select: &str,
    key_col: &str,
    page: &crate::PageRequest,
    bind: impl FnOnce(SqliteQuery<'q>) -> SqliteQuery<'q>,
    row: impl Fn(&SqliteRow) -> Result<T>,
    key: impl Fn(&T) -> (i64, String),
) -> Result<crate::Page<T>> {
    let cursor = page.after.as_deref().map(Cursor::parse).transpose()?;
    let (cmp, dir) = if page.ascending {
        (">", "ASC")
    } else {
        ("<", "DESC")
    };
    let mut sql = select.to_owned();
    if cursor.is_some() {
        sql += &format!(" AND (created_ms {cmp} ? OR (created_ms = ? AND {key_col} {cmp} ?))");
    }
    sql += &format!(" ORDER BY created_ms {dir}, {key_col} {dir} LIMIT ?");
    let mut q = bind(sqlx::query(sqlx::AssertSqlSafe(sql)));
    if let Some(c) = cursor {
        q = q.bind(c.created_ms).bind(c.created_ms).bind(c.key);
    }
    let rows = q.bind(i64::from(page.limit) + 1).fetch_all(pool).await?;
    let items = rows.iter().map(row).collect::<Result<Vec<_>>>()?;
    Ok(paginate(items, page.limit, key))
}

/// Reads a `(name, created_ms)` row, for listings of names.
pub(crate) fn name_row(column: &'static str) -> impl Fn(&SqliteRow) -> Result<(String, i64)> {
    move |r| Ok((r.try_get(column)?, r.try_get("created_ms")?))
}

/// The page key of a `(name, created_ms)` item.
pub(crate) fn name_key(item: &(String, i64)) -> (i64, String) {
    (item.1, item.0.clone())
}

/// Rows of `table` in `scope` whose `column` equals `value`; for existence and "still in use" checks inside a
/// transaction.
pub(crate) async fn count_in(
    tx: &mut Transaction<'static, Sqlite>,
    table: &str,
    column: &str,
    scope: &crate::Scope,
    value: &str,
) -> Result<i64> {
    let sql = format!(
        "SELECT COUNT(*) FROM {table} WHERE account_id = ? AND region = ? AND {column} = ?"
    );
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(value)
        .fetch_one(&mut **tx)
        .await?)
}

/// Deletes the rows of `table` in `scope` whose `column` equals `value`, inside a transaction.
pub(crate) async fn delete_in(
    tx: &mut Transaction<'static, Sqlite>,
    table: &str,
    column: &str,
    scope: &crate::Scope,
    value: &str,
) -> Result<()> {
    let sql = format!("DELETE FROM {table} WHERE account_id = ? AND region = ? AND {column} = ?");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&scope.account_id)
        .bind(&scope.region)
        .bind(value)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
