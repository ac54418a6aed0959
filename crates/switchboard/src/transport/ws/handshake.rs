//! The HTTP side of opening a WebSocket (RFC 6455 section 4.2): checks the upgrade request,
//! answers `101 Switching Protocols`, and hands over the raw TCP socket once hyper lets go of it.

use std::io;

use axum::{
    body::Body,
    extract::FromRequestParts,
    http::{
        HeaderMap, HeaderName, HeaderValue, Method, StatusCode,
        header::{
            CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
        },
        request::Parts,
    },
    response::{IntoResponse, Response},
};
use base64::Engine;
use bytes::Bytes;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use switchboard_protocol::SignalError;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::wire::Upgraded;

use crate::error::ApiError;

/// A valid WebSocket upgrade request, not yet answered.
pub struct Upgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

/// Why a request to the WebSocket endpoint is not a WebSocket upgrade; answered with 400
/// `invalid_message`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UpgradeRejection(&'static str);

impl IntoResponse for UpgradeRejection {
    fn into_response(self) -> Response {
        let e = SignalError::invalid(format!("expected a WebSocket upgrade: {}", self.0));
        ApiError(e).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = UpgradeRejection;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if parts.method != Method::GET {
            return Err(UpgradeRejection("the method must be GET"));
        }
        if !has_token(&parts.headers, UPGRADE, "websocket") {
            return Err(UpgradeRejection(
                "the `Upgrade: websocket` header is missing",
            ));
        }
        if !has_token(&parts.headers, CONNECTION, "upgrade") {
            return Err(UpgradeRejection(
                "the `Connection: upgrade` header is missing",
            ));
        }
        if parts
            .headers
            .get(SEC_WEBSOCKET_VERSION)
            .map(HeaderValue::as_bytes)
            != Some(b"13")
        {
            return Err(UpgradeRejection("`Sec-WebSocket-Version: 13` is required"));
        }
        let key = parts
            .headers
            .get(SEC_WEBSOCKET_KEY)
            .filter(|key| is_valid_key(key.as_bytes()))
            .cloned()
            .ok_or(UpgradeRejection(
                "`Sec-WebSocket-Key` must be 16 bytes in base64",
            ))?;
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or(UpgradeRejection("this connection cannot be upgraded"))?;
        Ok(Upgrade { key, on_upgrade })
    }
}

impl Upgrade {
    /// The `101` answer, and the socket once the answer is sent, with any bytes the client sent
    /// after its request that the HTTP server already read.
    pub fn accept(
        self,
    ) -> (
        Response,
        impl Future<Output = io::Result<(Upgraded, Bytes)>> + Send,
    ) {
        let accept = tungstenite::handshake::derive_accept_key(self.key.as_bytes());
        let response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(CONNECTION, "upgrade")
            .header(UPGRADE, "websocket")
            .header(SEC_WEBSOCKET_ACCEPT, accept)
            .body(Body::empty())
            .expect("static headers are valid");
        let upgraded = async move {
            let upgraded = self.on_upgrade.await.map_err(io::Error::other)?;
            let upgraded = match upgraded.downcast::<TokioIo<TcpStream>>() {
                Ok(plain) => return Ok((Upgraded::Tcp(plain.io.into_inner()), plain.read_buf)),
                Err(other) => other,
            };
            let tls = upgraded
                .downcast::<TokioIo<TlsStream<TcpStream>>>()
                .map_err(|_| io::Error::other("the upgraded connection is not a TCP socket"))?;
            Ok((Upgraded::Tls(Box::new(tls.io.into_inner())), tls.read_buf))
        };
        (response, upgraded)
    }
}

/// Whether a comma-separated header lists `token` (case-insensitively).
fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

fn is_valid_key(key: &[u8]) -> bool {
    base64::engine::general_purpose::STANDARD
        .decode(key)
        .is_ok_and(|decoded| decoded.len() == 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_tokens_are_matched_in_lists_and_any_case() {
        let mut headers = HeaderMap::new();
        headers.append(CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert!(has_token(&headers, CONNECTION, "upgrade"));
        assert!(!has_token(&headers, CONNECTION, "close"));
        assert!(!has_token(&headers, UPGRADE, "websocket"));
    }

    #[test]
    fn the_key_must_be_sixteen_bytes() {
        assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZQ=="));
        assert!(!is_valid_key(b"not base64!"));
    }
}
