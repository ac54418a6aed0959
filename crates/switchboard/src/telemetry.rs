//! Logging and tracing setup: the `tracing` subscriber (text or JSON lines), and, when
//! `otlp_endpoint` is set, OpenTelemetry spans exported over OTLP/HTTP (protobuf).
//!
//! Trace spans use their own target, [`SPANS`]. The log layer never sees them (so log lines look
//! the same with tracing on or off), and without an OTLP endpoint no layer wants them, so every
//! span macro with that target is disabled at its call site: tracing off costs nothing.
//!
//! Spans: `http.request` (every HTTP request; for SSE and long-poll it lasts as long as the
//! stream or the held poll), `ws.connection` (one WebSocket, upgrade to close), and
//! `signal.receive` (one client message handled by the hub), renamed after what it did:
//! `room.join`, `room.leave`, `relay.offer`, `relay.answer`, `relay.candidate`, `relay.message`,
//! and so on. Spans carry no user id, token, SDP or candidate.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use axum::{
    extract::MatchedPath,
    http::{Method, Request, StatusCode},
};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use switchboard_core::Event;
use tower_http::{
    classify::{ServerErrorsAsFailures, SharedClassifier},
    trace::{MakeSpan, OnResponse, TraceLayer},
};
use tracing::{Level, Span, Subscriber, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::{
    EnvFilter, Layer, Registry,
    filter::Targets,
    fmt::{self, MakeWriter},
    layer::SubscriberExt,
};

use crate::config::LogFormat;

/// The target of every trace span.
pub const SPANS: &str = "switchboard::spans";

/// The name of [`receive_span`] until [`name_span`] renames it.
const RECEIVE: &str = "signal.receive";

/// Set once an OTLP exporter is installed; until then [`name_span`] does nothing.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// The tracing half of the setup; flush or shut it down before the process exits, or the last
/// spans are lost.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports every finished span now (blocking; call from a blocking context).
    pub fn flush(&self) -> Result<(), String> {
        match &self.provider {
            Some(p) => p.force_flush().map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    /// Exports what is left and stops the exporter (blocking).
    pub fn shutdown(self) {
        if let Some(p) = self.provider
            && let Err(e) = p.shutdown_with_timeout(Duration::from_secs(5))
        {
            eprintln!("switchboard: trace export at shutdown failed: {e}");
        }
    }
}

/// The OTLP/HTTP traces URL for `endpoint`: a collector base such as `http://host:4318` gets
/// `/v1/traces` appended; a URL already ending in `/v1/traces` is used as it is.
pub fn traces_url(endpoint: &str) -> String {
    let endpoint = endpoint.trim_end_matches('/');
    if endpoint.ends_with("/v1/traces") {
        endpoint.to_owned()
    } else {
        format!("{endpoint}/v1/traces")
    }
}

/// The subscriber `switchboard serve` installs: log lines in `format` through `filter` to
/// `writer`, plus span export when `otlp_endpoint` is set. Text lines carry ANSI colours only
/// with `colours` (a terminal): in a file or a journal they would be escape-code noise.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    colours: bool,
    otlp_endpoint: Option<&str>,
) -> Result<(Box<dyn Subscriber + Send + Sync>, Telemetry), String>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = filter.add_directive(
        format!("{SPANS}=off")
            .parse()
            .map_err(|e| format!("log filter: {e}"))?,
    );
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Text => fmt::layer().with_ansi(colours).with_writer(writer).boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(writer)
            .boxed(),
    };
    let registry = Registry::default().with(logs.with_filter(filter));
    let Some(endpoint) = otlp_endpoint else {
        return Ok((Box::new(registry), Telemetry { provider: None }));
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(traces_url(endpoint))
        .with_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("otlp_endpoint: {e}"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("switchboard").build())
        .build();
    let tracer = provider.tracer("switchboard");
    let spans = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(Targets::new().with_target(SPANS, Level::TRACE));
    EXPORTING.store(true, Ordering::Relaxed);
    Ok((
        Box::new(registry.with(spans)),
        Telemetry {
            provider: Some(provider),
        },
    ))
}

/// A span for one client message; [`name_span`] names it after what the hub did with it.
pub fn receive_span() -> Span {
    tracing::info_span!(
        target: SPANS,
        RECEIVE,
        message.kind = Empty,
        recipients = Empty,
        error.code = Empty
    )
}

/// A span for one WebSocket connection, from upgrade to close; a trace of its own.
pub fn ws_span(resume: bool) -> Span {
    tracing::info_span!(
        target: SPANS,
        parent: None,
        "ws.connection",
        transport = "ws",
        resume,
        session = Empty,
        close.reason = Empty
    )
}

/// Names the current span (a [`receive_span`]) after the events one hub call produced.
pub fn name_span(events: &[Event]) {
    if !EXPORTING.load(Ordering::Relaxed) {
        return;
    }
    let span = Span::current();
    // Only message spans: a hub call made in a connection's span (opening, disconnecting) must
    // not rename the connection.
    if span.metadata().is_none_or(|m| m.name() != RECEIVE) {
        return;
    }
    let mut name = None;
    for event in events {
        match event {
            Event::Received { kind } => {
                span.record("message.kind", *kind);
            }
            Event::Joined { .. } => name = Some("room.join"),
            Event::Left { .. } => name = name.or(Some("room.leave")),
            Event::Relayed { kind, recipients } => {
                name = Some(crate::observe::relay_event(kind));
                span.record("recipients", *recipients as u64);
            }
            Event::Rejected { code } => {
                span.record("error.code", code.as_str());
            }
            _ => {}
        }
    }
    if let Some(name) = name {
        // The OpenTelemetry span already started when the span was entered, so `otel.name` can
        // no longer rename it; the span itself can.
        span.context().span().update_name(name);
    }
}

/// The `http.request` span of a request: method and route template only (the URI may carry a
/// token in its query, so it is never recorded).
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpSpan;

impl<B> MakeSpan<B> for HttpSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str)
            .unwrap_or("unmatched");
        http_span(request.method(), route)
    }
}

/// The `http.request` span of a request for `route` (a template such as
/// `/v1/sessions/{session}/poll`); [`record_status`] completes it.
pub fn http_span(method: &Method, route: &str) -> Span {
    tracing::info_span!(
        target: SPANS,
        "http.request",
        otel.name = %format_args!("{method} {route}"),
        http.request.method = %method,
        http.route = route,
        http.response.status_code = Empty
    )
}

/// Records the status of a request's answer on its [`http_span`].
pub fn record_status(span: &Span, status: StatusCode) {
    span.record("http.response.status_code", status.as_u16());
}

/// Records the status on the `http.request` span.
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpStatus;

impl<B> OnResponse<B> for HttpStatus {
    fn on_response(self, response: &axum::http::Response<B>, _latency: Duration, span: &Span) {
        record_status(span, response.status());
    }
}

/// The layer that wraps every HTTP request in an `http.request` span (and logs nothing).
pub fn http_layer()
-> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, HttpSpan, (), HttpStatus, (), (), ()> {
    TraceLayer::new_for_http()
        .make_span_with(HttpSpan)
        .on_request(())
        .on_response(HttpStatus)
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_url_appends_the_signal_path_once() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            traces_url("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces"
        );
    }

    /// A writer that keeps what it is given, to read back what a subscriber wrote.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<parking_lot::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn text_line(colours: bool) -> Vec<u8> {
        let captured = Captured::default();
        let writer = captured.clone();
        let (subscriber, _telemetry) = subscriber(
            LogFormat::Text,
            EnvFilter::new("info"),
            move || writer.clone(),
            colours,
            None,
        )
        .unwrap();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(event = "server.listening", "listening");
        });
        captured.0.lock().clone()
    }

    #[test]
    fn text_lines_carry_escape_codes_only_with_colours() {
        const ESC: u8 = 0x1b;
        let plain = text_line(false);
        assert!(plain.ends_with(b"\n") && plain.windows(9).any(|w| w == b"listening"));
        assert!(!plain.contains(&ESC), "{}", String::from_utf8_lossy(&plain));
        assert!(text_line(true).contains(&ESC));
    }
}
