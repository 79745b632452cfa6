//! AWS Secrets Manager, as much of it as Firehose's
//! `SecretsManagerConfiguration` reads and the tools that set secrets up
//! (boto3, the AWS CLI, Terraform, CDK) call: secrets, their versions and
//! staging labels, scheduled deletion, tags, random passwords.
//!
//! - [`Service`] holds every secret of the account, keyed by region and
//!   name, in memory behind one lock, and their rows in the shared metadata
//!   store ([`meta`], namespace `secretsmanager`). A change is persisted
//!   before it is installed.
//! - [`Service::call`] validates a body against the generated [`model`]
//!   (only the operations Riffle serves are generated) and runs the
//!   handler in [`ops`].
//! - [`Service::current_string`] is the in-process read other services
//!   use (Firehose reads a destination's credentials from a secret).
//! - [`error::SecretsError`] maps every failure to AWS's `__type`.
//!
//! Values are stored as given, without encryption: Riffle has no KMS.
//! `KmsKeyId` is kept and described.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use riffle_wire::shape;
use riffle_wire::Value;

pub mod error;
pub mod meta;
#[rustfmt::skip]
pub mod model;
pub mod ops;

use error::Result;
pub use error::SecretsError;

/// Who is calling: the region comes from the request's credential scope.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub region: String,
}

/// (region, name).
pub type SecretKey = (String, String);

/// The staging label of a secret's current version.
pub const CURRENT: &str = "AWSCURRENT";
/// The label the version AWSCURRENT leaves moves to.
pub const PREVIOUS: &str = "AWSPREVIOUS";

/// One version of a secret's value.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VersionRow {
    /// The ClientRequestToken that created it, or a UUID.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string: Option<String>,
    /// SecretBinary, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<String>,
    /// Staging labels; a version without any is deprecated.
    pub stages: Vec<String>,
    pub created_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accessed_ms: Option<i64>,
}

/// One secret with its versions: its row in the store.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SecretRow {
    pub region: String,
    pub name: String,
    /// `arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 chars>`.
    pub arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    pub created_ms: i64,
    pub changed_ms: i64,
    /// The day (midnight UTC) of the last GetSecretValue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accessed_ms: Option<i64>,
    /// When DeleteSecret scheduled the deletion, and when it happens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purge_ms: Option<i64>,
    /// Tags in the order they were first given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<(String, String)>,
    /// Oldest first.
    #[serde(default)]
    pub versions: Vec<VersionRow>,
}

impl SecretRow {
    /// Whether the scheduled deletion has happened by `now_ms`.
    pub fn gone(&self, now_ms: i64) -> bool {
        self.purge_ms.is_some_and(|p| p <= now_ms)
    }

    pub fn version_with_stage(&self, stage: &str) -> Option<&VersionRow> {
        self.versions
            .iter()
            .find(|v| v.stages.iter().any(|s| s == stage))
    }
}

/// Why another service could not read a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// No such secret, or it is scheduled for deletion.
    NotFound(String),
    /// The current version holds a binary value, or none.
    NoString(String),
}

/// The Secrets Manager service.
pub struct Service {
    account: String,
    clock: Arc<dyn riffle_core::Clock>,
    secrets: RwLock<BTreeMap<SecretKey, SecretRow>>,
    /// Serialises changes: each persists its row, then installs it.
    change: tokio::sync::Mutex<()>,
    meta: meta::Meta,
}

impl Service {
    /// Secrets whose rows live in `meta` (or nowhere: [`meta::Meta::none`]).
    pub fn open(
        account: String,
        clock: Arc<dyn riffle_core::Clock>,
        meta: meta::Meta,
    ) -> std::result::Result<Arc<Service>, riffle_meta::MetaError> {
        let secrets = meta
            .load()?
            .into_iter()
            .map(|r| ((r.region.clone(), r.name.clone()), r))
            .collect();
        Ok(Arc::new(Service {
            account,
            clock,
            secrets: RwLock::new(secrets),
            change: tokio::sync::Mutex::new(()),
            meta,
        }))
    }

    /// Secrets that keep nothing on disk.
    pub fn in_memory(account: String, clock: Arc<dyn riffle_core::Clock>) -> Arc<Service> {
        Service::open(account, clock, meta::Meta::none()).expect("an empty store opens")
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub(crate) fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<SecretKey, SecretRow>> {
        self.secrets.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<SecretKey, SecretRow>> {
        self.secrets.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) async fn lock_changes(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.change.lock().await
    }

    pub(crate) fn meta(&self) -> &meta::Meta {
        &self.meta
    }

    /// Secrets, deleted ones waiting for their date included, for metrics.
    pub fn secret_count(&self) -> usize {
        let now = self.now_ms();
        self.read().values().filter(|s| !s.gone(now)).count()
    }

    /// The SecretString of the AWSCURRENT version of the secret `arn` (a
    /// full or partial ARN) names, for another service.
    pub fn current_string(&self, arn: &str) -> std::result::Result<String, ReadError> {
        let region = arn.split(':').nth(3).unwrap_or("");
        let now = self.now_ms();
        let secrets = self.read();
        let row = ops::find(&secrets, region, arn, now)
            .filter(|r| r.deleted_ms.is_none())
            .ok_or_else(|| {
                ReadError::NotFound(format!("Secrets Manager can't find the secret {arn}."))
            })?;
        row.version_with_stage(CURRENT)
            .and_then(|v| v.string.clone())
            .ok_or_else(|| {
                ReadError::NoString(format!(
                    "The secret {arn} has no SecretString in its AWSCURRENT version."
                ))
            })
    }

    /// Runs one operation on a decoded request body.
    pub async fn call(&self, ctx: &Ctx, operation: &str, body: Value) -> Result<Value> {
        let input = shape::operation_input(model::OPERATIONS, operation, body)?;
        ops::dispatch(self, ctx, operation, input).await
    }
}
