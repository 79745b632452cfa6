//! An application's code as a running graph: in-application streams
//! connected by pumps.
//!
//! [`Pipeline::new`] resolves the parsed [`Program`] against the input
//! streams (`SOURCE_SQL_STREAM_001`, ...) and the reference tables:
//! every stream a pump reads or writes must exist, a pump's columns must
//! fit its target, and pumps may not form a cycle. Pumps run in
//! dependency order, so a row put into an input stream flows through
//! every pump downstream within one [`Pipeline::step`].
//!
//! Time comes from the caller: `step(now, ...)` gives input rows the
//! ROWTIME `now` (never less than a ROWTIME given before: ROWTIME does
//! not go back) and closes every window that ended by `now`, input or
//! not. Rows that fail go to `error_stream`, whose columns are AWS's
//! (ERROR_TIME, ERROR_LEVEL, ERROR_NAME, MESSAGE, DATA_ROWTIME, DATA_ROW,
//! PUMP_NAME); a failure never stops the pipeline.

use std::collections::HashMap;
use std::sync::Arc;

use super::expr::{plan_err, PlanError, PlanResult};
use super::query::{self, Catalog, Columns, ErrorRow, Operator, Out, Row, TableRows};
use super::value::{cast, SqlType, Value};
use crate::sql::{Program, Statement};

/// The stream every application has for rows that failed.
pub const ERROR_STREAM: &str = "error_stream";

/// `error_stream`'s columns.
pub fn error_columns() -> Vec<(String, SqlType)> {
    [
        ("ERROR_TIME", SqlType::Timestamp),
        ("ERROR_LEVEL", SqlType::Varchar(10)),
        ("ERROR_NAME", SqlType::Varchar(32)),
        ("MESSAGE", SqlType::Varchar(4096)),
        ("DATA_ROWTIME", SqlType::Timestamp),
        ("DATA_ROW", SqlType::Varchar(49152)),
        ("PUMP_NAME", SqlType::Varchar(128)),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t))
    .collect()
}

/// A reference table: columns and rows.
#[derive(Debug, Clone)]
pub struct Table {
    pub columns: Vec<(String, SqlType)>,
    pub rows: Arc<Vec<Vec<Value>>>,
}

struct StreamDef {
    name: String,
    columns: Vec<(String, SqlType)>,
}

struct Pump {
    name: String,
    /// The stream read, then the streams joined to it.
    sources: Vec<usize>,
    target: usize,
    /// For each target column, the query output column that fills it.
    fill: Vec<Option<usize>>,
    ops: Vec<Box<dyn Operator>>,
}

/// A running application's SQL.
pub struct Pipeline {
    streams: Vec<StreamDef>,
    by_name: HashMap<String, usize>,
    pumps: Vec<Pump>,
    error_stream: usize,
    tapped: Vec<bool>,
    /// How many pump inputs read each stream.
    readers: Vec<usize>,
    taps: HashMap<usize, Vec<Row>>,
    /// Streams someone watches ([`Pipeline::watch`]): their rows are
    /// copied for [`Pipeline::take_watched`].
    watched: Vec<bool>,
    watch_rows: HashMap<usize, Vec<Row>>,
    last_rowtime: i64,
}

struct Names<'a> {
    streams: &'a [StreamDef],
    by_name: &'a HashMap<String, usize>,
    tables: &'a HashMap<String, Table>,
}

impl Catalog for Names<'_> {
    fn stream(&self, name: &str) -> Option<Vec<(String, SqlType)>> {
        self.by_name
            .get(name)
            .map(|i| self.streams[*i].columns.clone())
    }

    fn table(&self, name: &str) -> Option<(Columns, TableRows)> {
        self.tables
            .get(name)
            .map(|t| (t.columns.clone(), t.rows.clone()))
    }
}

impl Pipeline {
    /// Builds the graph of `program` over the given input streams and
    /// reference tables.
    pub fn new(
        program: &Program,
        inputs: &[(String, Vec<(String, SqlType)>)],
        tables: &HashMap<String, Table>,
    ) -> PlanResult<Pipeline> {
        let mut streams = Vec::new();
        let mut by_name = HashMap::new();
        let mut add = |streams: &mut Vec<StreamDef>, name: &str, columns| -> PlanResult<()> {
            if by_name.contains_key(name) || tables.contains_key(name) {
                return plan_err(format!("Object '{name}' already exists"));
            }
            by_name.insert(name.to_string(), streams.len());
            streams.push(StreamDef {
                name: name.to_string(),
                columns,
            });
            Ok(())
        };
        add(&mut streams, ERROR_STREAM, error_columns())?;
        for (name, columns) in inputs {
            add(&mut streams, name, columns.clone())?;
        }
        for s in &program.statements {
            if let Statement::CreateStream { name, columns } = s {
                let cols = columns
                    .iter()
                    .map(|c| {
                        SqlType::parse(&c.data_type.to_string())
                            .map(|t| (c.name.clone(), t))
                            .ok_or_else(|| {
                                PlanError(format!(
                                    "Unsupported type {} of column {}",
                                    c.data_type, c.name
                                ))
                            })
                    })
                    .collect::<PlanResult<Vec<_>>>()?;
                add(&mut streams, name, cols)?;
            }
        }
        let mut pumps = Vec::new();
        for s in &program.statements {
            let Statement::CreatePump {
                name,
                target,
                columns,
                query,
                stagger,
                windows,
                ..
            } = s
            else {
                continue;
            };
            if pumps.iter().any(|p: &Pump| p.name == *name) {
                return plan_err(format!("Pump '{name}' already exists"));
            }
            let names = Names {
                streams: &streams,
                by_name: &by_name,
                tables,
            };
            let compiled = query::compile_with(query, &names, stagger.as_deref(), windows)
                .map_err(|e| PlanError(format!("Pump {name}: {e}")))?;
            let Some(&t) = by_name.get(target) else {
                return plan_err(format!("Pump {name}: stream '{target}' not found"));
            };
            if t == 0 {
                return plan_err(format!("Pump {name}: {ERROR_STREAM} cannot be written"));
            }
            let mut sources = Vec::new();
            for n in std::iter::once(&compiled.source).chain(&compiled.joined) {
                let Some(&i) = by_name.get(n) else {
                    return plan_err(format!("Pump {name}: stream '{n}' not found"));
                };
                sources.push(i);
            }
            let tcols = &streams[t].columns;
            let fill = if columns.is_empty() {
                if compiled.columns.len() != tcols.len() {
                    return plan_err(format!(
                        "Pump {name}: the query has {} columns and stream '{target}' has {}",
                        compiled.columns.len(),
                        tcols.len()
                    ));
                }
                (0..tcols.len()).map(Some).collect()
            } else {
                if compiled.columns.len() != columns.len() {
                    return plan_err(format!(
                        "Pump {name}: {} target columns named and the query has {} columns",
                        columns.len(),
                        compiled.columns.len()
                    ));
                }
                let mut fill = vec![None; tcols.len()];
                for (k, c) in columns.iter().enumerate() {
                    let Some(pos) = tcols.iter().position(|(n, _)| n == c) else {
                        return plan_err(format!(
                            "Pump {name}: column '{c}' not found in stream '{target}'"
                        ));
                    };
                    fill[pos] = Some(k);
                }
                fill
            };
            pumps.push(Pump {
                name: name.clone(),
                sources,
                target: t,
                fill,
                ops: compiled.ops,
            });
        }
        let pumps = order(pumps, streams.len())?;
        let n = streams.len();
        let mut readers = vec![0; n];
        for p in &pumps {
            for &s in &p.sources {
                readers[s] += 1;
            }
        }
        Ok(Pipeline {
            streams,
            by_name,
            pumps,
            error_stream: 0,
            tapped: vec![false; n],
            readers,
            taps: HashMap::new(),
            watched: vec![false; n],
            watch_rows: HashMap::new(),
            last_rowtime: i64::MIN,
        })
    }

    /// Collects the rows of stream `name` for [`Pipeline::take`] (an
    /// application output).
    pub fn tap(&mut self, name: &str) -> PlanResult<()> {
        match self.by_name.get(name) {
            Some(&i) => {
                self.tapped[i] = true;
                Ok(())
            }
            None => plan_err(format!("Stream '{name}' not found")),
        }
    }

    /// The columns of a stream.
    pub fn columns(&self, name: &str) -> Option<&[(String, SqlType)]> {
        self.by_name
            .get(name)
            .map(|i| self.streams[*i].columns.as_slice())
    }

    /// Rows collected on a tapped stream since the last take.
    pub fn take(&mut self, name: &str) -> Vec<Row> {
        match self.by_name.get(name) {
            Some(i) => self.taps.remove(i).unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// One step at time `now`: `input` rows (values in the input stream's
    /// column order) enter their streams with ROWTIME `now`, flow through
    /// the pumps, and windows that ended by `now` close. `errors` are rows
    /// that failed before entering (mapping failures): they go to
    /// `error_stream`.
    pub fn step(&mut self, now: i64, input: Vec<(usize, Vec<Value>)>, errors: Vec<ErrorRow>) {
        let now = now.max(self.last_rowtime);
        self.last_rowtime = now;
        let mut pending: Vec<Vec<Row>> = (0..self.streams.len()).map(|_| Vec::new()).collect();
        for (stream, values) in input {
            if let Some(p) = pending.get_mut(stream) {
                p.push(Row {
                    rowtime: now,
                    values,
                });
            }
        }
        let mut failed: Vec<(ErrorRow, &str)> = errors.into_iter().map(|e| (e, "")).collect();
        let mut error_rows = Vec::new();
        for pump in &mut self.pumps {
            // Rows of every input in ROWTIME order (the source's first at
            // equal times); error_stream is fed at the end of the step.
            let mut rows: Vec<(usize, Row)> = Vec::new();
            for (input, &src) in pump.sources.iter().enumerate() {
                if src == self.error_stream {
                    continue;
                }
                if self.readers[src] == 1 && !self.tapped[src] && !self.watched[src] {
                    // The only reader takes the rows.
                    let taken = std::mem::take(&mut pending[src]);
                    rows.extend(taken.into_iter().map(|r| (input, r)));
                } else {
                    rows.extend(pending[src].iter().map(|r| (input, r.clone())));
                }
            }
            if pump.sources.len() > 1 {
                rows.sort_by_key(|(_, r)| r.rowtime);
            }
            let mut out = Out::default();
            run_inputs(&mut pump.ops, rows, now, &mut out);
            let tcols = &self.streams[pump.target].columns;
            for r in out.rows {
                match fill(&pump.fill, tcols, &r) {
                    Ok(values) => pending[pump.target].push(Row {
                        rowtime: r.rowtime,
                        values,
                    }),
                    Err(e) => error_rows.push((ErrorRow::of(&r, e), pump.name.clone())),
                }
            }
            for e in out.errors {
                error_rows.push((e, pump.name.clone()));
            }
        }
        let error_rows: Vec<(ErrorRow, String)> = error_rows;
        failed.extend(error_rows.iter().map(|(e, p)| (e.clone(), p.as_str())));
        for (e, pump) in failed {
            pending[self.error_stream].push(Row {
                rowtime: now,
                values: vec![
                    Value::Timestamp(now),
                    Value::str("ERROR"),
                    Value::str(if pump.is_empty() {
                        "Mapping_Error"
                    } else {
                        "SQL_Error"
                    }),
                    Value::str(e.message.as_str()),
                    Value::Timestamp(e.rowtime),
                    Value::str(e.data.as_str()),
                    if pump.is_empty() {
                        Value::Null
                    } else {
                        Value::str(pump)
                    },
                ],
            });
        }
        for (i, rows) in pending.into_iter().enumerate() {
            if self.watched[i] && !rows.is_empty() {
                self.watch_rows
                    .entry(i)
                    .or_default()
                    .extend(rows.iter().cloned());
            }
            if self.tapped[i] && !rows.is_empty() {
                self.taps.entry(i).or_default().extend(rows);
            }
        }
    }

    /// Copies the rows of the streams `names` (and no others) from the
    /// next step on, for [`Pipeline::take_watched`]; unknown names are
    /// ignored.
    pub fn watch(&mut self, names: &[String]) {
        self.watched.iter_mut().for_each(|w| *w = false);
        for n in names {
            if let Some(&i) = self.by_name.get(n) {
                self.watched[i] = true;
            }
        }
        self.watch_rows.retain(|i, _| self.watched[*i]);
    }

    /// The rows of watched streams since the last call, by stream name.
    pub fn take_watched(&mut self) -> Vec<(String, Vec<Row>)> {
        self.watch_rows
            .drain()
            .map(|(i, rows)| (self.streams[i].name.clone(), rows))
            .collect()
    }

    /// The ROWTIME of the oldest row any pump still holds in an open
    /// window: input read again from a position before it rebuilds every
    /// open window (Random Cut Forest's and HOTSPOTS' models are not
    /// windows and are not rebuilt).
    pub fn oldest_needed(&self) -> Option<i64> {
        self.pumps
            .iter()
            .flat_map(|p| p.ops.iter())
            .filter_map(|op| op.oldest())
            .min()
    }

    /// The index of an input stream, for [`Pipeline::step`].
    pub fn stream_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    pub fn stream_names(&self) -> impl Iterator<Item = &str> {
        self.streams.iter().map(|s| s.name.as_str())
    }
}

/// Rows through a chain of operators, then time advanced in each.
/// Rows of the pump's inputs through its operators.
fn run_inputs(ops: &mut [Box<dyn Operator>], rows: Vec<(usize, Row)>, now: i64, out: &mut Out) {
    let Some((first, rest)) = ops.split_first_mut() else {
        out.rows.extend(rows.into_iter().map(|(_, r)| r));
        return;
    };
    let mut mid = Out::default();
    for (input, r) in rows {
        first.push_input(input, r, now, &mut mid);
    }
    first.advance(now, &mut mid);
    out.errors.append(&mut mid.errors);
    run_chain(rest, mid.rows, now, out);
}

fn run_chain(ops: &mut [Box<dyn Operator>], rows: Vec<Row>, now: i64, out: &mut Out) {
    let Some((first, rest)) = ops.split_first_mut() else {
        out.rows.extend(rows);
        return;
    };
    let mut mid = Out::default();
    for r in rows {
        first.push(r, now, &mut mid);
    }
    first.advance(now, &mut mid);
    out.errors.append(&mut mid.errors);
    run_chain(rest, mid.rows, now, out);
}

/// A query row cast into the target stream's columns.
fn fill(
    fill: &[Option<usize>],
    tcols: &[(String, SqlType)],
    r: &Row,
) -> Result<Vec<Value>, String> {
    fill.iter()
        .zip(tcols)
        .map(|(src, (name, t))| match src {
            None => Ok(Value::Null),
            Some(k) => {
                let v = r.values.get(*k).cloned().unwrap_or(Value::Null);
                cast(&v, *t).map_err(|e| format!("Column {name}: {}", e.0))
            }
        })
        .collect()
}

/// Pumps in dependency order: a pump runs after every pump writing the
/// stream it reads.
fn order(pumps: Vec<Pump>, streams: usize) -> PlanResult<Vec<Pump>> {
    let n = pumps.len();
    let mut writers: Vec<Vec<usize>> = vec![Vec::new(); streams];
    for (i, p) in pumps.iter().enumerate() {
        writers[p.target].push(i);
    }
    // 0 unvisited, 1 in progress, 2 done.
    let mut mark = vec![0u8; n];
    let mut out = Vec::with_capacity(n);
    fn visit(
        i: usize,
        pumps: &[Pump],
        writers: &[Vec<usize>],
        mark: &mut [u8],
        out: &mut Vec<usize>,
    ) -> PlanResult<()> {
        match mark[i] {
            2 => return Ok(()),
            1 => {
                return plan_err(format!(
                    "Pump {} is part of a cycle: a stream feeds itself",
                    pumps[i].name
                ))
            }
            _ => {}
        }
        mark[i] = 1;
        for &src in &pumps[i].sources {
            for &w in &writers[src] {
                visit(w, pumps, writers, mark, out)?;
            }
        }
        mark[i] = 2;
        out.push(i);
        Ok(())
    }
    for i in 0..n {
        visit(i, &pumps, &writers, &mut mark, &mut out)?;
    }
    let mut slots: Vec<Option<Pump>> = pumps.into_iter().map(Some).collect();
    Ok(out
        .into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect())
}
