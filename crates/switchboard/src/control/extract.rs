//! What control-plane handlers take from a request, each refusing with the server's JSON error
//! body (axum's own extractors answer in plain text), and [`Refused`], what they answer when they
//! refuse.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Query, Request},
    http::request::Parts,
    response::{IntoResponse, Response},
};
use serde::de::DeserializeOwned;
use switchboard_protocol::SignalError;
use switchboard_store::StoreError;

use super::Control;
use crate::{
    auth::token_from,
    error::{ApiError, TooManyRequests},
};

/// A refusal: the JSON error body with its code's status (and `Retry-After` on 429).
pub struct Refused(Response);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        self.0
    }
}

impl From<SignalError> for Refused {
    fn from(e: SignalError) -> Self {
        Refused(ApiError(e).into_response())
    }
}

impl From<TooManyRequests> for Refused {
    fn from(e: TooManyRequests) -> Self {
        Refused(e.into_response())
    }
}

/// A store failure the handler did not expect (a conflict it expects is matched before `?`):
/// logged, and `internal` to the client.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(event = "store.failed", error = %e, "control-plane store call failed");
        ApiError(SignalError::Internal)
    }
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        Refused(ApiError::from(e).into_response())
    }
}

/// A JSON request body; unknown fields are refused where the type says so.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Refused;

    async fn from_request(request: Request, state: &S) -> Result<Self, Refused> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|e| Refused(e.into_response()))?;
        // serde would also read a struct from an array of its fields.
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(SignalError::invalid("the request body must be a JSON object").into());
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| SignalError::invalid(format!("bad request body: {e}")).into())
    }
}

/// A JSON number that is whole, as `T`: `10` or `10.0` (JSON Schema's `integer` is both); for
/// optional fields (`#[serde(default, deserialize_with = "whole")]`).
pub fn whole<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::{Deserialize, de::Error};
    let Some(number) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let value = number
        .as_i64()
        .or_else(|| {
            let float = number.as_f64()?;
            // Beyond 2^53 a float is no exact whole number.
            (float.fract() == 0.0 && float.abs() < 9.0e15).then_some(float as i64)
        })
        .ok_or_else(|| D::Error::custom(format!("expected a whole number, got {number}")))?;
    T::try_from(value)
        .map(Some)
        .map_err(|_| D::Error::custom(format!("{value} is out of range")))
}

/// [`whole`] for a field a patch may clear: absent is `None`, `null` is `Some(None)`.
pub fn whole_or_null<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    whole(d).map(Some)
}

/// Path parameters.
pub struct PathParams<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathParams<T> {
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Refused> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| PathParams(value))
            .map_err(|e| SignalError::invalid(format!("bad path: {}", e.body_text())).into())
    }
}

/// Query parameters.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Refused> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| QueryParams(value))
            .map_err(|e| SignalError::invalid(format!("bad query: {}", e.body_text())).into())
    }
}

/// The account a request acts for: the `sub` of its access token (`Authorization: Bearer`).
pub struct Caller {
    /// The account's id.
    pub user: String,
}

impl FromRequestParts<Control> for Caller {
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, control: &Control) -> Result<Self, Refused> {
        let token = token_from(&parts.headers, None).ok_or_else(|| {
            SignalError::Unauthorized("an access token is required (Authorization: Bearer)".into())
        })?;
        let user = control.0.access.verify(token)?;
        Ok(Caller { user })
    }
}
