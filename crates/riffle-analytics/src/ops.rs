//! The operations. [`dispatch`] is the one registration list.
//!
//! Configuration pieces are handled as JSON documents: a configuration
//! (`Input`, `Output`, `ReferenceDataSource`, `CloudWatchLoggingOption`)
//! becomes its description by renaming the members AWS describes as
//! `<Member>Description` ([`describe_piece`]); an update (`InputUpdate`,
//! ...) merges into a description member by member, `<Member>Update`
//! naming `<Member>` or `<Member>Description` ([`merge_update`]).

use std::collections::BTreeMap;

use riffle_wire::shape::IntoValue;
use riffle_wire::{Map, Value};
use serde_json::{json, Value as Json};

use crate::error::{AnalyticsError, Result};
use crate::state::{Application, Kind, Piece, Status};
use crate::{input, key, model, Ctx, Service};

/// Tags an application may carry.
pub const MAX_TAGS: usize = 50;
/// Streaming sources an application may have.
pub const MAX_INPUTS: usize = 1;
/// Destinations an application may have.
pub const MAX_OUTPUTS: usize = 3;
/// Reference data sources an application may have.
pub const MAX_REFERENCES: usize = 1;

macro_rules! operations {
    ($svc:ident, $ctx:ident, $op:ident, $body:ident; $($name:literal => $handler:path,)*) => {
        match $op {
            $($name => $handler($svc, $ctx, input($body)).await.map(IntoValue::into_value),)*
            _ => Err(AnalyticsError::UnknownOperation),
        }
    };
}

/// Runs operation `op` on a validated body.
pub async fn dispatch(svc: &Service, ctx: &Ctx, op: &str, body: Value) -> Result<Value> {
    operations!(svc, ctx, op, body;
        "AddApplicationCloudWatchLoggingOption" => add_logging,
        "AddApplicationInput" => add_input,
        "AddApplicationInputProcessingConfiguration" => add_processing,
        "AddApplicationOutput" => add_output,
        "AddApplicationReferenceDataSource" => add_reference,
        "CreateApplication" => create,
        "DeleteApplication" => delete,
        "DeleteApplicationCloudWatchLoggingOption" => delete_logging,
        "DeleteApplicationInputProcessingConfiguration" => delete_processing,
        "DeleteApplicationOutput" => delete_output,
        "DeleteApplicationReferenceDataSource" => delete_reference,
        "DescribeApplication" => describe,
        "DiscoverInputSchema" => discover,
        "ListApplications" => list,
        "ListTagsForResource" => list_tags,
        "StartApplication" => start,
        "StopApplication" => stop,
        "TagResource" => tag,
        "UntagResource" => untag,
        "UpdateApplication" => update,
    )
}

// ---------------------------------------------------------------------
// Texts

pub(crate) fn not_found(name: &str, account: &str) -> AnalyticsError {
    AnalyticsError::ResourceNotFound(format!(
        "Application {name} is not found in account {account}."
    ))
}

fn arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:kinesisanalytics:{region}:{account}:application/{name}")
}

/// The region and name an application ARN names.
fn parse_arn(arn: &str) -> Option<(String, String)> {
    let rest = arn.strip_prefix("arn:aws:kinesisanalytics:")?;
    let mut parts = rest.splitn(3, ':');
    let region = parts.next()?;
    let _account = parts.next()?;
    let name = parts.next()?.strip_prefix("application/")?;
    (!region.is_empty() && !name.is_empty()).then(|| (region.to_owned(), name.to_owned()))
}

// ---------------------------------------------------------------------
// Documents

fn to_json(v: Value) -> Json {
    serde_json::from_slice(&riffle_wire::json::encode(&v)).unwrap_or(Json::Null)
}

fn from_json(v: &Json) -> Value {
    serde_json::to_vec(v)
        .ok()
        .and_then(|b| riffle_wire::json::decode(&b).ok())
        .unwrap_or(Value::Null)
}

/// Members described as `<Member>Description`.
const DESCRIBED: &[&str] = &[
    "KinesisStreamsInput",
    "KinesisFirehoseInput",
    "InputProcessingConfiguration",
    "InputLambdaProcessor",
    "S3ReferenceDataSource",
    "KinesisStreamsOutput",
    "KinesisFirehoseOutput",
    "LambdaOutput",
];

/// Members of which a piece has exactly one (a source, a destination).
const EXCLUSIVE: &[&[&str]] = &[
    &["KinesisStreamsInput", "KinesisFirehoseInput"],
    &[
        "KinesisStreamsOutput",
        "KinesisFirehoseOutput",
        "LambdaOutput",
    ],
];

fn described_name(member: &str) -> String {
    if DESCRIBED.contains(&member) {
        format!("{member}Description")
    } else {
        member.to_owned()
    }
}

/// A configuration document as AWS describes it.
fn describe_piece(config: &Json) -> Json {
    match config {
        Json::Object(m) => Json::Object(
            m.iter()
                .map(|(k, v)| (described_name(k), describe_piece(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Merges an update document into a description.
fn merge_update(desc: &mut Json, update: &Json) {
    let (Json::Object(d), Json::Object(u)) = (desc, update) else {
        return;
    };
    for (k, v) in u {
        let base = if let Some(b) = k.strip_suffix("Updates") {
            format!("{b}s")
        } else if let Some(b) = k.strip_suffix("Update") {
            b.to_owned()
        } else {
            continue;
        };
        let target = described_name(&base);
        if let Some(group) = EXCLUSIVE.iter().find(|g| g.contains(&base.as_str())) {
            for other in group.iter().filter(|o| **o != base) {
                d.remove(&described_name(other));
            }
        }
        match (d.get_mut(&target), v) {
            (Some(cur @ Json::Object(_)), Json::Object(_)) if base != "RecordFormat" => {
                merge_or_replace(cur, v)
            }
            _ => {
                d.insert(target, describe_update(v));
            }
        }
    }
}

/// A nested update: update members merge, plain members replace.
fn merge_or_replace(cur: &mut Json, v: &Json) {
    let has_updates = v.as_object().is_some_and(|m| {
        m.keys()
            .any(|k| k.ends_with("Update") || k.ends_with("Updates"))
    });
    if has_updates {
        merge_update(cur, v);
    } else {
        *cur = describe_piece(v);
    }
}

/// An update document given where nothing was: its members renamed.
fn describe_update(v: &Json) -> Json {
    match v {
        Json::Object(m) => {
            let mut out = Json::Object(Default::default());
            if m.keys()
                .any(|k| k.ends_with("Update") || k.ends_with("Updates"))
            {
                merge_update(&mut out, v);
                out
            } else {
                describe_piece(v)
            }
        }
        other => other.clone(),
    }
}

/// The in-application stream names of an input.
fn in_app_streams(desc: &mut Json) {
    let prefix = desc["NamePrefix"].as_str().unwrap_or("").to_owned();
    let count = desc
        .pointer("/InputParallelism/Count")
        .and_then(Json::as_i64)
        .unwrap_or(1)
        .max(1);
    if desc.get("InputParallelism").is_none() {
        desc["InputParallelism"] = json!({"Count": 1});
    }
    desc["InAppStreamNames"] = Json::Array(
        (1..=count)
            .map(|i| Json::String(format!("{prefix}_{i:03}")))
            .collect(),
    );
}

fn exactly_one(doc: &Json, group: &[&str], what: &str) -> Result<()> {
    let n = group
        .iter()
        .filter(|m| doc.get(described_name(m)).is_some())
        .count();
    if n == 1 {
        Ok(())
    } else {
        Err(AnalyticsError::InvalidArgument(format!(
            "{what} must specify exactly one of {}.",
            group.join(", ")
        )))
    }
}

fn input_piece(i: model::Input) -> Result<Json> {
    let mut d = describe_piece(&to_json(i.into_value()));
    exactly_one(&d, EXCLUSIVE[0], "An input")?;
    in_app_streams(&mut d);
    d["InputStartingPositionConfiguration"] = json!({});
    Ok(d)
}

fn output_piece(o: model::Output) -> Result<Json> {
    let d = describe_piece(&to_json(o.into_value()));
    exactly_one(&d, EXCLUSIVE[1], "An output")?;
    Ok(d)
}

fn reference_piece(r: model::ReferenceDataSource) -> Result<Json> {
    let d = describe_piece(&to_json(r.into_value()));
    if d.get("S3ReferenceDataSourceDescription").is_none() {
        return Err(AnalyticsError::InvalidArgument(
            "A reference data source must specify S3ReferenceDataSource.".into(),
        ));
    }
    Ok(d)
}

fn logging_piece(c: model::CloudWatchLoggingOption) -> Json {
    describe_piece(&to_json(c.into_value()))
}

/// The id member of each kind's description.
fn id_member(kind: Kind) -> &'static str {
    match kind {
        Kind::Input => "InputId",
        Kind::Output => "OutputId",
        Kind::Reference => "ReferenceId",
        Kind::Logging => "CloudWatchLoggingOptionId",
    }
}

fn kind_label(kind: Kind) -> &'static str {
    match kind {
        Kind::Input => "input",
        Kind::Output => "output",
        Kind::Reference => "reference data source",
        Kind::Logging => "CloudWatch logging option",
    }
}

fn limit(kind: Kind) -> usize {
    match kind {
        Kind::Input => MAX_INPUTS,
        Kind::Output => MAX_OUTPUTS,
        Kind::Reference => MAX_REFERENCES,
        Kind::Logging => 1,
    }
}

/// Adds a piece (already a description) with a new id.
fn add_piece(app: &mut Application, kind: Kind, doc: Json) -> Result<()> {
    if app.pieces(kind).len() >= limit(kind) {
        return Err(AnalyticsError::InvalidArgument(format!(
            "Application {} already has the maximum number of {}s ({}).",
            app.name,
            kind_label(kind),
            limit(kind)
        )));
    }
    let id = app.next_id(kind);
    app.pieces_mut(kind).push(Piece { id, doc });
    Ok(())
}

fn find_piece<'a>(app: &'a mut Application, kind: Kind, id: &str) -> Result<&'a mut Piece> {
    let name = app.name.clone();
    app.pieces_mut(kind)
        .iter_mut()
        .find(|p| p.id == id)
        .ok_or_else(|| {
            AnalyticsError::ResourceNotFound(format!(
                "Application {name} has no {} with id {id}.",
                kind_label(kind)
            ))
        })
}

/// A piece's description with its id first.
fn described(kind: Kind, p: &Piece) -> Value {
    let mut m = Map::new();
    m.put(id_member(kind), Value::Str(p.id.clone()));
    if let Value::Map(rest) = from_json(&p.doc) {
        for (k, v) in rest.0 {
            m.put(&k, v);
        }
    }
    Value::Map(m)
}

/// Stream names an application's SQL may use for each in-application
/// stream name (names of outputs must be unique, as AWS requires).
fn check_output_names(app: &Application) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for p in &app.outputs {
        let n = p.doc["Name"].as_str().unwrap_or("").to_ascii_uppercase();
        if !seen.insert(n.clone()) {
            return Err(AnalyticsError::InvalidArgument(format!(
                "Application {} has more than one output for in-application stream {n}.",
                app.name
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------
// Applications

/// Application code must parse (CodeValidationException with the
/// parser's message and position otherwise).
fn check_code(code: Option<&str>) -> Result<()> {
    match code {
        Some(c) => crate::sql::parse(c)
            .map(|_| ())
            .map_err(|e| AnalyticsError::CodeValidation(e.to_string())),
        None => Ok(()),
    }
}

fn summary(s: &Application) -> model::ApplicationSummary {
    model::ApplicationSummary {
        application_name: s.name.clone(),
        application_arn: s.arn.clone(),
        application_status: s.status.as_str().into(),
    }
}

/// CreateApplication: READY at once, version 1.
pub async fn create(
    svc: &Service,
    ctx: &Ctx,
    i: model::CreateApplicationRequest,
) -> Result<model::CreateApplicationResponse> {
    check_code(i.application_code.as_deref())?;
    let account = svc.account().to_owned();
    let now = svc.now_ms();
    let name = i.application_name.clone();
    let mut app = Application {
        region: ctx.region.clone(),
        name: name.clone(),
        arn: arn(&ctx.region, &account, &name),
        description: i.application_description,
        status: Status::Ready,
        created_ms: now,
        updated_ms: now,
        version: 1,
        code: i.application_code,
        inputs: Vec::new(),
        outputs: Vec::new(),
        references: Vec::new(),
        logging: Vec::new(),
        counters: [0; 4],
        tags: BTreeMap::new(),
        run: 0,
        checkpoint: None,
    };
    for input in i.inputs.unwrap_or_default() {
        add_piece(&mut app, Kind::Input, input_piece(input)?)?;
    }
    for output in i.outputs.unwrap_or_default() {
        add_piece(&mut app, Kind::Output, output_piece(output)?)?;
    }
    check_output_names(&app)?;
    for c in i.cloud_watch_logging_options.unwrap_or_default() {
        add_piece(&mut app, Kind::Logging, logging_piece(c))?;
    }
    app.tags = merged_tags(&BTreeMap::new(), i.tags.unwrap_or_default())?;
    let region = ctx.region.clone();
    let limit = svc.cfg.application_limit;
    let created = svc
        .apps
        .create(&key(&ctx.region, &name), |live| {
            if live
                .iter()
                .any(|(_, _, a)| a.region == region && a.name == name)
            {
                return Err(AnalyticsError::ResourceInUse(format!(
                    "Application {name} already exists."
                )));
            }
            let n = live.iter().filter(|(_, _, a)| a.region == region).count();
            if n >= limit {
                return Err(AnalyticsError::LimitExceeded(format!(
                    "Account {account} has reached its limit of {limit} applications in {region}."
                )));
            }
            Ok((app, ()))
        })
        .await?;
    let s = created.cell.snapshot(svc.now_ms());
    Ok(model::CreateApplicationResponse {
        application_summary: summary(&s),
    })
}

fn detail(s: &Application) -> model::ApplicationDetail {
    fn list<T: riffle_wire::shape::FromValue>(s: &Application, kind: Kind) -> Option<Vec<T>> {
        Some(
            s.pieces(kind)
                .iter()
                .map(|p| T::from_value(described(kind, p)))
                .collect(),
        )
    }
    model::ApplicationDetail {
        application_name: s.name.clone(),
        application_description: s.description.clone(),
        application_arn: s.arn.clone(),
        application_status: s.status.as_str().into(),
        create_timestamp: Some(riffle_wire::shape::Timestamp(s.created_ms)),
        last_update_timestamp: Some(riffle_wire::shape::Timestamp(s.updated_ms)),
        input_descriptions: list(s, Kind::Input),
        output_descriptions: list(s, Kind::Output),
        reference_data_source_descriptions: list(s, Kind::Reference),
        cloud_watch_logging_option_descriptions: list(s, Kind::Logging),
        application_code: s.code.clone(),
        application_version_id: s.version,
    }
}

/// DescribeApplication.
pub async fn describe(
    svc: &Service,
    ctx: &Ctx,
    i: model::DescribeApplicationRequest,
) -> Result<model::DescribeApplicationResponse> {
    let s = svc
        .apps
        .get(&key(&ctx.region, &i.application_name))
        .ok_or_else(|| not_found(&i.application_name, svc.account()))?;
    Ok(model::DescribeApplicationResponse {
        application_detail: detail(&s),
    })
}

/// ListApplications: by name, after ExclusiveStartApplicationName.
pub async fn list(
    svc: &Service,
    ctx: &Ctx,
    i: model::ListApplicationsRequest,
) -> Result<model::ListApplicationsResponse> {
    let limit = i.limit.map_or(50, |l| l.max(1) as usize);
    let apps: Vec<_> = svc
        .apps
        .all()
        .into_iter()
        .map(|(_, _, a)| a)
        .filter(|a| a.region == ctx.region)
        .filter(|a| {
            i.exclusive_start_application_name
                .as_deref()
                .is_none_or(|after| a.name.as_str() > after)
        })
        .collect();
    Ok(model::ListApplicationsResponse {
        has_more_applications: apps.len() > limit,
        application_summaries: apps.iter().take(limit).map(|a| summary(a)).collect(),
    })
}

/// DeleteApplication: the CreateTimestamp must be the application's.
pub async fn delete(
    svc: &Service,
    ctx: &Ctx,
    i: model::DeleteApplicationRequest,
) -> Result<model::DeleteApplicationResponse> {
    let account = svc.account().to_owned();
    let name = i.application_name.clone();
    let until_ms = svc.now_ms() + svc.cfg.status_delay_ms;
    let given = i.create_timestamp.0;
    svc.apps
        .update(&key(&ctx.region, &name), |a| {
            // Timestamps travel as seconds with millisecond precision.
            if (a.created_ms - given).abs() >= 1 {
                return Err(AnalyticsError::ResourceNotFound(format!(
                    "Application {name} with the given CreateTimestamp is not found in account {account}."
                )));
            }
            match a.status {
                Status::Deleting { .. } => Err(AnalyticsError::ResourceInUse(format!(
                    "Application {name} is already being deleted."
                ))),
                _ => {
                    a.status = Status::Deleting { until_ms };
                    Ok(())
                }
            }
        })
        .await?
        .ok_or_else(|| not_found(&name, svc.account()))?;
    Ok(model::DeleteApplicationResponse {})
}

/// Runs a configuration change on an application: the version must be
/// the current one, the application READY or RUNNING; a new version
/// follows.
async fn change<T>(
    svc: &Service,
    ctx: &Ctx,
    name: &str,
    version: i64,
    f: impl FnOnce(&mut Application) -> Result<T>,
) -> Result<T> {
    let now = svc.now_ms();
    svc.apps
        .update(&key(&ctx.region, name), |a| {
            if a.version != version {
                return Err(AnalyticsError::ConcurrentModification(format!(
                    "Current application version ID {version} does not match the application's version ID {}.",
                    a.version
                )));
            }
            if !matches!(a.status, Status::Ready | Status::Running) {
                return Err(AnalyticsError::ResourceInUse(format!(
                    "Application {name} is in {} state; configuration changes need READY or RUNNING.",
                    a.status.as_str()
                )));
            }
            let out = f(a)?;
            a.changed(now);
            Ok(out)
        })
        .await?
        .ok_or_else(|| not_found(name, svc.account()))
}

/// UpdateApplication: code, inputs, outputs, reference data sources and
/// logging options by id.
pub async fn update(
    svc: &Service,
    ctx: &Ctx,
    i: model::UpdateApplicationRequest,
) -> Result<model::UpdateApplicationResponse> {
    let u = i.application_update;
    check_code(u.application_code_update.as_deref())?;
    change(
        svc,
        ctx,
        &i.application_name,
        i.current_application_version_id,
        |a| {
            if let Some(code) = u.application_code_update {
                a.code = Some(code);
            }
            for up in u.input_updates.unwrap_or_default() {
                let id = up.input_id.clone();
                let p = find_piece(a, Kind::Input, &id)?;
                merge_update(&mut p.doc, &to_json(up.into_value()));
                in_app_streams(&mut p.doc);
            }
            for up in u.output_updates.unwrap_or_default() {
                let id = up.output_id.clone();
                let p = find_piece(a, Kind::Output, &id)?;
                merge_update(&mut p.doc, &to_json(up.into_value()));
            }
            check_output_names(a)?;
            for up in u.reference_data_source_updates.unwrap_or_default() {
                let id = up.reference_id.clone();
                let p = find_piece(a, Kind::Reference, &id)?;
                merge_update(&mut p.doc, &to_json(up.into_value()));
            }
            for up in u.cloud_watch_logging_option_updates.unwrap_or_default() {
                let id = up.cloud_watch_logging_option_id.clone();
                let p = find_piece(a, Kind::Logging, &id)?;
                merge_update(&mut p.doc, &to_json(up.into_value()));
            }
            for kind in [Kind::Input, Kind::Output, Kind::Reference, Kind::Logging] {
                for p in a.pieces_mut(kind) {
                    if let Json::Object(m) = &mut p.doc {
                        m.remove(id_member(kind));
                    }
                }
            }
            Ok(())
        },
    )
    .await?;
    Ok(model::UpdateApplicationResponse {})
}

// ---------------------------------------------------------------------
// Pieces

pub async fn add_input(
    svc: &Service,
    ctx: &Ctx,
    i: model::AddApplicationInputRequest,
) -> Result<model::AddApplicationInputResponse> {
    let doc = input_piece(i.input)?;
    change(
        svc,
        ctx,
        &i.application_name,
        i.current_application_version_id,
        |a| add_piece(a, Kind::Input, doc),
    )
    .await?;
    Ok(model::AddApplicationInputResponse {})
}

pub async fn add_output(
    svc: &Service,
    ctx: &Ctx,
    i: model::AddApplicationOutputRequest,
) -> Result<model::AddApplicationOutputResponse> {
    let doc = output_piece(i.output)?;
    change(
        svc,
        ctx,
        &i.application_name,
        i.current_application_version_id,
        |a| {
            add_piece(a, Kind::Output, doc)?;
            check_output_names(a)
        },
    )
    .await?;
    Ok(model::AddApplicationOutputResponse {})
}

pub async fn add_reference(
    svc: &Service,
    ctx: &Ctx,
    i: model::AddApplicationReferenceDataSourceRequest,
) -> Result<model::AddApplicationReferenceDataSourceResponse> {
    let doc = reference_piece(i.reference_data_source)?;
    change(
        svc,
        ctx,
        &i.application_name,
        i.current_application_version_id,
        |a| add_piece(a, Kind::Reference, doc),
    )
    .await?;
    Ok(model::AddApplicationReferenceDataSourceResponse {})
}

pub async fn add_logging(
    svc: &Service,
    ctx: &Ctx,
    i: model::AddApplicationCloudWatchLoggingOptionRequest,
) -> Result<model::AddApplicationCloudWatchLoggingOptionResponse> {
    let doc = logging_piece(i.cloud_watch_logging_option);
    change(
        svc,
        ctx,
        &i.application_name,
        i.current_application_version_id,
        |a| {
            let arn = doc["LogStreamARN"].as_str().unwrap_or("");
            if a.logging.iter().any(|p| p.doc["LogStreamARN"] == arn) {
                return Err(AnalyticsError::InvalidArgument(format!(
                    "Application {} already logs to {arn}.",
                    a.name
                )));
            }
            add_piece(a, Kind::Logging, doc)
        },
    )
    .await?;
    Ok(model::AddApplicationCloudWatchLoggingOptionResponse {})
}

pub async fn add_processing(
    svc: &Service,
    ctx: &Ctx,
    i: model::AddApplicationInputProcessingConfigurationRequest,
) -> Result<model::AddApplicationInputProcessingConfigurationResponse> {
    let doc = describe_piece(&to_json(i.input_processing_configuration.into_value()));
    change(
        svc,
        ctx,
        &i.application_name,
        i.current_application_version_id,
        |a| {
            let name = a.name.clone();
            let p = find_piece(a, Kind::Input, &i.input_id)?;
            if p.doc
                .get("InputProcessingConfigurationDescription")
                .is_some()
            {
                return Err(AnalyticsError::InvalidArgument(format!(
                    "Input {} of application {name} already has an input processing configuration.",
                    i.input_id
                )));
            }
            p.doc["InputProcessingConfigurationDescription"] = doc;
            Ok(())
        },
    )
    .await?;
    Ok(model::AddApplicationInputProcessingConfigurationResponse {})
}

pub async fn delete_processing(
    svc: &Service,
    ctx: &Ctx,
    i: model::DeleteApplicationInputProcessingConfigurationRequest,
) -> Result<model::DeleteApplicationInputProcessingConfigurationResponse> {
    change(
        svc,
        ctx,
        &i.application_name,
        i.current_application_version_id,
        |a| {
            let p = find_piece(a, Kind::Input, &i.input_id)?;
            if let Json::Object(m) = &mut p.doc {
                m.remove("InputProcessingConfigurationDescription");
            }
            Ok(())
        },
    )
    .await?;
    Ok(model::DeleteApplicationInputProcessingConfigurationResponse {})
}

/// Removes a piece by id: a configuration change.
async fn remove_by_id(
    svc: &Service,
    ctx: &Ctx,
    name: &str,
    version: i64,
    kind: Kind,
    id: &str,
) -> Result<()> {
    change(svc, ctx, name, version, |a| {
        find_piece(a, kind, id)?;
        a.pieces_mut(kind).retain(|p| p.id != id);
        Ok(())
    })
    .await
}

pub async fn delete_output(
    svc: &Service,
    ctx: &Ctx,
    i: model::DeleteApplicationOutputRequest,
) -> Result<model::DeleteApplicationOutputResponse> {
    remove_by_id(
        svc,
        ctx,
        &i.application_name,
        i.current_application_version_id,
        Kind::Output,
        &i.output_id,
    )
    .await?;
    Ok(model::DeleteApplicationOutputResponse {})
}

pub async fn delete_reference(
    svc: &Service,
    ctx: &Ctx,
    i: model::DeleteApplicationReferenceDataSourceRequest,
) -> Result<model::DeleteApplicationReferenceDataSourceResponse> {
    remove_by_id(
        svc,
        ctx,
        &i.application_name,
        i.current_application_version_id,
        Kind::Reference,
        &i.reference_id,
    )
    .await?;
    Ok(model::DeleteApplicationReferenceDataSourceResponse {})
}

pub async fn delete_logging(
    svc: &Service,
    ctx: &Ctx,
    i: model::DeleteApplicationCloudWatchLoggingOptionRequest,
) -> Result<model::DeleteApplicationCloudWatchLoggingOptionResponse> {
    remove_by_id(
        svc,
        ctx,
        &i.application_name,
        i.current_application_version_id,
        Kind::Logging,
        &i.cloud_watch_logging_option_id,
    )
    .await?;
    Ok(model::DeleteApplicationCloudWatchLoggingOptionResponse {})
}

// ---------------------------------------------------------------------
// Running

/// StartApplication: READY → STARTING → RUNNING, with each named input's
/// starting position recorded in its description.
pub async fn start(
    svc: &Service,
    ctx: &Ctx,
    i: model::StartApplicationRequest,
) -> Result<model::StartApplicationResponse> {
    let name = i.application_name.clone();
    let until_ms = svc.now_ms() + svc.cfg.status_delay_ms;
    let delay = svc.cfg.status_delay_ms;
    svc.apps
        .update(&key(&ctx.region, &name), |a| {
            if a.status != Status::Ready {
                return Err(AnalyticsError::ResourceInUse(format!(
                    "Application {name} is in {} state; it can be started only when READY.",
                    a.status.as_str()
                )));
            }
            if a.inputs.is_empty() {
                return Err(AnalyticsError::InvalidApplicationConfiguration(format!(
                    "Application {name} has no input to start."
                )));
            }
            for c in &i.input_configurations {
                let pos = c
                    .input_starting_position_configuration
                    .input_starting_position
                    .clone();
                let p = a.inputs.iter_mut().find(|p| p.id == c.id).ok_or_else(|| {
                    AnalyticsError::InvalidArgument(format!(
                        "Application {name} has no input with id {}.",
                        c.id
                    ))
                })?;
                if pos.as_deref() == Some("TRIM_HORIZON")
                    && p.doc.get("KinesisFirehoseInputDescription").is_some()
                {
                    return Err(AnalyticsError::InvalidArgument(
                        "TRIM_HORIZON is not available for a Kinesis Firehose delivery stream input."
                            .into(),
                    ));
                }
                p.doc["InputStartingPositionConfiguration"] = match pos {
                    Some(pos) => json!({ "InputStartingPosition": pos }),
                    None => json!({}),
                };
            }
            a.run += 1;
            a.status = if delay > 0 {
                Status::Starting { until_ms }
            } else {
                Status::Running
            };
            Ok(())
        })
        .await?
        .ok_or_else(|| not_found(&name, svc.account()))?;
    Ok(model::StartApplicationResponse {})
}

/// StopApplication: RUNNING → STOPPING → READY; a READY application
/// stays READY.
pub async fn stop(
    svc: &Service,
    ctx: &Ctx,
    i: model::StopApplicationRequest,
) -> Result<model::StopApplicationResponse> {
    let name = i.application_name.clone();
    let until_ms = svc.now_ms() + svc.cfg.status_delay_ms;
    let delay = svc.cfg.status_delay_ms;
    svc.apps
        .update(&key(&ctx.region, &name), |a| match a.status {
            Status::Ready | Status::Stopping { .. } => Ok(()),
            Status::Running => {
                a.status = if delay > 0 {
                    Status::Stopping { until_ms }
                } else {
                    Status::Ready
                };
                Ok(())
            }
            other => Err(AnalyticsError::ResourceInUse(format!(
                "Application {name} is in {} state and cannot be stopped.",
                other.as_str()
            ))),
        })
        .await?
        .ok_or_else(|| not_found(&name, svc.account()))?;
    Ok(model::StopApplicationResponse {})
}

/// How much of an S3 object DiscoverInputSchema samples.
const DISCOVER_MAX_BYTES: usize = 1 << 20;

/// How long DiscoverInputSchema waits for records on a stream.
const DISCOVER_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// DiscoverInputSchema: up to 100 records sampled from a Riffle stream
/// (from the starting position given), a Firehose delivery stream (those
/// put within the wait) or the lines of an S3 object, and a
/// schema inferred from them ([`crate::discover`]).
pub async fn discover(
    svc: &Service,
    _ctx: &Ctx,
    i: model::DiscoverInputSchemaRequest,
) -> Result<model::DiscoverInputSchemaResponse> {
    let sources = svc.sources();
    let preprocessor = match &i.input_processing_configuration {
        Some(c) => Some(crate::lambda::Preprocessor {
            invoker: sources.lambda.clone().ok_or_else(|| {
                AnalyticsError::InvalidArgument(
                    "This server has no Lambda endpoint (--lambda-endpoint) to preprocess with."
                        .into(),
                )
            })?,
            function_arn: c.input_lambda_processor.resource_arn.clone(),
            application_arn: String::new(),
            stream_arn: i
                .resource_arn
                .clone()
                .or_else(|| i.s3_configuration.as_ref().map(|s| s.bucket_arn.clone()))
                .unwrap_or_default(),
        }),
        None => None,
    };
    let raw: Vec<String> = match (&i.s3_configuration, &i.resource_arn) {
        (Some(s3), _) => {
            let bucket = s3.bucket_arn.strip_prefix("arn:aws:s3:::").unwrap_or("");
            if bucket.is_empty() {
                return Err(AnalyticsError::InvalidArgument(format!(
                    "Invalid BucketARN {}.",
                    s3.bucket_arn
                )));
            }
            let objects = sources.objects.ok_or_else(|| {
                AnalyticsError::InvalidArgument("This server has no S3 to read from.".into())
            })?;
            let body = objects
                .get(bucket, &s3.file_key, DISCOVER_MAX_BYTES)
                .await
                .map_err(AnalyticsError::Internal)?
                .ok_or_else(|| {
                    AnalyticsError::ResourceNotFound(format!(
                        "S3 object s3://{bucket}/{} does not exist.",
                        s3.file_key
                    ))
                })?;
            let mut lines: Vec<String> = String::from_utf8_lossy(&body)
                .lines()
                .filter(|l| !l.trim().is_empty())
                .take(crate::discover::MAX_SAMPLES + 1)
                .map(str::to_owned)
                .collect();
            if body.len() == DISCOVER_MAX_BYTES && lines.len() > 1 {
                // The last line may be cut short where the sample ends.
                lines.pop();
            }
            lines.truncate(crate::discover::MAX_SAMPLES);
            lines
        }
        (None, Some(arn)) if arn.starts_with("arn:aws:firehose:") => {
            // A delivery stream has no history to sample: records put
            // within the wait are.
            let (region, name) = crate::run::arn_parts(arn).ok_or_else(|| {
                AnalyticsError::InvalidArgument(format!("Invalid ResourceARN {arn}."))
            })?;
            let tap = sources.firehose_input.ok_or_else(|| {
                AnalyticsError::InvalidArgument("Firehose is not available.".into())
            })?;
            let mut reader = tap
                .open(&region, &name, None)
                .map_err(AnalyticsError::ResourceNotFound)?;
            reader
                .next(crate::discover::MAX_SAMPLES, DISCOVER_WAIT)
                .await
                .map_err(AnalyticsError::Internal)?
                .iter()
                .map(|r| String::from_utf8_lossy(&r.data).into_owned())
                .collect()
        }
        (None, Some(arn)) => {
            let Some(stream) = riffle_core::names::parse_stream_arn(arn) else {
                return Err(AnalyticsError::InvalidArgument(format!(
                    "ResourceARN {arn} is not a Kinesis stream or a Firehose delivery stream."
                )));
            };
            let kinesis = sources.kinesis.ok_or_else(|| {
                AnalyticsError::InvalidArgument("Kinesis Data Streams is not available.".into())
            })?;
            let start = match i
                .input_starting_position_configuration
                .and_then(|c| c.input_starting_position)
                .as_deref()
            {
                Some("NOW") | None => riffle_streams::access::Start::Latest,
                _ => riffle_streams::access::Start::TrimHorizon,
            };
            let mut reader = kinesis
                .stream_reader(&stream.region, &stream.name, start)
                .map_err(|e| AnalyticsError::ResourceNotFound(e.message().unwrap_or_default()))?;
            let records = reader
                .next(crate::discover::MAX_SAMPLES, DISCOVER_WAIT)
                .await
                .map_err(|e| AnalyticsError::ResourceNotFound(e.message().unwrap_or_default()))?;
            records
                .iter()
                .map(|r| String::from_utf8_lossy(&r.data).into_owned())
                .collect()
        }
        (None, None) => {
            return Err(AnalyticsError::InvalidArgument(
                "Either ResourceARN or S3Configuration must be given.".into(),
            ))
        }
    };
    // With a preprocessing function, the schema is of what it returns
    // (records it drops or fails are not sampled).
    let processed: Option<Vec<String>> = match &preprocessor {
        Some(pre) => {
            let records: Vec<crate::lambda::PreRecord<'_>> = raw
                .iter()
                .map(|r| crate::lambda::PreRecord {
                    id: crate::lambda::guid(),
                    arrival_ms: svc.now_ms(),
                    data: r.as_bytes(),
                    stream: None,
                })
                .collect();
            let mut errors = Vec::new();
            let (_keep, mut never) = tokio::sync::watch::channel(false);
            let out = pre
                .run(&records, svc.now_ms(), &mut errors, &mut never)
                .await
                .unwrap_or_default();
            if let Some(e) = errors.first() {
                if out.iter().all(Option::is_none) {
                    return Err(AnalyticsError::UnableToDetectSchema(e.message.clone()));
                }
            }
            Some(
                out.into_iter()
                    .flatten()
                    .map(|d| String::from_utf8_lossy(&d).into_owned())
                    .collect(),
            )
        }
        None => None,
    };
    let sample = processed.as_ref().unwrap_or(&raw);
    let found = crate::discover::infer(sample).ok_or_else(|| {
        AnalyticsError::UnableToDetectSchema(if sample.is_empty() {
            "No data found in the input to discover a schema from.".into()
        } else {
            "Unable to detect a JSON or CSV schema in the input records.".into()
        })
    })?;
    Ok(model::DiscoverInputSchemaResponse {
        input_schema: Some(found.schema),
        parsed_input_records: Some(found.parsed),
        processed_input_records: processed,
        raw_input_records: Some(raw),
    })
}

// ---------------------------------------------------------------------
// Tags

fn merged_tags(
    cur: &BTreeMap<String, String>,
    add: Vec<model::Tag>,
) -> Result<BTreeMap<String, String>> {
    let mut next = cur.clone();
    for t in add {
        if t.key.starts_with("aws:") {
            return Err(AnalyticsError::InvalidArgument(format!(
                "Tag key {} uses the reserved prefix aws:.",
                t.key
            )));
        }
        next.insert(t.key, t.value.unwrap_or_default());
    }
    if next.len() > MAX_TAGS {
        return Err(AnalyticsError::TooManyTags(format!(
            "An application can have at most {MAX_TAGS} tags."
        )));
    }
    Ok(next)
}

fn app_key(svc: &Service, arn: &str) -> Result<(String, String)> {
    let (region, name) = parse_arn(arn).ok_or_else(|| {
        AnalyticsError::InvalidArgument(format!("Invalid application ARN {arn}."))
    })?;
    if svc.apps.get(&key(&region, &name)).is_none() {
        return Err(not_found(&name, svc.account()));
    }
    Ok((region, name))
}

pub async fn tag(
    svc: &Service,
    _ctx: &Ctx,
    i: model::TagResourceRequest,
) -> Result<model::TagResourceResponse> {
    let (region, name) = app_key(svc, &i.resource_arn)?;
    svc.apps
        .update(&key(&region, &name), |a| {
            a.tags = merged_tags(&a.tags, i.tags)?;
            Ok::<_, AnalyticsError>(())
        })
        .await?
        .ok_or_else(|| not_found(&name, svc.account()))?;
    Ok(model::TagResourceResponse {})
}

pub async fn untag(
    svc: &Service,
    _ctx: &Ctx,
    i: model::UntagResourceRequest,
) -> Result<model::UntagResourceResponse> {
    let (region, name) = app_key(svc, &i.resource_arn)?;
    svc.apps
        .update(&key(&region, &name), |a| {
            for k in &i.tag_keys {
                a.tags.remove(k);
            }
            Ok::<_, AnalyticsError>(())
        })
        .await?
        .ok_or_else(|| not_found(&name, svc.account()))?;
    Ok(model::UntagResourceResponse {})
}

pub async fn list_tags(
    svc: &Service,
    _ctx: &Ctx,
    i: model::ListTagsForResourceRequest,
) -> Result<model::ListTagsForResourceResponse> {
    let (region, name) = app_key(svc, &i.resource_arn)?;
    let a = svc
        .apps
        .get(&key(&region, &name))
        .ok_or_else(|| not_found(&name, svc.account()))?;
    Ok(model::ListTagsForResourceResponse {
        tags: Some(
            a.tags
                .iter()
                .map(|(k, v)| model::Tag {
                    key: k.clone(),
                    value: Some(v.clone()),
                })
                .collect(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_become_descriptions() {
        let input = json!({
            "NamePrefix": "SOURCE_SQL_STREAM",
            "KinesisStreamsInput": {"ResourceARN": "arn:s", "RoleARN": "arn:r"},
            "InputProcessingConfiguration": {"InputLambdaProcessor": {"ResourceARN": "arn:l", "RoleARN": "arn:r"}},
            "InputParallelism": {"Count": 2},
        });
        let mut d = describe_piece(&input);
        in_app_streams(&mut d);
        assert_eq!(
            d,
            json!({
                "NamePrefix": "SOURCE_SQL_STREAM",
                "KinesisStreamsInputDescription": {"ResourceARN": "arn:s", "RoleARN": "arn:r"},
                "InputProcessingConfigurationDescription": {"InputLambdaProcessorDescription": {"ResourceARN": "arn:l", "RoleARN": "arn:r"}},
                "InputParallelism": {"Count": 2},
                "InAppStreamNames": ["SOURCE_SQL_STREAM_001", "SOURCE_SQL_STREAM_002"],
            })
        );
    }

    #[test]
    fn updates_merge_and_switch_sources() {
        let mut d = json!({
            "NamePrefix": "IN",
            "KinesisStreamsInputDescription": {"ResourceARN": "arn:s", "RoleARN": "arn:r"},
            "InputSchema": {"RecordFormat": {"RecordFormatType": "CSV"}, "RecordColumns": [{"Name": "a", "SqlType": "INT"}]},
            "InputParallelism": {"Count": 1},
        });
        merge_update(
            &mut d,
            &json!({
                "InputId": "1.1",
                "NamePrefixUpdate": "NEW",
                "KinesisFirehoseInputUpdate": {"ResourceARNUpdate": "arn:f", "RoleARNUpdate": "arn:r2"},
                "InputSchemaUpdate": {"RecordColumnUpdates": [{"Name": "b", "SqlType": "VARCHAR(4)"}]},
                "InputParallelismUpdate": {"CountUpdate": 3},
            }),
        );
        assert_eq!(
            d,
            json!({
                "NamePrefix": "NEW",
                "KinesisFirehoseInputDescription": {"ResourceARN": "arn:f", "RoleARN": "arn:r2"},
                "InputSchema": {"RecordFormat": {"RecordFormatType": "CSV"}, "RecordColumns": [{"Name": "b", "SqlType": "VARCHAR(4)"}]},
                "InputParallelism": {"Count": 3},
            })
        );
    }

    #[test]
    fn arns() {
        assert_eq!(
            parse_arn("arn:aws:kinesisanalytics:us-east-1:000000000000:application/app"),
            Some(("us-east-1".into(), "app".into()))
        );
        assert_eq!(parse_arn("arn:aws:kinesis:us-east-1:0:stream/s"), None);
    }
}
