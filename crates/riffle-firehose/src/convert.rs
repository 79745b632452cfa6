//! Record format conversion: JSON records to Parquet or ORC with the
//! columns of an AWS Glue Data Catalog table, as an extended S3
//! destination's DataFormatConversionConfiguration asks.
//!
//! - [`Settings`] reads the configuration from the destination's
//!   description document: the deserializer (OpenX JSON SerDe or Hive JSON
//!   SerDe, with their options), the serializer (Parquet or ORC, with
//!   theirs) and the table ([`TableRef`]).
//! - The table is looked up at each delivery through the [`Catalog`] seam
//!   (the server wires it to its Glue service in process). A missing table
//!   fails the delivery with `DataFormatConversion.EntityNotFound`: records
//!   stay buffered until the table exists, as AWS retries them.
//! - [`HiveType`] parses the table's column types; [`Converter`] turns each
//!   record into typed [`Cell`]s (a record that is not JSON or does not fit
//!   the columns fails alone, with its reason) and writes the good ones as
//!   one Parquet or ORC file.
//! - Failed records go to the S3 error output under
//!   `format-conversion-failed`, one JSON document a line
//!   ([`crate::errors`]).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, Int8Builder, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, ListArray, MapArray, RecordBatch, StructArray};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
use bytes::Bytes;
use serde_json::Value as Json;

use crate::deliver::{Batch, DeliveryError};
use crate::error::FirehoseError;
use crate::failed::{lines, FailedRecord, UPPER};
use crate::s3::S3Destination;

/// The error output type of records that failed conversion.
pub const ERROR_OUTPUT_TYPE: &str = "format-conversion-failed";

/// A Glue table as the converter needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogTable {
    pub catalog_id: String,
    pub database: String,
    pub name: String,
    pub version_id: String,
    /// (column name, Hive type), in table order.
    pub columns: Vec<(String, String)>,
}

/// Why a table could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// The database, table or version does not exist.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Other(String),
}

/// Where the converter reads tables: the server's Glue Data Catalog, in
/// process.
pub trait Catalog: Send + Sync {
    /// The table `t` names in `region` (the stream's, unless `t` names one).
    fn table(&self, region: &str, t: &TableRef) -> Result<CatalogTable, CatalogError>;
}

/// A [`Catalog`] in [`crate::Config`].
#[derive(Clone)]
pub struct CatalogRef(pub Arc<dyn Catalog>);

impl std::fmt::Debug for CatalogRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CatalogRef")
    }
}

/// SchemaConfiguration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableRef {
    pub catalog_id: Option<String>,
    pub database: String,
    pub table: String,
    pub region: Option<String>,
    /// A VersionId, or `None` for the latest (`LATEST`).
    pub version_id: Option<String>,
}

/// The deserializer and its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deserializer {
    OpenX {
        convert_dots: bool,
        case_insensitive: bool,
        /// Column name (lower case) -> JSON key.
        mappings: HashMap<String, String>,
    },
    Hive {
        /// Joda-Time patterns, or `millis`.
        timestamp_formats: Vec<String>,
    },
}

/// Parquet compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParquetCompression {
    Uncompressed,
    Gzip,
    Snappy,
}

/// ParquetSerDe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParquetOptions {
    pub block_size_bytes: i64,
    pub page_size_bytes: i64,
    pub compression: ParquetCompression,
    pub enable_dictionary: bool,
    pub max_padding_bytes: i64,
    pub writer_v2: bool,
}

/// ORC compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrcCompression {
    None,
    Zlib,
    Snappy,
}

/// OrcSerDe.
#[derive(Debug, Clone, PartialEq)]
pub struct OrcOptions {
    pub stripe_size_bytes: i64,
    pub block_size_bytes: i64,
    pub row_index_stride: i64,
    pub enable_padding: bool,
    pub padding_tolerance: f64,
    pub compression: OrcCompression,
    pub bloom_filter_columns: Vec<String>,
    pub bloom_filter_fpp: f64,
    pub dictionary_key_threshold: f64,
    pub format_version: String,
}

/// The serializer and its options.
#[derive(Debug, Clone, PartialEq)]
pub enum Serializer {
    Parquet(ParquetOptions),
    Orc(OrcOptions),
}

/// DataFormatConversionConfiguration, when enabled.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub deserializer: Deserializer,
    pub serializer: Serializer,
    pub table: TableRef,
}

fn s<'a>(doc: &'a Json, ptr: &str) -> Option<&'a str> {
    doc.pointer(ptr).and_then(Json::as_str)
}

fn i(doc: &Json, ptr: &str) -> Option<i64> {
    doc.pointer(ptr).and_then(Json::as_i64)
}

fn b(doc: &Json, ptr: &str) -> Option<bool> {
    doc.pointer(ptr).and_then(Json::as_bool)
}

fn f(doc: &Json, ptr: &str) -> Option<f64> {
    doc.pointer(ptr).and_then(Json::as_f64)
}

/// AWS's text when S3 compression is set together with conversion.
pub const COMPRESSION_WITH_CONVERSION: &str = "When data format conversion is enabled, CompressionFormat must be UNCOMPRESSED. The serializer's own compression applies instead.";

impl Settings {
    /// Reads an extended S3 description document: `Ok(None)` when
    /// conversion is off; `Err(InvalidArgument)` for configurations AWS
    /// refuses at CreateDeliveryStream and UpdateDestination.
    pub fn from_description(doc: &Json) -> Result<Option<Settings>, FirehoseError> {
        let Some(c) = doc.get("DataFormatConversionConfiguration") else {
            return Ok(None);
        };
        if !b(c, "/Enabled").unwrap_or(true) {
            return Ok(None);
        }
        let compression = s(doc, "/CompressionFormat").unwrap_or("UNCOMPRESSED");
        if compression != "UNCOMPRESSED" {
            return Err(FirehoseError::InvalidArgument(
                COMPRESSION_WITH_CONVERSION.into(),
            ));
        }
        let missing = |what: &str| {
            FirehoseError::InvalidArgument(format!(
                "{what} is required when DataFormatConversionConfiguration is enabled."
            ))
        };
        let input = c
            .pointer("/InputFormatConfiguration/Deserializer")
            .ok_or_else(|| missing("InputFormatConfiguration"))?;
        let deserializer = if let Some(h) = input.get("HiveJsonSerDe") {
            Deserializer::Hive {
                timestamp_formats: h
                    .get("TimestampFormats")
                    .and_then(Json::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Json::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        } else if let Some(o) = input.get("OpenXJsonSerDe") {
            Deserializer::OpenX {
                convert_dots: b(o, "/ConvertDotsInJsonKeysToUnderscores").unwrap_or(false),
                case_insensitive: b(o, "/CaseInsensitive").unwrap_or(true),
                mappings: o
                    .get("ColumnToJsonKeyMappings")
                    .and_then(Json::as_object)
                    .map(|m| {
                        m.iter()
                            .filter_map(|(k, v)| Some((k.to_lowercase(), v.as_str()?.to_owned())))
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        } else {
            return Err(FirehoseError::InvalidArgument(
                "Exactly one of OpenXJsonSerDe or HiveJsonSerDe must be set in the Deserializer."
                    .into(),
            ));
        };
        let output = c
            .pointer("/OutputFormatConfiguration/Serializer")
            .ok_or_else(|| missing("OutputFormatConfiguration"))?;
        let serializer = if let Some(p) = output.get("ParquetSerDe") {
            Serializer::Parquet(ParquetOptions {
                block_size_bytes: i(p, "/BlockSizeBytes").unwrap_or(256 * 1024 * 1024),
                page_size_bytes: i(p, "/PageSizeBytes").unwrap_or(1024 * 1024),
                compression: match s(p, "/Compression").unwrap_or("SNAPPY") {
                    "UNCOMPRESSED" => ParquetCompression::Uncompressed,
                    "GZIP" => ParquetCompression::Gzip,
                    _ => ParquetCompression::Snappy,
                },
                enable_dictionary: b(p, "/EnableDictionaryCompression").unwrap_or(false),
                max_padding_bytes: i(p, "/MaxPaddingBytes").unwrap_or(0),
                writer_v2: s(p, "/WriterVersion") == Some("V2"),
            })
        } else if let Some(o) = output.get("OrcSerDe") {
            Serializer::Orc(OrcOptions {
                stripe_size_bytes: i(o, "/StripeSizeBytes").unwrap_or(64 * 1024 * 1024),
                block_size_bytes: i(o, "/BlockSizeBytes").unwrap_or(256 * 1024 * 1024),
                row_index_stride: i(o, "/RowIndexStride").unwrap_or(10_000),
                enable_padding: b(o, "/EnablePadding").unwrap_or(false),
                padding_tolerance: f(o, "/PaddingTolerance").unwrap_or(0.05),
                compression: match s(o, "/Compression").unwrap_or("SNAPPY") {
                    "NONE" => OrcCompression::None,
                    "ZLIB" => OrcCompression::Zlib,
                    _ => OrcCompression::Snappy,
                },
                bloom_filter_columns: o
                    .get("BloomFilterColumns")
                    .and_then(Json::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Json::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
                bloom_filter_fpp: f(o, "/BloomFilterFalsePositiveProbability").unwrap_or(0.05),
                dictionary_key_threshold: f(o, "/DictionaryKeyThreshold").unwrap_or(0.0),
                format_version: s(o, "/FormatVersion").unwrap_or("V0_12").to_owned(),
            })
        } else {
            return Err(FirehoseError::InvalidArgument(
                "Exactly one of ParquetSerDe or OrcSerDe must be set in the Serializer.".into(),
            ));
        };
        let schema = c
            .get("SchemaConfiguration")
            .ok_or_else(|| missing("SchemaConfiguration"))?;
        let table = TableRef {
            catalog_id: s(schema, "/CatalogId").map(str::to_owned),
            database: s(schema, "/DatabaseName").unwrap_or("").to_owned(),
            table: s(schema, "/TableName").unwrap_or("").to_owned(),
            region: s(schema, "/Region").map(str::to_owned),
            version_id: s(schema, "/VersionId")
                .filter(|v| *v != "LATEST")
                .map(str::to_owned),
        };
        Ok(Some(Settings {
            deserializer,
            serializer,
            table,
        }))
    }

    /// The extension objects get when FileExtension is not set.
    pub fn extension(&self) -> &'static str {
        match self.serializer {
            Serializer::Parquet(_) => ".parquet",
            Serializer::Orc(_) => ".orc",
        }
    }
}

/// A Hive column type, as Glue tables declare them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HiveType {
    String,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Float,
    Double,
    Boolean,
    Decimal(u8, i8),
    Timestamp,
    Date,
    Binary,
    Array(Box<HiveType>),
    Map(Box<HiveType>, Box<HiveType>),
    Struct(Vec<(String, HiveType)>),
}

struct TypeParser<'a> {
    src: &'a str,
    at: usize,
    /// How deeply types nest here (bounded: the parser recurses).
    depth: usize,
}

/// The deepest a column type may nest.
const MAX_TYPE_DEPTH: usize = 64;

impl TypeParser<'_> {
    fn ws(&mut self) {
        while let Some(c) = self.src[self.at..]
            .chars()
            .next()
            .filter(|c| c.is_whitespace())
        {
            self.at += c.len_utf8();
        }
    }

    fn eat(&mut self, c: char) -> Result<(), String> {
        self.ws();
        if self.src[self.at..].starts_with(c) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!(
                "Error: '{c}' expected at position {} of '{}'",
                self.at, self.src
            ))
        }
    }

    fn peek(&mut self, c: char) -> bool {
        self.ws();
        self.src[self.at..].starts_with(c)
    }

    fn word(&mut self) -> String {
        self.ws();
        let rest = &self.src[self.at..];
        let n = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '-'))
            .unwrap_or(rest.len());
        self.at += n;
        rest[..n].to_owned()
    }

    fn number(&mut self) -> Result<i64, String> {
        let w = self.word();
        w.parse()
            .map_err(|_| format!("Error: number expected in '{}'", self.src))
    }

    fn ty(&mut self) -> Result<HiveType, String> {
        self.depth += 1;
        if self.depth > MAX_TYPE_DEPTH {
            return Err(format!(
                "the type nests more than {MAX_TYPE_DEPTH} levels deep"
            ));
        }
        let t = self.ty_inner();
        self.depth -= 1;
        t
    }

    fn ty_inner(&mut self) -> Result<HiveType, String> {
        let name = self.word().to_ascii_lowercase();
        Ok(match name.as_str() {
            "string" => HiveType::String,
            "char" | "varchar" => {
                if self.peek('(') {
                    self.eat('(')?;
                    self.number()?;
                    self.eat(')')?;
                }
                HiveType::String
            }
            "tinyint" => HiveType::TinyInt,
            "smallint" => HiveType::SmallInt,
            "int" | "integer" => HiveType::Int,
            "bigint" => HiveType::BigInt,
            "float" => HiveType::Float,
            "double" => HiveType::Double,
            "boolean" => HiveType::Boolean,
            "timestamp" => HiveType::Timestamp,
            "date" => HiveType::Date,
            "binary" => HiveType::Binary,
            "decimal" => {
                let (mut p, mut sc) = (10, 0);
                if self.peek('(') {
                    self.eat('(')?;
                    p = self.number()?;
                    if self.peek(',') {
                        self.eat(',')?;
                        sc = self.number()?;
                    }
                    self.eat(')')?;
                }
                if !(1..=38).contains(&p) || sc < 0 || sc > p {
                    return Err(format!("Invalid decimal type in '{}'", self.src));
                }
                HiveType::Decimal(p as u8, sc as i8)
            }
            "array" => {
                self.eat('<')?;
                let t = self.ty()?;
                self.eat('>')?;
                HiveType::Array(Box::new(t))
            }
            "map" => {
                self.eat('<')?;
                let k = self.ty()?;
                self.eat(',')?;
                let v = self.ty()?;
                self.eat('>')?;
                HiveType::Map(Box::new(k), Box::new(v))
            }
            "struct" => {
                self.eat('<')?;
                let mut fields = Vec::new();
                loop {
                    let n = self.word();
                    if n.is_empty() {
                        return Err(format!("Error: field name expected in '{}'", self.src));
                    }
                    self.eat(':')?;
                    fields.push((n.to_lowercase(), self.ty()?));
                    if self.peek(',') {
                        self.eat(',')?;
                    } else {
                        break;
                    }
                }
                self.eat('>')?;
                HiveType::Struct(fields)
            }
            other => return Err(format!("Unsupported type '{other}' in '{}'", self.src)),
        })
    }
}

impl HiveType {
    /// Parses a Hive type string (`array<struct<a:int,b:string>>`).
    pub fn parse(src: &str) -> Result<HiveType, String> {
        let mut p = TypeParser {
            src,
            at: 0,
            depth: 0,
        };
        let t = p.ty()?;
        p.ws();
        if p.at != src.len() {
            return Err(format!("Error: unexpected text at the end of '{src}'"));
        }
        Ok(t)
    }

    /// The Arrow type the column is written as.
    pub fn arrow(&self) -> DataType {
        match self {
            HiveType::String => DataType::Utf8,
            HiveType::TinyInt => DataType::Int8,
            HiveType::SmallInt => DataType::Int16,
            HiveType::Int => DataType::Int32,
            HiveType::BigInt => DataType::Int64,
            HiveType::Float => DataType::Float32,
            HiveType::Double => DataType::Float64,
            HiveType::Boolean => DataType::Boolean,
            HiveType::Decimal(p, s) => DataType::Decimal128(*p, *s),
            HiveType::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
            HiveType::Date => DataType::Date32,
            HiveType::Binary => DataType::Binary,
            HiveType::Array(t) => DataType::List(Arc::new(Field::new("element", t.arrow(), true))),
            HiveType::Map(k, v) => DataType::Map(
                Arc::new(Field::new(
                    "key_value",
                    DataType::Struct(map_fields(k, v)),
                    false,
                )),
                false,
            ),
            HiveType::Struct(fields) => DataType::Struct(
                fields
                    .iter()
                    .map(|(n, t)| Field::new(n, t.arrow(), true))
                    .collect(),
            ),
        }
    }
}

fn map_fields(k: &HiveType, v: &HiveType) -> Fields {
    Fields::from(vec![
        Field::new("key", k.arrow(), false),
        Field::new("value", v.arrow(), true),
    ])
}

/// One typed value of a record.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Decimal(i128),
    /// Milliseconds since the epoch.
    Timestamp(i64),
    /// Days since the epoch.
    Date(i32),
    List(Vec<Cell>),
    Map(Vec<(Cell, Cell)>),
    Struct(Vec<Cell>),
}

/// A record that does not fit: AWS's error code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub code: &'static str,
    pub message: String,
}

fn malformed(message: String) -> RecordError {
    RecordError {
        code: "DataFormatConversion.MalformedData",
        message,
    }
}

/// Parses records with one table's columns and writes them.
pub struct Converter {
    columns: Vec<(String, HiveType)>,
    deserializer: Deserializer,
}

/// One object's conversion.
pub struct Converted {
    /// The Parquet or ORC file; `None` when no record converted.
    pub body: Option<Vec<u8>>,
    /// Records converted.
    pub rows: usize,
    /// (index in the batch, why) for each record that failed.
    pub failed: Vec<(usize, RecordError)>,
}

impl Converter {
    /// A converter for `table`'s columns; `Err` with AWS's code when the
    /// table cannot be used.
    pub fn new(table: &CatalogTable, deserializer: Deserializer) -> Result<Converter, RecordError> {
        if table.columns.is_empty() {
            return Err(RecordError {
                code: "DataFormatConversion.NonExistentColumns",
                message: format!(
                    "The table {} in database {} has no columns.",
                    table.name, table.database
                ),
            });
        }
        let columns = table
            .columns
            .iter()
            .map(|(n, t)| {
                HiveType::parse(t)
                    .map(|t| (n.to_lowercase(), t))
                    .map_err(|m| RecordError {
                        code: "DataFormatConversion.InvalidSchema",
                        message: format!("The schema is invalid. {m}"),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Converter {
            columns,
            deserializer,
        })
    }

    pub fn schema(&self) -> Schema {
        Schema::new(
            self.columns
                .iter()
                .map(|(n, t)| Field::new(n, t.arrow(), true))
                .collect::<Vec<_>>(),
        )
    }

    /// The JSON key that feeds `column` in `obj`.
    fn lookup<'a>(&self, obj: &'a serde_json::Map<String, Json>, column: &str) -> Option<&'a Json> {
        match &self.deserializer {
            Deserializer::OpenX {
                convert_dots,
                case_insensitive,
                mappings,
            } => {
                let key = mappings.get(column).map_or(column, String::as_str);
                let norm = |k: &str| {
                    let k = if *convert_dots {
                        k.replace('.', "_")
                    } else {
                        k.to_owned()
                    };
                    if *case_insensitive {
                        k.to_lowercase()
                    } else {
                        k
                    }
                };
                if let Some(v) = obj.get(key) {
                    if !*convert_dots || !key.contains('.') {
                        return Some(v);
                    }
                }
                let want = if *case_insensitive {
                    key.to_lowercase()
                } else {
                    key.to_owned()
                };
                obj.iter().find(|(k, _)| norm(k) == want).map(|(_, v)| v)
            }
            // The Hive SerDe matches names without regard to case.
            Deserializer::Hive { .. } => obj.get(column).or_else(|| {
                obj.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(column))
                    .map(|(_, v)| v)
            }),
        }
    }

    /// One record as a row of cells.
    pub fn row(&self, data: &[u8]) -> Result<Vec<Cell>, RecordError> {
        let doc: Json = serde_json::from_slice(data)
            .map_err(|e| malformed(format!("The record is not valid JSON: {e}")))?;
        let Json::Object(obj) = doc else {
            return Err(malformed("The record is not a JSON object.".into()));
        };
        self.columns
            .iter()
            .map(|(name, ty)| {
                self.cell(ty, self.lookup(&obj, name))
                    .map_err(|m| malformed(format!("Column '{name}': {m}")))
            })
            .collect()
    }

    fn cell(&self, ty: &HiveType, v: Option<&Json>) -> Result<Cell, String> {
        let v = match v {
            None | Some(Json::Null) => return Ok(Cell::Null),
            Some(v) => v,
        };
        let mismatch = || format!("cannot read {} as {ty:?}", short(v));
        Ok(match ty {
            HiveType::String => Cell::Str(match v {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            }),
            HiveType::TinyInt | HiveType::SmallInt | HiveType::Int | HiveType::BigInt => {
                let n = match v {
                    Json::Number(n) => n.as_i64().ok_or_else(mismatch)?,
                    Json::String(s) => s.trim().parse::<i64>().map_err(|_| mismatch())?,
                    _ => return Err(mismatch()),
                };
                let (lo, hi) = match ty {
                    HiveType::TinyInt => (i8::MIN as i64, i8::MAX as i64),
                    HiveType::SmallInt => (i16::MIN as i64, i16::MAX as i64),
                    HiveType::Int => (i32::MIN as i64, i32::MAX as i64),
                    _ => (i64::MIN, i64::MAX),
                };
                if n < lo || n > hi {
                    return Err(format!("{n} is out of range for {ty:?}"));
                }
                Cell::Int(n)
            }
            HiveType::Float | HiveType::Double => Cell::Float(match v {
                Json::Number(n) => n.as_f64().ok_or_else(mismatch)?,
                Json::String(s) => s.trim().parse::<f64>().map_err(|_| mismatch())?,
                _ => return Err(mismatch()),
            }),
            HiveType::Boolean => Cell::Bool(match v {
                Json::Bool(b) => *b,
                Json::String(s) if s.eq_ignore_ascii_case("true") => true,
                Json::String(s) if s.eq_ignore_ascii_case("false") => false,
                _ => return Err(mismatch()),
            }),
            HiveType::Decimal(p, s) => {
                let text = match v {
                    Json::Number(n) => n.to_string(),
                    Json::String(t) => t.trim().to_owned(),
                    _ => return Err(mismatch()),
                };
                Cell::Decimal(decimal(&text, *p, *s).ok_or_else(mismatch)?)
            }
            HiveType::Timestamp => Cell::Timestamp(self.timestamp(v).ok_or_else(mismatch)?),
            HiveType::Date => {
                let Json::String(t) = v else {
                    return Err(mismatch());
                };
                let d: jiff::civil::Date = t.trim().parse().map_err(|_| mismatch())?;
                let days = d
                    .since(jiff::civil::date(1970, 1, 1))
                    .map_err(|_| mismatch())?
                    .get_days();
                Cell::Date(days)
            }
            HiveType::Binary => match v {
                Json::String(t) => Cell::Bytes(t.as_bytes().to_vec()),
                _ => return Err(mismatch()),
            },
            HiveType::Array(t) => match v {
                Json::Array(items) => Cell::List(
                    items
                        .iter()
                        .map(|x| self.cell(t, Some(x)))
                        .collect::<Result<_, _>>()?,
                ),
                // A lone value reads as a one-element array.
                other => Cell::List(vec![self.cell(t, Some(other))?]),
            },
            HiveType::Map(k, vt) => match v {
                Json::Object(m) => Cell::Map(
                    m.iter()
                        .map(|(key, val)| {
                            let key = match self.cell(k, Some(&Json::String(key.clone())))? {
                                Cell::Null => return Err("a map key is null".to_string()),
                                c => c,
                            };
                            Ok((key, self.cell(vt, Some(val))?))
                        })
                        .collect::<Result<_, String>>()?,
                ),
                _ => return Err(mismatch()),
            },
            HiveType::Struct(fields) => match v {
                Json::Object(m) => Cell::Struct(
                    fields
                        .iter()
                        .map(|(n, t)| self.cell(t, self.lookup(m, n)))
                        .collect::<Result<_, _>>()?,
                ),
                _ => return Err(mismatch()),
            },
        })
    }

    /// A timestamp in milliseconds: the Hive SerDe's TimestampFormats
    /// first (Joda-Time patterns, `millis` for epoch milliseconds), then
    /// the defaults both SerDes read: `yyyy-MM-dd HH:mm:ss[.fffffffff]`
    /// (java.sql.Timestamp), ISO 8601 with `T` and an optional offset, and
    /// numbers as epoch seconds.
    fn timestamp(&self, v: &Json) -> Option<i64> {
        if let Deserializer::Hive { timestamp_formats } = &self.deserializer {
            for fmt in timestamp_formats {
                if fmt == "millis" {
                    let ms = match v {
                        Json::Number(n) => n.as_i64(),
                        Json::String(s) => s.trim().parse().ok(),
                        _ => None,
                    };
                    if ms.is_some() {
                        return ms;
                    }
                    continue;
                }
                if let Some(ms) = v.as_str().and_then(|s| joda(fmt, s)) {
                    return Some(ms);
                }
            }
        }
        match v {
            Json::Number(n) => n.as_f64().map(|secs| (secs * 1000.0).round() as i64),
            Json::String(s) => default_timestamp(s.trim()),
            _ => None,
        }
    }

    /// Converts a batch: the good records into one file, the rest
    /// reported.
    pub fn convert(&self, settings: &Settings, records: &[Bytes]) -> std::io::Result<Converted> {
        let mut rows = Vec::with_capacity(records.len());
        let mut failed = Vec::new();
        for (n, r) in records.iter().enumerate() {
            match self.row(r) {
                Ok(row) => rows.push(row),
                Err(e) => failed.push((n, e)),
            }
        }
        if rows.is_empty() {
            return Ok(Converted {
                body: None,
                rows: 0,
                failed,
            });
        }
        let batch = self.batch(&rows).map_err(std::io::Error::other)?;
        let body = match &settings.serializer {
            Serializer::Parquet(o) => write_parquet(&batch, o)?,
            Serializer::Orc(o) => write_orc(&batch, o)?,
        };
        Ok(Converted {
            body: Some(body),
            rows: rows.len(),
            failed,
        })
    }

    fn batch(&self, rows: &[Vec<Cell>]) -> Result<RecordBatch, arrow_schema::ArrowError> {
        let arrays = self
            .columns
            .iter()
            .enumerate()
            .map(|(c, (_, t))| {
                let cells: Vec<&Cell> = rows.iter().map(|r| &r[c]).collect();
                build(t, &cells)
            })
            .collect::<Result<Vec<_>, _>>()?;
        RecordBatch::try_new(Arc::new(self.schema()), arrays)
    }
}

fn short(v: &Json) -> String {
    let t = v.to_string();
    if t.chars().count() > 64 {
        format!("{}...", t.chars().take(64).collect::<String>())
    } else {
        t
    }
}

/// A decimal literal as an unscaled integer with `scale` digits after the
/// point (rounded half up), if it fits `precision`.
fn decimal(text: &str, precision: u8, scale: i8) -> Option<i128> {
    let (neg, t) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mant, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], t[i + 1..].parse::<i32>().ok()?),
        None => (t, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let digits: String = format!("{int}{frac}");
    // value = digits * 10^(exp - frac.len()); want value * 10^scale.
    let shift = i64::from(exp) - frac.len() as i64 + i64::from(scale);
    if shift > 38 {
        // Past i128 unless the digits are all zero.
        return digits.chars().all(|c| c == '0').then_some(0);
    }
    if -shift > digits.len() as i64 + 1 {
        // Rounds to zero.
        return Some(0);
    }
    let mut n: i128 = 0;
    for c in digits.chars() {
        n = n.checked_mul(10)?.checked_add((c as u8 - b'0') as i128)?;
    }
    if shift >= 0 {
        for _ in 0..shift {
            n = n.checked_mul(10)?;
        }
    } else {
        let mut round = false;
        for _ in 0..(-shift) {
            round = n % 10 >= 5;
            n /= 10;
        }
        if round {
            n += 1;
        }
    }
    if n >= 10i128.pow(precision as u32) {
        return None;
    }
    Some(if neg { -n } else { n })
}

fn default_timestamp(s: &str) -> Option<i64> {
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Some(ts.as_millisecond());
    }
    // java.sql.Timestamp.valueOf and ISO 8601 without an offset, in UTC.
    let dt: jiff::civil::DateTime = s.replacen(' ', "T", 1).parse().ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp().as_millisecond())
}

/// Parses `s` with a Joda-Time pattern (years, months, days, hours,
/// minutes, seconds, fractions, offsets and quoted literals), in UTC
/// unless the pattern reads an offset.
fn joda(pattern: &str, s: &str) -> Option<i64> {
    let mut out = String::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        match c {
            '\'' => {
                let end = chars[i + 1..].iter().position(|&x| x == '\'')? + i + 1;
                let lit: String = chars[i + 1..end].iter().collect();
                out.push_str(&lit.replace('%', "%%"));
                i = end + 1;
                continue;
            }
            'y' | 'Y' | 'u' => out.push_str("%Y"),
            'M' if n >= 3 => out.push_str("%b"),
            'M' => out.push_str("%m"),
            'd' => out.push_str("%d"),
            'H' => out.push_str("%H"),
            'h' => out.push_str("%I"),
            'a' => out.push_str("%p"),
            'm' => out.push_str("%M"),
            's' => out.push_str("%S"),
            'S' => out.push_str("%f"),
            'Z' if n >= 2 => out.push_str("%:z"),
            'Z' | 'X' => out.push_str("%z"),
            '%' => out.push_str("%%"),
            other => {
                for _ in 0..n {
                    out.push(other);
                }
            }
        }
        i += n;
    }
    if let Ok(z) = jiff::fmt::strtime::parse(&out, s).and_then(|t| t.to_timestamp()) {
        return Some(z.as_millisecond());
    }
    let dt = jiff::fmt::strtime::parse(&out, s)
        .ok()?
        .to_datetime()
        .ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp().as_millisecond())
}

fn nulls(cells: &[&Cell]) -> Option<NullBuffer> {
    cells.iter().any(|c| matches!(c, Cell::Null)).then(|| {
        NullBuffer::from(
            cells
                .iter()
                .map(|c| !matches!(c, Cell::Null))
                .collect::<Vec<_>>(),
        )
    })
}

/// One column's array from its cells (already checked against `ty`).
fn build(ty: &HiveType, cells: &[&Cell]) -> Result<ArrayRef, arrow_schema::ArrowError> {
    macro_rules! prim {
        ($builder:ty, $pat:pat => $v:expr) => {{
            let mut b = <$builder>::with_capacity(cells.len());
            for c in cells {
                match c {
                    $pat => b.append_value($v),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    Ok(match ty {
        HiveType::String => {
            let mut b = StringBuilder::new();
            for c in cells {
                match c {
                    Cell::Str(s) => b.append_value(s),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        HiveType::TinyInt => prim!(Int8Builder, Cell::Int(n) => *n as i8),
        HiveType::SmallInt => prim!(Int16Builder, Cell::Int(n) => *n as i16),
        HiveType::Int => prim!(Int32Builder, Cell::Int(n) => *n as i32),
        HiveType::BigInt => prim!(Int64Builder, Cell::Int(n) => *n),
        HiveType::Float => prim!(Float32Builder, Cell::Float(x) => *x as f32),
        HiveType::Double => prim!(Float64Builder, Cell::Float(x) => *x),
        HiveType::Boolean => prim!(BooleanBuilder, Cell::Bool(x) => *x),
        HiveType::Timestamp => prim!(TimestampMillisecondBuilder, Cell::Timestamp(x) => *x),
        HiveType::Date => prim!(Date32Builder, Cell::Date(x) => *x),
        HiveType::Decimal(p, s) => {
            let mut b = Decimal128Builder::with_capacity(cells.len());
            for c in cells {
                match c {
                    Cell::Decimal(x) => b.append_value(*x),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish().with_precision_and_scale(*p, *s)?)
        }
        HiveType::Binary => {
            let mut b = BinaryBuilder::new();
            for c in cells {
                match c {
                    Cell::Bytes(x) => b.append_value(x),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        HiveType::Array(t) => {
            let mut lens = Vec::with_capacity(cells.len());
            let mut items: Vec<&Cell> = Vec::new();
            for c in cells {
                match c {
                    Cell::List(xs) => {
                        lens.push(xs.len());
                        items.extend(xs.iter());
                    }
                    _ => lens.push(0),
                }
            }
            let values = build(t, &items)?;
            Arc::new(ListArray::try_new(
                Arc::new(Field::new("element", t.arrow(), true)),
                OffsetBuffer::from_lengths(lens),
                values,
                nulls(cells),
            )?)
        }
        HiveType::Map(k, v) => {
            let mut lens = Vec::with_capacity(cells.len());
            let (mut keys, mut vals): (Vec<&Cell>, Vec<&Cell>) = (Vec::new(), Vec::new());
            for c in cells {
                match c {
                    Cell::Map(kvs) => {
                        lens.push(kvs.len());
                        for (a, b) in kvs {
                            keys.push(a);
                            vals.push(b);
                        }
                    }
                    _ => lens.push(0),
                }
            }
            let entries = StructArray::try_new(
                map_fields(k, v),
                vec![build(k, &keys)?, build(v, &vals)?],
                None,
            )?;
            Arc::new(MapArray::try_new(
                Arc::new(Field::new(
                    "key_value",
                    DataType::Struct(map_fields(k, v)),
                    false,
                )),
                OffsetBuffer::from_lengths(lens),
                entries,
                nulls(cells),
                false,
            )?)
        }
        HiveType::Struct(fields) => {
            let children = fields
                .iter()
                .enumerate()
                .map(|(i, (_, t))| {
                    let col: Vec<&Cell> = cells
                        .iter()
                        .map(|c| match c {
                            Cell::Struct(xs) => &xs[i],
                            _ => &Cell::Null,
                        })
                        .collect();
                    build(t, &col)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let fields: Fields = fields
                .iter()
                .map(|(n, t)| Field::new(n, t.arrow(), true))
                .collect();
            Arc::new(StructArray::try_new(fields, children, nulls(cells))?)
        }
    })
}

fn write_parquet(batch: &RecordBatch, o: &ParquetOptions) -> std::io::Result<Vec<u8>> {
    use parquet::basic::{Compression, GzipLevel};
    use parquet::file::properties::{WriterProperties, WriterVersion};
    let props = WriterProperties::builder()
        .set_compression(match o.compression {
            ParquetCompression::Uncompressed => Compression::UNCOMPRESSED,
            ParquetCompression::Gzip => Compression::GZIP(GzipLevel::default()),
            ParquetCompression::Snappy => Compression::SNAPPY,
        })
        .set_dictionary_enabled(o.enable_dictionary)
        .set_data_page_size_limit(o.page_size_bytes.max(64 * 1024) as usize)
        .set_writer_version(if o.writer_v2 {
            WriterVersion::PARQUET_2_0
        } else {
            WriterVersion::PARQUET_1_0
        })
        .build();
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), Some(props))
        .map_err(std::io::Error::other)?;
    // BlockSizeBytes is the row group size: a row group is closed once the
    // rows buffered for it reach it (checked every ROWS_PER_CHECK rows).
    const ROWS_PER_CHECK: usize = 1024;
    let block = o.block_size_bytes.max(1) as usize;
    let mut at = 0;
    while at < batch.num_rows() {
        let n = ROWS_PER_CHECK.min(batch.num_rows() - at);
        w.write(&batch.slice(at, n))
            .map_err(std::io::Error::other)?;
        at += n;
        if w.in_progress_size() >= block {
            w.flush().map_err(std::io::Error::other)?;
        }
    }
    w.close().map_err(std::io::Error::other)?;
    Ok(out)
}

fn write_orc(batch: &RecordBatch, o: &OrcOptions) -> std::io::Result<Vec<u8>> {
    crate::orc::write(batch, &orc_options(o))
}

/// How the ORC writer honours OrcSerDe: Compression, StripeSizeBytes (at
/// least 1 MiB), RowIndexStride, BloomFilterColumns with
/// BloomFilterFalsePositiveProbability, FormatVersion, and EnablePadding
/// with PaddingTolerance against BlockSizeBytes.
fn orc_options(o: &OrcOptions) -> crate::orc::Options {
    crate::orc::Options {
        compression: match o.compression {
            OrcCompression::None => crate::orc::Compression::None,
            OrcCompression::Zlib => crate::orc::Compression::Zlib,
            OrcCompression::Snappy => crate::orc::Compression::Snappy,
        },
        stripe_size: o.stripe_size_bytes.max(1024 * 1024) as usize,
        block_size: o.block_size_bytes.max(1) as u64,
        padding_tolerance: o.enable_padding.then_some(o.padding_tolerance),
        row_index_stride: o.row_index_stride.clamp(0, i64::from(u32::MAX)) as u32,
        bloom_filter_columns: o
            .bloom_filter_columns
            .iter()
            .map(|c| c.to_lowercase())
            .collect(),
        bloom_filter_fpp: o.bloom_filter_fpp,
        version: if o.format_version == "V0_11" {
            [0, 11]
        } else {
            [0, 12]
        },
        ..crate::orc::Options::default()
    }
}

/// What conversion needs of the service besides its settings.
#[derive(Clone)]
pub struct Context {
    pub catalog: Option<CatalogRef>,
    /// The delivery stream's region: SchemaConfiguration's default.
    pub region: String,
    pub clock: Arc<dyn riffle_core::Clock>,
}

fn fail(code: &str, message: impl Into<String>) -> DeliveryError {
    DeliveryError {
        code: code.into(),
        message: message.into(),
    }
}

/// Converts one batch for the S3 destination `dest`: records that do not
/// convert are stored under the `format-conversion-failed` error prefix;
/// the rest become the object's body (`None` when no record converted).
/// A table that cannot be read fails the whole delivery, so the records
/// stay buffered and are retried.
pub async fn run(
    dest: &S3Destination,
    settings: &Settings,
    batch: &Batch,
) -> Result<Option<Vec<u8>>, DeliveryError> {
    let ctx = &dest.convert;
    let catalog = ctx.catalog.as_ref().ok_or_else(|| {
        fail(
            "DataFormatConversion.NotConfigured",
            "This server has no Glue Data Catalog to read the table from; records stay buffered.",
        )
    })?;
    let t = &settings.table;
    let region = t.region.as_deref().unwrap_or(&ctx.region);
    let table = catalog.0.table(region, t).map_err(|e| match e {
        CatalogError::NotFound(m) => fail(
            "DataFormatConversion.EntityNotFound",
            format!(
                "The specified table/database could not be found. Ensure that the table/database exists and that the values provided in the schema configuration are correct, especially with regards to casing. ({m})"
            ),
        ),
        CatalogError::Other(m) => fail("DataFormatConversion.InternalError", m),
    })?;
    let converter = Converter::new(&table, settings.deserializer.clone())
        .map_err(|e| fail(e.code, e.message))?;
    let records = batch.records.clone();
    let owned = settings.clone();
    let converted = tokio::task::spawn_blocking(move || converter.convert(&owned, &records))
        .await
        .map_err(|e| fail("DataFormatConversion.InternalError", e.to_string()))?
        .map_err(|e| {
            fail(
                "DataFormatConversion.InternalError",
                format!("writing the converted object failed: {e}"),
            )
        })?;
    if !converted.failed.is_empty() {
        let catalog_arn = format!("arn:aws:glue:{region}:{}:catalog", table.catalog_id);
        let extra = [(
            "dataCatalogTable",
            serde_json::json!({
                "catalogId": table.catalog_id,
                "databaseName": table.database,
                "tableName": table.name,
                "region": region,
                "versionId": table.version_id,
                "catalogArn": catalog_arn,
            }),
        )];
        let ended_ms = ctx.clock.now_ms();
        let body = lines(converted.failed.iter().map(|(n, e)| FailedRecord {
            attempts: 1,
            arrival_ms: batch.arrival_ms(*n),
            code: e.code,
            message: &e.message,
            ended_ms,
            raw: &batch.records[*n],
            extra: extra.to_vec(),
            keys: &UPPER,
        }));
        let prefix = dest
            .settings
            .layout
            .error_prefix(batch.first_arrival_ms, ERROR_OUTPUT_TYPE);
        dest.put_error(&prefix, &body, batch.first_arrival_ms)
            .await?;
        tracing::warn!(stream = %dest.stream, failed = converted.failed.len(), "records failed format conversion; written to the error output");
    }
    Ok(converted.body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int32Type, Int64Type, TimestampMillisecondType};
    use arrow_array::Array;
    use serde_json::json;

    fn table(cols: &[(&str, &str)]) -> CatalogTable {
        CatalogTable {
            catalog_id: "000000000000".into(),
            database: "db".into(),
            name: "t".into(),
            version_id: "0".into(),
            columns: cols
                .iter()
                .map(|(n, t)| (n.to_string(), t.to_string()))
                .collect(),
        }
    }

    fn openx() -> Deserializer {
        Deserializer::OpenX {
            convert_dots: false,
            case_insensitive: true,
            mappings: HashMap::new(),
        }
    }

    #[test]
    fn hive_types_parse_and_map_to_arrow() {
        use HiveType::*;
        assert_eq!(
            HiveType::parse("array<struct<a:int, B:map<string,decimal(5,2)>>>").unwrap(),
            Array(Box::new(Struct(vec![
                ("a".into(), Int),
                ("b".into(), Map(Box::new(String), Box::new(Decimal(5, 2)))),
            ])))
        );
        assert_eq!(HiveType::parse("VARCHAR(20)").unwrap(), String);
        assert_eq!(HiveType::parse("decimal").unwrap(), Decimal(10, 0));
        for (src, arrow) in [
            ("string", DataType::Utf8),
            ("tinyint", DataType::Int8),
            ("smallint", DataType::Int16),
            ("int", DataType::Int32),
            ("bigint", DataType::Int64),
            ("float", DataType::Float32),
            ("double", DataType::Float64),
            ("boolean", DataType::Boolean),
            ("decimal(38,10)", DataType::Decimal128(38, 10)),
            (
                "timestamp",
                DataType::Timestamp(TimeUnit::Millisecond, None),
            ),
            ("date", DataType::Date32),
            ("binary", DataType::Binary),
        ] {
            assert_eq!(HiveType::parse(src).unwrap().arrow(), arrow, "{src}");
        }
        for bad in [
            "array<int",
            "uniontype<int,string>",
            "decimal(40,2)",
            "map<string>",
            "int x",
        ] {
            assert!(HiveType::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn decimals_scale_and_round() {
        assert_eq!(decimal("12.345", 10, 2), Some(1235));
        assert_eq!(decimal("-0.5", 3, 2), Some(-50));
        assert_eq!(decimal("1e2", 5, 1), Some(1000));
        assert_eq!(decimal("123456", 5, 0), None);
        assert_eq!(decimal("abc", 5, 0), None);
    }

    #[test]
    fn openx_matches_keys_as_configured() {
        let t = table(&[("user_id", "int"), ("ts", "string")]);
        let rec = br#"{"User.Id": 3, "@timestamp": "x", "TS": "y"}"#;
        let plain = Converter::new(&t, openx()).unwrap();
        assert_eq!(
            plain.row(rec).unwrap(),
            vec![Cell::Null, Cell::Str("y".into())]
        );
        let dots = Converter::new(
            &t,
            Deserializer::OpenX {
                convert_dots: true,
                case_insensitive: true,
                mappings: [("ts".to_string(), "@timestamp".to_string())].into(),
            },
        )
        .unwrap();
        assert_eq!(
            dots.row(rec).unwrap(),
            vec![Cell::Int(3), Cell::Str("x".into())]
        );
        let strict = Converter::new(
            &t,
            Deserializer::OpenX {
                convert_dots: true,
                case_insensitive: false,
                mappings: HashMap::new(),
            },
        )
        .unwrap();
        assert_eq!(strict.row(rec).unwrap(), vec![Cell::Null, Cell::Null]);
    }

    #[test]
    fn timestamps_by_serde() {
        let t = table(&[("at", "timestamp")]);
        let ms = |c: &Converter, v: Json| match c.row(v.to_string().as_bytes()) {
            Ok(row) => match &row[0] {
                Cell::Timestamp(ms) => Some(*ms),
                _ => None,
            },
            Err(_) => None,
        };
        let x = 1_709_296_245_000;
        let o = Converter::new(&t, openx()).unwrap();
        assert_eq!(ms(&o, json!({"at": "2024-03-01 12:30:45"})), Some(x));
        assert_eq!(
            ms(&o, json!({"at": "2024-03-01T12:30:45.250Z"})),
            Some(x + 250)
        );
        assert_eq!(ms(&o, json!({"at": 1_709_296_245})), Some(x));
        assert_eq!(ms(&o, json!({"at": "01/03/2024"})), None);
        let h = Converter::new(
            &t,
            Deserializer::Hive {
                timestamp_formats: vec!["millis".into(), "dd/MM/yyyy HH:mm".into()],
            },
        )
        .unwrap();
        assert_eq!(ms(&h, json!({"at": x + 7})), Some(x + 7));
        assert_eq!(ms(&h, json!({"at": "01/03/2024 12:30"})), Some(x - 45_000));
        assert_eq!(ms(&h, json!({"at": "2024-03-01 12:30:45"})), Some(x));
    }

    #[test]
    fn type_errors_name_the_column() {
        let t = table(&[("n", "int"), ("b", "boolean"), ("l", "array<int>")]);
        let c = Converter::new(&t, openx()).unwrap();
        let err = |r: &str| c.row(r.as_bytes()).unwrap_err();
        assert_eq!(
            err(r#"{"n": 3000000000}"#).message,
            "Column 'n': 3000000000 is out of range for Int"
        );
        assert_eq!(
            err(r#"{"b": 1}"#).message,
            "Column 'b': cannot read 1 as Boolean"
        );
        assert_eq!(
            err(r#"{"l": [1, "x"]}"#).message,
            "Column 'l': cannot read \"x\" as Int"
        );
        assert_eq!(err("[]").code, "DataFormatConversion.MalformedData");
        // A lone value reads as a one-element array; strings take any JSON.
        let s = Converter::new(&table(&[("l", "array<int>"), ("s", "string")]), openx()).unwrap();
        assert_eq!(
            s.row(br#"{"l": 4, "s": {"a": 1}}"#).unwrap(),
            vec![
                Cell::List(vec![Cell::Int(4)]),
                Cell::Str(r#"{"a":1}"#.into())
            ]
        );
    }

    fn settings(serializer: Json) -> Settings {
        Settings::from_description(&json!({
            "CompressionFormat": "UNCOMPRESSED",
            "DataFormatConversionConfiguration": {
                "SchemaConfiguration": {"DatabaseName": "db", "TableName": "t", "VersionId": "LATEST"},
                "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
                "OutputFormatConfiguration": {"Serializer": serializer},
            }
        }))
        .unwrap()
        .unwrap()
    }

    #[test]
    fn settings_defaults_and_refusals() {
        let s = settings(json!({"ParquetSerDe": {}}));
        assert_eq!(
            s.serializer,
            Serializer::Parquet(ParquetOptions {
                block_size_bytes: 256 * 1024 * 1024,
                page_size_bytes: 1024 * 1024,
                compression: ParquetCompression::Snappy,
                enable_dictionary: false,
                max_padding_bytes: 0,
                writer_v2: false,
            })
        );
        assert_eq!(s.table.version_id, None);
        assert_eq!(s.extension(), ".parquet");
        let o = settings(json!({"OrcSerDe": {"Compression": "ZLIB", "BloomFilterColumns": ["a"]}}));
        let Serializer::Orc(o) = &o.serializer else {
            panic!("ORC expected")
        };
        assert_eq!(
            (
                o.compression,
                o.bloom_filter_columns.clone(),
                o.row_index_stride
            ),
            (OrcCompression::Zlib, vec!["a".to_string()], 10_000)
        );
        assert_eq!(
            Settings::from_description(
                &json!({"DataFormatConversionConfiguration": {"Enabled": false}})
            )
            .unwrap(),
            None
        );
        assert_eq!(
            Settings::from_description(&json!({
                "CompressionFormat": "GZIP",
                "DataFormatConversionConfiguration": {"Enabled": true}
            }))
            .unwrap_err(),
            FirehoseError::InvalidArgument(COMPRESSION_WITH_CONVERSION.into())
        );
    }

    #[test]
    fn parquet_round_trip() {
        let t = table(&[
            ("id", "bigint"),
            ("at", "timestamp"),
            ("tags", "array<string>"),
            ("u", "struct<a:int>"),
        ]);
        let c = Converter::new(&t, openx()).unwrap();
        let recs = [
            Bytes::from_static(
                br#"{"id": 1, "at": "1970-01-01 00:00:01", "tags": ["x"], "u": {"A": 5}}"#,
            ),
            Bytes::from_static(b"oops"),
            Bytes::from_static(br#"{"id": 2}"#),
        ];
        for compression in ["UNCOMPRESSED", "GZIP", "SNAPPY"] {
            let s = settings(
                json!({"ParquetSerDe": {"Compression": compression, "WriterVersion": "V2"}}),
            );
            let out = c.convert(&s, &recs).unwrap();
            assert_eq!(out.rows, 2);
            assert_eq!(out.failed.len(), 1);
            assert_eq!(out.failed[0].0, 1);
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                Bytes::from(out.body.unwrap()),
            )
            .unwrap();
            let codec = reader.metadata().row_group(0).column(0).compression();
            assert_eq!(codec.to_string().split('(').next().unwrap(), compression);
            let batch = reader.build().unwrap().next().unwrap().unwrap();
            assert_eq!(
                batch
                    .column(0)
                    .as_primitive::<Int64Type>()
                    .values()
                    .to_vec(),
                vec![1, 2]
            );
            let at = batch.column(1).as_primitive::<TimestampMillisecondType>();
            assert_eq!((at.value(0), at.is_null(1)), (1000, true));
            let tags = batch.column(2).as_list::<i32>();
            assert_eq!(tags.value(0).as_string::<i32>().value(0), "x");
            assert!(tags.is_null(1));
            let u = batch.column(3).as_struct();
            assert_eq!(u.column(0).as_primitive::<Int32Type>().value(0), 5);
            assert!(u.is_null(1));
        }
    }

    #[test]
    fn parquet_row_groups_follow_the_block_size() {
        let t = table(&[("id", "bigint"), ("s", "string")]);
        let c = Converter::new(&t, openx()).unwrap();
        let rows: Vec<Vec<Cell>> = (0..10_000)
            .map(|i| {
                vec![
                    Cell::Int(i),
                    Cell::Str(format!("row {i} {}", "x".repeat(50))),
                ]
            })
            .collect();
        let batch = c.batch(&rows).unwrap();
        let opts = |block| ParquetOptions {
            block_size_bytes: block,
            page_size_bytes: 64 * 1024,
            compression: ParquetCompression::Uncompressed,
            enable_dictionary: false,
            max_padding_bytes: 0,
            writer_v2: false,
        };
        let groups = |block| {
            let body = write_parquet(&batch, &opts(block)).unwrap();
            let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                Bytes::from(body),
            )
            .unwrap();
            let counts: Vec<i64> = r
                .metadata()
                .row_groups()
                .iter()
                .map(|g| g.num_rows())
                .collect();
            assert_eq!(counts.iter().sum::<i64>(), 10_000);
            counts.len()
        };
        assert_eq!(groups(256 * 1024 * 1024), 1);
        assert!(groups(64 * 1024) > 4);
    }

    #[test]
    fn orc_round_trip() {
        let t = table(&[("id", "int"), ("name", "string")]);
        let c = Converter::new(&t, openx()).unwrap();
        let s = settings(json!({"OrcSerDe": {"Compression": "SNAPPY"}}));
        let out = c
            .convert(
                &s,
                &[
                    Bytes::from_static(br#"{"id": 1, "name": "a"}"#),
                    Bytes::from_static(br#"{"id": null}"#),
                ],
            )
            .unwrap();
        let mut reader = orc_rust::ArrowReaderBuilder::try_new(Bytes::from(out.body.unwrap()))
            .unwrap()
            .build();
        let batch = reader.next().unwrap().unwrap();
        let ids = batch.column(0).as_primitive::<Int32Type>();
        assert_eq!((ids.value(0), ids.is_null(1)), (1, true));
        assert_eq!(batch.column(1).as_string::<i32>().value(0), "a");
    }

    #[test]
    fn orc_of_decimal_array_map_and_struct_columns() {
        let t = table(&[
            ("d", "decimal(4,1)"),
            ("l", "array<int>"),
            ("m", "map<string,bigint>"),
            ("s", "struct<a:int,b:array<string>>"),
        ]);
        let c = Converter::new(&t, openx()).unwrap();
        let s = settings(json!({"OrcSerDe": {"Compression": "ZLIB"}}));
        let out = c
            .convert(
                &s,
                &[
                    Bytes::from_static(
                        br#"{"d": -12.34, "l": [1, null, 3], "m": {"k": 7}, "s": {"a": 5, "b": ["x", null]}}"#,
                    ),
                    Bytes::from_static(br#"{"l": [], "s": {"b": null}}"#),
                ],
            )
            .unwrap();
        let mut reader = orc_rust::ArrowReaderBuilder::try_new(Bytes::from(out.body.unwrap()))
            .unwrap()
            .build();
        let batch = reader.next().unwrap().unwrap();
        let d = batch
            .column(0)
            .as_primitive::<arrow_array::types::Decimal128Type>();
        assert_eq!((d.value(0), d.is_null(1)), (-123, true));
        assert_eq!(batch.column(0).data_type(), &DataType::Decimal128(4, 1));
        let l = batch.column(1).as_list::<i32>();
        let first = l.value(0);
        let first = first.as_primitive::<Int32Type>();
        assert_eq!(
            (
                first.len(),
                first.value(0),
                first.is_null(1),
                first.value(2)
            ),
            (3, 1, true, 3)
        );
        assert_eq!((l.is_null(1), l.value(1).len()), (false, 0));
        let m = batch.column(2).as_map();
        assert_eq!(m.keys().as_string::<i32>().value(0), "k");
        assert_eq!(m.values().as_primitive::<Int64Type>().value(0), 7);
        assert!(m.is_null(1));
        let st = batch.column(3).as_struct();
        assert_eq!(st.column(0).as_primitive::<Int32Type>().value(0), 5);
        assert!(st.column(0).is_null(1));
        let b = st.column(1).as_list::<i32>();
        let strings = b.value(0);
        let strings = strings.as_string::<i32>();
        assert_eq!((strings.value(0), strings.is_null(1)), ("x", true));
        assert!(b.is_null(1));
    }
}
