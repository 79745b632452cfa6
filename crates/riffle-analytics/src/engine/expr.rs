//! Expressions: `sqlparser` expressions compiled into [`Ex`] trees over
//! a row, and their evaluation.
//!
//! Compiling resolves every name once: a column becomes its index in the
//! row, `ROWTIME` the row's time, a function its implementation; what
//! cannot be resolved is a [`PlanError`] before the application runs.
//! In an aggregating query an expression equal to a GROUP BY expression
//! becomes a [`Ex::Key`] and an aggregate call an [`Ex::Agg`] (the
//! [`Hooks`] of the query decide). Evaluation follows SQL's three-valued
//! logic: NULL in, NULL out, and a WHERE keeps a row only when TRUE.

use std::cmp::Ordering;
use std::sync::Arc;

use sqlparser::ast::{self, BinaryOperator, Expr, UnaryOperator};

use super::functions::{self, ScalarFn};
use super::value::{self, cast, fail, Dec, EvalError, EvalResult, SqlType, Value, DAY_MS};
use crate::sql::ident;

/// A query that cannot run: unknown names, wrong arguments, unsupported
/// constructs. Its text is what the application's users see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError(pub String);

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub type PlanResult<T> = Result<T, PlanError>;

pub fn plan_err<T>(message: impl Into<String>) -> PlanResult<T> {
    Err(PlanError(message.into()))
}

/// One relation visible to an expression: a stream (or a subquery, or a
/// reference table) under its name or alias, its columns at `offset` in
/// the combined row.
#[derive(Debug, Clone)]
pub struct Relation {
    pub name: String,
    pub columns: Vec<(String, SqlType)>,
    pub offset: usize,
}

/// The names an expression can use.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub relations: Vec<Relation>,
}

impl Scope {
    pub fn single(name: &str, columns: Vec<(String, SqlType)>) -> Scope {
        Scope {
            relations: vec![Relation {
                name: name.to_string(),
                columns,
                offset: 0,
            }],
        }
    }

    pub fn width(&self) -> usize {
        self.relations
            .iter()
            .map(|r| r.offset + r.columns.len())
            .max()
            .unwrap_or(0)
    }

    fn column(&self, rel: Option<&str>, name: &str) -> PlanResult<Option<(usize, SqlType)>> {
        let mut found = None;
        for r in &self.relations {
            if rel.is_some_and(|n| n != r.name) {
                continue;
            }
            if let Some(i) = r.columns.iter().position(|(c, _)| c == name) {
                if found.is_some() {
                    return plan_err(format!("Column '{name}' is ambiguous"));
                }
                found = Some((r.offset + i, r.columns[i].1));
            }
        }
        Ok(found)
    }
}

/// Binary operators on values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Concat,
}

/// A compiled expression.
#[derive(Clone)]
pub enum Ex {
    Lit(Value),
    Col(usize),
    RowTime,
    /// The time the row is processed (CURRENT_ROW_TIMESTAMP).
    Now,
    /// The value of the i-th GROUP BY expression of the current group.
    Key(usize),
    /// The value of the i-th aggregate of the current group or window.
    Agg(usize),
    Neg(Box<Ex>),
    Not(Box<Ex>),
    Bin(Op, Box<Ex>, Box<Ex>),
    And(Box<Ex>, Box<Ex>),
    Or(Box<Ex>, Box<Ex>),
    IsNull(Box<Ex>, bool),
    /// `IS [NOT] TRUE|FALSE`: (value, which, negated).
    IsBool(Box<Ex>, bool, bool),
    Between(Box<Ex>, Box<Ex>, Box<Ex>, bool),
    In(Box<Ex>, Vec<Ex>, bool),
    /// LIKE or SIMILAR TO: (value, pattern, negated, matcher).
    Match(Box<Ex>, Box<Ex>, bool, Matcher),
    Case(Option<Box<Ex>>, Vec<(Ex, Ex)>, Option<Box<Ex>>),
    Cast(Box<Ex>, SqlType),
    Call(ScalarFn, Vec<Ex>),
    Field(Box<Ex>, String),
    /// `STEP(x BY width)`: x rounded down to a multiple of width.
    Step(Box<Ex>, Box<Ex>),
}

/// How a LIKE / SIMILAR TO pattern is matched; literal patterns are
/// compiled once.
#[derive(Clone)]
pub struct Matcher {
    pub similar: bool,
    pub escape: Option<char>,
    pub compiled: Option<Arc<regex_lite::Regex>>,
}

/// What an expression is evaluated against.
pub struct Env<'a> {
    pub values: &'a [Value],
    pub rowtime: i64,
    pub now: i64,
    pub keys: &'a [Value],
    pub aggs: &'a [Value],
}

impl<'a> Env<'a> {
    pub fn row(values: &'a [Value], rowtime: i64, now: i64) -> Env<'a> {
        Env {
            values,
            rowtime,
            now,
            keys: &[],
            aggs: &[],
        }
    }
}

fn truth(v: &Value) -> EvalResult<Option<bool>> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        other => fail(format!(
            "Expected a BOOLEAN, got {} value '{}'",
            other.type_name(),
            other.to_text().unwrap_or_default()
        )),
    }
}

impl Ex {
    pub fn eval(&self, env: &Env) -> EvalResult<Value> {
        Ok(match self {
            Ex::Lit(v) => v.clone(),
            Ex::Col(i) => env.values.get(*i).cloned().unwrap_or(Value::Null),
            Ex::RowTime => Value::Timestamp(env.rowtime),
            Ex::Now => Value::Timestamp(env.now),
            Ex::Key(i) => env.keys.get(*i).cloned().unwrap_or(Value::Null),
            Ex::Agg(i) => env.aggs.get(*i).cloned().unwrap_or(Value::Null),
            Ex::Neg(e) => match e.eval(env)? {
                Value::Null => Value::Null,
                Value::Int(i) => Value::Int(
                    i.checked_neg()
                        .ok_or_else(|| EvalError("Numeric overflow".into()))?,
                ),
                Value::Double(d) => Value::Double(-d),
                Value::Decimal(d) => Value::Decimal(Dec::new(-d.mant, d.scale)),
                Value::Interval(ms) => Value::Interval(-ms),
                Value::Months(m) => Value::Months(-m),
                other => return fail(format!("Cannot negate {}", other.type_name())),
            },
            Ex::Not(e) => match truth(&e.eval(env)?)? {
                None => Value::Null,
                Some(b) => Value::Bool(!b),
            },
            Ex::And(a, b) => {
                let x = truth(&a.eval(env)?)?;
                if x == Some(false) {
                    return Ok(Value::Bool(false));
                }
                match (x, truth(&b.eval(env)?)?) {
                    (_, Some(false)) => Value::Bool(false),
                    (Some(true), Some(true)) => Value::Bool(true),
                    _ => Value::Null,
                }
            }
            Ex::Or(a, b) => {
                let x = truth(&a.eval(env)?)?;
                if x == Some(true) {
                    return Ok(Value::Bool(true));
                }
                match (x, truth(&b.eval(env)?)?) {
                    (_, Some(true)) => Value::Bool(true),
                    (Some(false), Some(false)) => Value::Bool(false),
                    _ => Value::Null,
                }
            }
            Ex::Bin(op, a, b) => binary(*op, &a.eval(env)?, &b.eval(env)?)?,
            Ex::IsNull(e, negated) => Value::Bool(e.eval(env)?.is_null() != *negated),
            Ex::IsBool(e, which, negated) => {
                let v = truth(&e.eval(env)?)?;
                Value::Bool((v == Some(*which)) != *negated)
            }
            Ex::Between(e, lo, hi, negated) => {
                let v = e.eval(env)?;
                let ge = binary(Op::Ge, &v, &lo.eval(env)?)?;
                let le = binary(Op::Le, &v, &hi.eval(env)?)?;
                let both = match (truth(&ge)?, truth(&le)?) {
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                };
                match both {
                    None => Value::Null,
                    Some(b) => Value::Bool(b != *negated),
                }
            }
            Ex::In(e, list, negated) => {
                let v = e.eval(env)?;
                if v.is_null() {
                    return Ok(Value::Null);
                }
                let mut unknown = false;
                for item in list {
                    let x = item.eval(env)?;
                    match v.compare(&x) {
                        Some(Ordering::Equal) => return Ok(Value::Bool(!*negated)),
                        None => unknown = true,
                        _ => {}
                    }
                }
                if unknown {
                    Value::Null
                } else {
                    Value::Bool(*negated)
                }
            }
            Ex::Match(e, pattern, negated, m) => {
                let v = e.eval(env)?;
                let Some(text) = text_of(&v) else {
                    return Ok(Value::Null);
                };
                let matched = match &m.compiled {
                    Some(re) => re.is_match(&text),
                    None => {
                        let p = pattern.eval(env)?;
                        let Some(p) = text_of(&p) else {
                            return Ok(Value::Null);
                        };
                        pattern_regex(&p, m.similar, m.escape)?.is_match(&text)
                    }
                };
                Value::Bool(matched != *negated)
            }
            Ex::Case(operand, whens, otherwise) => {
                let subject = match operand {
                    Some(o) => Some(o.eval(env)?),
                    None => None,
                };
                for (cond, result) in whens {
                    let c = cond.eval(env)?;
                    let hit = match &subject {
                        Some(s) => s.compare(&c) == Some(Ordering::Equal),
                        None => truth(&c)? == Some(true),
                    };
                    if hit {
                        return result.eval(env);
                    }
                }
                match otherwise {
                    Some(e) => e.eval(env)?,
                    None => Value::Null,
                }
            }
            Ex::Cast(e, t) => cast(&e.eval(env)?, *t)?,
            Ex::Call(f, args) => {
                let vals = args
                    .iter()
                    .map(|a| a.eval(env))
                    .collect::<EvalResult<Vec<_>>>()?;
                f(&vals)?
            }
            Ex::Field(e, name) => match e.eval(env)? {
                Value::Null => Value::Null,
                Value::Row(fields) => fields
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| EvalError(format!("Row has no field {name}")))?,
                other => return fail(format!("{} has no field {name}", other.type_name())),
            },
            Ex::Step(e, width) => step(&e.eval(env)?, &width.eval(env)?)?,
        })
    }

    /// The columns the expression reads, appended to `out`.
    pub fn columns(&self, out: &mut Vec<usize>) {
        match self {
            Ex::Col(i) => out.push(*i),
            Ex::Lit(_) | Ex::RowTime | Ex::Now | Ex::Key(_) | Ex::Agg(_) => {}
            Ex::Neg(e) | Ex::Not(e) | Ex::IsNull(e, _) | Ex::IsBool(e, ..) => e.columns(out),
            Ex::Cast(e, _) | Ex::Field(e, _) => e.columns(out),
            Ex::Bin(_, a, b) | Ex::And(a, b) | Ex::Or(a, b) | Ex::Step(a, b) => {
                a.columns(out);
                b.columns(out);
            }
            Ex::Match(a, b, ..) => {
                a.columns(out);
                b.columns(out);
            }
            Ex::Between(a, b, c, _) => {
                a.columns(out);
                b.columns(out);
                c.columns(out);
            }
            Ex::In(e, list, _) => {
                e.columns(out);
                list.iter().for_each(|x| x.columns(out));
            }
            Ex::Case(o, w, e) => {
                if let Some(o) = o {
                    o.columns(out);
                }
                for (a, b) in w {
                    a.columns(out);
                    b.columns(out);
                }
                if let Some(e) = e {
                    e.columns(out);
                }
            }
            Ex::Call(_, args) => args.iter().for_each(|x| x.columns(out)),
        }
    }

    /// The same expression with every column index mapped by `f`.
    pub fn map_columns(self, f: &dyn Fn(usize) -> usize) -> Ex {
        let b = |e: Box<Ex>| Box::new(e.map_columns(f));
        match self {
            Ex::Col(i) => Ex::Col(f(i)),
            e @ (Ex::Lit(_) | Ex::RowTime | Ex::Now | Ex::Key(_) | Ex::Agg(_)) => e,
            Ex::Neg(e) => Ex::Neg(b(e)),
            Ex::Not(e) => Ex::Not(b(e)),
            Ex::IsNull(e, n) => Ex::IsNull(b(e), n),
            Ex::IsBool(e, w, n) => Ex::IsBool(b(e), w, n),
            Ex::Cast(e, t) => Ex::Cast(b(e), t),
            Ex::Field(e, n) => Ex::Field(b(e), n),
            Ex::Bin(op, x, y) => Ex::Bin(op, b(x), b(y)),
            Ex::And(x, y) => Ex::And(b(x), b(y)),
            Ex::Or(x, y) => Ex::Or(b(x), b(y)),
            Ex::Step(x, y) => Ex::Step(b(x), b(y)),
            Ex::Match(x, y, n, m) => Ex::Match(b(x), b(y), n, m),
            Ex::Between(x, y, z, n) => Ex::Between(b(x), b(y), b(z), n),
            Ex::In(e, list, n) => Ex::In(
                b(e),
                list.into_iter().map(|x| x.map_columns(f)).collect(),
                n,
            ),
            Ex::Case(o, w, e) => Ex::Case(
                o.map(b),
                w.into_iter()
                    .map(|(x, y)| (x.map_columns(f), y.map_columns(f)))
                    .collect(),
                e.map(b),
            ),
            Ex::Call(func, args) => {
                Ex::Call(func, args.into_iter().map(|x| x.map_columns(f)).collect())
            }
        }
    }

    /// Whether the expression reads ROWTIME (a window's time key).
    pub fn uses_rowtime(&self) -> bool {
        match self {
            Ex::RowTime => true,
            Ex::Lit(_) | Ex::Col(_) | Ex::Now | Ex::Key(_) | Ex::Agg(_) => false,
            Ex::Neg(e) | Ex::Not(e) | Ex::IsNull(e, _) | Ex::IsBool(e, ..) => e.uses_rowtime(),
            Ex::Cast(e, _) | Ex::Field(e, _) => e.uses_rowtime(),
            Ex::Bin(_, a, b) | Ex::And(a, b) | Ex::Or(a, b) | Ex::Step(a, b) => {
                a.uses_rowtime() || b.uses_rowtime()
            }
            Ex::Match(a, b, ..) => a.uses_rowtime() || b.uses_rowtime(),
            Ex::Between(a, b, c, _) => a.uses_rowtime() || b.uses_rowtime() || c.uses_rowtime(),
            Ex::In(e, list, _) => e.uses_rowtime() || list.iter().any(Ex::uses_rowtime),
            Ex::Case(o, w, e) => {
                o.as_ref().is_some_and(|x| x.uses_rowtime())
                    || w.iter().any(|(a, b)| a.uses_rowtime() || b.uses_rowtime())
                    || e.as_ref().is_some_and(|x| x.uses_rowtime())
            }
            Ex::Call(_, args) => args.iter().any(Ex::uses_rowtime),
        }
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Str(s) => Some(s.to_string()),
        other => other.to_text(),
    }
}

/// `STEP(x BY width)`: timestamps to multiples of an interval since the
/// epoch, numbers to multiples of a number.
fn step(x: &Value, width: &Value) -> EvalResult<Value> {
    Ok(match (x, width) {
        (Value::Null, _) | (_, Value::Null) => Value::Null,
        (Value::Timestamp(t), Value::Interval(w)) if *w > 0 => {
            Value::Timestamp(t.div_euclid(*w) * w)
        }
        (Value::Time(t), Value::Interval(w)) if *w > 0 => Value::Time(t.div_euclid(*w) * w),
        (Value::Int(i), Value::Int(w)) if *w > 0 => Value::Int(i.div_euclid(*w) * w),
        (a, b) => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(w)) if w > 0.0 => Value::Double((x / w).floor() * w),
            _ => {
                return fail(format!(
                    "STEP needs a positive width of the value's kind, got {} BY {}",
                    a.type_name(),
                    b.type_name()
                ))
            }
        },
    })
}

/// The regex a LIKE or SIMILAR TO pattern means (anchored).
pub fn pattern_regex(
    p: &str,
    similar: bool,
    escape: Option<char>,
) -> EvalResult<regex_lite::Regex> {
    let mut re = String::from("(?s)^(?:");
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            match chars.next() {
                Some(n) => re.push_str(&regex_lite::escape(&n.to_string())),
                None => return fail(format!("Invalid escape sequence in pattern '{p}'")),
            }
            continue;
        }
        match c {
            '%' => re.push_str(".*"),
            '_' => re.push('.'),
            c if similar && "[]|()*+?{}^-".contains(c) => re.push(c),
            c => re.push_str(&regex_lite::escape(&c.to_string())),
        }
    }
    re.push_str(")$");
    regex_lite::Regex::new(&re).map_err(|e| EvalError(format!("Invalid pattern '{p}': {e}")))
}

fn overflow() -> EvalError {
    EvalError("Numeric overflow".into())
}

fn num_op(op: Op, a: &Value, b: &Value) -> EvalResult<Value> {
    use Value::*;
    Ok(match (a, b) {
        (Int(x), Int(y)) => Int(match op {
            Op::Add => x.checked_add(*y).ok_or_else(overflow)?,
            Op::Sub => x.checked_sub(*y).ok_or_else(overflow)?,
            Op::Mul => x.checked_mul(*y).ok_or_else(overflow)?,
            Op::Div => {
                if *y == 0 {
                    return fail("Division by zero");
                }
                x.checked_div(*y).ok_or_else(overflow)?
            }
            _ => {
                if *y == 0 {
                    return fail("Division by zero");
                }
                x.checked_rem(*y).ok_or_else(overflow)?
            }
        }),
        (Double(_), _) | (_, Double(_)) => {
            let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
            Double(match op {
                Op::Add => x + y,
                Op::Sub => x - y,
                Op::Mul => x * y,
                Op::Div => x / y,
                _ => x % y,
            })
        }
        _ => {
            let to_dec = |v: &Value| match v {
                Int(i) => Some(Dec::from_i64(*i)),
                Decimal(d) => Some(*d),
                _ => None,
            };
            let (Some(x), Some(y)) = (to_dec(a), to_dec(b)) else {
                return fail(format!(
                    "Cannot apply arithmetic to {} and {}",
                    a.type_name(),
                    b.type_name()
                ));
            };
            Decimal(
                match op {
                    Op::Add => Dec::checked_add(x, y),
                    Op::Sub => Dec::checked_sub(x, y),
                    Op::Mul => Dec::checked_mul(x, y),
                    Op::Div => {
                        if y.mant == 0 {
                            return fail("Division by zero");
                        }
                        Dec::checked_div(x, y)
                    }
                    _ => {
                        if y.mant == 0 {
                            return fail("Division by zero");
                        }
                        Dec::checked_div(x, y)
                            .and_then(|q| q.rescale(0))
                            .and_then(|q| Dec::checked_mul(q, y))
                            .and_then(|p| Dec::checked_sub(x, p))
                    }
                }
                .ok_or_else(overflow)?,
            )
        }
    })
}

fn add_months(ms: i64, months: i64) -> EvalResult<i64> {
    let days = ms.div_euclid(DAY_MS);
    let rest = ms.rem_euclid(DAY_MS);
    let (y, m, d) = value::civil_from_days(days);
    let total = (y * 12 + (m as i64 - 1))
        .checked_add(months)
        .ok_or_else(overflow)?;
    let (ny, nm) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
    let nd = d.min(value::month_days(ny, nm));
    Ok(value::days_from_civil(ny, nm, nd) * DAY_MS + rest)
}

/// A binary operator on two values.
pub fn binary(op: Op, a: &Value, b: &Value) -> EvalResult<Value> {
    use Value::*;
    if a.is_null() || b.is_null() {
        return Ok(Null);
    }
    let cmp = |pred: fn(Ordering) -> bool| -> EvalResult<Value> {
        match a.compare(b) {
            Some(o) => Ok(Bool(pred(o))),
            None => fail(format!(
                "Cannot compare {} with {}",
                a.type_name(),
                b.type_name()
            )),
        }
    };
    match op {
        Op::Eq => cmp(|o| o == Ordering::Equal),
        Op::Ne => cmp(|o| o != Ordering::Equal),
        Op::Lt => cmp(|o| o == Ordering::Less),
        Op::Le => cmp(|o| o != Ordering::Greater),
        Op::Gt => cmp(|o| o == Ordering::Greater),
        Op::Ge => cmp(|o| o != Ordering::Less),
        Op::Concat => match (a, b) {
            (Bytes(x), Bytes(y)) => Ok(Bytes([&x[..], &y[..]].concat().into())),
            _ => Ok(Value::str(format!(
                "{}{}",
                a.to_text().unwrap_or_default(),
                b.to_text().unwrap_or_default()
            ))),
        },
        Op::Add | Op::Sub => match (a, b) {
            (Timestamp(t), Interval(i)) | (Interval(i), Timestamp(t)) => {
                let i = if op == Op::Sub { -i } else { *i };
                if op == Op::Sub && matches!(a, Interval(_)) {
                    return fail("Cannot subtract a TIMESTAMP from an INTERVAL");
                }
                Ok(Timestamp(t.checked_add(i).ok_or_else(overflow)?))
            }
            (Timestamp(t), Months(m)) => {
                let m = if op == Op::Sub { -m } else { *m };
                Ok(Timestamp(add_months(*t, m)?))
            }
            (Date(d), Interval(i)) => {
                let i = if op == Op::Sub { -i } else { *i };
                Ok(Date((*d as i64 * DAY_MS + i).div_euclid(DAY_MS) as i32))
            }
            (Time(t), Interval(i)) => {
                let i = if op == Op::Sub { -i } else { *i };
                Ok(Time((t + i).rem_euclid(DAY_MS)))
            }
            (Timestamp(x), Timestamp(y)) if op == Op::Sub => {
                Ok(Interval(x.checked_sub(*y).ok_or_else(overflow)?))
            }
            (Interval(x), Interval(y)) => Ok(Interval(if op == Op::Add {
                x.checked_add(*y).ok_or_else(overflow)?
            } else {
                x.checked_sub(*y).ok_or_else(overflow)?
            })),
            (Months(x), Months(y)) => Ok(Months(if op == Op::Add { x + y } else { x - y })),
            _ => num_op(op, a, b),
        },
        Op::Mul => match (a, b) {
            (Interval(i), n) | (n, Interval(i)) if n.as_f64().is_some() => Ok(Interval(
                (*i as f64 * n.as_f64().unwrap_or(0.0)).round() as i64,
            )),
            _ => num_op(op, a, b),
        },
        Op::Div => match (a, b) {
            (Interval(i), n) if n.as_f64().is_some_and(|x| x != 0.0) => Ok(Interval(
                (*i as f64 / n.as_f64().unwrap_or(1.0)).round() as i64,
            )),
            _ => num_op(op, a, b),
        },
        Op::Mod => num_op(op, a, b),
    }
}

/// Decides what an expression means in the query's context: GROUP BY
/// keys and aggregate calls.
pub trait Hooks {
    /// A GROUP BY expression this expression is (by its text).
    fn key(&mut self, _e: &Expr) -> Option<Ex> {
        None
    }
    /// An aggregate or analytic call; Ok(None) when `f` is not one.
    fn aggregate(&mut self, _c: &Compiler, _f: &ast::Function) -> PlanResult<Option<Ex>> {
        Ok(None)
    }
    /// ROWTIME in this context (an aggregate's output row has its
    /// window's time).
    fn rowtime(&mut self) -> Ex {
        Ex::RowTime
    }
}

/// No keys, no aggregates: a plain row expression.
pub struct Plain;

impl Hooks for Plain {}

/// Compiles expressions in a scope.
pub struct Compiler<'s> {
    pub scope: &'s Scope,
}

pub const AGGREGATES: &[&str] = &[
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "FIRST_VALUE",
    "LAST_VALUE",
    "STDDEV_POP",
    "STDDEV_SAMP",
    "STDDEV",
    "VAR_POP",
    "VAR_SAMP",
    "VARIANCE",
];

/// The upper-case name of a function call.
pub fn function_name(f: &ast::Function) -> String {
    f.name
        .0
        .iter()
        .map(|p| match p.as_ident() {
            Some(i) => ident(i),
            None => p.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The plain argument expressions of a call (`*` as None).
pub fn call_args(f: &ast::Function) -> PlanResult<(Vec<Option<&Expr>>, bool)> {
    match &f.args {
        ast::FunctionArguments::None => Ok((Vec::new(), false)),
        ast::FunctionArguments::Subquery(_) => {
            plan_err(format!("{} does not take a query", function_name(f)))
        }
        ast::FunctionArguments::List(l) => {
            let distinct = matches!(
                l.duplicate_treatment,
                Some(ast::DuplicateTreatment::Distinct)
            );
            let args = l
                .args
                .iter()
                .map(|a| match a {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Ok(Some(e)),
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => Ok(None),
                    other => plan_err(format!("Unsupported argument {other}")),
                })
                .collect::<PlanResult<Vec<_>>>()?;
            Ok((args, distinct))
        }
    }
}

/// Milliseconds of an INTERVAL literal (day-time) or months (year-month).
pub fn interval_value(i: &ast::Interval) -> PlanResult<Value> {
    use ast::DateTimeField as F;
    let text = match i.value.as_ref() {
        Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) | ast::Value::Number(s, _) => s.clone(),
            other => return plan_err(format!("Unsupported interval value {other}")),
        },
        other => return plan_err(format!("Unsupported interval value {other}")),
    };
    let text = text.trim();
    let (neg, text) = match text.strip_prefix('-') {
        Some(t) => (true, t.trim()),
        None => (false, text),
    };
    let unit = |f: &F| -> Option<(bool, i64)> {
        Some(match f {
            F::Year | F::Years => (true, 12),
            F::Month | F::Months => (true, 1),
            F::Day | F::Days => (false, DAY_MS),
            F::Hour | F::Hours => (false, 3_600_000),
            F::Minute | F::Minutes => (false, 60_000),
            F::Second | F::Seconds => (false, 1000),
            _ => return None,
        })
    };
    let bad = || PlanError(format!("Invalid interval literal '{text}'"));
    let lead = i.leading_field.as_ref().unwrap_or(&F::Second);
    let (months, lead_ms) = unit(lead).ok_or_else(bad)?;
    let total: i64 = match &i.last_field {
        None => {
            if months {
                text.parse::<i64>().map_err(|_| bad())? * lead_ms
            } else {
                let f: f64 = text.parse().map_err(|_| bad())?;
                (f * lead_ms as f64).round() as i64
            }
        }
        Some(last) => {
            // 'D HH:MM:SS.fff' style: split on space, ':' and '-'.
            let (_, last_ms) = unit(last).ok_or_else(bad)?;
            let parts: Vec<&str> = text.split([' ', ':', '-']).collect();
            if months {
                let y: i64 = parts.first().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
                let m: i64 = parts
                    .get(1)
                    .map_or(Some(0), |p| p.parse().ok())
                    .ok_or_else(bad)?;
                y * 12 + m
            } else {
                let units = [DAY_MS, 3_600_000, 60_000, 1000];
                let start = units.iter().position(|u| *u == lead_ms).ok_or_else(bad)?;
                let end = units.iter().position(|u| *u == last_ms).ok_or_else(bad)?;
                if end < start || parts.len() != end - start + 1 {
                    return Err(bad());
                }
                let mut ms = 0i64;
                for (k, p) in parts.iter().enumerate() {
                    let f: f64 = p.parse().map_err(|_| bad())?;
                    ms += (f * units[start + k] as f64).round() as i64;
                }
                ms
            }
        }
    };
    let total = if neg { -total } else { total };
    Ok(if months {
        Value::Months(total)
    } else {
        Value::Interval(total)
    })
}

fn literal(v: &ast::Value) -> PlanResult<Value> {
    Ok(match v {
        ast::Value::Number(n, _) => {
            if let Ok(i) = n.parse::<i64>() {
                Value::Int(i)
            } else if n.contains(['e', 'E']) {
                Value::Double(
                    n.parse()
                        .map_err(|_| PlanError(format!("Invalid number {n}")))?,
                )
            } else {
                Value::Decimal(
                    Dec::parse(n).ok_or_else(|| PlanError(format!("Invalid number {n}")))?,
                )
            }
        }
        ast::Value::SingleQuotedString(s) => Value::str(s.as_str()),
        ast::Value::Boolean(b) => Value::Bool(*b),
        ast::Value::Null => Value::Null,
        ast::Value::HexStringLiteral(h) => {
            let bytes = (0..h.len())
                .step_by(2)
                .map(|i| h.get(i..i + 2).and_then(|x| u8::from_str_radix(x, 16).ok()))
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| PlanError(format!("Invalid binary literal X'{h}'")))?;
            Value::Bytes(bytes.into())
        }
        other => return plan_err(format!("Unsupported literal {other}")),
    })
}

fn data_type(t: &ast::DataType) -> PlanResult<SqlType> {
    SqlType::parse(&t.to_string()).ok_or_else(|| PlanError(format!("Unsupported type {t}")))
}

fn time_unit(f: &ast::DateTimeField) -> PlanResult<&'static str> {
    use ast::DateTimeField as F;
    Ok(match f {
        F::Year | F::Years => "YEAR",
        F::Quarter => "QUARTER",
        F::Month | F::Months => "MONTH",
        F::Week(_) | F::Weeks => "WEEK",
        F::Day | F::Days => "DAY",
        F::DayOfWeek | F::Dow => "DOW",
        F::DayOfYear | F::Doy => "DOY",
        F::Hour | F::Hours => "HOUR",
        F::Minute | F::Minutes => "MINUTE",
        F::Second | F::Seconds => "SECOND",
        F::Millisecond | F::Milliseconds => "MILLISECOND",
        F::Epoch => "EPOCH",
        other => return plan_err(format!("Unsupported time unit {other}")),
    })
}

fn func(name: &str, argc: usize) -> PlanResult<ScalarFn> {
    match functions::lookup(name, argc) {
        Some(Ok(f)) => Ok(f),
        Some(Err(m)) => Err(PlanError(m)),
        None => plan_err(format!("No match found for function signature {name}")),
    }
}

impl Compiler<'_> {
    pub fn new(scope: &Scope) -> Compiler<'_> {
        Compiler { scope }
    }

    fn boxed(&self, e: &Expr, h: &mut dyn Hooks) -> PlanResult<Box<Ex>> {
        Ok(Box::new(self.compile(e, h)?))
    }

    fn call(&self, name: &str, args: Vec<Ex>) -> PlanResult<Ex> {
        Ok(Ex::Call(func(name, args.len())?, args))
    }

    /// Compiles one expression.
    pub fn compile(&self, e: &Expr, h: &mut dyn Hooks) -> PlanResult<Ex> {
        if let Some(k) = h.key(e) {
            return Ok(k);
        }
        Ok(match e {
            Expr::Nested(inner) => self.compile(inner, h)?,
            Expr::Identifier(i) => {
                let name = ident(i);
                match self.scope.column(None, &name)? {
                    Some((idx, _)) => Ex::Col(idx),
                    None if name == "ROWTIME" => h.rowtime(),
                    None if i.quote_style.is_none() => match name.as_str() {
                        "CURRENT_ROW_TIMESTAMP" | "CURRENT_TIMESTAMP" | "LOCALTIMESTAMP" => Ex::Now,
                        "CURRENT_DATE" => Ex::Cast(Box::new(Ex::Now), SqlType::Date),
                        "CURRENT_TIME" | "LOCALTIME" => Ex::Cast(Box::new(Ex::Now), SqlType::Time),
                        _ => return plan_err(format!("Column '{name}' not found in any table")),
                    },
                    None => return plan_err(format!("Column '{name}' not found in any table")),
                }
            }
            Expr::CompoundIdentifier(parts) => {
                let names: Vec<String> = parts.iter().map(ident).collect();
                match names.as_slice() {
                    [rel, col] => {
                        if !self.scope.relations.iter().any(|r| &r.name == rel) {
                            // `row_column.FIELD` of a ROW value.
                            if let Some((idx, _)) = self.scope.column(None, rel)? {
                                return Ok(Ex::Field(Box::new(Ex::Col(idx)), col.clone()));
                            }
                            return plan_err(format!("Table '{rel}' not found"));
                        }
                        match self.scope.column(Some(rel), col)? {
                            Some((idx, _)) => Ex::Col(idx),
                            None if col == "ROWTIME" => h.rowtime(),
                            None => {
                                return plan_err(format!(
                                    "Column '{col}' not found in table '{rel}'"
                                ))
                            }
                        }
                    }
                    [rel, col, field] => match self.scope.column(Some(rel), col)? {
                        Some((idx, _)) => Ex::Field(Box::new(Ex::Col(idx)), field.clone()),
                        None => {
                            return plan_err(format!("Column '{col}' not found in table '{rel}'"))
                        }
                    },
                    _ => return plan_err(format!("Unsupported name {e}")),
                }
            }
            Expr::CompoundFieldAccess { root, access_chain } => {
                let mut out = self.compile(root, h)?;
                for a in access_chain {
                    match a {
                        ast::AccessExpr::Dot(Expr::Identifier(i)) => {
                            out = Ex::Field(Box::new(out), ident(i));
                        }
                        other => return plan_err(format!("Unsupported field access {other}")),
                    }
                }
                out
            }
            Expr::Value(v) => Ex::Lit(literal(&v.value)?),
            Expr::Interval(i) => Ex::Lit(interval_value(i)?),
            Expr::TypedString(t) => {
                let ty = data_type(&t.data_type)?;
                let text = match &t.value.value {
                    ast::Value::SingleQuotedString(s) => s.clone(),
                    other => return plan_err(format!("Unsupported literal {other}")),
                };
                Ex::Lit(cast(&Value::str(text.as_str()), ty).map_err(|e| PlanError(e.0))?)
            }
            Expr::UnaryOp { op, expr } => match op {
                UnaryOperator::Minus => Ex::Neg(self.boxed(expr, h)?),
                UnaryOperator::Plus => self.compile(expr, h)?,
                UnaryOperator::Not => Ex::Not(self.boxed(expr, h)?),
                other => return plan_err(format!("Unsupported operator {other}")),
            },
            Expr::BinaryOp { left, op, right } => {
                let (l, r) = (self.boxed(left, h)?, self.boxed(right, h)?);
                let op = match op {
                    BinaryOperator::And => return Ok(Ex::And(l, r)),
                    BinaryOperator::Or => return Ok(Ex::Or(l, r)),
                    BinaryOperator::Plus => Op::Add,
                    BinaryOperator::Minus => Op::Sub,
                    BinaryOperator::Multiply => Op::Mul,
                    BinaryOperator::Divide => Op::Div,
                    BinaryOperator::Modulo => Op::Mod,
                    BinaryOperator::Eq => Op::Eq,
                    BinaryOperator::NotEq => Op::Ne,
                    BinaryOperator::Lt => Op::Lt,
                    BinaryOperator::LtEq => Op::Le,
                    BinaryOperator::Gt => Op::Gt,
                    BinaryOperator::GtEq => Op::Ge,
                    BinaryOperator::StringConcat => Op::Concat,
                    other => return plan_err(format!("Unsupported operator {other}")),
                };
                Ex::Bin(op, l, r)
            }
            Expr::IsNull(x) => Ex::IsNull(self.boxed(x, h)?, false),
            Expr::IsNotNull(x) => Ex::IsNull(self.boxed(x, h)?, true),
            Expr::IsUnknown(x) => Ex::IsNull(self.boxed(x, h)?, false),
            Expr::IsNotUnknown(x) => Ex::IsNull(self.boxed(x, h)?, true),
            Expr::IsTrue(x) => Ex::IsBool(self.boxed(x, h)?, true, false),
            Expr::IsNotTrue(x) => Ex::IsBool(self.boxed(x, h)?, true, true),
            Expr::IsFalse(x) => Ex::IsBool(self.boxed(x, h)?, false, false),
            Expr::IsNotFalse(x) => Ex::IsBool(self.boxed(x, h)?, false, true),
            Expr::Between {
                expr,
                negated,
                low,
                high,
            } => Ex::Between(
                self.boxed(expr, h)?,
                self.boxed(low, h)?,
                self.boxed(high, h)?,
                *negated,
            ),
            Expr::In {
                expr,
                target,
                negated,
                ..
            } => match target {
                ast::InTarget::List(list) => Ex::In(
                    self.boxed(expr, h)?,
                    list.iter()
                        .map(|x| self.compile(x, h))
                        .collect::<PlanResult<_>>()?,
                    *negated,
                ),
                _ => return plan_err("IN supports a list of values only"),
            },
            Expr::Like {
                negated,
                expr,
                pattern,
                escape_char,
                any: false,
            } => self.matcher(expr, pattern, escape_char.as_deref(), *negated, false, h)?,
            Expr::SimilarTo {
                negated,
                expr,
                pattern,
                escape_char,
            } => self.matcher(expr, pattern, escape_char.as_deref(), *negated, true, h)?,
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => Ex::Case(
                match operand {
                    Some(o) => Some(self.boxed(o, h)?),
                    None => None,
                },
                conditions
                    .iter()
                    .map(|c| Ok((self.compile(&c.condition, h)?, self.compile(&c.result, h)?)))
                    .collect::<PlanResult<_>>()?,
                match else_result {
                    Some(o) => Some(self.boxed(o, h)?),
                    None => None,
                },
            ),
            Expr::Cast {
                expr, data_type: t, ..
            } => Ex::Cast(self.boxed(expr, h)?, data_type(t)?),
            Expr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![self.compile(expr, h)?];
                args.push(match substring_from {
                    Some(f) => self.compile(f, h)?,
                    None => Ex::Lit(Value::Int(1)),
                });
                if let Some(n) = substring_for {
                    args.push(self.compile(n, h)?);
                }
                self.call("SUBSTRING", args)?
            }
            Expr::Position { expr, r#in } => self.call(
                "POSITION",
                vec![self.compile(expr, h)?, self.compile(r#in, h)?],
            )?,
            Expr::Trim {
                trim_where,
                trim_what,
                expr,
                ..
            } => {
                let mode = match trim_where {
                    Some(ast::TrimWhereField::Leading) => "LEADING",
                    Some(ast::TrimWhereField::Trailing) => "TRAILING",
                    _ => "BOTH",
                };
                let what = match trim_what {
                    Some(w) => self.compile(w, h)?,
                    None => Ex::Lit(Value::str(" ")),
                };
                self.call(
                    "TRIM",
                    vec![Ex::Lit(Value::str(mode)), what, self.compile(expr, h)?],
                )?
            }
            Expr::Overlay {
                expr,
                overlay_what,
                overlay_from,
                overlay_for,
            } => {
                let mut args = vec![
                    self.compile(expr, h)?,
                    self.compile(overlay_what, h)?,
                    self.compile(overlay_from, h)?,
                ];
                if let Some(n) = overlay_for {
                    args.push(self.compile(n, h)?);
                }
                self.call("OVERLAY", args)?
            }
            Expr::Floor { expr, field } | Expr::Ceil { expr, field } => {
                let floor = matches!(e, Expr::Floor { .. });
                let x = self.compile(expr, h)?;
                match field {
                    ast::CeilFloorKind::DateTimeField(f) => {
                        let unit = time_unit(f)?;
                        self.call(
                            if floor { "FLOOR_TO" } else { "CEIL_TO" },
                            vec![x, Ex::Lit(Value::str(unit))],
                        )?
                    }
                    ast::CeilFloorKind::Scale(_) => {
                        self.call(if floor { "FLOOR" } else { "CEIL" }, vec![x])?
                    }
                }
            }
            Expr::Extract { field, expr, .. } => self.call(
                "EXTRACT",
                vec![
                    Ex::Lit(Value::str(time_unit(field)?)),
                    self.compile(expr, h)?,
                ],
            )?,
            Expr::Function(f) => self.function(f, h)?,
            other => return plan_err(format!("Unsupported expression {other}")),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn matcher(
        &self,
        expr: &Expr,
        pattern: &Expr,
        escape: Option<&Expr>,
        negated: bool,
        similar: bool,
        h: &mut dyn Hooks,
    ) -> PlanResult<Ex> {
        let escape = match escape {
            None => None,
            Some(Expr::Value(v)) => match &v.value {
                ast::Value::SingleQuotedString(s) if s.chars().count() == 1 => s.chars().next(),
                _ => return plan_err("ESCAPE must be a single character"),
            },
            Some(_) => return plan_err("ESCAPE must be a single character"),
        };
        let p = self.compile(pattern, h)?;
        let compiled = match &p {
            Ex::Lit(Value::Str(s)) => Some(Arc::new(
                pattern_regex(s, similar, escape).map_err(|e| PlanError(e.0))?,
            )),
            _ => None,
        };
        Ok(Ex::Match(
            self.boxed(expr, h)?,
            Box::new(p),
            negated,
            Matcher {
                similar,
                escape,
                compiled,
            },
        ))
    }

    fn function(&self, f: &ast::Function, h: &mut dyn Hooks) -> PlanResult<Ex> {
        if let Some(ex) = h.aggregate(self, f)? {
            return Ok(ex);
        }
        let name = function_name(f);
        if f.over.is_some() || AGGREGATES.contains(&name.as_str()) {
            return plan_err(format!(
                "Aggregate {name} is not allowed here: use GROUP BY with a window, or OVER"
            ));
        }
        let (args, _) = call_args(f)?;
        let args: Vec<&Expr> = args
            .into_iter()
            .map(|a| a.ok_or_else(|| PlanError(format!("{name}(*) is not a function"))))
            .collect::<PlanResult<_>>()?;
        match name.as_str() {
            "CURRENT_ROW_TIMESTAMP" | "CURRENT_TIMESTAMP" | "LOCALTIMESTAMP" if args.is_empty() => {
                return Ok(Ex::Now)
            }
            "STEP" => {
                let [x, w] = args.as_slice() else {
                    return plan_err("STEP takes (expression BY width)");
                };
                return Ok(Ex::Step(self.boxed(x, h)?, self.boxed(w, h)?));
            }
            _ => {}
        }
        let compiled = args
            .iter()
            .map(|a| self.compile(a, h))
            .collect::<PlanResult<Vec<_>>>()?;
        self.call(&name, compiled)
    }
}

/// The type an expression's values have, as far as the plan knows (for
/// the columns of subqueries).
pub fn guess_type(e: &Ex, scope: &Scope) -> SqlType {
    match e {
        Ex::Col(i) => scope
            .relations
            .iter()
            .find_map(|r| {
                (*i >= r.offset && *i < r.offset + r.columns.len())
                    .then(|| r.columns[*i - r.offset].1)
            })
            .unwrap_or(SqlType::Varchar(65535)),
        Ex::RowTime | Ex::Now => SqlType::Timestamp,
        Ex::Lit(Value::Int(_)) => SqlType::BigInt,
        Ex::Lit(Value::Double(_)) => SqlType::Double,
        Ex::Lit(Value::Bool(_)) => SqlType::Boolean,
        Ex::Cast(_, t) => *t,
        Ex::Not(_)
        | Ex::And(..)
        | Ex::Or(..)
        | Ex::IsNull(..)
        | Ex::IsBool(..)
        | Ex::Between(..)
        | Ex::In(..)
        | Ex::Match(..) => SqlType::Boolean,
        Ex::Bin(Op::Concat, ..) => SqlType::Varchar(65535),
        Ex::Bin(Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge, ..) => SqlType::Boolean,
        Ex::Bin(_, a, b) => {
            let (x, y) = (guess_type(a, scope), guess_type(b, scope));
            let int = |t: SqlType| {
                matches!(
                    t,
                    SqlType::TinyInt | SqlType::SmallInt | SqlType::Integer | SqlType::BigInt
                )
            };
            match (x, y) {
                (SqlType::Timestamp, _) | (_, SqlType::Timestamp) => SqlType::Timestamp,
                (a, b) if int(a) && int(b) => SqlType::BigInt,
                (a, b) if a.is_numeric() && b.is_numeric() => SqlType::Double,
                _ => SqlType::Varchar(65535),
            }
        }
        Ex::Neg(e) => guess_type(e, scope),
        Ex::Step(e, _) => guess_type(e, scope),
        // Aggregates over numbers (COUNT, SUM, AVG, ...) are numbers.
        Ex::Agg(_) => SqlType::Double,
        _ => SqlType::Varchar(65535),
    }
}
