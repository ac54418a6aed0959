//! Webhooks over real sockets: a call's events (room_started, participant_joined, participant_left,
//! room_finished) are queued while the receiver is down, survive a restart of the server in the
//! outbox, and reach the receiver once it is up, in the room's order, each signed as the Standard
//! Webhooks specification says: checked by the specification's own Python library (PyPI's
//! `standardwebhooks`, set up by `scripts/ensure-standardwebhooks`), not by our code. A lobby's
//! knocks go only to receivers that asked for them, and their ends (admit, deny) are in the audit
//! log. Runs on SQLite and on PostgreSQL; two nodes sharing a database, on PostgreSQL: one node
//! delivers a room at a time, and the other takes it over when that one stops.

use std::{
    io::Write,
    net::SocketAddr,
    process::{Command, Stdio},
    sync::Arc,
};

use axum::{Router, extract::State, http::HeaderMap, routing::post};
use parking_lot::Mutex;
use serde_json::{Value, json};
use switchboard::control::webhooks::{WebhookEvent, WebhookSettings};
use switchboard_protocol::Role;
use switchboard_store::testing::TestDb;
use switchboard_testkit::{
    Client,
    api::Api,
    eventually,
    metrics::{Scrape, scrape},
    server::no_address_budgets,
};

/// A receiver's secret: `whsec_` and base64 of 32 bytes.
const SECRET: &str = "whsec_c3dpdGNoYm9hcmQgd2ViaG9vayB0ZXN0IGtleSAzMmI=";

/// What the receiver got: the three headers and the body, as received.
#[derive(Debug, Clone)]
struct Delivery {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

type Received = Arc<Mutex<Vec<Delivery>>>;

/// A sample of `scrape`, 0 until it first counts.
fn sample(scrape: &Scrape, key: &str) -> f64 {
    scrape.samples.get(key).copied().unwrap_or(0.0)
}

async fn receive(State(got): State<Received>, headers: HeaderMap, body: String) -> &'static str {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    got.lock().push(Delivery {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
    });
    "ok"
}

/// Serves the receiver on `addr` (a port nobody listened on until now).
async fn receiver(addr: SocketAddr) -> Received {
    let got = Received::default();
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("the reserved port");
    tokio::spawn(async move { axum::serve(listener, app).await });
    got
}

/// Waits until `got` holds `n` distinct events (at least once: a repeat carries the same
/// `webhook-id` and is not counted); them, and their bodies parsed.
async fn delivered(got: &Received, n: usize) -> (Vec<Delivery>, Vec<Value>) {
    let deliveries = eventually("every event delivered", || async {
        let mut unique: Vec<Delivery> = Vec::new();
        for d in got.lock().clone() {
            if !unique.iter().any(|u| u.id == d.id) {
                unique.push(d);
            }
        }
        match unique.len() == n {
            true => Ok(unique),
            false => Err(unique.len()),
        }
    })
    .await;
    let bodies = deliveries
        .iter()
        .map(|d| serde_json::from_str(&d.body).unwrap())
        .collect();
    (deliveries, bodies)
}

/// Checks every delivery's signature with the reference library; `false` when it is not set up
/// (outside CI only: with `CI` set that fails the test).
fn verified_by_the_reference_library(deliveries: &[Delivery]) -> bool {
    let python = std::env::var("SWITCHBOARD_TEST_STANDARDWEBHOOKS").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../target/standardwebhooks-venv/bin/python"
        )
        .into()
    });
    let script = r#"
import json, sys
from standardwebhooks import Webhook
secret, deliveries = json.load(sys.stdin)
hook = Webhook(secret)
for d in deliveries:
    hook.verify(d["body"], {"webhook-id": d["id"], "webhook-timestamp": d["timestamp"],
                            "webhook-signature": d["signature"]})
try:
    d = dict(deliveries[0], body=deliveries[0]["body"] + " ")
    hook.verify(d["body"], {"webhook-id": d["id"], "webhook-timestamp": d["timestamp"],
                            "webhook-signature": d["signature"]})
except Exception:
    print("verified", len(deliveries))
"#;
    let child = Command::new(&python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("CI is set and {python} cannot run ({e}): run scripts/ensure-standardwebhooks")
        }
        Err(e) => {
            eprintln!(
                "skipping the reference check: {python}: {e} (scripts/ensure-standardwebhooks)"
            );
            return false;
        }
    };
    let input: Vec<Value> = deliveries
        .iter()
        .map(|d| json!({"id": d.id, "timestamp": d.timestamp, "signature": d.signature, "body": d.body}))
        .collect();
    let input = serde_json::to_vec(&json!([SECRET, input])).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim() == format!("verified {}", deliveries.len()),
        "the reference library refused a signature (or accepted a changed body): {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

async fn events_wait_out_a_receiver_down_and_a_restart(db: Option<TestDb>) {
    let Some(db) = db else { return };
    // A port with nobody on it: the receiver is down (connections refused) until it is served.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let settings = move |c: &mut switchboard::config::Config| {
        no_address_budgets(c);
        c.webhooks = vec![WebhookSettings {
            url: format!("http://{addr}/hook"),
            events: Vec::new(),
            secret: SECRET.into(),
        }];
        c.webhook_delivery.retry_base_ms = 20;
        c.webhook_delivery.retry_max_ms = 100;
    };
    let mut api = Api::start(Some(&db), settings).await;
    let mut ann = api.server.client("user-ann", "standup", Role::Host).await;
    ann.join("standup", "ann").await;
    let mut bob = api.server.client("user-bob", "standup", Role::Guest).await;
    bob.join("standup", "bob").await;
    ann.expect("peer_joined").await;
    bob.close().await;
    ann.expect("peer_left").await;
    ann.close().await;
    let metrics = api.server.http("/metrics");
    eventually("failed attempts at the receiver that is down", || async {
        let m = scrape(&metrics).await;
        let failed = sample(&m, "webhook_deliveries_total{result=\"failed\"}");
        let waiting = sample(&m, "webhook_outbox_gauge");
        match failed >= 2.0 && waiting == 6.0 {
            true => Ok(()),
            false => Err((failed, waiting)),
        }
    })
    .await;

    // Restarted with the events still in the outbox; then the receiver comes up.
    api.server.shutdown().await;
    drop(api);
    let api = Api::start(Some(&db), settings).await;
    let got = receiver(addr).await;
    let (deliveries, bodies) = delivered(&got, 6).await;
    let types: Vec<&str> = bodies.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "room_started",
            "participant_joined",
            "participant_joined",
            "participant_left",
            "participant_left",
            "room_finished"
        ],
        "in the room's order"
    );
    let peers: Vec<&str> = bodies[1..5]
        .iter()
        .map(|b| b["data"]["peer"].as_str().unwrap())
        .collect();
    assert_eq!(peers, ["ann", "bob", "bob", "ann"]);
    assert_eq!(bodies[2]["data"]["user"], "user-bob");
    assert!(bodies.iter().all(|b| b["data"]["room"] == "standup"));
    verified_by_the_reference_library(&deliveries);

    eventually("the outbox emptied", || async {
        let m = scrape(&api.server.http("/metrics")).await;
        let delivered = sample(&m, "webhook_deliveries_total{result=\"delivered\"}");
        match (sample(&m, "webhook_outbox_gauge"), delivered) {
            (0.0, delivered) if delivered >= 6.0 => Ok(()),
            other => Err(other),
        }
    })
    .await;
    drop(api);
    db.remove().await;
}

#[tokio::test]
async fn events_wait_out_a_receiver_down_and_a_restart_sqlite() {
    events_wait_out_a_receiver_down_and_a_restart(Some(TestDb::sqlite())).await;
}

#[tokio::test]
async fn events_wait_out_a_receiver_down_and_a_restart_postgres() {
    events_wait_out_a_receiver_down_and_a_restart(TestDb::postgres().await).await;
}

/// A session opened with the lobby token a redemption of `code` gives, knocking on `standup`:
/// the client and its ticket.
async fn knock(api: &Api, code: &str, name: &str) -> (Client, String) {
    let redeem = format!("/v1/invites/{code}/redeem");
    let token = api.post(&redeem, None, json!({"name": name})).await.json();
    let url = format!(
        "{}?token={}",
        api.server.ws_url(),
        token["token"].as_str().unwrap()
    );
    let mut guest = Client::connect(&url).await;
    let knock = guest.msg("knock").room("standup");
    guest.send(knock).await;
    let ticket = guest.expect("knocking").await.payload["ticket"].clone();
    (guest, ticket.as_str().unwrap().to_owned())
}

async fn knocks_reach_the_receivers_that_asked_and_the_audit_log(db: Option<TestDb>) {
    let Some(db) = db else { return };
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let got = receiver(addr).await;
    let api = Api::start(Some(&db), move |c| {
        no_address_budgets(c);
        c.webhooks = vec![WebhookSettings {
            url: format!("http://{addr}/hook"),
            events: vec![WebhookEvent::Knock, WebhookEvent::InviteRedeemed],
            secret: SECRET.into(),
        }];
    })
    .await;
    let ann = api.user("ann").await;
    let store = api.server.running().control().store().clone();
    assert!(store.set_admin("ann", true, 0).await.unwrap());
    let room = json!({"id": "standup", "lobby": true});
    assert_eq!(api.post("/v1/rooms", Some(&ann), room).await.status, 201);
    let code = api.code(&ann, "standup", json!({"max_uses": null})).await;
    let mut host = api.server.client("user-ann", "standup", Role::Host).await;
    host.join("standup", "ann").await;

    let (mut gus, admitted) = knock(&api, &code, "Gus").await;
    host.expect("knock").await;
    let admit = host
        .msg("admit")
        .room("standup")
        .payload(json!({"ticket": admitted}));
    host.send(admit).await;
    host.expect("knock_ended").await;
    gus.expect("admitted").await;
    let (mut gail, denied) = knock(&api, &code, "Gail").await;
    host.expect("knock").await;
    let path = format!("/v1/rooms/standup/knocks/{denied}");
    assert_eq!(
        api.post(&path, Some(&ann), json!({"admit": false}))
            .await
            .status,
        204
    );
    gail.expect("denied").await;

    // Only what the receiver asked for: no room_started, participant_joined, ...
    let (_, bodies) = delivered(&got, 4).await;
    let types: Vec<&str> = bodies.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["invite_redeemed", "knock", "invite_redeemed", "knock"]
    );
    assert_eq!(bodies[1]["data"]["ticket"], admitted.as_str());
    assert_eq!(bodies[1]["data"]["name"], "Gus");
    assert_eq!(
        bodies[0]["data"]["guest"], bodies[1]["data"]["user"],
        "the redeeming guest knocks"
    );

    let lines = eventually("the knocks' ends in the audit log", || async {
        let page = api
            .get("/v1/audit?room=standup&limit=500", Some(&ann))
            .await
            .json();
        let lines = page["lines"].as_array().unwrap().clone();
        let kinds: Vec<String> = lines
            .iter()
            .map(|l| l["kind"].as_str().unwrap().to_owned())
            .collect();
        match kinds.iter().any(|k| k == "deny") {
            true => Ok(lines),
            false => Err(kinds),
        }
    })
    .await;
    let line = |kind: &str| lines.iter().find(|l| l["kind"] == kind).unwrap().clone();
    assert_eq!(line("admit")["subject"], admitted.as_str());
    assert_eq!(line("admit")["detail"]["by"], "ann");
    assert_eq!(line("deny")["subject"], denied.as_str());
    assert_eq!(
        line("deny")["detail"]["by"],
        Value::Null,
        "decided over the API"
    );
    assert_eq!(lines.iter().filter(|l| l["kind"] == "knock").count(), 2);
    host.close().await;
    drop(api);
    db.remove().await;
}

#[tokio::test]
async fn knocks_reach_the_receivers_that_asked_and_the_audit_log_sqlite() {
    knocks_reach_the_receivers_that_asked_and_the_audit_log(Some(TestDb::sqlite())).await;
}

#[tokio::test]
async fn knocks_reach_the_receivers_that_asked_and_the_audit_log_postgres() {
    knocks_reach_the_receivers_that_asked_and_the_audit_log(TestDb::postgres().await).await;
}

/// A receiver that holds every request arriving while its gate is closed and answers it 503 when
/// the gate opens (by then its sender may be gone), and answers 200 after: what came in, by
/// `webhook-id`, and the deliveries it accepted.
struct GatedReceiver {
    arrivals: Arc<Mutex<Vec<String>>>,
    accepted: Received,
    open: tokio::sync::watch::Sender<bool>,
}

#[derive(Clone)]
struct Gate {
    arrivals: Arc<Mutex<Vec<String>>>,
    accepted: Received,
    open: tokio::sync::watch::Receiver<bool>,
}

async fn gated(
    State(gate): State<Gate>,
    headers: HeaderMap,
    body: String,
) -> axum::http::StatusCode {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    gate.arrivals.lock().push(id.clone());
    let mut open = gate.open.clone();
    if !*open.borrow_and_update() {
        let _ = open.wait_for(|o| *o).await;
        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
    }
    gate.accepted.lock().push(Delivery {
        id,
        timestamp: String::new(),
        signature: String::new(),
        body,
    });
    axum::http::StatusCode::OK
}

async fn gated_receiver(addr: SocketAddr) -> GatedReceiver {
    let (open, opened) = tokio::sync::watch::channel(false);
    let gate = Gate {
        arrivals: Arc::default(),
        accepted: Received::default(),
        open: opened,
    };
    let app = Router::new()
        .route("/hook", post(gated))
        .with_state(gate.clone());
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    GatedReceiver {
        arrivals: gate.arrivals,
        accepted: gate.accepted,
        open,
    }
}

/// Two nodes sharing one PostgreSQL database: while one delivers a room's event, the other
/// leaves the room alone (its events are leased); when the delivering node stops, the other
/// takes the room over and delivers each event once, in the room's order. (A node that dies
/// without stopping loses its leases when they run out: `switchboard-store`'s
/// `tests/webhook_leases.rs`.)
#[tokio::test]
async fn a_second_node_takes_over_a_room_when_its_deliverer_stops_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let receiver = gated_receiver(addr).await;
    let settings = move |c: &mut switchboard::config::Config| {
        no_address_budgets(c);
        c.webhooks = vec![WebhookSettings {
            url: format!("http://{addr}/hook"),
            events: Vec::new(),
            secret: SECRET.into(),
        }];
        // The held attempt must not time out while the test looks.
        c.webhook_delivery.timeout_ms = 60_000;
        c.webhook_delivery.retry_base_ms = 20;
        c.webhook_delivery.retry_max_ms = 100;
    };
    let mut first = Api::start(Some(&db), settings).await;
    let mut ann = first.server.client("user-ann", "standup", Role::Host).await;
    ann.join("standup", "ann").await;
    let mut bob = first
        .server
        .client("user-bob", "standup", Role::Guest)
        .await;
    bob.join("standup", "bob").await;
    ann.expect("peer_joined").await;
    bob.close().await;
    ann.expect("peer_left").await;
    ann.close().await;
    eventually("the first node sending the room's first event", || async {
        match receiver.arrivals.lock().len() {
            1 => Ok(()),
            n => Err(n),
        }
    })
    .await;

    // The second node polls the outbox every second: in three, it has looked and left the room
    // to the first.
    let second = Api::start(Some(&db), settings).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(receiver.arrivals.lock().len(), 1, "one sender per room");

    first.server.shutdown().await;
    drop(first);
    receiver.open.send_replace(true);
    let (_, bodies) = delivered(&receiver.accepted, 6).await;
    let types: Vec<&str> = bodies.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "room_started",
            "participant_joined",
            "participant_joined",
            "participant_left",
            "participant_left",
            "room_finished"
        ],
        "in the room's order"
    );
    // Once each: nothing more arrives once the outbox is empty.
    eventually("the outbox emptied", || async {
        let m = scrape(&second.server.http("/metrics")).await;
        match sample(&m, "webhook_outbox_gauge") {
            0.0 => Ok(()),
            depth => Err(depth),
        }
    })
    .await;
    let accepted: Vec<String> = receiver
        .accepted
        .lock()
        .iter()
        .map(|d| d.id.clone())
        .collect();
    let mut unique = accepted.clone();
    unique.dedup();
    assert_eq!(accepted.len(), 6, "each delivered once: {accepted:?}");
    assert_eq!(unique, accepted);
    drop(second);
    db.remove().await;
}
