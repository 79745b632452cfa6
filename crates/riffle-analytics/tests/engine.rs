//! SQL semantics of the engine: application code run on known input rows
//! at known times, compared with the exact rows it must produce.

use std::collections::HashMap;
use std::sync::Arc;

use riffle_analytics::engine::pipeline::{Pipeline, Table};
use riffle_analytics::engine::query::Row;
use riffle_analytics::engine::value::{format_timestamp, SqlType, Value};
use riffle_analytics::sql;

const T0: i64 = 1_700_000_000_000; // 2023-11-14 22:13:20 UTC

fn ticker_columns() -> Vec<(String, SqlType)> {
    vec![
        ("TICKER_SYMBOL".into(), SqlType::Varchar(4)),
        ("SECTOR".into(), SqlType::Varchar(16)),
        ("CHANGE".into(), SqlType::Real),
        ("PRICE".into(), SqlType::Double),
    ]
}

fn tick(t: &str, sector: &str, change: f64, price: f64) -> Vec<Value> {
    vec![
        Value::str(t),
        Value::str(sector),
        Value::Double(change),
        Value::Double(price),
    ]
}

fn pipeline(code: &str, tables: HashMap<String, Table>) -> Pipeline {
    let program = sql::parse(code).expect("the code parses");
    let mut p = Pipeline::new(
        &program,
        &[("SOURCE_SQL_STREAM_001".into(), ticker_columns())],
        &tables,
    )
    .expect("the code plans");
    p.tap("DESTINATION_SQL_STREAM").unwrap();
    p.tap("error_stream").unwrap();
    p
}

/// Rows of a tapped stream as text lines: `rowtime | v1 | v2 ...`
/// (ROWTIME as seconds after T0).
fn lines(p: &mut Pipeline, stream: &str) -> Vec<String> {
    p.take(stream).iter().map(line).collect()
}

/// A row as text: `rowtime | v1 | v2 ...` (ROWTIME as seconds after T0).
fn line(r: &Row) -> String {
    let mut parts = vec![format!("{}", (r.rowtime - T0) as f64 / 1000.0)];
    parts.extend(
        r.values
            .iter()
            .map(|v| v.to_text().unwrap_or_else(|| "NULL".into())),
    );
    parts.join(" | ")
}

fn feed(p: &mut Pipeline, at_s: f64, rows: Vec<Vec<Value>>) {
    let now = T0 + (at_s * 1000.0) as i64;
    p.step(now, rows.into_iter().map(|r| (1, r)).collect(), Vec::new());
}

const DEST: &str = "CREATE OR REPLACE STREAM \"DESTINATION_SQL_STREAM\"";

#[test]
fn a_filter_pump_keeps_matching_rows_with_their_rowtime() {
    let mut p = pipeline(
        &format!(
            "{DEST} (ticker_symbol VARCHAR(4), price DOUBLE, up BOOLEAN);
             CREATE OR REPLACE PUMP \"STREAM_PUMP\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
             SELECT STREAM ticker_symbol, price * 2, change > 0
             FROM \"SOURCE_SQL_STREAM_001\"
             WHERE sector SIMILAR TO '%TECH%' AND price BETWEEN 10 AND 100"
        ),
        HashMap::new(),
    );
    feed(
        &mut p,
        1.0,
        vec![
            tick("AMZN", "TECHNOLOGY", 1.5, 50.0),
            tick("XOM", "ENERGY", -1.0, 60.0),
            tick("MSFT", "TECH", -0.5, 150.0),
        ],
    );
    feed(&mut p, 2.5, vec![tick("NFLX", "HITECH", 0.0, 10.0)]);
    assert_eq!(
        lines(&mut p, "DESTINATION_SQL_STREAM"),
        ["1 | AMZN | 100.0 | TRUE", "2.5 | NFLX | 20.0 | FALSE"]
    );
    assert!(lines(&mut p, "error_stream").is_empty());
}

#[test]
fn a_tumbling_window_emits_per_group_when_it_ends_even_without_input() {
    let mut p = pipeline(
        &format!(
            "{DEST} (ticker_symbol VARCHAR(4), n INTEGER, total DOUBLE, low DOUBLE, window_end TIMESTAMP);
             CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
             SELECT STREAM ticker_symbol, COUNT(*), SUM(price), MIN(price), ROWTIME
             FROM \"SOURCE_SQL_STREAM_001\"
             GROUP BY ticker_symbol, STEP(\"SOURCE_SQL_STREAM_001\".ROWTIME BY INTERVAL '10' SECOND)"
        ),
        HashMap::new(),
    );
    // T0 is 20 s into its minute: windows are [T0-0, T0+10 s), ... since
    // 10 s steps are aligned on the epoch.
    feed(
        &mut p,
        1.0,
        vec![tick("AMZN", "T", 0.0, 10.0), tick("XOM", "E", 0.0, 5.0)],
    );
    feed(&mut p, 4.0, vec![tick("AMZN", "T", 0.0, 30.0)]);
    feed(&mut p, 9.999, vec![]);
    assert!(lines(&mut p, "DESTINATION_SQL_STREAM").is_empty());
    feed(&mut p, 12.0, vec![tick("XOM", "E", 0.0, 7.0)]);
    assert_eq!(
        lines(&mut p, "DESTINATION_SQL_STREAM"),
        [
            "10 | AMZN | 2 | 40.0 | 10.0 | 2023-11-14 22:13:30",
            "10 | XOM | 1 | 5.0 | 5.0 | 2023-11-14 22:13:30"
        ]
    );
    // No more input: the window closes when time passes its end.
    feed(&mut p, 19.0, vec![]);
    assert!(lines(&mut p, "DESTINATION_SQL_STREAM").is_empty());
    feed(&mut p, 20.0, vec![]);
    assert_eq!(
        lines(&mut p, "DESTINATION_SQL_STREAM"),
        ["20 | XOM | 1 | 7.0 | 7.0 | 2023-11-14 22:13:40"]
    );
}

#[test]
fn floor_rowtime_to_minute_groups_by_minute_and_having_filters() {
    let mut p = pipeline(
        &format!(
            "{DEST} (minute_start TIMESTAMP, sector VARCHAR(16), avg_change REAL, n BIGINT);
             CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
             SELECT STREAM FLOOR(s.ROWTIME TO MINUTE), s.sector, AVG(change), COUNT(DISTINCT ticker_symbol)
             FROM \"SOURCE_SQL_STREAM_001\" AS s
             GROUP BY FLOOR(s.ROWTIME TO MINUTE), s.sector
             HAVING COUNT(*) > 1"
        ),
        HashMap::new(),
    );
    feed(
        &mut p,
        0.0,
        vec![tick("A", "TECH", 1.0, 1.0), tick("B", "TECH", 2.0, 1.0)],
    );
    feed(
        &mut p,
        30.0,
        vec![tick("A", "TECH", 3.0, 1.0), tick("C", "ENERGY", 3.0, 1.0)],
    );
    feed(&mut p, 40.0, vec![]);
    assert_eq!(
        lines(&mut p, "DESTINATION_SQL_STREAM"),
        ["40 | 2023-11-14 22:13:00 | TECH | 2.0 | 2"]
    );
}

#[test]
fn sliding_windows_emit_one_row_per_row() {
    let mut p = pipeline(
        &format!(
            "{DEST} (ticker_symbol VARCHAR(4), price DOUBLE, avg10 DOUBLE, last3 DOUBLE, n BIGINT);
             CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
             SELECT STREAM ticker_symbol, price,
               AVG(price) OVER w,
               SUM(price) OVER (PARTITION BY ticker_symbol ROWS 2 PRECEDING),
               COUNT(*) OVER (RANGE INTERVAL '5' SECOND PRECEDING)
             FROM \"SOURCE_SQL_STREAM_001\"
             WINDOW w AS (PARTITION BY ticker_symbol RANGE INTERVAL '10' SECOND PRECEDING)"
        ),
        HashMap::new(),
    );
    feed(&mut p, 0.0, vec![tick("A", "", 0.0, 10.0)]);
    feed(
        &mut p,
        4.0,
        vec![tick("A", "", 0.0, 20.0), tick("B", "", 0.0, 1.0)],
    );
    feed(&mut p, 8.0, vec![tick("A", "", 0.0, 30.0)]);
    feed(&mut p, 11.0, vec![tick("A", "", 0.0, 60.0)]);
    assert_eq!(
        lines(&mut p, "DESTINATION_SQL_STREAM"),
        [
            "0 | A | 10.0 | 10.0 | 10.0 | 1",
            "4 | A | 20.0 | 15.0 | 30.0 | 2",
            "4 | B | 1.0 | 1.0 | 1.0 | 3",
            "8 | A | 30.0 | 20.0 | 60.0 | 3",
            "11 | A | 60.0 | 36.666666666666664 | 110.0 | 2",
        ]
    );
}

#[test]
fn stagger_windows_open_per_key_at_its_first_row() {
    let mut p = pipeline(
        &format!(
            "{DEST} (ticker_symbol VARCHAR(4), n INTEGER, high DOUBLE);
             CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
             SELECT STREAM ticker_symbol, COUNT(*), MAX(price)
             FROM \"SOURCE_SQL_STREAM_001\"
             WINDOWED BY STAGGER (PARTITION BY ticker_symbol RANGE INTERVAL '10' SECOND)"
        ),
        HashMap::new(),
    );
    feed(&mut p, 1.0, vec![tick("A", "", 0.0, 1.0)]);
    feed(
        &mut p,
        6.0,
        vec![tick("B", "", 0.0, 2.0), tick("A", "", 0.0, 3.0)],
    );
    feed(&mut p, 11.0, vec![tick("A", "", 0.0, 5.0)]);
    assert_eq!(
        lines(&mut p, "DESTINATION_SQL_STREAM"),
        ["11 | A | 2 | 3.0"]
    );
    feed(&mut p, 30.0, vec![]);
    assert_eq!(
        lines(&mut p, "DESTINATION_SQL_STREAM"),
        ["16 | B | 1 | 2.0", "21 | A | 1 | 5.0"]
    );
}

#[test]
fn multi_step_pumps_run_in_dependency_order_within_a_step() {
    // The pumps are declared in the reverse of the order they must run.
    let mut p = pipeline(
        &format!(
            "{DEST} (ticker_symbol VARCHAR(4), n BIGINT);
             CREATE OR REPLACE PUMP \"SECOND\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
             SELECT STREAM ticker_symbol, COUNT(*) FROM \"MID\"
             GROUP BY ticker_symbol, STEP(\"MID\".ROWTIME BY INTERVAL '1' MINUTE);
             CREATE OR REPLACE STREAM \"MID\" (ticker_symbol VARCHAR(4), price DOUBLE);
             CREATE OR REPLACE PUMP \"FIRST\" AS INSERT INTO \"MID\"
             SELECT STREAM UPPER(ticker_symbol), price FROM \"SOURCE_SQL_STREAM_001\" WHERE price > 1"
        ),
        HashMap::new(),
    );
    feed(
        &mut p,
        0.0,
        vec![
            tick("a", "", 0.0, 5.0),
            tick("a", "", 0.0, 0.5),
            tick("b", "", 0.0, 3.0),
        ],
    );
    feed(&mut p, 45.0, vec![]);
    assert_eq!(
        lines(&mut p, "DESTINATION_SQL_STREAM"),
        ["40 | A | 1", "40 | B | 1"]
    );
}

#[test]
fn failures_go_to_error_stream_and_processing_goes_on() {
    let mut p = pipeline(
        &format!(
            "{DEST} (ticker_symbol VARCHAR(4), ratio INTEGER);
             CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
             SELECT STREAM ticker_symbol, CAST(sector AS INTEGER) / CAST(price AS INTEGER)
             FROM \"SOURCE_SQL_STREAM_001\""
        ),
        HashMap::new(),
    );
    feed(
        &mut p,
        1.0,
        vec![
            tick("A", "10", 0.0, 2.0),
            tick("B", "ten", 0.0, 2.0),
            tick("C", "1", 0.0, 0.0),
            tick("D", "9", 0.0, 3.0),
        ],
    );
    assert_eq!(
        lines(&mut p, "DESTINATION_SQL_STREAM"),
        ["1 | A | 5", "1 | D | 3"]
    );
    let errors = lines(&mut p, "error_stream");
    let t = format_timestamp(T0 + 1000);
    assert_eq!(
        errors,
        [
            format!("1 | {t} | ERROR | SQL_Error | Cannot cast VARCHAR value 'ten' to INTEGER | {t} | B,ten,0.0,2.0 | P"),
            format!("1 | {t} | ERROR | SQL_Error | Division by zero | {t} | C,1,0.0,0.0 | P"),
        ]
    );
}

#[test]
fn a_stream_joins_a_reference_table() {
    let mut tables = HashMap::new();
    tables.insert(
        "COMPANIES".to_string(),
        Table {
            columns: vec![
                ("TICKER".into(), SqlType::Varchar(4)),
                ("COMPANY".into(), SqlType::Varchar(32)),
            ],
            rows: Arc::new(vec![
                vec![Value::str("AMZN"), Value::str("Amazon")],
                vec![Value::str("XOM"), Value::str("Exxon")],
            ]),
        },
    );
    let mut p = pipeline(
        &format!(
            "{DEST} (ticker_symbol VARCHAR(4), company VARCHAR(32), price DOUBLE);
             CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
             SELECT STREAM s.ticker_symbol, c.company, s.price
             FROM \"SOURCE_SQL_STREAM_001\" AS s
             LEFT JOIN \"COMPANIES\" AS c ON s.ticker_symbol = c.ticker"
        ),
        tables,
    );
    feed(
        &mut p,
        1.0,
        vec![tick("XOM", "", 0.0, 1.0), tick("NFLX", "", 0.0, 2.0)],
    );
    assert_eq!(
        lines(&mut p, "DESTINATION_SQL_STREAM"),
        ["1 | XOM | Exxon | 1.0", "1 | NFLX | NULL | 2.0"]
    );
}

#[test]
fn code_that_cannot_run_is_refused_with_a_reason() {
    let plan = |code: &str| {
        let program = sql::parse(code).expect("parses");
        Pipeline::new(
            &program,
            &[("SOURCE_SQL_STREAM_001".into(), ticker_columns())],
            &HashMap::new(),
        )
        .err()
        .map(|e| e.0)
    };
    assert_eq!(
        plan(&format!("{DEST} (a INT); CREATE PUMP p AS INSERT INTO \"DESTINATION_SQL_STREAM\" SELECT STREAM nope FROM \"SOURCE_SQL_STREAM_001\"")),
        Some("Pump P: Column 'NOPE' not found in any table".into())
    );
    assert_eq!(
        plan(&format!("{DEST} (a INT); CREATE PUMP p AS INSERT INTO \"DESTINATION_SQL_STREAM\" SELECT STREAM COUNT(*) FROM \"SOURCE_SQL_STREAM_001\" GROUP BY sector")),
        Some("Pump P: A GROUP BY on a stream needs a ROWTIME-based window key, such as STEP(s.ROWTIME BY INTERVAL '1' MINUTE) or FLOOR(s.ROWTIME TO MINUTE)".into())
    );
    assert_eq!(
        plan(&format!("{DEST} (a INT, b INT); CREATE PUMP p AS INSERT INTO \"DESTINATION_SQL_STREAM\" SELECT STREAM price FROM \"SOURCE_SQL_STREAM_001\"")),
        Some("Pump P: the query has 1 columns and stream 'DESTINATION_SQL_STREAM' has 2".into())
    );
    assert_eq!(
        plan("CREATE STREAM a (x INT); CREATE STREAM b (x INT); CREATE PUMP p AS INSERT INTO a SELECT STREAM x FROM b; CREATE PUMP q AS INSERT INTO b SELECT STREAM x FROM a"),
        Some("Pump P is part of a cycle: a stream feeds itself".into())
    );
    assert_eq!(
        plan(&format!("{DEST} (a INT); CREATE PUMP p AS INSERT INTO \"DESTINATION_SQL_STREAM\" SELECT STREAM x FROM \"NOWHERE\"")),
        Some("Pump P: Object 'NOWHERE' not found".into())
    );
}

#[test]
fn two_streams_join_over_their_windows() {
    // Orders and trades split from one input by sector; a trade joins the
    // orders of the last 10 seconds with its ticker, and an order the
    // trades of the last 5.
    let mut p = pipeline(
        &format!(
            "CREATE OR REPLACE STREAM \"ORDERS\" (ticker VARCHAR(4), qty DOUBLE);
             CREATE OR REPLACE STREAM \"TRADES\" (ticker VARCHAR(4), price DOUBLE);
             CREATE OR REPLACE PUMP \"O\" AS INSERT INTO \"ORDERS\"
               SELECT STREAM ticker_symbol, price FROM \"SOURCE_SQL_STREAM_001\" WHERE sector = 'ORDER';
             CREATE OR REPLACE PUMP \"T\" AS INSERT INTO \"TRADES\"
               SELECT STREAM ticker_symbol, price FROM \"SOURCE_SQL_STREAM_001\" WHERE sector = 'TRADE';
             {DEST} (ticker_symbol VARCHAR(4), qty DOUBLE, price DOUBLE);
             CREATE OR REPLACE PUMP \"J\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
               SELECT STREAM o.ticker, o.qty, t.price
               FROM \"ORDERS\" OVER (RANGE INTERVAL '10' SECOND PRECEDING) AS o
               JOIN \"TRADES\" OVER (RANGE INTERVAL '5' SECOND PRECEDING) AS t
               ON o.ticker = t.ticker"
        ),
        HashMap::new(),
    );
    feed(
        &mut p,
        0.0,
        vec![
            tick("A", "ORDER", 0.0, 100.0),
            tick("B", "ORDER", 0.0, 200.0),
        ],
    );
    feed(&mut p, 3.0, vec![tick("A", "TRADE", 0.0, 1.5)]);
    feed(&mut p, 7.0, vec![tick("A", "ORDER", 0.0, 300.0)]);
    // The order at 0 s is out of the orders' window at 12 s; the trade at
    // 3 s is out of the trades' window for an order at 9 s.
    feed(&mut p, 9.0, vec![tick("A", "ORDER", 0.0, 400.0)]);
    feed(
        &mut p,
        12.0,
        vec![tick("A", "TRADE", 0.0, 2.5), tick("C", "TRADE", 0.0, 9.0)],
    );
    assert_eq!(
        lines(&mut p, "DESTINATION_SQL_STREAM"),
        [
            "3 | A | 100.0 | 1.5",
            "7 | A | 300.0 | 1.5",
            "12 | A | 300.0 | 2.5",
            "12 | A | 400.0 | 2.5",
        ]
    );
}

#[test]
fn a_stream_joined_with_itself_pairs_rows_of_a_session() {
    // Co-viewed pairs: views of one session (the sector column) within a
    // minute, each ordered pair of different products once, counted per
    // 10-second window.
    let mut p = pipeline(
        &format!(
            "{DEST} (a VARCHAR(4), b VARCHAR(4), n INTEGER);
             CREATE OR REPLACE PUMP \"PAIRS\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
               SELECT STREAM x.ticker_symbol, y.ticker_symbol, COUNT(*)
               FROM \"SOURCE_SQL_STREAM_001\" OVER (RANGE INTERVAL '1' MINUTE PRECEDING) AS x
               JOIN \"SOURCE_SQL_STREAM_001\" OVER (RANGE INTERVAL '1' MINUTE PRECEDING) AS y
                 ON x.sector = y.sector AND x.ticker_symbol <> y.ticker_symbol
               GROUP BY x.ticker_symbol, y.ticker_symbol, STEP(x.ROWTIME BY INTERVAL '10' SECOND)"
        ),
        HashMap::new(),
    );
    feed(
        &mut p,
        1.0,
        vec![
            tick("P1", "s1", 0.0, 0.0),
            tick("P2", "s1", 0.0, 0.0),
            tick("P1", "s2", 0.0, 0.0),
        ],
    );
    feed(
        &mut p,
        2.0,
        vec![tick("P3", "s1", 0.0, 0.0), tick("P2", "s2", 0.0, 0.0)],
    );
    feed(&mut p, 10.0, vec![]);
    let mut got = lines(&mut p, "DESTINATION_SQL_STREAM");
    got.sort();
    assert_eq!(
        got,
        [
            "10 | P1 | P2 | 2",
            "10 | P1 | P3 | 1",
            "10 | P2 | P1 | 2",
            "10 | P2 | P3 | 1",
            "10 | P3 | P1 | 1",
            "10 | P3 | P2 | 1",
        ]
    );
}

#[test]
fn log_parsers_return_rows_whose_fields_are_read_by_name() {
    let mut p = pipeline(
        &format!(
            "{DEST} (host VARCHAR(32), status INTEGER, day VARCHAR(10));
             CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
               SELECT STREAM t.r.COLUMN1, CAST(t.r.COLUMN2 AS INTEGER),
                 TIMESTAMP_TO_CHAR('yyyy-MM-dd', CHAR_TO_TIMESTAMP('dd/MMM/yyyy', t.r.COLUMN3))
               FROM (SELECT STREAM REGEX_LOG_PARSE(sector, '(\\S+) (\\d+) (\\S+)') AS r
                     FROM \"SOURCE_SQL_STREAM_001\") AS t"
        ),
        HashMap::new(),
    );
    feed(
        &mut p,
        1.0,
        vec![
            tick("A", "10.0.0.1 404 10/Oct/2024", 0.0, 0.0),
            tick("B", "not a log line", 0.0, 0.0),
        ],
    );
    assert_eq!(
        lines(&mut p, "DESTINATION_SQL_STREAM"),
        // TIMESTAMP_TO_CHAR of NULL is the text 'null', as AWS documents.
        ["1 | 10.0.0.1 | 404 | 2024-10-10", "1 | NULL | NULL | null"]
    );
}

#[test]
fn event_time_windows_group_by_a_column_with_rowtime_driving_emission() {
    // Rows grouped by the minute of their own event time (in the sector
    // column), emitted when the ROWTIME window ends.
    let mut p = pipeline(
        &format!(
            "{DEST} (event_minute TIMESTAMP, ticker_symbol VARCHAR(4), n INTEGER);
             CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
               SELECT STREAM FLOOR(CAST(sector AS TIMESTAMP) TO MINUTE), ticker_symbol, COUNT(*)
               FROM \"SOURCE_SQL_STREAM_001\"
               GROUP BY ticker_symbol, FLOOR(CAST(sector AS TIMESTAMP) TO MINUTE),
                 STEP(\"SOURCE_SQL_STREAM_001\".ROWTIME BY INTERVAL '10' SECOND)"
        ),
        HashMap::new(),
    );
    feed(
        &mut p,
        1.0,
        vec![
            tick("A", "2024-01-01 10:00:59", 0.0, 0.0),
            tick("A", "2024-01-01 10:01:00", 0.0, 0.0),
            tick("A", "2024-01-01 10:00:01", 0.0, 0.0),
        ],
    );
    feed(&mut p, 10.0, vec![]);
    assert_eq!(
        lines(&mut p, "DESTINATION_SQL_STREAM"),
        [
            "10 | 2024-01-01 10:00:00 | A | 2",
            "10 | 2024-01-01 10:01:00 | A | 1"
        ]
    );
}

#[test]
fn watched_streams_get_a_copy_of_their_rows_and_the_pumps_still_run() {
    let code = format!(
        "{DEST} (ticker_symbol VARCHAR(4), price DOUBLE);
         CREATE OR REPLACE PUMP \"STREAM_PUMP\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"
         SELECT STREAM ticker_symbol, price FROM \"SOURCE_SQL_STREAM_001\" WHERE price > 10"
    );
    let mut p = pipeline(&code, HashMap::new());
    // Nobody watches: nothing is copied.
    feed(&mut p, 1.0, vec![tick("AMZN", "TECH", 0.5, 20.0)]);
    assert!(p.take_watched().is_empty());
    assert_eq!(lines(&mut p, "DESTINATION_SQL_STREAM"), ["1 | AMZN | 20.0"]);

    // The source (read by one pump only) and the tapped destination.
    p.watch(&[
        "SOURCE_SQL_STREAM_001".into(),
        "DESTINATION_SQL_STREAM".into(),
        "NO_SUCH_STREAM".into(),
    ]);
    feed(
        &mut p,
        2.0,
        vec![
            tick("IBM", "TECH", 1.0, 5.0),
            tick("MSFT", "TECH", 1.5, 30.0),
        ],
    );
    let mut watched: Vec<(String, Vec<String>)> = p
        .take_watched()
        .into_iter()
        .map(|(name, rows)| (name, rows.iter().map(line).collect()))
        .collect();
    watched.sort();
    assert_eq!(
        watched,
        [
            (
                "DESTINATION_SQL_STREAM".to_string(),
                vec!["2 | MSFT | 30.0".to_string()]
            ),
            (
                "SOURCE_SQL_STREAM_001".to_string(),
                vec![
                    "2 | IBM | TECH | 1.0 | 5.0".to_string(),
                    "2 | MSFT | TECH | 1.5 | 30.0".to_string()
                ]
            ),
        ]
    );
    // The output still gets every row, and a take empties the copies.
    assert_eq!(lines(&mut p, "DESTINATION_SQL_STREAM"), ["2 | MSFT | 30.0"]);
    assert!(p.take_watched().is_empty());

    // Unwatched again: nothing more is copied.
    p.watch(&[]);
    feed(&mut p, 3.0, vec![tick("AAPL", "TECH", 2.0, 40.0)]);
    assert!(p.take_watched().is_empty());
    assert_eq!(lines(&mut p, "DESTINATION_SQL_STREAM"), ["3 | AAPL | 40.0"]);
}
