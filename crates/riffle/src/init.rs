//! Start-up initialisation: streams to create if missing, and access keys.

use std::collections::HashMap;

use anyhow::{bail, Context};

/// A stream to pre-create: `None` shards means on-demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitStream {
    pub name: String,
    pub shards: Option<u32>,
}

/// Parses `name:shards` items separated by commas or newlines; `#` starts a comment.
pub fn parse_streams(text: &str) -> anyhow::Result<Vec<InitStream>> {
    let mut out = Vec::new();
    for item in text.split([',', '\n']) {
        let item = item.split('#').next().unwrap_or("").trim();
        if item.is_empty() {
            continue;
        }
        let (name, shards) = match item.split_once(':') {
            Some((n, s)) => {
                let s: u32 = s
                    .trim()
                    .parse()
                    .with_context(|| format!("bad shard count in {item:?}"))?;
                if s == 0 {
                    bail!("shard count must be at least 1 in {item:?}");
                }
                (n.trim(), Some(s))
            }
            None => (item, None),
        };
        if name.is_empty()
            || name.len() > 128
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            bail!("invalid stream name {name:?}");
        }
        out.push(InitStream {
            name: name.to_owned(),
            shards,
        });
    }
    Ok(out)
}

/// Parses `ID:SECRET` items separated by commas or newlines.
pub fn parse_credentials(text: &str) -> anyhow::Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for item in text.split([',', '\n']) {
        let item = item.trim();
        if item.is_empty() || item.starts_with('#') {
            continue;
        }
        let Some((id, secret)) = item.split_once(':') else {
            bail!("credentials must be ACCESS_KEY_ID:SECRET");
        };
        out.insert(id.trim().to_owned(), secret.trim().to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stream_lists() {
        let got = parse_streams("a:2, b\n# comment\nc-1.x:10 # trailing\n").unwrap();
        assert_eq!(
            got,
            vec![
                InitStream {
                    name: "a".into(),
                    shards: Some(2)
                },
                InitStream {
                    name: "b".into(),
                    shards: None
                },
                InitStream {
                    name: "c-1.x".into(),
                    shards: Some(10)
                },
            ]
        );
        assert!(parse_streams("a:0").is_err());
        assert!(parse_streams("bad name:1").is_err());
        assert!(parse_streams("a:x").is_err());
    }

    #[test]
    fn parses_credentials() {
        let c = parse_credentials("AKID:secret/with:colon, B:s2").unwrap();
        assert_eq!(c.get("AKID").map(String::as_str), Some("secret/with:colon"));
        assert_eq!(c.len(), 2);
        assert!(parse_credentials("nocolon").is_err());
    }
}
