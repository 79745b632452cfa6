//! The HTTP client delivery uses to reach endpoints outside Riffle (HTTP
//! endpoint destinations, and any other destination that speaks HTTP):
//! one request per connection over HTTP/1.1, `http://` or `https://`.
//!
//! TLS is rustls with the operating system's trust store, read once per
//! process (`rustls-native-certs`, which also honours `SSL_CERT_FILE` and
//! `SSL_CERT_DIR`, so a private CA is trusted by pointing those at it).
//! Server names are verified as any HTTPS client does; ALPN offers
//! `http/1.1` only.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

/// A parsed `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// `host[:port]` as written, the Host header.
    pub authority: String,
    /// Path and query, at least `/`.
    pub path: String,
}

impl Url {
    /// Parses `http[s]://host[:port][/path][?query]`; `Err` says why not.
    pub fn parse(url: &str) -> Result<Url, String> {
        let bad = || format!("Unsupported endpoint URL {url}.");
        let lower = url.to_ascii_lowercase();
        let (tls, rest) = if lower.starts_with("https://") {
            (true, &url["https://".len()..])
        } else if lower.starts_with("http://") {
            (false, &url["http://".len()..])
        } else {
            return Err(bad());
        };
        let cut = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(cut);
        if authority.is_empty() || authority.contains('@') {
            return Err(bad());
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (h, rest) = v6.split_once(']').ok_or_else(bad)?;
                match rest {
                    "" => (h, default_port),
                    r => (
                        h,
                        r.strip_prefix(':')
                            .and_then(|p| p.parse().ok())
                            .ok_or_else(bad)?,
                    ),
                }
            }
            None => match authority.split_once(':') {
                Some((h, p)) => (h, p.parse().map_err(|_| bad())?),
                None => (authority, default_port),
            },
        };
        if host.is_empty() {
            return Err(bad());
        }
        let path = path.split('#').next().unwrap_or("");
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        Ok(Url {
            tls,
            host: host.to_owned(),
            port,
            authority: authority.to_owned(),
            path,
        })
    }
}

/// Why a request got no complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// No connection (refused, DNS, TLS handshake, certificate).
    Connect(String),
    /// The connection broke while sending or reading the response.
    Io(String),
}

/// A response: status, headers, and at most `max_body` bytes of body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

/// An HTTP/1.1 client for `http://` and `https://` URLs. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Client")
    }
}

fn tls_config(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

impl Client {
    /// The process's client, trusting the operating system's roots.
    pub fn shared() -> Client {
        static SHARED: OnceLock<Client> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                let found = rustls_native_certs::load_native_certs();
                for e in &found.errors {
                    tracing::warn!(error = %e, "reading a trusted certificate failed");
                }
                let mut roots = rustls::RootCertStore::empty();
                let (added, ignored) = roots.add_parsable_certificates(found.certs);
                tracing::debug!(added, ignored, "trusted certificates loaded");
                Client {
                    tls: tls_config(roots),
                }
            })
            .clone()
    }

    /// A client trusting exactly the PEM certificates given.
    pub fn with_roots_pem(pem: &[u8]) -> Result<Client, String> {
        let mut roots = rustls::RootCertStore::empty();
        let mut reader = pem;
        for cert in rustls_pemfile_certs(&mut reader)? {
            roots
                .add(cert)
                .map_err(|e| format!("an invalid certificate: {e}"))?;
        }
        Ok(Client {
            tls: tls_config(roots),
        })
    }

    /// Sends `req` (its URI is replaced by the URL's path; a Host header is
    /// added if missing) and reads the response.
    pub async fn send(
        &self,
        url: &Url,
        mut req: hyper::Request<Full<Bytes>>,
        max_body: usize,
    ) -> Result<Response, SendError> {
        *req.uri_mut() = url
            .path
            .parse()
            .map_err(|e| SendError::Connect(format!("invalid path {}: {e}", url.path)))?;
        if !req.headers().contains_key(hyper::header::HOST) {
            let host = hyper::header::HeaderValue::from_str(&url.authority)
                .map_err(|e| SendError::Connect(e.to_string()))?;
            req.headers_mut().insert(hyper::header::HOST, host);
        }
        let tcp = tokio::net::TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|e| SendError::Connect(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        if url.tls {
            let name = rustls_pki_types::ServerName::try_from(url.host.clone())
                .map_err(|e| SendError::Connect(format!("invalid host {}: {e}", url.host)))?;
            let stream = tokio_rustls::TlsConnector::from(self.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| SendError::Connect(format!("TLS handshake failed: {e}")))?;
            exchange(stream, req, max_body).await
        } else {
            exchange(tcp, req, max_body).await
        }
    }
}

/// The certificates of a PEM document.
fn rustls_pemfile_certs(
    reader: &mut &[u8],
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, String> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_slice_iter(reader)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("reading PEM certificates failed: {e}"))
}

async fn exchange<S>(
    io: S,
    req: hyper::Request<Full<Bytes>>,
    max_body: usize,
) -> Result<Response, SendError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
        .await
        .map_err(|e| SendError::Connect(e.to_string()))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let result = async {
        let resp = send
            .send_request(req)
            .await
            .map_err(|e| SendError::Io(e.to_string()))?;
        let status = resp.status().as_u16();
        let (parts, mut b) = resp.into_parts();
        let mut body = Vec::new();
        while let Some(frame) = b.frame().await {
            let frame = frame.map_err(|e| SendError::Io(e.to_string()))?;
            if let Some(d) = frame.data_ref() {
                let room = max_body.saturating_sub(body.len());
                body.extend_from_slice(&d[..d.len().min(room)]);
            }
        }
        Ok(Response {
            status,
            headers: parts.headers,
            body,
        })
    }
    .await;
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("https://example.com/in?x=1").unwrap();
        assert_eq!(
            u,
            Url {
                tls: true,
                host: "example.com".into(),
                port: 443,
                authority: "example.com".into(),
                path: "/in?x=1".into(),
            }
        );
        let u = Url::parse("HTTP://127.0.0.1:8080").unwrap();
        assert_eq!((u.tls, u.port, u.path.as_str()), (false, 8080, "/"));
        let u = Url::parse("https://[::1]:8443/p#frag").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 8443, "/p")
        );
        for bad in [
            "ftp://x/",
            "https://",
            "http://user@host/",
            "http://host:99999/",
            "http://:80/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    /// A TLS server with a certificate for `localhost` signed by a fresh CA;
    /// answers every request with 200 and the request's path as body.
    async fn tls_server() -> (u16, String) {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(
                        |req: hyper::Request<hyper::body::Incoming>| async move {
                            let path = req.uri().path().to_owned();
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                Bytes::from(path),
                            )))
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        (port, ca.pem())
    }

    fn get() -> hyper::Request<Full<Bytes>> {
        hyper::Request::get("/")
            .body(Full::new(Bytes::new()))
            .unwrap()
    }

    #[tokio::test]
    async fn https_with_a_trusted_ca_and_refused_otherwise() {
        let (port, ca) = tls_server().await;
        let url = Url::parse(&format!("https://localhost:{port}/hello")).unwrap();
        let trusting = Client::with_roots_pem(ca.as_bytes()).unwrap();
        let r = trusting.send(&url, get(), 1 << 20).await.unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, b"/hello".as_slice()));
        // The process's roots do not include the test CA.
        let e = Client::shared()
            .send(&url, get(), 1 << 20)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, SendError::Connect(m) if m.contains("TLS handshake failed")),
            "{e:?}"
        );
        // The certificate names localhost, not 127.0.0.1.
        let by_ip = Url::parse(&format!("https://127.0.0.1:{port}/")).unwrap();
        let e = trusting.send(&by_ip, get(), 1 << 20).await.unwrap_err();
        assert!(matches!(e, SendError::Connect(_)), "{e:?}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let e = Client::shared().send(&url, get(), 10).await.unwrap_err();
        assert!(matches!(e, SendError::Connect(_)), "{e:?}");
    }
}
