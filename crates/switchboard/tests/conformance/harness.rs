//! What every conformance scenario shares: where its clients connect (one server, or two nodes
//! of a cluster when a `two_nodes` test scopes [`CLUSTER`]), and the steps they take (join, chat,
//! relay, resume) with the checks each step makes.

use serde_json::{Value, json};
use switchboard::config::Config;
use switchboard_core::Stats;
use switchboard_protocol::{ClientEnvelope, Role, ServerEnvelope};
use switchboard_testkit::{AnyClient, TestServer, Transport, server::no_budgets};

/// The room every scenario uses; tokens grant `room-*`.
pub const ROOM: &str = "room-1";
pub const GRANT: &str = "room-*";

/// Each client's normalized transcript, by name.
pub type Transcript = Vec<(String, Vec<Value>)>;

pub fn transcript(clients: &[&AnyClient]) -> Transcript {
    clients
        .iter()
        .map(|c| (c.name.clone(), c.transcript().to_vec()))
        .collect()
}

tokio::task_local! {
    /// The Redis key prefix of a `two_nodes` test's cluster; `None` (or unset): one server.
    pub static CLUSTER: Option<String>;
}

/// Where a scenario's clients connect: one server, or two nodes of a cluster.
pub struct Place {
    servers: Vec<TestServer>,
}

impl Place {
    /// Waits until the nodes' sessions together satisfy `cond` (bounded by the harness deadline).
    pub async fn wait_for(&self, what: &str, cond: impl Fn(&Stats) -> bool) {
        switchboard_testkit::eventually(what, || async {
            let mut all = Stats::default();
            for server in &self.servers {
                let stats = server.running().node().hub().stats();
                all.sessions += stats.sessions;
                all.attached += stats.attached;
            }
            if cond(&all) { Ok(()) } else { Err(all) }
        })
        .await;
    }
}

/// A server with the settings every scenario shares, then `adjust`; in a `two_nodes` test, two
/// nodes of a cluster of their own with those settings.
pub async fn server(adjust: impl Fn(&mut Config)) -> Place {
    let prefix = CLUSTER.try_with(Clone::clone).ok().flatten();
    let nodes = if prefix.is_some() { 2 } else { 1 };
    let mut servers = Vec::new();
    for n in 0..nodes {
        let server = TestServer::start_with(|c| {
            c.sse_retry_ms = 10;
            c.poll_wait_ms = 5_000;
            // Budgets are another suite's concern; these scenarios send fast on purpose.
            no_budgets(c);
            adjust(c);
            if let Some(prefix) = &prefix {
                c.redis_url = Some(switchboard_testkit::redis::url());
                c.redis_prefix = prefix.clone();
                c.node_id = Some(format!("node-{n}"));
            }
        })
        .await;
        servers.push(server);
    }
    Place { servers }
}

/// A client of `user`; on two nodes, bob's (and dave's) on the second, the others' on the first.
pub async fn client(place: &Place, t: Transport, user: &str, role: Role) -> AnyClient {
    let home = usize::from(matches!(user, "bob" | "dave")).min(place.servers.len() - 1);
    AnyClient::connect(&place.servers[home], t, user, GRANT, role).await
}

/// Joins [`ROOM`] as peer `c.name`; returns `joined`.
pub async fn join(c: &mut AnyClient, meta: Option<Value>) -> Value {
    let mut payload = json!({"peer": c.name});
    if let Some(meta) = meta {
        payload["meta"] = meta;
    }
    let env = c.msg("join").room(ROOM).id("join").payload(payload);
    c.send_ok(env).await;
    let joined = c.expect("joined").await;
    assert_eq!(joined.room.as_deref(), Some(ROOM));
    assert_eq!(joined.id.as_deref(), Some("join"));
    assert_eq!(joined.payload["peer"], c.name.as_str());
    joined.payload
}

pub async fn joined(server: &Place, t: Transport, user: &str, role: Role) -> AnyClient {
    let mut c = client(server, t, user, role).await;
    join(&mut c, None).await;
    c
}

/// The next message must be `peer_joined` / `peer_left` for `peer`.
pub async fn expect_peer(c: &mut AnyClient, kind: &str, peer: &str, reason: Option<&str>) {
    let env = c.expect(kind).await;
    assert_eq!(env.room.as_deref(), Some(ROOM));
    assert_eq!(env.payload["peer"], peer, "{env:?}");
    if let Some(reason) = reason {
        assert_eq!(env.payload["reason"], reason, "{env:?}");
    }
}

/// A `message` to `to` (or the room) carrying `n`.
pub fn chat(c: &mut AnyClient, to: Option<&str>, n: u64) -> ClientEnvelope {
    let env = c
        .msg("message")
        .room(ROOM)
        .payload(json!({"n": n, "text": format!("{} #{n}", c.name)}));
    match to {
        Some(to) => env.to(to),
        None => env,
    }
}

/// The next message must be `from`'s chat message `n`.
pub async fn expect_chat(c: &mut AnyClient, from: &str, n: u64) {
    let env = c.expect("message").await;
    assert_eq!(env.from.as_deref(), Some(from), "{env:?}");
    assert_eq!(env.payload["n"], n, "{}: {env:?}", c.name);
}

/// Sends a relayed message and checks it arrives at `to` with `from`, `room`, `id` and the
/// payload verbatim.
pub async fn relay(
    from: &mut AnyClient,
    to: &mut AnyClient,
    kind: &str,
    id: Option<&str>,
    payload: Value,
) {
    let mut env = from
        .msg(kind)
        .room(ROOM)
        .to(&to.name.clone())
        .payload(payload.clone());
    env.id = id.map(str::to_owned);
    from.send_ok(env).await;
    let got = to.expect(kind).await;
    assert_eq!(got.room.as_deref(), Some(ROOM));
    assert_eq!(got.from.as_deref(), Some(from.name.as_str()));
    assert_eq!(got.id.as_deref(), id);
    assert_eq!(got.payload, payload);
}

/// The transport `t` switches to when it must change: the other client's, else the next one.
pub fn switched(t: Transport, other: Transport) -> Transport {
    if t != other { other } else { t.next() }
}

/// Checks a resume's `hello`: present whenever the transport changed or on WebSocket, with the
/// session's peer and the last client seq the server accepted.
pub fn check_resume_hello(c: &AnyClient, from: Transport, hello: Option<&ServerEnvelope>) {
    let must = from != c.transport || c.transport == Transport::Ws;
    assert_eq!(
        hello.is_some(),
        must,
        "{}: hello on {from} -> {}",
        c.name,
        c.transport
    );
    if let Some(hello) = hello {
        assert_eq!(hello.payload["peer"], c.name.as_str());
        assert_eq!(hello.payload["resumed"], true);
    }
}

pub async fn resume(c: &mut AnyClient, to: Transport) {
    let from = c.transport;
    let hello = c.resume(to).await;
    check_resume_hello(c, from, hello.as_ref());
}
