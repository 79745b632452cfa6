//! Scalar functions (placeholder catalogue).

use super::value::{EvalResult, Value};

pub type ScalarFn = fn(&[Value]) -> EvalResult<Value>;

fn upper(a: &[Value]) -> EvalResult<Value> {
    Ok(match a.first() {
        Some(Value::Str(s)) => Value::str(s.to_uppercase()),
        _ => Value::Null,
    })
}

pub fn lookup(name: &str, argc: usize) -> Option<Result<ScalarFn, String>> {
    match (name, argc) {
        ("UPPER", 1) => Some(Ok(upper)),
        _ => None,
    }
}
