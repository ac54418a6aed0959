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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.0.code();
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({"error": {"code": code.as_str(), "message": self.0.to_string()}});
        (status, Json(body)).into_response()
    }
}
