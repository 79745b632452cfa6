//! What the demo shows: the recommendations it reads back from the
//! warehouse tables, and its progress display.

use std::fmt::Write as _;
use std::io::Write as _;

use tokio_postgres::Client;

/// A product and its counts.
pub struct Top {
    pub product: String,
    pub views: i64,
    pub purchases: i64,
}

/// A one-second traffic window and its anomaly score.
pub struct Anomaly {
    pub window: String,
    pub events: i64,
    pub score: f64,
}

/// Row counts and the newest anomaly score.
#[derive(Default)]
pub struct Stats {
    pub popular: i64,
    pub pairs: i64,
    pub anomalies: i64,
    pub last_score: Option<f64>,
}

/// Everything in the tables: the sums the drain waits for.
pub struct Totals {
    pub views: i64,
    pub purchases: i64,
    pub events: i64,
    pub revenue: String,
}

pub async fn stats(db: &Client) -> anyhow::Result<Stats> {
    let row = db
        .query_one(
            "SELECT (SELECT count(*) FROM popular), (SELECT count(*) FROM pairs), \
             (SELECT count(*) FROM anomalies), \
             (SELECT anomaly_score FROM anomalies ORDER BY window_start DESC LIMIT 1)",
            &[],
        )
        .await?;
    Ok(Stats {
        popular: row.get(0),
        pairs: row.get(1),
        anomalies: row.get(2),
        last_score: row.get(3),
    })
}

pub async fn totals(db: &Client) -> anyhow::Result<Totals> {
    let row = db
        .query_one(
            "SELECT (SELECT coalesce(sum(views), 0)::bigint FROM popular), \
             (SELECT coalesce(sum(purchases), 0)::bigint FROM popular), \
             (SELECT coalesce(sum(events), 0)::bigint FROM anomalies), \
             (SELECT to_char(coalesce(sum(revenue), 0)::numeric, 'FM999999999990.00') FROM anomalies)",
            &[],
        )
        .await?;
    Ok(Totals {
        views: row.get(0),
        purchases: row.get(1),
        events: row.get(2),
        revenue: row.get(3),
    })
}

/// The most viewed products: over the windows of the last `recent_secs`
/// seconds before the newest window, or over all windows.
pub async fn top(db: &Client, recent_secs: Option<i32>, n: i64) -> anyhow::Result<Vec<Top>> {
    let filter = match recent_secs {
        Some(s) => format!(
            "WHERE window_start > (SELECT max(window_start) FROM popular) - interval '{s} seconds'"
        ),
        None => String::new(),
    };
    let rows = db
        .query(
            &format!(
                "SELECT product_id, sum(views)::bigint AS v, sum(purchases)::bigint AS p FROM popular {filter} \
                 GROUP BY product_id ORDER BY v DESC, p DESC, product_id LIMIT $1"
            ),
            &[&n],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Top {
            product: r.get(0),
            views: r.get(1),
            purchases: r.get(2),
        })
        .collect())
}

/// The products most often viewed in the same session as `product`.
pub async fn also_viewed(db: &Client, product: &str, n: i64) -> anyhow::Result<Vec<String>> {
    let rows = db
        .query(
            "SELECT product_b, sum(n)::bigint AS together FROM pairs \
             WHERE kind = 'view' AND product_a = $1 \
             GROUP BY product_b ORDER BY together DESC, product_b LIMIT $2",
            &[&product, &n],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

pub async fn anomalies(db: &Client, n: i64) -> anyhow::Result<Vec<Anomaly>> {
    let rows = db
        .query(
            "SELECT to_char(window_start, 'YYYY-MM-DD HH24:MI:SS'), events::bigint, anomaly_score \
             FROM anomalies WHERE anomaly_score > 0 \
             ORDER BY anomaly_score DESC, window_start LIMIT $1",
            &[&n],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Anomaly {
            window: r.get(0),
            events: r.get(1),
            score: r.get(2),
        })
        .collect())
}

/// The recommendations of the moment, as a block of text.
pub async fn recommendations(db: &Client, clock: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    let top = top(db, Some(30), 5).await?;
    let _ = writeln!(out, "── {clock} ── recommendations");
    if top.is_empty() {
        let _ = writeln!(out, "  top products now: (no window has closed yet)");
        return Ok(out);
    }
    let list: Vec<String> = top
        .iter()
        .map(|t| format!("{} ({} views)", t.product, t.views))
        .collect();
    let _ = writeln!(out, "  top products now (last 30 s): {}", list.join(", "));
    for t in top.iter().take(3) {
        let also = also_viewed(db, &t.product, 3).await?;
        if !also.is_empty() {
            let _ = writeln!(
                out,
                "  people who viewed {} also viewed {}",
                t.product,
                also.join(", ")
            );
        }
    }
    let scores = anomalies(db, 3).await?;
    if !scores.is_empty() {
        let list: Vec<String> = scores
            .iter()
            .map(|a| {
                format!(
                    "{} UTC {:.2} ({} events)",
                    &a.window[11..],
                    a.score,
                    a.events
                )
            })
            .collect();
        let _ = writeln!(out, "  highest anomaly scores: {}", list.join(", "));
    }
    Ok(out)
}

/// The final recommendations, over every window, one fact a line.
pub async fn final_recommendations(db: &Client) -> anyhow::Result<String> {
    let mut out = String::from("== final recommendations ==\n");
    let top = top(db, None, 5).await?;
    for t in &top {
        let _ = writeln!(
            out,
            "top: {} views={} purchases={}",
            t.product, t.views, t.purchases
        );
    }
    for t in &top {
        let also = also_viewed(db, &t.product, 3).await?;
        let list = if also.is_empty() {
            "(none)".to_owned()
        } else {
            also.join(",")
        };
        let _ = writeln!(out, "also-viewed: {} -> {list}", t.product);
    }
    for a in anomalies(db, 3).await? {
        let _ = writeln!(
            out,
            "anomaly: {} score={:.2} events={}",
            a.window, a.score, a.events
        );
    }
    let t = totals(db).await?;
    let _ = writeln!(
        out,
        "totals: events={} views={} purchases={} revenue={}",
        t.events, t.views, t.purchases, t.revenue
    );
    Ok(out)
}

/// The progress display: a few lines redrawn in place on a terminal,
/// plain lines now and then otherwise.
pub struct Display {
    tty: bool,
    drawn: usize,
}

impl Display {
    pub fn new() -> Display {
        Display {
            tty: std::io::IsTerminal::is_terminal(&std::io::stdout()),
            drawn: 0,
        }
    }

    pub fn is_tty(&self) -> bool {
        self.tty
    }

    fn clear(&mut self, out: &mut String) {
        if self.tty && self.drawn > 0 {
            let _ = write!(out, "\x1b[{}A\x1b[J", self.drawn);
            self.drawn = 0;
        }
    }

    /// Prints text above the status lines.
    pub fn print(&mut self, text: &str) {
        let mut out = String::new();
        self.clear(&mut out);
        out.push_str(text);
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(out.as_bytes());
        let _ = stdout.flush();
    }

    /// Replaces the status lines (on a terminal) or prints them.
    pub fn status(&mut self, lines: &[String]) {
        let mut out = String::new();
        self.clear(&mut out);
        for l in lines {
            out.push_str(l);
            out.push('\n');
        }
        if self.tty {
            self.drawn = lines.len();
        }
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(out.as_bytes());
        let _ = stdout.flush();
    }

    /// Leaves the status lines as they are: what follows goes below.
    pub fn keep(&mut self) {
        self.drawn = 0;
    }
}
