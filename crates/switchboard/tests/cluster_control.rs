//! The control plane in cluster mode, with real parts: two `switchboard serve` processes on
//! loopback sharing rooms through the real Redis (a key prefix of each test's own) and their
//! stored rooms through one PostgreSQL database (a schema of each test's own). A change made
//! through one node holds on the other; the live side of a room acts on its whole call,
//! whichever node the request comes to.
//!
//! Without Redis or PostgreSQL these tests fail when `CI` is set and are skipped with a note
//! otherwise.

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_protocol::Role;
use switchboard_store::{Location, testing::TestDb};
use switchboard_testkit::{
    Client, Process, cluster, eventually,
    http::{Answer, send},
    metrics::scrape,
    redis::{available as redis_up, unique_prefix, url as redis_url},
    tokens,
};

/// The two nodes of a test, `node-a` and `node-b`, and their database.
struct Two {
    a: Process,
    b: Process,
    db: TestDb,
    http: reqwest::Client,
}

/// Two nodes of a cluster of their own sharing one fresh PostgreSQL schema; `None` when Redis or
/// PostgreSQL is missing (see [`redis_up`] and [`TestDb::postgres`]).
async fn two_nodes(test: &str) -> Option<Two> {
    if !redis_up().await {
        return None;
    }
    let db = TestDb::postgres().await?;
    let Location::Url(url) = &db.location else {
        unreachable!("a PostgreSQL test database has a URL")
    };
    let prefix = unique_prefix(test);
    let env = [("SWITCHBOARD_DATABASE_URL", url.as_str())];
    let binary = env!("CARGO_BIN_EXE_switchboard");
    // One after the other: the first migrates the schema.
    let a = cluster::node(binary, &redis_url(), &prefix, "node-a", &env).await;
    let b = cluster::node(binary, &redis_url(), &prefix, "node-b", &env).await;
    Some(Two {
        a,
        b,
        db,
        http: reqwest::Client::new(),
    })
}

impl Two {
    /// `method path` on `node` with `token` as the bearer and `body` as JSON.
    async fn call(
        &self,
        node: &Process,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Answer {
        let url = format!("http://{}{path}", node.addr);
        let mut request = self.http.request(method, url).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        send(request).await
    }

    /// Registers `username` through node a and signs in: the access token (good on both nodes).
    async fn user(&self, username: &str) -> String {
        let body = json!({"username": username, "password": "correct horse battery"});
        for path in ["/v1/accounts", "/v1/auth/login"] {
            let url = format!("http://{}{path}", self.a.addr);
            let answer = send(self.http.post(url).json(&body)).await;
            assert!(answer.status < 300, "{path}: {}", answer.body);
            if path == "/v1/auth/login" {
                return answer.json()["access_token"].as_str().unwrap().to_owned();
            }
        }
        unreachable!()
    }

    /// How many policies `node` reloaded on notices so far.
    async fn reloads(node: &Process) -> f64 {
        let m = scrape(&format!("http://{}/metrics", node.addr)).await;
        m.get("cluster_policy_reloads_total")
    }

    /// Waits until `node` reloaded more policies than `before`: it heard of a change.
    async fn heard(node: &Process, before: f64) {
        eventually("the node hears of the change", || async {
            let now = Two::reloads(node).await;
            if now > before { Ok(()) } else { Err(now) }
        })
        .await;
    }

    async fn finish(self) {
        self.a.stop().await;
        self.b.stop().await;
        self.db.remove().await;
    }
}

async fn member(node: &Process, user: &str, role: Role) -> Client {
    let token = tokens::mint(user, "*", role);
    Client::connect(&format!("ws://{}/v1/ws?token={token}", node.addr)).await
}

#[tokio::test]
async fn a_rooms_policy_changed_through_one_node_holds_on_the_other() {
    let Some(two) = two_nodes("ctl-policy").await else {
        return;
    };
    let owner = two.user("owner").await;
    let before = Two::reloads(&two.b).await;
    let made = two
        .call(
            &two.a,
            Method::POST,
            "/v1/rooms",
            &owner,
            Some(json!({"id": "small", "mode": "host_only"})),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    Two::heard(&two.b, before).await;
    // Node b opens the call in the mode stored through node a.
    let mut ann = member(&two.b, "ann", Role::Host).await;
    assert_eq!(ann.join("small", "ann").await.payload["mode"], "host_only");

    let before = Two::reloads(&two.b).await;
    let changed = two
        .call(
            &two.a,
            Method::PATCH,
            "/v1/rooms/small",
            &owner,
            Some(json!({"max_peers": 1})),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    Two::heard(&two.b, before).await;
    // A second member is refused by node b, which learned the limit from node a.
    let mut bob = member(&two.b, "bob", Role::Guest).await;
    let join = bob
        .msg("join")
        .room("small")
        .payload(json!({"peer": "bob"}));
    bob.send(join).await;
    bob.expect_error("room_full").await;

    // Deleted through node a: node b forgets the limit (the room is no one's any more).
    let before = Two::reloads(&two.b).await;
    let deleted = two
        .call(&two.a, Method::DELETE, "/v1/rooms/small", &owner, None)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let closed = ann.expect("room_closed").await;
    assert_eq!(closed.payload["reason"], "deleted");
    Two::heard(&two.b, before).await;
    ann.join("small", "ann").await;
    bob.join("small", "bob").await;
    ann.expect("peer_joined").await;
    two.finish().await;
}

#[tokio::test]
async fn the_live_api_acts_on_members_of_every_node() {
    let Some(two) = two_nodes("ctl-live").await else {
        return;
    };
    let owner = two.user("owner").await;
    let made = two
        .call(
            &two.a,
            Method::POST,
            "/v1/rooms",
            &owner,
            Some(json!({"id": "standup"})),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    // Both members are on node b; the requests go to node a, where nobody is in the call.
    let mut ann = member(&two.b, "ann", Role::Host).await;
    ann.join("standup", "ann").await;
    let mut bob = member(&two.b, "bob", Role::Guest).await;
    bob.join("standup", "bob").await;
    ann.expect("peer_joined").await;

    let listed = two
        .call(
            &two.a,
            Method::GET,
            "/v1/rooms/standup/participants",
            &owner,
            None,
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(
        listed.json(),
        json!({"participants": [
            {"peer": "ann", "user": "ann", "role": "host", "name": null},
            {"peer": "bob", "user": "bob", "role": "guest", "name": null},
        ]})
    );

    let sent = two
        .call(
            &two.a,
            Method::POST,
            "/v1/rooms/standup/messages",
            &owner,
            Some(json!({"payload": {"text": "five minutes left"}})),
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert_eq!(sent.json(), json!({"recipients": 2}));
    for c in [&mut ann, &mut bob] {
        let got = c.expect("announcement").await;
        assert_eq!(got.payload, json!({"text": "five minutes left"}));
        assert_eq!(got.from, None);
    }

    let removed = two
        .call(
            &two.a,
            Method::DELETE,
            "/v1/rooms/standup/participants/bob",
            &owner,
            None,
        )
        .await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    let left = bob.expect("left").await;
    assert_eq!(left.payload["reason"], "kicked");
    let gone = ann.expect("peer_left").await;
    assert_eq!(gone.payload["peer"], "bob");
    assert_eq!(gone.payload["reason"], "kicked");
    // Kept out on every node, as a host's kick keeps it out.
    let mut bob_again = member(&two.a, "bob", Role::Guest).await;
    let join = bob_again
        .msg("join")
        .room("standup")
        .payload(json!({"peer": "bob2"}));
    bob_again.send(join).await;
    bob_again.expect_error("forbidden").await;
    let missing = two
        .call(
            &two.a,
            Method::DELETE,
            "/v1/rooms/standup/participants/bob",
            &owner,
            None,
        )
        .await;
    assert_eq!(missing.status, 404, "{}", missing.body);

    // Members on both nodes; the deletion through node a closes the call for each.
    let mut cat = member(&two.a, "cat", Role::Guest).await;
    cat.join("standup", "cat").await;
    ann.expect("peer_joined").await;
    let deleted = two
        .call(&two.a, Method::DELETE, "/v1/rooms/standup", &owner, None)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    for c in [&mut ann, &mut cat] {
        let closed = c.expect("room_closed").await;
        assert_eq!(closed.payload["reason"], "deleted");
        c.expect_quiet().await;
    }
    // The call is over on both nodes: the room starts afresh.
    ann.join("standup", "ann").await;
    let joined = cat.join("standup", "cat").await;
    assert_eq!(joined.payload["peers"][0]["peer"], "ann", "{joined:?}");
    two.finish().await;
}

impl Two {
    /// A share code of `room` (any number of uses) redeemed through `node` by `name`: its lobby
    /// token.
    async fn lobby_token(&self, node: &Process, owner: &str, room: &str, name: &str) -> String {
        let path = format!("/v1/rooms/{room}/invites");
        let body = json!({"max_uses": null});
        let made = self
            .call(&self.a, Method::POST, &path, owner, Some(body))
            .await;
        assert_eq!(made.status, 201, "{}", made.body);
        let code = made.json()["code"].as_str().unwrap().to_owned();
        let url = format!("http://{}/v1/invites/{code}/redeem", node.addr);
        let answer = send(self.http.post(url).json(&json!({"name": name}))).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.json()["lobby"], true);
        answer.json()["token"].as_str().unwrap().to_owned()
    }
}

/// A session on `node` opened with the lobby `token`, knocking on `room`: it and its ticket.
async fn knocking(node: &Process, token: &str, room: &str) -> (Client, String) {
    let mut guest = Client::connect(&format!("ws://{}/v1/ws?token={token}", node.addr)).await;
    let knock = guest.msg("knock").room(room).id("k");
    guest.send(knock).await;
    let answer = guest.expect("knocking").await;
    assert_eq!(answer.id.as_deref(), Some("k"));
    (guest, answer.payload["ticket"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_guest_knocking_on_one_node_is_answered_by_hosts_on_the_other() {
    let Some(two) = two_nodes("ctl-lobby").await else {
        return;
    };
    let owner = two.user("owner").await;
    let body = json!({"id": "lobbied", "lobby": true});
    let made = (two.call(&two.a, Method::POST, "/v1/rooms", &owner, Some(body))).await;
    assert_eq!(made.status, 201, "{}", made.body);
    let mut ann = member(&two.b, "ann", Role::Host).await;
    ann.join("lobbied", "ann").await;

    // A guest knocks on node a: the host on node b hears it.
    let token = two.lobby_token(&two.a, &owner, "lobbied", "Gus").await;
    let (mut gus, ticket) = knocking(&two.a, &token, "lobbied").await;
    let knock = ann.expect("knock").await;
    assert_eq!(knock.payload, json!({"ticket": ticket, "name": "Gus"}));
    // A host joining later on node a is shown the waiting guest.
    let mut cy = member(&two.a, "cy", Role::Host).await;
    cy.join("lobbied", "cy").await;
    let shown = cy.expect("knock").await;
    assert_eq!(shown.payload["ticket"], ticket);
    ann.expect("peer_joined").await;

    // The host on node b admits: the guest on node a gets its token and joins.
    let admit = ann
        .msg("admit")
        .room("lobbied")
        .id("a")
        .payload(json!({"ticket": ticket}));
    ann.send(admit).await;
    let ended = json!({"ticket": ticket, "outcome": "admitted", "by": "ann"});
    let mine = ann.expect("knock_ended").await;
    assert_eq!(
        (mine.payload, mine.id.as_deref()),
        (ended.clone(), Some("a"))
    );
    assert_eq!(cy.expect("knock_ended").await.payload, ended);
    let admitted = gus.expect("admitted").await;
    assert!(
        admitted.payload["token"]
            .as_str()
            .is_some_and(|t| t.len() > 20)
    );
    let joined = gus.join("lobbied", "gus").await;
    assert_eq!(joined.payload["peers"].as_array().map(Vec::len), Some(2));
    ann.expect("peer_joined").await;
    cy.expect("peer_joined").await;

    // A second guest, knocking on node b, is turned away by the host on node a.
    let token = two.lobby_token(&two.b, &owner, "lobbied", "Hal").await;
    let (mut hal, ticket) = knocking(&two.b, &token, "lobbied").await;
    ann.expect("knock").await;
    cy.expect("knock").await;
    let deny = cy
        .msg("deny")
        .room("lobbied")
        .payload(json!({"ticket": ticket}));
    cy.send(deny).await;
    let denied = hal.expect("denied").await;
    assert_eq!(denied.payload["reason"], "denied");
    for host in [&mut ann, &mut cy] {
        let ended = host.expect("knock_ended").await;
        assert_eq!(ended.payload["outcome"], "denied");
    }
    // And a third by the room's owner, over the API of the node the guest is not on.
    let token = two.lobby_token(&two.a, &owner, "lobbied", "Ida").await;
    let (mut ida, ticket) = knocking(&two.a, &token, "lobbied").await;
    ann.expect("knock").await;
    cy.expect("knock").await;
    let path = format!("/v1/rooms/lobbied/knocks/{ticket}");
    let body = Some(json!({"admit": false}));
    let answered = two
        .call(&two.b, Method::POST, &path, &owner, body.clone())
        .await;
    assert_eq!(answered.status, 204, "{}", answered.body);
    assert_eq!(ida.expect("denied").await.payload["reason"], "denied");
    for host in [&mut ann, &mut cy] {
        let ended = host.expect("knock_ended").await;
        assert_eq!(ended.payload["outcome"], "denied");
        assert_eq!(ended.payload.get("by"), None);
    }
    let again = two.call(&two.a, Method::POST, &path, &owner, body).await;
    assert_eq!(again.status, 404, "{}", again.body);
    for c in [&mut ann, &mut cy, &mut gus, &mut hal, &mut ida] {
        c.expect_quiet().await;
    }
    two.finish().await;
}
