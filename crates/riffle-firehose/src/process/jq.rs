//! MetadataExtraction: a jq query (JsonParsingEngine JQ-1.6) run on each
//! JSON record, its output object giving the `partitionKeyFromQuery`
//! keys. Queries run on jaq, a Rust implementation of jq.

use std::collections::BTreeMap;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{data, unwrap_valr, Compiler, Ctx, Vars};
use jaq_json::Val;

type Data = data::JustLut<Val>;

/// A compiled MetadataExtractionQuery.
pub struct Query {
    pub source: String,
    filter: jaq_core::Filter<Data>,
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Query").field(&self.source).finish()
    }
}

impl Query {
    /// Compiles `source`; `Err` says why it is not a valid query.
    pub fn compile(source: &str) -> Result<Query, String> {
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs());
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let modules = loader
            .load(
                &arena,
                File {
                    code: source,
                    path: (),
                },
            )
            .map_err(|errs| {
                let what: Vec<String> = errs.iter().map(|(_, e)| format!("{e:?}")).collect();
                format!("the query does not parse: {}", what.join("; "))
            })?;
        let filter = Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errs| {
                let what: Vec<String> = errs
                    .iter()
                    .flat_map(|(_, es)| es.iter().map(|e| format!("{e:?}")))
                    .collect();
                format!("the query does not compile: {}", what.join("; "))
            })?;
        Ok(Query {
            source: source.to_owned(),
            filter,
        })
    }

    /// Runs the query on one record: its first output must be an object
    /// whose values are strings, numbers or booleans. `Err` says why the
    /// record cannot be partitioned.
    pub fn keys(&self, record: &[u8]) -> Result<BTreeMap<String, String>, String> {
        // The JSON reader recurses once per nesting level: deeper records
        // than any real one are refused before they can exhaust the stack.
        if nesting(record) > MAX_NESTING {
            return Err("Non JSON record provided".to_string());
        }
        let input = jaq_json::read::parse_single(record)
            .map_err(|_| "Non JSON record provided".to_string())?;
        let ctx = Ctx::<Data>::new(&self.filter.lut, Vars::new([]));
        let mut out = self.filter.id.run((ctx, input)).map(unwrap_valr);
        let v = match out.next() {
            Some(Ok(v)) => v,
            Some(Err(e)) => return Err(format!("the query failed on the record: {e}")),
            None => return Err("the query returned no value for the record".into()),
        };
        let Val::Obj(map) = v else {
            return Err(format!(
                "the query must return a JSON object of partition keys, not {v}"
            ));
        };
        let mut keys = BTreeMap::new();
        for (k, v) in map.iter() {
            let name = match k {
                Val::TStr(s) | Val::BStr(s) => String::from_utf8_lossy(s).into_owned(),
                other => other.to_string(),
            };
            let value = match v {
                Val::TStr(s) | Val::BStr(s) => String::from_utf8_lossy(s).into_owned(),
                Val::Num(_) | Val::Bool(_) => v.to_string(),
                Val::Null => {
                    return Err(format!(
                        "the partition key {name} is null or missing in the record"
                    ))
                }
                _ => {
                    return Err(format!(
                        "the partition key {name} must be a string, number or boolean, not {v}"
                    ))
                }
            };
            keys.insert(name, value);
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(q: &str, rec: &str) -> Result<Vec<(String, String)>, String> {
        Query::compile(q)
            .unwrap()
            .keys(rec.as_bytes())
            .map(|m| m.into_iter().collect())
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn extracts_keys() {
        assert_eq!(
            keys(
                "{customer_id: .customer_id, device: .meta.device.type}",
                r#"{"customer_id":"c-1","meta":{"device":{"type":"phone"}}}"#
            ),
            Ok(kv(&[("customer_id", "c-1"), ("device", "phone")]))
        );
        assert_eq!(
            keys(
                "{year: .ts | .[0:4], n: .n, ok: .ok}",
                r#"{"ts":"2024-05-01","n":42,"ok":true}"#
            ),
            Ok(kv(&[("n", "42"), ("ok", "true"), ("year", "2024")]))
        );
        assert_eq!(
            keys("{a: (.x | ascii_upcase)}", r#"{"x":"lo"}"#),
            Ok(kv(&[("a", "LO")]))
        );
    }

    #[test]
    fn failures() {
        assert_eq!(
            keys("{a: .a}", "not json"),
            Err("Non JSON record provided".into())
        );
        assert!(keys("{a: .a}", r#"{"b":1}"#)
            .unwrap_err()
            .contains("null or missing"));
        assert!(keys(".a", r#"{"a":1}"#).unwrap_err().contains("object"));
        assert!(keys("{a: .a.b}", r#"{"a":5}"#)
            .unwrap_err()
            .starts_with("the query failed"));
        assert!(keys("{a: .a}", r#"{"a":[1]}"#)
            .unwrap_err()
            .contains("must be"));
        assert!(Query::compile("{a: .a").is_err());
        assert!(Query::compile("{a: nosuchfn}").is_err());
    }
}

/// The deepest nesting a record may have (as serde_json's default limit).
const MAX_NESTING: usize = 128;

/// How deeply `[` and `{` nest in `json`, outside strings.
fn nesting(json: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod nesting_tests {
    use super::*;

    #[test]
    fn nesting_depth() {
        assert_eq!(nesting(br#"{"a":[1,{"b":"[[[["}]}"#), 3);
        assert_eq!(nesting(br#""\"[""#), 0);
        let q = Query::compile("{a: .a}").unwrap();
        let deep = "[".repeat(100_000);
        assert_eq!(
            q.keys(deep.as_bytes()).unwrap_err(),
            "Non JSON record provided"
        );
    }
}
