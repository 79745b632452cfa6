//! GetTags, TagResource, UntagResource on databases
//! (`arn:aws:glue:<region>:<account>:database/<name>`) and tables
//! (`...:table/<database>/<name>`). Tags live in the resource's row.

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};

use super::{install, persist, str_of};
use crate::error::{GlueError, Result};
use crate::meta::Change;
use crate::Service;

/// A resource an ARN names.
enum Resource {
    Database(crate::DatabaseKey),
    Table(crate::TableKey),
}

fn resource(svc: &Service, arn: &str) -> Result<Resource> {
    let invalid = || GlueError::InvalidInput(format!("Invalid ARN: {arn}"));
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, _, "glue", region, account, path] = parts[..] else {
        return Err(invalid());
    };
    let catalog = if account.is_empty() {
        svc.account().to_owned()
    } else {
        account.to_owned()
    };
    let cat = svc.read();
    match path.split('/').collect::<Vec<_>>()[..] {
        ["database", db] => {
            let key = (region.to_owned(), catalog, db.to_lowercase());
            if !cat.databases.contains_key(&key) {
                return Err(GlueError::database_not_found(&key.2));
            }
            Ok(Resource::Database(key))
        }
        ["table", db, t] => {
            let key = (
                region.to_owned(),
                catalog,
                db.to_lowercase(),
                t.to_lowercase(),
            );
            if !cat.tables.contains_key(&key) {
                return Err(GlueError::table_not_found(&key.3));
            }
            Ok(Resource::Table(key))
        }
        _ => Err(invalid()),
    }
}

fn tags_of(svc: &Service, r: &Resource) -> BTreeMap<String, String> {
    let cat = svc.read();
    match r {
        Resource::Database(k) => cat.databases.get(k).map(|d| d.tags.clone()),
        Resource::Table(k) => cat.tables.get(k).map(|t| t.tags.clone()),
    }
    .unwrap_or_default()
}

pub fn get(svc: &Service, doc: Json) -> Result<Json> {
    let r = resource(svc, str_of(&doc, "ResourceArn").unwrap_or(""))?;
    Ok(json!({ "Tags": tags_of(svc, &r) }))
}

/// Applies `edit` to the resource's tags and persists the row.
async fn change(
    svc: &Service,
    doc: &Json,
    edit: impl FnOnce(&mut BTreeMap<String, String>),
) -> Result<Json> {
    let _guard = svc.lock_changes().await;
    let r = resource(svc, str_of(doc, "ResourceArn").unwrap_or(""))?;
    let change = {
        let cat = svc.read();
        match &r {
            Resource::Database(k) => {
                let mut row = cat.databases[k].clone();
                edit(&mut row.tags);
                Change {
                    databases: vec![(k.clone(), Some(row))],
                    ..Change::default()
                }
            }
            Resource::Table(k) => {
                let mut row = cat.tables[k].clone();
                edit(&mut row.tags);
                Change {
                    tables: vec![(k.clone(), Some(row))],
                    ..Change::default()
                }
            }
        }
    };
    let change = persist(svc, change).await?;
    install(svc, change);
    Ok(json!({}))
}

pub async fn tag(svc: &Service, doc: Json) -> Result<Json> {
    let add: Vec<(String, String)> = doc
        .get("TagsToAdd")
        .and_then(Json::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    change(svc, &doc, |tags| tags.extend(add)).await
}

pub async fn untag(svc: &Service, doc: Json) -> Result<Json> {
    let remove: Vec<String> = doc
        .get("TagsToRemove")
        .and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|k| Some(k.as_str()?.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    change(svc, &doc, |tags| {
        for k in &remove {
            tags.remove(k);
        }
    })
    .await
}
