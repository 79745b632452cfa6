//! CreateTable, GetTable, GetTables, GetTableVersion, GetTableVersions,
//! UpdateTable, DeleteTable. UpdateTable archives the table's current
//! version and adds a new one: VersionIds count from "0".

use serde_json::{json, Value as Json};

use super::{catalog_id, install, page, persist, secs, str_of};
use crate::error::{GlueError, Result};
use crate::meta::Change;
use crate::{Ctx, Service, TableKey, TableRow, TableVersion};

/// A table version as GetTable describes it.
fn describe(svc: &Service, row: &TableRow, v: &TableVersion) -> Json {
    let mut doc = v.input.clone();
    let m = doc.as_object_mut().expect("the input is an object");
    m.insert("Name".into(), json!(row.name));
    m.insert("DatabaseName".into(), json!(row.database));
    m.insert("CreateTime".into(), secs(row.create_time_ms));
    m.insert("UpdateTime".into(), secs(v.update_time_ms));
    m.insert("CatalogId".into(), json!(row.catalog_id));
    m.insert("VersionId".into(), json!(v.id.to_string()));
    m.insert("IsRegisteredWithLakeFormation".into(), json!(false));
    m.insert(
        "CreatedBy".into(),
        json!(format!("arn:aws:iam::{}:root", svc.account())),
    );
    doc
}

/// A version by its id.
pub(crate) fn find_version<'a>(row: &'a TableRow, id: &str) -> Result<&'a TableVersion> {
    let n: u64 = id
        .parse()
        .map_err(|_| GlueError::InvalidInput(format!("Invalid version id: {id}")))?;
    row.versions.iter().find(|v| v.id == n).ok_or_else(|| {
        GlueError::EntityNotFound(format!("Version {id} of table {} not found.", row.name))
    })
}

/// The database of a request, which must exist, and the table's key.
fn locate(svc: &Service, ctx: &Ctx, doc: &Json, name_key: &str) -> Result<(TableKey, String)> {
    let catalog = catalog_id(svc, doc);
    let db = str_of(doc, "DatabaseName").unwrap_or("").to_lowercase();
    let name = str_of(doc, name_key)
        .or_else(|| doc.pointer("/TableInput/Name").and_then(Json::as_str))
        .unwrap_or("")
        .to_lowercase();
    if !svc
        .read()
        .databases
        .contains_key(&(ctx.region.clone(), catalog.clone(), db.clone()))
    {
        return Err(GlueError::database_not_found(&db));
    }
    Ok(((ctx.region.clone(), catalog, db, name.clone()), name))
}

/// The TableInput of a create or update, names lower-cased.
fn table_input(doc: &Json) -> Result<Json> {
    let mut input = doc
        .get("TableInput")
        .cloned()
        .ok_or_else(|| GlueError::InvalidInput("TableInput is required.".into()))?;
    let name = str_of(&input, "Name").unwrap_or("").to_lowercase();
    input["Name"] = json!(name);
    if let Some(cols) = input
        .pointer_mut("/StorageDescriptor/Columns")
        .and_then(Json::as_array_mut)
    {
        for c in cols {
            if let Some(n) = c.get("Name").and_then(Json::as_str) {
                c["Name"] = json!(n.to_lowercase());
            }
        }
    }
    Ok(input)
}

pub async fn create(svc: &Service, ctx: &Ctx, doc: Json) -> Result<Json> {
    let input = table_input(&doc)?;
    let _guard = svc.lock_changes().await;
    let (key, name) = locate(svc, ctx, &doc, "Name")?;
    if svc.read().tables.contains_key(&key) {
        return Err(GlueError::AlreadyExists("Table already exists.".into()));
    }
    let now = svc.now_ms();
    let row = TableRow {
        region: key.0.clone(),
        catalog_id: key.1.clone(),
        database: key.2.clone(),
        name,
        create_time_ms: now,
        versions: vec![TableVersion {
            id: 0,
            input,
            update_time_ms: now,
        }],
        tags: Default::default(),
    };
    let change = persist(
        svc,
        Change {
            tables: vec![(key, Some(row))],
            ..Change::default()
        },
    )
    .await?;
    install(svc, change);
    Ok(json!({}))
}

fn existing(svc: &Service, ctx: &Ctx, doc: &Json, name_key: &str) -> Result<TableRow> {
    let (key, name) = locate(svc, ctx, doc, name_key)?;
    svc.read()
        .tables
        .get(&key)
        .cloned()
        .ok_or_else(|| GlueError::table_not_found(&name))
}

pub fn get(svc: &Service, ctx: &Ctx, doc: Json) -> Result<Json> {
    let row = existing(svc, ctx, &doc, "Name")?;
    Ok(json!({ "Table": describe(svc, &row, row.latest()) }))
}

/// Glue's Expression: a regular expression over table names, where a bare
/// `*` also stands for any run of characters.
fn name_filter(expr: Option<&str>) -> Option<regex_lite::Regex> {
    let expr = expr.filter(|e| !e.is_empty())?;
    let mut re = String::from("^(?:");
    let mut prev = None;
    for c in expr.chars() {
        if c == '*' && prev != Some('.') {
            re.push_str(".*");
        } else {
            re.push(c);
        }
        prev = Some(c);
    }
    re.push_str(")$");
    regex_lite::Regex::new(&re)
        .or_else(|_| regex_lite::Regex::new(&format!("^{}$", regex_lite::escape(expr))))
        .ok()
}

pub fn list(svc: &Service, ctx: &Ctx, doc: Json) -> Result<Json> {
    let (key, _) = locate(svc, ctx, &doc, "-")?;
    let filter = name_filter(str_of(&doc, "Expression"));
    let all: Vec<(String, Json)> = svc
        .read()
        .tables
        .iter()
        .filter(|((r, c, d, n), _)| {
            *r == key.0
                && *c == key.1
                && *d == key.2
                && filter.as_ref().is_none_or(|f| f.is_match(n))
        })
        .map(|((_, _, _, n), row)| (n.clone(), describe(svc, row, row.latest())))
        .collect();
    let (list, next) = page(
        all,
        str_of(&doc, "NextToken"),
        doc.get("MaxResults").and_then(Json::as_i64),
    );
    let mut out = json!({ "TableList": list });
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

fn version_doc(svc: &Service, row: &TableRow, v: &TableVersion) -> Json {
    json!({ "Table": describe(svc, row, v), "VersionId": v.id.to_string() })
}

pub fn get_version(svc: &Service, ctx: &Ctx, doc: Json) -> Result<Json> {
    let row = existing(svc, ctx, &doc, "TableName")?;
    let v = match str_of(&doc, "VersionId") {
        Some(id) => find_version(&row, id)?,
        None => row.latest(),
    };
    Ok(json!({ "TableVersion": version_doc(svc, &row, v) }))
}

pub fn list_versions(svc: &Service, ctx: &Ctx, doc: Json) -> Result<Json> {
    let row = existing(svc, ctx, &doc, "TableName")?;
    // Zero-padded ids sort as numbers for the page token.
    let all: Vec<(String, Json)> = row
        .versions
        .iter()
        .rev()
        .map(|v| {
            (
                format!("{:020}", u64::MAX - v.id),
                version_doc(svc, &row, v),
            )
        })
        .collect();
    let (list, next) = page(
        all,
        str_of(&doc, "NextToken"),
        doc.get("MaxResults").and_then(Json::as_i64),
    );
    let mut out = json!({ "TableVersions": list });
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

pub async fn update(svc: &Service, ctx: &Ctx, doc: Json) -> Result<Json> {
    let input = table_input(&doc)?;
    let _guard = svc.lock_changes().await;
    let mut row = existing(svc, ctx, &doc, "Name")?;
    if let Some(expected) = str_of(&doc, "VersionId") {
        if expected != row.latest().id.to_string() {
            return Err(GlueError::ConcurrentModification(
                "Update table failed due to concurrent modifications.".into(),
            ));
        }
    }
    let now = svc.now_ms();
    let skip_archive = doc
        .get("SkipArchive")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    let id = row.latest().id + 1;
    if skip_archive {
        row.versions.pop();
    }
    row.versions.push(TableVersion {
        id,
        input,
        update_time_ms: now,
    });
    let key = (
        row.region.clone(),
        row.catalog_id.clone(),
        row.database.clone(),
        row.name.clone(),
    );
    let change = persist(
        svc,
        Change {
            tables: vec![(key, Some(row))],
            ..Change::default()
        },
    )
    .await?;
    install(svc, change);
    Ok(json!({}))
}

pub async fn delete(svc: &Service, ctx: &Ctx, doc: Json) -> Result<Json> {
    let _guard = svc.lock_changes().await;
    let row = existing(svc, ctx, &doc, "Name")?;
    let key = (row.region, row.catalog_id, row.database, row.name);
    let change = persist(
        svc,
        Change {
            tables: vec![(key, None)],
            ..Change::default()
        },
    )
    .await?;
    install(svc, change);
    Ok(json!({}))
}

/// GetPartitionIndexes: Riffle tables have no partition indexes.
pub fn partition_indexes(svc: &Service, ctx: &Ctx, doc: Json) -> Result<Json> {
    existing(svc, ctx, &doc, "TableName")?;
    Ok(json!({ "PartitionIndexDescriptorList": [] }))
}
