//! Plain HTTP requests to a test server, bounded by [`DEADLINE`], and their answers.

use reqwest::{RequestBuilder, header::HeaderMap};
use serde_json::Value;

use crate::DEADLINE;

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body as text.
    pub body: String,
}

impl Answer {
    /// The body as JSON, which it must be.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("JSON ({e}): {}", self.body))
    }

    /// The `error.code` of a JSON error body (empty if there is none).
    pub fn error_code(&self) -> String {
        error_code(&self.json())
    }
}

/// Sends `request` (with [`DEADLINE`] as its timeout) and reads the answer.
pub async fn send(request: RequestBuilder) -> Answer {
    let response = request.timeout(DEADLINE).send().await.expect("HTTP answer");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.expect("a body");
    Answer {
        status,
        headers,
        body,
    }
}

/// Status and JSON body of a plain GET of `url` with `headers`.
pub async fn http_get(url: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let answer = send(request).await;
    (answer.status, answer.json())
}

/// The `error.code` of an error body (`{"error": {"code", "message"}}`); empty if there is none.
pub fn error_code(body: &Value) -> String {
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Checks that `(status, body)` is the documented error answer: the `status` expected, and a body
/// of `{"error": {"code": code, "message": ...}}` with a message and nothing else. The message.
pub fn assert_error(answer: (u16, &Value), status: u16, code: &str) -> String {
    let (got, body) = answer;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "an error explains itself: {body}");
    message.to_owned()
}
