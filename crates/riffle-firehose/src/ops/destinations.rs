//! Destinations: what CreateDeliveryStream's destination configuration
//! becomes in DescribeDeliveryStream, and UpdateDestination.
//!
//! A destination is kept as its description document (the model's
//! `<Type>DestinationDescription`): the configuration with its nested
//! `S3Configuration`/`S3BackupConfiguration`/`VpcConfiguration` renamed to
//! their description members, secrets (passwords, private keys, access
//! keys) left out, and AWS's defaults filled in. S3 destinations are kept
//! as extended S3 destinations and described as both, as AWS does.
//!
//! UpdateDestination merges an update of the same type into the document
//! (members it names replace the stored ones, nested structures merge);
//! an update of another type replaces the destination and must then be a
//! whole configuration. OpenSearch-family destinations only change within
//! their own type.

use riffle_wire::shape::{self, FromValue, IntoValue, Shape};
use riffle_wire::{Map, Value};

use crate::error::{FirehoseError, Result};
use crate::model;
use crate::state::{Destination, Kind};
use crate::{Ctx, Service, StreamKey};

/// Members never described back.
const SECRETS: &[&str] = &["Password", "PrivateKey", "KeyPassphrase", "AccessKey"];

pub(crate) fn to_json(v: &Value) -> serde_json::Value {
    serde_json::from_slice(&riffle_wire::json::encode(v)).unwrap_or(serde_json::Value::Null)
}

pub(crate) fn from_json(v: &serde_json::Value) -> Value {
    serde_json::to_vec(v)
        .ok()
        .and_then(|b| riffle_wire::json::decode(&b).ok())
        .unwrap_or(Value::Null)
}

fn map(v: Value) -> Map {
    match v {
        Value::Map(m) => m,
        _ => Map::new(),
    }
}

/// Sets a member, in place when it is there already.
fn set(m: &mut Map, key: &str, v: Value) {
    match m.0.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = v,
        None => m.put(key, v),
    }
}

fn int(n: i64) -> Value {
    Value::Int(n)
}

fn obj(members: &[(&str, Value)]) -> Value {
    let mut m = Map::new();
    for (k, v) in members {
        m.put(k, v.clone());
    }
    Value::Map(m)
}

/// Fills in `defaults` members `m` lacks; nested structures are filled
/// member by member.
fn fill(m: &mut Map, defaults: &[(&str, Value)]) {
    for (k, d) in defaults {
        match (m.get(k).cloned(), d) {
            (None, _) => m.put(k, d.clone()),
            (Some(Value::Map(mut cur)), Value::Map(dm)) => {
                let pairs: Vec<(&str, Value)> =
                    dm.0.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
                fill(&mut cur, &pairs);
                set(m, k, Value::Map(cur));
            }
            _ => {}
        }
    }
}

fn buffering(size: i64, interval: i64) -> Value {
    obj(&[
        ("SizeInMBs", int(size)),
        ("IntervalInSeconds", int(interval)),
    ])
}

fn logging_off() -> Value {
    obj(&[("Enabled", Value::Bool(false))])
}

/// AWS's defaults for an S3 destination description.
fn s3_defaults(m: &mut Map) {
    fill(
        m,
        &[
            ("BufferingHints", buffering(5, 300)),
            ("CompressionFormat", "UNCOMPRESSED".into()),
            (
                "EncryptionConfiguration",
                obj(&[("NoEncryptionConfig", "NoEncryption".into())]),
            ),
            ("CloudWatchLoggingOptions", logging_off()),
        ],
    );
}

/// Renames configuration (or update) members to description members.
fn rename(m: &mut Map, pairs: &[(&str, &str)]) {
    for (from, to) in pairs {
        if let Some(v) = m.take(from) {
            m.put(to, v);
        }
    }
}

const CONFIG_TO_DESCRIPTION: &[(&str, &str)] = &[
    ("S3Configuration", "S3DestinationDescription"),
    ("S3BackupConfiguration", "S3BackupDescription"),
    ("VpcConfiguration", "VpcConfigurationDescription"),
];

const UPDATE_TO_DESCRIPTION: &[(&str, &str)] = &[
    ("S3Update", "S3DestinationDescription"),
    ("S3BackupUpdate", "S3BackupDescription"),
];

const UPDATE_TO_CONFIG: &[(&str, &str)] = &[
    ("S3Update", "S3Configuration"),
    ("S3BackupUpdate", "S3BackupConfiguration"),
];

/// Secrets out, defaults in: what a description document holds.
fn normalise(kind: Kind, mut m: Map) -> Map {
    for s in SECRETS {
        m.take(s);
    }
    if let Some(Value::Map(mut ep)) = m.take("EndpointConfiguration") {
        ep.take("AccessKey");
        m.put("EndpointConfiguration", Value::Map(ep));
    }
    if let Some(Value::Map(mut vpc)) = m.take("VpcConfigurationDescription") {
        fill(&mut vpc, &[("VpcId", "vpc-00000000000000000".into())]);
        m.put("VpcConfigurationDescription", Value::Map(vpc));
    }
    for nested in ["S3DestinationDescription", "S3BackupDescription"] {
        if let Some(Value::Map(mut s3)) = m.take(nested) {
            s3_defaults(&mut s3);
            m.put(nested, Value::Map(s3));
        }
    }
    match kind {
        Kind::ExtendedS3 => {
            s3_defaults(&mut m);
            fill(&mut m, &[("S3BackupMode", "Disabled".into())]);
        }
        Kind::Redshift => fill(
            &mut m,
            &[
                ("S3BackupMode", "Disabled".into()),
                ("RetryOptions", obj(&[("DurationInSeconds", int(3600))])),
                ("CloudWatchLoggingOptions", logging_off()),
            ],
        ),
        Kind::HttpEndpoint => fill(
            &mut m,
            &[
                ("BufferingHints", buffering(5, 300)),
                (
                    "RequestConfiguration",
                    obj(&[("ContentEncoding", "NONE".into())]),
                ),
                ("RetryOptions", obj(&[("DurationInSeconds", int(300))])),
                ("S3BackupMode", "FailedDataOnly".into()),
                ("CloudWatchLoggingOptions", logging_off()),
            ],
        ),
        Kind::Splunk => fill(
            &mut m,
            &[
                ("HECAcknowledgmentTimeoutInSeconds", int(180)),
                ("RetryOptions", obj(&[("DurationInSeconds", int(3600))])),
                ("S3BackupMode", "FailedEventsOnly".into()),
                ("CloudWatchLoggingOptions", logging_off()),
            ],
        ),
        Kind::Elasticsearch | Kind::Amazonopensearchservice => fill(
            &mut m,
            &[
                ("IndexRotationPeriod", "OneDay".into()),
                ("BufferingHints", buffering(5, 300)),
                ("RetryOptions", obj(&[("DurationInSeconds", int(300))])),
                ("S3BackupMode", "FailedDocumentsOnly".into()),
                ("CloudWatchLoggingOptions", logging_off()),
            ],
        ),
        Kind::AmazonOpenSearchServerless => fill(
            &mut m,
            &[
                ("BufferingHints", buffering(5, 300)),
                ("RetryOptions", obj(&[("DurationInSeconds", int(300))])),
                ("S3BackupMode", "FailedDocumentsOnly".into()),
                ("CloudWatchLoggingOptions", logging_off()),
            ],
        ),
        Kind::Snowflake | Kind::Iceberg => {}
    }
    m
}

/// An HTTP endpoint configuration's (or update's) AccessKey.
pub(crate) fn access_key(config: &Value) -> Option<String> {
    match config {
        Value::Map(m) => match m.get("EndpointConfiguration") {
            Some(Value::Map(ep)) => match ep.get("AccessKey") {
                Some(Value::Str(k)) => Some(k.clone()),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

/// A Redshift configuration's (or update's) Password.
pub(crate) fn password(config: &Value) -> Option<String> {
    match config {
        Value::Map(m) => match m.get("Password") {
            Some(Value::Str(p)) => Some(p.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// A configuration (as the model validated it) as a description document.
pub(crate) fn describe(kind: Kind, config: Value) -> serde_json::Value {
    let mut m = map(config);
    rename(&mut m, CONFIG_TO_DESCRIPTION);
    to_json(&Value::Map(normalise(kind, m)))
}

/// The destination configurations of a CreateDeliveryStream request.
pub(crate) fn configured(i: &mut model::CreateDeliveryStreamInput) -> Vec<(Kind, Value)> {
    let mut out = Vec::new();
    macro_rules! take {
        ($($field:ident => $kind:expr,)*) => {
            $(if let Some(c) = i.$field.take() { out.push(($kind, c.into_value())); })*
        };
    }
    take!(
        s3_destination_configuration => Kind::ExtendedS3,
        extended_s3_destination_configuration => Kind::ExtendedS3,
        redshift_destination_configuration => Kind::Redshift,
        elasticsearch_destination_configuration => Kind::Elasticsearch,
        amazonopensearchservice_destination_configuration => Kind::Amazonopensearchservice,
        splunk_destination_configuration => Kind::Splunk,
        http_endpoint_destination_configuration => Kind::HttpEndpoint,
        amazon_open_search_serverless_destination_configuration => Kind::AmazonOpenSearchServerless,
        snowflake_destination_configuration => Kind::Snowflake,
        iceberg_destination_configuration => Kind::Iceberg,
    );
    out
}

fn updates(i: &mut model::UpdateDestinationInput) -> Vec<(Kind, Value)> {
    let mut out = Vec::new();
    macro_rules! take {
        ($($field:ident => $kind:expr,)*) => {
            $(if let Some(c) = i.$field.take() { out.push(($kind, c.into_value())); })*
        };
    }
    take!(
        s3_destination_update => Kind::ExtendedS3,
        extended_s3_destination_update => Kind::ExtendedS3,
        redshift_destination_update => Kind::Redshift,
        elasticsearch_destination_update => Kind::Elasticsearch,
        amazonopensearchservice_destination_update => Kind::Amazonopensearchservice,
        splunk_destination_update => Kind::Splunk,
        http_endpoint_destination_update => Kind::HttpEndpoint,
        amazon_open_search_serverless_destination_update => Kind::AmazonOpenSearchServerless,
        snowflake_destination_update => Kind::Snowflake,
        iceberg_destination_update => Kind::Iceberg,
    );
    out
}

/// The configuration shape of a destination type.
fn config_shape(kind: Kind) -> &'static Shape {
    match kind {
        Kind::ExtendedS3 => &model::EXTENDED_S3_DESTINATION_CONFIGURATION,
        Kind::Redshift => &model::REDSHIFT_DESTINATION_CONFIGURATION,
        Kind::Elasticsearch => &model::ELASTICSEARCH_DESTINATION_CONFIGURATION,
        Kind::Amazonopensearchservice => &model::AMAZONOPENSEARCHSERVICE_DESTINATION_CONFIGURATION,
        Kind::Splunk => &model::SPLUNK_DESTINATION_CONFIGURATION,
        Kind::HttpEndpoint => &model::HTTP_ENDPOINT_DESTINATION_CONFIGURATION,
        Kind::AmazonOpenSearchServerless => {
            &model::AMAZON_OPEN_SEARCH_SERVERLESS_DESTINATION_CONFIGURATION
        }
        Kind::Snowflake => &model::SNOWFLAKE_DESTINATION_CONFIGURATION,
        Kind::Iceberg => &model::ICEBERG_DESTINATION_CONFIGURATION,
    }
}

/// Merges `update` into `base`: members of the update replace those of the
/// base; structures merge member by member; lists are replaced.
pub(crate) fn merge(base: &mut Map, update: Map) {
    for (k, v) in update.0 {
        match (base.get(&k).cloned(), v) {
            (Some(Value::Map(mut cur)), Value::Map(u)) => {
                merge(&mut cur, u);
                set(base, &k, Value::Map(cur));
            }
            (_, v) => set(base, &k, v),
        }
    }
}

/// The destination `update` makes of `cur`.
pub(crate) fn apply_update(cur: &Destination, kind: Kind, update: Value) -> Result<Destination> {
    let key = access_key(&update);
    let pw = password(&update);
    let mut u = map(update);
    if kind == cur.kind {
        rename(&mut u, UPDATE_TO_DESCRIPTION);
        let mut m = map(from_json(&cur.description));
        merge(&mut m, u);
        return Ok(Destination {
            id: cur.id.clone(),
            kind,
            description: to_json(&Value::Map(normalise(kind, m))),
            access_key: key.or_else(|| cur.access_key.clone()),
            password: pw.or_else(|| cur.password.clone()),
        });
    }
    if cur.kind.is_search() || kind.is_search() {
        return Err(FirehoseError::InvalidArgument(format!(
            "Changing the destination type to or from {} is not supported.",
            if cur.kind.is_search() { cur.kind } else { kind }.prefix()
        )));
    }
    // Another type: the update must be a whole configuration.
    rename(&mut u, UPDATE_TO_CONFIG);
    let config = shape::validate(config_shape(kind), Value::Map(u)).map_err(|e| match e {
        shape::Invalid::Validation(m) | shape::Invalid::Serialization(m) => {
            FirehoseError::InvalidArgument(m)
        }
    })?;
    Ok(Destination {
        id: cur.id.clone(),
        kind,
        description: describe(kind, Value::Map(config)),
        access_key: key,
        password: pw,
    })
}

/// A destination as DescribeDeliveryStream reports it.
pub(crate) fn description(d: &Destination) -> model::DestinationDescription {
    let doc = from_json(&d.description);
    let mut m = Map::new();
    m.put("DestinationId", Value::Str(d.id.clone()));
    if d.kind == Kind::ExtendedS3 {
        m.put("S3DestinationDescription", doc.clone());
    }
    m.put(&format!("{}DestinationDescription", d.kind.prefix()), doc);
    model::DestinationDescription::from_value(Value::Map(m))
}

/// AWS's checks of a destination's settings that the model cannot
/// express: an S3 destination's Prefix, ErrorOutputPrefix, CustomTimeZone
/// and buffer size under dynamic partitioning (a Redshift destination's
/// S3 destinations' too), and the processor parameters of S3, Redshift
/// and HTTP endpoint destinations.
pub(crate) fn check(d: &Destination) -> Result<()> {
    match d.kind {
        // Accepted-but-not-delivered settings are reported by delivery.
        Kind::ExtendedS3 => {
            let _ = crate::s3::Settings::from_description(&d.description)?;
            crate::backup::check(&d.description)?;
        }
        Kind::Redshift => {
            crate::redshift::check(&d.description)?;
            crate::process::Pipeline::from_description(&d.description)?;
        }
        Kind::HttpEndpoint => {
            crate::process::Pipeline::from_description(&d.description)?;
        }
        _ => {}
    }
    Ok(())
}

/// The id of the first destination.
pub(crate) fn destination_id(n: u64) -> String {
    format!("destinationId-{n:012}")
}

/// UpdateDestination.
pub async fn update_destination(
    svc: &Service,
    ctx: &Ctx,
    mut i: model::UpdateDestinationInput,
) -> Result<model::UpdateDestinationOutput> {
    let key: StreamKey = (ctx.region.clone(), i.delivery_stream_name.clone());
    let mut given = updates(&mut i);
    if given.len() != 1 {
        return Err(FirehoseError::InvalidArgument(
            "Exactly one destination update is supported for a Firehose.".into(),
        ));
    }
    let (kind, update) = given.remove(0);
    let account = svc.account().to_owned();
    let now = svc.now_ms();
    svc.update_key(&key, |s| {
        if s.status != crate::state::Status::Active {
            return Err(FirehoseError::ResourceInUse(format!(
                "Firehose {} under account {} is not in ACTIVE state.",
                s.name, account
            )));
        }
        if i.current_delivery_stream_version_id != s.version.to_string() {
            return Err(FirehoseError::ConcurrentModification(format!(
                "Cannot update firehose: {} since the current version id: {} and specified version id: {} do not match",
                s.name, s.version, i.current_delivery_stream_version_id
            )));
        }
        let idx = s
            .destinations
            .iter()
            .position(|d| d.id == i.destination_id)
            .ok_or_else(|| {
                FirehoseError::InvalidArgument(format!(
                    "Destination Id {} not found for Firehose {} under account {}.",
                    i.destination_id, s.name, account
                ))
            })?;
        let next = apply_update(&s.destinations[idx], kind, update)?;
        check(&next)?;
        if next.kind == s.destinations[idx].kind {
            crate::backup::check_update(&s.destinations[idx].description, &next.description)?;
        }
        s.destinations[idx] = next;
        s.version += 1;
        s.updated_ms = Some(now);
        Ok(())
    })
    .await?;
    Ok(model::UpdateDestinationOutput {})
}
