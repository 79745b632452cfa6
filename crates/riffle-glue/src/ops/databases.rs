//! CreateDatabase, GetDatabase, GetDatabases, DeleteDatabase.

use serde_json::{json, Value as Json};

use super::{catalog_id, install, page, persist, secs, str_of};
use crate::error::{GlueError, Result};
use crate::meta::Change;
use crate::{Ctx, DatabaseRow, Service};

/// A database as GetDatabase describes it.
pub(crate) fn describe(row: &DatabaseRow) -> Json {
    let mut doc = row.input.clone();
    let m = doc.as_object_mut().expect("the input is an object");
    m.insert("Name".into(), json!(row.name));
    m.insert("CreateTime".into(), secs(row.create_time_ms));
    m.insert("CatalogId".into(), json!(row.catalog_id));
    m.entry("CreateTableDefaultPermissions").or_insert_with(|| {
        json!([{
            "Principal": {"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"},
            "Permissions": ["ALL"],
        }])
    });
    doc
}

pub async fn create(svc: &Service, ctx: &Ctx, doc: Json) -> Result<Json> {
    let catalog = catalog_id(svc, &doc);
    let mut input = doc.get("DatabaseInput").cloned().unwrap_or(json!({}));
    let name = str_of(&input, "Name").unwrap_or("").to_lowercase();
    input["Name"] = json!(name);
    let key = (ctx.region.clone(), catalog.clone(), name.clone());
    let _guard = svc.lock_changes().await;
    if svc.read().databases.contains_key(&key) {
        return Err(GlueError::AlreadyExists("Database already exists.".into()));
    }
    let row = DatabaseRow {
        region: ctx.region.clone(),
        catalog_id: catalog,
        name,
        input,
        create_time_ms: svc.now_ms(),
        tags: doc
            .get("Tags")
            .and_then(Json::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default(),
    };
    let change = persist(
        svc,
        Change {
            databases: vec![(key, Some(row))],
            ..Change::default()
        },
    )
    .await?;
    install(svc, change);
    Ok(json!({}))
}

pub fn get(svc: &Service, ctx: &Ctx, doc: Json) -> Result<Json> {
    let name = str_of(&doc, "Name").unwrap_or("").to_lowercase();
    let key = (ctx.region.clone(), catalog_id(svc, &doc), name.clone());
    let cat = svc.read();
    let row = cat
        .databases
        .get(&key)
        .ok_or_else(|| GlueError::database_not_found(&name))?;
    Ok(json!({ "Database": describe(row) }))
}

pub fn list(svc: &Service, ctx: &Ctx, doc: Json) -> Result<Json> {
    let catalog = catalog_id(svc, &doc);
    let cat = svc.read();
    let all: Vec<(String, Json)> = cat
        .databases
        .iter()
        .filter(|((r, c, _), _)| *r == ctx.region && *c == catalog)
        .map(|((_, _, n), row)| (n.clone(), describe(row)))
        .collect();
    let (list, next) = page(
        all,
        str_of(&doc, "NextToken"),
        doc.get("MaxResults").and_then(Json::as_i64),
    );
    let mut out = json!({ "DatabaseList": list });
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

/// Deletes a database and every table in it.
pub async fn delete(svc: &Service, ctx: &Ctx, doc: Json) -> Result<Json> {
    let name = str_of(&doc, "Name").unwrap_or("").to_lowercase();
    let catalog = catalog_id(svc, &doc);
    let key = (ctx.region.clone(), catalog.clone(), name.clone());
    let _guard = svc.lock_changes().await;
    let change = {
        let cat = svc.read();
        if !cat.databases.contains_key(&key) {
            return Err(GlueError::database_not_found(&name));
        }
        Change {
            databases: vec![(key, None)],
            tables: cat
                .tables
                .keys()
                .filter(|(r, c, d, _)| *r == ctx.region && *c == catalog && *d == name)
                .map(|k| (k.clone(), None))
                .collect(),
        }
    };
    let change = persist(svc, change).await?;
    install(svc, change);
    Ok(json!({}))
}
