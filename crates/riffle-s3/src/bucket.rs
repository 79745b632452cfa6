//! Buckets: create, delete, head, list, location.

use riffle_meta::Tx;

use crate::names::check_bucket;
use crate::store::{BucketEntry, BucketRow, S3};
use crate::S3Error;

/// The region whose buckets have no LocationConstraint.
pub const US_EAST_1: &str = "us-east-1";

impl S3 {
    /// Every bucket, by name.
    pub fn list_buckets(&self) -> Vec<BucketRow> {
        self.index()
            .buckets
            .values()
            .map(|b| b.row.clone())
            .collect()
    }

    /// The bucket, or `NoSuchBucket`.
    pub fn head_bucket(&self, name: &str) -> Result<BucketRow, S3Error> {
        self.index()
            .buckets
            .get(name)
            .map(|b| b.row.clone())
            .ok_or_else(|| S3Error::NoSuchBucket(name.to_owned()))
    }

    /// Creates `name` in `region` (the LocationConstraint, else the
    /// endpoint's region). Creating a bucket one already owns succeeds
    /// again in us-east-1, as AWS's legacy behaviour there, and is
    /// `BucketAlreadyOwnedByYou` elsewhere.
    pub async fn create_bucket(&self, name: &str, region: &str) -> Result<BucketRow, S3Error> {
        check_bucket(name)?;
        let _commit = self.commit.lock().await;
        if let Some(b) = self.index().buckets.get(name) {
            return if region == US_EAST_1 && b.row.region == US_EAST_1 {
                Ok(b.row.clone())
            } else {
                Err(S3Error::BucketAlreadyOwnedByYou(name.to_owned()))
            };
        }
        let row = BucketRow {
            name: name.to_owned(),
            region: region.to_owned(),
            created_ms: self.now_ms(),
        };
        let mut tx = Tx::new();
        tx.put(&self.buckets_t, name, &row)?;
        self.apply(tx).await?;
        self.index().buckets.insert(
            name.to_owned(),
            BucketEntry {
                row: row.clone(),
                objects: Default::default(),
            },
        );
        Ok(row)
    }

    /// Deletes an empty bucket, aborting its multipart uploads.
    pub async fn delete_bucket(&self, name: &str) -> Result<(), S3Error> {
        let _commit = self.commit.lock().await;
        let uploads: Vec<String> = {
            let idx = self.index();
            let b = idx
                .buckets
                .get(name)
                .ok_or_else(|| S3Error::NoSuchBucket(name.to_owned()))?;
            if !b.objects.is_empty() {
                return Err(S3Error::BucketNotEmpty(name.to_owned()));
            }
            idx.uploads
                .values()
                .filter(|u| u.bucket == name)
                .map(|u| u.id.clone())
                .collect()
        };
        let mut tx = Tx::new();
        tx.delete(&self.buckets_t, name);
        for u in &uploads {
            tx.delete(&self.uploads_t, u.as_str());
        }
        self.apply(tx).await?;
        {
            let mut idx = self.index();
            idx.buckets.remove(name);
            for u in &uploads {
                idx.uploads.remove(u);
            }
        }
        let fs = self.fs.clone();
        let dirs: Vec<_> = uploads.iter().map(|u| self.upload_dir(u)).collect();
        crate::store::blocking(move || {
            for d in dirs {
                let _ = fs.remove_dir_all(&d);
            }
        })
        .await;
        Ok(())
    }

    /// Whether `bucket` holds `key`.
    pub fn contains(&self, bucket: &str, key: &str) -> bool {
        self.index()
            .buckets
            .get(bucket)
            .is_some_and(|b| b.objects.contains_key(key))
    }
}
