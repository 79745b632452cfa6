//! Backends without a file.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::{Backend, Batch, MetaError, Write};

type Tables = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

/// Rows kept in process memory: tests, and anything that wants to read
/// back what it wrote without a file.
#[derive(Default)]
pub struct MemoryBackend {
    tables: Mutex<Tables>,
}

impl MemoryBackend {
    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Backend for MemoryBackend {
    fn scan(&self, table: &str) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        Ok(self
            .lock()
            .get(table)
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, MetaError> {
        Ok(self.lock().get(table).and_then(|t| t.get(key)).cloned())
    }

    fn tables(&self) -> Result<Vec<String>, MetaError> {
        Ok(self.lock().keys().cloned().collect())
    }

    fn commit(&self, batch: &Batch) -> Result<(), MetaError> {
        let mut tables = self.lock();
        for w in &batch.writes {
            match w {
                Write::Put { table, key, value } => {
                    tables
                        .entry(table.clone())
                        .or_default()
                        .insert(key.clone(), value.clone());
                }
                Write::Delete { table, key } => {
                    if let Some(t) = tables.get_mut(table) {
                        t.remove(key);
                    }
                }
            }
        }
        for t in &batch.drop_tables {
            tables.remove(t);
        }
        Ok(())
    }
}

/// Keeps nothing: `--storage memory`, where state lives as long as the
/// process. Every read finds nothing and every commit succeeds.
#[derive(Default)]
pub struct NoBackend;

impl Backend for NoBackend {
    fn scan(&self, _: &str) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        Ok(Vec::new())
    }

    fn get(&self, _: &str, _: &str) -> Result<Option<Vec<u8>>, MetaError> {
        Ok(None)
    }

    fn tables(&self) -> Result<Vec<String>, MetaError> {
        Ok(Vec::new())
    }

    fn commit(&self, _: &Batch) -> Result<(), MetaError> {
        Ok(())
    }
}
