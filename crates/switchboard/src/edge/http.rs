//! The accept loop and each connection's HTTP/1.1, with deadlines a client cannot stretch: a
//! request's head must arrive within `header_timeout_ms`, its body within `body_timeout_ms`.
//!
//! axum's `serve` gives hyper no timer, and without one hyper times nothing out: a client that
//! opened a connection and sent nothing, or sent its headers a byte at a time (slowloris), held a
//! task and a descriptor for as long as it liked, and a few thousand such clients could hold every
//! descriptor the process has. Here hyper has tokio's timer and closes a connection whose next
//! request head is not complete `header_timeout_ms` after it began waiting for it: a new
//! connection's first request, or the next one on a kept-alive connection, so an idle or
//! half-open HTTP connection goes the same way. Upgraded WebSockets are not HTTP any more and
//! have their heartbeat; SSE streams end at `sse_lifetime_ms`; long-polls at `poll_wait_ms`.
//!
//! hyper has no deadline for a body at all, and tower-http's body timeout restarts at every
//! frame, so a body dripped a byte at a time would never trip it. [`Deadline`] gives each body one
//! deadline, counted from its head; past it reading fails, and the request is answered 408
//! `request_timeout` whatever its handler made of the failed read, and the connection closed.
//!
//! Only HTTP/1.1 is spoken, with hyper's own HTTP/1 connection rather than hyper-util's "auto"
//! one: nothing here needs HTTP/2 (TLS offers only `http/1.1`, and the WebSocket, SSE and
//! long-poll paths are HTTP/1.1); serving cleartext HTTP/2 to whoever asks would be a second
//! parser facing clients; and the auto connection first waits, with no deadline, for the bytes
//! that tell the two apart, so a connection that sends nothing would never be timed out.

use std::{
    convert::Infallible,
    future::Future,
    io,
    net::SocketAddr,
    pin::{Pin, pin},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
    serve::Listener,
};
use bytes::Bytes;
use futures_util::future::{BoxFuture, FutureExt};
use hyper::{
    body::{Frame, Incoming, SizeHint},
    server::conn::http1,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use switchboard_protocol::SignalError;
use tokio::time::{Instant, Sleep};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::Service;

use crate::{
    error::ApiError,
    front::{Front, MakeFront},
    node::Node,
};

/// The two deadlines (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// For a request's head, from when the connection starts waiting for it.
    pub header: Duration,
    /// For a request's body, from its head.
    pub body: Duration,
}

/// Accepts connections from `listener` and serves each with `make`'s [`Front`] in a task of its
/// own, until `shutdown`; then stops accepting, lets each connection finish the request it is
/// in (hyper's graceful shutdown) and returns once all are done.
pub fn serve<L>(
    mut listener: L,
    make: MakeFront,
    timeouts: Timeouts,
    node: Node,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<io::Result<()>>
where
    L: Listener<Addr = SocketAddr>,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header);
    tokio::spawn(async move {
        let connections = TaskTracker::new();
        loop {
            let (io, peer) = tokio::select! {
                accepted = listener.accept() => accepted,
                () = shutdown.cancelled() => break,
            };
            let service = Connection {
                front: make.front(peer),
                body_timeout: timeouts.body,
                node: node.clone(),
            };
            let connection = builder
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades();
            connections.spawn(serve_connection(connection, node.clone(), shutdown.clone()));
        }
        drop(listener);
        connections.close();
        connections.wait().await;
        Ok(())
    })
}

/// Drives one connection to its end; at `shutdown` it finishes the request it is in and closes
/// (an upgraded connection has left hyper by then and is the session's to close).
async fn serve_connection<I>(
    connection: http1::UpgradeableConnection<I, Connection>,
    node: Node,
    shutdown: CancellationToken,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let mut connection = pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result
        && e.is_timeout()
    {
        node.metrics().http_timeout("header");
    }
}

/// One connection's service: its [`Front`], with a [`Deadline`] on every request's body.
#[derive(Clone)]
struct Connection {
    front: Front,
    body_timeout: Duration,
    node: Node,
}

impl hyper::service::Service<hyper::Request<Incoming>> for Connection {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        let expired = Arc::new(AtomicBool::new(false));
        let (parts, body) = request.into_parts();
        let body = Deadline {
            body,
            at: Instant::now() + self.body_timeout,
            sleep: None,
            expired: expired.clone(),
        };
        let timeout_ms = self.body_timeout.as_millis() as u64;
        let node = self.node.clone();
        let mut front = self.front.clone();
        front
            .call(Request::from_parts(parts, Body::new(body)))
            .map(move |answer| {
                answer.map(|response| {
                    if !expired.load(Ordering::Acquire) {
                        return response;
                    }
                    node.metrics().http_timeout("body");
                    let error = SignalError::RequestTimeout { timeout_ms };
                    let mut response = ApiError(error).into_response();
                    // What is left of the body may still be on its way: the connection cannot
                    // carry another request.
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                    response
                })
            })
            .boxed()
    }
}

/// A request body that fails once its deadline passes, and says so in `expired`.
struct Deadline {
    body: Incoming,
    at: Instant,
    /// Made the first time the body is not ready: most bodies arrive with their head, and those
    /// never need a timer.
    sleep: Option<Pin<Box<Sleep>>>,
    expired: Arc<AtomicBool>,
}

/// Why reading a body failed past its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

impl hyper::body::Body for Deadline {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let at = this.at;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.expired.store(true, Ordering::Release);
        Poll::Ready(Some(Err(BodyTimedOut.into())))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
