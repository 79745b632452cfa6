//! Command-line flags; every flag also reads an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "riffle",
    version,
    about = "A self-hosted, AWS-compatible Amazon Kinesis"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the Kinesis APIs.
    Serve(Box<ServeArgs>),
    /// Load-test a Kinesis endpoint (Riffle or any other).
    Bench(BenchArgs),
    /// Check a running server: exit 0 when `/_riffle/health` answers `ok`,
    /// 1 otherwise (a container health check without curl).
    Health(HealthArgs),
    /// Check every stream log offline (stop the server first): damaged
    /// ranges, torn tails, index files. Exit 0 clean, 1 damage found, 2
    /// could not check.
    Fsck(FsckArgs),
    /// Repair what `riffle fsck` finds (stop the server first): rebuild
    /// index files and, with `--quarantine`, move damaged ranges out of the
    /// logs. Exit 0 clean afterwards, 1 damage left, 2 could not repair.
    Repair(RepairArgs),
    /// Run a reference pipeline end to end, with a throwaway server and
    /// PostgreSQL of its own.
    Demo(DemoArgs),
    /// Kinesis Video Streams from the command line.
    Video(VideoArgs),
    /// Put stdin's lines into a stream as records (batched PutRecords,
    /// failed records retried in order); print a summary.
    Put(PutArgs),
    /// Follow every shard of a stream, children after their parents, and
    /// print the records decoded.
    Tail(TailArgs),
    /// A table of the endpoint's streams: status, mode, open shards,
    /// retention and, from Riffle, records per second in and out.
    Streams(StreamsArgs),
}

/// The Kinesis endpoint `riffle put`, `tail` and `streams` talk to; requests
/// are signed with `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
/// `AWS_SESSION_TOKEN` (test credentials when unset).
#[derive(Args, Debug, Clone)]
pub struct EndpointArgs {
    /// The endpoint, `http://host:port`.
    #[arg(long, env = "RIFFLE_ENDPOINT", default_value = "http://127.0.0.1:4566")]
    pub endpoint: String,
    /// The region requests are signed for.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
}

#[derive(Args, Debug, Clone)]
pub struct PutArgs {
    /// The stream to put to.
    pub stream: String,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
    /// The partition key of every record (default: a random key per
    /// record, or per line without `--key-field`).
    #[arg(long)]
    pub partition_key: Option<String>,
    /// Read each line as a JSON object and use this field as its partition
    /// key (lines without it get `--partition-key` or a random key).
    #[arg(long)]
    pub key_field: Option<String>,
    /// Records per second at most (default: as fast as the stream takes
    /// them).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: Option<u64>,
}

#[derive(Args, Debug, Clone)]
pub struct TailArgs {
    /// The stream to follow.
    pub stream: String,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
    /// Where to start: the oldest record kept, only records put from now
    /// on, or the first record at or after `--timestamp`.
    #[arg(long, value_enum, default_value = "latest")]
    pub from: TailFrom,
    /// The start of `--from timestamp`: RFC 3339 (`2026-01-02T15:04:05Z`)
    /// or seconds since the Unix epoch.
    #[arg(long, required_if_eq("from", "timestamp"))]
    pub timestamp: Option<String>,
    /// How records are printed: `text` (the data as UTF-8, a line each),
    /// `json` (a JSON object per line with shard, sequence number,
    /// partition key, arrival time and data), `hex` (the data in hex, a
    /// line each) or `raw` (the data bytes alone, nothing between).
    #[arg(long, value_enum, default_value = "text")]
    pub format: TailFormat,
    /// Stop after this many records.
    #[arg(long)]
    pub limit: Option<u64>,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailFrom {
    TrimHorizon,
    Latest,
    Timestamp,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailFormat {
    Text,
    Json,
    Hex,
    Raw,
}

#[derive(Args, Debug, Clone)]
pub struct StreamsArgs {
    #[command(flatten)]
    pub endpoint: EndpointArgs,
}

#[derive(Args, Debug, Clone)]
pub struct VideoArgs {
    #[command(subcommand)]
    pub command: VideoCommand,
}

#[derive(Subcommand, Debug, Clone)]
pub enum VideoCommand {
    /// Upload a Matroska or WebM file to a stream through PutMedia, as the
    /// producer SDK does (chunked, RELATIVE timecodes from now); print each
    /// fragment once PERSISTED and exit 0 when all are. MP4 files must be
    /// remuxed first (`ffmpeg -i in.mp4 -c copy out.mkv`).
    Put(VideoPutArgs),
}

#[derive(Args, Debug, Clone)]
pub struct VideoPutArgs {
    /// The Matroska (.mkv) or WebM file.
    pub file: PathBuf,
    /// The stream to upload to.
    #[arg(long)]
    pub stream: String,
    /// The endpoint, `http://host:port`.
    #[arg(long, env = "RIFFLE_ENDPOINT", default_value = "http://127.0.0.1:4566")]
    pub endpoint: String,
    /// The region requests are signed for.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Send each frame at its time, as a live camera would (default: as
    /// fast as acknowledgements allow).
    #[arg(long)]
    pub realtime: bool,
    /// Create the stream (DataRetentionInHours 24) if it does not exist.
    #[arg(long)]
    pub create: bool,
}

#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    #[command(subcommand)]
    pub demo: DemoKind,
}

#[derive(Subcommand, Debug, Clone)]
pub enum DemoKind {
    /// A shop's clickstream through Firehose and a Kinesis Analytics SQL
    /// application into PostgreSQL (as Redshift): popular products,
    /// products viewed together, traffic anomalies. Needs PostgreSQL's
    /// initdb and pg_ctl (Debian: `apt-get install postgresql`).
    Clickstream(ClickstreamArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ClickstreamArgs {
    /// Seed of the clickstream: the same seed sends the same clicks.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Clicks per second (bursts are six times as fast).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub rate: u32,
    /// Stop sending after this many seconds, let the pipeline drain, print
    /// the final recommendations and exit (default: run until Ctrl-C).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub duration: Option<u64>,
    /// The port of the demo's Riffle server on 127.0.0.1 (default: a free
    /// one).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// Keep the temporary directory (the server's data, PostgreSQL's
    /// cluster, the server's log) for inspection.
    #[arg(long)]
    pub keep: bool,
}

#[derive(Args, Debug, Clone)]
pub struct FsckArgs {
    /// The data directory of a stopped server.
    #[arg(long, env = "RIFFLE_DATA_DIR", default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct RepairArgs {
    /// The data directory of a stopped server.
    #[arg(long, env = "RIFFLE_DATA_DIR", default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
    /// Copy each damaged range to `<data-dir>/quarantine/<log id>/` (with a
    /// JSON note of what it held) and replace it in the log with a hole
    /// frame readers skip; records after it keep their sequence numbers.
    #[arg(long)]
    pub quarantine: bool,
}

#[derive(Args, Debug, Clone)]
pub struct HealthArgs {
    /// The server's `--listen` address; a wildcard address (`0.0.0.0`,
    /// `::`) is checked on the loopback.
    #[arg(long, env = "RIFFLE_LISTEN", default_value = "127.0.0.1:4566")]
    pub listen: SocketAddr,
    /// Give up after this many milliseconds.
    #[arg(long, default_value_t = 3000)]
    pub timeout_ms: u64,
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// The endpoint to load, `http://host:port`.
    #[arg(
        long,
        env = "RIFFLE_BENCH_ENDPOINT",
        default_value = "http://127.0.0.1:4566"
    )]
    pub endpoint: String,
    /// Which phases to run.
    #[arg(long, value_enum, default_value = "all")]
    pub phase: BenchPhase,
    /// Body encoding.
    #[arg(long, value_enum, default_value = "json")]
    pub encoding: BenchEncoding,
    /// Concurrent writer connections.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Shards of the bench stream.
    #[arg(long, default_value_t = 4)]
    pub shards: u32,
    /// Records per PutRecords call.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Bytes of data per record (at least 16: an id and a timestamp).
    #[arg(long, default_value_t = 100)]
    pub record_size: usize,
    /// Records to write; 0 writes for `--duration-secs`.
    #[arg(long, default_value_t = 0)]
    pub records: u64,
    /// Length of the write phase when `--records` is 0.
    #[arg(long, default_value_t = 10.0)]
    pub duration_secs: f64,
    /// GetRecords Limit in the read phase.
    #[arg(long, default_value_t = 10_000)]
    pub read_limit: usize,
    /// Records per second in the end-to-end phase.
    #[arg(long, default_value_t = 1000)]
    pub e2e_rate: u64,
    /// Length of the end-to-end phase.
    #[arg(long, default_value_t = 10.0)]
    pub e2e_secs: f64,
    /// Stream name (default: a fresh one).
    #[arg(long)]
    pub stream: Option<String>,
    /// Keep the stream afterwards.
    #[arg(long)]
    pub keep: bool,
    /// Streams of the mixed phase.
    #[arg(long, default_value_t = 16)]
    pub streams: usize,
    /// Firehose phase: an existing bucket to deliver to (default: a fresh
    /// bucket created in the endpoint's S3).
    #[arg(long)]
    pub firehose_bucket: Option<String>,
    /// Firehose phase: the destination's BufferingHints.IntervalInSeconds.
    #[arg(long, default_value_t = 1)]
    pub firehose_interval_secs: u32,
    /// Firehose phase: the destination's BufferingHints.SizeInMBs.
    #[arg(long, default_value_t = 5)]
    pub firehose_size_mbs: u32,
    /// Firehose phase: the destination's CompressionFormat.
    #[arg(long, value_enum, default_value = "UNCOMPRESSED")]
    pub firehose_compression: FirehoseCompression,
    /// Firehose phase: how long to wait for delivery after the writes.
    #[arg(long, default_value_t = 120.0)]
    pub firehose_wait_secs: f64,
    /// Firehose phase: `raw` sends binary records delivered as they are;
    /// `parquet` sends JSON records converted to Parquet (SNAPPY) with the
    /// columns of a Glue table the bench creates in the endpoint's Glue
    /// Data Catalog.
    #[arg(long, value_enum, default_value = "raw")]
    pub firehose_format: FirehoseFormat,
    /// Analytics phase: distinct ticker symbols of the generated input.
    #[arg(long, default_value_t = 10_000)]
    pub analytics_keys: usize,
    /// Analytics phase: simulated input rate, rows per second of ROWTIME
    /// (with the keys, it sets how many rows a window holds per key).
    #[arg(long, default_value_t = 50_000)]
    pub analytics_rate: u64,
    /// Analytics phase: rows per engine step (each step advances the
    /// simulated clock by rows / rate).
    #[arg(long, default_value_t = 1000)]
    pub analytics_step_rows: usize,
    /// Video phase: concurrent PutMedia uploads, one stream each.
    #[arg(long, default_value_t = 200)]
    pub video_streams: usize,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirehoseFormat {
    Raw,
    Parquet,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
#[value(rename_all = "UPPER")]
pub enum FirehoseCompression {
    Uncompressed,
    Gzip,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchPhase {
    Write,
    Read,
    E2e,
    All,
    /// Many streams at once: writers, a reader per stream and control calls.
    Mixed,
    /// A Firehose delivery stream to S3: PutRecordBatch writers, then
    /// delivered throughput, data freshness and at-least-once checks.
    Firehose,
    /// The streaming SQL engine in process: a filter, a tumbling GROUP BY
    /// and a sliding window over generated ticker rows.
    Analytics,
    /// Kinesis Video: `--video-streams` live 2 Mbit/s H.264-shaped PutMedia
    /// uploads for `--duration-secs`; PERSISTED latency, then every
    /// persisted fragment checked with ListFragments.
    Video,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchEncoding {
    Json,
    Cbor,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on (HTTP/1.1 and cleartext HTTP/2).
    #[arg(long, env = "RIFFLE_LISTEN", default_value = "127.0.0.1:4566")]
    pub listen: SocketAddr,

    /// Also serve TLS (ALPN h2 and http/1.1) on this address.
    #[arg(long, env = "RIFFLE_TLS_LISTEN")]
    pub tls_listen: Option<SocketAddr>,

    /// PEM certificate chain for the TLS listener; without it a self-signed
    /// certificate is generated and written to `<data-dir>/tls/cert.pem`.
    #[arg(long, env = "RIFFLE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for `--tls-cert`.
    #[arg(long, env = "RIFFLE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Where Riffle keeps its data.
    #[arg(long, env = "RIFFLE_DATA_DIR", default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,

    /// The base domain of S3's virtual-host addressing: a request for
    /// `<bucket>.<domain>` names the bucket in its Host.
    #[arg(long, env = "RIFFLE_S3_DOMAIN", default_value = "s3.localhost")]
    pub s3_domain: String,

    /// Storage engine for stream records and metadata.
    #[arg(long, env = "RIFFLE_STORAGE", value_enum, default_value = "disk")]
    pub storage: Storage,

    /// When an acknowledged write is on disk: `fsync` before every
    /// acknowledgement, `interval` (a sync every `--sync-interval-ms`: a
    /// machine crash may lose that window), or `none` (tests only).
    #[arg(long, env = "RIFFLE_DURABILITY", value_enum, default_value = "fsync")]
    pub durability: DurabilityArg,

    /// The sync period of `--durability interval`.
    #[arg(long, env = "RIFFLE_SYNC_INTERVAL_MS", default_value_t = 100)]
    pub sync_interval_ms: u64,

    /// Segment files are sealed past this size.
    #[arg(long, env = "RIFFLE_SEGMENT_BYTES", default_value_t = 128 * 1024 * 1024)]
    pub segment_bytes: u64,

    /// Streams to create at start-up if missing: a file of `name:shards`
    /// lines (`name` alone makes an on-demand stream).
    #[arg(long, env = "RIFFLE_INIT_FILE")]
    pub init: Option<PathBuf>,

    /// Streams to create at start-up if missing, as `name:shards,name2:shards`.
    #[arg(long, env = "RIFFLE_STREAMS")]
    pub streams: Option<String>,

    /// Account id used in ARNs and messages.
    #[arg(long, env = "RIFFLE_ACCOUNT_ID", default_value = "000000000000")]
    pub account: String,

    /// Region for requests whose signature names none.
    #[arg(long, env = "RIFFLE_REGION", default_value = "us-east-1")]
    pub region: String,

    /// How long streams and consumers stay CREATING, UPDATING or DELETING.
    #[arg(long, env = "RIFFLE_STATUS_DELAY_MS", default_value_t = 500)]
    pub status_delay_ms: i64,

    /// Deliver Firehose S3 destinations as plain files under DIR:
    /// `DIR/<bucket>/<key>`, a bucket being a directory that exists (create
    /// it first), instead of to the embedded S3 endpoint.
    #[arg(long, env = "RIFFLE_FIREHOSE_LOCAL_OUTPUT", value_name = "DIR")]
    pub firehose_local_output: Option<std::path::PathBuf>,

    /// Deliver Firehose S3 destinations to buckets on this S3-compatible
    /// endpoint (an `http://` or `https://` URL: MinIO, Ceph, moto, ...)
    /// instead of the embedded S3 or `--firehose-local-output`.
    #[arg(long, env = "RIFFLE_S3_ENDPOINT", value_name = "URL")]
    pub s3_endpoint: Option<String>,

    /// A bucket on an S3-compatible endpoint, as `BUCKET=URL`: repeat the
    /// flag (or comma-separate in the environment variable). Wins over
    /// `--s3-endpoint` for that bucket; other buckets stay where they were.
    #[arg(
        long = "s3-bucket-endpoint",
        env = "RIFFLE_S3_BUCKET_ENDPOINTS",
        value_name = "BUCKET=URL",
        value_delimiter = ','
    )]
    pub s3_bucket_endpoints: Vec<String>,

    /// The access key id requests to external S3 endpoints are signed with.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    pub s3_access_key_id: Option<String>,

    /// The secret access key requests to external S3 endpoints are signed
    /// with.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,

    /// A session token sent to external S3 endpoints.
    #[arg(long, env = "AWS_SESSION_TOKEN", hide_env_values = true)]
    pub s3_session_token: Option<String>,

    /// The region requests to external S3 endpoints are signed for.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub s3_region: String,

    /// Path-style addressing on external S3 endpoints
    /// (`http://host/BUCKET/KEY`); `false` for virtual-hosted style
    /// (`http://BUCKET.host/KEY`).
    #[arg(long, env = "RIFFLE_S3_PATH_STYLE", default_value_t = true, action = clap::ArgAction::Set)]
    pub s3_path_style: bool,

    /// The AWS Lambda Invoke API (`http[s]://host:port`) that Firehose Lambda
    /// processors call: `POST URL/2015-03-31/functions/<LambdaArn>/invocations`.
    /// Without it, delivery streams with a Lambda processor keep records
    /// buffered.
    #[arg(long, env = "RIFFLE_LAMBDA_ENDPOINT", value_name = "URL")]
    pub lambda_endpoint: Option<String>,
    /// Deliver every Firehose Redshift destination to the PostgreSQL
    /// server at HOST:PORT, whatever host and port its ClusterJDBCURL
    /// names (the database, user and password still come from the
    /// destination), so configurations naming real clusters load into a
    /// local PostgreSQL.
    #[arg(long, env = "RIFFLE_REDSHIFT_ENDPOINT", value_name = "HOST:PORT")]
    pub redshift_endpoint: Option<riffle_firehose::redshift::HostPort>,

    /// Open shards allowed per region.
    #[arg(long, env = "RIFFLE_SHARD_LIMIT", default_value_t = riffle_core::limits::DEFAULT_SHARD_LIMIT)]
    pub shard_limit: u32,

    /// Client connections served at once; beyond it new connections wait
    /// in the listen backlog until one closes.
    #[arg(long, env = "RIFFLE_MAX_CONNECTIONS", default_value_t = riffle_server::platform::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Requests handled at once; beyond it requests are answered at once
    /// with the service's throttling error (ProvisionedThroughputExceeded
    /// or LimitExceeded for Data Streams), which SDKs retry.
    #[arg(long, env = "RIFFLE_MAX_REQUESTS", default_value_t = riffle_server::platform::DEFAULT_MAX_REQUESTS)]
    pub max_requests: usize,

    /// Record bytes accepted but not yet durable, across all streams (MiB);
    /// beyond it writes get ProvisionedThroughputExceededException.
    #[arg(long, env = "RIFFLE_MAX_PENDING_WRITE_MIB", default_value_t = 256)]
    pub max_pending_write_mib: u64,

    /// Enforce per-shard provisioned throughput (1 MiB/s and 1,000 records/s
    /// in; 2 MiB/s and 5 reads/s out).
    #[arg(long, env = "RIFFLE_THROTTLE")]
    pub throttle: bool,

    /// Access keys to verify signatures against: a file of
    /// `ACCESS_KEY_ID:SECRET` lines. Without it any well-formed request is
    /// accepted.
    #[arg(long, env = "RIFFLE_CREDENTIALS_FILE")]
    pub credentials: Option<PathBuf>,

    /// Access keys as `ID:SECRET,ID2:SECRET2`.
    #[arg(long, env = "RIFFLE_CREDENTIALS", hide_env_values = true)]
    pub credential_pairs: Option<String>,

    /// Let tests move the server clock with `POST /_riffle/clock`.
    #[arg(long, env = "RIFFLE_TEST_CLOCK")]
    pub test_clock: bool,

    /// LocalStack's `KINESIS_ERROR_PROBABILITY`: the fraction (0.0 to 1.0)
    /// of PutRecord and PutRecords requests answered with
    /// `ProvisionedThroughputExceededException`, nothing written.
    #[arg(long, env = "KINESIS_ERROR_PROBABILITY", default_value_t = 0.0, value_parser = parse_probability)]
    pub kinesis_error_probability: f64,

    /// LocalStack's `KINESIS_LATENCY`: milliseconds streams and consumers
    /// stay CREATING, UPDATING or DELETING (`0`: changes are immediate).
    /// When given, it replaces `--status-delay-ms`.
    #[arg(long, env = "KINESIS_LATENCY")]
    pub kinesis_latency: Option<u64>,

    /// Milliseconds to wait before answering every Data Streams request.
    #[arg(long, env = "RIFFLE_RESPONSE_DELAY_MS", default_value_t = 0)]
    pub response_delay_ms: u64,

    /// Seed of the random choices of `--kinesis-error-probability`, to replay
    /// a run (default: a random seed).
    #[arg(long, env = "RIFFLE_FAULT_SEED")]
    pub fault_seed: Option<u64>,

    /// The web console at `/` (`/_riffle/console/`): `read-write` lets it
    /// change state, `read-only` refuses its changes, `off` serves none.
    /// Default: `read-write` when every listener is on the loopback,
    /// `read-only` otherwise.
    #[arg(long, env = "RIFFLE_CONSOLE", value_enum)]
    pub console: Option<ConsoleArg>,

    /// Seconds to let in-flight requests finish at shutdown.
    #[arg(long, env = "RIFFLE_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// Records and metadata under `--data-dir`; survives restarts and crashes.
    Disk,
    /// Records in memory; nothing survives a restart.
    Memory,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleArg {
    ReadWrite,
    ReadOnly,
    Off,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurabilityArg {
    Fsync,
    Interval,
    None,
}

fn parse_probability(s: &str) -> Result<f64, String> {
    let p: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{p} is not between 0.0 and 1.0"))
    }
}

/// `$XDG_DATA_HOME/riffle`, else `~/.local/share/riffle`, else `./riffle-data`.
pub fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("riffle");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h).join(".local/share/riffle");
    }
    PathBuf::from("riffle-data")
}
