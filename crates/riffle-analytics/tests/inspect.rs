//! What the console reads besides the API: code checked by the parser
//! (as CreateApplication checks it) and the planner, and watches of
//! in-application streams.

use std::sync::Arc;

use riffle_analytics::inspect::{Check, StreamColumns};
use riffle_analytics::sql::SqlError;
use riffle_analytics::{AnalyticsError, Config, Ctx, Service};
use riffle_core::clock::SystemClock;
use riffle_core::Clock;
use riffle_wire::Value;

fn service() -> Arc<Service> {
    Service::new(Config::default(), SystemClock::new() as Arc<dyn Clock>)
}

fn json(s: &str) -> Value {
    riffle_wire::json::decode(s.as_bytes()).unwrap()
}

const INPUT: &str = r#"{
  "NamePrefix": "SOURCE_SQL_STREAM",
  "KinesisStreamsInput": {"ResourceARN": "arn:aws:kinesis:us-east-1:000000000000:stream/ticks", "RoleARN": "arn:aws:iam::000000000000:role/r"},
  "InputSchema": {
    "RecordFormat": {"RecordFormatType": "JSON", "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}}},
    "RecordColumns": [{"Name": "ticker", "Mapping": "$.ticker", "SqlType": "VARCHAR(4)"}]
  }
}"#;

const CODE: &str = "CREATE OR REPLACE STREAM \"DESTINATION_SQL_STREAM\" (t VARCHAR(4));\n\
     CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"DESTINATION_SQL_STREAM\"\n\
     SELECT STREAM \"ticker\" FROM \"SOURCE_SQL_STREAM_001\";";

#[tokio::test]
async fn code_is_checked_by_the_parser_then_planned_over_the_applications_inputs() {
    let svc = service();
    let ctx = Ctx {
        region: "us-east-1".into(),
    };
    let bad = "CREATE OR REPLACE STREAM \"D\" (a INT);\nCREATE PUMP p AS INSERT INTO \"D\" SELECT STREAM a FROM;";
    let expected = Check {
        parse: Some(SqlError {
            line: 2,
            column: 54,
            message: "Expected: identifier, found: EOF".into(),
        }),
        ..Check::default()
    };
    assert_eq!(svc.check_code("us-east-1", None, bad), expected);
    // CreateApplication refuses the same code with the same position.
    let refused = svc
        .call(
            &ctx,
            "CreateApplication",
            json(&format!(
                r#"{{"ApplicationName": "a", "ApplicationCode": {}}}"#,
                String::from_utf8(riffle_wire::json::encode(&Value::Str(bad.into()))).unwrap()
            )),
        )
        .await
        .unwrap_err();
    match refused {
        AnalyticsError::CodeValidation(m) => assert_eq!(
            m,
            "SQL error at line 2, column 54: Expected: identifier, found: EOF"
        ),
        other => panic!("{other:?}"),
    }

    // Without an input the planner cannot find SOURCE_SQL_STREAM_001.
    svc.call(
        &ctx,
        "CreateApplication",
        json(r#"{"ApplicationName": "a"}"#),
    )
    .await
    .unwrap();
    assert_eq!(
        svc.check_code("us-east-1", Some("a"), CODE),
        Check {
            plan: Some("Pump P: Object 'SOURCE_SQL_STREAM_001' not found".into()),
            ..Check::default()
        }
    );
    svc.call(
        &ctx,
        "AddApplicationInput",
        json(&format!(
            r#"{{"ApplicationName": "a", "CurrentApplicationVersionId": 1, "Input": {INPUT}}}"#
        )),
    )
    .await
    .unwrap();
    let cols = |c: &[(&str, &str)]| {
        c.iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        svc.check_code("us-east-1", Some("a"), CODE),
        Check {
            streams: vec![
                StreamColumns {
                    name: "error_stream".into(),
                    columns: cols(&[
                        ("ERROR_TIME", "TIMESTAMP"),
                        ("ERROR_LEVEL", "VARCHAR(10)"),
                        ("ERROR_NAME", "VARCHAR(32)"),
                        ("MESSAGE", "VARCHAR(4096)"),
                        ("DATA_ROWTIME", "TIMESTAMP"),
                        ("DATA_ROW", "VARCHAR(49152)"),
                        ("PUMP_NAME", "VARCHAR(128)"),
                    ]),
                },
                StreamColumns {
                    name: "SOURCE_SQL_STREAM_001".into(),
                    columns: cols(&[
                        ("ticker", "VARCHAR(4)"),
                        ("APPROXIMATE_ARRIVAL_TIME", "TIMESTAMP"),
                        ("SHARD_ID", "VARCHAR(128)"),
                    ]),
                },
                StreamColumns {
                    name: "DESTINATION_SQL_STREAM".into(),
                    columns: cols(&[("T", "VARCHAR(4)")]),
                },
            ],
            ..Check::default()
        }
    );
    // Nothing was saved by checking.
    let d = svc
        .call(
            &ctx,
            "DescribeApplication",
            json(r#"{"ApplicationName": "a"}"#),
        )
        .await
        .unwrap();
    let d = riffle_wire::json::encode(&d);
    assert!(!String::from_utf8(d).unwrap().contains("ApplicationCode"));
}
