//! Aggregate functions: COUNT, SUM, AVG, MIN, MAX, FIRST_VALUE,
//! LAST_VALUE and the variances, each with DISTINCT.
//!
//! An [`Acc`] folds the values of one group or window; NULLs are skipped
//! (COUNT(*) counts rows). SUM and AVG keep their argument's kind: an
//! integer column sums to an integer (overflow is an error for the row)
//! and averages to an integer rounded toward zero, as SQLstream does;
//! DOUBLE and DECIMAL stay DOUBLE and DECIMAL. The variances are DOUBLE.

use std::collections::{HashSet, VecDeque};

use super::expr::{binary, Ex, Op};
use super::value::{fail, Dec, EvalResult, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggKind {
    CountStar,
    Count,
    Sum,
    Avg,
    Min,
    Max,
    First,
    Last,
    VarPop,
    VarSamp,
    StddevPop,
    StddevSamp,
}

impl AggKind {
    pub fn parse(name: &str, star: bool) -> Option<AggKind> {
        Some(match name {
            "COUNT" if star => AggKind::CountStar,
            "COUNT" => AggKind::Count,
            "SUM" => AggKind::Sum,
            "AVG" => AggKind::Avg,
            "MIN" => AggKind::Min,
            "MAX" => AggKind::Max,
            "FIRST_VALUE" => AggKind::First,
            "LAST_VALUE" => AggKind::Last,
            "VAR_POP" => AggKind::VarPop,
            "VAR_SAMP" | "VARIANCE" => AggKind::VarSamp,
            "STDDEV_POP" => AggKind::StddevPop,
            "STDDEV_SAMP" | "STDDEV" => AggKind::StddevSamp,
            _ => return None,
        })
    }
}

/// One aggregate call of a query.
#[derive(Clone)]
pub struct AggSpec {
    pub kind: AggKind,
    pub arg: Option<Ex>,
    pub distinct: bool,
}

impl AggSpec {
    pub fn start(&self) -> Acc {
        Acc {
            kind: self.kind,
            n: 0,
            value: Value::Null,
            mean: 0.0,
            m2: 0.0,
            seen: self.distinct.then(HashSet::new),
        }
    }
}

/// The running state of one aggregate.
#[derive(Clone)]
pub struct Acc {
    kind: AggKind,
    n: i64,
    value: Value,
    mean: f64,
    m2: f64,
    seen: Option<HashSet<Value>>,
}

impl Acc {
    /// Adds one row's argument (None for COUNT(*)).
    pub fn add(&mut self, v: Option<&Value>) -> EvalResult<()> {
        let v = match v {
            None => {
                self.n += 1;
                return Ok(());
            }
            Some(Value::Null) => return Ok(()),
            Some(v) => v,
        };
        if let Some(seen) = &mut self.seen {
            if !seen.insert(v.clone()) {
                return Ok(());
            }
        }
        self.n += 1;
        match self.kind {
            AggKind::CountStar | AggKind::Count => {}
            AggKind::Sum | AggKind::Avg => {
                self.value = if self.value.is_null() {
                    v.clone()
                } else {
                    binary(Op::Add, &self.value, v)?
                };
            }
            AggKind::Min => {
                if self.value.is_null() || v.total_cmp(&self.value).is_lt() {
                    self.value = v.clone();
                }
            }
            AggKind::Max => {
                if self.value.is_null() || v.total_cmp(&self.value).is_gt() {
                    self.value = v.clone();
                }
            }
            AggKind::First => {
                if self.n == 1 {
                    self.value = v.clone();
                }
            }
            AggKind::Last => self.value = v.clone(),
            AggKind::VarPop | AggKind::VarSamp | AggKind::StddevPop | AggKind::StddevSamp => {
                let Some(x) = v.as_f64() else {
                    return fail(format!("Cannot aggregate {} values", v.type_name()));
                };
                let d = x - self.mean;
                self.mean += d / self.n as f64;
                self.m2 += d * (x - self.mean);
            }
        }
        Ok(())
    }

    /// The aggregate's value.
    pub fn finish(&self) -> EvalResult<Value> {
        let n = self.n;
        Ok(match self.kind {
            AggKind::CountStar | AggKind::Count => Value::Int(n),
            AggKind::Sum | AggKind::Min | AggKind::Max | AggKind::First | AggKind::Last => {
                self.value.clone()
            }
            AggKind::Avg => match &self.value {
                Value::Null => Value::Null,
                Value::Int(s) => Value::Int(s / n.max(1)),
                Value::Double(s) => Value::Double(s / n.max(1) as f64),
                Value::Decimal(d) => match Dec::checked_div(*d, Dec::from_i64(n.max(1))) {
                    Some(q) => Value::Decimal(q.rescale(d.scale.max(6)).unwrap_or(q)),
                    None => return fail("Numeric overflow"),
                },
                other => return fail(format!("Cannot average {} values", other.type_name())),
            },
            AggKind::VarPop | AggKind::StddevPop if n > 0 => {
                let v = self.m2 / n as f64;
                Value::Double(if self.kind == AggKind::VarPop {
                    v
                } else {
                    v.sqrt()
                })
            }
            AggKind::VarSamp | AggKind::StddevSamp if n > 1 => {
                let v = self.m2 / (n - 1) as f64;
                Value::Double(if self.kind == AggKind::VarSamp {
                    v
                } else {
                    v.sqrt()
                })
            }
            _ => Value::Null,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kind: AggKind, distinct: bool, vals: &[Value]) -> Value {
        let spec = AggSpec {
            kind,
            arg: None,
            distinct,
        };
        let mut acc = spec.start();
        for v in vals {
            acc.add(Some(v)).unwrap();
        }
        acc.finish().unwrap()
    }

    #[test]
    fn aggregates_skip_nulls_and_keep_kinds() {
        let ints = [Value::Int(3), Value::Null, Value::Int(4), Value::Int(4)];
        assert_eq!(run(AggKind::Count, false, &ints), Value::Int(3));
        assert_eq!(run(AggKind::Count, true, &ints), Value::Int(2));
        assert_eq!(run(AggKind::Sum, false, &ints), Value::Int(11));
        assert_eq!(run(AggKind::Avg, false, &ints), Value::Int(3));
        assert_eq!(run(AggKind::Min, false, &ints), Value::Int(3));
        assert_eq!(run(AggKind::Max, false, &ints), Value::Int(4));
        assert_eq!(run(AggKind::First, false, &ints), Value::Int(3));
        assert_eq!(run(AggKind::Sum, true, &ints), Value::Int(7));
        assert_eq!(run(AggKind::Sum, false, &[Value::Null]), Value::Null);
        let d = [Value::Double(1.0), Value::Double(2.0), Value::Double(4.0)];
        assert_eq!(run(AggKind::Avg, false, &d), Value::Double(7.0 / 3.0));
        let var = run(AggKind::VarPop, false, &d).as_f64().unwrap();
        assert!((var - 14.0 / 9.0).abs() < 1e-12, "{var}");
        assert_eq!(run(AggKind::VarSamp, false, &d[..1]), Value::Null);
        let mut big = AggSpec {
            kind: AggKind::Sum,
            arg: None,
            distinct: false,
        }
        .start();
        big.add(Some(&Value::Int(i64::MAX))).unwrap();
        assert_eq!(
            big.add(Some(&Value::Int(1))).unwrap_err().0,
            "Numeric overflow"
        );
    }

    #[test]
    fn sliding_aggregates_follow_rows_in_and_out() {
        let spec = |kind| AggSpec {
            kind,
            arg: None,
            distinct: false,
        };
        let vals = [5, 3, 8, 1, 7, 2].map(Value::Int);
        let (mut max, mut min, mut sum) = (
            Sliding::new(&spec(AggKind::Max)).unwrap(),
            Sliding::new(&spec(AggKind::Min)).unwrap(),
            Sliding::new(&spec(AggKind::Avg)).unwrap(),
        );
        // A window of the last three values.
        let mut seen = Vec::new();
        for (i, v) in vals.iter().enumerate() {
            let seq = i as u64;
            for s in [&mut max, &mut min, &mut sum] {
                s.add(seq, Some(v)).unwrap();
            }
            if i >= 3 {
                let old = &vals[i - 3];
                for s in [&mut max, &mut min, &mut sum] {
                    s.remove(seq - 3, Some(old)).unwrap();
                }
            }
            seen.push((
                max.value().unwrap(),
                min.value().unwrap(),
                sum.value().unwrap(),
            ));
        }
        let ints = |x: [(i64, i64, i64); 6]| {
            x.map(|(a, b, c)| (Value::Int(a), Value::Int(b), Value::Int(c)))
                .to_vec()
        };
        assert_eq!(
            seen,
            ints([
                (5, 5, 5),
                (5, 3, 4),
                (8, 3, 5),
                (8, 1, 4),
                (8, 1, 5),
                (7, 1, 3)
            ])
        );
        assert!(Sliding::new(&AggSpec {
            kind: AggKind::Sum,
            arg: None,
            distinct: true
        })
        .is_none());
    }
}

/// An aggregate of a sliding window kept as rows enter and leave it, so a
/// row costs the same whatever the window holds: COUNT, SUM and AVG keep
/// running totals (a DOUBLE sum is recomputed from the window's rows now
/// and then, so rounding does not drift), MIN and MAX a deque of the
/// values that can still become the extreme. FIRST_VALUE, LAST_VALUE,
/// the variances and DISTINCT are computed from the window's rows.
#[derive(Clone)]
pub struct Sliding {
    kind: AggKind,
    n: i64,
    sum: Value,
    /// (row sequence, value), values decreasing (MAX) or increasing (MIN)
    /// from the front.
    extremes: VecDeque<(u64, Value)>,
    /// DOUBLE subtractions since the sum was last exact.
    inexact: usize,
}

impl Sliding {
    /// The running form of an aggregate, if it has one.
    pub fn new(spec: &AggSpec) -> Option<Sliding> {
        let ok = !spec.distinct
            && matches!(
                spec.kind,
                AggKind::CountStar
                    | AggKind::Count
                    | AggKind::Sum
                    | AggKind::Avg
                    | AggKind::Min
                    | AggKind::Max
            );
        ok.then(|| Sliding {
            kind: spec.kind,
            n: 0,
            sum: Value::Null,
            extremes: VecDeque::new(),
            inexact: 0,
        })
    }

    /// A row with sequence `seq` enters the window.
    pub fn add(&mut self, seq: u64, v: Option<&Value>) -> EvalResult<()> {
        let v = match (self.kind, v) {
            (AggKind::CountStar, _) | (_, None) => {
                self.n += 1;
                return Ok(());
            }
            (_, Some(Value::Null)) => return Ok(()),
            (_, Some(v)) => v,
        };
        match self.kind {
            AggKind::Sum | AggKind::Avg => {
                self.sum = if self.sum.is_null() {
                    v.clone()
                } else {
                    binary(Op::Add, &self.sum, v)?
                };
            }
            AggKind::Min | AggKind::Max => {
                let max = self.kind == AggKind::Max;
                while self.extremes.back().is_some_and(|(_, b)| {
                    let o = b.total_cmp(v);
                    if max {
                        o.is_le()
                    } else {
                        o.is_ge()
                    }
                }) {
                    self.extremes.pop_back();
                }
                self.extremes.push_back((seq, v.clone()));
            }
            _ => {}
        }
        self.n += 1;
        Ok(())
    }

    /// The row with sequence `seq` (the oldest) leaves the window.
    pub fn remove(&mut self, seq: u64, v: Option<&Value>) -> EvalResult<()> {
        let v = match (self.kind, v) {
            (AggKind::CountStar, _) | (_, None) => {
                self.n -= 1;
                return Ok(());
            }
            (_, Some(Value::Null)) => return Ok(()),
            (_, Some(v)) => v,
        };
        self.n -= 1;
        match self.kind {
            AggKind::Sum | AggKind::Avg => {
                if self.n == 0 {
                    self.sum = Value::Null;
                    self.inexact = 0;
                } else {
                    if matches!(v, Value::Double(_)) || matches!(self.sum, Value::Double(_)) {
                        self.inexact += 1;
                    }
                    self.sum = binary(Op::Sub, &self.sum, v)?;
                }
            }
            AggKind::Min | AggKind::Max
                if self.extremes.front().is_some_and(|(s, _)| *s == seq) =>
            {
                self.extremes.pop_front();
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether the running sum should be recomputed from the window's
    /// `len` rows.
    pub fn drifted(&self, len: usize) -> bool {
        self.inexact > len.max(64)
    }

    /// Starts over empty (before the window's rows are added again).
    pub fn reset(&mut self) {
        self.n = 0;
        self.sum = Value::Null;
        self.extremes.clear();
        self.inexact = 0;
    }

    pub fn value(&self) -> EvalResult<Value> {
        Ok(match self.kind {
            AggKind::CountStar | AggKind::Count => Value::Int(self.n),
            AggKind::Sum => self.sum.clone(),
            AggKind::Avg => {
                let acc = Acc {
                    kind: AggKind::Avg,
                    n: self.n,
                    value: self.sum.clone(),
                    mean: 0.0,
                    m2: 0.0,
                    seen: None,
                };
                acc.finish()?
            }
            AggKind::Min | AggKind::Max => self
                .extremes
                .front()
                .map_or(Value::Null, |(_, v)| v.clone()),
            _ => Value::Null,
        })
    }
}
