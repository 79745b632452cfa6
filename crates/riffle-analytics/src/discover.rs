//! DiscoverInputSchema: sample records from a Riffle stream (read in
//! process) or an S3 object, and infer a source schema from them.
//!
//! Inference (Riffle's rules; AWS does not document its own):
//!
//! - Records that are all JSON objects give a JSON schema (RecordRowPath
//!   `$`). Nested objects are flattened: each leaf is a column named by its
//!   keys joined with `_` (characters other than letters, digits and `_`
//!   become `_`), mapped by its JSONPath (`$.a.b`); columns come in the
//!   order of the first record holding them, by key within a record; a
//!   name taken already (ignoring case) gets `_2`, `_3`, ...; empty objects
//!   hold no column. Arrays are one VARCHAR column holding their JSON text.
//! - Otherwise lines with one consistent delimiter (`,`, `|`, tab or `;`,
//!   the first that splits every sample into the same number of fields,
//!   more than one) give a CSV schema with columns `COL1`, `COL2`, ...
//! - Types: BOOLEAN when every value is a boolean; INTEGER when every value
//!   is an integer within 32 bits, BIGINT within 64; DOUBLE when every value
//!   is a number; otherwise VARCHAR(n), n the longest value in bytes
//!   rounded up to a power of two (at least 1). Columns without a value in
//!   any sample are VARCHAR(1).

use std::collections::BTreeMap;

use serde_json::Value as Json;

use crate::model;

/// Records sampled at most.
pub const MAX_SAMPLES: usize = 100;

/// What a column's values allow so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// No value seen yet.
    Empty,
    Boolean,
    Integer,
    BigInt,
    Double,
    Varchar,
}

#[derive(Debug, Clone)]
struct Column {
    name: String,
    mapping: Option<String>,
    kind: Kind,
    longest: usize,
}

impl Column {
    fn new(name: String, mapping: Option<String>) -> Column {
        Column {
            name,
            mapping,
            kind: Kind::Empty,
            longest: 0,
        }
    }

    /// Widens the column to hold `text`, a value of kind `kind`.
    fn see(&mut self, kind: Kind, text: &str) {
        self.longest = self.longest.max(text.len());
        self.kind = match (self.kind, kind) {
            (Kind::Empty, k) => k,
            (a, b) if a == b => a,
            (
                Kind::Integer | Kind::BigInt | Kind::Double,
                Kind::Integer | Kind::BigInt | Kind::Double,
            ) => self.kind.max(kind),
            _ => Kind::Varchar,
        };
    }

    fn sql_type(&self) -> String {
        match self.kind {
            Kind::Boolean => "BOOLEAN".into(),
            Kind::Integer => "INTEGER".into(),
            Kind::BigInt => "BIGINT".into(),
            Kind::Double => "DOUBLE".into(),
            Kind::Empty | Kind::Varchar => {
                format!("VARCHAR({})", self.longest.max(1).next_power_of_two())
            }
        }
    }
}

fn text_kind(s: &str) -> Kind {
    if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") {
        Kind::Boolean
    } else if s.parse::<i32>().is_ok() {
        Kind::Integer
    } else if s.parse::<i64>().is_ok() {
        Kind::BigInt
    } else if !s.is_empty() && s.parse::<f64>().is_ok_and(f64::is_finite) {
        Kind::Double
    } else {
        Kind::Varchar
    }
}

fn json_kind(v: &Json) -> Kind {
    match v {
        Json::Bool(_) => Kind::Boolean,
        Json::Number(n) if n.is_i64() || n.is_u64() => match n.as_i64() {
            Some(i) if i32::try_from(i).is_ok() => Kind::Integer,
            Some(_) => Kind::BigInt,
            None => Kind::Double,
        },
        Json::Number(_) => Kind::Double,
        _ => Kind::Varchar,
    }
}

fn column_name(path: &[String]) -> String {
    path.iter()
        .map(|p| {
            p.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("_")
}

/// `name`, or `name_2`, `name_3`, ... when a column has it already
/// (compared ignoring case, as unquoted SQL names are).
fn unique_name(columns: &[Column], name: String) -> String {
    let taken = |n: &str| columns.iter().any(|c| c.name.eq_ignore_ascii_case(n));
    if !taken(&name) {
        return name;
    }
    (2..)
        .map(|i| format!("{name}_{i}"))
        .find(|n| !taken(n))
        .unwrap_or(name)
}

fn json_path(path: &[String]) -> String {
    let mut out = String::from("$");
    for p in path {
        if p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !p.is_empty() {
            out.push('.');
            out.push_str(p);
        } else {
            out.push_str(&format!("['{}']", p.replace('\'', "\\'")));
        }
    }
    out
}

/// A sample record's JSON with its objects' members in the record's
/// order (columns come in the order records name them, as AWS's do).
enum Node {
    Object(Vec<(String, Node)>),
    Leaf(Json),
}

impl Node {
    fn into_json(self) -> Json {
        match self {
            Node::Leaf(j) => j,
            Node::Object(members) => Json::Object(
                members
                    .into_iter()
                    .map(|(k, v)| (k, v.into_json()))
                    .collect(),
            ),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_bool<E>(self, b: bool) -> Result<Node, E> {
                Ok(Node::Leaf(Json::Bool(b)))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Node, E> {
                Ok(Node::Leaf(Json::from(n)))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Node, E> {
                Ok(Node::Leaf(Json::from(n)))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Node, E> {
                Ok(Node::Leaf(Json::from(n)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Node, E> {
                Ok(Node::Leaf(Json::String(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Node, E> {
                Ok(Node::Leaf(Json::String(s)))
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Leaf(Json::Null))
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Leaf(Json::Null))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(n) = seq.next_element::<Node>()? {
                    items.push(n.into_json());
                }
                Ok(Node::Leaf(Json::Array(items)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut members: Vec<(String, Node)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Node>()? {
                    // A repeated member: the last one counts, in its first
                    // place.
                    match members.iter_mut().find(|(m, _)| *m == k) {
                        Some(slot) => slot.1 = v,
                        None => members.push((k, v)),
                    }
                }
                Ok(Node::Object(members))
            }
        }
        d.deserialize_any(V)
    }
}

/// Leaves of a JSON object: (key path, value).
fn leaves<'a>(v: &'a Node, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, &'a Json)>) {
    match v {
        // An empty object holds no column.
        Node::Object(m) => {
            for (k, x) in m {
                path.push(k.clone());
                leaves(x, path, out);
                path.pop();
            }
        }
        Node::Leaf(other) => out.push((path.clone(), other)),
    }
}

fn value_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

/// The inferred schema and each sample's parsed values, or why none.
pub struct Discovered {
    pub schema: model::SourceSchema,
    pub parsed: Vec<Vec<String>>,
}

fn json_schema(records: &[Node]) -> Discovered {
    let mut columns: Vec<Column> = Vec::new();
    let mut index: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    let mut rows: Vec<Vec<(usize, String)>> = Vec::new();
    for r in records {
        let mut found = Vec::new();
        leaves(r, &mut Vec::new(), &mut found);
        let mut row = Vec::new();
        for (path, v) in found {
            if path.is_empty() {
                // An empty object: no column.
                continue;
            }
            let i = *index.entry(path.clone()).or_insert_with(|| {
                let name = unique_name(&columns, column_name(&path));
                columns.push(Column::new(name, Some(json_path(&path))));
                columns.len() - 1
            });
            let text = value_text(v);
            if !v.is_null() {
                columns[i].see(json_kind(v), &text);
            }
            row.push((i, text));
        }
        rows.push(row);
    }
    let parsed = rows
        .into_iter()
        .map(|row| {
            let mut out = vec![String::new(); columns.len()];
            for (i, t) in row {
                out[i] = t;
            }
            out
        })
        .collect();
    Discovered {
        schema: model::SourceSchema {
            record_format: model::RecordFormat {
                record_format_type: "JSON".into(),
                mapping_parameters: Some(model::MappingParameters {
                    json_mapping_parameters: Some(model::JSONMappingParameters {
                        record_row_path: "$".into(),
                    }),
                    csv_mapping_parameters: None,
                }),
            },
            record_encoding: Some("UTF-8".into()),
            record_columns: columns
                .iter()
                .map(|c| model::RecordColumn {
                    name: c.name.clone(),
                    mapping: c.mapping.clone(),
                    sql_type: c.sql_type(),
                })
                .collect(),
        },
        parsed,
    }
}

fn csv_schema(lines: &[&str]) -> Option<Discovered> {
    let delimiter = [',', '|', '\t', ';'].into_iter().find(|d| {
        let n = lines[0].split(*d).count();
        n > 1 && lines.iter().all(|l| l.split(*d).count() == n)
    })?;
    let n = lines[0].split(delimiter).count();
    let mut columns: Vec<Column> = (1..=n)
        .map(|i| Column::new(format!("COL{i}"), None))
        .collect();
    let parsed: Vec<Vec<String>> = lines
        .iter()
        .map(|l| l.split(delimiter).map(str::to_owned).collect())
        .collect();
    for row in &parsed {
        for (c, v) in columns.iter_mut().zip(row) {
            if !v.is_empty() {
                c.see(text_kind(v), v);
            }
        }
    }
    Some(Discovered {
        schema: model::SourceSchema {
            record_format: model::RecordFormat {
                record_format_type: "CSV".into(),
                mapping_parameters: Some(model::MappingParameters {
                    json_mapping_parameters: None,
                    csv_mapping_parameters: Some(model::CSVMappingParameters {
                        record_row_delimiter: "\n".into(),
                        record_column_delimiter: delimiter.to_string(),
                    }),
                }),
            },
            record_encoding: Some("UTF-8".into()),
            record_columns: columns
                .iter()
                .map(|c| model::RecordColumn {
                    name: c.name.clone(),
                    mapping: None,
                    sql_type: c.sql_type(),
                })
                .collect(),
        },
        parsed,
    })
}

/// Infers a schema from sample records (each one record's text).
pub fn infer(records: &[String]) -> Option<Discovered> {
    if records.is_empty() {
        return None;
    }
    let json: Option<Vec<Node>> = records
        .iter()
        .map(|r| {
            serde_json::from_str::<Node>(r.trim())
                .ok()
                .filter(|n| matches!(n, Node::Object(_)))
        })
        .collect();
    if let Some(objects) = json {
        return Some(json_schema(&objects));
    }
    let lines: Vec<&str> = records
        .iter()
        .flat_map(|r| r.lines())
        .filter(|l| !l.trim().is_empty())
        .collect();
    if lines.is_empty() {
        return None;
    }
    csv_schema(&lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(d: &Discovered) -> Vec<(String, Option<String>, String)> {
        d.schema
            .record_columns
            .iter()
            .map(|c| (c.name.clone(), c.mapping.clone(), c.sql_type.clone()))
            .collect()
    }

    #[test]
    fn json_records() {
        let d = infer(&[
            r#"{"ticker":"QXZ","price":12.5,"n":3,"ok":true,"big":5000000000,"user":{"id":7,"home page":"x"}}"#.into(),
            r#"{"ticker":"TECHNO","price":4,"n":-2,"ok":false,"big":1,"user":{"id":8},"tags":[1,2],"note":null}"#.into(),
        ])
        .unwrap();
        let c = |n: &str, m: &str, t: &str| (n.to_string(), Some(m.to_string()), t.to_string());
        assert_eq!(
            columns(&d),
            // In the order the records name them.
            vec![
                c("ticker", "$.ticker", "VARCHAR(8)"),
                c("price", "$.price", "DOUBLE"),
                c("n", "$.n", "INTEGER"),
                c("ok", "$.ok", "BOOLEAN"),
                c("big", "$.big", "BIGINT"),
                c("user_id", "$.user.id", "INTEGER"),
                c("user_home_page", "$.user['home page']", "VARCHAR(1)"),
                c("tags", "$.tags", "VARCHAR(8)"),
                c("note", "$.note", "VARCHAR(1)"),
            ]
        );
        assert_eq!(d.schema.record_format.record_format_type, "JSON");
        assert_eq!(d.parsed[1][0], "TECHNO");
        assert_eq!(d.parsed[1][7], "[1,2]");
        assert_eq!(d.parsed[0][7], "");
    }

    #[test]
    fn csv_records() {
        let d = infer(&["a,1,2.5,true\n".into(), "bcd,2,3,false".into()]).unwrap();
        assert_eq!(
            columns(&d),
            vec![
                ("COL1".into(), None, "VARCHAR(4)".into()),
                ("COL2".into(), None, "INTEGER".into()),
                ("COL3".into(), None, "DOUBLE".into()),
                ("COL4".into(), None, "BOOLEAN".into()),
            ]
        );
        let p = d.schema.record_format.mapping_parameters.unwrap();
        assert_eq!(
            p.csv_mapping_parameters.unwrap().record_column_delimiter,
            ","
        );
        assert_eq!(d.parsed[1], ["bcd", "2", "3", "false"]);
        assert!(infer(&["just words".into(), "and more".into()]).is_none());
        // Names that flatten alike stay apart; an empty object has none.
        let d = infer(&[r#"{"a_b":1,"a":{"b":2},"e":{}}"#.into()]).unwrap();
        let names: Vec<_> = columns(&d).into_iter().map(|c| (c.0, c.1)).collect();
        assert_eq!(
            names,
            vec![
                ("a_b".to_string(), Some("$.a_b".to_string())),
                ("a_b_2".to_string(), Some("$.a.b".to_string())),
            ]
        );
        assert!(infer(&[]).is_none());
    }
}
