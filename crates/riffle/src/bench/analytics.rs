//! `riffle bench --phase analytics`: the streaming SQL engine in process,
//! without a server. Three applications read the same generated ticker
//! rows (TICKER VARCHAR(8), SECTOR VARCHAR(16), CHANGE REAL, PRICE
//! DOUBLE):
//!
//! - `filter`: `WHERE change > 0` (about half the rows), three columns;
//! - `tumble`: COUNT/SUM/AVG/MIN/MAX per ticker over 10-second tumbling
//!   windows (`STEP(ROWTIME BY INTERVAL '10' SECOND)`);
//! - `slide`: `AVG(price) OVER (PARTITION BY ticker RANGE INTERVAL '10'
//!   SECOND PRECEDING)`, one row out per row in.
//!
//! Rows enter in steps of `--analytics-step-rows` on a simulated clock:
//! each step's ROWTIME is `rows so far / --analytics-rate` seconds after
//! the start, so tumbling windows close and sliding windows expire as they
//! would at that rate. With `--analytics-keys` keys, a 10-second window
//! holds `10 × rate / keys` rows per key on average (50 with the defaults:
//! 10,000 keys at 50,000 rows/s). The input is generated before timing;
//! only `Pipeline::step` is timed, so rows/s is the engine's rate on one
//! core, and the per-step time bounds how long a row waits inside the
//! engine before its output exists. Each application runs for
//! `--duration-secs` of engine time, or over exactly `--records` rows,
//! after which the clock moves one window on so the last windows close.
//!
//! The generator is splitmix64 from a fixed seed, one draw per row:
//! `scripts/bench_analytics_peers.py` makes the same rows for its peers.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use riffle_analytics::engine::pipeline::Pipeline;
use riffle_analytics::engine::value::{SqlType, Value};
use riffle_analytics::sql;

use super::Hist;
use crate::cli::BenchArgs;

/// ROWTIME of the first step's start: 2023-11-14 22:13:20 UTC, on a
/// 10-second boundary.
const T0: i64 = 1_700_000_000_000;
/// The generator's seed (the peer script uses the same).
pub const SEED: u64 = 42;
/// Rows generated once and replayed when a run needs more.
const POOL: usize = 2_000_000;
const INPUT: &str = "SOURCE_SQL_STREAM_001";
const OUTPUT: &str = "DESTINATION_SQL_STREAM";
/// Longest window of the applications: the clock moves this far past
/// the last input so that every window closes.
const WINDOW_MS: i64 = 10_000;

const SECTORS: [&str; 8] = [
    "TECHNOLOGY",
    "FINANCIAL",
    "HEALTHCARE",
    "ENERGY",
    "RETAIL",
    "INDUSTRIALS",
    "UTILITIES",
    "TELECOM",
];

/// The three applications: name, what they compute, code.
pub const APPS: [(&str, &str, &str); 3] = [
    (
        "filter",
        "WHERE change > 0, 3 columns",
        "CREATE OR REPLACE STREAM \"DESTINATION_SQL_STREAM\" (ticker VARCHAR(8), change REAL, price DOUBLE);
         CREATE OR REPLACE PUMP \"STREAM_PUMP\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
         SELECT STREAM ticker, change, price FROM \"SOURCE_SQL_STREAM_001\" WHERE change > 0",
    ),
    (
        "tumble",
        "GROUP BY ticker, 10 s STEP: COUNT/SUM/AVG/MIN/MAX",
        "CREATE OR REPLACE STREAM \"DESTINATION_SQL_STREAM\" (ticker VARCHAR(8), n BIGINT, total DOUBLE, avg_price DOUBLE, low DOUBLE, high DOUBLE);
         CREATE OR REPLACE PUMP \"STREAM_PUMP\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
         SELECT STREAM ticker, COUNT(*), SUM(price), AVG(price), MIN(price), MAX(price)
         FROM \"SOURCE_SQL_STREAM_001\"
         GROUP BY ticker, STEP(\"SOURCE_SQL_STREAM_001\".ROWTIME BY INTERVAL '10' SECOND)",
    ),
    (
        "slide",
        "AVG(price) OVER (PARTITION BY ticker RANGE 10 s PRECEDING)",
        "CREATE OR REPLACE STREAM \"DESTINATION_SQL_STREAM\" (ticker VARCHAR(8), price DOUBLE, avg_price DOUBLE);
         CREATE OR REPLACE PUMP \"STREAM_PUMP\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
         SELECT STREAM ticker, price,
           AVG(price) OVER (PARTITION BY ticker RANGE INTERVAL '10' SECOND PRECEDING)
         FROM \"SOURCE_SQL_STREAM_001\"",
    ),
];

fn input_columns() -> Vec<(String, SqlType)> {
    vec![
        ("TICKER".into(), SqlType::Varchar(8)),
        ("SECTOR".into(), SqlType::Varchar(16)),
        ("CHANGE".into(), SqlType::Real),
        ("PRICE".into(), SqlType::Double),
    ]
}

/// splitmix64: one 64-bit draw per call.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// One generated row as plain numbers: key index, CHANGE, PRICE.
/// From the draw `r`: key `r mod keys`; CHANGE in hundredths from -10.00
/// to 10.00; PRICE a per-key base of 10 to 499 plus 0.00 to 99.99.
pub fn row_of(r: u64, keys: usize) -> (usize, f64, f64) {
    let k = (r % keys as u64) as usize;
    let change = ((r >> 20) % 2001) as f64 / 100.0 - 10.0;
    let price = (10 + k % 490) as f64 + ((r >> 40) % 10_000) as f64 / 100.0;
    (k, change, price)
}

pub fn ticker(k: usize) -> String {
    format!("T{k:06}")
}

/// `n` input rows for `keys` tickers, in the input stream's column order.
fn generate(n: usize, keys: usize) -> Vec<Vec<Value>> {
    let tickers: Vec<Value> = (0..keys).map(|k| Value::str(ticker(k))).collect();
    let sectors: Vec<Value> = SECTORS.iter().map(|s| Value::str(*s)).collect();
    let mut rng = SplitMix(SEED);
    (0..n)
        .map(|_| {
            let (k, change, price) = row_of(rng.next(), keys);
            vec![
                tickers[k].clone(),
                sectors[k % SECTORS.len()].clone(),
                Value::Double(change),
                Value::Double(price),
            ]
        })
        .collect()
}

/// ROWTIME of step `j` (0-based): the simulated time at which its last
/// row arrives.
fn step_time(j: u64, step_rows: usize, rate: u64) -> i64 {
    let rows = (j + 1).saturating_mul(step_rows as u64);
    T0.saturating_add((rows.saturating_mul(1000) / rate.max(1)) as i64)
}

/// What one application did.
#[derive(Debug, Default)]
pub struct Run {
    pub rows_in: u64,
    pub rows_out: u64,
    pub errors: u64,
    pub steps: u64,
    /// Time inside `Pipeline::step`.
    pub engine: Duration,
    /// Per step, µs.
    pub step_us: Vec<u64>,
}

/// Runs application `code` over `pool` (replayed as needed) until `rows`
/// rows went in, or, when `rows` is 0, until `duration` of engine time.
pub fn run_app(
    code: &str,
    pool: &[Vec<Value>],
    step_rows: usize,
    rate: u64,
    rows: u64,
    duration: Duration,
) -> anyhow::Result<Run> {
    if pool.is_empty() || step_rows == 0 {
        bail!("the analytics phase needs input rows and at least one row per step");
    }
    let program = sql::parse(code).map_err(|e| anyhow!("{e:?}"))?;
    let mut p = Pipeline::new(
        &program,
        &[(INPUT.into(), input_columns())],
        &Default::default(),
    )
    .map_err(|e| anyhow!("{}", e.0))?;
    p.tap(OUTPUT).map_err(|e| anyhow!("{}", e.0))?;
    p.tap("error_stream").map_err(|e| anyhow!("{}", e.0))?;
    let input = p
        .stream_index(INPUT)
        .ok_or_else(|| anyhow!("no stream {INPUT}"))?;
    let mut run = Run::default();
    let mut next = 0usize;
    let mut last = T0;
    loop {
        let n = if rows > 0 {
            (rows - run.rows_in).min(step_rows as u64) as usize
        } else {
            step_rows
        };
        if n == 0 || (rows == 0 && run.engine >= duration) {
            break;
        }
        let mut batch = Vec::with_capacity(n);
        for _ in 0..n {
            batch.push((input, pool[next].clone()));
            next = (next + 1) % pool.len();
        }
        last = step_time(run.steps, step_rows, rate);
        let t = Instant::now();
        p.step(last, batch, Vec::new());
        let took = t.elapsed();
        run.engine += took;
        run.step_us.push(took.as_micros() as u64);
        run.steps += 1;
        run.rows_in += n as u64;
        run.rows_out += p.take(OUTPUT).len() as u64;
        run.errors += p.take("error_stream").len() as u64;
    }
    // The clock moves one window on: the last windows close.
    let t = Instant::now();
    p.step(last + WINDOW_MS + 1, Vec::new(), Vec::new());
    let took = t.elapsed();
    run.engine += took;
    run.step_us.push(took.as_micros() as u64);
    run.steps += 1;
    run.rows_out += p.take(OUTPUT).len() as u64;
    run.errors += p.take("error_stream").len() as u64;
    Ok(run)
}

pub fn analytics_phase(args: &BenchArgs) -> anyhow::Result<()> {
    let keys = args.analytics_keys.max(1);
    let rate = args.analytics_rate.max(1);
    let step_rows = args.analytics_step_rows.max(1);
    let pool_rows = if args.records > 0 {
        (args.records as usize).min(POOL * 5)
    } else {
        POOL
    };
    println!(
        "riffle bench → analytics engine in process: {keys} keys, {rate} rows/s simulated, {step_rows} rows per step ({:.1} ms of ROWTIME), ~{:.0} rows per key in a 10 s window; {}",
        step_rows as f64 * 1000.0 / rate as f64,
        10.0 * rate as f64 / keys as f64,
        if args.records > 0 {
            format!("{} rows per application", args.records)
        } else {
            format!("{:.0} s of engine time per application", args.duration_secs)
        }
    );
    let t = Instant::now();
    let pool = generate(pool_rows, keys);
    println!(
        "generated {} rows in {:.2} s (not timed)",
        pool.len(),
        t.elapsed().as_secs_f64()
    );
    let duration = Duration::from_secs_f64(args.duration_secs.max(0.001));
    for (name, what, code) in APPS {
        let mut run = run_app(code, &pool, step_rows, rate, args.records, duration)?;
        let secs = run.engine.as_secs_f64().max(1e-9);
        let mut hist = Hist(std::mem::take(&mut run.step_us));
        println!(
            "analytics {name} ({what}): {} rows in {secs:.2} s of engine time = {:.0} rows/s in, {} rows out, {} errors; step latency ({} steps) {}",
            run.rows_in,
            run.rows_in as f64 / secs,
            run.rows_out,
            run.errors,
            run.steps,
            hist.summary()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_generator_matches_its_definition() {
        let mut rng = SplitMix(SEED);
        // splitmix64's first output for seed 42.
        let r = rng.next();
        assert_eq!(r, 0xBDD7_3226_2FEB_6E95);
        let (k, change, price) = row_of(r, 10_000);
        assert_eq!(k, (r % 10_000) as usize);
        assert!((-10.0..=10.0).contains(&change));
        assert!((10.0..600.0).contains(&price));
        let rows = generate(3, 10_000);
        assert_eq!(rows[0][0], Value::str(ticker(k)));
        assert_eq!(rows[0][3], Value::Double(price));
    }

    #[test]
    fn each_application_produces_what_its_query_means() {
        let (keys, rate, step, n) = (50, 1000, 100, 12_000u64);
        let pool = generate(n as usize, keys);
        let long = Duration::from_secs(3600);
        let positive = pool
            .iter()
            .filter(|r| matches!(r[2], Value::Double(c) if c > 0.0))
            .count() as u64;

        let filter = run_app(APPS[0].2, &pool, step, rate, n, long).unwrap();
        assert_eq!((filter.rows_in, filter.errors), (n, 0));
        assert_eq!(filter.rows_out, positive);

        // 12,000 rows at 1,000 rows/s: 12 s of ROWTIME, windows of 10 s.
        let mut groups = HashSet::new();
        for (i, r) in pool.iter().enumerate() {
            let t = step_time(i as u64 / step as u64, step, rate);
            groups.insert((r[0].clone().to_text(), t.div_euclid(10_000)));
        }
        let tumble = run_app(APPS[1].2, &pool, step, rate, n, long).unwrap();
        assert_eq!(tumble.errors, 0);
        assert_eq!(tumble.rows_out, groups.len() as u64);

        let slide = run_app(APPS[2].2, &pool, step, rate, n, long).unwrap();
        assert_eq!((slide.rows_out, slide.errors), (n, 0));
        // n / step input steps and the closing one.
        assert_eq!(slide.steps, n / step as u64 + 1);
    }
}
