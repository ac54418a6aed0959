//! The HTTP front as a client meets it: any bytes on a connection are parsed by hyper and routed
//! by the front (the direct session endpoints, the router, the origin stage, the trusted-proxy
//! headers: the connection comes from a trusted proxy), and the connection ends with answers or
//! a close, never a panic.
#![no_main]

use std::{net::SocketAddr, sync::LazyLock, time::Duration};

use hyper_util::{rt::TokioExecutor, rt::TokioIo, server::conn::auto};
use libfuzzer_sys::fuzz_target;
use switchboard::{
    config::Config,
    node::Node,
    secret::{Secret, SecretSource},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime")
});

static FRONT: LazyLock<switchboard::front::MakeFront> = LazyLock::new(|| {
    let config = Config {
        trusted_proxies: vec!["127.0.0.0/8".into()],
        allowed_origins: vec!["https://app.example".into()],
        poll_wait_ms: 100,
        ..Config::default()
    };
    let secret = Secret {
        bytes: b"fuzz-secret-0123456789abcdef0123456789".to_vec(),
        source: SecretSource::Configured,
    };
    let _guard = RUNTIME.enter();
    switchboard::server::app(Node::new(config, &secret))
});

fuzz_target!(|data: &[u8]| {
    RUNTIME.block_on(async {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let front = FRONT.front(SocketAddr::from(([127, 0, 0, 1], 40000)));
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
        // Time is paused: a held poll or stream runs out its wait at once.
        let _ = tokio::time::timeout(Duration::from_secs(60), read.read_to_end(&mut answers)).await;
        drop(read);
        drop(write);
        serving.abort();
        let _ = serving.await;
    });
});
