//! Listings: ListObjects (v1 and v2) and ListMultipartUploads read the
//! index in key order.

use std::ops::Bound;
use std::sync::Arc;

use crate::store::{ObjectRow, UploadRow, S3};
use crate::S3Error;

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// List only keys after this one (StartAfter, Marker, or where a
    /// continuation token points).
    pub after: Option<String>,
    /// A continuation token that ended on a common prefix: keys under it
    /// were rolled up already.
    pub skip_prefix: Option<String>,
    pub max_keys: usize,
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub objects: Vec<Arc<ObjectRow>>,
    pub common_prefixes: Vec<String>,
    pub truncated: bool,
    /// The last key or common prefix returned: where the next page starts.
    pub last: Option<String>,
}

impl S3 {
    /// Keys of `bucket` under `q.prefix`, rolled up into common prefixes at
    /// `q.delimiter`, at most `q.max_keys` entries (keys plus prefixes).
    pub fn list_objects(&self, bucket: &str, q: &ListQuery) -> Result<Listing, S3Error> {
        let idx = self.index();
        let b = idx
            .buckets
            .get(bucket)
            .ok_or_else(|| S3Error::NoSuchBucket(bucket.to_owned()))?;
        let start = match &q.after {
            Some(a) if a.as_str() >= q.prefix.as_str() => Bound::Excluded(a.clone()),
            _ => Bound::Included(q.prefix.clone()),
        };
        let mut out = Listing::default();
        let mut last_prefix = q.skip_prefix.clone();
        let delimiter = q.delimiter.as_deref().filter(|d| !d.is_empty());
        for (key, row) in b.objects.range((start, Bound::Unbounded)) {
            if !key.starts_with(&q.prefix) {
                break;
            }
            let rolled = delimiter.and_then(|d| {
                key[q.prefix.len()..]
                    .find(d)
                    .map(|i| key[..q.prefix.len() + i + d.len()].to_owned())
            });
            if let Some(p) = &rolled {
                if last_prefix.as_deref() == Some(p.as_str()) {
                    continue;
                }
            }
            if out.objects.len() + out.common_prefixes.len() >= q.max_keys {
                out.truncated = true;
                break;
            }
            match rolled {
                Some(p) => {
                    out.last = Some(p.clone());
                    last_prefix = Some(p.clone());
                    out.common_prefixes.push(p);
                }
                None => {
                    out.last = Some(key.clone());
                    out.objects.push(row.clone());
                }
            }
        }
        Ok(out)
    }

    /// Multipart uploads in progress in `bucket` under `prefix`, by key,
    /// then by initiation.
    pub fn list_uploads(&self, bucket: &str, prefix: &str) -> Result<Vec<Arc<UploadRow>>, S3Error> {
        let idx = self.index();
        if !idx.buckets.contains_key(bucket) {
            return Err(S3Error::NoSuchBucket(bucket.to_owned()));
        }
        let mut v: Vec<_> = idx
            .uploads
            .values()
            .filter(|u| u.bucket == bucket && u.key.starts_with(prefix))
            .cloned()
            .collect();
        v.sort_by(|a, b| (&a.key, a.initiated_ms).cmp(&(&b.key, b.initiated_ms)));
        Ok(v)
    }
}
