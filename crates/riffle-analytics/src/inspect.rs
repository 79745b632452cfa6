//! What the web console reads of applications where the API has no
//! operation for it:
//!
//! - [`Service::check_code`]: application code through the parser
//!   (exactly as CreateApplication and UpdateApplication check it, with
//!   the error's line and column), then through the planner the running
//!   application uses, over the application's input and reference
//!   schemas: the in-application streams it would have, with their
//!   columns, or why it could not run.
//! - [`Service::watch`]: the rows of one in-application stream of a
//!   running application, live. The application's task copies rows only
//!   of streams someone watches (one atomic load per batch otherwise);
//!   each watcher has a bounded queue, and rows that do not fit are
//!   dropped and counted, never waited for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::mpsc;

use crate::engine::pipeline::{Pipeline, Table};
use crate::engine::query::Row;
use crate::engine::value::{format_timestamp, SqlType, Value};
use crate::run::{input_streams, reference_schema};
use crate::sql::{self, SqlError};
use crate::{key, AnalyticsError, Service};

/// An in-application stream and its columns (name, SQL type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamColumns {
    pub name: String,
    pub columns: Vec<(String, String)>,
}

/// The result of [`Service::check_code`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Check {
    /// The parser's error: CreateApplication and UpdateApplication refuse
    /// the code with it (CodeValidationException).
    pub parse: Option<SqlError>,
    /// Why the application could not run this code with its present
    /// inputs and reference data (the planner's message); the API
    /// accepts such code, as AWS does.
    pub plan: Option<String>,
    /// The in-application streams the code gives the application, when
    /// it plans.
    pub streams: Vec<StreamColumns>,
}

/// Batches queued per watcher before rows are dropped.
const QUEUE: usize = 16;
/// Rows of one batch sent to a watcher; the rest are dropped.
const BATCH_ROWS: usize = 1000;

/// Rows of a watched stream, from one step of the application.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The stream's columns, without ROWTIME.
    pub columns: Arc<Vec<String>>,
    pub rows: Arc<Vec<Row>>,
}

impl Batch {
    /// Each row's values as SQL text (`None` for NULL), ROWTIME first.
    pub fn text_rows(&self) -> Vec<Vec<Option<String>>> {
        self.rows
            .iter()
            .map(|r| {
                std::iter::once(Some(format_timestamp(r.rowtime)))
                    .chain(r.values.iter().map(Value::to_text))
                    .collect()
            })
            .collect()
    }
}

struct Sub {
    id: u64,
    key: String,
    stream: String,
    tx: mpsc::Sender<Batch>,
    dropped: Arc<AtomicU64>,
}

/// The watchers of every application.
#[derive(Default)]
pub(crate) struct Watches {
    count: AtomicUsize,
    next: AtomicU64,
    subs: Mutex<Vec<Sub>>,
}

impl Watches {
    fn subs(&self) -> std::sync::MutexGuard<'_, Vec<Sub>> {
        match self.subs.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        }
    }

    /// The streams of the application `key` someone watches, sorted.
    pub(crate) fn streams(&self, key: &str) -> Vec<String> {
        if self.count.load(Ordering::Relaxed) == 0 {
            return Vec::new();
        }
        let mut out: Vec<String> = self
            .subs()
            .iter()
            .filter(|s| s.key == key)
            .map(|s| s.stream.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Hands the watched rows of one step to their watchers.
    pub(crate) fn publish(&self, key: &str, pipeline: &mut Pipeline) {
        let taken = pipeline.take_watched();
        if taken.is_empty() {
            return;
        }
        let subs = self.subs();
        for (stream, mut rows) in taken {
            let cut = rows.len().saturating_sub(BATCH_ROWS) as u64;
            rows.truncate(BATCH_ROWS);
            let columns: Vec<String> = pipeline
                .columns(&stream)
                .unwrap_or_default()
                .iter()
                .map(|(n, _)| n.clone())
                .collect();
            let batch = Batch {
                columns: Arc::new(columns),
                rows: Arc::new(rows),
            };
            for s in subs.iter().filter(|s| s.key == key && s.stream == stream) {
                let lost = match s.tx.try_send(batch.clone()) {
                    Ok(()) => cut,
                    Err(_) => cut + batch.rows.len() as u64,
                };
                s.dropped.fetch_add(lost, Ordering::Relaxed);
            }
        }
    }
}

/// A watch of one in-application stream; dropping it ends the watch.
pub struct Watcher {
    svc: Weak<Service>,
    id: u64,
    /// The rows, batch by batch, while the application runs.
    pub rows: mpsc::Receiver<Batch>,
    dropped: Arc<AtomicU64>,
}

impl Watcher {
    /// Rows dropped so far because this watcher fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(svc) = self.svc.upgrade() {
            let w = &svc.watches;
            let mut subs = w.subs();
            let before = subs.len();
            subs.retain(|s| s.id != self.id);
            w.count.fetch_sub(before - subs.len(), Ordering::Relaxed);
        }
    }
}

impl Service {
    /// The application `name` exists in `region`, or DescribeApplication's
    /// ResourceNotFoundException.
    pub fn application_exists(&self, region: &str, name: &str) -> Result<(), AnalyticsError> {
        match self.apps.get(&key(region, name)) {
            Some(_) => Ok(()),
            None => Err(crate::ops::not_found(name, self.account())),
        }
    }

    /// Watches the in-application stream `stream` of the application
    /// `name` in `region`: rows arrive while the application runs (and
    /// from its next start, if it is not running now).
    pub fn watch(&self, region: &str, name: &str, stream: &str) -> Watcher {
        let (tx, rows) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let id = self.watches.next.fetch_add(1, Ordering::Relaxed);
        self.watches.subs().push(Sub {
            id,
            key: key(region, name),
            stream: stream.to_owned(),
            tx,
            dropped: dropped.clone(),
        });
        self.watches.count.fetch_add(1, Ordering::Relaxed);
        Watcher {
            svc: self.me.clone(),
            id,
            rows,
            dropped,
        }
    }

    /// Checks `code` as the application `name` in `region` would run it
    /// (its first input's schema, its reference tables' schemas). Without
    /// such an application only the parser runs.
    pub fn check_code(&self, region: &str, name: Option<&str>, code: &str) -> Check {
        let program = match sql::parse(code) {
            Ok(p) => p,
            Err(e) => {
                return Check {
                    parse: Some(e),
                    ..Check::default()
                }
            }
        };
        let Some(app) = name.and_then(|n| self.apps.get(&key(region, n))) else {
            return Check::default();
        };
        let planned = (|| -> Result<Pipeline, String> {
            let inputs = match app.inputs.first() {
                Some(i) => input_streams(&i.doc)?.streams,
                None => Vec::new(),
            };
            let mut tables = HashMap::new();
            for r in &app.references {
                let (name, mapping) = reference_schema(&r.doc)?;
                let table = Table {
                    columns: mapping.columns().to_vec(),
                    rows: Arc::new(Vec::new()),
                };
                tables.insert(name, table);
            }
            Pipeline::new(&program, &inputs, &tables).map_err(|e| e.0)
        })();
        match planned {
            Ok(p) => Check {
                streams: p
                    .stream_names()
                    .map(|n| StreamColumns {
                        name: n.to_owned(),
                        columns: p
                            .columns(n)
                            .unwrap_or_default()
                            .iter()
                            .map(|(c, t): &(String, SqlType)| (c.clone(), t.to_string()))
                            .collect(),
                    })
                    .collect(),
                ..Check::default()
            },
            Err(e) => Check {
                plan: Some(e),
                ..Check::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use riffle_core::clock::SystemClock;
    use riffle_core::Clock;

    #[test]
    fn a_watch_ends_when_its_watcher_is_dropped() {
        let svc = Service::new(
            crate::Config::default(),
            SystemClock::new() as Arc<dyn Clock>,
        );
        let k = key("us-east-1", "a");
        assert!(svc.watches.streams(&k).is_empty());
        let w1 = svc.watch("us-east-1", "a", "DESTINATION_SQL_STREAM");
        let w2 = svc.watch("us-east-1", "a", "error_stream");
        let w3 = svc.watch("us-east-1", "a", "error_stream");
        let other = svc.watch("us-east-1", "b", "X");
        assert_eq!(
            svc.watches.streams(&k),
            ["DESTINATION_SQL_STREAM", "error_stream"]
        );
        drop(w1);
        drop(w2);
        assert_eq!(svc.watches.streams(&k), ["error_stream"]);
        drop(w3);
        assert!(svc.watches.streams(&k).is_empty());
        assert_eq!(svc.watches.count.load(Ordering::Relaxed), 1);
        drop(other);
        assert_eq!(svc.watches.count.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_watcher_that_falls_behind_loses_rows_and_counts_them() {
        let svc = Service::new(
            crate::Config::default(),
            SystemClock::new() as Arc<dyn Clock>,
        );
        let program = sql::parse(
            "CREATE STREAM \"D\" (n INTEGER);
             CREATE PUMP \"P\" AS INSERT INTO \"D\" SELECT STREAM n FROM \"IN\";",
        )
        .unwrap();
        let inputs = [("IN".to_owned(), vec![("N".to_owned(), SqlType::Integer)])];
        let mut p = Pipeline::new(&program, &inputs, &HashMap::new()).unwrap();
        let k = key("us-east-1", "a");
        let mut w = svc.watch("us-east-1", "a", "D");
        p.watch(&svc.watches.streams(&k));
        let input = p.stream_index("IN").unwrap();
        // QUEUE steps of 2 rows fit; 3 more steps of 2 rows are dropped,
        // and rows over BATCH_ROWS in one step are dropped too.
        for step in 0..QUEUE + 3 {
            let rows = (0..2).map(|i| (input, vec![Value::Int((step * 2 + i) as i64)]));
            p.step(1000 + step as i64, rows.collect(), Vec::new());
            svc.watches.publish(&k, &mut p);
        }
        assert_eq!(w.dropped(), 6);
        let first = w.rows.try_recv().unwrap();
        assert_eq!(first.columns.as_slice(), ["N"]);
        let at = Some("1970-01-01 00:00:01".to_owned());
        assert_eq!(
            first.text_rows(),
            [
                vec![at.clone(), Some("0".to_owned())],
                vec![at, Some("1".to_owned())]
            ]
        );
        let mut queued = 1;
        while w.rows.try_recv().is_ok() {
            queued += 1;
        }
        assert_eq!(queued, QUEUE);
        let big = (0..BATCH_ROWS + 5).map(|i| (input, vec![Value::Int(i as i64)]));
        p.step(5000, big.collect(), Vec::new());
        svc.watches.publish(&k, &mut p);
        assert_eq!(w.rows.try_recv().unwrap().rows.len(), BATCH_ROWS);
        assert_eq!(w.dropped(), 11);
    }
}
