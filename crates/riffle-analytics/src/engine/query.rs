//! Continuous queries: a pump's SELECT compiled into a chain of
//! operators that turn the rows of one stream into rows of another.
//!
//! A SELECT becomes one of four operators, after those of its FROM
//! (a subquery's operators run first, a reference table join follows):
//!
//! - [`Project`]: WHERE and the select list, one row out per row kept;
//!   the row keeps its ROWTIME.
//! - [`Tumble`]: GROUP BY with a ROWTIME-based key (`STEP(ROWTIME BY
//!   INTERVAL ...)`, `FLOOR(ROWTIME TO MINUTE)`, any expression of ROWTIME
//!   that does not decrease): rows are grouped per value of that key; a
//!   window closes when a row with a later key arrives or when time moves
//!   past it with no input, and emits one row per group, in the order
//!   groups first appeared, with ROWTIME at the window's end (the first
//!   time the key takes its next value).
//! - [`Slide`]: aggregates with OVER (`RANGE INTERVAL ... PRECEDING` or
//!   `ROWS n PRECEDING`, partitioned or not): one row out per row in,
//!   aggregating the rows of its partition in the window that ends with it.
//! - [`Stagger`]: `WINDOWED BY STAGGER (PARTITION BY keys RANGE interval)`:
//!   a window per partition key opens with the first row of the key and
//!   closes `interval` later, emitting one row with ROWTIME at its close.
//!
//! Evaluation failures never stop a query: the row is dropped with an
//! [`ErrorRow`] (it goes to `error_stream`).

use std::collections::{BTreeMap, HashMap, VecDeque};

use sqlparser::ast::{self, Expr, GroupByExpr, Query, SelectItem, SetExpr, TableFactor};

use super::agg::{Acc, AggKind, AggSpec, Sliding};
use super::expr::{
    call_args, function_name, guess_type, interval_value, plan_err, Compiler, Env, Ex, Hooks,
    Plain, PlanError, PlanResult, Relation, Scope,
};
use super::value::{EvalResult, SqlType, Value};
pub use crate::sql::object_name;
use crate::sql::{ident, Stagger as StaggerClause, StreamWindow};

/// A stream's columns: names and types.
pub type Columns = Vec<(String, SqlType)>;

/// A reference table's rows.
pub type TableRows = std::sync::Arc<Vec<Vec<Value>>>;

/// An operator and the columns it produces.
type Planned = (Box<dyn Operator>, Columns);

/// A row's group key and aggregate arguments, if it passed the filter.
type Keyed = Option<(Vec<Value>, Vec<Option<Value>>)>;

/// A row of a stream: its time and its column values.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub rowtime: i64,
    pub values: Vec<Value>,
}

/// A row that failed: the failure and the row as text.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorRow {
    pub rowtime: i64,
    pub message: String,
    pub data: String,
}

impl ErrorRow {
    pub fn of(row: &Row, message: impl Into<String>) -> ErrorRow {
        let parts: Vec<String> = row
            .values
            .iter()
            .map(|v| v.to_text().unwrap_or_else(|| "NULL".into()))
            .collect();
        ErrorRow {
            rowtime: row.rowtime,
            message: message.into(),
            data: parts.join(","),
        }
    }
}

/// Where operators put what they produce.
#[derive(Default)]
pub struct Out {
    pub rows: Vec<Row>,
    pub errors: Vec<ErrorRow>,
}

/// One step of a query.
pub trait Operator: Send {
    /// A row in (rows come in ROWTIME order).
    fn push(&mut self, row: Row, now: i64, out: &mut Out);
    /// Time has reached `now`: windows that ended close.
    fn advance(&mut self, _now: i64, _out: &mut Out) {}
    /// The ROWTIME of the oldest row whose effect is still held (in an
    /// open window), if any: an input read again from before it rebuilds
    /// what the operator holds.
    fn oldest(&self) -> Option<i64> {
        None
    }
    /// A row in from input `input` (0 is the source; joined streams
    /// follow).
    fn push_input(&mut self, input: usize, row: Row, now: i64, out: &mut Out) {
        let _ = input;
        self.push(row, now, out);
    }
}

/// What a query reads and how: the stream, its operators and the columns
/// of its output.
pub struct Compiled {
    pub source: String,
    /// Streams joined to the source: inputs 1, 2, ... of the first
    /// operator.
    pub joined: Vec<String>,
    pub ops: Vec<Box<dyn Operator>>,
    pub columns: Columns,
}

/// The streams and tables a query can name.
pub trait Catalog {
    /// The columns of a stream.
    fn stream(&self, name: &str) -> Option<Columns>;
    /// A reference table's columns and rows.
    fn table(&self, name: &str) -> Option<(Columns, TableRows)>;
}

/// Compiles a pump's query.
pub fn compile(
    q: &Query,
    catalog: &dyn Catalog,
    stagger: Option<&StaggerClause>,
) -> PlanResult<Compiled> {
    compile_with(q, catalog, stagger, &[])
}

/// Compiles a pump's query whose FROM gives streams windows
/// (`stream OVER (RANGE ...)`, for stream-to-stream joins).
pub fn compile_with(
    q: &Query,
    catalog: &dyn Catalog,
    stagger: Option<&StaggerClause>,
    windows: &[StreamWindow],
) -> PlanResult<Compiled> {
    if q.order_by.is_some() || q.limit_clause.is_some() || q.with.is_some() {
        return plan_err("ORDER BY, LIMIT and WITH are not supported in a streaming query");
    }
    let SetExpr::Select(select) = q.body.as_ref() else {
        return match q.body.as_ref() {
            SetExpr::Query(inner) => compile_with(inner, catalog, stagger, windows),
            _ => plan_err("A streaming query must be a SELECT"),
        };
    };
    let select = select.as_ref();
    if select.distinct.is_some() {
        return plan_err("SELECT DISTINCT is not supported on a stream");
    }
    // FROM: one stream (or subquery), optionally joined with tables.
    let [from] = select.from.as_slice() else {
        return plan_err("A streaming query reads exactly one stream in FROM");
    };
    let (mut compiled, name) = factor(&from.relation, catalog, windows)?;
    let mut scope = Scope::single(&name, compiled.columns.clone());
    for join in &from.joins {
        let joins_stream = match &join.relation {
            TableFactor::Table { name, .. } => catalog.stream(&object_name(name)).is_some(),
            _ => false,
        };
        let (op, s) = if joins_stream {
            if !compiled.ops.is_empty() || !compiled.joined.is_empty() {
                return plan_err(
                    "A stream-to-stream join joins two streams named in FROM, not a subquery",
                );
            }
            let (op, s, right) = stream_join(join, &from.relation, &scope, catalog, windows)?;
            compiled.joined.push(right);
            (op, s)
        } else {
            table_join(join, &scope, catalog)?
        };
        compiled.ops.push(op);
        scope = s;
    }
    let c = Compiler::new(&scope);
    let filter = match &select.selection {
        Some(w) => Some(c.compile(w, &mut Plain)?),
        None => None,
    };
    let group_by: Vec<Expr> = match &select.group_by {
        GroupByExpr::Expressions(exprs, _) => exprs.clone(),
        GroupByExpr::All(_) => return plan_err("GROUP BY ALL is not supported"),
    };
    let has_aggregate = select.projection.iter().any(|i| match i {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
            contains_aggregate(e, false)
        }
        _ => false,
    }) || select
        .having
        .as_ref()
        .is_some_and(|h| contains_aggregate(h, false));
    let has_over = select.projection.iter().any(|i| match i {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
            contains_aggregate(e, true)
        }
        _ => false,
    });
    let op: Planned = if let Some(st) = stagger {
        stagger_op(select, &scope, filter, &group_by, st)?
    } else if !group_by.is_empty() || has_aggregate {
        tumble_op(select, &scope, filter, &group_by)?
    } else if has_over {
        slide_op(select, &scope, filter)?
    } else {
        let (items, columns) = projection(select, &scope, &mut Plain)?;
        (Box::new(Project { filter, items }), columns)
    };
    compiled.ops.push(op.0);
    compiled.columns = op.1;
    Ok(compiled)
}

fn contains_aggregate(e: &Expr, over: bool) -> bool {
    let mut found = false;
    walk(e, &mut |x: &Expr| {
        if let Expr::Function(f) = x {
            let name = function_name(f);
            if f.over.is_some() == over && super::expr::AGGREGATES.contains(&name.as_str()) {
                found = true;
            }
        }
    });
    found
}

/// Calls `f` on `e` and every expression inside it (the parser bounds the
/// nesting).
fn walk(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(e);
    let all = |xs: &[&Expr], f: &mut dyn FnMut(&Expr)| {
        for x in xs {
            walk(x, f);
        }
    };
    match e {
        Expr::BinaryOp { left, right, .. } => all(&[left, right], f),
        Expr::UnaryOp { expr, .. }
        | Expr::Nested(expr)
        | Expr::IsNull(expr)
        | Expr::IsNotNull(expr)
        | Expr::IsTrue(expr)
        | Expr::IsFalse(expr)
        | Expr::IsNotTrue(expr)
        | Expr::IsNotFalse(expr)
        | Expr::IsUnknown(expr)
        | Expr::IsNotUnknown(expr)
        | Expr::Cast { expr, .. }
        | Expr::Extract { expr, .. }
        | Expr::Floor { expr, .. }
        | Expr::Ceil { expr, .. } => walk(expr, f),
        Expr::Between {
            expr, low, high, ..
        } => all(&[expr, low, high], f),
        Expr::Like { expr, pattern, .. } | Expr::SimilarTo { expr, pattern, .. } => {
            all(&[expr, pattern], f)
        }
        Expr::In { expr, target, .. } => {
            walk(expr, f);
            if let ast::InTarget::List(l) = target {
                for x in l {
                    walk(x, f);
                }
            }
        }
        Expr::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            if let Some(o) = operand {
                walk(o, f);
            }
            for c in conditions {
                walk(&c.condition, f);
                walk(&c.result, f);
            }
            if let Some(x) = else_result {
                walk(x, f);
            }
        }
        Expr::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => {
            walk(expr, f);
            for x in [substring_from, substring_for].into_iter().flatten() {
                walk(x, f);
            }
        }
        Expr::Position { expr, r#in } => all(&[expr, r#in], f),
        Expr::Trim {
            expr, trim_what, ..
        } => {
            walk(expr, f);
            if let Some(w) = trim_what {
                walk(w, f);
            }
        }
        Expr::CompoundFieldAccess { root, .. } => walk(root, f),
        Expr::Function(func) => {
            if let Ok((args, _)) = call_args(func) {
                for a in args.into_iter().flatten() {
                    walk(a, f);
                }
            }
        }
        _ => {}
    }
}

fn alias_name(alias: &Option<ast::TableAlias>) -> Option<String> {
    alias.as_ref().map(|a| ident(&a.name))
}

/// A FROM item: the compiled source and the name it goes by.
fn factor(
    f: &TableFactor,
    catalog: &dyn Catalog,
    windows: &[StreamWindow],
) -> PlanResult<(Compiled, String)> {
    match f {
        TableFactor::Table { name, alias, .. } => {
            let n = object_name(name);
            let Some(columns) = catalog.stream(&n) else {
                if catalog.table(&n).is_some() {
                    return plan_err(format!(
                        "'{n}' is a table: a streaming query reads a stream (join the table to one)"
                    ));
                }
                return plan_err(format!("Object '{n}' not found"));
            };
            let shown = alias_name(alias).unwrap_or_else(|| n.clone());
            Ok((
                Compiled {
                    source: n,
                    joined: Vec::new(),
                    ops: Vec::new(),
                    columns,
                },
                shown,
            ))
        }
        TableFactor::Derived {
            subquery, alias, ..
        } => {
            let inner = compile_with(subquery, catalog, None, windows)?;
            let shown = alias_name(alias).unwrap_or_default();
            Ok((inner, shown))
        }
        TableFactor::TableFunction { expr, alias } => Ok((
            super::analytic::table_function(expr, catalog)?,
            alias_name(alias).unwrap_or_default(),
        )),
        other => plan_err(format!("Unsupported FROM item {other}")),
    }
}

/// The select list compiled with `hooks`: expressions and output columns.
fn projection(
    select: &ast::Select,
    scope: &Scope,
    hooks: &mut dyn Hooks,
) -> PlanResult<(Vec<Ex>, Columns)> {
    let c = Compiler::new(scope);
    let mut items = Vec::new();
    let mut columns = Vec::new();
    for (i, item) in select.projection.iter().enumerate() {
        match item {
            SelectItem::UnnamedExpr(e) => {
                let ex = c.compile(e, hooks)?;
                let name = match e {
                    Expr::Identifier(id) => ident(id),
                    Expr::CompoundIdentifier(parts) => parts.last().map(ident).unwrap_or_default(),
                    _ => format!("EXPR${i}"),
                };
                columns.push((name, guess_type(&ex, scope)));
                items.push(ex);
            }
            SelectItem::ExprWithAliases { .. } => {
                return plan_err(format!("Unsupported select item {item}"))
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                let ex = c.compile(expr, hooks)?;
                columns.push((ident(alias), guess_type(&ex, scope)));
                items.push(ex);
            }
            SelectItem::Wildcard(_) => {
                for r in &scope.relations {
                    for (k, col) in r.columns.iter().enumerate() {
                        items.push(Ex::Col(r.offset + k));
                        columns.push(col.clone());
                    }
                }
            }
            SelectItem::QualifiedWildcard(kind, _) => {
                let n = match kind {
                    ast::SelectItemQualifiedWildcardKind::ObjectName(n) => object_name(n),
                    ast::SelectItemQualifiedWildcardKind::Expr(e) => e.to_string(),
                };
                let Some(r) = scope.relations.iter().find(|r| r.name == n) else {
                    return plan_err(format!("Table '{n}' not found"));
                };
                for (k, col) in r.columns.iter().enumerate() {
                    items.push(Ex::Col(r.offset + k));
                    columns.push(col.clone());
                }
            }
        }
    }
    Ok((items, columns))
}

fn eval_all(items: &[Ex], env: &Env) -> EvalResult<Vec<Value>> {
    items.iter().map(|e| e.eval(env)).collect()
}

fn passes(filter: &Option<Ex>, env: &Env) -> EvalResult<bool> {
    match filter {
        None => Ok(true),
        Some(f) => Ok(matches!(f.eval(env)?, Value::Bool(true))),
    }
}

/// WHERE and the select list.
pub struct Project {
    filter: Option<Ex>,
    items: Vec<Ex>,
}

impl Operator for Project {
    fn push(&mut self, row: Row, now: i64, out: &mut Out) {
        let env = Env::row(&row.values, row.rowtime, now);
        let r = passes(&self.filter, &env).and_then(|keep| {
            if keep {
                eval_all(&self.items, &env).map(Some)
            } else {
                Ok(None)
            }
        });
        match r {
            Ok(Some(values)) => out.rows.push(Row {
                rowtime: row.rowtime,
                values,
            }),
            Ok(None) => {}
            Err(e) => out.errors.push(ErrorRow::of(&row, e.0)),
        }
    }
}

/// Hooks of an aggregating query: GROUP BY keys and aggregate calls.
struct GroupHooks<'s> {
    scope: &'s Scope,
    keys: Vec<(Expr, Option<usize>)>,
    aggs: Vec<AggSpec>,
}

impl<'s> GroupHooks<'s> {
    fn new(scope: &'s Scope, keys: &[Expr]) -> GroupHooks<'s> {
        let keys = keys
            .iter()
            .map(|k| (k.clone(), column_of(k, scope)))
            .collect();
        GroupHooks {
            scope,
            keys,
            aggs: Vec::new(),
        }
    }
}

/// The column a bare or qualified name refers to.
fn column_of(e: &Expr, scope: &Scope) -> Option<usize> {
    match e {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => {
            match Compiler::new(scope).compile(e, &mut Plain) {
                Ok(Ex::Col(i)) => Some(i),
                _ => None,
            }
        }
        Expr::Nested(inner) => column_of(inner, scope),
        _ => None,
    }
}

fn same_expr(a: &Expr, b: &Expr) -> bool {
    a.to_string().eq_ignore_ascii_case(&b.to_string())
}

fn aggregate_spec(c: &Compiler, f: &ast::Function) -> PlanResult<Option<AggSpec>> {
    let name = function_name(f);
    let (args, distinct) = call_args(f)?;
    let star = matches!(args.as_slice(), [None]);
    let Some(kind) = AggKind::parse(&name, star) else {
        return Ok(None);
    };
    let arg = match args.as_slice() {
        [None] if kind == AggKind::CountStar => None,
        [Some(e)] => Some(c.compile(e, &mut Plain)?),
        _ => return plan_err(format!("{name} takes one argument")),
    };
    Ok(Some(AggSpec {
        kind,
        arg,
        distinct,
    }))
}

impl Hooks for GroupHooks<'_> {
    fn key(&mut self, e: &Expr) -> Option<Ex> {
        let col = column_of(e, self.scope);
        self.keys
            .iter()
            .position(|(k, kc)| same_expr(k, e) || (col.is_some() && *kc == col))
            .map(Ex::Key)
    }

    fn aggregate(&mut self, c: &Compiler, f: &ast::Function) -> PlanResult<Option<Ex>> {
        if f.over.is_some() {
            return Ok(None);
        }
        match aggregate_spec(c, f)? {
            Some(spec) => {
                self.aggs.push(spec);
                Ok(Some(Ex::Agg(self.aggs.len() - 1)))
            }
            None => Ok(None),
        }
    }
}

/// The groups of one window.
#[derive(Default)]
struct Groups {
    index: HashMap<Vec<Value>, usize>,
    groups: Vec<(Vec<Value>, Vec<Acc>)>,
    first_rowtime: Option<i64>,
    last_rowtime: i64,
}

impl Groups {
    fn add(
        &mut self,
        key: Vec<Value>,
        specs: &[AggSpec],
        args: &[Option<Value>],
    ) -> EvalResult<()> {
        let i = match self.index.get(&key) {
            Some(i) => *i,
            None => {
                self.groups
                    .push((key.clone(), specs.iter().map(AggSpec::start).collect()));
                self.index.insert(key, self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        let accs = &mut self.groups[i].1;
        // Only integer and decimal sums and the variances can fail; then
        // the group's aggregates change only if every one of them took the
        // row.
        let can_fail = specs.iter().zip(args).any(|(s, a)| match s.kind {
            AggKind::Sum | AggKind::Avg => {
                !matches!(a, None | Some(Value::Null) | Some(Value::Double(_)))
            }
            AggKind::VarPop | AggKind::VarSamp | AggKind::StddevPop | AggKind::StddevSamp => true,
            _ => false,
        });
        if can_fail {
            let mut scratch = accs.clone();
            for (acc, a) in scratch.iter_mut().zip(args) {
                acc.add(a.as_ref())?;
            }
            *accs = scratch;
        } else {
            for (acc, a) in accs.iter_mut().zip(args) {
                acc.add(a.as_ref())?;
            }
        }
        Ok(())
    }
}

/// What an aggregating query emits for its groups.
struct Emit {
    having: Option<Ex>,
    items: Vec<Ex>,
}

impl Emit {
    fn groups(&self, g: Groups, rowtime: i64, now: i64, out: &mut Out) {
        for (key, accs) in g.groups {
            let aggs: EvalResult<Vec<Value>> = accs.iter().map(Acc::finish).collect();
            let r = aggs.and_then(|aggs| {
                let env = Env {
                    values: &[],
                    rowtime,
                    now,
                    keys: &key,
                    aggs: &aggs,
                };
                if passes(&self.having, &env)? {
                    eval_all(&self.items, &env).map(Some)
                } else {
                    Ok(None)
                }
            });
            match r {
                Ok(Some(values)) => out.rows.push(Row { rowtime, values }),
                Ok(None) => {}
                Err(e) => out.errors.push(ErrorRow::of(
                    &Row {
                        rowtime,
                        values: key,
                    },
                    e.0,
                )),
            }
        }
    }
}

fn arg_values(specs: &[AggSpec], env: &Env) -> EvalResult<Vec<Option<Value>>> {
    specs
        .iter()
        .map(|s| match &s.arg {
            Some(a) => a.eval(env).map(Some),
            None => Ok(None),
        })
        .collect()
}

/// The group key and aggregate arguments of a row that passes `filter`.
fn keyed(filter: &Option<Ex>, keys: &[Ex], specs: &[AggSpec], env: &Env) -> EvalResult<Keyed> {
    if !passes(filter, env)? {
        return Ok(None);
    }
    Ok(Some((eval_all(keys, env)?, arg_values(specs, env)?)))
}

fn tumble_op(
    select: &ast::Select,
    scope: &Scope,
    filter: Option<Ex>,
    group_by: &[Expr],
) -> PlanResult<Planned> {
    let c = Compiler::new(scope);
    let keys = group_by
        .iter()
        .map(|k| c.compile(k, &mut Plain))
        .collect::<PlanResult<Vec<_>>>()?;
    let Some(time_key) = keys.iter().position(Ex::uses_rowtime) else {
        return plan_err(
            "A GROUP BY on a stream needs a ROWTIME-based window key, such as \
             STEP(s.ROWTIME BY INTERVAL '1' MINUTE) or FLOOR(s.ROWTIME TO MINUTE)",
        );
    };
    let mut hooks = GroupHooks::new(scope, group_by);
    let (items, columns) = projection(select, scope, &mut hooks)?;
    let having = match &select.having {
        Some(h) => Some(c.compile(h, &mut hooks)?),
        None => None,
    };
    let specs = hooks.aggs;
    Ok((
        Box::new(Tumble {
            filter,
            keys,
            time_key,
            specs,
            emit: Emit { having, items },
            windows: VecDeque::new(),
        }),
        columns,
    ))
}

/// GROUP BY over tumbling windows of a ROWTIME-based key.
pub struct Tumble {
    filter: Option<Ex>,
    keys: Vec<Ex>,
    time_key: usize,
    specs: Vec<AggSpec>,
    emit: Emit,
    /// Open windows by time key value, oldest first.
    windows: VecDeque<(Value, Groups)>,
}

impl Tumble {
    /// The time key at `t` when it depends on ROWTIME alone.
    fn key_at(&self, t: i64) -> Option<Value> {
        let env = Env::row(&[], t, t);
        match self.keys[self.time_key].eval(&env) {
            Ok(Value::Null) | Err(_) => None,
            Ok(v) => Some(v),
        }
    }

    /// When the window of key `k` ends: the first time after `from` at
    /// which the key differs (searched), or `fallback`.
    fn end_of(&self, k: &Value, from: i64, fallback: i64) -> i64 {
        let same = |t: i64| self.key_at(t).is_some_and(|v| v == *k);
        if !same(from) {
            return fallback;
        }
        // Doubling steps find a time past the window, then halving finds
        // its first instant; `lo` is always inside the window.
        let mut lo = from;
        let mut step = 1i64;
        let mut hi = loop {
            let Some(next) = from.checked_add(step) else {
                return fallback;
            };
            if !same(next) {
                break next;
            }
            lo = next;
            if step > (1 << 45) {
                return fallback;
            }
            step *= 2;
        };
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if same(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        hi
    }

    fn close_before(&mut self, limit: &Value, now: i64, out: &mut Out) {
        while self
            .windows
            .front()
            .is_some_and(|(k, _)| k.total_cmp(limit).is_lt())
        {
            if let Some((k, g)) = self.windows.pop_front() {
                let end = self.end_of(&k, g.last_rowtime, now);
                self.emit.groups(g, end, now, out);
            }
        }
    }
}

impl Operator for Tumble {
    fn push(&mut self, row: Row, now: i64, out: &mut Out) {
        let env = Env::row(&row.values, row.rowtime, now);
        let (key, args) = match keyed(&self.filter, &self.keys, &self.specs, &env) {
            Ok(Some(x)) => x,
            Ok(None) => return,
            Err(e) => {
                out.errors.push(ErrorRow::of(&row, e.0));
                return;
            }
        };
        let wk = key[self.time_key].clone();
        self.close_before(&wk, now, out);
        if !self.windows.back().is_some_and(|(k, _)| *k == wk) {
            self.windows.push_back((wk, Groups::default()));
        }
        if let Some((_, g)) = self.windows.back_mut() {
            g.first_rowtime.get_or_insert(row.rowtime);
            g.last_rowtime = row.rowtime;
            if let Err(e) = g.add(key, &self.specs, &args) {
                out.errors.push(ErrorRow::of(&row, e.0));
            }
        }
    }

    fn advance(&mut self, now: i64, out: &mut Out) {
        if let Some(k) = self.key_at(now) {
            self.close_before(&k, now, out);
        }
    }

    fn oldest(&self) -> Option<i64> {
        self.windows
            .iter()
            .filter_map(|(_, g)| g.first_rowtime)
            .min()
    }
}

fn stagger_op(
    select: &ast::Select,
    scope: &Scope,
    filter: Option<Ex>,
    group_by: &[Expr],
    st: &StaggerClause,
) -> PlanResult<Planned> {
    let c = Compiler::new(scope);
    let range = match &st.range {
        Expr::Interval(i) => match interval_value(i)? {
            Value::Interval(ms) if ms > 0 => ms,
            _ => return plan_err("WINDOWED BY STAGGER needs a positive day-time INTERVAL"),
        },
        other => return plan_err(format!("Unsupported stagger range {other}")),
    };
    if st.partition_by.is_empty() {
        return plan_err("WINDOWED BY STAGGER needs PARTITION BY");
    }
    for g in group_by {
        if !st.partition_by.iter().any(|p| same_expr(p, g)) {
            return plan_err(format!(
                "GROUP BY expression {g} is not in the stagger window's PARTITION BY"
            ));
        }
    }
    let keys = st
        .partition_by
        .iter()
        .map(|k| c.compile(k, &mut Plain))
        .collect::<PlanResult<Vec<_>>>()?;
    let mut hooks = GroupHooks::new(scope, &st.partition_by);
    let (items, columns) = projection(select, scope, &mut hooks)?;
    let having = match &select.having {
        Some(h) => Some(c.compile(h, &mut hooks)?),
        None => None,
    };
    Ok((
        Box::new(Stagger {
            filter,
            keys,
            specs: hooks.aggs,
            emit: Emit { having, items },
            range,
            open: HashMap::new(),
            closing: BTreeMap::new(),
            seq: 0,
        }),
        columns,
    ))
}

/// Stagger windows: one per partition key, opened by its first row.
pub struct Stagger {
    filter: Option<Ex>,
    keys: Vec<Ex>,
    specs: Vec<AggSpec>,
    emit: Emit,
    range: i64,
    open: HashMap<Vec<Value>, (u64, Groups)>,
    /// (close time, opening sequence) → key: the order windows close in.
    closing: BTreeMap<(i64, u64), Vec<Value>>,
    seq: u64,
}

impl Stagger {
    fn close_until(&mut self, t: i64, now: i64, out: &mut Out) {
        while let Some(entry) = self.closing.first_entry() {
            if entry.key().0 > t {
                break;
            }
            let ((close, _), key) = entry.remove_entry();
            if let Some((_, g)) = self.open.remove(&key) {
                self.emit.groups(g, close, now, out);
            }
        }
    }
}

impl Operator for Stagger {
    fn push(&mut self, row: Row, now: i64, out: &mut Out) {
        self.close_until(row.rowtime, now, out);
        let env = Env::row(&row.values, row.rowtime, now);
        let (key, args) = match keyed(&self.filter, &self.keys, &self.specs, &env) {
            Ok(Some(x)) => x,
            Ok(None) => return,
            Err(e) => {
                out.errors.push(ErrorRow::of(&row, e.0));
                return;
            }
        };
        if !self.open.contains_key(&key) {
            self.seq += 1;
            let close = row.rowtime.saturating_add(self.range);
            self.closing.insert((close, self.seq), key.clone());
            self.open.insert(key.clone(), (self.seq, Groups::default()));
        }
        if let Some((_, g)) = self.open.get_mut(&key) {
            g.first_rowtime.get_or_insert(row.rowtime);
            g.last_rowtime = row.rowtime;
            if let Err(e) = g.add(key, &self.specs, &args) {
                out.errors.push(ErrorRow::of(&row, e.0));
            }
        }
    }

    fn advance(&mut self, now: i64, out: &mut Out) {
        self.close_until(now, now, out);
    }

    fn oldest(&self) -> Option<i64> {
        self.open
            .values()
            .filter_map(|(_, g)| g.first_rowtime)
            .min()
    }
}

/// A window frame of a sliding aggregate.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Frame {
    /// Rows whose ROWTIME is within this many milliseconds of the row.
    Range(i64),
    /// This many rows before the row, and the row.
    Rows(usize),
    Unbounded,
}

struct WindowDef {
    partition: Vec<Ex>,
    frame: Frame,
    /// Indexes into the operator's aggregate calls.
    calls: Vec<usize>,
}

struct SlideHooks<'s> {
    named: Vec<(String, ast::WindowSpec)>,
    scope: &'s Scope,
    windows: Vec<(String, WindowDef)>,
    calls: Vec<AggSpec>,
}

fn frame_of(spec: &ast::WindowSpec) -> PlanResult<Frame> {
    let Some(f) = &spec.window_frame else {
        return Ok(Frame::Unbounded);
    };
    if f.end_bound
        .as_ref()
        .is_some_and(|b| !matches!(b, ast::WindowFrameBound::CurrentRow))
    {
        return plan_err("A window frame ends at CURRENT ROW on a stream");
    }
    match (&f.units, &f.start_bound) {
        (_, ast::WindowFrameBound::Preceding(None)) => Ok(Frame::Unbounded),
        (ast::WindowFrameUnits::Range, ast::WindowFrameBound::Preceding(Some(e))) => {
            match e.as_ref() {
                Expr::Interval(i) => match interval_value(i)? {
                    Value::Interval(ms) if ms >= 0 => Ok(Frame::Range(ms)),
                    _ => plan_err("RANGE needs a day-time INTERVAL"),
                },
                other => plan_err(format!("RANGE needs an INTERVAL, got {other}")),
            }
        }
        (ast::WindowFrameUnits::Rows, ast::WindowFrameBound::Preceding(Some(e))) => {
            match e.as_ref() {
                Expr::Value(v) => match &v.value {
                    ast::Value::Number(n, _) => n
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n <= 1_000_000)
                        .map(Frame::Rows)
                        .ok_or_else(|| PlanError(format!("Invalid ROWS count {n}"))),
                    other => plan_err(format!("ROWS needs a count, got {other}")),
                },
                other => plan_err(format!("ROWS needs a count, got {other}")),
            }
        }
        (_, ast::WindowFrameBound::CurrentRow) => Ok(Frame::Rows(0)),
        _ => plan_err("Unsupported window frame"),
    }
}

impl Hooks for SlideHooks<'_> {
    fn aggregate(&mut self, c: &Compiler, f: &ast::Function) -> PlanResult<Option<Ex>> {
        let Some(over) = &f.over else {
            return Ok(None);
        };
        let spec = match over {
            ast::WindowType::WindowSpec(s) => s.clone(),
            ast::WindowType::NamedWindow(n) => {
                let name = ident(n);
                match self.named.iter().find(|(k, _)| *k == name) {
                    Some((_, s)) => s.clone(),
                    None => return plan_err(format!("Window '{name}' not found")),
                }
            }
        };
        let Some(call) = aggregate_spec(c, f)? else {
            return plan_err(format!("{} cannot be used with OVER", function_name(f)));
        };
        let text = format!("{:?}{:?}", spec.partition_by, spec.window_frame);
        let w = match self.windows.iter().position(|(t, _)| *t == text) {
            Some(w) => w,
            None => {
                let c2 = Compiler::new(self.scope);
                let partition = spec
                    .partition_by
                    .iter()
                    .map(|p| c2.compile(p, &mut Plain))
                    .collect::<PlanResult<Vec<_>>>()?;
                self.windows.push((
                    text,
                    WindowDef {
                        partition,
                        frame: frame_of(&spec)?,
                        calls: Vec::new(),
                    },
                ));
                self.windows.len() - 1
            }
        };
        self.calls.push(call);
        let i = self.calls.len() - 1;
        self.windows[w].1.calls.push(i);
        Ok(Some(Ex::Agg(i)))
    }
}

fn slide_op(select: &ast::Select, scope: &Scope, filter: Option<Ex>) -> PlanResult<Planned> {
    let mut named = Vec::new();
    for ast::NamedWindowDefinition(name, w) in &select.named_window {
        match w {
            ast::NamedWindowExpr::WindowSpec(s) => named.push((ident(name), s.clone())),
            other => return plan_err(format!("Unsupported window definition {other}")),
        }
    }
    let mut hooks = SlideHooks {
        named,
        scope,
        windows: Vec::new(),
        calls: Vec::new(),
    };
    let (items, columns) = projection(select, scope, &mut hooks)?;
    let windows = hooks.windows.into_iter().map(|(_, w)| w).collect();
    Ok((
        Box::new(Slide {
            filter,
            items,
            calls: hooks.calls,
            windows,
            state: Vec::new(),
            seq: 0,
            swept: i64::MIN,
        }),
        columns,
    ))
}

/// One partition of a sliding window: its rows (time, sequence, the
/// window's call arguments) and the running aggregates of the calls that
/// have a running form.
struct Partition {
    rows: VecDeque<(i64, u64, Vec<Option<Value>>)>,
    running: Vec<Option<Sliding>>,
}

impl Partition {
    fn new(def: &WindowDef, calls: &[AggSpec]) -> Partition {
        Partition {
            rows: VecDeque::new(),
            running: def.calls.iter().map(|c| Sliding::new(&calls[*c])).collect(),
        }
    }

    fn add_running(&mut self, seq: u64, args: &[Option<Value>]) -> EvalResult<()> {
        for (r, a) in self.running.iter_mut().zip(args) {
            if let Some(r) = r {
                r.add(seq, a.as_ref())?;
            }
        }
        Ok(())
    }

    /// Recomputes the running aggregates from the rows.
    fn rebuild(&mut self) -> EvalResult<()> {
        for r in self.running.iter_mut().flatten() {
            r.reset();
        }
        let rows = std::mem::take(&mut self.rows);
        let mut r = Ok(());
        for (_, seq, args) in &rows {
            if let Err(e) = self.add_running(*seq, args) {
                r = Err(e);
                break;
            }
        }
        self.rows = rows;
        r
    }

    fn pop_front(&mut self) -> EvalResult<()> {
        if let Some((_, seq, args)) = self.rows.pop_front() {
            for (r, a) in self.running.iter_mut().zip(&args) {
                if let Some(r) = r {
                    r.remove(seq, a.as_ref())?;
                }
            }
        }
        Ok(())
    }
}

/// Sliding-window aggregates: one row out per row in.
pub struct Slide {
    filter: Option<Ex>,
    items: Vec<Ex>,
    calls: Vec<AggSpec>,
    windows: Vec<WindowDef>,
    /// Per window: partitions by key.
    state: Vec<HashMap<Vec<Value>, Partition>>,
    seq: u64,
    /// When partitions whose rows all left were last dropped.
    swept: i64,
}

impl Slide {
    fn run(&mut self, row: &Row, now: i64) -> EvalResult<Option<Vec<Value>>> {
        let env = Env::row(&row.values, row.rowtime, now);
        if !passes(&self.filter, &env)? {
            return Ok(None);
        }
        if self.state.len() < self.windows.len() {
            self.state.resize_with(self.windows.len(), HashMap::new);
        }
        let mut aggs = vec![Value::Null; self.calls.len()];
        for (w, def) in self.windows.iter().enumerate() {
            let key = eval_all(&def.partition, &env)?;
            let args = def
                .calls
                .iter()
                .map(|c| match &self.calls[*c].arg {
                    Some(a) => a.eval(&env).map(Some),
                    None => Ok(None),
                })
                .collect::<EvalResult<Vec<_>>>()?;
            self.seq += 1;
            let seq = self.seq;
            let part = self.state[w]
                .entry(key)
                .or_insert_with(|| Partition::new(def, &self.calls));
            if let Err(e) = part.add_running(seq, &args) {
                // The partition stays as it was without the row.
                part.rebuild()?;
                return Err(e);
            }
            part.rows.push_back((row.rowtime, seq, args));
            let keep = |part: &Partition| match def.frame {
                Frame::Range(ms) => part
                    .rows
                    .front()
                    .is_none_or(|(t, _, _)| *t >= row.rowtime.saturating_sub(ms)),
                Frame::Rows(n) => part.rows.len() <= n.saturating_add(1),
                Frame::Unbounded => true,
            };
            while !keep(part) {
                part.pop_front()?;
            }
            if part
                .running
                .iter()
                .flatten()
                .any(|r| r.drifted(part.rows.len()))
            {
                part.rebuild()?;
            }
            for (k, c) in def.calls.iter().enumerate() {
                aggs[*c] = match &part.running[k] {
                    Some(r) => r.value()?,
                    None => {
                        let mut acc = self.calls[*c].start();
                        for (_, _, args) in part.rows.iter() {
                            acc.add(args[k].as_ref())?;
                        }
                        acc.finish()?
                    }
                };
            }
        }
        let env = Env {
            values: &row.values,
            rowtime: row.rowtime,
            now,
            keys: &[],
            aggs: &aggs,
        };
        eval_all(&self.items, &env).map(Some)
    }
}

impl Operator for Slide {
    fn oldest(&self) -> Option<i64> {
        self.state
            .iter()
            .flat_map(|parts| parts.values())
            .filter_map(|p| p.rows.front().map(|(t, _, _)| *t))
            .min()
    }

    fn push(&mut self, row: Row, now: i64, out: &mut Out) {
        match self.run(&row, now) {
            Ok(Some(values)) => out.rows.push(Row {
                rowtime: row.rowtime,
                values,
            }),
            Ok(None) => {}
            Err(e) => out.errors.push(ErrorRow::of(&row, e.0)),
        }
    }

    fn advance(&mut self, now: i64, _out: &mut Out) {
        // Partitions whose rows all left their RANGE are dropped, in a
        // sweep at most once per (shortest) window length.
        let period = self
            .windows
            .iter()
            .filter_map(|d| match d.frame {
                Frame::Range(ms) => Some(ms.max(1000)),
                _ => None,
            })
            .min();
        let Some(period) = period else {
            return;
        };
        if now.saturating_sub(self.swept) < period {
            return;
        }
        self.swept = now;
        for (w, def) in self.windows.iter().enumerate() {
            if let (Frame::Range(ms), Some(parts)) = (def.frame, self.state.get_mut(w)) {
                let limit = now.saturating_sub(ms);
                parts.retain(|_, p| p.rows.back().is_some_and(|(t, _, _)| *t >= limit));
            }
        }
    }
}

/// `JOIN table ON ...` (or LEFT JOIN) of a stream with a reference table:
/// each row is joined with every table row satisfying the condition.
fn table_join(
    join: &ast::Join,
    scope: &Scope,
    catalog: &dyn Catalog,
) -> PlanResult<(Box<dyn Operator>, Scope)> {
    let (name, alias) = match &join.relation {
        TableFactor::Table { name, alias, .. } => (object_name(name), alias_name(alias)),
        other => return plan_err(format!("Unsupported join with {other}")),
    };
    let Some((columns, rows)) = catalog.table(&name) else {
        if catalog.stream(&name).is_some() {
            return plan_err(format!(
                "Joining stream '{name}' to a stream needs a window: not supported yet"
            ));
        }
        return plan_err(format!("Object '{name}' not found"));
    };
    let mut joined = scope.clone();
    joined.relations.push(Relation {
        name: alias.unwrap_or(name),
        columns: columns.clone(),
        offset: scope.width(),
    });
    let (constraint, left) = match &join.join_operator {
        ast::JoinOperator::Join(c) | ast::JoinOperator::Inner(c) => (c, false),
        ast::JoinOperator::Left(c) | ast::JoinOperator::LeftOuter(c) => (c, true),
        other => return plan_err(format!("Unsupported join {other:?}")),
    };
    let on = match constraint {
        ast::JoinConstraint::On(e) => Compiler::new(&joined).compile(e, &mut Plain)?,
        _ => return plan_err("A join with a reference table needs ON"),
    };
    Ok((
        Box::new(TableJoin {
            on,
            rows,
            width: columns.len(),
            left,
        }),
        joined,
    ))
}

/// Joins rows with a reference table's rows.
pub struct TableJoin {
    on: Ex,
    rows: std::sync::Arc<Vec<Vec<Value>>>,
    width: usize,
    left: bool,
}

impl Operator for TableJoin {
    fn push(&mut self, row: Row, now: i64, out: &mut Out) {
        let mut matched = false;
        let mut values = row.values.clone();
        let base = values.len();
        for t in self.rows.iter() {
            values.truncate(base);
            values.extend(t.iter().cloned());
            let env = Env::row(&values, row.rowtime, now);
            match self.on.eval(&env) {
                Ok(Value::Bool(true)) => {
                    matched = true;
                    out.rows.push(Row {
                        rowtime: row.rowtime,
                        values: values.clone(),
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    out.errors.push(ErrorRow::of(&row, e.0));
                    return;
                }
            }
        }
        if !matched && self.left {
            values.truncate(base);
            values.extend(std::iter::repeat_n(Value::Null, self.width));
            out.rows.push(Row {
                rowtime: row.rowtime,
                values,
            });
        }
    }
}

/// The window of a stream named in FROM (matched by alias, then name);
/// none means the rows of the same instant only.
fn window_of(windows: &[StreamWindow], name: &str, alias: Option<&str>) -> PlanResult<i64> {
    let w = windows
        .iter()
        .find(|w| alias.is_some() && w.alias.as_deref() == alias)
        .or_else(|| {
            windows
                .iter()
                .find(|w| w.alias.is_none() && w.stream == name)
        });
    match w {
        None => Ok(0),
        Some(w) => match &w.range {
            Expr::Interval(i) => match interval_value(i)? {
                Value::Interval(ms) if ms >= 0 => Ok(ms),
                _ => plan_err("A stream's window needs a day-time INTERVAL"),
            },
            other => plan_err(format!("A stream's window needs an INTERVAL, got {other}")),
        },
    }
}

/// `FROM a OVER (RANGE ...) JOIN b OVER (RANGE ...) ON ...`.
fn stream_join(
    join: &ast::Join,
    left: &TableFactor,
    scope: &Scope,
    catalog: &dyn Catalog,
    windows: &[StreamWindow],
) -> PlanResult<(Box<dyn Operator>, Scope, String)> {
    let (
        TableFactor::Table {
            name: ln,
            alias: la,
            ..
        },
        TableFactor::Table {
            name: rn,
            alias: ra,
            ..
        },
    ) = (left, &join.relation)
    else {
        return plan_err("A stream-to-stream join joins two streams named in FROM");
    };
    let (lname, rname) = (object_name(ln), object_name(rn));
    let left_range = window_of(windows, &lname, alias_name(la).as_deref())?;
    let right_alias = alias_name(ra);
    let right_range = window_of(windows, &rname, right_alias.as_deref())?;
    let columns = catalog
        .stream(&rname)
        .ok_or_else(|| PlanError(format!("Object '{rname}' not found")))?;
    let left_width = scope.width();
    let mut joined = scope.clone();
    joined.relations.push(Relation {
        name: right_alias.unwrap_or_else(|| rname.clone()),
        columns: columns.clone(),
        offset: left_width,
    });
    let left_outer = match &join.join_operator {
        ast::JoinOperator::Join(_) | ast::JoinOperator::Inner(_) => false,
        ast::JoinOperator::Left(_) | ast::JoinOperator::LeftOuter(_) => true,
        other => return plan_err(format!("Unsupported join {other:?}")),
    };
    let constraint = match &join.join_operator {
        ast::JoinOperator::Join(c)
        | ast::JoinOperator::Inner(c)
        | ast::JoinOperator::Left(c)
        | ast::JoinOperator::LeftOuter(c) => c,
        _ => return plan_err("Unsupported join"),
    };
    let ast::JoinConstraint::On(on) = constraint else {
        return plan_err("A stream-to-stream join needs ON");
    };
    // Equalities between a left and a right expression key a hash join.
    let c = Compiler::new(&joined);
    let mut left_keys = Vec::new();
    let mut right_keys = Vec::new();
    let mut conjuncts = Vec::new();
    split_and(on, &mut conjuncts);
    for e in &conjuncts {
        if let Expr::BinaryOp {
            left: a,
            op: ast::BinaryOperator::Eq,
            right: b,
        } = e
        {
            let (x, y) = (c.compile(a, &mut Plain)?, c.compile(b, &mut Plain)?);
            match (side(&x, left_width), side(&y, left_width)) {
                (Some(false), Some(true)) => {
                    left_keys.push(x);
                    right_keys.push(shift(y, left_width));
                }
                (Some(true), Some(false)) => {
                    left_keys.push(y);
                    right_keys.push(shift(x, left_width));
                }
                _ => {}
            }
        }
    }
    let on = c.compile(on, &mut Plain)?;
    Ok((
        Box::new(StreamJoin {
            on,
            left_keys,
            right_keys,
            ranges: [left_range, right_range],
            widths: [left_width, columns.len()],
            sides: [Side::default(), Side::default()],
            left_outer,
        }),
        joined,
        rname,
    ))
}

fn split_and<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match e {
        Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::And,
            right,
        } => {
            split_and(left, out);
            split_and(right, out);
        }
        Expr::Nested(inner) => split_and(inner, out),
        other => out.push(other),
    }
}

/// Which side of a join an expression reads: Some(false) left only,
/// Some(true) right only, None both or neither.
fn side(e: &Ex, left_width: usize) -> Option<bool> {
    let mut cols = Vec::new();
    e.columns(&mut cols);
    if cols.is_empty() {
        return None;
    }
    let right = cols.iter().all(|c| *c >= left_width);
    let left = cols.iter().all(|c| *c < left_width);
    match (left, right) {
        (true, false) => Some(false),
        (false, true) => Some(true),
        _ => None,
    }
}

/// A right-side expression over the right row alone.
fn shift(e: Ex, by: usize) -> Ex {
    e.map_columns(&|c| c - by)
}

/// The rows one side of a join keeps: by key, in arrival order.
#[derive(Default)]
struct Side {
    rows: HashMap<Vec<Value>, VecDeque<Row>>,
    order: VecDeque<(i64, Vec<Value>)>,
}

impl Side {
    fn evict(&mut self, before: i64) {
        while self.order.front().is_some_and(|(t, _)| *t < before) {
            if let Some((_, key)) = self.order.pop_front() {
                if let Some(q) = self.rows.get_mut(&key) {
                    q.pop_front();
                    if q.is_empty() {
                        self.rows.remove(&key);
                    }
                }
            }
        }
    }
}

/// A windowed join of two streams: a row arriving on one side joins the
/// other side's rows of its window (the last `range` before the row),
/// found by the ON clause's equalities.
pub struct StreamJoin {
    on: Ex,
    left_keys: Vec<Ex>,
    right_keys: Vec<Ex>,
    ranges: [i64; 2],
    widths: [usize; 2],
    sides: [Side; 2],
    left_outer: bool,
}

impl Operator for StreamJoin {
    fn oldest(&self) -> Option<i64> {
        self.sides
            .iter()
            .filter_map(|s| s.order.front().map(|(t, _)| *t))
            .min()
    }

    fn push(&mut self, row: Row, now: i64, out: &mut Out) {
        self.push_input(0, row, now, out);
    }

    fn push_input(&mut self, input: usize, row: Row, now: i64, out: &mut Out) {
        let this = input.min(1);
        let other = 1 - this;
        let env = Env::row(&row.values, row.rowtime, now);
        let keys = if this == 0 {
            &self.left_keys
        } else {
            &self.right_keys
        };
        let key = match eval_all(keys, &env) {
            Ok(k) => k,
            Err(e) => {
                out.errors.push(ErrorRow::of(&row, e.0));
                return;
            }
        };
        self.sides[other].evict(row.rowtime.saturating_sub(self.ranges[other]));
        let mut matched = false;
        // NULL keys join nothing.
        if !key.iter().any(Value::is_null) {
            if let Some(rows) = self.sides[other].rows.get(&key) {
                for o in rows {
                    let values: Vec<Value> = if this == 0 {
                        row.values.iter().chain(&o.values).cloned().collect()
                    } else {
                        o.values.iter().chain(&row.values).cloned().collect()
                    };
                    let env = Env::row(&values, row.rowtime, now);
                    match self.on.eval(&env) {
                        Ok(Value::Bool(true)) => {
                            matched = true;
                            out.rows.push(Row {
                                rowtime: row.rowtime,
                                values,
                            });
                        }
                        Ok(_) => {}
                        Err(e) => out.errors.push(ErrorRow::of(&row, e.0)),
                    }
                }
            }
        }
        if this == 0 && self.left_outer && !matched {
            let mut values = row.values.clone();
            values.extend(std::iter::repeat_n(Value::Null, self.widths[1]));
            out.rows.push(Row {
                rowtime: row.rowtime,
                values,
            });
        }
        let side = &mut self.sides[this];
        side.order.push_back((row.rowtime, key.clone()));
        side.rows.entry(key).or_default().push_back(row);
    }

    fn advance(&mut self, now: i64, _out: &mut Out) {
        for (side, range) in self.sides.iter_mut().zip(self.ranges) {
            side.evict(now.saturating_sub(range));
        }
    }
}
