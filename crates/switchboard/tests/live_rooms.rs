//! Stored rooms in the signaling hub, over real sockets: joins follow a stored room's policy
//! (member limit, starting mode; kept across a restart), deleting the room closes its call, the
//! live API lists, removes and messages the members of a call, and share-code guests of a room
//! whose lobby is on knock and wait for a host. Every case runs on SQLite and on PostgreSQL.

use reqwest::Method;
use serde_json::json;
use switchboard_protocol::Role;
use switchboard_store::testing::TestDb;
use switchboard_testkit::{
    Client,
    api::{Api, refused},
    server::no_address_budgets,
};

/// `user`'s connected client for `room` (a token the server signed, as an app's backend would).
async fn member(api: &Api, user: &str, room: &str, role: Role) -> Client {
    api.server.client(user, room, role).await
}

async fn joins_follow_the_stored_policy(db: Option<TestDb>) {
    let Some(db) = db else { return };
    let api = Api::start(Some(&db), no_address_budgets).await;
    let ann = api.user("ann").await;
    let body = json!({"id": "standup", "max_peers": 2, "mode": "host_only"});
    let made = api.post("/v1/rooms", Some(&ann), body).await;
    assert_eq!(made.status, 201, "{}", made.body);
    let sfu = json!({"id": "big", "media": "sfu"});
    refused(
        &api.post("/v1/rooms", Some(&ann), sfu).await,
        400,
        "invalid_message",
    );

    let mut host = member(&api, "ann", "standup", Role::Host).await;
    assert_eq!(
        host.join("standup", "ann").await.payload["mode"],
        "host_only"
    );
    let mut bob = member(&api, "bob", "standup", Role::Guest).await;
    bob.join("standup", "bob").await;
    host.expect("peer_joined").await;
    let mut cat = member(&api, "cat", "standup", Role::Guest).await;
    let join = cat
        .msg("join")
        .room("standup")
        .payload(json!({"peer": "cat"}));
    cat.send(join).await;
    cat.expect_error("room_full").await;

    // A new limit holds from the next join.
    let raised = api
        .call(
            Method::PATCH,
            "/v1/rooms/standup",
            Some(&ann),
            Some(json!({"max_peers": 3})),
        )
        .await;
    assert_eq!(raised.status, 200, "{}", raised.body);
    cat.join("standup", "cat").await;
    host.expect("peer_joined").await;
    bob.expect("peer_joined").await;

    // Deleting the stored room ends its call; the id is an ordinary room again.
    let deleted = api
        .call(Method::DELETE, "/v1/rooms/standup", Some(&ann), None)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    for client in [&mut host, &mut bob, &mut cat] {
        let closed = client.expect("room_closed").await;
        assert_eq!(closed.room.as_deref(), Some("standup"));
        assert_eq!(closed.payload, json!({"reason": "deleted"}));
    }
    assert_eq!(
        host.join("standup", "ann").await.payload["mode"],
        "free_for_all"
    );
    host.close().await;
    bob.close().await;
    cat.close().await;

    // A restarted server enforces the rooms it stored before.
    let small = json!({"id": "small", "max_peers": 1, "mode": "host_only"});
    assert_eq!(api.post("/v1/rooms", Some(&ann), small).await.status, 201);
    let mut api = api;
    api.server.shutdown().await;
    let api = Api::start(Some(&db), no_address_budgets).await;
    let mut first = member(&api, "ann", "small", Role::Host).await;
    assert_eq!(
        first.join("small", "ann").await.payload["mode"],
        "host_only"
    );
    let mut second = member(&api, "bob", "small", Role::Guest).await;
    let join = second
        .msg("join")
        .room("small")
        .payload(json!({"peer": "bob"}));
    second.send(join).await;
    second.expect_error("room_full").await;
    drop(api);
    db.remove().await;
}

#[tokio::test]
async fn joins_follow_the_stored_policy_sqlite() {
    joins_follow_the_stored_policy(Some(TestDb::sqlite())).await;
}

#[tokio::test]
async fn joins_follow_the_stored_policy_postgres() {
    joins_follow_the_stored_policy(TestDb::postgres().await).await;
}

async fn the_owner_lists_removes_and_messages_members(db: Option<TestDb>) {
    let Some(db) = db else { return };
    let api = Api::start(Some(&db), no_address_budgets).await;
    let ann = api.user("ann").await;
    let bob_account = api.user("bob").await;
    api.room(&ann, "standup").await;
    let mut host = member(&api, "ann", "standup", Role::Host).await;
    host.join("standup", "ann").await;
    let mut bob = member(&api, "bob", "standup", Role::Guest).await;
    bob.join("standup", "bob").await;
    host.expect("peer_joined").await;

    let listed = api.get("/v1/rooms/standup/participants", Some(&ann)).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(
        listed.json(),
        json!({"participants": [
            {"peer": "ann", "user": "ann", "role": "host", "name": null},
            {"peer": "bob", "user": "bob", "role": "guest", "name": null},
        ]})
    );
    // Another account's room, and a room nobody stored, are not found.
    for (path, token) in [
        ("/v1/rooms/standup/participants", &bob_account),
        ("/v1/rooms/elsewhere/participants", &ann),
    ] {
        refused(&api.get(path, Some(token)).await, 404, "not_found");
    }
    let stranger = api
        .post(
            "/v1/rooms/standup/messages",
            Some(&bob_account),
            json!({"payload": {}}),
        )
        .await;
    refused(&stranger, 404, "not_found");

    // A server message reaches everyone, its payload as written, from nobody.
    let payload = json!({"text": "five minutes left", "n": [1, 2.5]});
    let sent = api
        .post(
            "/v1/rooms/standup/messages",
            Some(&ann),
            json!({"payload": payload}),
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert_eq!(sent.json(), json!({"recipients": 2}));
    for client in [&mut host, &mut bob] {
        let got = client.expect("announcement").await;
        assert_eq!(got.room.as_deref(), Some("standup"));
        assert_eq!(got.from, None);
        assert_eq!(got.payload, payload);
    }
    let big = "x".repeat(16 * 1024);
    for (body, status, code) in [
        (json!({"payload": [1]}), 400, "invalid_message"),
        (json!({"payload": "text"}), 400, "invalid_message"),
        (json!({}), 400, "invalid_message"),
        (json!({"payload": {}, "to": "bob"}), 400, "invalid_message"),
        (json!({"payload": {"big": big}}), 413, "payload_too_large"),
    ] {
        let answer = api
            .post("/v1/rooms/standup/messages", Some(&ann), body)
            .await;
        refused(&answer, status, code);
    }

    // Removing a member is a kick: it is out, told so, and cannot come back while the call lasts.
    let removed = api
        .call(
            Method::DELETE,
            "/v1/rooms/standup/participants/bob",
            Some(&ann),
            None,
        )
        .await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    let left = bob.expect("left").await;
    assert_eq!(left.payload, json!({"reason": "kicked"}));
    let gone = host.expect("peer_left").await;
    assert_eq!(gone.payload, json!({"peer": "bob", "reason": "kicked"}));
    let listed = api
        .get("/v1/rooms/standup/participants", Some(&ann))
        .await
        .json();
    assert_eq!(listed["participants"].as_array().map(Vec::len), Some(1));
    for peer in ["bob", "not a peer id!"] {
        let again = api
            .call(
                Method::DELETE,
                &format!("/v1/rooms/standup/participants/{peer}"),
                Some(&ann),
                None,
            )
            .await;
        refused(&again, 404, "not_found");
    }
    let rejoin = bob
        .msg("join")
        .room("standup")
        .payload(json!({"peer": "bob"}));
    bob.send(rejoin).await;
    bob.expect_error("forbidden").await;
    host.expect_quiet().await;
    drop(api);
    db.remove().await;
}

#[tokio::test]
async fn the_owner_lists_removes_and_messages_members_sqlite() {
    the_owner_lists_removes_and_messages_members(Some(TestDb::sqlite())).await;
}

#[tokio::test]
async fn the_owner_lists_removes_and_messages_members_postgres() {
    the_owner_lists_removes_and_messages_members(TestDb::postgres().await).await;
}

/// Redeems `code` with `name`: the lobby token.
async fn lobby_token(api: &Api, code: &str, name: &str) -> String {
    let answer = api
        .post(
            &format!("/v1/invites/{code}/redeem"),
            None,
            json!({"name": name}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let token = answer.json();
    assert_eq!(token["lobby"], true, "{token}");
    token["token"].as_str().unwrap().to_owned()
}

/// A session opened with `token`, knocking on `standup`: the client and its ticket.
async fn knocking(api: &Api, token: &str) -> (Client, String) {
    let mut guest = Client::connect(&format!("{}?token={token}", api.server.ws_url())).await;
    let knock = guest.msg("knock").room("standup").id("k");
    guest.send(knock).await;
    let answer = guest.expect("knocking").await;
    assert_eq!(answer.id.as_deref(), Some("k"));
    let ticket = answer.payload["ticket"].as_str().unwrap().to_owned();
    (guest, ticket)
}

async fn guests_knock_and_hosts_let_them_in(db: Option<TestDb>) {
    let Some(db) = db else { return };
    let api = Api::start(Some(&db), |c| {
        no_address_budgets(c);
        c.knock_timeout_ms = 1000;
    })
    .await;
    let ann = api.user("ann").await;
    let bob_account = api.user("bob").await;
    let body = json!({"id": "standup", "lobby": true});
    assert_eq!(api.post("/v1/rooms", Some(&ann), body).await.status, 201);
    let code = api.code(&ann, "standup", json!({"max_uses": null})).await;
    let mut host = member(&api, "ann", "standup", Role::Host).await;
    host.join("standup", "ann").await;

    // A lobby token's session cannot join; it knocks, and the host hears it.
    let (mut gus, ticket) = knocking(&api, &lobby_token(&api, &code, "Gus").await).await;
    let join = gus
        .msg("join")
        .room("standup")
        .payload(json!({"peer": "gus"}));
    gus.send(join).await;
    gus.expect_error("forbidden").await;
    let knock = host.expect("knock").await;
    assert_eq!(knock.room.as_deref(), Some("standup"));
    assert_eq!(knock.payload, json!({"ticket": ticket, "name": "Gus"}));

    // The host admits: the guest gets a room token and joins on the same session.
    let admit = host
        .msg("admit")
        .room("standup")
        .id("a")
        .payload(json!({"ticket": ticket}));
    host.send(admit).await;
    let ended = host.expect("knock_ended").await;
    assert_eq!(ended.id.as_deref(), Some("a"));
    assert_eq!(
        ended.payload,
        json!({"ticket": ticket, "outcome": "admitted", "by": "ann"})
    );
    let admitted = gus.expect("admitted").await;
    let room_token = admitted.payload["token"].as_str().unwrap().to_owned();
    let joined = gus.join("standup", "gus").await;
    assert_eq!(joined.payload["peers"][0]["peer"], "ann");
    assert_eq!(host.expect("peer_joined").await.payload["name"], "Gus");
    gus.close().await;
    host.expect("peer_left").await;
    // The room token is an ordinary one: a later session joins with it.
    let mut again = Client::connect(&format!("{}?token={room_token}", api.server.ws_url())).await;
    again.join("standup", "gus").await;
    host.expect("peer_joined").await;

    // The owner turns the next guest away over the API; only the owner may.
    let (mut gail, ticket) = knocking(&api, &lobby_token(&api, &code, "Gail").await).await;
    host.expect("knock").await;
    let path = format!("/v1/rooms/standup/knocks/{ticket}");
    let stranger = api
        .post(&path, Some(&bob_account), json!({"admit": true}))
        .await;
    refused(&stranger, 404, "not_found");
    let denied = api.post(&path, Some(&ann), json!({"admit": false})).await;
    assert_eq!(denied.status, 204, "{}", denied.body);
    assert_eq!(
        gail.expect("denied").await.payload,
        json!({"reason": "denied"})
    );
    let ended = host.expect("knock_ended").await;
    assert_eq!(
        ended.payload,
        json!({"ticket": ticket, "outcome": "denied"})
    );
    let spent = api.post(&path, Some(&ann), json!({"admit": true})).await;
    refused(&spent, 404, "not_found");
    refused(
        &api.post(&path, Some(&ann), json!({"admit": "yes"})).await,
        400,
        "invalid_message",
    );

    // Nobody answers the next one within knock_timeout_ms.
    let (mut hal, ticket) = knocking(&api, &lobby_token(&api, &code, "Hal").await).await;
    host.expect("knock").await;
    assert_eq!(
        hal.expect("denied").await.payload,
        json!({"reason": "expired"})
    );
    let ended = host.expect("knock_ended").await;
    assert_eq!(
        ended.payload,
        json!({"ticket": ticket, "outcome": "expired"})
    );
    drop(api);
    db.remove().await;
}

#[tokio::test]
async fn guests_knock_and_hosts_let_them_in_sqlite() {
    guests_knock_and_hosts_let_them_in(Some(TestDb::sqlite())).await;
}

#[tokio::test]
async fn guests_knock_and_hosts_let_them_in_postgres() {
    guests_knock_and_hosts_let_them_in(TestDb::postgres().await).await;
}
