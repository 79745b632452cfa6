//! The analytic table functions, read in FROM as
//! `TABLE(NAME(CURSOR(SELECT STREAM ... FROM ...), argument, ...))`.
//!
//! The cursor's query is compiled like any pump's query; the function is
//! one more operator after it, and the outer SELECT reads the function's
//! output columns. Arguments after the cursor are literals (a number, a
//! quoted column name, TRUE or FALSE); a wrong count, a non-literal or a
//! value out of AWS's range is refused when the application is planned,
//! with the function and the parameter named.
//!
//! - `RANDOM_CUT_FOREST(cursor [, numberOfTrees [, subSampleSize
//!   [, timeDecay [, shingleSize]]]])`: every input column, then
//!   `ANOMALY_SCORE DOUBLE`; one row out per row in, with its ROWTIME.
//!   Trailing arguments may be left out and take AWS's defaults (100, 256,
//!   100,000, 1). See [`rcf`] for the forest.
//! - `RANDOM_CUT_FOREST_WITH_EXPLANATION(cursor [, numberOfTrees
//!   [, subSampleSize [, timeDecay [, shingleSize [, withDirectionality]]]]])`:
//!   the same, then `ANOMALY_EXPLANATION VARCHAR`, a JSON object with each
//!   numeric column's attribution; `withDirectionality` defaults to FALSE.
//! - `HOTSPOTS(cursor, windowSize, scanRadius,
//!   minimumNumberOfPointsInAHotspot)`: every input column, then
//!   `HOTSPOTS_RESULT VARCHAR`, one row out per row in. All four arguments
//!   are required. See [`super::hotspots`].
//! - `TOP_K_ITEMS_TUMBLING(cursor, 'columnName', K, windowSize)`: per
//!   tumbling window, the K most frequent non-NULL values of the column as
//!   rows `(ITEM, ITEM_COUNT BIGINT)`, ITEM of the column's type, most
//!   frequent first; values with equal counts come in the order they
//!   first appeared in the window (took their counter, once counting is
//!   approximate). K is 1 to 100,000, `windowSize` 1 to 3,600 seconds.
//! - `COUNT_DISTINCT_ITEMS_TUMBLING(cursor, 'columnName', windowSize)`:
//!   per tumbling window, one row `(NUMBER_OF_DISTINCT_ITEMS BIGINT)`, the
//!   number of distinct non-NULL values of the column; `windowSize` 1 to
//!   3,600 seconds.
//!
//! Numeric columns. The forest and HOTSPOTS take a row's numeric columns,
//! in column order, as a point: TINYINT, SMALLINT, INTEGER, BIGINT, REAL
//! and DOUBLE. Other columns pass through untouched. AWS does not take
//! DECIMAL ("Use DOUBLE instead"): a DECIMAL column in the cursor is a
//! planning error that says to CAST it. A row with a NULL (or NaN or
//! infinite) numeric value is not learned: RANDOM_CUT_FOREST gives it
//! `ANOMALY_SCORE` 0 and zero attributions, HOTSPOTS leaves it out of the
//! window and gives it the current window's hotspots. The forest's random
//! numbers have a fixed seed, so the same input gives the same scores.
//!
//! Memory of the forest. Each tree keeps up to `subSampleSize` points of
//! `dimensions × shingleSize` coordinates, each stored about three times
//! (a leaf's point and the bounding boxes of the cut above it), 24 bytes
//! a coordinate. A function whose `numberOfTrees × subSampleSize ×
//! numeric columns × shingleSize` exceeds [`MAX_FOREST_COORDINATES`]
//! (16 million coordinates, about 400 MB) is refused when planned; AWS's
//! defaults with 30 numeric columns need 768,000.
//!
//! Tumbling windows. Windows are `windowSize` seconds long and aligned on
//! the epoch: the window of a row is `[floor(ROWTIME / size) × size, +size)`.
//! A window closes when a row of a later window arrives or when time
//! reaches its end with no input, and its rows carry ROWTIME at the
//! window's end; a window without rows emits nothing. The column is named
//! as a quoted string: its exact name, or else the one column whose name
//! matches ignoring case.
//!
//! Counting. AWS approximates both counts. `TOP_K_ITEMS_TUMBLING` counts
//! exactly while a window has at most `max(10,000, 4 × K)` distinct
//! values; past that it keeps that many counters with the Space-Saving
//! algorithm (a new value takes over the counter of the least counted one,
//! one more than its count), so memory stays bounded and the counts of
//! frequent values are overestimated by at most the window's row count
//! divided by the number of counters. `COUNT_DISTINCT_ITEMS_TUMBLING`
//! counts exactly up to 10,000 distinct values in a window, as AWS says it
//! does; past that it switches to a HyperLogLog sketch of 2^14 registers
//! (a standard error near 0.8%), never reporting fewer than 10,001.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use sqlparser::ast::{self, Expr};

use super::expr::{function_name, plan_err, PlanError, PlanResult};
use super::hotspots::Hotspots;
use super::query::{self, Catalog, Columns, Compiled, Operator, Out, Row};
use super::rcf::{self, Forest, ForestParams};
use super::value::{SqlType, Value};

/// The most coordinates a forest may hold: `numberOfTrees ×
/// subSampleSize × numeric columns × shingleSize`.
pub const MAX_FOREST_COORDINATES: u64 = 16_000_000;

/// Distinct values `COUNT_DISTINCT_ITEMS_TUMBLING` counts exactly.
pub const EXACT_DISTINCT_LIMIT: usize = 10_000;

/// Distinct values `TOP_K_ITEMS_TUMBLING` counts exactly at least.
pub const EXACT_TOP_K_LIMIT: usize = 10_000;

/// HyperLogLog precision: 2^14 registers.
const HLL_BITS: u32 = 14;

/// Compiles `TABLE(call)`: the cursor's query, then the function.
pub fn table_function(call: &Expr, catalog: &dyn Catalog) -> PlanResult<Compiled> {
    let Expr::Function(f) = call else {
        return plan_err(format!(
            "TABLE(...) takes a table function such as RANDOM_CUT_FOREST(CURSOR(SELECT STREAM ...)), got {call}"
        ));
    };
    let name = function_name(f);
    let args = Args::of(&name, f)?;
    match name.as_str() {
        "RANDOM_CUT_FOREST" => random_cut_forest(&args, catalog, false),
        "RANDOM_CUT_FOREST_WITH_EXPLANATION" => random_cut_forest(&args, catalog, true),
        "HOTSPOTS" => hotspots(&args, catalog),
        "TOP_K_ITEMS_TUMBLING" => top_k(&args, catalog),
        "COUNT_DISTINCT_ITEMS_TUMBLING" => count_distinct(&args, catalog),
        _ => plan_err(format!(
            "Unknown table function {name}: expected RANDOM_CUT_FOREST, \
             RANDOM_CUT_FOREST_WITH_EXPLANATION, HOTSPOTS, TOP_K_ITEMS_TUMBLING \
             or COUNT_DISTINCT_ITEMS_TUMBLING"
        )),
    }
}

/// A literal argument.
enum Literal {
    /// A number, as written.
    Number(String),
    Text(String),
    Bool(bool),
}

/// A table function's arguments: the cursor's query and the literals.
struct Args<'a> {
    func: &'a str,
    cursor: &'a ast::Query,
    rest: Vec<&'a Expr>,
}

impl<'a> Args<'a> {
    fn of(func: &'a str, f: &'a ast::Function) -> PlanResult<Args<'a>> {
        let list = match &f.args {
            ast::FunctionArguments::List(l) if l.duplicate_treatment.is_none() => &l.args,
            _ => {
                return plan_err(format!(
                    "{func} takes CURSOR(SELECT STREAM ...) and literals"
                ))
            }
        };
        let mut exprs = Vec::with_capacity(list.len());
        for a in list {
            match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => exprs.push(e),
                other => return plan_err(format!("{func}: unsupported argument {other}")),
            }
        }
        let Some((first, rest)) = exprs.split_first() else {
            return plan_err(format!(
                "{func} needs CURSOR(SELECT STREAM ...) as its first argument"
            ));
        };
        let cursor = match first {
            Expr::Subquery(q) => q.as_ref(),
            Expr::Nested(inner) => match inner.as_ref() {
                Expr::Subquery(q) => q.as_ref(),
                _ => return not_cursor(func, first),
            },
            _ => return not_cursor(func, first),
        };
        Ok(Args {
            func,
            cursor,
            rest: rest.to_vec(),
        })
    }

    /// Checks the number of arguments after the cursor.
    fn count(&self, min: usize, names: &[&str]) -> PlanResult<()> {
        let n = self.rest.len();
        if n < min || n > names.len() {
            let wanted = if min == names.len() {
                format!("{} arguments after the cursor", names.len())
            } else {
                format!("{min} to {} arguments after the cursor", names.len())
            };
            return plan_err(format!(
                "{} takes {wanted} ({}), got {n}",
                self.func,
                names.join(", ")
            ));
        }
        Ok(())
    }

    fn literal(&self, i: usize, name: &str) -> PlanResult<Option<Literal>> {
        let Some(e) = self.rest.get(i) else {
            return Ok(None);
        };
        literal(e)
            .map(Some)
            .ok_or_else(|| PlanError(format!("{}: {name} must be a literal, got {e}", self.func)))
    }

    /// An integer argument in `lo..=hi`, or `default` when left out.
    fn int(&self, i: usize, name: &str, lo: i64, hi: i64, default: i64) -> PlanResult<i64> {
        let v = match self.literal(i, name)? {
            None => return Ok(default),
            Some(Literal::Number(text)) => integer(&text),
            Some(_) => None,
        };
        match v {
            Some(v) if (lo..=hi).contains(&v) => Ok(v),
            Some(v) => plan_err(format!(
                "{}: {name} must be between {lo} and {hi} (inclusive), got {v}",
                self.func
            )),
            None => plan_err(format!(
                "{}: {name} must be an integer between {lo} and {hi}, got {}",
                self.func,
                self.shown(i)
            )),
        }
    }

    /// A required integer argument in `lo..=hi`.
    fn required_int(&self, i: usize, name: &str, lo: i64, hi: i64) -> PlanResult<i64> {
        if i >= self.rest.len() {
            return plan_err(format!("{}: {name} is required", self.func));
        }
        self.int(i, name, lo, hi, lo)
    }

    fn double(&self, i: usize, name: &str) -> PlanResult<f64> {
        match self.literal(i, name)? {
            Some(Literal::Number(text)) => match text.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                _ => plan_err(format!(
                    "{}: {name} must be a finite number, got {text}",
                    self.func
                )),
            },
            None => plan_err(format!("{}: {name} is required", self.func)),
            Some(_) => plan_err(format!(
                "{}: {name} must be a number, got {}",
                self.func,
                self.shown(i)
            )),
        }
    }

    fn boolean(&self, i: usize, name: &str, default: bool) -> PlanResult<bool> {
        match self.literal(i, name)? {
            None => Ok(default),
            Some(Literal::Bool(b)) => Ok(b),
            Some(_) => plan_err(format!(
                "{}: {name} must be TRUE or FALSE, got {}",
                self.func,
                self.shown(i)
            )),
        }
    }

    /// The column named by a quoted string argument: its index and type.
    fn column(&self, i: usize, columns: &Columns) -> PlanResult<(usize, SqlType)> {
        let name = match self.literal(i, "columnName")? {
            Some(Literal::Text(s)) => s,
            None => return plan_err(format!("{}: columnName is required", self.func)),
            Some(_) => {
                return plan_err(format!(
                    "{}: columnName must be a column name in single quotes, such as 'TICKER_SYMBOL', got {}",
                    self.func,
                    self.shown(i)
                ))
            }
        };
        if let Some(k) = columns.iter().position(|(n, _)| *n == name) {
            return Ok((k, columns[k].1));
        }
        let folded: Vec<usize> = columns
            .iter()
            .enumerate()
            .filter(|(_, (n, _))| n.eq_ignore_ascii_case(&name))
            .map(|(k, _)| k)
            .collect();
        match folded.as_slice() {
            [k] => Ok((*k, columns[*k].1)),
            [] => plan_err(format!(
                "{}: column '{name}' not found in the cursor's columns ({})",
                self.func,
                columns
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            _ => plan_err(format!(
                "{}: column name '{name}' is ambiguous: it matches several columns when case is ignored",
                self.func
            )),
        }
    }

    fn shown(&self, i: usize) -> String {
        self.rest.get(i).map(|e| e.to_string()).unwrap_or_default()
    }
}

fn not_cursor<T>(func: &str, e: &Expr) -> PlanResult<T> {
    plan_err(format!(
        "{func} needs CURSOR(SELECT STREAM ...) as its first argument, got {e}"
    ))
}

fn literal(e: &Expr) -> Option<Literal> {
    match e {
        Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => Some(Literal::Number(n.clone())),
            ast::Value::SingleQuotedString(s) => Some(Literal::Text(s.clone())),
            ast::Value::Boolean(b) => Some(Literal::Bool(*b)),
            _ => None,
        },
        Expr::UnaryOp { op, expr } => match (op, literal(expr)?) {
            (ast::UnaryOperator::Minus, Literal::Number(n)) => {
                Some(Literal::Number(match n.strip_prefix('-') {
                    Some(positive) => positive.to_string(),
                    None => format!("-{n}"),
                }))
            }
            (ast::UnaryOperator::Plus, Literal::Number(n)) => Some(Literal::Number(n)),
            _ => None,
        },
        Expr::Nested(inner) => literal(inner),
        _ => None,
    }
}

/// A number literal's value when it is a whole number (`100`, `1e3`,
/// `100.0`) that fits an i64.
fn integer(text: &str) -> Option<i64> {
    if let Ok(v) = text.parse::<i64>() {
        return Some(v);
    }
    let f: f64 = text.parse().ok()?;
    // 2^63 itself does not fit.
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 2f64.powi(63)).then_some(f as i64)
}

/// The numeric columns of the cursor, for the forest and HOTSPOTS.
fn numeric_columns(func: &str, columns: &Columns) -> PlanResult<Vec<usize>> {
    let mut out = Vec::new();
    for (k, (name, t)) in columns.iter().enumerate() {
        if let SqlType::Decimal(..) = t {
            return plan_err(format!(
                "{func}: column {name} is {t}, and DECIMAL is not a supported type: \
                 CAST it to DOUBLE in the cursor"
            ));
        }
        if t.is_numeric() {
            out.push(k);
        }
    }
    Ok(out)
}

/// A row's numeric values as a point; NULL and non-numbers become NaN.
fn point_of(row: &Row, numeric: &[usize], point: &mut Vec<f64>) {
    point.clear();
    point.extend(numeric.iter().map(|&k| {
        row.values
            .get(k)
            .and_then(Value::as_f64)
            .unwrap_or(f64::NAN)
    }));
}

fn random_cut_forest(args: &Args, catalog: &dyn Catalog, explain: bool) -> PlanResult<Compiled> {
    let func = args.func;
    let mut names = vec!["numberOfTrees", "subSampleSize", "timeDecay", "shingleSize"];
    if explain {
        names.push("withDirectionality");
    }
    args.count(0, &names)?;
    let trees = args.int(0, "numberOfTrees", 1, 1000, rcf::DEFAULT_TREES as i64)?;
    let sample = args.int(
        1,
        "subSampleSize",
        10,
        1000,
        rcf::DEFAULT_SAMPLE_SIZE as i64,
    )?;
    let decay = args.int(
        2,
        "timeDecay",
        1,
        i64::from(i32::MAX),
        rcf::DEFAULT_TIME_DECAY as i64,
    )?;
    let shingle = args.int(3, "shingleSize", 1, 30, rcf::DEFAULT_SHINGLE_SIZE as i64)?;
    let directionality = if explain {
        args.boolean(4, "withDirectionality", false)?
    } else {
        false
    };
    let mut compiled = query::compile(args.cursor, catalog, None)?;
    let numeric = numeric_columns(func, &compiled.columns)?;
    let dims = numeric.len();
    // Each factor is at most 2^31, so the product of the four fits a u128.
    let coordinates = [trees, sample, dims as i64, shingle]
        .iter()
        .fold(1u128, |acc, &x| acc.saturating_mul(x.max(0) as u128));
    if dims > 0 && coordinates > u128::from(MAX_FOREST_COORDINATES) {
        return plan_err(format!(
            "{func}: numberOfTrees ({trees}) × subSampleSize ({sample}) × numeric columns \
             ({dims}) × shingleSize ({shingle}) is {coordinates} coordinates, more than the \
             {MAX_FOREST_COORDINATES} a forest may hold (about 400 MB): lower one of them"
        ));
    }
    let params = ForestParams {
        trees: trees as usize,
        sample_size: sample as usize,
        time_decay: decay as f64,
        shingle_size: shingle as usize,
        seed: 0,
    };
    let forest = Forest::new(params, dims).map_err(|e| PlanError(format!("{func}: {e}")))?;
    let explanation = explain.then(|| Explanation {
        columns: numeric
            .iter()
            .filter_map(|&k| compiled.columns.get(k).map(|(n, _)| n.clone()))
            .collect(),
        directionality,
    });
    compiled
        .columns
        .push(("ANOMALY_SCORE".into(), SqlType::Double));
    if explain {
        compiled
            .columns
            .push(("ANOMALY_EXPLANATION".into(), SqlType::Varchar(20480)));
    }
    compiled.ops.push(Box::new(RandomCutForest {
        forest,
        numeric,
        explanation,
        point: Vec::new(),
    }));
    Ok(compiled)
}

struct Explanation {
    columns: Vec<String>,
    directionality: bool,
}

/// RANDOM_CUT_FOREST and RANDOM_CUT_FOREST_WITH_EXPLANATION: scores each
/// row, then learns it.
struct RandomCutForest {
    forest: Forest,
    numeric: Vec<usize>,
    explanation: Option<Explanation>,
    point: Vec<f64>,
}

impl Operator for RandomCutForest {
    fn push(&mut self, mut row: Row, _now: i64, out: &mut Out) {
        point_of(&row, &self.numeric, &mut self.point);
        match &self.explanation {
            None => {
                let score = self.forest.score_then_update(&self.point);
                row.values.push(Value::Double(score));
            }
            Some(x) => {
                let (score, attributions) = self.forest.explain_then_update(&self.point);
                row.values.push(Value::Double(score));
                row.values.push(Value::str(rcf::explanation_json(
                    &x.columns,
                    &attributions,
                    x.directionality,
                )));
            }
        }
        out.rows.push(row);
    }
}

fn hotspots(args: &Args, catalog: &dyn Catalog) -> PlanResult<Compiled> {
    let func = args.func;
    let names = [
        "windowSize",
        "scanRadius",
        "minimumNumberOfPointsInAHotspot",
    ];
    args.count(names.len(), &names)?;
    let window = args.required_int(0, "windowSize", 100, 1000)?;
    let radius = args.double(1, "scanRadius")?;
    if radius <= 0.0 {
        return plan_err(format!(
            "{func}: scanRadius must be greater than 0, got {}",
            args.shown(1)
        ));
    }
    let min_points = args.required_int(2, "minimumNumberOfPointsInAHotspot", 2, window)?;
    let mut compiled = query::compile(args.cursor, catalog, None)?;
    let numeric = numeric_columns(func, &compiled.columns)?;
    let state = Hotspots::new(window as usize, radius, min_points as usize, numeric.len())
        .map_err(|e| PlanError(format!("{func}: {e}")))?;
    compiled
        .columns
        .push(("HOTSPOTS_RESULT".into(), SqlType::Varchar(65535)));
    compiled.ops.push(Box::new(HotspotsOp {
        state,
        numeric,
        point: Vec::new(),
    }));
    Ok(compiled)
}

/// HOTSPOTS: each row with the hotspots of the window it ends.
struct HotspotsOp {
    state: Hotspots,
    numeric: Vec<usize>,
    point: Vec<f64>,
}

impl Operator for HotspotsOp {
    fn push(&mut self, mut row: Row, _now: i64, out: &mut Out) {
        point_of(&row, &self.numeric, &mut self.point);
        let result = self.state.push(&self.point);
        row.values.push(Value::str(result));
        out.rows.push(row);
    }
}

fn top_k(args: &Args, catalog: &dyn Catalog) -> PlanResult<Compiled> {
    args.count(3, &["columnName", "K", "windowSize"])?;
    let k = args.required_int(1, "K", 1, 100_000)?;
    let seconds = args.required_int(2, "windowSize", 1, 3600)?;
    let mut compiled = query::compile(args.cursor, catalog, None)?;
    let (column, t) = args.column(0, &compiled.columns)?;
    let k = k as usize;
    compiled.columns = vec![("ITEM".into(), t), ("ITEM_COUNT".into(), SqlType::BigInt)];
    compiled.ops.push(Box::new(Tumbling {
        column,
        width: seconds * 1000,
        kind: Kind::TopK {
            k,
            capacity: EXACT_TOP_K_LIMIT.max(k.saturating_mul(4)),
        },
        open: None,
    }));
    Ok(compiled)
}

fn count_distinct(args: &Args, catalog: &dyn Catalog) -> PlanResult<Compiled> {
    args.count(2, &["columnName", "windowSize"])?;
    let seconds = args.required_int(1, "windowSize", 1, 3600)?;
    let mut compiled = query::compile(args.cursor, catalog, None)?;
    let (column, _) = args.column(0, &compiled.columns)?;
    compiled.columns = vec![("NUMBER_OF_DISTINCT_ITEMS".into(), SqlType::BigInt)];
    compiled.ops.push(Box::new(Tumbling {
        column,
        width: seconds * 1000,
        kind: Kind::Distinct,
        open: None,
    }));
    Ok(compiled)
}

/// What a tumbling window function computes.
#[derive(Clone, Copy)]
enum Kind {
    TopK { k: usize, capacity: usize },
    Distinct,
}

/// One window's state.
enum Summary {
    Top(Counters),
    Distinct(Distinct),
}

impl Summary {
    fn new(kind: Kind) -> Summary {
        match kind {
            Kind::TopK { capacity, .. } => Summary::Top(Counters::new(capacity)),
            Kind::Distinct => Summary::Distinct(Distinct::Exact(HashSet::new())),
        }
    }

    fn add(&mut self, v: &Value) {
        match self {
            Summary::Top(c) => c.add(v),
            Summary::Distinct(d) => d.add(v),
        }
    }
}

/// TOP_K_ITEMS_TUMBLING and COUNT_DISTINCT_ITEMS_TUMBLING over windows
/// of `width` milliseconds aligned on the epoch.
struct Tumbling {
    column: usize,
    width: i64,
    kind: Kind,
    /// The open window's start and state.
    open: Option<(i64, Summary)>,
}

impl Tumbling {
    fn start_of(&self, t: i64) -> i64 {
        t.div_euclid(self.width).saturating_mul(self.width)
    }

    fn close(&mut self, out: &mut Out) {
        let Some((start, summary)) = self.open.take() else {
            return;
        };
        let rowtime = start.saturating_add(self.width);
        match (summary, self.kind) {
            (Summary::Top(c), Kind::TopK { k, .. }) => {
                for (item, count) in c.top(k) {
                    out.rows.push(Row {
                        rowtime,
                        values: vec![item, Value::Int(saturating_i64(count))],
                    });
                }
            }
            (Summary::Distinct(d), _) => out.rows.push(Row {
                rowtime,
                values: vec![Value::Int(saturating_i64(d.count()))],
            }),
            (Summary::Top(_), Kind::Distinct) => {}
        }
    }
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Operator for Tumbling {
    fn oldest(&self) -> Option<i64> {
        self.open.as_ref().map(|(start, _)| *start)
    }

    fn push(&mut self, row: Row, _now: i64, out: &mut Out) {
        let start = self.start_of(row.rowtime);
        if self.open.as_ref().is_some_and(|(s, _)| *s != start) {
            self.close(out);
        }
        let kind = self.kind;
        let (_, summary) = self.open.get_or_insert_with(|| (start, Summary::new(kind)));
        match row.values.get(self.column) {
            None | Some(Value::Null) => {}
            Some(v) => summary.add(v),
        }
    }

    fn advance(&mut self, now: i64, out: &mut Out) {
        if self
            .open
            .as_ref()
            .is_some_and(|(s, _)| s.saturating_add(self.width) <= now)
        {
            self.close(out);
        }
    }
}

/// Counts of values: exact up to `capacity` distinct values, then
/// Space-Saving over `capacity` counters.
struct Counters {
    capacity: usize,
    /// Per counter: the value, its count, and when it took the counter.
    slots: Vec<(Value, u64, u64)>,
    index: HashMap<Value, usize>,
    /// (count, counter), least counted first.
    by_count: BTreeSet<(u64, usize)>,
    arrivals: u64,
}

impl Counters {
    fn new(capacity: usize) -> Counters {
        Counters {
            capacity: capacity.max(1),
            slots: Vec::new(),
            index: HashMap::new(),
            by_count: BTreeSet::new(),
            arrivals: 0,
        }
    }

    fn add(&mut self, v: &Value) {
        self.arrivals = self.arrivals.saturating_add(1);
        if let Some(&s) = self.index.get(v) {
            if let Some(slot) = self.slots.get_mut(s) {
                self.by_count.remove(&(slot.1, s));
                slot.1 = slot.1.saturating_add(1);
                self.by_count.insert((slot.1, s));
            }
            return;
        }
        if self.slots.len() < self.capacity {
            let s = self.slots.len();
            self.slots.push((v.clone(), 1, self.arrivals));
            self.index.insert(v.clone(), s);
            self.by_count.insert((1, s));
            return;
        }
        // Space-Saving: the least counted value gives up its counter.
        let Some((count, s)) = self.by_count.pop_first() else {
            return;
        };
        if let Some(slot) = self.slots.get_mut(s) {
            self.index.remove(&slot.0);
            let count = count.saturating_add(1);
            *slot = (v.clone(), count, self.arrivals);
            self.index.insert(v.clone(), s);
            self.by_count.insert((count, s));
        }
    }

    /// The `k` most counted values, most first, ties by arrival.
    fn top(self, k: usize) -> Vec<(Value, u64)> {
        let mut all = self.slots;
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
        all.truncate(k);
        all.into_iter().map(|(v, c, _)| (v, c)).collect()
    }
}

/// Distinct values of a window: exact, then a HyperLogLog sketch.
enum Distinct {
    Exact(HashSet<Value>),
    Sketch(Box<[u8]>),
}

impl Distinct {
    fn add(&mut self, v: &Value) {
        match self {
            Distinct::Exact(set) => {
                if set.contains(v) {
                    return;
                }
                set.insert(v.clone());
                if set.len() > EXACT_DISTINCT_LIMIT {
                    let mut registers = vec![0u8; 1 << HLL_BITS].into_boxed_slice();
                    for x in set.iter() {
                        hll_add(&mut registers, x);
                    }
                    *self = Distinct::Sketch(registers);
                }
            }
            Distinct::Sketch(registers) => hll_add(registers, v),
        }
    }

    fn count(&self) -> u64 {
        match self {
            Distinct::Exact(set) => set.len() as u64,
            Distinct::Sketch(registers) => {
                hll_estimate(registers).max(EXACT_DISTINCT_LIMIT as u64 + 1)
            }
        }
    }
}

/// A value's 64-bit hash, the same in every run.
fn hash64(v: &Value) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(v)
}

fn hll_add(registers: &mut [u8], v: &Value) {
    let h = hash64(v);
    let index = (h >> (64 - HLL_BITS)) as usize;
    // The rank of the first 1 bit in the remaining bits, 1-based.
    let rest = h << HLL_BITS;
    let rank = (rest.leading_zeros().min(64 - HLL_BITS) + 1) as u8;
    if let Some(r) = registers.get_mut(index) {
        *r = (*r).max(rank);
    }
}

/// The HyperLogLog estimate, with linear counting for small counts.
fn hll_estimate(registers: &[u8]) -> u64 {
    let m = registers.len() as f64;
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let sum: f64 = registers.iter().map(|&r| (-f64::from(r)).exp2()).sum();
    let raw = alpha * m * m / sum;
    let zeros = registers.iter().filter(|&&r| r == 0).count();
    let estimate = if raw <= 2.5 * m && zeros > 0 {
        m * (m / zeros as f64).ln()
    } else {
        raw
    };
    estimate.round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_whole_numbers_that_fit() {
        assert_eq!(integer("100"), Some(100));
        assert_eq!(integer("-7"), Some(-7));
        assert_eq!(integer("1e3"), Some(1000));
        assert_eq!(integer("256.0"), Some(256));
        assert_eq!(integer("2.5"), None);
        assert_eq!(integer("1e30"), None);
        assert_eq!(integer("x"), None);
    }

    #[test]
    fn space_saving_keeps_heavy_values_past_capacity() {
        let mut c = Counters::new(3);
        for v in ["a", "a", "a", "b", "b", "c", "d"] {
            c.add(&Value::str(v));
        }
        // "d" took the counter of "c" (count 1), so it counts 2.
        assert_eq!(
            c.top(3),
            [
                (Value::str("a"), 3),
                (Value::str("b"), 2),
                (Value::str("d"), 2)
            ]
        );
    }

    #[test]
    fn hyperloglog_estimates_within_two_percent() {
        let mut d = Distinct::Exact(HashSet::new());
        for i in 0..50_000i64 {
            d.add(&Value::Int(i));
            d.add(&Value::Int(i));
        }
        assert!(matches!(d, Distinct::Sketch(_)));
        let n = d.count();
        assert!((49_000..=51_000).contains(&n), "{n}");
    }
}
