//! The HTTP front as a client meets it: any bytes on a connection are parsed by hyper and routed
//! by the front (the direct session endpoints, the router, the origin stage, the trusted-proxy
//! headers: the connection comes from a trusted proxy), and the connection ends with answers or
//! a close, never a panic. The control API's routes are served too, on a SQLite store of the
//! process's own.
#![no_main]

use std::{net::SocketAddr, sync::LazyLock, time::Duration};

use hyper_util::{rt::TokioExecutor, rt::TokioIo, server::conn::auto};
use libfuzzer_sys::fuzz_target;
use switchboard::{
    config::Config,
    control::Control,
    node::Node,
    secret::{Secret, SecretSource},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A real clock: the control plane's store (sqlx) times its waits, and a paused clock would
/// run them out at once.
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
});

/// How long the answers to one input are read: a held poll (`poll_wait_ms` 100) or an SSE
/// stream is cut here, everything else has ended long before.
const READ_FOR: Duration = Duration::from_millis(250);

/// The front with its control plane, whose SQLite store is a file of this process's own in the
/// temporary directory (the control API's routes are fuzzed too).
static FRONT: LazyLock<switchboard::front::MakeFront> = LazyLock::new(|| {
    let config = Config {
        trusted_proxies: vec!["127.0.0.0/8".into()],
        allowed_origins: vec!["https://app.example".into()],
        poll_wait_ms: 100,
        data_dir: std::env::temp_dir().join(format!("switchboard-fuzz-{}", std::process::id())),
        ..Config::default()
    };
    let secret = Secret {
        bytes: b"fuzz-secret-0123456789abcdef0123456789".to_vec(),
        source: SecretSource::Configured,
    };
    let node = {
        let _guard = RUNTIME.enter();
        Node::new(config, &secret)
    };
    let control = RUNTIME
        .block_on(Control::open(&node, &secret))
        .expect("the store opens");
    let _guard = RUNTIME.enter();
    switchboard::server::app(node, control)
});

fuzz_target!(|data: &[u8]| {
    // Made before the runtime runs this input: making it runs the runtime itself.
    let front = FRONT.front(SocketAddr::from(([127, 0, 0, 1], 40000)));
    RUNTIME.block_on(async {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let serving = tokio::spawn(async move {
            let builder = auto::Builder::new(TokioExecutor::new());
            let _ = builder
                .serve_connection_with_upgrades(
                    TokioIo::new(server),
                    hyper::service::service_fn(
                        move |request: hyper::Request<hyper::body::Incoming>| {
                            let mut front = front.clone();
                            tower::Service::call(&mut front, request.map(axum::body::Body::new))
                        },
                    ),
                )
                .await;
        });
        let (mut read, mut write) = tokio::io::split(client);
        let _ = write.write_all(data).await;
        let _ = write.shutdown().await;
        let mut answers = Vec::new();
        let _ = tokio::time::timeout(READ_FOR, read.read_to_end(&mut answers)).await;
        drop(read);
        drop(write);
        serving.abort();
        let _ = serving.await;
    });
});
