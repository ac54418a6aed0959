//! The control API as tests call it: a [`TestServer`] with its store (SQLite, or a [`TestDb`]),
//! requests with or without a bearer token, and the accounts, rooms and share codes most tests
//! start from.

use reqwest::Method;
use serde_json::{Value, json};
use switchboard::config::Config;
use switchboard_store::testing::TestDb;

use crate::{
    TestServer,
    http::{Answer, send},
};

/// A test server and the requests tests make to its API.
pub struct Api {
    /// The server.
    pub server: TestServer,
    http: reqwest::Client,
}

impl Api {
    /// Starts a server whose store is `db` (a fresh SQLite file in its data dir when `None`), with
    /// `adjust` applied to its settings.
    pub async fn start(db: Option<&TestDb>, adjust: impl FnOnce(&mut Config)) -> Api {
        let url = db.map(|db| match &db.location {
            switchboard_store::Location::Url(url) => url.clone(),
            switchboard_store::Location::SqliteFile(path) => {
                format!("sqlite://{}", path.display())
            }
        });
        let server = TestServer::start_with(|c| {
            c.database_url = url;
            adjust(c);
        })
        .await;
        Api {
            server,
            http: reqwest::Client::new(),
        }
    }

    /// `method path` with `token` as the bearer and `body` as JSON.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self.http.request(method, self.server.http(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        send(request).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Answer {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.call(Method::GET, path, token, None).await
    }

    /// `POST /v1/auth/login`.
    pub async fn login(&self, username: &str, password: &str) -> Answer {
        let body = json!({"username": username, "password": password});
        self.post("/v1/auth/login", None, body).await
    }

    /// `POST /v1/auth/refresh`.
    pub async fn refresh(&self, refresh_token: &str) -> Answer {
        let body = json!({"refresh_token": refresh_token});
        self.post("/v1/auth/refresh", None, body).await
    }

    /// Registers `username` and signs in: the access token.
    pub async fn user(&self, username: &str) -> String {
        let body = json!({"username": username, "password": "correct horse battery"});
        let made = self.post("/v1/accounts", None, body.clone()).await;
        assert_eq!(made.status, 201, "{}", made.body);
        let login = self.post("/v1/auth/login", None, body).await;
        assert_eq!(login.status, 200, "{}", login.body);
        login.json()["access_token"].as_str().unwrap().to_owned()
    }

    /// Makes room `id` as the holder of `token`.
    pub async fn room(&self, token: &str, id: &str) -> Value {
        let made = self
            .post(
                "/v1/rooms",
                Some(token),
                json!({"id": id, "name": "Standup"}),
            )
            .await;
        assert_eq!(made.status, 201, "{}", made.body);
        made.json()
    }

    /// Makes a share code for `room` with `body`: the code.
    pub async fn code(&self, token: &str, room: &str, body: Value) -> String {
        let made = self
            .post(&format!("/v1/rooms/{room}/invites"), Some(token), body)
            .await;
        assert_eq!(made.status, 201, "{}", made.body);
        made.json()["code"].as_str().unwrap().to_owned()
    }
}

/// `answer` is the documented error body with `status` and `code`.
pub fn refused(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.error_code(), code, "{}", answer.body);
}
