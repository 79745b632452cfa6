//! `GET /metrics` in the Prometheus text format: request counts by operation
//! and outcome, the log engine's counters, and stream gauges. Names follow
//! `riffle_<thing>_<unit>[_total]`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use riffle_log::disk::DiskStats;

/// Request counters, by (operation, `__type` or "ok").
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String), u64>>,
    /// The disk engine's counters, when it is in use.
    pub disk: Option<Arc<DiskStats>>,
}

impl Metrics {
    pub fn with_disk(disk: Option<Arc<DiskStats>>) -> Self {
        Metrics {
            requests: Mutex::default(),
            disk,
        }
    }

    /// Counts one request of `operation` that ended as `outcome`.
    pub fn request(&self, operation: &str, outcome: &str) {
        let mut g = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *g.entry((operation.to_owned(), outcome.to_owned()))
            .or_default() += 1;
    }

    /// The exposition text, with the services' gauges.
    pub fn render(
        &self,
        gauges: &[crate::platform::Gauge],
        limits: &crate::platform::Limits,
    ) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP riffle_requests_total Kinesis API requests by operation and outcome.\n",
        );
        out.push_str("# TYPE riffle_requests_total counter\n");
        for ((op, outcome), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "riffle_requests_total{{operation=\"{op}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        let gauge = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        for g in gauges {
            gauge(&mut out, g.name, g.help, g.value);
        }
        gauge(
            &mut out,
            "riffle_connections",
            "Open client connections.",
            limits.open_connections() as u64,
        );
        gauge(
            &mut out,
            "riffle_requests_in_flight",
            "Requests being handled.",
            limits.requests_in_flight() as u64,
        );
        if let Some(d) = &self.disk {
            for (name, help, v) in [
                (
                    "riffle_log_syncs_total",
                    "fdatasync calls made for commit cycles.",
                    &d.syncs,
                ),
                (
                    "riffle_log_corrupt_frames_total",
                    "Frames found failing their checksum.",
                    &d.corrupt_frames,
                ),
                (
                    "riffle_log_torn_bytes_truncated_total",
                    "Bytes of torn tails cut at recovery.",
                    &d.torn_bytes_truncated,
                ),
                (
                    "riffle_log_failed_writes_total",
                    "Commit cycles whose write failed.",
                    &d.failed_cycles,
                ),
                (
                    "riffle_log_repairs_total",
                    "Index files rebuilt and offsets checkpoints found damaged at recovery.",
                    &d.repairs,
                ),
            ] {
                let _ = writeln!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                    v.load(Ordering::Relaxed)
                );
            }
            // Per stream log (labelled by log id, which `riffle fsck` maps
            // to its stream): records lost to damaged frames that readers
            // skipped, and those frames' bytes.
            let skipped = d.skipped_by_log();
            for (i, (name, help)) in [
                (
                    "riffle_log_skipped_corrupt_records_total",
                    "Records of damaged frames readers skipped (lost), per stream log.",
                ),
                (
                    "riffle_log_skipped_corrupt_bytes_total",
                    "Bytes of damaged frames readers skipped, per stream log.",
                ),
            ]
            .into_iter()
            .enumerate()
            {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
                for (log, records, bytes) in &skipped {
                    let v = if i == 0 { records } else { bytes };
                    let _ = writeln!(out, "{name}{{log=\"{log:016x}\"}} {v}");
                }
            }
        }
        out
    }
}

/// Appends labelled families in the exposition format.
pub fn render_families(out: &mut String, families: &[crate::platform::Family]) {
    use crate::platform::MetricKind;
    for f in families {
        let kind = match f.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
        };
        let _ = writeln!(
            out,
            "# HELP {} {}\n# TYPE {} {kind}",
            f.name, f.help, f.name
        );
        for s in &f.samples {
            let labels: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                .collect();
            let _ = writeln!(out, "{}{{{}}} {}", f.name, labels.join(","), s.value);
        }
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod family_tests {
    use super::*;
    use crate::platform::{Family, MetricKind, Sample};

    #[test]
    fn families_render_with_escaped_labels() {
        let mut out = String::new();
        render_families(
            &mut out,
            &[Family {
                name: "riffle_x_total",
                help: "X.",
                kind: MetricKind::Counter,
                samples: vec![Sample {
                    labels: vec![("a", "b\"c\\".into()), ("d", "e".into())],
                    value: 3.0,
                }],
            }],
        );
        assert_eq!(
            out,
            "# HELP riffle_x_total X.\n# TYPE riffle_x_total counter\nriffle_x_total{a=\"b\\\"c\\\\\",d=\"e\"} 3\n"
        );
    }
}
