//! The Redshift destination, delivered to a PostgreSQL server (Redshift
//! speaks PostgreSQL's protocol), as AWS describes it:
//!
//! 1. Each batch is staged as one object in the intermediate S3
//!    destination (`S3Configuration`: bucket, prefix, compression,
//!    through [`crate::s3::Settings::store`], the S3 destination's key
//!    layout), and a manifest naming it,
//!    `{"entries":[{"url":"s3://bucket/key","mandatory":true}]}`, is
//!    stored under `<Prefix>manifests/YYYY/MM/DD/HH/`.
//! 2. Then the COPY: one transaction on the server `ClusterJDBCURL`
//!    names (or `--redshift-endpoint`), with `Username` and `Password`:
//!    the table's columns are looked up, the staged object's data is
//!    read as the CopyOptions say ([`copy`]) and fed to
//!    `COPY <DataTableName> (<columns>) FROM STDIN`. All rows or none.
//! 3. A failed COPY is retried (the delivery task's backoff) until
//!    `RetryOptions.DurationInSeconds` (default 3600; 0: no retry) have
//!    passed since the first COPY attempt; the staged object is kept and
//!    reused. Then the batch is skipped: its manifest is stored again
//!    under `<Prefix>errors/manifests/YYYY/MM/DD/HH/` for a manual
//!    backfill, and delivery moves on. Failures are reported with AWS's
//!    error codes (`Redshift.ConnectionFailed`,
//!    `Redshift.AuthenticationFailed`, `Redshift.TableNotFound`, ...).
//! 4. `S3BackupMode` `Enabled` also stores each batch's source records in
//!    the `S3BackupConfiguration` bucket.
//!
//! Staging failures are S3 failures: retried like the S3 destination's.
//! Delivery is at least once: a COPY whose commit is not acknowledged (the
//! connection drops at that moment), or a crash after the commit and
//! before the checkpoint is persisted, loads the batch again.

pub mod copy;

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use serde_json::Value as Json;
use tokio_postgres::error::SqlState;

use crate::deliver::{Batch, BoxFuture, DeliveryError, Destination, Hints};
use crate::s3::Stored;
use crate::sink::ObjectSink;
use crate::stats::Stats;
use copy::{Column, ColumnKind, CopyOptions, OptionsError};

/// The folder (under the intermediate S3 destination's prefix) of the
/// manifests of staged batches.
pub const MANIFESTS: &str = "manifests";
/// The folder of the manifests of batches given up on.
pub const ERROR_MANIFESTS: &str = "errors/manifests";
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one COPY attempt may take, connection included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Bytes per CopyData message.
const COPY_CHUNK: usize = 1 << 20;

/// `HOST:PORT` (`[v6]:PORT` for IPv6): the server `--redshift-endpoint`
/// sends every Redshift destination to, whatever host and port its
/// ClusterJDBCURL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl FromStr for HostPort {
    type Err = String;

    fn from_str(s: &str) -> Result<HostPort, String> {
        split_host_port(s, None).ok_or_else(|| format!("`{s}` is not HOST:PORT"))
    }
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// `host:port`, `[v6]:port`, or `host` alone when `default_port` is
/// given.
fn split_host_port(s: &str, default_port: Option<u16>) -> Option<HostPort> {
    let (host, port) = match s.strip_prefix('[') {
        Some(v6) => {
            let (h, rest) = v6.split_once(']')?;
            match rest.strip_prefix(':') {
                Some(p) => (h, p.parse().ok()?),
                None if rest.is_empty() => (h, default_port?),
                None => return None,
            }
        }
        None => match s.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (s, default_port?),
        },
    };
    if host.is_empty() || host.contains(['/', '@', ' ']) {
        return None;
    }
    Some(HostPort {
        host: host.to_owned(),
        port,
    })
}

/// Where a ClusterJDBCURL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub server: HostPort,
    pub database: String,
}

impl Endpoint {
    /// Parses `jdbc:redshift://host:port/database` (or
    /// `jdbc:postgresql://`); the port defaults to 5439 (Redshift's) or
    /// 5432, and JDBC properties after `?` are ignored.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let bad = || {
            format!(
                "Unsupported ClusterJDBCURL {url}: expected jdbc:redshift://host:port/database."
            )
        };
        let (rest, default_port) = if let Some(r) = url.strip_prefix("jdbc:redshift://") {
            (r, 5439)
        } else if let Some(r) = url.strip_prefix("jdbc:postgresql://") {
            (r, 5432)
        } else {
            return Err(bad());
        };
        let (authority, path) = rest.split_once('/').ok_or_else(bad)?;
        let database = path.split(['?', ';']).next().unwrap_or("");
        if database.is_empty() {
            return Err(bad());
        }
        let server = split_host_port(authority, Some(default_port)).ok_or_else(bad)?;
        Ok(Endpoint {
            server,
            database: database.to_owned(),
        })
    }
}

/// A Redshift failure in AWS's words: the code and the text AWS's
/// "Amazon Data Firehose data delivery errors" give it.
struct Aws(&'static str, &'static str);

const CONNECTION_FAILED: Aws = Aws("Redshift.ConnectionFailed", "The connection to the specified Amazon Redshift cluster failed. Ensure that security settings allow Firehose connections, that the cluster or database specified in the Amazon Redshift destination configuration or JDBC URL is correct, and that the cluster is available.");
const AUTHENTICATION_FAILED: Aws = Aws(
    "Redshift.AuthenticationFailed",
    "The provided user name and password failed authentication. Provide a valid user name and password.",
);
const DATABASE_NOT_FOUND: Aws = Aws("Redshift.DatabaseNotFound", "The database specified in the Amazon Redshift destination configuration or JDBC URL was not found. Specify a valid database name.");
const TABLE_NOT_FOUND: Aws = Aws(
    "Redshift.TableNotFound",
    "The table to which to load data was not found. Ensure that the specified table exists.",
);
const COLUMN_NOT_FOUND: Aws = Aws(
    "Redshift.ColumnNotFound",
    "A column in the COPY command does not exist in the table. Specify a valid column name.",
);
const MISSING_COLUMN: Aws = Aws("Redshift.MissingColumn", "There is a column defined in the table schema as NOT NULL without a DEFAULT value and not included in the column list. Exclude this column, ensure that the loaded data always provides a value for this column, or add a default value to the Amazon Redshift schema for this table.");
const SYNTAX_ERROR: Aws = Aws(
    "Redshift.SyntaxError",
    "The COPY command contains a syntax error. Retry the command.",
);
const INCORRECT_COPY_OPTIONS: Aws = Aws("Redshift.IncorrectCopyOptions", "Conflicting or redundant COPY options were provided. Some options are not compatible in certain combinations. Check the COPY command reference for more info.");
const DATA_LOAD_FAILED: Aws = Aws(
    "Redshift.DataLoadFailed",
    "Loading data into the table failed. Check STL_LOAD_ERRORS system table for details.",
);
const INSUFFICIENT_PRIVILEGE: Aws = Aws("Redshift.InsufficientPrivilege", "The user does not have permissions to load data into the table. Check the Amazon Redshift user permissions for the INSERT privilege.");
const READ_ONLY_CLUSTER: Aws = Aws(
    "Redshift.ReadOnlyCluster",
    "The query cannot be executed because the system is in resize mode. Try the query again later.",
);
const DISK_FULL: Aws = Aws("Redshift.DiskFull", "Data could not be loaded because the disk is full. Increase the capacity of the Amazon Redshift cluster or delete unused data to free disk space.");

impl Aws {
    /// AWS's text, then what the server said.
    fn with(&self, detail: impl std::fmt::Display) -> DeliveryError {
        DeliveryError {
            code: self.0.into(),
            message: format!("{} ({detail})", self.1),
        }
    }
}

/// A PostgreSQL client error as the Redshift failure AWS would report;
/// `server` names where the connection went.
fn pg_failure(e: &tokio_postgres::Error, server: &Endpoint) -> DeliveryError {
    let Some(db) = e.as_db_error() else {
        let text = e.to_string();
        return if text.contains("password missing") {
            AUTHENTICATION_FAILED.with(text)
        } else {
            CONNECTION_FAILED.with(format!(
                "{}, database {}: {text}",
                server.server, server.database
            ))
        };
    };
    let code = db.code();
    let detail = match db.where_() {
        Some(w) => format!(
            "PostgreSQL: {} (SQLSTATE {}; {w})",
            db.message(),
            code.code()
        ),
        None => format!("PostgreSQL: {} (SQLSTATE {})", db.message(), code.code()),
    };
    let aws = if *code == SqlState::INVALID_PASSWORD
        || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
    {
        AUTHENTICATION_FAILED
    } else if *code == SqlState::INVALID_CATALOG_NAME {
        DATABASE_NOT_FOUND
    } else if *code == SqlState::UNDEFINED_TABLE {
        TABLE_NOT_FOUND
    } else if *code == SqlState::UNDEFINED_COLUMN {
        COLUMN_NOT_FOUND
    } else if *code == SqlState::SYNTAX_ERROR || *code == SqlState::INVALID_NAME {
        SYNTAX_ERROR
    } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
        INSUFFICIENT_PRIVILEGE
    } else if *code == SqlState::DISK_FULL {
        DISK_FULL
    } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
        READ_ONLY_CLUSTER
    } else if code.code().starts_with("08")
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
        || *code == SqlState::TOO_MANY_CONNECTIONS
    {
        CONNECTION_FAILED
    } else {
        DATA_LOAD_FAILED
    };
    aws.with(detail)
}

/// What one Redshift destination does, read from its description
/// document and its password (kept apart from it).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The server and database connected to (after the
    /// `--redshift-endpoint` override).
    pub endpoint: Endpoint,
    pub username: String,
    pub password: Option<String>,
    /// SecretsManagerConfiguration's SecretARN when enabled: the user name
    /// and password are the secret's `username` and `password`, read at
    /// every COPY.
    pub secret_arn: Option<String>,
    /// Where that secret is read.
    pub secrets: Option<crate::secrets::SecretsRef>,
    /// DataTableName, as written into the COPY command.
    pub table: String,
    /// DataTableColumns.
    pub columns: Option<String>,
    /// The CopyOptions, or the failure every COPY with them meets.
    pub copy: Result<CopyOptions, DeliveryError>,
    /// RetryOptions.DurationInSeconds, in ms.
    pub retry_ms: i64,
    /// The intermediate S3 destination.
    pub staging: crate::s3::Settings,
    /// S3BackupMode Enabled: the backup destination.
    pub backup: Option<crate::s3::Settings>,
}

fn unsupported(what: &str) -> String {
    format!("{what} is not supported by Riffle yet; records stay buffered.")
}

/// An S3 description nested in a Redshift destination's, as S3 settings;
/// `Err` says why it cannot deliver.
fn s3_settings(doc: &Json) -> Result<crate::s3::Settings, String> {
    match crate::s3::Settings::from_description(doc) {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(reason)) => Err(reason),
        Err(e) => Err(e.to_string()),
    }
}

impl Settings {
    /// `Err(reason)` when this configuration cannot deliver in Riffle
    /// (shown as FailureDescription; records stay buffered).
    pub fn from_description(
        doc: &Json,
        password: Option<String>,
        server: Option<&HostPort>,
    ) -> Result<Settings, String> {
        let s = |p: &str| doc.pointer(p).and_then(Json::as_str);
        let mut endpoint = Endpoint::parse(s("/ClusterJDBCURL").unwrap_or(""))?;
        if let Some(hp) = server {
            endpoint.server = hp.clone();
        }
        let copy = match CopyOptions::parse(s("/CopyCommand/CopyOptions").unwrap_or("")) {
            Ok(o) => Ok(o),
            Err(OptionsError::Unsupported(what)) => {
                return Err(unsupported(&format!("The COPY option {what}")))
            }
            Err(OptionsError::Syntax(m)) => Err(SYNTAX_ERROR.with(m)),
            Err(OptionsError::Incorrect(m)) => Err(INCORRECT_COPY_OPTIONS.with(m)),
        };
        // The staged objects are the intermediate destination's objects,
        // with the Redshift destination's processors
        // (AppendDelimiterToRecord) applied.
        let mut staging_doc = doc
            .get("S3DestinationDescription")
            .cloned()
            .unwrap_or_else(|| Json::Object(Default::default()));
        if let (Some(p), Some(m)) = (
            doc.get("ProcessingConfiguration"),
            staging_doc.as_object_mut(),
        ) {
            m.insert("ProcessingConfiguration".into(), p.clone());
        }
        let staging = s3_settings(&staging_doc)?;
        let backup = match s("/S3BackupMode") {
            Some("Enabled") => Some(s3_settings(
                doc.get("S3BackupDescription").unwrap_or(&Json::Null),
            )?),
            _ => None,
        };
        Ok(Settings {
            endpoint,
            username: s("/Username").unwrap_or("").to_owned(),
            password,
            secret_arn: crate::secrets::configured(doc),
            secrets: None,
            table: s("/CopyCommand/DataTableName").unwrap_or("").to_owned(),
            columns: s("/CopyCommand/DataTableColumns")
                .filter(|c| !c.trim().is_empty())
                .map(str::to_owned),
            copy,
            retry_ms: doc
                .pointer("/RetryOptions/DurationInSeconds")
                .and_then(Json::as_i64)
                .unwrap_or(3600)
                .max(0)
                * 1000,
            staging,
            backup,
        })
    }
}

/// AWS's checks of a Redshift destination's settings that the model
/// cannot express: the prefixes of its S3 destinations.
pub fn check(doc: &Json) -> Result<(), crate::FirehoseError> {
    // COPY reads uncompressed or GZIP staging only.
    let staging = doc
        .pointer("/S3DestinationDescription/CompressionFormat")
        .and_then(Json::as_str)
        .unwrap_or("UNCOMPRESSED");
    if !matches!(staging, "UNCOMPRESSED" | "GZIP") {
        return Err(crate::FirehoseError::InvalidArgument(
            "Compression formats SNAPPY, HADOOP_SNAPPY and ZIP are not supported for the Redshift destination's S3 configuration.".into(),
        ));
    }
    for nested in ["S3DestinationDescription", "S3BackupDescription"] {
        if let Some(d) = doc.get(nested) {
            // Accepted-but-not-delivered settings are reported by delivery.
            let _ = crate::s3::Settings::from_description(d)?;
        }
    }
    Ok(())
}

/// A DataTableColumns list as column names: unquoted names fold to lower
/// case, `"Quoted"` ones keep theirs.
pub fn column_names(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(
            |c| match c.strip_prefix('"').and_then(|c| c.strip_suffix('"')) {
                Some(q) => q.replace("\"\"", "\""),
                None => c.to_lowercase(),
            },
        )
        .collect()
}

/// `name` as a quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A manifest listing one object.
pub fn manifest(bucket: &str, key: &str) -> String {
    let url = Json::String(format!("s3://{bucket}/{key}"));
    format!(r#"{{"entries":[{{"url":{url},"mandatory":true}}]}}"#)
}

/// One table column as the database describes it.
struct TableColumn {
    column: Column,
    not_null: bool,
    /// A DEFAULT, an identity or a generated column.
    has_default: bool,
    identity: bool,
    generated: bool,
}

/// Where a batch's delivery has got, kept between its attempts.
struct Pending {
    /// Which batch: first and last arrival, records, bytes.
    batch: (i64, i64, usize, usize),
    data: Option<Stored>,
    manifest: Option<String>,
    first_copy_ms: Option<i64>,
}

/// Delivers to one table; stages through an object sink.
pub struct RedshiftDestination {
    pub settings: Settings,
    pub stream: String,
    pub version: u64,
    pub sink: Arc<dyn ObjectSink>,
    pub clock: Arc<dyn riffle_core::Clock>,
    pub stats: Arc<Stats>,
    /// The processors, run by the delivery task before buffering; their
    /// error objects go to the intermediate S3 bucket.
    pub front: crate::process::Front,
    pending: Mutex<Option<Pending>>,
}

impl RedshiftDestination {
    pub fn new(
        settings: Settings,
        stream: String,
        version: u64,
        sink: Arc<dyn ObjectSink>,
        clock: Arc<dyn riffle_core::Clock>,
        stats: Arc<Stats>,
        front: crate::process::Front,
    ) -> RedshiftDestination {
        RedshiftDestination {
            settings,
            stream,
            version,
            sink,
            clock,
            stats,
            front,
            pending: Mutex::new(None),
        }
    }

    /// Maps this destination's client errors to AWS's failures.
    fn pg(&self) -> impl Fn(tokio_postgres::Error) -> DeliveryError + '_ {
        move |e| pg_failure(&e, &self.settings.endpoint)
    }

    /// Stores a manifest of the staged object under `folder`.
    async fn put_manifest(
        &self,
        folder: &str,
        data: &Stored,
        ms: i64,
    ) -> Result<String, DeliveryError> {
        let s = &self.settings.staging;
        let prefix = s.layout.folder_prefix(ms, folder);
        let key = s.layout.key(&prefix, &self.stream, self.version, ms, "");
        self.sink
            .put_object(
                &s.bucket,
                &key,
                Bytes::from(manifest(&s.bucket, &data.key)),
                Some("application/json"),
                None,
            )
            .await
            .map_err(|e| s.failure(e))?;
        Ok(key)
    }

    /// One attempt at a batch: `Ok` once it is loaded, or given up on
    /// into the error manifests.
    async fn attempt(&self, p: &mut Pending, batch: &Batch) -> Result<(), DeliveryError> {
        let ms = batch.first_arrival_ms;
        if p.data.is_none() {
            let stored = self
                .settings
                .staging
                .store(&*self.sink, &self.stream, self.version, batch)
                .await?;
            self.stats
                .delivered_to_s3(batch.records.len() as u64, batch.bytes as u64);
            p.data = Some(stored);
        }
        let data = p.data.clone().expect("staged above");
        if p.manifest.is_none() {
            p.manifest = Some(self.put_manifest(MANIFESTS, &data, ms).await?);
        }
        let first = *p.first_copy_ms.get_or_insert_with(|| self.clock.now_ms());
        let failure =
            match tokio::time::timeout(ATTEMPT_TIMEOUT, self.copy(data.body.clone())).await {
                Ok(Ok(rows)) => {
                    self.stats.delivered_to_redshift(rows, batch.bytes as u64);
                    return Ok(());
                }
                Ok(Err(e)) => e,
                Err(_) => CONNECTION_FAILED.with(format!(
                    "the COPY did not finish within {} s",
                    ATTEMPT_TIMEOUT.as_secs()
                )),
            };
        if self.clock.now_ms() - first < self.settings.retry_ms {
            return Err(failure);
        }
        // The retry duration is over: skip the batch, leaving its
        // manifest for a manual backfill.
        match self.put_manifest(ERROR_MANIFESTS, &data, ms).await {
            Ok(key) => {
                tracing::error!(
                    stream = %self.stream,
                    code = %failure.code,
                    message = %failure.message,
                    manifest = %key,
                    records = batch.records.len(),
                    "Redshift delivery given up after the retry duration; the batch's manifest is in the errors folder"
                );
                Ok(())
            }
            Err(b) => Err(DeliveryError {
                code: failure.code,
                message: format!(
                    "{} Storing the batch's error manifest failed too ({}: {}).",
                    failure.message, b.code, b.message
                ),
            }),
        }
    }

    /// The table's name as the server writes it (quoted and qualified as
    /// needed: the COPY names the table by it, never by the configured
    /// text) and its columns, in order.
    async fn table_columns(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
    ) -> Result<(String, Vec<TableColumn>), DeliveryError> {
        let table = &self.settings.table;
        let row = tx
            .query_one(
                "SELECT to_regclass($1)::oid, to_regclass($1)::text",
                &[table],
            )
            .await
            .map_err(self.pg())?;
        let (Some(oid), Some(name)) = (
            row.get::<_, Option<u32>>(0),
            row.get::<_, Option<String>>(1),
        ) else {
            return Err(TABLE_NOT_FOUND.with(format!("relation {table} does not exist")));
        };
        let rows = tx
            .query(
                "SELECT attname::text, format_type(atttypid, atttypmod), attnotnull, \
                 atthasdef OR attidentity <> '' OR attgenerated <> '', attidentity <> '', \
                 attgenerated <> '' \
                 FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped \
                 ORDER BY attnum",
                &[&oid],
            )
            .await
            .map_err(self.pg())?;
        let columns = rows
            .iter()
            .map(|r| TableColumn {
                column: Column {
                    name: r.get(0),
                    kind: ColumnKind::from_type(r.get::<_, &str>(1)),
                },
                not_null: r.get(2),
                has_default: r.get(3),
                identity: r.get(4),
                generated: r.get(5),
            })
            .collect();
        Ok((name, columns))
    }

    /// The COPY's target columns, checked as Redshift checks them.
    /// Without DataTableColumns: every column but generated ones, and but
    /// identity columns unless EXPLICIT_IDS.
    fn targets(
        &self,
        table: Vec<TableColumn>,
        explicit_ids: bool,
    ) -> Result<Vec<Column>, DeliveryError> {
        let Some(list) = &self.settings.columns else {
            return Ok(table
                .into_iter()
                .filter(|c| !c.generated && (explicit_ids || !c.identity))
                .map(|c| c.column)
                .collect());
        };
        let names = column_names(list);
        let mut out = Vec::with_capacity(names.len());
        for n in &names {
            match table.iter().find(|c| &c.column.name == n) {
                Some(c) => out.push(c.column.clone()),
                None => {
                    return Err(COLUMN_NOT_FOUND.with(format!(
                        "column \"{n}\" of relation {} does not exist",
                        self.settings.table
                    )))
                }
            }
        }
        if let Some(c) = table
            .iter()
            .find(|c| c.not_null && !c.has_default && !names.contains(&c.column.name))
        {
            return Err(MISSING_COLUMN.with(format!("column \"{}\"", c.column.name)));
        }
        Ok(out)
    }

    /// One COPY of the staged object's data, in one transaction;
    /// returns the rows loaded.
    async fn copy(&self, staged: Bytes) -> Result<u64, DeliveryError> {
        let s = &self.settings;
        let opts = s.copy.clone()?;
        let server = &s.endpoint.server;
        let (user, password) = match &s.secret_arn {
            Some(arn) => {
                let mut v =
                    crate::secrets::read(s.secrets.as_ref(), arn, &["username", "password"], &[])?;
                let password = v.pop();
                (v.pop().unwrap_or_default(), password)
            }
            None => (s.username.clone(), s.password.clone()),
        };
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&server.host)
            .port(server.port)
            .dbname(&s.endpoint.database)
            .user(&user)
            .application_name("riffle-firehose")
            .connect_timeout(CONNECT_TIMEOUT);
        if let Some(p) = &password {
            cfg.password(p);
        }
        let (mut client, conn) = cfg
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(self.pg())?;
        let driver = tokio::spawn(conn);
        let result = async {
            let tx = client.transaction().await.map_err(self.pg())?;
            let (table, columns) = self.table_columns(&tx).await?;
            let targets = self.targets(columns, opts.explicit_ids)?;
            let cols = targets.clone();
            let rows = tokio::task::spawn_blocking(move || copy::translate(&opts, &cols, &staged))
                .await
                .map_err(|e| {
                    DATA_LOAD_FAILED.with(format!("reading the staged object failed: {e}"))
                })?
                .map_err(|e| DATA_LOAD_FAILED.with(e))?;
            let list: Vec<String> = targets.iter().map(|c| quote_ident(&c.name)).collect();
            let statement = format!("COPY {table} ({}) FROM STDIN", list.join(", "));
            let sink = tx.copy_in(&statement).await.map_err(self.pg())?;
            futures_util::pin_mut!(sink);
            let body = Bytes::from(rows.body);
            let mut at = 0;
            while at < body.len() {
                let end = (at + COPY_CHUNK).min(body.len());
                sink.send(body.slice(at..end)).await.map_err(self.pg())?;
                at = end;
            }
            let loaded = sink.finish().await.map_err(self.pg())?;
            tx.commit().await.map_err(self.pg())?;
            Ok(loaded)
        }
        .await;
        drop(client);
        let _ = driver.await;
        result
    }
}

impl Destination for RedshiftDestination {
    fn name(&self) -> &'static str {
        "redshift"
    }

    fn hints(&self) -> Hints {
        self.settings.staging.hints
    }

    fn front(&self) -> Option<&crate::process::Front> {
        Some(&self.front)
    }

    fn store_errors<'a>(
        &'a self,
        e: &'a crate::process::ErrorObject,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(crate::backup::put(
            Some(&self.sink),
            &self.settings.staging,
            &self.stream,
            self.version,
            e.prefix.clone(),
            &e.body,
            e.first_arrival_ms,
        ))
    }

    fn backs_up_source(&self) -> bool {
        self.settings.backup.is_some()
    }

    /// S3BackupMode Enabled: the source records, before processing, in
    /// the backup bucket.
    fn backup_source<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            match &self.settings.backup {
                Some(b) => {
                    let prefix = b.layout.prefix(batch.first_arrival_ms);
                    crate::backup::put(
                        Some(&self.sink),
                        b,
                        &self.stream,
                        self.version,
                        prefix,
                        &crate::backup::concat(&batch.records),
                        batch.first_arrival_ms,
                    )
                    .await
                }
                None => Ok(()),
            }
        })
    }

    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let id = (
                batch.first_arrival_ms,
                batch.last_arrival_ms,
                batch.records.len(),
                batch.bytes,
            );
            let held = self
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .filter(|p| p.batch == id);
            let mut p = held.unwrap_or(Pending {
                batch: id,
                data: None,
                manifest: None,
                first_copy_ms: None,
            });
            let r = self.attempt(&mut p, batch).await;
            if r.is_err() {
                *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(p);
            }
            r
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jdbc_urls() {
        assert_eq!(
            Endpoint::parse("jdbc:redshift://c.abc.us-east-1.redshift.amazonaws.com:5439/dev")
                .unwrap(),
            Endpoint {
                server: HostPort {
                    host: "c.abc.us-east-1.redshift.amazonaws.com".into(),
                    port: 5439
                },
                database: "dev".into()
            }
        );
        let e = Endpoint::parse("jdbc:postgresql://127.0.0.1:6543/db_1?ssl=true").unwrap();
        assert_eq!(
            (e.server.to_string(), e.database.as_str()),
            ("127.0.0.1:6543".into(), "db_1")
        );
        let e = Endpoint::parse("jdbc:postgresql://[::1]:5432/x").unwrap();
        assert_eq!(e.server.host, "::1");
        assert_eq!(e.server.to_string(), "[::1]:5432");
        assert_eq!(
            Endpoint::parse("jdbc:redshift://h/db").unwrap().server.port,
            5439
        );
        for bad in [
            "http://h:1/db",
            "jdbc:redshift://h:1",
            "jdbc:redshift://h:x/db",
            "jdbc:redshift://:1/db",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            "localhost:5432".parse::<HostPort>().unwrap(),
            HostPort {
                host: "localhost".into(),
                port: 5432
            }
        );
        assert!("localhost".parse::<HostPort>().is_err());
        assert!("h:99999".parse::<HostPort>().is_err());
    }

    #[test]
    fn the_model_accepts_any_host() {
        let p = &crate::model::P_CLUSTER_JDBCURL;
        for ok in [
            "jdbc:redshift://c.abc.us-east-1.redshift.amazonaws.com:5439/dev",
            "jdbc:redshift://wg.123.us-east-1.redshift-serverless.amazonaws.com:5439/dev",
            "jdbc:postgresql://localhost:5432/postgres",
            "jdbc:redshift://127.0.0.1:6543/db_1",
            "jdbc:postgresql://[::1]:5432/x",
            "jdbc:redshift://pg-1.internal:5439/d$b",
        ] {
            assert!(p.is_match(ok), "{ok}");
            assert!(Endpoint::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "jdbc:mysql://localhost:3306/db",
            "jdbc:redshift://localhost/db",
            "jdbc:redshift://-bad:5439/db",
            "jdbc:redshift://host:5439/",
            "jdbc:redshift://a b:5439/db",
        ] {
            assert!(!p.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn column_lists_and_manifests() {
        assert_eq!(
            column_names(" id, Name ,\"MiXed\"\"q\" ,"),
            vec!["id", "name", "MiXed\"q"]
        );
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(
            manifest("b", "p/2024/01/02/03/s-1-x"),
            r#"{"entries":[{"url":"s3://b/p/2024/01/02/03/s-1-x","mandatory":true}]}"#
        );
    }

    /// Every file under `dir`, as paths relative to it.
    fn files(dir: &std::path::Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    todo.push(p);
                } else {
                    out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        out.sort();
        out
    }

    #[tokio::test]
    async fn retries_reuse_the_staged_object_then_give_up_into_errors_manifests() {
        // A port nothing listens on: every COPY fails to connect.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("stage")).unwrap();
        let doc = serde_json::json!({
            "ClusterJDBCURL": format!("jdbc:redshift://127.0.0.1:{port}/dev"),
            "CopyCommand": {"DataTableName": "t", "CopyOptions": "JSON 'auto'"},
            "Username": "u",
            "RetryOptions": {"DurationInSeconds": 60},
            "S3DestinationDescription": {"BucketARN": "arn:aws:s3:::stage", "Prefix": "p/"},
        });
        let clock = riffle_core::clock::ManualClock::new(1_700_000_000_000);
        let stats = Arc::new(Stats::default());
        let settings = Settings::from_description(&doc, Some("pw".into()), None).unwrap();
        let front = crate::process::Front::identity(settings.staging.layout.clone(), clock.clone());
        let d = RedshiftDestination::new(
            settings,
            "s".into(),
            1,
            crate::sink::DirSink::new(dir.path()),
            clock.clone(),
            stats.clone(),
            front,
        );
        let mut batch = Batch::default();
        batch.push(Bytes::from_static(b"{\"a\":1}"), 1_700_000_000_000);
        for _ in 0..2 {
            let e = d.deliver(&batch).await.unwrap_err();
            assert_eq!(e.code, "Redshift.ConnectionFailed");
            clock.advance(20_000);
        }
        let staged = files(&dir.path().join("stage"));
        assert_eq!(staged.len(), 2, "{staged:?}");
        assert!(staged[0].starts_with("p/2023/11/14/22/s-1-2023-11-14-22-13-20-"));
        assert!(staged[1].starts_with("p/manifests/2023/11/14/22/s-1-"));
        // 60 s after the first COPY attempt the batch is given up: its
        // manifest goes to errors/manifests, and `Ok` moves delivery on.
        clock.advance(20_000);
        d.deliver(&batch).await.unwrap();
        let all = files(&dir.path().join("stage"));
        assert_eq!(all.len(), 3, "{all:?}");
        let error_manifest = all
            .iter()
            .find(|k| k.starts_with("p/errors/manifests/2023/11/14/22/s-1-"))
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("stage").join(error_manifest)).unwrap(),
            manifest("stage", &staged[0])
        );
        let snap = stats.snapshot(0);
        assert_eq!(
            (snap.s3_success, snap.s3_records, snap.redshift_success),
            (1, 1, 0)
        );
        // The next batch starts afresh: staged again, and with 60 s to go.
        let mut next = Batch::default();
        next.push(Bytes::from_static(b"{}"), 1_700_000_100_000);
        assert!(d.deliver(&next).await.is_err());
        assert_eq!(files(&dir.path().join("stage")).len(), 5);
    }

    #[test]
    fn settings_from_a_description() {
        let doc = serde_json::json!({
            "ClusterJDBCURL": "jdbc:redshift://c.x.us-east-1.redshift.amazonaws.com:5439/dev",
            "CopyCommand": {"DataTableName": "public.t", "DataTableColumns": "a,b", "CopyOptions": "JSON 'auto' GZIP"},
            "Username": "u",
            "RetryOptions": {"DurationInSeconds": 0},
            "S3DestinationDescription": {"BucketARN": "arn:aws:s3:::stage", "Prefix": "p/", "CompressionFormat": "GZIP"},
            "S3BackupMode": "Enabled",
            "S3BackupDescription": {"BucketARN": "arn:aws:s3:::bk"},
        });
        let over = HostPort {
            host: "127.0.0.1".into(),
            port: 5432,
        };
        let s = Settings::from_description(&doc, Some("pw".into()), Some(&over)).unwrap();
        assert_eq!(s.endpoint.server, over);
        assert_eq!(s.endpoint.database, "dev");
        assert_eq!(
            (s.table.as_str(), s.columns.as_deref(), s.retry_ms),
            ("public.t", Some("a,b"), 0)
        );
        assert!(s.copy.as_ref().unwrap().gzip);
        assert_eq!(s.staging.bucket, "stage");
        assert_eq!(s.staging.compression, crate::s3::Compression::Gzip);
        assert_eq!(s.backup.unwrap().bucket, "bk");
        // Bad options fail each COPY as Redshift would; options Riffle
        // does not carry out keep the records buffered.
        let mut d = doc.clone();
        d["CopyOptions"] = Json::Null;
        d["CopyCommand"]["CopyOptions"] = "CSV ESCAPE".into();
        let e = Settings::from_description(&d, None, None)
            .unwrap()
            .copy
            .unwrap_err();
        assert_eq!(e.code, "Redshift.IncorrectCopyOptions");
        d["CopyCommand"]["CopyOptions"] = "FIXEDWIDTH 'a:1'".into();
        assert_eq!(
            Settings::from_description(&d, None, None).unwrap_err(),
            "The COPY option FIXEDWIDTH is not supported by Riffle yet; records stay buffered."
        );
        d["CopyCommand"]["CopyOptions"] = "".into();
        d.as_object_mut().unwrap().remove("RetryOptions");
        assert_eq!(
            Settings::from_description(&d, None, None).unwrap().retry_ms,
            3_600_000
        );
    }
}
