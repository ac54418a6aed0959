//! What every HTTP request gets before its handler, whichever of the two paths serves it.
//!
//! [`crate::front`] serves the three hot session endpoints directly and hands every other request
//! to the axum router. A request must not be treated differently for taking one path or the
//! other, so what it gets is listed once, here, as [`STAGES`]:
//!
//! - the router's layers are built from the list, by [`layer`];
//! - the direct path applies the same stages, in the same order, written out in
//!   `front::serve`, where a compile-time check stops the build as soon as the list no longer
//!   reads as that code applies it.
//!
//! So a stage added to the list reaches both paths, or the build fails. A layer put on the router
//! any other way (a `.layer(...)` in `server.rs`, say) would reach routed requests only: the test
//! `no_layer_is_added_outside_the_list` fails on one, and `each_stage_applies_on_both_paths`
//! checks each stage's effect on a routed and on a direct request.
//!
//! The direct path does not reuse the router's layers as they are because they box: a layer
//! stack per route, and `from_fn`'s `Next`. Skipping that is what the direct path is for
//! (`docs/benchmarks.md`, the change to `front.rs`).
//!
//! What comes before either path is not a stage: the listener's connection cap and its answer
//! when file descriptors run out (`listener.rs`), and `TCP_NODELAY` (`server.rs`).

use std::sync::Arc;

use axum::{Router, extract::DefaultBodyLimit};

use crate::{origin::OriginPolicy, transport::http::MAX_POSTED_BYTES};

/// One thing every HTTP request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// An `http.request` span around the request ([`crate::telemetry::http_span`]), its answer's
    /// status recorded on it.
    Trace,
    /// The origin policy ([`OriginPolicy::guard`]): a `/v1/` request from a disallowed browser
    /// origin is answered 403, a preflight is answered, and the answer gets the CORS headers.
    Origin,
    /// No request body is read past [`MAX_POSTED_BYTES`]: a larger one is answered 413.
    BodyLimit,
}

/// What every request gets, outermost first.
pub const STAGES: [Stage; 3] = [Stage::Trace, Stage::Origin, Stage::BodyLimit];

/// `router` with every stage of [`STAGES`] as a layer (the first one outermost).
pub fn layer(router: Router, origins: &Arc<OriginPolicy>) -> Router {
    // `Router::layer` wraps what is already there, so the innermost stage goes on first.
    STAGES
        .iter()
        .rev()
        .fold(router, |router, stage| match stage {
            Stage::Trace => router.layer(crate::telemetry::http_layer()),
            Stage::Origin => router.layer(axum::middleware::from_fn_with_state(
                origins.clone(),
                crate::origin::middleware,
            )),
            Stage::BodyLimit => router.layer(DefaultBodyLimit::max(MAX_POSTED_BYTES)),
        })
}

#[cfg(test)]
mod tests {
    use std::{net::SocketAddr, path::Path, sync::Arc};

    use axum::{
        body::Body,
        http::{HeaderMap, Method, Request, StatusCode, header},
        response::Response,
    };
    use parking_lot::Mutex;
    use tower::ServiceExt;
    use tracing::{
        Subscriber,
        field::{Field, Visit},
        span,
    };
    use tracing_subscriber::{Layer, layer::Context, prelude::*, registry::LookupSpan};

    use super::*;
    use switchboard_store::testing::TestDb;

    use crate::{
        config::Config,
        control::Control,
        front::Front,
        node::Node,
        secret::{Secret, SecretSource},
    };

    /// A routed request and a direct one, which every check sends alike.
    const ROUTED: &str = "/v1/sessions";
    const DIRECT: &str = "/v1/sessions/nope/messages";

    /// The one allowed browser origin.
    const APP: &str = "https://app.example";
    const EVIL: &str = "https://evil.example";

    /// The service of one connection, as the accept loop ([`crate::edge::http`]) makes it, and its
    /// store's database.
    async fn front() -> (Front, TestDb) {
        let config = Config {
            allowed_origins: vec![APP.into()],
            ..Config::default()
        };
        let secret = Secret {
            bytes: b"pipeline-test-secret-0123456789abcdef".to_vec(),
            source: SecretSource::Configured,
        };
        let node = Node::new(config, &secret);
        let db = TestDb::sqlite();
        let store = switchboard_store::open(&db.location).await.unwrap();
        let control = Control::new(&node, store, &secret).unwrap();
        let app = crate::server::app(node, control);
        (app.front(SocketAddr::from(([127, 0, 0, 1], 40000))), db)
    }

    async fn send(
        front: &Front,
        method: Method,
        path: &str,
        headers: &[(header::HeaderName, &str)],
        body: Body,
    ) -> Response {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "sb.example");
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        let answer = front.clone().oneshot(request.body(body).unwrap()).await;
        answer.unwrap()
    }

    /// The headers the origin stage decides, each as one string.
    fn cors(headers: &HeaderMap) -> Vec<Option<String>> {
        [
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            header::ACCESS_CONTROL_ALLOW_METHODS,
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            header::ACCESS_CONTROL_MAX_AGE,
            header::VARY,
        ]
        .iter()
        .map(|name| {
            let values: Vec<&str> = headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            (!values.is_empty()).then(|| values.join(", "))
        })
        .collect()
    }

    /// Collects the `http.request` spans made while it is the default subscriber: each one's
    /// route and recorded status, in the order they were made.
    #[derive(Clone, Default)]
    struct Spans(Arc<Mutex<Vec<RouteStatus>>>);

    /// An `http.request` span's route and the status recorded on it.
    type RouteStatus = (String, Option<u64>);

    /// Reads a span's route and status into a [`Spans`] entry.
    struct Fields<'a>(&'a mut RouteStatus);

    impl Visit for Fields<'_> {
        fn record_str(&mut self, field: &Field, value: &str) {
            if field.name() == "http.route" {
                self.0.0 = value.to_owned();
            }
        }

        fn record_u64(&mut self, field: &Field, value: u64) {
            if field.name() == "http.response.status_code" {
                self.0.1 = Some(value);
            }
        }

        fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
    }

    /// A span's index in [`Spans`], kept in the span's extensions.
    struct Entry(usize);

    impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
        fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, cx: Context<'_, S>) {
            if attrs.metadata().name() != "http.request" {
                return;
            }
            let mut entry = (String::new(), None);
            attrs.record(&mut Fields(&mut entry));
            let mut spans = self.0.lock();
            spans.push(entry);
            let at = spans.len() - 1;
            if let Some(span) = cx.span(id) {
                span.extensions_mut().insert(Entry(at));
            }
        }

        fn on_record(&self, id: &span::Id, values: &span::Record<'_>, cx: Context<'_, S>) {
            let Some(span) = cx.span(id) else { return };
            if let Some(Entry(at)) = span.extensions().get::<Entry>() {
                values.record(&mut Fields(&mut self.0.lock()[*at]));
            }
        }
    }

    /// Each stage, seen from outside, on a routed and on a direct request. The `match` is
    /// exhaustive: a stage cannot be listed without saying how both paths show it.
    #[tokio::test]
    async fn each_stage_applies_on_both_paths() {
        let (front, db) = front().await;
        for stage in STAGES {
            match stage {
                Stage::Trace => {
                    let spans = Spans::default();
                    let subscriber = tracing_subscriber::registry().with(spans.clone());
                    let _default = tracing::subscriber::set_default(subscriber);
                    // The span is the outermost stage: it records a refusal by the origin stage.
                    for origin in [APP, EVIL] {
                        for path in [ROUTED, DIRECT] {
                            let headers = [(header::ORIGIN, origin)];
                            send(&front, Method::POST, path, &headers, Body::empty()).await;
                        }
                    }
                    let routed = || "/v1/sessions".to_owned();
                    let direct = || "/v1/sessions/{session}/messages".to_owned();
                    assert_eq!(
                        *spans.0.lock(),
                        [
                            (routed(), Some(401)),
                            (direct(), Some(401)),
                            (routed(), Some(403)),
                            (direct(), Some(403)),
                        ]
                    );
                }
                Stage::Origin => {
                    let preflight = [
                        (header::ORIGIN, APP),
                        (header::ACCESS_CONTROL_REQUEST_METHOD, "POST"),
                    ];
                    for (method, headers, status) in [
                        (Method::POST, &[(header::ORIGIN, EVIL)][..], 403),
                        (Method::POST, &[(header::ORIGIN, APP)][..], 401),
                        (Method::POST, &[][..], 401),
                        (Method::OPTIONS, &preflight[..], 200),
                    ] {
                        let what = format!("{method} {headers:?}");
                        let routed = send(&front, method.clone(), ROUTED, headers, Body::empty());
                        let routed = routed.await;
                        let direct = send(&front, method, DIRECT, headers, Body::empty()).await;
                        assert_eq!(routed.status(), status, "{what}");
                        assert_eq!(direct.status(), status, "{what}");
                        assert_eq!(cors(routed.headers()), cors(direct.headers()), "{what}");
                    }
                    let headers = [(header::ORIGIN, APP)];
                    let answer = send(&front, Method::POST, DIRECT, &headers, Body::empty()).await;
                    assert_eq!(answer.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], APP);
                }
                Stage::BodyLimit => {
                    // The routed endpoint that reads a body, and the direct one.
                    for path in ["/v1/token", DIRECT] {
                        let within = Body::from(vec![b' '; MAX_POSTED_BYTES]);
                        let answer = send(&front, Method::POST, path, &[], within).await;
                        assert_ne!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
                        let over = Body::from(vec![b' '; MAX_POSTED_BYTES + 1]);
                        let answer = send(&front, Method::POST, path, &[], over).await;
                        assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
                    }
                }
            }
        }
        db.remove().await;
    }

    /// The numbers of the lines of `text` that put a layer on a router, a route or a handler
    /// (comments aside).
    fn layer_calls(text: &str) -> Vec<usize> {
        text.lines()
            .enumerate()
            .filter(|(_, line)| {
                let code = line.split("//").next().unwrap_or_default();
                code.contains(".layer(") || code.contains(".route_layer(")
            })
            .map(|(n, _)| n + 1)
            .collect()
    }

    /// Every `file:line` of `dir` (recursively), this file aside, that puts a layer on something.
    fn layers_outside(dir: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                layers_outside(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("pipeline.rs")
            {
                let text = std::fs::read_to_string(&path).unwrap();
                let lines = layer_calls(&text).into_iter();
                found.extend(lines.map(|n| format!("{}:{n}", path.display())));
            }
        }
    }

    /// A layer put on the router but not listed in [`STAGES`] would reach routed requests only.
    #[test]
    fn no_layer_is_added_outside_the_list() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = Vec::new();
        layers_outside(&src, &mut found);
        assert!(
            found.is_empty(),
            "a layer outside pipeline::STAGES, which the direct path of front.rs does not \
             apply; make it a stage: {found:?}"
        );
        // The scan sees a layer wherever it is put.
        let sample = "Router::new()\n    .layer(a) // b\n    // .layer(c)\n    .route_layer(d)";
        assert_eq!(layer_calls(sample), [2, 4]);
    }
}
