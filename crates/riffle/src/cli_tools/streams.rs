//! `riffle streams`: a table of the endpoint's streams in the signing
//! region: name, status, capacity mode, open shards, retention, and
//! records per second in and out over the last minute where the endpoint's
//! `/metrics` reports them (the series
//! `riffle_stream_incoming_records_per_second` and
//! `riffle_stream_outgoing_records_per_second`, labelled `region` and
//! `stream`); otherwise those columns are blank.

use std::io::Write;

use serde_json::{json, Value};

use super::{runtime, Kinesis, Style};
use crate::cli::StreamsArgs;

pub fn run(args: StreamsArgs) -> anyhow::Result<()> {
    let rows = runtime()?.block_on(rows(&args))?;
    let table = render(&rows, Style::detect());
    let mut out = std::io::stdout().lock();
    match out.write_all(table.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// One stream's line.
#[derive(Debug, PartialEq)]
struct Row {
    name: String,
    status: String,
    mode: String,
    open_shards: Option<i64>,
    retention_hours: Option<i64>,
    records_in: Option<f64>,
    records_out: Option<f64>,
}

async fn rows(args: &StreamsArgs) -> anyhow::Result<Vec<Row>> {
    let mut client = Kinesis::new(&args.endpoint.endpoint, &args.endpoint.region)?;
    let mut names: Vec<String> = Vec::new();
    let mut request = json!({});
    loop {
        let v = client.call("ListStreams", &request).await?;
        let page: Vec<String> = v["StreamNames"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect();
        let more = v["HasMoreStreams"].as_bool() == Some(true);
        let last = page.last().cloned();
        names.extend(page);
        match (more, last, v["NextToken"].as_str()) {
            (true, _, Some(token)) => request = json!({"NextToken": token}),
            (true, Some(last), None) => request = json!({"ExclusiveStartStreamName": last}),
            _ => break,
        }
    }
    // Rates only from an endpoint that reports them; any failure leaves
    // the columns blank.
    let metrics = match client.get("/metrics").await {
        Ok((200, text)) => text,
        _ => String::new(),
    };
    let region = &args.endpoint.region;
    let mut rows = Vec::with_capacity(names.len());
    for name in names {
        let v = match client
            .call("DescribeStreamSummary", &json!({"StreamName": name}))
            .await
        {
            Ok(v) => v,
            // Deleted between the listing and now.
            Err(e) if super::is_error(&e, "ResourceNotFoundException") => continue,
            Err(e) => return Err(e),
        };
        let s: &Value = &v["StreamDescriptionSummary"];
        rows.push(Row {
            status: s["StreamStatus"].as_str().unwrap_or("").to_owned(),
            mode: s["StreamModeDetails"]["StreamMode"]
                .as_str()
                .unwrap_or("PROVISIONED")
                .to_owned(),
            open_shards: s["OpenShardCount"].as_i64(),
            retention_hours: s["RetentionPeriodHours"].as_i64(),
            records_in: metric(
                &metrics,
                "riffle_stream_incoming_records_per_second",
                region,
                &name,
            ),
            records_out: metric(
                &metrics,
                "riffle_stream_outgoing_records_per_second",
                region,
                &name,
            ),
            name,
        });
    }
    Ok(rows)
}

/// The value of `name{region="…",stream="…"}` in a Prometheus text.
fn metric(text: &str, name: &str, region: &str, stream: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix('{')?;
        let (labels, value) = rest.rsplit_once("} ")?;
        let mut found = (false, false);
        for pair in split_labels(labels) {
            match pair {
                ("region", v) => found.0 = v == region,
                ("stream", v) => found.1 = v == stream,
                _ => {}
            }
        }
        if found == (true, true) {
            value.trim().parse().ok()
        } else {
            None
        }
    })
}

/// `a="x",b="y\"z"` as (name, unescaped value) pairs.
fn split_labels(labels: &str) -> Vec<(&str, String)> {
    let mut out = Vec::new();
    let mut rest = labels;
    while let Some((name, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, e)) => value.push(e),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((name.trim_start_matches(',').trim(), value));
        rest = &after[end..];
    }
    out
}

const HEADER: [&str; 7] = [
    "NAME",
    "STATUS",
    "MODE",
    "SHARDS",
    "RETENTION",
    "IN/S",
    "OUT/S",
];

/// A rate as the table shows it: one decimal below 100, whole numbers
/// above; blank when unknown.
fn rate(r: Option<f64>) -> String {
    match r {
        Some(r) if r < 100.0 => format!("{r:.1}"),
        Some(r) => format!("{r:.0}"),
        None => String::new(),
    }
}

/// The table: a header and a line per stream, columns two spaces apart,
/// numbers right-aligned, no trailing blanks.
fn render(rows: &[Row], style: Style) -> String {
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.status.clone(),
                r.mode.clone(),
                r.open_shards.map(|n| n.to_string()).unwrap_or_default(),
                r.retention_hours
                    .map(|h| format!("{h}h"))
                    .unwrap_or_default(),
                rate(r.records_in),
                rate(r.records_out),
            ]
        })
        .collect();
    let mut widths = HEADER.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let right = |i: usize| i >= 3;
    let line = |row: [&str; 7], paint: &dyn Fn(usize, &str) -> String| {
        let mut s = String::new();
        for (i, c) in row.iter().enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            let pad = " ".repeat(widths[i] - c.chars().count());
            if right(i) {
                s.push_str(&pad);
                s.push_str(&paint(i, c));
            } else {
                s.push_str(&paint(i, c));
                s.push_str(&pad);
            }
        }
        let mut s = s.trim_end().to_owned();
        s.push('\n');
        s
    };
    let mut out = line(HEADER, &|_, c| style.paint("1", c));
    for row in &cells {
        let row: [&str; 7] = std::array::from_fn(|i| row[i].as_str());
        out.push_str(&line(row, &|i, c| match (i, c) {
            (1, "ACTIVE") => style.paint("32", c),
            (1, _) => style.paint("33", c),
            _ => c.to_owned(),
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, status: &str, rates: (Option<f64>, Option<f64>)) -> Row {
        Row {
            name: name.into(),
            status: status.into(),
            mode: "PROVISIONED".into(),
            open_shards: Some(12),
            retention_hours: Some(24),
            records_in: rates.0,
            records_out: rates.1,
        }
    }

    #[test]
    fn plain_table() {
        let plain = Style {
            colour: false,
            progress: false,
        };
        let rows = [
            row("orders", "ACTIVE", (None, None)),
            row("clicks-eu", "UPDATING", (Some(1234.4), Some(2.7))),
        ];
        assert_eq!(
            render(&rows, plain),
            "NAME       STATUS    MODE         SHARDS  RETENTION  IN/S  OUT/S\n\
             orders     ACTIVE    PROVISIONED      12        24h\n\
             clicks-eu  UPDATING  PROVISIONED      12        24h  1234    2.7\n"
        );
        assert_eq!(
            render(&[], plain),
            "NAME  STATUS  MODE  SHARDS  RETENTION  IN/S  OUT/S\n"
        );
    }

    #[test]
    fn coloured_table_pads_outside_the_colour() {
        let colour = Style {
            colour: true,
            progress: false,
        };
        let out = render(&[row("s", "CREATING", (None, None))], colour);
        assert_eq!(
            out.lines().nth(1).unwrap(),
            "s     \x1b[33mCREATING\x1b[0m  PROVISIONED      12        24h"
        );
    }

    #[test]
    fn rates_from_prometheus_text() {
        let text = "# TYPE riffle_stream_incoming_records_per_second gauge\n\
            riffle_stream_incoming_records_per_second{region=\"us-east-1\",stream=\"a\"} 12.5\n\
            riffle_stream_incoming_records_per_second{region=\"eu-west-1\",stream=\"b\"} 3\n\
            riffle_stream_incoming_records_per_second{region=\"us-east-1\",stream=\"b\\\"q\"} 7\n";
        let m = |region, stream| {
            metric(
                text,
                "riffle_stream_incoming_records_per_second",
                region,
                stream,
            )
        };
        assert_eq!(m("us-east-1", "a"), Some(12.5));
        assert_eq!(m("us-east-1", "b"), None);
        assert_eq!(m("eu-west-1", "b"), Some(3.0));
        assert_eq!(m("us-east-1", "b\"q"), Some(7.0));
        assert_eq!(
            metric(
                text,
                "riffle_stream_outgoing_records_per_second",
                "us-east-1",
                "a"
            ),
            None
        );
    }
}
