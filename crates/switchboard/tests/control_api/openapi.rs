//! The OpenAPI document: every control route described, with its rate limits, security and the
//! bounds taken from the settings.

use serde_json::json;
use switchboard::config::Config;
use switchboard_testkit::{
    api::{Api, refused},
    server::no_address_budgets,
};

#[tokio::test]
async fn the_openapi_document_describes_every_control_route() {
    let api = Api::start(None, no_address_budgets).await;
    let answer = api.get("/openapi.json", None).await;
    assert_eq!(answer.status, 200);
    let doc = answer.json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/v1/accounts", "post"),
        ("/v1/auth/login", "post"),
        ("/v1/auth/refresh", "post"),
        ("/v1/auth/logout", "post"),
        ("/v1/users/me", "get"),
        ("/v1/users/me", "patch"),
        ("/v1/users/{id}", "get"),
        ("/v1/rooms", "post"),
        ("/v1/rooms", "get"),
        ("/v1/rooms/{room}", "get"),
        ("/v1/rooms/{room}", "patch"),
        ("/v1/rooms/{room}", "delete"),
        ("/v1/rooms/{room}/tokens", "post"),
        ("/v1/rooms/{room}/participants", "get"),
        ("/v1/rooms/{room}/participants/{peer}", "delete"),
        ("/v1/rooms/{room}/messages", "post"),
        ("/v1/rooms/{room}/knocks/{ticket}", "post"),
        ("/v1/rooms/{room}/invites", "post"),
        ("/v1/rooms/{room}/invites", "get"),
        ("/v1/rooms/{room}/invites/{invite}", "delete"),
        ("/v1/invites/{code}", "get"),
        ("/v1/invites/{code}/redeem", "post"),
        ("/v1/audit", "get"),
        ("/v1/node", "get"),
    ];
    let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        operations,
        expected.len(),
        "{:?}",
        paths.keys().collect::<Vec<_>>()
    );
    for (path, method) in expected {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path}");
        let responses = operation["responses"].as_object().unwrap();
        // Rate-limited operations say so, with Retry-After.
        let limited = [
            "/v1/accounts",
            "/v1/auth/login",
            "/v1/invites/{code}",
            "/v1/invites/{code}/redeem",
        ]
        .contains(&path)
            || (path, method) == ("/v1/users/me", "patch");
        assert_eq!(responses.contains_key("429"), limited, "{method} {path}");
        // Operations behind a token say which.
        let secured = operation.get("security").is_some();
        assert_eq!(
            secured,
            !path.starts_with("/v1/auth")
                && !path.starts_with("/v1/invites")
                && path != "/v1/accounts",
            "{method} {path}"
        );
    }
    let too_many = &doc["components"]["responses"]["TooManyRequests"];
    assert!(too_many["headers"]["Retry-After"].is_object(), "{too_many}");
    let codes = &doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"];
    assert!(
        codes.as_array().unwrap().contains(&json!("rate_limited")),
        "{codes}"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // Bounds that come from the settings are filled in.
    let max_peers = &doc["components"]["schemas"]["RoomRequest"]["properties"]["max_peers"];
    assert_eq!(
        max_peers["maximum"],
        Config::default().max_peers,
        "{max_peers}"
    );
    // A server without the SFU offers no `sfu` rooms (`auto` rooms stay mesh there).
    assert_eq!(
        doc["components"]["schemas"]["Media"]["enum"],
        json!(["mesh", "auto"])
    );
    // Bodies are objects, never an array of fields.
    let ann = api.user("ann").await;
    let array = api.post("/v1/rooms", Some(&ann), json!([null, null])).await;
    refused(&array, 400, "invalid_message");
}
