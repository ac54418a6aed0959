//! The HTTP server: routes, the tasks beside them (timers, key refresh), and graceful shutdown.

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::IntoResponse,
    routing::{get, post},
    serve::ListenerExt,
};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    config::Config,
    control::Control,
    edge::{
        forwarded::TrustedProxies,
        http::{Timeouts, serve},
        tls::{self, Certificates, TlsListener},
    },
    front::MakeFront,
    node::Node,
    origin::OriginPolicy,
    secret::Secret,
    transport,
};

/// Every route but the session endpoints [`crate::front`] serves directly, behind the layers of
/// [`crate::pipeline::STAGES`] (and no others: the direct path applies those).
fn router(node: Node, control: Control, origins: &Arc<OriginPolicy>) -> Router {
    let guest = Router::new()
        .route("/v1/token", post(crate::guest::token))
        .with_state(control.clone());
    let (api, document) = crate::control::routes(control);
    let document = Router::new()
        .route("/openapi.json", get(crate::control::openapi::document))
        .with_state(document);
    let routes = Router::new()
        .route("/v1/ws", get(transport::ws::upgrade))
        .route("/v1/sessions", post(transport::http::create))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/readyz", get(readyz))
        .merge(crate::web::routes())
        .with_state(node)
        .merge(guest)
        .merge(api)
        .merge(document);
    crate::pipeline::layer(routes, origins)
}

/// What serves each connection: the session endpoints directly, the rest through the router.
pub fn app(node: Node, control: Control) -> MakeFront {
    let origins = crate::origin::policy(&node.config().allowed_origins);
    // `Config::load` has checked the list; one never checked and invalid trusts no one.
    let proxies = node.config().proxies().unwrap_or_else(|e| {
        tracing::error!(event = "proxies.bad_config", error = %e, "trusting no proxy");
        TrustedProxies::default()
    });
    MakeFront::new(
        node.clone(),
        origins.clone(),
        proxies,
        router(node, control, &origins),
    )
}

async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

async fn metrics(State(node): State<Node>) -> impl IntoResponse {
    let stats = node.hub().stats();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        node.metrics().render(stats),
    )
}

async fn readyz(State(node): State<Node>) -> impl IntoResponse {
    if node.cluster().is_some_and(|c| c.fenced()) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "fenced"})),
        )
    } else if node.cluster().is_some_and(|c| !c.reachable()) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "store_unreachable"})),
        )
    } else if node.accepting() {
        let stats = node.hub().stats();
        (
            StatusCode::OK,
            Json(json!({"status": "ready", "sessions": stats.sessions, "rooms": stats.rooms})),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting_down"})),
        )
    }
}

/// A server started with [`start`].
pub struct Running {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// The addresses the SFU's workers announce to clients, in worker order; none when the SFU
    /// is off.
    pub sfu_addrs: Vec<SocketAddr>,
    /// The workers' ICE-TCP addresses, with `sfu.tcp_port`.
    pub sfu_tcp_addrs: Vec<SocketAddr>,
    node: Node,
    control: Control,
    task: tokio::task::JoinHandle<io::Result<()>>,
}

impl Running {
    /// Starts a graceful shutdown and waits for it to finish.
    pub async fn shutdown(self) -> io::Result<()> {
        self.node.shutdown_token().cancel();
        self.task.await.map_err(io::Error::other)?
    }

    /// The token that starts a shutdown when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.node.shutdown_token().clone()
    }

    /// The node, for inspection.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The control plane (its store), for inspection.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// Waits until the server stops (after its shutdown token fires).
    pub async fn wait(self) -> io::Result<()> {
        self.task.await.map_err(io::Error::other)?
    }
}

/// Opens the store (migrating it), binds `config.listen` and serves in a background task until
/// the shutdown token fires.
pub async fn start(config: Config, secret: &Secret) -> io::Result<Running> {
    // A certificate that does not load stops the start, before the port is taken.
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(Certificates::new(cert, key).map_err(io::Error::other)?),
        _ => None,
    };
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let verifier =
        crate::auth::Verifier::from_config(&config, &secret.bytes).map_err(io::Error::other)?;
    // A failed first fetch is logged; the key set is fetched again periodically and on demand.
    let _ = verifier.refresh_keys().await;
    let cluster = match &config.redis_url {
        None => None,
        Some(url) => {
            let node_id = config.node_id();
            let cluster = crate::cluster::Cluster::connect(
                url,
                &config.redis_prefix,
                &node_id,
                config.outbox_limit,
                config.core().resume_window,
            )
            .await
            .map_err(|e| io::Error::other(format!("cluster mode: {e}")))?;
            tracing::info!(
                event = "cluster.joined",
                node = %node_id,
                prefix = %config.redis_prefix,
                "cluster mode: rooms are shared through Redis"
            );
            Some(cluster)
        }
    };
    let (mut media, mut sfu) = crate::sfu::bind(&config.sfu).await?.unzip();
    // Cluster mode: the hub's commands go through the router to each room's media node.
    if cluster.is_some()
        && let (Some(link), Some(sfu)) = (media.take(), sfu.as_mut())
    {
        let (routed, routing) = crate::cluster::media::routing(link, config.sfu.queue);
        sfu.routing = Some(routing);
        media = Some(routed);
    }
    let workers = sfu.as_ref().map_or(&[][..], |sfu| &sfu.workers);
    let sfu_addrs: Vec<_> = workers.iter().map(|w| w.announced()).collect();
    let sfu_tcp_addrs = workers.iter().filter_map(|w| w.announced_tcp()).collect();
    if sfu_addrs.is_empty() && config.media_mode == switchboard_protocol::MediaMode::Auto {
        tracing::info!(
            event = "media.mesh_only",
            "media_mode auto without an SFU (sfu.udp_port unset): every room stays mesh"
        );
    }
    let node = Node::build(config, secret, verifier, cluster, media);
    let control = Control::open(&node, secret)
        .await
        .map_err(|e| io::Error::other(format!("store: {e}")))?;
    let task = tokio::spawn(run(listener, tls, node.clone(), sfu, control.clone()));
    Ok(Running {
        addr,
        sfu_addrs,
        sfu_tcp_addrs,
        node,
        control,
        task,
    })
}

/// Serves on `listener` (over TLS with `tls`) until `node`'s shutdown token fires, then drains:
/// stop accepting, close every session (members get `room_closed`, sockets close with 1001; in
/// cluster mode each session is handed over instead, its socket closing with 4006 for the
/// client to resume it on another node), and wait for connection tasks up to
/// `shutdown_grace_ms`. The SFU's workers, if given, run beside and stop with it.
pub async fn run(
    listener: TcpListener,
    tls: Option<Arc<Certificates>>,
    node: Node,
    sfu: Option<crate::sfu::Media>,
    control: Control,
) -> io::Result<()> {
    let shutdown = node.shutdown_token().clone();
    let media = sfu.map(|sfu| {
        let routing = (sfu.routing).map(|routing| {
            tokio::spawn(crate::cluster::media::run(
                routing,
                node.clone(),
                shutdown.clone(),
            ))
        });
        let workers: Vec<_> = (sfu.workers.into_iter())
            .map(|worker| {
                tokio::spawn(crate::sfu::worker::run(
                    worker,
                    node.clone(),
                    shutdown.clone(),
                ))
            })
            .collect();
        (workers, routing)
    });
    let timers = tokio::spawn(run_timers(node.clone(), shutdown.clone()));
    let key_refresh = tokio::spawn(refresh_keys(node.clone(), shutdown.clone()));
    // The cluster's tasks outlive the drain: the sessions' last writes must reach the store.
    // They stop in order: health (no lease renewal after the lease is given back), commit (the
    // last writes, then the lease goes), inbox (until then, it hears of sessions that resumed
    // on another node and lets them go at once).
    let cluster_stop = [(); 3].map(|_| CancellationToken::new());
    let cluster_tasks = node.cluster().map(|_| {
        let [health, commit, inbox] = &cluster_stop;
        (
            tokio::spawn(crate::cluster::tasks::health(node.clone(), health.clone())),
            tokio::spawn(crate::cluster::tasks::commit(node.clone(), commit.clone())),
            tokio::spawn(crate::cluster::tasks::inbox(node.clone(), inbox.clone())),
        )
    });
    // The rooms' shared limits stop with the sessions: nothing of them is left to do in a drain.
    let room_tasks = node.cluster().map(|_| {
        (
            tokio::spawn(crate::cluster::rooms::budgets(
                node.clone(),
                shutdown.clone(),
            )),
            tokio::spawn(crate::cluster::rooms::idle(node.clone(), shutdown.clone())),
        )
    });
    let control_tasks = crate::control::Tasks::start(&control, &shutdown);
    let service = app(node.clone(), control);
    // Signaling messages are small and latency-bound: Nagle's algorithm would hold them back
    // behind delayed ACKs for tens of milliseconds.
    let listener = crate::listener::Listener::new(listener, node.clone()).tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(event = "server.nodelay_failed", error = %e, "TCP_NODELAY not set");
        }
    });
    let timeouts = Timeouts {
        header: Duration::from_millis(node.config().header_timeout_ms),
        body: Duration::from_millis(node.config().body_timeout_ms),
    };
    // Two instances of one accept loop: without TLS, nothing of it is on the way.
    let (mut serving, reload) = match tls {
        None => (
            serve(listener, service, timeouts, node.clone(), shutdown.clone()),
            None,
        ),
        Some(certificates) => {
            let config = certificates.server_config().map_err(io::Error::other)?;
            let every = Duration::from_millis(node.config().tls_reload_ms);
            let reload = tokio::spawn(tls::watch(certificates, every, shutdown.clone()));
            let listener = TlsListener::new(listener, config);
            let serving = serve(listener, service, timeouts, node.clone(), shutdown.clone());
            (serving, Some(reload))
        }
    };
    tokio::select! {
        _ = shutdown.cancelled() => {}
        result = &mut serving => {
            // The accept loop only ends by itself on an error; still drain the sessions.
            shutdown.cancel();
            result.map_err(io::Error::other)??;
        }
    }
    node.stop_accepting();
    let grace = Duration::from_millis(node.config().shutdown_grace_ms);
    let stats = node.hub().stats();
    tracing::info!(
        event = "server.draining",
        sessions = stats.sessions,
        grace_ms = grace.as_millis() as u64,
        "shutting down"
    );
    if node.cluster().is_some() {
        crate::cluster::drain::drain(&node).await;
    } else {
        node.with_hub(|hub, now| hub.shutdown(now));
    }
    node.tasks().close();
    let drained = tokio::time::timeout(grace, node.tasks().wait())
        .await
        .is_ok();
    if !drained {
        tracing::warn!(
            event = "server.drain_timeout",
            "sessions still open at the shutdown deadline; closing them"
        );
    }
    let _ = timers.await;
    let _ = key_refresh.await;
    if let Some((budgets, idle)) = room_tasks {
        let _ = budgets.await;
        let _ = idle.await;
    }
    // After the drain: the sessions' last leaves are in the journal's queue.
    control_tasks.stop(grace).await;
    if let Some((health, commit, inbox)) = cluster_tasks {
        let [stop_health, stop_commit, stop_inbox] = &cluster_stop;
        stop_health.cancel();
        let _ = health.await;
        stop_commit.cancel();
        if tokio::time::timeout(grace, commit).await.is_err() {
            tracing::warn!(
                event = "cluster.commit_timeout",
                "writes to the shared store still queued at the shutdown deadline"
            );
        }
        stop_inbox.cancel();
        let _ = inbox.await;
    }
    if let Some((workers, routing)) = media {
        for worker in workers {
            let _ = worker.await;
        }
        if let Some(routing) = routing {
            let _ = routing.await;
        }
    }
    if let Some(reload) = reload {
        let _ = reload.await;
    }
    if !serving.is_finished() {
        // Plain HTTP requests get what is left of a short deadline; upgraded sockets are ours.
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut serving).await;
        serving.abort();
    }
    tracing::info!(event = "server.stopped", drained, "stopped");
    Ok(())
}

/// Runs the hub's timers when they are due ([`crate::timer`]) until shutdown, and prunes the
/// per-address admission budgets with them.
async fn run_timers(node: Node, shutdown: CancellationToken) {
    loop {
        node.timer().disarm();
        let now = node.with_hub(|hub, now| {
            hub.handle_timeout(now);
            now
        });
        node.admission().prune(now.at);
        if !node.timer().sleep(now.at, &shutdown).await {
            return;
        }
    }
}

/// Fetches the JWKS again every `jwks_refresh_ms` (when one is configured) until shutdown.
async fn refresh_keys(node: Node, shutdown: CancellationToken) {
    let Some(jwks) = node.verifier().jwks().cloned() else {
        return;
    };
    let period = Duration::from_millis(node.config().jwks_refresh_ms);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {
                let _ = jwks.refresh().await;
            }
        }
    }
}
