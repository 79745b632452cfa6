//! `riffle serve`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use riffle_core::clock::SystemClock;
use riffle_core::Clock;
use riffle_log::disk::{DiskConfig, DiskEngine, Durability};
use riffle_log::memory::MemoryEngine;
use riffle_log::LogEngine;
use riffle_server::{App, Listener};
use riffle_streams::{Config, Service};

use crate::cli::{ConsoleArg, DurabilityArg, ServeArgs, Storage};
use crate::init;

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RIFFLE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(serve(args))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Segment files and connections are file descriptors: take the hard limit.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open files limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open files limit"),
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data dir {}", args.data_dir.display()))?;
    // Held until the process ends: `riffle fsck` and `riffle repair` refuse
    // to touch a data directory a server is using, and so does a second
    // server.
    let _lock = match args.storage {
        Storage::Disk => Some(crate::fsck::lock_for_serving(&args.data_dir)?),
        Storage::Memory => None,
    };
    let clock = SystemClock::new();
    let durability = match args.durability {
        DurabilityArg::Fsync => Durability::Fsync,
        DurabilityArg::Interval => Durability::Interval,
        DurabilityArg::None => Durability::None,
    };
    let cfg = Config {
        account: args.account.clone(),
        // LocalStack's KINESIS_LATENCY is the same knob: how long kinesis-mock
        // keeps streams and consumers in their transitional states.
        status_delay_ms: args
            .kinesis_latency
            .map_or(args.status_delay_ms, |ms| ms.min(i64::MAX as u64) as i64)
            .max(0),
        shard_limit: args.shard_limit,
        throttle: args.throttle,
        durability,
        max_pending_write_bytes: args.max_pending_write_mib.max(1) * 1024 * 1024,
        ..Config::default()
    };
    if let Some(url) = &args.lambda_endpoint {
        riffle_firehose::client::Url::parse(url)
            .map_err(|e| anyhow::anyhow!("--lambda-endpoint: {e}"))?;
    }
    let firehose_cfg = riffle_firehose::Config {
        account: cfg.account.clone(),
        status_delay_ms: cfg.status_delay_ms,
        durability,
        sink: match &args.firehose_local_output {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                tracing::info!(dir = %dir.display(), "Firehose S3 destinations deliver to local files");
                Some(riffle_firehose::sink::Sink(
                    riffle_firehose::sink::DirSink::new(dir.clone()),
                ))
            }
            None => None,
        },
        lambda_endpoint: args.lambda_endpoint.clone(),
        redshift_endpoint: args.redshift_endpoint.clone(),
        ..riffle_firehose::Config::default()
    };
    let analytics_cfg = riffle_analytics::Config {
        account: cfg.account.clone(),
        status_delay_ms: cfg.status_delay_ms,
        ..riffle_analytics::Config::default()
    };
    let video_cfg = riffle_video::Config {
        account: cfg.account.clone(),
        status_delay_ms: cfg.status_delay_ms,
        ..riffle_video::Config::default()
    };
    let mut disk_stats = None;
    let (service, firehose, s3, analytics, (glue, secrets), video) = match args.storage {
        Storage::Memory => {
            let glue = riffle_glue::Service::in_memory(
                args.account.clone(),
                clock.clone() as Arc<dyn Clock>,
            );
            let secrets = riffle_secrets::Service::in_memory(
                args.account.clone(),
                clock.clone() as Arc<dyn Clock>,
            );
            let service = Service::new(
                cfg,
                clock.clone() as Arc<dyn Clock>,
                MemoryEngine::new(),
                rand_secret(),
            );
            let s3 = riffle_server::s3::S3Service::in_memory(clock.clone() as Arc<dyn Clock>);
            let firehose = riffle_firehose::Service::new(
                with_catalog(
                    with_embedded_s3(firehose_cfg, &s3.s3, &args)?,
                    &glue,
                    &secrets,
                ),
                clock.clone() as Arc<dyn Clock>,
                MemoryEngine::new(),
                Some(service.clone()),
            );
            let analytics =
                riffle_analytics::Service::new(analytics_cfg, clock.clone() as Arc<dyn Clock>);
            let video = riffle_video::Service::new(video_cfg, clock.clone() as Arc<dyn Clock>);
            (service, firehose, s3, analytics, (glue, secrets), video)
        }
        Storage::Disk => {
            let started = std::time::Instant::now();
            let disk = DiskEngine::open(
                args.data_dir.join("streams"),
                DiskConfig {
                    durability,
                    segment_bytes: args.segment_bytes,
                    sync_interval: Duration::from_millis(args.sync_interval_ms.max(1)),
                },
            )
            .with_context(|| format!("opening {}", args.data_dir.join("streams").display()))?;
            disk_stats = Some(disk.stats.clone());
            let engine: Arc<dyn LogEngine> = disk;
            // One metadata store for every service; each claims its namespace.
            // It is opened through the file-system seam, as the power-loss
            // tests open it on the simulated file system.
            let meta_path = args.data_dir.join(riffle_meta::FILE_NAME);
            let store = {
                let path = meta_path.clone();
                riffle_meta::Store::open_with(move || {
                    riffle_fs::open_redb(&riffle_fs::RealFs, &path)
                })
            }
            .with_context(|| format!("opening {}", meta_path.display()))?;
            let kinesis = store.namespace(riffle_streams::meta::NAMESPACE)?;
            let service = Service::open(cfg, clock.clone() as Arc<dyn Clock>, engine, kinesis)
                .context("loading streams")?;
            let s3_root = args.data_dir.join("s3");
            let s3 = riffle_server::s3::S3Service::new(
                riffle_s3::S3::open(
                    riffle_fs::RealFs::shared(),
                    s3_root.clone(),
                    store.namespace(riffle_s3::NAMESPACE)?,
                    clock.clone() as Arc<dyn Clock>,
                )
                .with_context(|| format!("opening {}", s3_root.display()))?,
                args.s3_domain.clone(),
            );
            let glue = riffle_glue::Service::open(
                args.account.clone(),
                clock.clone() as Arc<dyn Clock>,
                riffle_glue::meta::Meta::new(store.namespace(riffle_glue::meta::NAMESPACE)?)?,
            )
            .context("loading the Glue Data Catalog")?;
            let secrets = riffle_secrets::Service::open(
                args.account.clone(),
                clock.clone() as Arc<dyn Clock>,
                riffle_secrets::meta::Meta::new(store.namespace(riffle_secrets::meta::NAMESPACE)?)?,
            )
            .context("loading Secrets Manager secrets")?;
            // Firehose buffers live in their own logs under `firehose/`.
            let firehose_dir = args.data_dir.join("firehose");
            let firehose_engine: Arc<dyn LogEngine> = DiskEngine::open(
                firehose_dir.clone(),
                DiskConfig {
                    durability,
                    segment_bytes: args.segment_bytes,
                    sync_interval: Duration::from_millis(args.sync_interval_ms.max(1)),
                },
            )
            .with_context(|| format!("opening {}", firehose_dir.display()))?;
            let firehose = riffle_firehose::Service::open(
                with_catalog(
                    with_embedded_s3(firehose_cfg, &s3.s3, &args)?,
                    &glue,
                    &secrets,
                ),
                clock.clone() as Arc<dyn Clock>,
                firehose_engine,
                Some(service.clone()),
                store.namespace(riffle_firehose::meta::NAMESPACE)?,
            )
            .context("loading delivery streams")?;
            let analytics = riffle_analytics::Service::open(
                analytics_cfg,
                clock.clone() as Arc<dyn Clock>,
                store.namespace(riffle_analytics::NAMESPACE)?,
            )
            .context("loading analytics applications")?;
            // Video fragments live in their own logs under `video/`.
            let video_dir = args.data_dir.join("video");
            let video_engine: Arc<dyn LogEngine> = DiskEngine::open(
                video_dir.clone(),
                DiskConfig {
                    durability,
                    segment_bytes: args.segment_bytes,
                    sync_interval: Duration::from_millis(args.sync_interval_ms.max(1)),
                },
            )
            .with_context(|| format!("opening {}", video_dir.display()))?;
            let video = riffle_video::Service::open(
                video_cfg,
                clock.clone() as Arc<dyn Clock>,
                store.namespace(riffle_video::NAMESPACE)?,
                video_engine,
            )
            .context("loading video streams")?;
            tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "recovered the data directory"
            );
            (service, firehose, s3, analytics, (glue, secrets), video)
        }
    };
    let firehose_maintenance = firehose.clone();
    let analytics_maintenance = analytics.clone();
    let video_maintenance = video.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            firehose_maintenance.maintain().await;
            analytics_maintenance.maintain().await;
            video_maintenance.maintain().await;
        }
    });
    let maintenance = service.clone();
    tokio::spawn(async move {
        // Completing deletions and persisting status changes every second;
        // the service applies due transitions on access, so this only
        // bounds how long a deleted stream's files outlive it.
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            maintenance.maintain().await;
        }
    });

    let mut wanted = Vec::new();
    if let Some(path) = &args.init {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        wanted.extend(init::parse_streams(&text)?);
    }
    if let Some(list) = &args.streams {
        wanted.extend(init::parse_streams(list)?);
    }
    for s in &wanted {
        let created = service
            .ensure_stream(&args.region, &s.name, s.shards)
            .await
            .map_err(|e| anyhow::anyhow!("creating stream {}: {}", s.name, e))?;
        if created {
            tracing::info!(stream = %s.name, shards = ?s.shards, "created stream");
        }
    }

    let mut credentials = std::collections::HashMap::new();
    if let Some(path) = &args.credentials {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        credentials.extend(init::parse_credentials(&text)?);
    }
    if let Some(pairs) = &args.credential_pairs {
        credentials.extend(init::parse_credentials(pairs)?);
    }

    let analytics_stop = analytics.clone();
    let firehose_sink = Arc::new(crate::analytics_sink::FirehoseSink(firehose.clone()));
    let lambda = match &args.lambda_endpoint {
        Some(url) => Some(Arc::new(crate::analytics_sink::LambdaClient {
            client: riffle_firehose::client::Client::shared(),
            endpoint: riffle_firehose::client::Url::parse(url)
                .map_err(|e| anyhow::anyhow!("--lambda-endpoint: {e}"))?,
        }) as Arc<dyn riffle_analytics::LambdaInvoker>),
        None => None,
    };
    analytics.connect(riffle_analytics::Sources {
        kinesis: Some(service.clone()),
        objects: Some(Arc::new(crate::s3_sink::EmbeddedS3(s3.s3.clone()))),
        firehose: Some(firehose_sink.clone()),
        firehose_input: Some(firehose_sink),
        lambda,
    });
    let console_analytics = riffle_server::console_analytics::Handle(Some(analytics.clone()));
    let app = Arc::new(App {
        services: riffle_server::services(riffle_server::Backends {
            streams: service.clone(),
            faults: faults(&args),
            firehose,
            analytics,
            glue,
            secrets,
            video,
            s3: riffle_server::s3::S3Service {
                domain: args.s3_domain.clone(),
                ..s3
            },
        }),
        shared: riffle_server::platform::Shared {
            credentials,
            default_region: args.region.clone(),
            account: args.account.clone(),
            clock: clock.clone() as Arc<dyn Clock>,
        },
        test_clock: args.test_clock.then(|| clock.clone()),
        metrics: riffle_server::metrics::Metrics::with_disk(disk_stats),
        limits: riffle_server::platform::Limits::new(
            args.max_connections.max(1),
            args.max_requests.max(1),
        ),
        console: riffle_server::console::Console {
            mode: console_mode(&args),
            info: riffle_server::console::ServerInfo {
                storage: match args.storage {
                    Storage::Disk => "disk",
                    Storage::Memory => "memory",
                }
                .into(),
                durability: match args.durability {
                    DurabilityArg::Fsync => "fsync",
                    DurabilityArg::Interval => "interval",
                    DurabilityArg::None => "none",
                }
                .into(),
                data_dir: Some(args.data_dir.clone()),
                listen: args.listen.to_string(),
                started: std::time::Instant::now(),
                started_ms: clock.now_ms(),
            },
            streams: Some(riffle_server::console_tail::Streams(service.clone())),
            analytics: console_analytics,
        },
    });
    let listener = bind(args.listen).with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(
        listen = %listener.local_addr()?,
        data_dir = %args.data_dir.display(),
        storage = ?args.storage,
        console = app.console.mode.as_str(),
        "riffle is serving"
    );
    let mut listeners = vec![Listener {
        tcp: listener,
        tls: None,
    }];
    // `localhost` may resolve to ::1 first: serve the IPv6 loopback too when
    // listening on the IPv4 one.
    if args.listen.ip() == std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST) {
        let v6 =
            std::net::SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), args.listen.port());
        match bind(v6) {
            Ok(tcp) => listeners.push(Listener { tcp, tls: None }),
            Err(e) => tracing::debug!(error = %e, "not serving the IPv6 loopback"),
        }
    }
    if let Some(addr) = args.tls_listen {
        listeners.push(tls_listener(&args, addr).await?);
    }
    let stopping = service.clone();
    let shutdown = async move {
        shutdown_signal().await;
        stopping.begin_shutdown();
    };
    riffle_server::serve(
        listeners,
        app,
        shutdown,
        Duration::from_secs(args.shutdown_grace_secs),
    )
    .await?;
    // Running applications save their checkpoints.
    analytics_stop.stop_all().await;
    tracing::info!("stopped");
    Ok(())
}

/// `--console`, or its default: read-write only when every listener is on
/// the loopback.
fn console_mode(args: &ServeArgs) -> riffle_server::console::Mode {
    use riffle_server::console::Mode;
    match args.console {
        Some(ConsoleArg::ReadWrite) => Mode::ReadWrite,
        Some(ConsoleArg::ReadOnly) => Mode::ReadOnly,
        Some(ConsoleArg::Off) => Mode::Off,
        None => {
            let loopback = args.listen.ip().is_loopback()
                && args.tls_listen.is_none_or(|a| a.ip().is_loopback());
            if loopback {
                Mode::ReadWrite
            } else {
                Mode::ReadOnly
            }
        }
    }
}

/// Connections waiting to be accepted, per listener. Thousands of clients
/// connecting at once (the 10,000-connection case) would overflow a small
/// backlog, and a dropped SYN costs the client a retransmit second; the
/// kernel caps this at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 65_535;

/// A listening socket with a large backlog (`TcpListener::bind` takes 1,024).
fn bind(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

async fn tls_listener(args: &ServeArgs, addr: std::net::SocketAddr) -> anyhow::Result<Listener> {
    let files = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some((
            std::fs::read(c).with_context(|| format!("reading {}", c.display()))?,
            std::fs::read(k).with_context(|| format!("reading {}", k.display()))?,
        )),
        _ => None,
    };
    let (acceptor, cert_pem) =
        riffle_server::tls_acceptor(files.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice())))
            .map_err(anyhow::Error::msg)?;
    if files.is_none() {
        let dir = args.data_dir.join("tls");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("cert.pem"), &cert_pem)?;
        tracing::info!(cert = %dir.join("cert.pem").display(), "generated a self-signed TLS certificate");
    }
    let tcp = bind(addr).with_context(|| format!("binding {addr}"))?;
    tracing::info!(listen = %tcp.local_addr()?, "serving TLS");
    Ok(Listener {
        tcp,
        tls: Some(acceptor),
    })
}

/// Firehose's record format conversion reads tables from the Glue Data
/// Catalog this server serves, and SecretsManagerConfiguration reads its
/// secrets, in process.
fn with_catalog(
    mut cfg: riffle_firehose::Config,
    glue: &Arc<riffle_glue::Service>,
    secrets: &Arc<riffle_secrets::Service>,
) -> riffle_firehose::Config {
    cfg.catalog = Some(riffle_firehose::convert::CatalogRef(Arc::new(
        riffle_server::glue::GlueCatalog(glue.clone()),
    )));
    cfg.secrets = Some(riffle_firehose::secrets::SecretsRef(Arc::new(
        riffle_server::secrets::FirehoseSecrets(secrets.clone()),
    )));
    cfg
}

/// Firehose's S3 destinations deliver to the embedded S3 unless
/// `--firehose-local-output` chose a directory; buckets on external
/// endpoints (`--s3-endpoint`, `--s3-bucket-endpoint`) go there instead.
fn with_embedded_s3(
    mut cfg: riffle_firehose::Config,
    s3: &Arc<riffle_s3::S3>,
    args: &ServeArgs,
) -> anyhow::Result<riffle_firehose::Config> {
    let local = match cfg.sink.take() {
        Some(s) => s.0,
        None => Arc::new(crate::s3_sink::EmbeddedS3(s3.clone())),
    };
    cfg.sink = Some(riffle_firehose::sink::Sink(crate::s3_sink::with_external(
        local, args,
    )?));
    Ok(cfg)
}

fn faults(args: &ServeArgs) -> riffle_server::faults::Faults {
    let seed = args.fault_seed.unwrap_or_else(|| {
        let b = uuid::Uuid::new_v4().into_bytes();
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    });
    if args.kinesis_error_probability > 0.0 || args.response_delay_ms > 0 {
        tracing::info!(
            error_probability = args.kinesis_error_probability,
            response_delay_ms = args.response_delay_ms,
            seed,
            "injecting faults into Data Streams answers"
        );
    }
    riffle_server::faults::Faults::new(
        args.kinesis_error_probability,
        Duration::from_millis(args.response_delay_ms),
        seed,
    )
}

fn rand_secret() -> [u8; 32] {
    let mut k = [0u8; 32];
    for chunk in k.chunks_mut(16) {
        chunk.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    k
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
