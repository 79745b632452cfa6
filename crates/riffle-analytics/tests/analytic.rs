//! The analytic table functions (`FROM TABLE(f(CURSOR(...), ...))`):
//! application code run on known rows at known times, compared with the
//! exact rows it must produce.

use std::collections::HashMap;

use riffle_analytics::engine::pipeline::Pipeline;
use riffle_analytics::engine::query::Row;
use riffle_analytics::engine::value::{SqlType, Value};
use riffle_analytics::sql;

const T0: i64 = 1_700_000_000_000; // 2023-11-14 22:13:20 UTC, 20 s into its minute

const SRC: &str = "\"SOURCE_SQL_STREAM_001\"";

fn columns(cols: &[(&str, SqlType)]) -> Vec<(String, SqlType)> {
    cols.iter().map(|(n, t)| (n.to_string(), *t)).collect()
}

fn ticker_columns() -> Vec<(String, SqlType)> {
    columns(&[
        ("TICKER_SYMBOL", SqlType::Varchar(4)),
        ("SECTOR", SqlType::Varchar(16)),
        ("CHANGE", SqlType::Real),
        ("PRICE", SqlType::Double),
    ])
}

fn heart_columns() -> Vec<(String, SqlType)> {
    columns(&[
        ("heartRate", SqlType::Integer),
        ("rateType", SqlType::Varchar(20)),
    ])
}

fn plan(code: &str, input: Vec<(String, SqlType)>) -> Result<Pipeline, String> {
    let program = sql::parse(code).map_err(|e| e.to_string())?;
    Pipeline::new(
        &program,
        &[("SOURCE_SQL_STREAM_001".into(), input)],
        &HashMap::new(),
    )
    .map_err(|e| e.0)
}

fn pipeline(code: &str, input: Vec<(String, SqlType)>) -> Pipeline {
    let mut p = plan(code, input).expect("the code plans");
    p.tap("DESTINATION_SQL_STREAM").unwrap();
    p.tap("error_stream").unwrap();
    p
}

fn text(v: &Value) -> String {
    v.to_text().unwrap_or_else(|| "NULL".into())
}

/// Rows as text lines: `rowtime | v1 | v2 ...` (ROWTIME as seconds after
/// T0).
fn lines(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            let mut parts = vec![format!("{}", (r.rowtime - T0) as f64 / 1000.0)];
            parts.extend(r.values.iter().map(text));
            parts.join(" | ")
        })
        .collect()
}

fn feed(p: &mut Pipeline, at_s: f64, rows: Vec<Vec<Value>>) {
    let now = T0 + (at_s * 1000.0) as i64;
    p.step(now, rows.into_iter().map(|r| (1, r)).collect(), Vec::new());
}

fn out(p: &mut Pipeline) -> Vec<Row> {
    p.take("DESTINATION_SQL_STREAM")
}

fn tick(t: &str) -> Vec<Value> {
    vec![
        Value::str(t),
        Value::str("TECH"),
        Value::Double(0.5),
        Value::Double(10.0),
    ]
}

fn heart(rate: i64, kind: &str) -> Vec<Value> {
    vec![Value::Int(rate), Value::str(kind)]
}

/// A regular heart rate: 60 to 100, no two neighbours far apart.
fn normal_rate(i: i64) -> i64 {
    60 + (i * 7) % 41
}

fn score(r: &Row, at: usize) -> f64 {
    match r.values.get(at) {
        Some(Value::Double(d)) => *d,
        other => panic!("no score in {other:?}"),
    }
}

const DEST: &str = "CREATE OR REPLACE STREAM \"DESTINATION_SQL_STREAM\"";

#[test]
fn random_cut_forest_learns_then_scores_the_outlier_highest() {
    // The developer guide's heart rate example: most rates are 60-100, one
    // is 180; its score must stand out once the forest has learned.
    let mut p = pipeline(
        &format!(
            "{DEST} (\"heartRate\" INTEGER, \"rateType\" VARCHAR(20), ANOMALY_SCORE DOUBLE);
             CREATE OR REPLACE PUMP \"STREAM_PUMP\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
             SELECT STREAM \"heartRate\", \"rateType\", ANOMALY_SCORE
             FROM TABLE(RANDOM_CUT_FOREST(CURSOR(SELECT STREAM * FROM {SRC}), 50, 20, 1000, 1))"
        ),
        heart_columns(),
    );
    for i in 0..60 {
        let row = if i == 45 {
            heart(180, "HIGH")
        } else {
            heart(normal_rate(i), "NORMAL")
        };
        feed(&mut p, i as f64, vec![row]);
    }
    let rows = out(&mut p);
    assert_eq!(rows.len(), 60);
    // One row out per row in, with its ROWTIME and columns.
    assert_eq!(
        lines(&rows[..2]),
        ["0 | 60 | NORMAL | 0.0", "1 | 67 | NORMAL | 0.0"]
    );
    assert!(lines(&rows[45..46])[0].starts_with("45 | 180 | HIGH | "));
    // subSampleSize records score zero while the trees fill.
    for r in &rows[..20] {
        assert_eq!(score(r, 2), 0.0, "{:?}", r);
    }
    for r in &rows[20..] {
        assert!(score(r, 2) > 0.0, "{:?}", r);
    }
    let outlier = score(&rows[45], 2);
    let others = rows[20..]
        .iter()
        .enumerate()
        .filter(|(i, _)| *i + 20 != 45)
        .map(|(_, r)| score(r, 2))
        .fold(0.0, f64::max);
    assert!(
        outlier > 3.0 * others,
        "outlier {outlier}, others up to {others}"
    );
    assert!(lines(&p.take("error_stream")).is_empty());
}

#[test]
fn random_cut_forest_defaults_learn_from_256_records() {
    // Only the cursor is required; the defaults are 100 trees, a sample
    // of 256, timeDecay 100,000 and shingles of one record. The outer
    // query filters on the score.
    let mut p = pipeline(
        &format!(
            "{DEST} (rate INTEGER, score DOUBLE);
             CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
             SELECT STREAM \"heartRate\", ANOMALY_SCORE
             FROM TABLE(RANDOM_CUT_FOREST(CURSOR(SELECT STREAM \"heartRate\" FROM {SRC}))) AS f
             WHERE f.ANOMALY_SCORE > 0"
        ),
        heart_columns(),
    );
    for i in 0..256 {
        feed(&mut p, i as f64, vec![heart(normal_rate(i), "NORMAL")]);
    }
    assert!(out(&mut p).is_empty());
    feed(&mut p, 256.0, vec![heart(70, "NORMAL")]);
    let rows = out(&mut p);
    assert_eq!(rows.len(), 1);
    assert!(
        lines(&rows)[0].starts_with("256 | 70 | "),
        "{:?}",
        lines(&rows)
    );
    assert!(score(&rows[0], 1) > 0.0);
}

#[test]
fn random_cut_forest_gives_a_null_point_score_zero_without_learning_it() {
    let code = format!(
        "{DEST} (rate INTEGER, kind VARCHAR(20), score DOUBLE);
         CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
         SELECT STREAM * FROM TABLE(RANDOM_CUT_FOREST(CURSOR(SELECT STREAM * FROM {SRC}), 10, 10))"
    );
    let mut p = pipeline(&code, heart_columns());
    let mut q = pipeline(&code, heart_columns());
    // The same rows, one stream with NULLs in between: the NULL rows score
    // 0 and the others score exactly as if the NULLs were not there.
    for i in 0..30 {
        feed(&mut p, i as f64, vec![heart(normal_rate(i), "N")]);
        feed(&mut q, i as f64, vec![heart(normal_rate(i), "N")]);
        if i % 5 == 4 {
            feed(
                &mut q,
                i as f64 + 0.5,
                vec![vec![Value::Null, Value::str("NULL")]],
            );
        }
    }
    let with_nulls = out(&mut q);
    let (nulls, rest): (Vec<Row>, Vec<Row>) =
        with_nulls.into_iter().partition(|r| r.values[0].is_null());
    assert_eq!(nulls.len(), 6);
    assert!(nulls.iter().all(|r| score(r, 2) == 0.0));
    assert_eq!(
        rest.iter().map(|r| score(r, 2)).collect::<Vec<_>>(),
        out(&mut p).iter().map(|r| score(r, 2)).collect::<Vec<_>>()
    );
    assert!(rest.iter().skip(10).all(|r| score(r, 2) > 0.0));
}

#[test]
fn random_cut_forest_shingles_learn_from_sample_size_full_shingles() {
    // shingleSize 3: the first two records make no shingle, the next ten
    // shingles fill the samples of ten; the thirteenth record is scored.
    let mut p = pipeline(
        &format!(
            "{DEST} (rate INTEGER, kind VARCHAR(20), score DOUBLE);
             CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
             SELECT STREAM * FROM TABLE(RANDOM_CUT_FOREST(CURSOR(SELECT STREAM * FROM {SRC}), 20, 10, 100, 3))"
        ),
        heart_columns(),
    );
    for i in 0..14 {
        feed(&mut p, i as f64, vec![heart(normal_rate(i), "N")]);
    }
    let scores: Vec<f64> = out(&mut p).iter().map(|r| score(r, 2)).collect();
    assert_eq!(scores.len(), 14);
    assert!(scores[..12].iter().all(|s| *s == 0.0), "{scores:?}");
    assert!(scores[12..].iter().all(|s| *s > 0.0), "{scores:?}");
}

#[test]
fn random_cut_forest_with_explanation_attributes_the_outlying_column() {
    let mut p = pipeline(
        &format!(
            "{DEST} (change REAL, price DOUBLE, score DOUBLE, why VARCHAR(20480));
             CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
             SELECT STREAM change, price, ANOMALY_SCORE, ANOMALY_EXPLANATION
             FROM TABLE(RANDOM_CUT_FOREST_WITH_EXPLANATION(
                 CURSOR(SELECT STREAM * FROM {SRC}), 50, 16, 1000, 1, true))"
        ),
        ticker_columns(),
    );
    let row = |change: f64, price: f64| {
        vec![
            Value::str("AMZN"),
            Value::str("TECH"),
            Value::Double(change),
            Value::Double(price),
        ]
    };
    for i in 0..40 {
        let change = (i % 5) as f64 * 0.1;
        let price = 100.0 + (i % 7) as f64;
        feed(&mut p, i as f64, vec![row(change, price)]);
    }
    // The price jumps while the change stays usual.
    feed(&mut p, 40.0, vec![row(0.2, 250.0)]);
    let rows = out(&mut p);
    assert_eq!(rows.len(), 41);
    // While learning: zero scores, LOW with zero strength.
    assert_eq!(
        lines(&rows[..1]),
        ["0 | 0.0 | 100.0 | 0.0 | {\"CHANGE\":{\"DIRECTION\":\"LOW\",\"STRENGTH\":\"0.0000\",\"ATTRIBUTION_SCORE\":\"0.0000\"},\
          \"PRICE\":{\"DIRECTION\":\"LOW\",\"STRENGTH\":\"0.0000\",\"ATTRIBUTION_SCORE\":\"0.0000\"}}"]
    );
    let last = &rows[40];
    let why: serde_json::Value = serde_json::from_str(&text(&last.values[3])).unwrap();
    let attr = |col: &str, field: &str| -> String {
        why[col][field].as_str().unwrap_or_default().to_string()
    };
    let num = |col: &str| attr(col, "ATTRIBUTION_SCORE").parse::<f64>().unwrap();
    assert_eq!(attr("PRICE", "DIRECTION"), "HIGH");
    assert!(num("PRICE") > 10.0 * num("CHANGE"), "{why}");
    // The attributions sum to the score (to the four decimals printed).
    assert!(
        (num("PRICE") + num("CHANGE") - score(last, 2)).abs() < 0.001,
        "{why}"
    );
    let before = rows[20..40].iter().map(|r| score(r, 2)).fold(0.0, f64::max);
    assert!(score(last, 2) > 2.0 * before);
}

#[test]
fn hotspots_reports_the_dense_region_after_each_row() {
    let mut p = pipeline(
        &format!(
            "{DEST} (change REAL, price DOUBLE, hotspots VARCHAR(10000));
             CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
             SELECT STREAM \"CHANGE\", \"PRICE\", \"HOTSPOTS_RESULT\"
             FROM TABLE(HOTSPOTS(CURSOR(SELECT STREAM \"CHANGE\", \"PRICE\" FROM {SRC}), 100, 0.5, 3))"
        ),
        ticker_columns(),
    );
    let row = |change: f64, price: f64| {
        vec![
            Value::str("AMZN"),
            Value::str("TECH"),
            Value::Double(change),
            Value::Double(price),
        ]
    };
    feed(&mut p, 1.0, vec![row(1.0, 1.0), row(1.0, 1.25)]);
    feed(&mut p, 2.0, vec![row(9.0, 9.0), row(1.25, 1.0)]);
    assert_eq!(
        lines(&out(&mut p)),
        [
            "1 | 1.0 | 1.0 | {\"hotspots\":[]}",
            "1 | 1.0 | 1.25 | {\"hotspots\":[]}",
            "2 | 9.0 | 9.0 | {\"hotspots\":[]}",
            "2 | 1.25 | 1.0 | {\"hotspots\":[{\"density\":12.0,\"maxValues\":[1.25,1.25],\"minValues\":[1.0,1.0]}]}",
        ]
    );
    // A row with a NULL coordinate stays out of the window and gets the
    // window's hotspots.
    let no_price = vec![
        Value::str("AMZN"),
        Value::str("TECH"),
        Value::Double(1.125),
        Value::Null,
    ];
    feed(&mut p, 3.0, vec![no_price, row(1.125, 1.1)]);
    assert_eq!(
        lines(&out(&mut p)),
        [
            "3 | 1.125 | NULL | {\"hotspots\":[{\"density\":12.0,\"maxValues\":[1.25,1.25],\"minValues\":[1.0,1.0]}]}",
            "3 | 1.125 | 1.1 | {\"hotspots\":[{\"density\":16.0,\"maxValues\":[1.25,1.25],\"minValues\":[1.0,1.0]}]}",
        ]
    );
}

#[test]
fn top_k_items_counts_per_tumbling_window_closing_on_idle_time() {
    // The SQL reference's example: the five most frequent ticker symbols
    // per minute, the destination columns named freely.
    let mut p = pipeline(
        &format!(
            "{DEST} (\"TICKER_SYMBOL\" VARCHAR(4), \"MOST_FREQUENT_VALUES\" BIGINT);
             CREATE OR REPLACE PUMP \"STREAM_PUMP\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
             SELECT STREAM * FROM TABLE (TOP_K_ITEMS_TUMBLING(
                 CURSOR(SELECT STREAM * FROM {SRC}),
                 'TICKER_SYMBOL',  -- the column
                 3,                -- K
                 60                -- window seconds
             ))"
        ),
        ticker_columns(),
    );
    // T0 is 20 s into its minute: the first window ends at 40 s.
    feed(&mut p, 0.0, vec![tick("INTC"), tick("AMZN"), tick("TBV")]);
    feed(&mut p, 10.0, vec![tick("AMZN"), tick("MSFT"), tick("MSFT")]);
    feed(&mut p, 20.0, vec![tick("AMZN"), tick("AAPL"), tick("INTC")]);
    feed(&mut p, 39.999, vec![]);
    assert!(out(&mut p).is_empty());
    // No input: time alone closes the window. AMZN 3, then INTC and MSFT
    // with 2 each in the order they first came; TBV and AAPL are left out.
    feed(&mut p, 40.0, vec![]);
    assert_eq!(
        lines(&out(&mut p)),
        ["40 | AMZN | 3", "40 | INTC | 2", "40 | MSFT | 2"]
    );
    // A row of a later window closes the one before; an empty minute emits
    // nothing.
    feed(&mut p, 50.0, vec![tick("TBV")]);
    feed(&mut p, 170.0, vec![tick("AAPL")]);
    feed(&mut p, 250.0, vec![]);
    assert_eq!(lines(&out(&mut p)), ["100 | TBV | 1", "220 | AAPL | 1"]);
    assert!(lines(&p.take("error_stream")).is_empty());
}

#[test]
fn top_k_items_outputs_item_and_item_count_of_the_column_type() {
    // The developer guide's form: the outer query names ITEM and
    // ITEM_COUNT; the column is found ignoring case; NULLs are not items.
    let mut p = pipeline(
        &format!(
            "{DEST} (ITEM DOUBLE, ITEM_COUNT DOUBLE, doubled DOUBLE);
             CREATE OR REPLACE PUMP \"STREAM_PUMP\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
             SELECT STREAM ITEM, ITEM_COUNT, ITEM * 2
             FROM TABLE(TOP_K_ITEMS_TUMBLING(CURSOR(SELECT STREAM * FROM {SRC}), 'price', 10, 10))
             WHERE ITEM_COUNT > 1"
        ),
        ticker_columns(),
    );
    let priced = |price: Value| {
        vec![
            Value::str("AMZN"),
            Value::str("TECH"),
            Value::Double(0.0),
            price,
        ]
    };
    feed(
        &mut p,
        1.0,
        vec![
            priced(Value::Double(5.5)),
            priced(Value::Null),
            priced(Value::Null),
            priced(Value::Double(7.0)),
            priced(Value::Double(5.5)),
            priced(Value::Double(7.0)),
            priced(Value::Double(7.0)),
            priced(Value::Double(1.0)),
        ],
    );
    feed(&mut p, 10.0, vec![]);
    assert_eq!(
        lines(&out(&mut p)),
        ["10 | 7.0 | 3.0 | 14.0", "10 | 5.5 | 2.0 | 11.0"]
    );
}

#[test]
fn top_k_items_keeps_the_frequent_values_past_ten_thousand_distinct_ones() {
    let mut p = pipeline(
        &format!(
            "{DEST} (item VARCHAR(8), n BIGINT);
             CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
             SELECT STREAM * FROM TABLE(TOP_K_ITEMS_TUMBLING(
                 CURSOR(SELECT STREAM * FROM {SRC}), 'TICKER_SYMBOL', 3, 60))"
        ),
        ticker_columns(),
    );
    // 30,000 values seen once each, with three values repeated among them:
    // past 10,000 counters the rare values share counters, the frequent
    // ones keep theirs and their exact counts.
    let mut rows = Vec::new();
    for i in 0..30_000 {
        rows.push(tick(&format!("{i:x}")));
        match i % 100 {
            0 => rows.push(tick("AMZN")),
            1 | 2 => rows.push(tick("MSFT")),
            3..=5 => rows.push(tick("INTC")),
            _ => {}
        }
    }
    feed(&mut p, 0.0, rows);
    feed(&mut p, 40.0, vec![]);
    assert_eq!(
        lines(&out(&mut p)),
        ["40 | INTC | 900", "40 | MSFT | 600", "40 | AMZN | 300"]
    );
}

#[test]
fn count_distinct_items_counts_per_tumbling_window() {
    // The SQL reference's example shape: one count per window.
    let mut p = pipeline(
        &format!(
            "{DEST} (NUMBER_OF_DISTINCT_ITEMS BIGINT);
             CREATE OR REPLACE PUMP \"STREAM_PUMP\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
             SELECT STREAM * FROM TABLE(COUNT_DISTINCT_ITEMS_TUMBLING(
                 CURSOR(SELECT STREAM * FROM {SRC}), 'TICKER_SYMBOL', 10))"
        ),
        ticker_columns(),
    );
    feed(&mut p, 0.0, vec![tick("AMZN"), tick("MSFT"), tick("AMZN")]);
    feed(&mut p, 9.0, vec![tick("INTC"), tick("MSFT")]);
    feed(&mut p, 10.0, vec![tick("TBV")]);
    assert_eq!(lines(&out(&mut p)), ["10 | 3"]);
    // Closed by time with no input; a window of NULLs only counts 0.
    feed(&mut p, 20.0, vec![]);
    let null_ticker = vec![
        Value::Null,
        Value::str("X"),
        Value::Double(0.0),
        Value::Double(1.0),
    ];
    feed(&mut p, 25.0, vec![null_ticker.clone(), null_ticker]);
    feed(&mut p, 45.0, vec![]);
    assert_eq!(lines(&out(&mut p)), ["20 | 1", "30 | 0"]);
}

#[test]
fn count_distinct_items_is_exact_up_to_ten_thousand_values() {
    let mut p = pipeline(
        &format!(
            "{DEST} (n BIGINT);
             CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
             SELECT STREAM * FROM TABLE(COUNT_DISTINCT_ITEMS_TUMBLING(
                 CURSOR(SELECT STREAM price FROM {SRC}), 'PRICE', 1))"
        ),
        ticker_columns(),
    );
    let priced = |i: i64| {
        vec![
            Value::str("A"),
            Value::str("B"),
            Value::Double(0.0),
            Value::Double(i as f64),
        ]
    };
    feed(
        &mut p,
        0.0,
        (0..10_000).chain(0..10_000).map(priced).collect(),
    );
    feed(&mut p, 1.0, (0..30_000).map(priced).collect());
    feed(&mut p, 2.0, vec![]);
    let rows = out(&mut p);
    assert_eq!(lines(&rows[..1]), ["1 | 10000"]);
    // Past 10,000 the count is an estimate.
    let n = rows[1].values[0].as_i64().unwrap();
    assert!((29_400..=30_600).contains(&n), "{n}");
    assert_eq!(rows.len(), 2);
}

#[test]
fn arguments_out_of_aws_ranges_are_refused_when_planned() {
    let refused = |call: &str, input: Vec<(String, SqlType)>| -> String {
        let code = format!(
            "{DEST} (a INTEGER);
             CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
             SELECT STREAM * FROM TABLE({call})"
        );
        match plan(&code, input) {
            Ok(_) => panic!("{call} planned"),
            Err(e) => e,
        }
    };
    let cursor = format!("CURSOR(SELECT STREAM * FROM {SRC})");
    let t = ticker_columns;
    assert_eq!(
        refused(&format!("RANDOM_CUT_FOREST({cursor}, 0)"), t()),
        "Pump P: RANDOM_CUT_FOREST: numberOfTrees must be between 1 and 1000 (inclusive), got 0"
    );
    assert_eq!(
        refused(
            &format!("RANDOM_CUT_FOREST({cursor}, 100, 256, 100000, 1, 2)"),
            t()
        ),
        "Pump P: RANDOM_CUT_FOREST takes 0 to 4 arguments after the cursor \
         (numberOfTrees, subSampleSize, timeDecay, shingleSize), got 5"
    );
    assert_eq!(
        refused(&format!("RANDOM_CUT_FOREST({cursor}, 100, 256, 200)"), t()),
        "Pump P: RANDOM_CUT_FOREST: subSampleSize must be less than timeDecay, \
         got subSampleSize 256 and timeDecay 200"
    );
    assert_eq!(
        refused(&format!("RANDOM_CUT_FOREST({cursor}, 100, 2.5)"), t()),
        "Pump P: RANDOM_CUT_FOREST: subSampleSize must be an integer between 10 and 1000, got 2.5"
    );
    assert_eq!(
        refused(&format!("RANDOM_CUT_FOREST({cursor}, price)"), t()),
        "Pump P: RANDOM_CUT_FOREST: numberOfTrees must be a literal, got price"
    );
    assert_eq!(
        refused(&format!("RANDOM_CUT_FOREST_WITH_EXPLANATION({cursor}, 100, 256, 100000, 1, 'yes')"), t()),
        "Pump P: RANDOM_CUT_FOREST_WITH_EXPLANATION: withDirectionality must be TRUE or FALSE, got 'yes'"
    );
    // 1000 trees × 1000 points × 2 columns × 30 records per shingle.
    assert_eq!(
        refused(
            &format!("RANDOM_CUT_FOREST({cursor}, 1000, 1000, 100000, 30)"),
            t()
        ),
        "Pump P: RANDOM_CUT_FOREST: numberOfTrees (1000) × subSampleSize (1000) × numeric \
         columns (2) × shingleSize (30) is 60000000 coordinates, more than the 16000000 a \
         forest may hold (about 400 MB): lower one of them"
    );
    assert_eq!(
        refused(
            &format!("RANDOM_CUT_FOREST(CURSOR(SELECT STREAM ticker_symbol FROM {SRC}))"),
            t()
        ),
        "Pump P: RANDOM_CUT_FOREST: the input stream must have between 1 and 30 numeric columns, got 0"
    );
    assert_eq!(
        refused(
            &format!("RANDOM_CUT_FOREST({cursor})"),
            columns(&[("AMOUNT", SqlType::Decimal(10, 2))])
        ),
        "Pump P: RANDOM_CUT_FOREST: column AMOUNT is DECIMAL(10, 2), and DECIMAL is not a \
         supported type: CAST it to DOUBLE in the cursor"
    );
    assert_eq!(
        refused(&format!("RANDOM_CUT_FOREST({SRC})"), t()),
        "Pump P: RANDOM_CUT_FOREST needs CURSOR(SELECT STREAM ...) as its first argument, \
         got \"SOURCE_SQL_STREAM_001\""
    );
    assert_eq!(
        refused(&format!("HOTSPOTS({cursor}, 100, 0.5)"), t()),
        "Pump P: HOTSPOTS takes 3 arguments after the cursor \
         (windowSize, scanRadius, minimumNumberOfPointsInAHotspot), got 2"
    );
    assert_eq!(
        refused(&format!("HOTSPOTS({cursor}, 100, 0, 5)"), t()),
        "Pump P: HOTSPOTS: scanRadius must be greater than 0, got 0"
    );
    assert_eq!(
        refused(&format!("HOTSPOTS({cursor}, 100, 0.5, 101)"), t()),
        "Pump P: HOTSPOTS: minimumNumberOfPointsInAHotspot must be between 2 and 100 (inclusive), got 101"
    );
    assert_eq!(
        refused(
            &format!("TOP_K_ITEMS_TUMBLING({cursor}, 'TICKER_SYMBOL', 100001, 60)"),
            t()
        ),
        "Pump P: TOP_K_ITEMS_TUMBLING: K must be between 1 and 100000 (inclusive), got 100001"
    );
    assert_eq!(
        refused(
            &format!("TOP_K_ITEMS_TUMBLING({cursor}, 'TICKER_SYMBOL', 5, 3601)"),
            t()
        ),
        "Pump P: TOP_K_ITEMS_TUMBLING: windowSize must be between 1 and 3600 (inclusive), got 3601"
    );
    assert_eq!(
        refused(
            &format!("TOP_K_ITEMS_TUMBLING({cursor}, ticker_symbol, 5, 60)"),
            t()
        ),
        "Pump P: TOP_K_ITEMS_TUMBLING: columnName must be a literal, got ticker_symbol"
    );
    assert_eq!(
        refused(
            &format!("TOP_K_ITEMS_TUMBLING({cursor}, 'TICKER', 5, 60)"),
            t()
        ),
        "Pump P: TOP_K_ITEMS_TUMBLING: column 'TICKER' not found in the cursor's columns \
         (TICKER_SYMBOL, SECTOR, CHANGE, PRICE)"
    );
    assert_eq!(
        refused(&format!("COUNT_DISTINCT_ITEMS_TUMBLING({cursor}, 'SECTOR', 0)"), t()),
        "Pump P: COUNT_DISTINCT_ITEMS_TUMBLING: windowSize must be between 1 and 3600 (inclusive), got 0"
    );
    assert_eq!(
        refused(
            &format!("COUNT_DISTINCT_ITEMS_TUMBLING({cursor}, 'SECTOR')"),
            t()
        ),
        "Pump P: COUNT_DISTINCT_ITEMS_TUMBLING takes 2 arguments after the cursor \
         (columnName, windowSize), got 1"
    );
    assert_eq!(
        refused(&format!("TOP_ITEMS({cursor})"), t()),
        "Pump P: Unknown table function TOP_ITEMS: expected RANDOM_CUT_FOREST, \
         RANDOM_CUT_FOREST_WITH_EXPLANATION, HOTSPOTS, TOP_K_ITEMS_TUMBLING or \
         COUNT_DISTINCT_ITEMS_TUMBLING"
    );
}
