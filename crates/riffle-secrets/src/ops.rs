//! The operations; [`dispatch`] is the one registration list. Handlers read
//! the validated body as a JSON document and answer with a document shaped
//! by the response's model shape.

use std::collections::BTreeMap;

use base64::Engine;
use rand::Rng;
use riffle_wire::json::{from_serde, to_serde};
use riffle_wire::shape::{self, Shape};
use riffle_wire::{Map, Value};
use serde_json::{json, Value as Json};

use crate::error::{Result, SecretsError};
use crate::{model, Ctx, SecretKey, SecretRow, Service, VersionRow, CURRENT, PREVIOUS};

/// AWS's quota of tags per secret.
const MAX_TAGS: usize = 50;
/// Versions kept per secret; the oldest deprecated ones go first.
const MAX_VERSIONS: usize = 100;
const DAY_MS: i64 = 86_400_000;
/// What ExcludePunctuation leaves out.
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// Runs operation `op` on a validated body.
pub async fn dispatch(svc: &Service, ctx: &Ctx, op: &str, body: Map) -> Result<Value> {
    let doc = to_serde(&Value::Map(body));
    let (shape, out): (&Shape, Json) = match op {
        "CreateSecret" => (&model::CREATE_SECRET_RESPONSE, create(svc, ctx, doc).await?),
        "DescribeSecret" => (&model::DESCRIBE_SECRET_RESPONSE, describe(svc, ctx, &doc)?),
        "GetSecretValue" => (
            &model::GET_SECRET_VALUE_RESPONSE,
            get_value(svc, ctx, &doc).await?,
        ),
        "BatchGetSecretValue" => (
            &model::BATCH_GET_SECRET_VALUE_RESPONSE,
            batch_get(svc, ctx, &doc).await?,
        ),
        "PutSecretValue" => (
            &model::PUT_SECRET_VALUE_RESPONSE,
            put_value(svc, ctx, doc).await?,
        ),
        "UpdateSecret" => (&model::UPDATE_SECRET_RESPONSE, update(svc, ctx, doc).await?),
        "DeleteSecret" => (
            &model::DELETE_SECRET_RESPONSE,
            delete(svc, ctx, &doc).await?,
        ),
        "RestoreSecret" => (
            &model::RESTORE_SECRET_RESPONSE,
            restore(svc, ctx, &doc).await?,
        ),
        "ListSecrets" => (&model::LIST_SECRETS_RESPONSE, list(svc, ctx, &doc)?),
        "ListSecretVersionIds" => (
            &model::LIST_SECRET_VERSION_IDS_RESPONSE,
            list_versions(svc, ctx, &doc)?,
        ),
        // Tagging answers an empty body: the model has no output.
        "TagResource" => {
            tag(svc, ctx, &doc).await?;
            return Ok(Value::Map(Map::new()));
        }
        "UntagResource" => {
            untag(svc, ctx, &doc).await?;
            return Ok(Value::Map(Map::new()));
        }
        "GetRandomPassword" => (&model::GET_RANDOM_PASSWORD_RESPONSE, random_password(&doc)?),
        "GetResourcePolicy" => (
            &model::GET_RESOURCE_POLICY_RESPONSE,
            policy(svc, ctx, &doc)?,
        ),
        _ => return Err(SecretsError::UnknownOperation),
    };
    // Shaping drops what the response does not model, turns epoch seconds
    // into timestamps and base64 into blobs; members without a value are
    // left out.
    let shaped = shape::validate(shape, from_serde(&without_nulls(out)))
        .map_err(|e| SecretsError::Internal(format!("{e:?}")))?;
    Ok(Value::Map(shaped))
}

/// `doc` without its null members, at any depth.
fn without_nulls(doc: Json) -> Json {
    match doc {
        Json::Object(m) => Json::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Json::Array(l) => Json::Array(l.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

fn str_of<'a>(doc: &'a Json, key: &str) -> Option<&'a str> {
    doc.get(key).and_then(Json::as_str)
}

/// Epoch seconds with milliseconds, as JSON timestamps are written.
fn secs(ms: i64) -> Json {
    Json::from(ms as f64 / 1000.0)
}

/// The secret `id` (a name, a full ARN, or an ARN without the six random
/// characters) names in `region`, unless its deletion has happened.
pub(crate) fn find<'a>(
    secrets: &'a BTreeMap<SecretKey, SecretRow>,
    region: &str,
    id: &str,
    now_ms: i64,
) -> Option<&'a SecretRow> {
    let row = if id.starts_with("arn:") {
        let region = id.split(':').nth(3).unwrap_or(region);
        secrets
            .range((region.to_owned(), String::new())..)
            .take_while(|((r, _), _)| r == region)
            .map(|(_, s)| s)
            .find(|s| s.arn == id || s.arn.len() > 7 && &s.arn[..s.arn.len() - 7] == id)
    } else {
        secrets.get(&(region.to_owned(), id.to_owned()))
    };
    row.filter(|r| !r.gone(now_ms))
}

/// The secret a request's SecretId names, as a copy to change or read.
fn secret(svc: &Service, ctx: &Ctx, doc: &Json) -> Result<SecretRow> {
    let id = str_of(doc, "SecretId").unwrap_or("");
    find(&svc.read(), &ctx.region, id, svc.now_ms())
        .cloned()
        .ok_or_else(SecretsError::not_found)
}

/// The same, refused while the secret is scheduled for deletion.
fn live_secret(svc: &Service, ctx: &Ctx, doc: &Json) -> Result<SecretRow> {
    let row = secret(svc, ctx, doc)?;
    if row.deleted_ms.is_some() {
        return Err(SecretsError::marked_deleted());
    }
    Ok(row)
}

/// Persists a secret's row off the async threads, then installs it.
async fn save(svc: &Service, row: Option<SecretRow>, key: SecretKey) -> Result<()> {
    let meta = svc.meta().clone();
    let (k, r) = (key.clone(), row.clone());
    tokio::task::spawn_blocking(move || meta.apply(&k, r.as_ref()))
        .await
        .map_err(|e| SecretsError::Internal(e.to_string()))??;
    let mut secrets = svc.write();
    match row {
        Some(r) => secrets.insert(key, r),
        None => secrets.remove(&key),
    };
    Ok(())
}

fn key_of(row: &SecretRow) -> SecretKey {
    (row.region.clone(), row.name.clone())
}

/// The value a request gives: (SecretString, SecretBinary as base64).
fn value_of(doc: &Json) -> Result<Option<(Option<String>, Option<String>)>> {
    let string = str_of(doc, "SecretString").map(str::to_owned);
    let binary = str_of(doc, "SecretBinary").map(str::to_owned);
    if string.is_some() && binary.is_some() {
        return Err(SecretsError::InvalidParameter(
            "You can't specify both a binary secret value and a string secret value in the same secret."
                .into(),
        ));
    }
    Ok((string.is_some() || binary.is_some()).then_some((string, binary)))
}

fn tags_of(doc: &Json) -> Vec<(String, String)> {
    doc.get("Tags")
        .and_then(Json::as_array)
        .map(|l| {
            l.iter()
                .map(|t| {
                    (
                        str_of(t, "Key").unwrap_or("").to_owned(),
                        str_of(t, "Value").unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Adds `tags` to `into`, a given key's value replacing the one it had.
fn merge_tags(into: &mut Vec<(String, String)>, tags: Vec<(String, String)>) -> Result<()> {
    for (k, v) in tags {
        if k.starts_with("aws:") {
            return Err(SecretsError::InvalidParameter(
                "Invalid tag key: the prefix aws: is reserved for AWS use.".into(),
            ));
        }
        match into.iter_mut().find(|(have, _)| *have == k) {
            Some(t) => t.1 = v,
            None => into.push((k, v)),
        }
    }
    if into.len() > MAX_TAGS {
        return Err(SecretsError::InvalidParameter(format!(
            "The secret can have at most {MAX_TAGS} tags."
        )));
    }
    Ok(())
}

/// Adds a version holding `value` labelled `stages` (AWSCURRENT unless
/// given): the labels leave the versions that had them, and the version
/// AWSCURRENT leaves becomes AWSPREVIOUS. With the id of an existing
/// version, the same value is a no-op and another one is refused.
fn add_version(
    row: &mut SecretRow,
    id: Option<&str>,
    value: (Option<String>, Option<String>),
    stages: Option<Vec<String>>,
    now_ms: i64,
) -> Result<VersionRow> {
    let id = id
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if let Some(v) = row.versions.iter().find(|v| v.id == id) {
        if (v.string.as_ref(), v.binary.as_ref()) == (value.0.as_ref(), value.1.as_ref()) {
            return Ok(v.clone());
        }
        return Err(SecretsError::ResourceExists(
            "You can't modify an existing version, you can only create a new version.".into(),
        ));
    }
    let stages = stages.unwrap_or_else(|| vec![CURRENT.to_owned()]);
    let moves_current = stages.iter().any(|s| s == CURRENT);
    for v in &mut row.versions {
        let was_current = v.stages.iter().any(|s| s == CURRENT);
        v.stages.retain(|s| !stages.contains(s));
        if moves_current {
            v.stages.retain(|s| s != PREVIOUS);
            if was_current {
                v.stages.push(PREVIOUS.to_owned());
            }
        }
    }
    let version = VersionRow {
        id,
        string: value.0,
        binary: value.1,
        stages,
        created_ms: now_ms,
        accessed_ms: None,
    };
    row.versions.push(version.clone());
    while row.versions.len() > MAX_VERSIONS {
        match row.versions.iter().position(|v| v.stages.is_empty()) {
            Some(i) => {
                row.versions.remove(i);
            }
            None => break,
        }
    }
    row.changed_ms = now_ms;
    Ok(version)
}

fn valid_name(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
}

async fn create(svc: &Service, ctx: &Ctx, doc: Json) -> Result<Json> {
    let name = str_of(&doc, "Name").unwrap_or("").to_owned();
    if !valid_name(&name) {
        return Err(SecretsError::InvalidParameter(
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!"
                .into(),
        ));
    }
    let value = value_of(&doc)?;
    if doc.get("AddReplicaRegions").is_some() || doc.get("CrossAccountPrimaryARN").is_some() {
        return Err(SecretsError::InvalidRequest(
            "Riffle keeps secrets in one Region: replication is not supported.".into(),
        ));
    }
    let _guard = svc.lock_changes().await;
    let now = svc.now_ms();
    let key = (ctx.region.clone(), name.clone());
    if let Some(have) = svc.read().get(&key).filter(|r| !r.gone(now)) {
        return Err(if have.deleted_ms.is_some() {
            SecretsError::InvalidRequest(
                "You can't create this secret because a secret with this name is already scheduled for deletion."
                    .into(),
            )
        } else {
            SecretsError::ResourceExists(format!(
                "The operation failed because the secret {name} already exists."
            ))
        });
    }
    let suffix: String = rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(6)
        .map(char::from)
        .collect();
    let mut row = SecretRow {
        region: ctx.region.clone(),
        arn: format!(
            "arn:aws:secretsmanager:{}:{}:secret:{name}-{suffix}",
            ctx.region,
            svc.account()
        ),
        name,
        description: str_of(&doc, "Description").map(str::to_owned),
        kms_key_id: str_of(&doc, "KmsKeyId").map(str::to_owned),
        created_ms: now,
        changed_ms: now,
        accessed_ms: None,
        deleted_ms: None,
        purge_ms: None,
        tags: Vec::new(),
        versions: Vec::new(),
    };
    merge_tags(&mut row.tags, tags_of(&doc))?;
    save_with_value(svc, row, &doc, value).await
}

/// Adds the request's value, if it gives one, as the AWSCURRENT version;
/// saves the row; answers ARN, Name and the new VersionId.
async fn save_with_value(
    svc: &Service,
    mut row: SecretRow,
    doc: &Json,
    value: Option<(Option<String>, Option<String>)>,
) -> Result<Json> {
    let version = match value {
        Some(v) => Some(add_version(
            &mut row,
            str_of(doc, "ClientRequestToken"),
            v,
            None,
            svc.now_ms(),
        )?),
        None => None,
    };
    let out = json!({
        "ARN": row.arn,
        "Name": row.name,
        "VersionId": version.map(|v| v.id),
    });
    let key = key_of(&row);
    save(svc, Some(row), key).await?;
    Ok(out)
}

fn describe(svc: &Service, ctx: &Ctx, doc: &Json) -> Result<Json> {
    Ok(entry(&secret(svc, ctx, doc)?, "VersionIdsToStages"))
}

/// A secret as DescribeSecret and ListSecrets show it; `stages_key` names
/// the version-to-labels map (the two operations name it differently).
fn entry(row: &SecretRow, stages_key: &str) -> Json {
    let mut out = json!({
        "ARN": row.arn,
        "Name": row.name,
        "RotationEnabled": false,
        "LastChangedDate": secs(row.changed_ms),
        "CreatedDate": secs(row.created_ms),
    });
    let m = out.as_object_mut().expect("an object");
    if let Some(d) = &row.description {
        m.insert("Description".into(), json!(d));
    }
    if let Some(k) = &row.kms_key_id {
        m.insert("KmsKeyId".into(), json!(k));
    }
    if let Some(a) = row.accessed_ms {
        m.insert("LastAccessedDate".into(), secs(a));
    }
    if let Some(d) = row.deleted_ms {
        m.insert("DeletedDate".into(), secs(d));
    }
    if !row.tags.is_empty() {
        m.insert(
            "Tags".into(),
            row.tags
                .iter()
                .map(|(k, v)| json!({"Key": k, "Value": v}))
                .collect(),
        );
    }
    let stages: serde_json::Map<String, Json> = row
        .versions
        .iter()
        .filter(|v| !v.stages.is_empty())
        .map(|v| (v.id.clone(), json!(v.stages)))
        .collect();
    if !stages.is_empty() {
        m.insert(stages_key.into(), Json::Object(stages));
    }
    out
}

/// The version GetSecretValue reads: by id, by label, or AWSCURRENT.
fn pick<'a>(row: &'a SecretRow, id: Option<&str>, stage: Option<&str>) -> Result<&'a VersionRow> {
    let found = match id {
        Some(id) => row
            .versions
            .iter()
            .find(|v| v.id == id && stage.is_none_or(|s| v.stages.iter().any(|l| l == s))),
        None => row.version_with_stage(stage.unwrap_or(CURRENT)),
    };
    found.ok_or_else(|| {
        SecretsError::ResourceNotFound(match id {
            Some(id) => {
                format!("Secrets Manager can't find the specified secret value for VersionId: {id}")
            }
            None => format!(
                "Secrets Manager can't find the specified secret value for staging label: {}",
                stage.unwrap_or(CURRENT)
            ),
        })
    })
}

/// A version's labels; none (a deprecated version) is left out, as the
/// model's list needs at least one.
fn labels(v: &VersionRow) -> Option<&[String]> {
    (!v.stages.is_empty()).then_some(v.stages.as_slice())
}

fn value_doc(row: &SecretRow, v: &VersionRow) -> Json {
    json!({
        "ARN": row.arn,
        "Name": row.name,
        "VersionId": v.id,
        "SecretString": v.string,
        "SecretBinary": v.binary,
        "VersionStages": labels(v),
        "CreatedDate": secs(v.created_ms),
    })
}

/// Marks `row`'s version `id` read today; the row is written only when the
/// day changes, so reads do not each commit.
async fn touch(svc: &Service, row: &SecretRow, id: &str) -> Result<()> {
    let today = svc.now_ms().div_euclid(DAY_MS) * DAY_MS;
    let stale = |r: &SecretRow| {
        r.accessed_ms != Some(today)
            || r.versions
                .iter()
                .any(|v| v.id == id && v.accessed_ms != Some(today))
    };
    if !stale(row) {
        return Ok(());
    }
    let _guard = svc.lock_changes().await;
    let key = key_of(row);
    let Some(mut now) = svc.read().get(&key).cloned() else {
        return Ok(());
    };
    if !stale(&now) {
        return Ok(());
    }
    now.accessed_ms = Some(today);
    for v in now.versions.iter_mut().filter(|v| v.id == id) {
        v.accessed_ms = Some(today);
    }
    save(svc, Some(now), key).await
}

async fn get_value(svc: &Service, ctx: &Ctx, doc: &Json) -> Result<Json> {
    let row = live_secret(svc, ctx, doc)?;
    let v = pick(&row, str_of(doc, "VersionId"), str_of(doc, "VersionStage"))?;
    touch(svc, &row, &v.id).await?;
    Ok(value_doc(&row, v))
}

async fn batch_get(svc: &Service, ctx: &Ctx, doc: &Json) -> Result<Json> {
    let ids = doc.get("SecretIdList").and_then(Json::as_array);
    let filters = doc.get("Filters").and_then(Json::as_array);
    let mut values = Vec::new();
    let mut errors = Vec::new();
    let mut next = None;
    match (ids, filters) {
        (Some(ids), None) => {
            if doc.get("MaxResults").is_some() {
                return Err(SecretsError::InvalidParameter(
                    "MaxResults can be used only with Filters.".into(),
                ));
            }
            for id in ids.iter().filter_map(Json::as_str) {
                let one = json!({ "SecretId": id });
                match live_secret(svc, ctx, &one).and_then(|r| {
                    let v = pick(&r, None, None)?.clone();
                    Ok((r, v))
                }) {
                    Ok((r, v)) => {
                        touch(svc, &r, &v.id).await?;
                        values.push(value_doc(&r, &v));
                    }
                    Err(e) => errors.push(json!({
                        "SecretId": id,
                        "ErrorCode": e.error_type(),
                        "Message": e.message(),
                    })),
                }
            }
        }
        (None, Some(filters)) => {
            let (rows, token) = listed(svc, ctx, filters, false, doc, 20)?;
            next = token;
            for r in rows {
                if let Ok(v) = pick(&r, None, None) {
                    touch(svc, &r, &v.id).await?;
                    values.push(value_doc(&r, v));
                }
            }
        }
        _ => {
            return Err(SecretsError::InvalidParameter(
                "Either 'SecretIdList' or 'Filters' must be provided, but not both.".into(),
            ))
        }
    }
    Ok(json!({ "SecretValues": values, "Errors": errors, "NextToken": next }))
}

async fn put_value(svc: &Service, ctx: &Ctx, doc: Json) -> Result<Json> {
    let value = value_of(&doc)?.ok_or_else(|| {
        SecretsError::InvalidRequest("You must provide either SecretString or SecretBinary.".into())
    })?;
    let stages = doc.get("VersionStages").and_then(Json::as_array).map(|l| {
        l.iter()
            .filter_map(Json::as_str)
            .map(str::to_owned)
            .collect()
    });
    let _guard = svc.lock_changes().await;
    let mut row = live_secret(svc, ctx, &doc)?;
    let v = add_version(
        &mut row,
        str_of(&doc, "ClientRequestToken"),
        value,
        stages,
        svc.now_ms(),
    )?;
    let out = json!({
        "ARN": row.arn,
        "Name": row.name,
        "VersionId": v.id,
        "VersionStages": v.stages,
    });
    save(svc, Some(row.clone()), key_of(&row)).await?;
    Ok(out)
}

async fn update(svc: &Service, ctx: &Ctx, doc: Json) -> Result<Json> {
    let value = value_of(&doc)?;
    let _guard = svc.lock_changes().await;
    let mut row = live_secret(svc, ctx, &doc)?;
    let now = svc.now_ms();
    if let Some(d) = str_of(&doc, "Description") {
        row.description = Some(d.to_owned());
        row.changed_ms = now;
    }
    if let Some(k) = str_of(&doc, "KmsKeyId") {
        row.kms_key_id = Some(k.to_owned());
        row.changed_ms = now;
    }
    save_with_value(svc, row, &doc, value).await
}

async fn delete(svc: &Service, ctx: &Ctx, doc: &Json) -> Result<Json> {
    let force = doc
        .get("ForceDeleteWithoutRecovery")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    let window = doc.get("RecoveryWindowInDays").and_then(Json::as_i64);
    if force && window.is_some() {
        return Err(SecretsError::InvalidParameter(
            "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."
                .into(),
        ));
    }
    let days = window.unwrap_or(30);
    if !(7..=30).contains(&days) {
        return Err(SecretsError::InvalidParameter(
            "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).".into(),
        ));
    }
    let _guard = svc.lock_changes().await;
    let mut row = secret(svc, ctx, doc)?;
    let now = svc.now_ms();
    if force {
        let out = json!({ "ARN": row.arn, "Name": row.name, "DeletionDate": secs(now) });
        save(svc, None, key_of(&row)).await?;
        return Ok(out);
    }
    if row.deleted_ms.is_some() {
        return Err(SecretsError::marked_deleted());
    }
    let purge = now + days * DAY_MS;
    row.deleted_ms = Some(now);
    row.purge_ms = Some(purge);
    let out = json!({ "ARN": row.arn, "Name": row.name, "DeletionDate": secs(purge) });
    save(svc, Some(row.clone()), key_of(&row)).await?;
    Ok(out)
}

async fn restore(svc: &Service, ctx: &Ctx, doc: &Json) -> Result<Json> {
    let _guard = svc.lock_changes().await;
    let mut row = secret(svc, ctx, doc)?;
    let out = json!({ "ARN": row.arn, "Name": row.name });
    if row.deleted_ms.is_some() {
        row.deleted_ms = None;
        row.purge_ms = None;
        save(svc, Some(row.clone()), key_of(&row)).await?;
    }
    Ok(out)
}

/// Whether `row` passes one ListSecrets filter: any of its values matches
/// (as a prefix), or, for a value starting with `!`, none does.
fn passes(row: &SecretRow, filter: &Json) -> bool {
    let key = str_of(filter, "Key").unwrap_or("");
    let values: Vec<&str> = filter
        .get("Values")
        .and_then(Json::as_array)
        .map(|l| l.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    let description = row.description.as_deref().unwrap_or("");
    let attribute_matches = |v: &str| -> bool {
        let lower = v.to_lowercase();
        match key {
            "name" => row.name.starts_with(v),
            "description" => description.to_lowercase().starts_with(&lower),
            "tag-key" => row.tags.iter().any(|(k, _)| k.starts_with(v)),
            "tag-value" => row.tags.iter().any(|(_, t)| t.starts_with(v)),
            "all" => v.split_whitespace().all(|w| {
                let w = w.to_lowercase();
                row.name.to_lowercase().starts_with(&w)
                    || description.to_lowercase().starts_with(&w)
                    || row.tags.iter().any(|(k, t)| {
                        k.to_lowercase().starts_with(&w) || t.to_lowercase().starts_with(&w)
                    })
            }),
            // No secret here is replicated or owned by another service.
            _ => false,
        }
    };
    let (negated, plain): (Vec<&str>, Vec<&str>) = values.iter().partition(|v| v.starts_with('!'));
    (plain.is_empty() || plain.iter().any(|v| attribute_matches(v)))
        && negated.iter().all(|v| !attribute_matches(&v[1..]))
}

/// The page of secrets ListSecrets (or BatchGetSecretValue with filters)
/// answers, with the next token.
fn listed(
    svc: &Service,
    ctx: &Ctx,
    filters: &[Json],
    include_deleted: bool,
    doc: &Json,
    default_max: usize,
) -> Result<(Vec<SecretRow>, Option<String>)> {
    let now = svc.now_ms();
    let mut rows: Vec<SecretRow> = svc
        .read()
        .range((ctx.region.clone(), String::new())..)
        .take_while(|((r, _), _)| *r == ctx.region)
        .map(|(_, s)| s)
        .filter(|s| !s.gone(now) && (include_deleted || s.deleted_ms.is_none()))
        .filter(|s| filters.iter().all(|f| passes(s, f)))
        .cloned()
        .collect();
    let by = str_of(doc, "SortBy").unwrap_or("created-date");
    rows.sort_by(|a, b| {
        let order = match by {
            "name" => a.name.cmp(&b.name),
            "last-accessed-date" => a.accessed_ms.cmp(&b.accessed_ms),
            "last-changed-date" => a.changed_ms.cmp(&b.changed_ms),
            _ => a.created_ms.cmp(&b.created_ms),
        };
        order.then_with(|| a.name.cmp(&b.name))
    });
    if str_of(doc, "SortOrder") == Some("desc") {
        rows.reverse();
    }
    let start = match str_of(doc, "NextToken") {
        Some(t) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|n| *n <= rows.len())
            .ok_or_else(|| {
                SecretsError::InvalidNextToken("The NextToken value is invalid.".into())
            })?,
        None => 0,
    };
    let max = doc
        .get("MaxResults")
        .and_then(Json::as_u64)
        .map_or(default_max, |m| m as usize);
    let end = (start + max).min(rows.len());
    let next = (end < rows.len())
        .then(|| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(end.to_string()));
    Ok((rows.drain(start..end).collect(), next))
}

fn list(svc: &Service, ctx: &Ctx, doc: &Json) -> Result<Json> {
    let filters = doc
        .get("Filters")
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    let include_deleted = doc
        .get("IncludePlannedDeletion")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    let (rows, next) = listed(svc, ctx, &filters, include_deleted, doc, 100)?;
    Ok(json!({
        "SecretList": rows.iter().map(|r| entry(r, "SecretVersionsToStages")).collect::<Vec<_>>(),
        "NextToken": next,
    }))
}

fn list_versions(svc: &Service, ctx: &Ctx, doc: &Json) -> Result<Json> {
    let row = secret(svc, ctx, doc)?;
    let deprecated = doc
        .get("IncludeDeprecated")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    let versions: Vec<Json> = row
        .versions
        .iter()
        .rev()
        .filter(|v| deprecated || !v.stages.is_empty())
        .map(|v| {
            json!({
                "VersionId": v.id,
                "VersionStages": labels(v),
                "LastAccessedDate": v.accessed_ms.map(secs),
                "CreatedDate": secs(v.created_ms),
                "KmsKeyIds": [row.kms_key_id.as_deref().unwrap_or("DefaultEncryptionKey")],
            })
        })
        .collect();
    let start = match str_of(doc, "NextToken") {
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= versions.len())
            .ok_or_else(|| {
                SecretsError::InvalidNextToken("The NextToken value is invalid.".into())
            })?,
        None => 0,
    };
    let max = doc
        .get("MaxResults")
        .and_then(Json::as_u64)
        .map_or(100, |m| m as usize);
    let end = (start + max).min(versions.len());
    Ok(json!({
        "Versions": versions[start..end],
        "NextToken": (end < versions.len()).then(|| end.to_string()),
        "ARN": row.arn,
        "Name": row.name,
    }))
}

async fn tag(svc: &Service, ctx: &Ctx, doc: &Json) -> Result<()> {
    let _guard = svc.lock_changes().await;
    let mut row = live_secret(svc, ctx, doc)?;
    merge_tags(&mut row.tags, tags_of(doc))?;
    save(svc, Some(row.clone()), key_of(&row)).await
}

async fn untag(svc: &Service, ctx: &Ctx, doc: &Json) -> Result<()> {
    let keys: Vec<&str> = doc
        .get("TagKeys")
        .and_then(Json::as_array)
        .map(|l| l.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    let _guard = svc.lock_changes().await;
    let mut row = live_secret(svc, ctx, doc)?;
    row.tags.retain(|(k, _)| !keys.contains(&k.as_str()));
    save(svc, Some(row.clone()), key_of(&row)).await
}

fn policy(svc: &Service, ctx: &Ctx, doc: &Json) -> Result<Json> {
    let row = secret(svc, ctx, doc)?;
    Ok(json!({ "ARN": row.arn, "Name": row.name }))
}

fn random_password(doc: &Json) -> Result<Json> {
    let flag = |k: &str| doc.get(k).and_then(Json::as_bool).unwrap_or(false);
    let length = doc
        .get("PasswordLength")
        .and_then(Json::as_i64)
        .unwrap_or(32) as usize;
    let exclude = str_of(doc, "ExcludeCharacters").unwrap_or("");
    let mut classes: Vec<Vec<char>> = Vec::new();
    let mut add = |on: bool, chars: &mut dyn Iterator<Item = char>| {
        if on {
            let set: Vec<char> = chars.filter(|c| !exclude.contains(*c)).collect();
            if !set.is_empty() {
                classes.push(set);
            }
        }
    };
    add(!flag("ExcludeLowercase"), &mut ('a'..='z'));
    add(!flag("ExcludeUppercase"), &mut ('A'..='Z'));
    add(!flag("ExcludeNumbers"), &mut ('0'..='9'));
    add(!flag("ExcludePunctuation"), &mut PUNCTUATION.chars());
    add(flag("IncludeSpace"), &mut std::iter::once(' '));
    if classes.is_empty() {
        return Err(SecretsError::InvalidParameter(
            "The password cannot be generated: every character is excluded.".into(),
        ));
    }
    let each = doc
        .get("RequireEachIncludedType")
        .and_then(Json::as_bool)
        .unwrap_or(true);
    if each && length < classes.len() {
        return Err(SecretsError::InvalidParameter(format!(
            "The password length must be at least {} to include each character type.",
            classes.len()
        )));
    }
    let all: Vec<char> = classes.iter().flatten().copied().collect();
    let mut rng = rand::thread_rng();
    let mut out: Vec<char> = (0..length)
        .map(|_| all[rng.gen_range(0..all.len())])
        .collect();
    if each {
        // One character of each class at distinct random places.
        let mut places: Vec<usize> = (0..length).collect();
        for class in &classes {
            let at = places.swap_remove(rng.gen_range(0..places.len()));
            out[at] = class[rng.gen_range(0..class.len())];
        }
    }
    Ok(json!({ "RandomPassword": out.into_iter().collect::<String>() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(versions: Vec<VersionRow>) -> SecretRow {
        SecretRow {
            region: "us-east-1".into(),
            name: "db/main".into(),
            arn: "arn:aws:secretsmanager:us-east-1:000000000000:secret:db/main-AbCdEf".into(),
            description: Some("Main Database".into()),
            kms_key_id: None,
            created_ms: 0,
            changed_ms: 0,
            accessed_ms: None,
            deleted_ms: None,
            purge_ms: None,
            tags: vec![("team".into(), "web".into())],
            versions,
        }
    }

    fn labels(r: &SecretRow) -> Vec<(String, Vec<String>)> {
        r.versions
            .iter()
            .map(|v| (v.id.clone(), v.stages.clone()))
            .collect()
    }

    #[test]
    fn labels_move_as_versions_are_added() {
        let mut r = row(vec![]);
        let s = |t: &str| (Some(t.to_owned()), None);
        add_version(&mut r, Some("v1"), s("a"), None, 1).unwrap();
        add_version(&mut r, Some("v2"), s("b"), None, 2).unwrap();
        add_version(&mut r, Some("v3"), s("c"), None, 3).unwrap();
        assert_eq!(
            labels(&r),
            vec![
                ("v1".into(), vec![]),
                ("v2".into(), vec![PREVIOUS.into()]),
                ("v3".into(), vec![CURRENT.into()]),
            ]
        );
        // A custom label moves alone; AWSCURRENT stays.
        add_version(&mut r, Some("v4"), s("d"), Some(vec!["next".into()]), 4).unwrap();
        assert_eq!(r.version_with_stage(CURRENT).unwrap().id, "v3");
        assert_eq!(r.version_with_stage("next").unwrap().id, "v4");
        // The same token and value again is a no-op; another value is refused.
        assert_eq!(
            add_version(&mut r, Some("v3"), s("c"), None, 5).unwrap().id,
            "v3"
        );
        assert_eq!(
            add_version(&mut r, Some("v3"), s("x"), None, 5)
                .unwrap_err()
                .error_type(),
            "ResourceExistsException"
        );
        assert_eq!(r.versions.len(), 4);
    }

    #[test]
    fn filters_match_prefixes_and_negations() {
        let r = row(vec![]);
        let f = |k: &str, v: &[&str]| json!({"Key": k, "Values": v});
        assert!(passes(&r, &f("name", &["db/"])));
        assert!(!passes(&r, &f("name", &["DB/"])));
        assert!(passes(&r, &f("description", &["main"])));
        assert!(passes(&r, &f("tag-key", &["te"])));
        assert!(passes(&r, &f("tag-value", &["nope", "we"])));
        assert!(!passes(&r, &f("name", &["!db"])));
        assert!(passes(&r, &f("name", &["!x"])));
        assert!(passes(&r, &f("all", &["main web"])));
        assert!(!passes(&r, &f("primary-region", &["us"])));
    }

    #[test]
    fn partial_and_full_arns_find_the_secret() {
        let mut m = BTreeMap::new();
        let r = row(vec![]);
        m.insert(key_of(&r), r.clone());
        for id in [
            "db/main",
            "arn:aws:secretsmanager:us-east-1:000000000000:secret:db/main-AbCdEf",
            "arn:aws:secretsmanager:us-east-1:000000000000:secret:db/main",
        ] {
            assert_eq!(
                find(&m, "us-east-1", id, 0).map(|r| r.name.as_str()),
                Some("db/main"),
                "{id}"
            );
        }
        assert!(find(&m, "eu-west-1", "db/main", 0).is_none());
        assert!(find(&m, "us-east-1", "db/mai", 0).is_none());
        let mut gone = r;
        gone.purge_ms = Some(10);
        m.insert(key_of(&gone), gone);
        assert!(find(&m, "us-east-1", "db/main", 9).is_some());
        assert!(find(&m, "us-east-1", "db/main", 10).is_none());
    }

    #[test]
    fn random_passwords_follow_the_options() {
        let p =
            |d: Json| random_password(&d).map(|v| v["RandomPassword"].as_str().unwrap().to_owned());
        let one = p(json!({})).unwrap();
        assert_eq!(one.len(), 32);
        assert!(one.chars().any(|c| c.is_ascii_lowercase()));
        assert!(one.chars().any(|c| c.is_ascii_uppercase()));
        assert!(one.chars().any(|c| c.is_ascii_digit()));
        assert!(one.chars().any(|c| PUNCTUATION.contains(c)));
        let digits = p(json!({"PasswordLength": 12, "ExcludeLowercase": true, "ExcludeUppercase": true, "ExcludePunctuation": true, "ExcludeCharacters": "0123"})).unwrap();
        assert_eq!(digits.len(), 12);
        assert!(digits.chars().all(|c| ('4'..='9').contains(&c)), "{digits}");
        assert_eq!(
            p(json!({"PasswordLength": 3})).unwrap_err().error_type(),
            "InvalidParameterException"
        );
        assert_eq!(
            p(json!({"ExcludeLowercase": true, "ExcludeUppercase": true, "ExcludePunctuation": true, "ExcludeNumbers": true}))
                .unwrap_err()
                .error_type(),
            "InvalidParameterException"
        );
    }
}
