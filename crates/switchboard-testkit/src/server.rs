//! The server in-process, on an ephemeral loopback port, and the configurations tests share.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::atomic::{AtomicU64, Ordering},
};

use serde_json::Value;
use switchboard::{
    auth::Claims,
    config::Config,
    secret::{Secret, SecretSource},
    server::{self, Running},
};
use switchboard_core::Stats;
use switchboard_protocol::Role;

use crate::{Client, DEADLINE, eventually, tokens};

/// A real server started in-process with [`server::start`] on `127.0.0.1:0`, signing and
/// verifying with [`tokens::SECRET`].
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    running: Option<Running>,
    /// Its own `data_dir` (the development secret, the SQLite store), removed when it is dropped.
    data_dir: PathBuf,
}

impl TestServer {
    /// A server with the default configuration.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// A server with the default configuration changed by `adjust`.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let data_dir = std::env::temp_dir().join(format!(
            "switchboard-testserver-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let mut config = Config {
            listen: "127.0.0.1:0".parse().expect("an address"),
            secret: Some(tokens::SECRET.into()),
            data_dir: data_dir.clone(),
            ..Config::default()
        };
        adjust(&mut config);
        let secret = Secret {
            bytes: tokens::SECRET.as_bytes().to_vec(),
            source: SecretSource::Configured,
        };
        let running = server::start(config, &secret).await.expect("server starts");
        TestServer {
            addr: running.addr,
            running: Some(running),
            data_dir,
        }
    }

    /// The running server, for its node (hub, configuration, metrics).
    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("not shut down")
    }

    /// Shuts down gracefully, which must succeed.
    pub async fn shutdown(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await.expect("clean shutdown");
        }
    }

    /// The URL of `path` on this server.
    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The WebSocket endpoint, `ws://.../v1/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/ws", self.addr)
    }

    /// A valid token ([`tokens::mint`]).
    pub fn token(&self, user: &str, room: &str, role: Role) -> String {
        tokens::mint(user, room, role)
    }

    /// `claims` signed with the server's secret.
    pub fn sign(&self, claims: &Claims) -> String {
        tokens::signer().sign(claims).expect("signed")
    }

    /// Starts an HTTP (SSE or long-poll) session with `token`; its id.
    pub async fn http_session(&self, token: &str) -> String {
        let created: Value = reqwest::Client::new()
            .post(self.http("/v1/sessions"))
            .bearer_auth(token)
            .timeout(DEADLINE)
            .send()
            .await
            .expect("POST /v1/sessions answers")
            .json()
            .await
            .expect("a JSON answer");
        created["session"]
            .as_str()
            .expect("a session id")
            .to_owned()
    }

    /// A connected WebSocket client whose `hello` has been read.
    pub async fn client(&self, user: &str, room: &str, role: Role) -> Client {
        let token = self.token(user, room, role);
        Client::connect(&format!("{}?token={token}", self.ws_url())).await
    }

    /// A WebSocket client joined to `room` as `peer`, with its `joined` read.
    pub async fn joined(&self, user: &str, room: &str, role: Role, peer: &str) -> Client {
        let mut c = self.client(user, room, role).await;
        c.join(room, peer).await;
        c
    }

    /// Waits until the hub's counts satisfy `cond` (bounded by [`DEADLINE`]).
    pub async fn wait_for(&self, what: &str, cond: impl Fn(&Stats) -> bool) {
        eventually(what, || async {
            let stats = self.running().node().hub().stats();
            if cond(&stats) { Ok(()) } else { Err(stats) }
        })
        .await;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Turns off the budgets kept per client address: every test client comes from 127.0.0.1, so
/// they would count a whole test as one client.
pub fn no_address_budgets(c: &mut Config) {
    c.rate_limits.sessions_per_sec_per_address = 0.0;
    c.rate_limits.joins_per_sec_per_address = 0.0;
    c.api.logins_per_sec_per_address = 0.0;
    c.api.registrations_per_sec_per_address = 0.0;
    c.api.invite_requests_per_sec_per_address = 0.0;
}

/// Turns off every rate budget, for tests that send fast on purpose (budgets are the abuse
/// tests' concern).
pub fn no_budgets(c: &mut Config) {
    no_address_budgets(c);
    c.rate_limits.messages_per_sec = 0.0;
    c.rate_limits.candidates_per_sec = 0.0;
    c.rate_limits.room_messages_per_sec = 0.0;
}

/// Serves `app` on an ephemeral loopback port until the test ends: a stand-in for a service the
/// server talks to (an identity provider's key set, a trace collector). Its address.
pub async fn stub(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}
