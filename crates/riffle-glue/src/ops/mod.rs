//! The operations, one file per resource; [`dispatch`] is the one
//! registration list. Handlers read the validated body as a JSON document
//! (what they store) and answer with a document shaped by the response's
//! model shape.

use riffle_wire::shape::{self, Shape};
use riffle_wire::{Map, Value};
use serde_json::Value as Json;

use crate::error::{GlueError, Result};
use crate::meta::Change;
use crate::{model, Ctx, Service};

pub mod databases;
pub mod tables;
pub mod tags;

/// Runs operation `op` on a validated body.
pub async fn dispatch(svc: &Service, ctx: &Ctx, op: &str, body: Map) -> Result<Value> {
    let doc = to_json(&Value::Map(body));
    let (shape, out): (&Shape, Json) = match op {
        "CreateDatabase" => (
            &model::CREATE_DATABASE_RESPONSE,
            databases::create(svc, ctx, doc).await?,
        ),
        "GetDatabase" => (
            &model::GET_DATABASE_RESPONSE,
            databases::get(svc, ctx, doc)?,
        ),
        "GetDatabases" => (
            &model::GET_DATABASES_RESPONSE,
            databases::list(svc, ctx, doc)?,
        ),
        "DeleteDatabase" => (
            &model::DELETE_DATABASE_RESPONSE,
            databases::delete(svc, ctx, doc).await?,
        ),
        "CreateTable" => (
            &model::CREATE_TABLE_RESPONSE,
            tables::create(svc, ctx, doc).await?,
        ),
        "GetTable" => (&model::GET_TABLE_RESPONSE, tables::get(svc, ctx, doc)?),
        "GetTables" => (&model::GET_TABLES_RESPONSE, tables::list(svc, ctx, doc)?),
        "GetTableVersion" => (
            &model::GET_TABLE_VERSION_RESPONSE,
            tables::get_version(svc, ctx, doc)?,
        ),
        "GetTableVersions" => (
            &model::GET_TABLE_VERSIONS_RESPONSE,
            tables::list_versions(svc, ctx, doc)?,
        ),
        "UpdateTable" => (
            &model::UPDATE_TABLE_RESPONSE,
            tables::update(svc, ctx, doc).await?,
        ),
        "DeleteTable" => (
            &model::DELETE_TABLE_RESPONSE,
            tables::delete(svc, ctx, doc).await?,
        ),
        "GetPartitionIndexes" => (
            &model::GET_PARTITION_INDEXES_RESPONSE,
            tables::partition_indexes(svc, ctx, doc)?,
        ),
        "GetTags" => (&model::GET_TAGS_RESPONSE, tags::get(svc, doc)?),
        "TagResource" => (&model::TAG_RESOURCE_RESPONSE, tags::tag(svc, doc).await?),
        "UntagResource" => (
            &model::UNTAG_RESOURCE_RESPONSE,
            tags::untag(svc, doc).await?,
        ),
        _ => return Err(GlueError::UnknownOperation),
    };
    // Shaping drops what the response does not model and turns epoch
    // seconds into timestamps.
    let shaped = shape::validate(shape, from_json(&out))
        .map_err(|e| GlueError::Internal(format!("{e:?}")))?;
    Ok(Value::Map(shaped))
}

pub(crate) fn to_json(v: &Value) -> Json {
    serde_json::from_slice(&riffle_wire::json::encode(v)).unwrap_or(Json::Null)
}

pub(crate) fn from_json(v: &Json) -> Value {
    serde_json::to_vec(v)
        .ok()
        .and_then(|b| riffle_wire::json::decode(&b).ok())
        .unwrap_or(Value::Null)
}

pub(crate) fn str_of<'a>(doc: &'a Json, key: &str) -> Option<&'a str> {
    doc.get(key).and_then(Json::as_str)
}

/// Epoch seconds with milliseconds, as JSON timestamps are written.
pub(crate) fn secs(ms: i64) -> Json {
    Json::from(ms as f64 / 1000.0)
}

/// The catalog a request names, or the account's.
pub(crate) fn catalog_id(svc: &Service, doc: &Json) -> String {
    str_of(doc, "CatalogId")
        .filter(|c| !c.is_empty())
        .unwrap_or(svc.account())
        .to_owned()
}

/// Persists a change off the async threads; the caller installs it after.
pub(crate) async fn persist(svc: &Service, change: Change) -> Result<Change> {
    let meta = svc.meta().clone();
    tokio::task::spawn_blocking(move || meta.apply(&change).map(|_| change))
        .await
        .map_err(|e| GlueError::Internal(e.to_string()))?
        .map_err(Into::into)
}

/// Installs a persisted change in memory.
pub(crate) fn install(svc: &Service, change: Change) {
    let mut cat = svc.write();
    for (k, row) in change.databases {
        match row {
            Some(r) => {
                cat.databases.insert(k, r);
            }
            None => {
                cat.databases.remove(&k);
            }
        }
    }
    for (k, row) in change.tables {
        match row {
            Some(r) => {
                cat.tables.insert(k, r);
            }
            None => {
                cat.tables.remove(&k);
            }
        }
    }
}

/// A page of `items` after the name in `token`: (page, next token).
pub(crate) fn page<T>(
    items: Vec<(String, T)>,
    token: Option<&str>,
    max: Option<i64>,
) -> (Vec<T>, Option<String>) {
    let max = max.filter(|m| *m > 0).unwrap_or(100) as usize;
    let mut rest: Vec<(String, T)> = items
        .into_iter()
        .filter(|(n, _)| token.is_none_or(|t| n.as_str() > t))
        .collect();
    let next = (rest.len() > max).then(|| rest[max - 1].0.clone());
    rest.truncate(max);
    (rest.into_iter().map(|(_, t)| t).collect(), next)
}
