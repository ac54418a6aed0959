//! TLS on the listening socket (`tls_cert`, `tls_key`): HTTPS and wss:// on the one port, with
//! rustls, and certificates renewed without a restart.
//!
//! Each handshake asks [`Certificates`] for the certificate to present, and gets the current one:
//! replacing it changes what new connections see and nothing else, since a connection keeps the
//! keys it agreed on for its whole life. So a renewal drops no call. [`watch`] replaces it when
//! the files change (checked every `tls_reload_ms`) or on SIGHUP; files that do not load (a
//! renewal caught half-written, a key that does not match) are logged and the current
//! certificate stays until they do.
//!
//! The handshakes run in tasks of their own ([`TlsListener`]), each bounded by
//! [`HANDSHAKE_TIMEOUT`], at most [`MAX_HANDSHAKES`] at once: a client that connects and sends
//! nothing holds up no one else. When `tls_cert` is not set none of this exists: the server
//! serves plain TCP connections with the same code as before.

use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use parking_lot::{Mutex, RwLock};
use rustls::{
    ServerConfig,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use tokio::{net::TcpStream, task::JoinSet};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_util::sync::CancellationToken;

/// How long a client has to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes under way at once; past it the listener accepts nothing more until one ends (the
/// kernel's accept queue holds the next ones).
pub const MAX_HANDSHAKES: usize = 1024;

/// A certificate and key that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

/// The certificate chain and key of `cert` and `key` (PEM), checked to belong together.
pub fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let read = |path: &Path| {
        fs::read(path).map_err(|e| TlsError(format!("cannot read {}: {e}", path.display())))
    };
    let chain = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError(format!("{}: not PEM certificates: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(TlsError(format!(
            "{}: no certificate in it",
            cert.display()
        )));
    }
    let private = PrivateKeyDer::from_pem_slice(&read(key)?)
        .map_err(|e| TlsError(format!("{}: not a PEM private key: {e}", key.display())))?;
    CertifiedKey::from_der(chain, private, provider).map_err(|e| {
        TlsError(format!(
            "{} and {}: unusable ({e})",
            cert.display(),
            key.display()
        ))
    })
}

/// When a file was last changed, and its size: what tells that a renewal happened.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// The certificate new handshakes are given, and the files it came from.
#[derive(Debug)]
pub struct Certificates {
    current: RwLock<Arc<CertifiedKey>>,
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    /// The files' stamps when last loaded (or tried).
    seen: Mutex<(Stamp, Stamp)>,
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().clone())
    }
}

impl Certificates {
    /// Loads `cert` and `key`; an error stops the server from starting.
    pub fn new(cert: &Path, key: &Path) -> Result<Arc<Certificates>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let seen = (stamp(cert), stamp(key));
        let current = load(cert, key, &provider)?;
        Ok(Arc::new(Certificates {
            current: RwLock::new(Arc::new(current)),
            cert: cert.to_owned(),
            key: key.to_owned(),
            provider,
            seen: Mutex::new(seen),
        }))
    }

    /// The rustls configuration that presents these certificates: HTTP/1.1 (WebSocket upgrades
    /// need it), TLS 1.2 and 1.3.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, TlsError> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Loads the files again if they changed since the last try (or always, when `force`d); true
    /// when new handshakes now get a new certificate. A failure is logged and keeps the current
    /// certificate.
    pub fn reload(&self, force: bool) -> bool {
        let stamps = (stamp(&self.cert), stamp(&self.key));
        {
            let mut seen = self.seen.lock();
            if !force && *seen == stamps {
                return false;
            }
            *seen = stamps;
        }
        match load(&self.cert, &self.key, &self.provider) {
            Ok(loaded) => {
                *self.current.write() = Arc::new(loaded);
                tracing::info!(
                    event = "tls.reloaded",
                    cert = %self.cert.display(),
                    "new connections get the certificate just loaded"
                );
                true
            }
            Err(e) => {
                tracing::warn!(
                    event = "tls.reload_failed",
                    error = %e,
                    "keeping the current certificate"
                );
                false
            }
        }
    }

    /// The end-entity certificate new handshakes get.
    pub fn current(&self) -> CertificateDer<'static> {
        self.current.read().cert[0].clone()
    }
}

/// Reloads `certificates` when their files change (looked at every `every`) or on SIGHUP, until
/// `shutdown`. SIGHUP is taken over here, before the future is first polled, so that a SIGHUP
/// right after the start reloads instead of ending the process.
pub fn watch(
    certificates: Arc<Certificates>,
    every: Duration,
    shutdown: CancellationToken,
) -> impl Future<Output = ()> + Send {
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| {
            tracing::warn!(event = "tls.no_sighup", error = %e, "SIGHUP will not reload the certificate");
        })
        .ok();
    async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            #[cfg(unix)]
            let hungup = async {
                match hangup.as_mut() {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hungup = std::future::pending::<Option<()>>();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {
                    certificates.reload(false);
                }
                _ = hungup => {
                    tracing::info!(event = "tls.sighup", "SIGHUP: loading the certificate again");
                    certificates.reload(true);
                }
            }
        }
    }
}

/// A listener whose connections are TLS: it accepts TCP connections from `inner` and hands them
/// on once their handshake is done. See the module documentation.
pub struct TlsListener<L> {
    inner: L,
    acceptor: TlsAcceptor,
    handshakes: JoinSet<Option<(TlsStream<TcpStream>, SocketAddr)>>,
}

impl<L> TlsListener<L> {
    /// TLS with `config` on the connections of `inner`.
    pub fn new(inner: L, config: Arc<ServerConfig>) -> TlsListener<L> {
        TlsListener {
            inner,
            acceptor: TlsAcceptor::from(config),
            handshakes: JoinSet::new(),
        }
    }
}

impl<L> axum::serve::Listener for TlsListener<L>
where
    L: axum::serve::Listener<Io = TcpStream, Addr = SocketAddr>,
{
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, SocketAddr) {
        loop {
            let room = self.handshakes.len() < MAX_HANDSHAKES;
            tokio::select! {
                (tcp, peer) = self.inner.accept(), if room => {
                    let handshake = self.acceptor.accept(tcp);
                    self.handshakes.spawn(async move {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                            Ok(Ok(tls)) => Some((tls, peer)),
                            Ok(Err(e)) => {
                                tracing::debug!(event = "tls.handshake_failed", error = %e, "TLS handshake failed");
                                None
                            }
                            Err(_) => {
                                tracing::debug!(event = "tls.handshake_timeout", "TLS handshake timed out");
                                None
                            }
                        }
                    });
                }
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some(accepted)) = done {
                        return accepted;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}
