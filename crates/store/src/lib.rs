#![forbid(unsafe_code)]
//! The registry: domain types and the [`Store`] API over an embedded SQLite database.
//!
//! The store knows the domain rules that must hold inside one transaction (uniqueness, state machines, attachment
//! counts, "one account per region may hold a CA in DEFAULT mode") and nothing of HTTP or MQTT. Callers do the
//! stateless checks first (parsing, signature verification), then call one store method, which runs one
//! transaction: a failure changes nothing.
//!
//! Errors are [`StoreError`] variants named after the domain condition; the API layer maps them to AWS error codes.
//! No sqlx type appears in the public API, so a PostgreSQL backend can be added behind the same methods.

mod accounts;
mod certificates;
mod db;
mod identity;
mod policies;
mod things;

pub use accounts::{Account, NewAccount};
pub use certificates::{
    CaCertificate, CaRegistration, CaUpdate, Certificate, CertificateMode, CertificateStatus,
    NewCertificate, OutgoingCertificate,
};
pub use db::Store;
pub use identity::{
    AttachedThing, CaRecord, CertRegistration, GatewaySnapshot, GroupParent, PolicyAttachment,
    PolicyDefault, PrincipalAttachment, RetainedMessage,
};
pub use policies::{Policy, PolicyVersion, PrincipalType, Target, ThingPrincipal};
pub use things::{
    AttributeUpdate, GroupRef, NewThing, NewThingGroup, NewThingType, Thing, ThingFilter,
    ThingGroup, ThingType, ThingUpdate,
};

/// What every registry resource belongs to: an account and a region.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub account_id: String,
    pub region: String,
}

impl Scope {
    pub fn new(account_id: impl Into<String>, region: impl Into<String>) -> Self {
        Self {
            account_id: account_id.into(),
            region: region.into(),
        }
    }

    /// `arn:aws:iot:<region>:<account>:<kind>/<name>`.
    pub fn arn(&self, kind: &str, name: &str) -> String {
        format!(
            "arn:aws:iot:{}:{}:{}/{}",
            self.region, self.account_id, kind, name
        )
    }
}

/// A domain error. The message is safe to show to the client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    AlreadyExists {
        message: String,
        resource_id: String,
        resource_arn: Option<String>,
    },
    #[error("{0}")]
    VersionConflict(String),
    #[error("{0}")]
    DeleteConflict(String),
    #[error("{0}")]
    CertificateState(String),
    #[error("{0}")]
    CertificateConflict(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    VersionsLimitExceeded(String),
    #[error("{0}")]
    TransferConflict(String),
    #[error("{0}")]
    TransferAlreadyCompleted(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    /// The database failed; the message is for the log, not the client.
    #[error("database error: {0}")]
    Database(String),
    /// A stored value could not be read back (a bug or a hand-edited database).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One page of a listing and the key to the next page, if any. The key is opaque to callers; the API encodes it as
/// AWS's `nextToken` or `nextMarker`.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// Where a listing starts and how long it may be.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// The `next` of the previous page.
    pub after: Option<String>,
    pub limit: u32,
    pub ascending: bool,
}

pub(crate) fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Optimistic concurrency: an `expectedVersion` that does not match refuses the change.
pub(crate) fn check_version(
    kind: &str,
    name: &str,
    expected: Option<i64>,
    actual: i64,
) -> Result<()> {
    match expected {
        Some(expected) if expected != actual => Err(StoreError::VersionConflict(format!(
            "The version for {kind} {name} does not match the expected version ({expected}); it is {actual}."
        ))),
        _ => Ok(()),
    }
}
