//! `riffle demo clickstream`: the reference pipeline, end to end, in one
//! command.
//!
//! 1. A throwaway PostgreSQL (initdb on a temporary directory) stands in
//!    for the Redshift cluster: a database `clickstream` with the
//!    warehouse tables `popular`, `pairs` and `anomalies`.
//! 2. `riffle serve` runs as a child process on a free loopback port with
//!    a temporary data directory, loading Redshift destinations into that
//!    PostgreSQL (`--redshift-endpoint`).
//! 3. Through the AWS APIs: a Firehose delivery stream `clicks` (DirectPut,
//!    raw clicks kept in S3), one delivery stream per warehouse table
//!    (Redshift destinations, CSV, staged in S3), and the Kinesis Analytics
//!    application `clickstream` reading `clicks` and writing its three
//!    in-application streams to them.
//! 4. A seeded clickstream ([`gen`]) is sent to `clicks` with
//!    PutRecordBatch, a session's clicks in one call.
//! 5. A progress line (a few lines on a terminal) every second, and every
//!    ten seconds the recommendations read back from PostgreSQL.
//! 6. At the end of `--duration`, or on SIGINT/SIGTERM: generation stops,
//!    the pipeline drains (every click counted in the tables), the final
//!    recommendations are printed, and the application, the server and
//!    PostgreSQL are stopped and the temporary directory removed.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::cli::{ClickstreamArgs, DemoArgs, DemoKind};

pub(crate) mod api;
mod gen;
mod pg;
mod show;

use api::{Client, ANALYTICS, FIREHOSE};

/// `println!` that does not panic when stdout is gone (a closed pipe):
/// the demo still has to stop what it started.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `eprintln!` that does not panic when stderr is gone.
macro_rules! warn {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

const ACCOUNT: &str = "000000000000";
const REGION: &str = "us-east-1";
const ROLE: &str = "arn:aws:iam::000000000000:role/riffle-demo";
const APP: &str = "clickstream";
const RAW_BUCKET: &str = "clickstream-raw";
const STAGING_BUCKET: &str = "clickstream-staging";
/// Records per PutRecordBatch call, at most.
const BATCH: usize = 500;

/// The application: popularity per product in ten-second windows, traffic
/// per second scored by a random cut forest, and pairs of products viewed
/// (or bought) in the same session, a stream-to-stream join over the last
/// minute.
const SQL: &str = r#"CREATE OR REPLACE STREAM "POPULAR" (window_start TIMESTAMP, product_id VARCHAR(16), views INTEGER, purchases INTEGER);
CREATE OR REPLACE PUMP "POPULAR_PUMP" AS INSERT INTO "POPULAR"
  SELECT STREAM STEP(s.ROWTIME BY INTERVAL '10' SECOND), product_id,
    SUM(CASE WHEN event = 'view' THEN 1 ELSE 0 END), SUM(CASE WHEN event = 'purchase' THEN 1 ELSE 0 END)
  FROM "SOURCE_SQL_STREAM_001" AS s
  GROUP BY product_id, STEP(s.ROWTIME BY INTERVAL '10' SECOND);
CREATE OR REPLACE STREAM "TRAFFIC" (window_start TIMESTAMP, events INTEGER, purchases INTEGER, revenue DOUBLE);
CREATE OR REPLACE PUMP "TRAFFIC_PUMP" AS INSERT INTO "TRAFFIC"
  SELECT STREAM STEP(s.ROWTIME BY INTERVAL '1' SECOND), COUNT(*),
    SUM(CASE WHEN event = 'purchase' THEN 1 ELSE 0 END), SUM(CASE WHEN event = 'purchase' THEN price ELSE 0 END)
  FROM "SOURCE_SQL_STREAM_001" AS s GROUP BY STEP(s.ROWTIME BY INTERVAL '1' SECOND);
CREATE OR REPLACE STREAM "ANOMALIES" (window_start TIMESTAMP, events INTEGER, purchases INTEGER, revenue DOUBLE, anomaly_score DOUBLE);
CREATE OR REPLACE PUMP "ANOMALY_PUMP" AS INSERT INTO "ANOMALIES"
  SELECT STREAM * FROM TABLE(RANDOM_CUT_FOREST(CURSOR(SELECT STREAM * FROM "TRAFFIC"), 50, 64, 1000, 1));
CREATE OR REPLACE STREAM "PAIRS" (window_start TIMESTAMP, kind VARCHAR(8), product_a VARCHAR(16), product_b VARCHAR(16), n INTEGER);
CREATE OR REPLACE PUMP "PAIRS_PUMP" AS INSERT INTO "PAIRS"
  SELECT STREAM STEP(a.ROWTIME BY INTERVAL '10' SECOND), a.event, a.product_id, b.product_id, COUNT(*)
  FROM "SOURCE_SQL_STREAM_001" OVER (RANGE INTERVAL '1' MINUTE PRECEDING) AS a
  JOIN "SOURCE_SQL_STREAM_001" OVER (RANGE INTERVAL '1' MINUTE PRECEDING) AS b
    ON a.session_id = b.session_id AND a.event = b.event AND a.product_id <> b.product_id
  GROUP BY a.event, a.product_id, b.product_id, STEP(a.ROWTIME BY INTERVAL '10' SECOND);
"#;

/// The warehouse tables: one per output, columns as the output rows.
const TABLES: [(&str, &str, &str); 3] = [
    (
        "popular",
        "POPULAR",
        "window_start timestamp, product_id varchar(16), views integer, purchases integer",
    ),
    (
        "pairs",
        "PAIRS",
        "window_start timestamp, kind varchar(8), product_a varchar(16), product_b varchar(16), n integer",
    ),
    (
        "anomalies",
        "ANOMALIES",
        "window_start timestamp, events integer, purchases integer, revenue double precision, anomaly_score double precision",
    ),
];

/// Runs a demo.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    match args.demo {
        DemoKind::Clickstream(a) => clickstream(a),
    }
}

fn clickstream(args: ClickstreamArgs) -> anyhow::Result<()> {
    let Some(pg_bin) = pg::find_bin_dir() else {
        warn!("{}", pg::INSTALL_HINT);
        std::process::exit(2);
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let code = runtime.block_on(async move {
        let (stop_tx, stop) = watch::channel(0u32);
        tokio::spawn(signals(stop_tx));
        let mut res = Resources::new(args.keep)?;
        let outcome = demo(&args, pg_bin, &mut res, stop).await;
        let code = match outcome {
            Ok(code) => code,
            Err(e) => {
                warn!("\nriffle demo: {e:#}");
                if let Some(log) = res.riffle_log() {
                    if !log.trim().is_empty() && !format!("{e:#}").contains("riffle serve exited") {
                        warn!(
                            "\nlast lines of the riffle server's log:\n{}",
                            pg::tail_lines(&log, 15)
                        );
                    }
                }
                1
            }
        };
        res.shutdown().await;
        anyhow::Ok(code)
    })?;
    drop(runtime);
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

/// Counts SIGINT, SIGTERM and SIGHUP: the first stops the demo, a second
/// one cuts the drain short.
async fn signals(tx: watch::Sender<u32>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return;
    };
    loop {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
        tx.send_modify(|n| *n += 1);
    }
}

/// What the demo started and made, stopped and removed in order however
/// it ends.
struct Resources {
    dir: PathBuf,
    keep: bool,
    riffle: Option<std::process::Child>,
    pg: Option<pg::Server>,
}

impl Resources {
    fn new(keep: bool) -> anyhow::Result<Resources> {
        let base = std::env::temp_dir();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = base.join(format!("riffle-demo-{}-{nanos:08x}", std::process::id()));
        std::fs::create_dir(&dir)
            .with_context(|| format!("creating a temporary directory in {}", base.display()))?;
        // PostgreSQL may run as another user: it must reach its directory.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        Ok(Resources {
            dir,
            keep,
            riffle: None,
            pg: None,
        })
    }

    fn riffle_log_path(&self) -> PathBuf {
        self.dir.join("riffle.log")
    }

    fn riffle_log(&self) -> Option<String> {
        self.riffle.as_ref()?;
        std::fs::read_to_string(self.riffle_log_path()).ok()
    }

    /// Stops the server (SIGTERM, then SIGKILL after 20 s) and PostgreSQL,
    /// and removes the directory unless it is kept.
    async fn shutdown(&mut self) {
        if let Some(mut child) = self.riffle.take() {
            if let Ok(None) = child.try_wait() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .stderr(std::process::Stdio::null())
                    .status();
                let deadline = Instant::now() + Duration::from_secs(20);
                while let Ok(None) = child.try_wait() {
                    if Instant::now() > deadline {
                        warn!("riffle did not stop within 20 s; killing it");
                        let _ = child.kill();
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let _ = child.wait();
            }
        }
        if let Some(mut pg) = self.pg.take() {
            let _ = tokio::task::spawn_blocking(move || pg.stop()).await;
        }
        if self.keep {
            say!("kept {}", self.dir.display());
        } else if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                warn!("removing {}: {e}", self.dir.display());
            }
        }
    }
}

impl Drop for Resources {
    fn drop(&mut self) {
        // Only after an early exit (a panic): `shutdown` has done this.
        if let Some(mut child) = self.riffle.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.pg.take();
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

fn stopped(stop: &watch::Receiver<u32>) -> bool {
    *stop.borrow() > 0
}

/// Waits for `fut` unless a signal comes first (then None).
async fn unless_stopped<T>(
    stop: &mut watch::Receiver<u32>,
    fut: impl std::future::Future<Output = T>,
) -> Option<T> {
    if stopped(stop) {
        return None;
    }
    tokio::select! {
        v = fut => Some(v),
        _ = stop.wait_for(|n| *n > 0) => None,
    }
}

/// The demo; returns the exit code.
async fn demo(
    args: &ClickstreamArgs,
    pg_bin: PathBuf,
    res: &mut Resources,
    mut stop: watch::Receiver<u32>,
) -> anyhow::Result<i32> {
    let started = Instant::now();
    let how_long = match args.duration {
        Some(d) => format!("for {d} s"),
        None => "until Ctrl-C".to_owned(),
    };
    say!(
        "riffle demo clickstream: seed {}, {} events/s, {how_long}",
        args.seed,
        args.rate
    );
    say!("working directory {}", res.dir.display());

    // PostgreSQL.
    let pg_dir = res.dir.join("postgres");
    std::fs::create_dir(&pg_dir)?;
    let euid = std::fs::metadata(&res.dir)?.uid();
    let pg_port = free_port()?;
    let version = pg_bin
        .parent()
        .and_then(Path::file_name)
        .map(|v| v.to_string_lossy().into_owned())
        .unwrap_or_default();
    let server = tokio::task::spawn_blocking(move || {
        let mut server = pg::Server::init(pg_bin, pg_dir, pg_port, euid)
            .context("creating the PostgreSQL cluster")?;
        server.start().context("starting PostgreSQL")?;
        anyhow::Ok(server)
    })
    .await??;
    res.pg = Some(server);
    say!("PostgreSQL {version} on 127.0.0.1:{pg_port} (stands in for Redshift)");
    if stopped(&stop) {
        return Ok(interrupted());
    }
    let db = warehouse(pg_port).await?;

    // Riffle.
    let port = match args.port {
        Some(p) => p,
        None => free_port()?,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    res.riffle = Some(spawn_riffle(&res.dir, addr, pg_port)?);
    let mut client = Client::new(addr);
    match unless_stopped(&mut stop, wait_healthy(res, &mut client)).await {
        None => return Ok(interrupted()),
        Some(r) => r?,
    }
    say!("riffle serving on http://{addr}");

    // The pipeline, through the AWS APIs.
    match unless_stopped(&mut stop, create_pipeline(&mut client, pg_port)).await {
        None => return Ok(interrupted()),
        Some(r) => r?,
    }
    let log = res.riffle_log_path();
    match unless_stopped(&mut stop, start_application(&mut client, &log)).await {
        None => return Ok(interrupted()),
        Some(r) => r?,
    }
    say!(
        "application {APP} RUNNING (set up in {:.1} s); sending clicks to delivery stream clicks\n",
        started.elapsed().as_secs_f64()
    );

    // Clicks, progress and recommendations.
    let counters = Arc::new(Counters::default());
    let generator = gen::Generator::new(args.seed, f64::from(args.rate));
    let mut producer = tokio::spawn(produce(
        generator,
        Client::new(addr),
        counters.clone(),
        args.duration.map(|d| d as f64),
        stop.clone(),
    ));
    let mut display = show::Display::new();
    let run_start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let produced = loop {
        tokio::select! {
            r = &mut producer => break r,
            _ = tick.tick() => {}
        }
        let seconds = run_start.elapsed().as_secs();
        let stats = show::stats(&db).await.unwrap_or_default();
        if seconds > 0 && seconds.is_multiple_of(10) {
            let clock = clock_text();
            match show::recommendations(&db, &clock).await {
                Ok(text) => display.print(&text),
                Err(e) => display.print(&format!("(recommendations unavailable: {e})\n")),
            }
        }
        if display.is_tty() || seconds.is_multiple_of(5) {
            display.status(&status_lines(seconds, &counters, &stats));
        }
    };
    let produced = produced.map_err(|e| anyhow!("the click generator failed: {e}"))?;
    display.status(&status_lines(
        run_start.elapsed().as_secs(),
        &counters,
        &show::stats(&db).await.unwrap_or_default(),
    ));
    display.keep();
    if let Err(e) = produced {
        return Err(e.context("sending clicks"));
    }

    // Drain: every acknowledged click counted in the tables.
    let signalled = stopped(&stop);
    let acked = counters.acked.load(Ordering::SeqCst);
    let limit = if signalled { 30 } else { 90 };
    say!(
        "\n{} after {:.1} s: {acked} clicks acknowledged; waiting for the last windows to close and load (up to {limit} s{})",
        if signalled { "stopping" } else { "done sending" },
        run_start.elapsed().as_secs_f64(),
        if signalled { ", Ctrl-C again to skip" } else { "" },
    );
    let drained = drain(
        &db,
        &mut client,
        acked,
        Duration::from_secs(limit),
        &mut stop,
    )
    .await?;
    say!("");
    say!("{}", show::final_recommendations(&db).await?.trim_end());
    let mut code = 0;
    if !drained {
        say!("(the pipeline had not drained: the tables above miss some clicks)");
        if !signalled {
            code = 1;
        }
    }
    let _ = client
        .call(
            ANALYTICS,
            "StopApplication",
            &json!({"ApplicationName": APP}),
        )
        .await;
    Ok(code)
}

fn interrupted() -> i32 {
    warn!("interrupted during set-up");
    130
}

fn clock_text() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    gen::iso_time(now)[11..19].to_owned() + " UTC"
}

#[derive(Default)]
struct Counters {
    generated: AtomicU64,
    acked: AtomicU64,
    sessions: AtomicU64,
    purchases: AtomicU64,
}

fn status_lines(seconds: u64, c: &Counters, s: &show::Stats) -> Vec<String> {
    let score = match s.last_score {
        None => "none yet".to_owned(),
        Some(x) if x == 0.0 && s.anomalies < 64 => {
            format!("0 (the forest is learning: {}/64 windows)", s.anomalies)
        }
        Some(x) => format!("{x:.2}"),
    };
    vec![
        format!(
            "[{}:{:02}] clicks generated {} · acknowledged {} · sessions {} · purchases {}",
            seconds / 60,
            seconds % 60,
            c.generated.load(Ordering::Relaxed),
            c.acked.load(Ordering::Relaxed),
            c.sessions.load(Ordering::Relaxed),
            c.purchases.load(Ordering::Relaxed),
        ),
        format!(
            "        rows in PostgreSQL: popular {} · pairs {} · anomalies {} · last anomaly score {score}",
            s.popular, s.pairs, s.anomalies
        ),
    ]
}

/// Creates the database and the warehouse tables; returns a connection to
/// it.
async fn warehouse(port: u16) -> anyhow::Result<tokio_postgres::Client> {
    let admin = connect(port, "postgres").await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {}", pg::DATABASE))
        .await
        .context("creating the database")?;
    drop(admin);
    let db = connect(port, pg::DATABASE).await?;
    for (table, _, columns) in TABLES {
        db.batch_execute(&format!("CREATE TABLE {table} ({columns})"))
            .await
            .with_context(|| format!("creating table {table}"))?;
    }
    Ok(db)
}

async fn connect(port: u16, database: &str) -> anyhow::Result<tokio_postgres::Client> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host("127.0.0.1")
        .port(port)
        .user(pg::USER)
        .password(pg::PASSWORD)
        .dbname(database)
        .application_name("riffle-demo")
        .connect_timeout(Duration::from_secs(10));
    let (client, conn) = cfg
        .connect(tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to PostgreSQL on 127.0.0.1:{port}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// `riffle serve` from this same executable, its output in `riffle.log`.
fn spawn_riffle(dir: &Path, addr: SocketAddr, pg_port: u16) -> anyhow::Result<std::process::Child> {
    let exe = std::env::current_exe().context("finding the riffle executable")?;
    let log = std::fs::File::create(dir.join("riffle.log"))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("serve")
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--data-dir")
        .arg(dir.join("riffle"))
        .args(["--status-delay-ms", "0", "--durability", "interval"])
        .arg("--redshift-endpoint")
        .arg(format!("127.0.0.1:{pg_port}"))
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // A Ctrl-C at the terminal is the demo's to handle: it stops the
        // server itself, after the final recommendations.
        .process_group(0);
    // Settings from the environment meant for another server (credentials,
    // storage, fault injection) would change what the demo runs.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if (k.starts_with("RIFFLE_") && k != "RIFFLE_LOG") || k.starts_with("KINESIS_") {
            cmd.env_remove(k.as_ref());
        }
    }
    cmd.spawn().context("starting riffle serve")
}

/// Waits for `/_riffle/health`; fails if the server exits first.
async fn wait_healthy(res: &mut Resources, client: &mut Client) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(child) = res.riffle.as_mut() {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(res.riffle_log_path()).unwrap_or_default();
                bail!(
                    "riffle serve exited at start-up ({status}): {}",
                    startup_error(&log)
                );
            }
        }
        // Something else may hold the port and never answer.
        let probe = tokio::time::timeout(Duration::from_secs(1), client.get("/_riffle/health"));
        if let Ok(Ok((200, body))) = probe.await {
            if body.trim() == "ok" {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("riffle serve did not become healthy within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What a server that failed to start said: its `Error:` and causes,
/// without the backtrace; else its last lines.
fn startup_error(log: &str) -> String {
    match log.find("Error: ") {
        Some(at) => {
            let text = &log[at + "Error: ".len()..];
            let text = text.split("\nStack backtrace:").next().unwrap_or(text);
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        }
        None => pg::tail_lines(log, 10),
    }
}

fn firehose_arn(name: &str) -> String {
    format!("arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{name}")
}

/// The buckets, the delivery streams and the application.
async fn create_pipeline(client: &mut Client, pg_port: u16) -> anyhow::Result<()> {
    client.create_bucket(RAW_BUCKET).await?;
    client.create_bucket(STAGING_BUCKET).await?;
    client
        .call(
            FIREHOSE,
            "CreateDeliveryStream",
            &json!({
                "DeliveryStreamName": "clicks",
                "DeliveryStreamType": "DirectPut",
                "ExtendedS3DestinationConfiguration": {
                    "RoleARN": ROLE,
                    "BucketARN": format!("arn:aws:s3:::{RAW_BUCKET}"),
                    "Prefix": "clicks/",
                    // The application reads the buffer alongside delivery:
                    // a long interval keeps records there until it has.
                    "BufferingHints": {"IntervalInSeconds": 60, "SizeInMBs": 64},
                },
            }),
        )
        .await?;
    for (table, _, columns) in TABLES {
        let names: Vec<&str> = columns
            .split(", ")
            .filter_map(|c| c.split(' ').next())
            .collect();
        client
            .call(
                FIREHOSE,
                "CreateDeliveryStream",
                &json!({
                    "DeliveryStreamName": table,
                    "DeliveryStreamType": "DirectPut",
                    "RedshiftDestinationConfiguration": {
                        "RoleARN": ROLE,
                        "ClusterJDBCURL": format!("jdbc:redshift://127.0.0.1:{pg_port}/{}", pg::DATABASE),
                        "CopyCommand": {
                            "DataTableName": table,
                            "DataTableColumns": names.join(","),
                            "CopyOptions": "CSV",
                        },
                        "Username": pg::USER,
                        "Password": pg::PASSWORD,
                        "RetryOptions": {"DurationInSeconds": 300},
                        "S3Configuration": {
                            "RoleARN": ROLE,
                            "BucketARN": format!("arn:aws:s3:::{STAGING_BUCKET}"),
                            "Prefix": format!("{table}/"),
                            "BufferingHints": {"IntervalInSeconds": 1, "SizeInMBs": 1},
                        },
                    },
                }),
            )
            .await?;
    }
    for name in std::iter::once("clicks").chain(TABLES.iter().map(|t| t.0)) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let d = client
                .call(
                    FIREHOSE,
                    "DescribeDeliveryStream",
                    &json!({"DeliveryStreamName": name}),
                )
                .await?;
            let status = d["DeliveryStreamDescription"]["DeliveryStreamStatus"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            if status == "ACTIVE" {
                break;
            }
            if Instant::now() > deadline {
                bail!("delivery stream {name} is still {status} after 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let column = |name: &str, sql: &str| json!({"Name": name.to_uppercase(), "Mapping": format!("$.{name}"), "SqlType": sql});
    let outputs: Vec<Value> = TABLES
        .iter()
        .map(|(table, stream, _)| {
            json!({
                "Name": stream,
                "KinesisFirehoseOutput": {"ResourceARN": firehose_arn(table), "RoleARN": ROLE},
                "DestinationSchema": {"RecordFormatType": "CSV"},
            })
        })
        .collect();
    client
        .call(
            ANALYTICS,
            "CreateApplication",
            &json!({
                "ApplicationName": APP,
                "ApplicationDescription": "Popular products, co-viewed products and traffic anomalies of a clickstream",
                "ApplicationCode": SQL,
                "Inputs": [{
                    "NamePrefix": "SOURCE_SQL_STREAM",
                    "KinesisFirehoseInput": {"ResourceARN": firehose_arn("clicks"), "RoleARN": ROLE},
                    "InputSchema": {
                        "RecordFormat": {
                            "RecordFormatType": "JSON",
                            "MappingParameters": {"JSONMappingParameters": {"RecordRowPath": "$"}},
                        },
                        "RecordEncoding": "UTF-8",
                        "RecordColumns": [
                            column("event_time", "TIMESTAMP"),
                            column("user_id", "VARCHAR(16)"),
                            column("session_id", "VARCHAR(16)"),
                            column("event", "VARCHAR(8)"),
                            column("product_id", "VARCHAR(16)"),
                            column("category", "VARCHAR(16)"),
                            column("price", "DOUBLE"),
                        ],
                    },
                }],
                "Outputs": outputs,
            }),
        )
        .await?;
    Ok(())
}

/// Starts the application at NOW and waits until its task reads the
/// input: RUNNING, then the server's word that it runs (code that does
/// not plan is reported there, and the application stays RUNNING).
async fn start_application(client: &mut Client, log: &Path) -> anyhow::Result<()> {
    let d = client
        .call(
            ANALYTICS,
            "DescribeApplication",
            &json!({"ApplicationName": APP}),
        )
        .await?;
    let input_id = d["ApplicationDetail"]["InputDescriptions"][0]["InputId"]
        .as_str()
        .ok_or_else(|| anyhow!("DescribeApplication named no input"))?
        .to_owned();
    client
        .call(
            ANALYTICS,
            "StartApplication",
            &json!({
                "ApplicationName": APP,
                "InputConfigurations": [{
                    "Id": input_id,
                    "InputStartingPositionConfiguration": {"InputStartingPosition": "NOW"},
                }],
            }),
        )
        .await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut running = false;
    loop {
        if !running {
            let d = client
                .call(
                    ANALYTICS,
                    "DescribeApplication",
                    &json!({"ApplicationName": APP}),
                )
                .await?;
            running = d["ApplicationDetail"]["ApplicationStatus"] == "RUNNING";
        }
        if running {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let ours = format!("application={APP}");
            for line in text.lines().filter(|l| l.contains(&ours)) {
                if line.contains("application running") {
                    return Ok(());
                }
                if line.contains("application cannot run") {
                    let why = line.split_once("error=").map_or(line, |(_, e)| e).trim();
                    bail!("application {APP} cannot run: {why}");
                }
            }
        }
        if Instant::now() > deadline {
            bail!("application {APP} did not start reading its input within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends the generator's sessions to `clicks` on its virtual clock until
/// `limit` seconds of it (or a signal); a session's clicks go in one call.
async fn produce(
    mut g: gen::Generator,
    mut client: Client,
    counters: Arc<Counters>,
    limit: Option<f64>,
    mut stop: watch::Receiver<u32>,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut next = g.session();
    loop {
        if stopped(&stop) || limit.is_some_and(|l| next.due >= l) {
            return Ok(());
        }
        let now = start.elapsed().as_secs_f64();
        if next.due > now {
            let wait = Duration::from_secs_f64((next.due - now).min(0.1));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut batch: Vec<Vec<u8>> = Vec::new();
        while next.due <= now
            && batch.len() + next.clicks.len() <= BATCH
            && !limit.is_some_and(|l| next.due >= l)
        {
            for c in &next.clicks {
                batch.push(g.record(c, wall));
                if c.purchase {
                    counters.purchases.fetch_add(1, Ordering::Relaxed);
                }
            }
            counters.sessions.fetch_add(1, Ordering::Relaxed);
            next = g.session();
        }
        counters
            .generated
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        let mut backoff = Duration::from_millis(100);
        let mut errors = 0;
        while !batch.is_empty() {
            match client.put_record_batch("clicks", &batch).await {
                Ok(failed) => {
                    let ok = batch.len() - failed.len();
                    counters.acked.fetch_add(ok as u64, Ordering::SeqCst);
                    batch = failed
                        .into_iter()
                        .map(|i| std::mem::take(&mut batch[i]))
                        .collect();
                }
                Err(e) => {
                    errors += 1;
                    if errors >= 10 {
                        return Err(e);
                    }
                }
            }
            if !batch.is_empty() {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Waits until the tables count every acknowledged click (`popular` its
/// views and purchases, `anomalies` its events) and each output delivery
/// stream has loaded all it took in; false if `limit` passes or a
/// second signal comes first.
async fn drain(
    db: &tokio_postgres::Client,
    client: &mut Client,
    acked: u64,
    limit: Duration,
    stop: &mut watch::Receiver<u32>,
) -> anyhow::Result<bool> {
    let deadline = Instant::now() + limit;
    let signals = *stop.borrow();
    let mut settled = 0;
    loop {
        let t = show::totals(db).await?;
        let counted = t.views + t.purchases == acked as i64 && t.events == acked as i64;
        let loaded = if counted {
            let (_, text) = client.get("/metrics").await?;
            TABLES.iter().all(|(table, _, _)| {
                let incoming =
                    api::delivery_metric(&text, "riffle_firehose_incoming_records_total", table);
                let loaded = api::delivery_metric(
                    &text,
                    "riffle_firehose_delivery_to_redshift_records_total",
                    table,
                );
                incoming.unwrap_or(0.0) == loaded.unwrap_or(0.0)
            })
        } else {
            false
        };
        settled = if loaded { settled + 1 } else { 0 };
        // Twice in a row, a second apart: nothing was on its way.
        if settled >= 2 {
            return Ok(true);
        }
        if Instant::now() > deadline {
            return Ok(false);
        }
        let wait = if loaded { 1000 } else { 250 };
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            _ = stop.wait_for(|n| *n > signals) => return Ok(false),
        }
    }
}
