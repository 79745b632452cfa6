//! `riffle health`: asks a running server's `/_riffle/health` and exits 0
//! when it answers `ok`, 1 otherwise. Container images have no curl; this
//! is their health check.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

use crate::cli::HealthArgs;

/// Prints `ok` and returns, or prints why not on stderr and exits 1.
pub fn run(args: HealthArgs) -> anyhow::Result<()> {
    match probe(&args) {
        Ok(()) => {
            println!("ok");
            Ok(())
        }
        Err(e) => {
            eprintln!("{e:#}");
            std::process::exit(1)
        }
    }
}

fn probe(args: &HealthArgs) -> anyhow::Result<()> {
    let addr = probe_addr(args.listen);
    let timeout = Duration::from_millis(args.timeout_ms);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    match runtime.block_on(async { tokio::time::timeout(timeout, check(addr)).await }) {
        Ok(result) => result.with_context(|| format!("riffle at {addr} is not healthy")),
        Err(_) => bail!(
            "riffle at {addr} is not healthy: no answer within {} ms",
            args.timeout_ms
        ),
    }
}

/// A wildcard listen address is reached on the loopback of its family.
pub fn probe_addr(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

async fn check(addr: SocketAddr) -> anyhow::Result<()> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .context("connecting")?;
    let (mut send, conn) = http1::handshake::<_, Empty<Bytes>>(TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::get("/_riffle/health")
        .header("host", addr.to_string())
        .body(Empty::new())?;
    let resp = send.send_request(req).await.context("requesting")?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    let text = String::from_utf8_lossy(&body);
    if status != http::StatusCode::OK || text.trim() != "ok" {
        bail!("answered {status}: {}", text.trim());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_addresses_are_checked_on_the_loopback() {
        let cases = [
            ("0.0.0.0:4566", "127.0.0.1:4566"),
            ("[::]:4566", "[::1]:4566"),
            ("127.0.0.1:9000", "127.0.0.1:9000"),
            ("10.1.2.3:4566", "10.1.2.3:4566"),
        ];
        for (listen, probed) in cases {
            assert_eq!(
                probe_addr(listen.parse().unwrap()),
                probed.parse::<SocketAddr>().unwrap()
            );
        }
    }
}
