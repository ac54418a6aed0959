//! The service each HTTP request meets first. The three session endpoints that carry every
//! message of the HTTP transports (`POST .../messages`, `GET .../events`, `GET .../poll`) are
//! served here directly; everything else goes to the router.
//!
//! SSE and long-poll make a request per posted message and one per poll. Through the router each
//! paid for matching, for cloning its route's boxed stack of layers, for the layers themselves
//! and for the extractors' parsing and copying: about a fifth of the server's CPU per relay. The
//! direct path does what those did and no more: the stages every request gets, listed once in
//! [`crate::pipeline::STAGES`] (the router's layers are built from that list), applied here in
//! `serve` and `dispatch` without boxing a layer stack; then the session id from the path and
//! the parameters from the query. A constant below stops the build when the list changes, until
//! this path applies the new list; a test in [`crate::pipeline`] fails when the router gets a
//! layer that is not in it.

use std::{
    borrow::Cow,
    convert::Infallible,
    net::SocketAddr,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    Router,
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_util::future::{BoxFuture, Either, FutureExt};
use switchboard_protocol::SignalError;
use tower::Service;
use tracing::{Instrument, Span};

use crate::{
    edge::forwarded::{Client, TrustedProxies},
    error::ApiError,
    node::Node,
    origin::OriginPolicy,
    pipeline::{STAGES, Stage},
    transport::{
        http::{self, SessionParams},
        poll, sse,
    },
};

/// The session endpoints served directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Messages,
    Events,
    Poll,
}

/// The path prefix of the session endpoints.
const SESSIONS: &str = "/v1/sessions/";

impl Endpoint {
    /// The endpoint `path` names, and its session segment (still percent-encoded).
    fn of(path: &str) -> Option<(Endpoint, &str)> {
        let (session, name) = path.strip_prefix(SESSIONS)?.split_once('/')?;
        let endpoint = match name {
            "messages" => Endpoint::Messages,
            "events" => Endpoint::Events,
            "poll" => Endpoint::Poll,
            _ => return None,
        };
        (!session.is_empty()).then_some((endpoint, session))
    }

    /// The one method the endpoint takes.
    fn method(self) -> &'static str {
        match self {
            Endpoint::Messages => "POST",
            Endpoint::Events | Endpoint::Poll => "GET",
        }
    }

    /// The route template, as spans name it.
    fn route(self) -> &'static str {
        match self {
            Endpoint::Messages => "/v1/sessions/{session}/messages",
            Endpoint::Events => "/v1/sessions/{session}/events",
            Endpoint::Poll => "/v1/sessions/{session}/poll",
        }
    }
}

/// What the direct path needs, shared by every connection.
struct Shared {
    node: Node,
    policy: Arc<OriginPolicy>,
    proxies: TrustedProxies,
}

/// Makes one [`Front`] per accepted connection, knowing its peer's address.
#[derive(Clone)]
pub struct MakeFront {
    shared: Arc<Shared>,
    router: Router,
}

impl MakeFront {
    /// Serves the session endpoints for `node` directly and everything else with `router`;
    /// connections from `proxies` name their client.
    pub fn new(
        node: Node,
        policy: Arc<OriginPolicy>,
        proxies: TrustedProxies,
        router: Router,
    ) -> MakeFront {
        MakeFront {
            shared: Arc::new(Shared {
                node,
                policy,
                proxies,
            }),
            router,
        }
    }

    /// The service of a connection from `peer`.
    pub fn front(&self, peer: SocketAddr) -> Front {
        Front {
            trusted: self.shared.proxies.trusts(peer.ip()),
            shared: self.shared.clone(),
            router: self.router.clone(),
            peer,
        }
    }
}

/// The service of one connection; see the module documentation.
#[derive(Clone)]
pub struct Front {
    shared: Arc<Shared>,
    router: Router,
    peer: SocketAddr,
    /// The peer is a trusted proxy: judged once per connection, so a request from anyone else
    /// costs nothing to find its client.
    trusted: bool,
}

impl Front {
    /// Who sent a request with `headers` on this connection: the one place the client's address
    /// is derived, for both paths and every transport.
    fn client(&self, headers: &axum::http::HeaderMap) -> Client {
        if self.trusted {
            self.shared.proxies.client(self.peer, headers)
        } else {
            Client::direct(self.peer)
        }
    }
}

impl Service<Request> for Front {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<
        <Router as Service<Request>>::Future,
        BoxFuture<'static, Result<Response, Infallible>>,
    >;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        match Endpoint::of(request.uri().path()) {
            Some((endpoint, session)) => {
                let session_len = session.len();
                // These endpoints serve sessions already open, charged to their address then;
                // only the origin stage reads the client, and only what a proxy reported.
                if self.trusted {
                    let client = self.client(request.headers());
                    request.extensions_mut().insert(client);
                }
                let shared = self.shared.clone();
                Either::Right(
                    serve(shared, endpoint, session_len, request)
                        .map(Ok)
                        .boxed(),
                )
            }
            None => {
                let client = self.client(request.headers());
                request.extensions_mut().insert(client);
                Either::Left(self.router.call(request))
            }
        }
    }
}

// The direct path applies the stages of the list by hand, in `serve` and `dispatch`: the build
// stops here when the list changes, until they apply the new one.
const _: () = assert!(
    matches!(STAGES, [Stage::Trace, Stage::Origin, Stage::BodyLimit]),
    "pipeline::STAGES changed: apply the new list on the direct path too"
);

/// One request for `endpoint`, through the stages of [`STAGES`]; its path's session segment,
/// right after [`SESSIONS`], is `session_len` bytes long.
async fn serve(
    shared: Arc<Shared>,
    endpoint: Endpoint,
    session_len: usize,
    request: Request,
) -> Response {
    // Stage::Trace, around everything else.
    let span = crate::telemetry::http_span(request.method(), endpoint.route());
    // Stage::Origin.
    let response = shared
        .policy
        .guard(request, |request| {
            dispatch(&shared.node, endpoint, session_len, request, span.clone())
        })
        .instrument(span.clone())
        .await;
    crate::telemetry::record_status(&span, response.status());
    response
}

async fn dispatch(
    node: &Node,
    endpoint: Endpoint,
    session_len: usize,
    request: Request,
    span: Span,
) -> Response {
    if request.method().as_str() != endpoint.method() {
        let allow = [(header::ALLOW, HeaderValue::from_static(endpoint.method()))];
        return (StatusCode::METHOD_NOT_ALLOWED, allow).into_response();
    }
    let (parts, body) = request.into_parts();
    let answer = async {
        let params = SessionParams::from_query(parts.uri.query())?;
        let session = session_id(&parts.uri.path()[SESSIONS.len()..][..session_len])?;
        let headers = &parts.headers;
        match endpoint {
            Endpoint::Messages => {
                // Stage::BodyLimit: the only body these endpoints read.
                let body = http::read_posted(headers, body).await?;
                http::post_messages(node, &session, headers, &params, &body).await
            }
            Endpoint::Events => sse::events(node, &session, headers, &params, span).await,
            Endpoint::Poll => poll::poll(node, &session, headers, &params).await,
        }
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

/// The session id of a path's session segment, percent-decoded.
fn session_id(encoded: &str) -> Result<Cow<'_, str>, ApiError> {
    percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .map_err(|_| SignalError::invalid("the session id is not UTF-8").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_three_session_endpoints_are_served_directly() {
        assert_eq!(
            Endpoint::of("/v1/sessions/s1/messages"),
            Some((Endpoint::Messages, "s1"))
        );
        assert_eq!(
            Endpoint::of("/v1/sessions/a%20b/events"),
            Some((Endpoint::Events, "a%20b"))
        );
        assert_eq!(
            Endpoint::of("/v1/sessions/s1/poll"),
            Some((Endpoint::Poll, "s1"))
        );
        for other in [
            "/v1/sessions",
            "/v1/sessions/",
            "/v1/sessions//poll",
            "/v1/sessions/s1/poll/",
            "/v1/sessions/s1/other",
            "/v1/sessions/s1",
            "/v1/ws",
            "/sessions/s1/poll",
        ] {
            assert_eq!(Endpoint::of(other), None, "{other}");
        }
        assert_eq!(session_id("a%20b").unwrap(), "a b");
        assert!(session_id("%FF").is_err());
    }
}
