//! HTTP error answers: every refusal is `{"error":{"code","message"}}` with the code's status.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;
use switchboard_protocol::SignalError;

/// A [`SignalError`] answering an HTTP request.
#[derive(Debug)]
pub struct ApiError(pub SignalError);

impl From<SignalError> for ApiError {
    fn from(e: SignalError) -> Self {
        ApiError(e)
    }
}

/// A 429 answer that says when to try again (`Retry-After`, whole seconds, at least 1).
pub struct TooManyRequests {
    /// What was limited.
    pub error: SignalError,
    /// Until a request would be admitted.
    pub retry_after: std::time::Duration,
}

impl IntoResponse for TooManyRequests {
    fn into_response(self) -> Response {
        let seconds = self.retry_after.as_secs_f64().ceil().max(1.0) as u64;
        let mut response = ApiError(self.error).into_response();
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, seconds.into());
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.0.code();
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({"error": {"code": code.as_str(), "message": self.0.to_string()}});
        (status, Json(body)).into_response()
    }
}
