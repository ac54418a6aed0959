//! `GET /v1/node` over real sockets: the node's own figures for an admin (what its hub holds,
//! its version, database and media), refused to other accounts and to anonymous callers. Runs on
//! SQLite and on PostgreSQL.

use switchboard_protocol::Role;
use switchboard_store::testing::TestDb;
use switchboard_testkit::{
    api::{Api, refused},
    server::no_address_budgets,
};

async fn an_admin_sees_what_the_node_holds(db: Option<TestDb>, database: &str) {
    let Some(db) = db else { return };
    let api = Api::start(Some(&db), no_address_budgets).await;
    let ann = api.user("ann").await;
    let carl = api.user("carl").await;
    let store = api.server.running().control().store().clone();
    assert!(store.set_admin("ann", true, 0).await.unwrap());

    refused(&api.get("/v1/node", Some(&carl)).await, 403, "forbidden");
    refused(&api.get("/v1/node", None).await, 401, "unauthorized");

    let idle = api.get("/v1/node", Some(&ann)).await;
    assert_eq!(idle.status, 200, "{}", idle.body);
    let idle = idle.json();
    assert_eq!(idle["sessions"], 0);
    assert_eq!(idle["rooms"], 0);
    assert_eq!(idle["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(idle["database"], database);
    assert_eq!(idle["media_mode"], "auto");
    assert_eq!(idle["sfu"], false);
    assert!(
        idle["node"].is_null() && idle["cluster"].is_null(),
        "{idle}"
    );

    let mut host = api.server.client("user-ann", "standup", Role::Host).await;
    host.join("standup", "ann").await;
    let mut bob = api.server.client("user-bob", "standup", Role::Guest).await;
    bob.join("standup", "bob").await;
    let mut cid = api.server.client("user-cid", "retro", Role::Guest).await;
    cid.join("retro", "cid").await;
    host.expect("peer_joined").await;

    let busy = api.get("/v1/node", Some(&ann)).await.json();
    assert_eq!(busy["sessions"], 3, "{busy}");
    assert_eq!(busy["attached"], 3, "{busy}");
    assert_eq!(busy["rooms"], 2, "{busy}");
    assert_eq!(busy["members"], 3, "{busy}");
}

#[tokio::test]
async fn an_admin_sees_what_the_node_holds_sqlite() {
    an_admin_sees_what_the_node_holds(Some(TestDb::sqlite()), "sqlite").await;
}

#[tokio::test]
async fn an_admin_sees_what_the_node_holds_postgres() {
    an_admin_sees_what_the_node_holds(TestDb::postgres().await, "postgres").await;
}
