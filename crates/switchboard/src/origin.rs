//! Browser origin checks and CORS for the `/v1/` endpoints.
//!
//! A browser attaches `Origin` to every WebSocket upgrade and cross-origin request, and a page on
//! another site could otherwise open a session with a token or cookie the visitor's browser holds
//! (cross-site WebSocket hijacking). So a request to `/v1/...` whose `Origin` is not allowed is
//! answered with HTTP 403 `forbidden` before any handler, upgrade or token check runs. Requests
//! without `Origin` come from non-browser clients, which no other site can drive, and pass.
//!
//! Allowed: the server's own origin (the `Origin` host and port equal the request's `Host`, or
//! the scheme, host and port a trusted proxy reports: [`crate::edge::forwarded`]), and
//! either the loopback origins (`localhost`, `127.0.0.1`, `[::1]`, any port: the development
//! default when `allowed_origins` is empty) or exactly the configured list. CORS answers (also
//! preflights) carry `Access-Control-Allow-Origin` for allowed origins only; credentials are never
//! allowed, since tokens travel as bearer tokens, not cookies.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{
        HeaderMap, HeaderValue, Method, Uri,
        header::{
            ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
            ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
            HOST, ORIGIN, VARY,
        },
    },
    middleware::Next,
    response::{IntoResponse, Response},
};
use switchboard_protocol::SignalError;

use crate::{
    edge::forwarded::{Client, Forwarded},
    error::ApiError,
};

/// The paths the policy guards.
const GUARDED_PREFIX: &str = "/v1/";

/// Which browser origins may use the session endpoints.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    /// `*` was listed.
    any: bool,
    /// Loopback origins pass (the default, with no list).
    loopback: bool,
    /// The sandboxed / opaque origin `null` was listed.
    null: bool,
    listed: Vec<Allowed>,
}

/// One configured origin.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowed {
    scheme: String,
    /// Lowercase host; `*.example.com` is stored as `.example.com` with `subdomains` set.
    host: String,
    subdomains: bool,
    port: u16,
}

/// An `Origin` value taken apart.
struct Parsed {
    scheme: String,
    host: String,
    port: u16,
}

fn parse_origin(text: &str) -> Option<Parsed> {
    let uri: Uri = text.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return None;
    }
    let authority = uri.authority()?;
    if authority.as_str().contains('@') {
        return None;
    }
    Some(Parsed {
        scheme,
        host: authority.host().to_ascii_lowercase(),
        port: authority.port_u16().unwrap_or(default_port),
    })
}

impl OriginPolicy {
    /// The policy for `allowed_origins`: entries are `scheme://host[:port]`, `scheme://*.domain`
    /// (any subdomain), `*` (any origin) or `null`.
    pub fn new(allowed: &[String]) -> Result<OriginPolicy, String> {
        let mut policy = OriginPolicy {
            any: false,
            loopback: allowed.is_empty(),
            null: false,
            listed: Vec::new(),
        };
        for entry in allowed {
            match entry.trim() {
                "*" => policy.any = true,
                "null" => policy.null = true,
                text => {
                    let bad = || {
                        format!(
                            "allowed_origins: `{text}` is not `*`, `null` or an origin like https://app.example.com[:port]"
                        )
                    };
                    let (text, subdomains) = match text.split_once("://*.") {
                        Some((scheme, rest)) => (format!("{scheme}://{rest}"), true),
                        None => (text.to_owned(), false),
                    };
                    let parsed = parse_origin(&text).ok_or_else(bad)?;
                    policy.listed.push(Allowed {
                        scheme: parsed.scheme,
                        host: if subdomains {
                            format!(".{}", parsed.host)
                        } else {
                            parsed.host
                        },
                        subdomains,
                        port: parsed.port,
                    });
                }
            }
        }
        Ok(policy)
    }

    /// Only the server's own origin.
    pub fn same_origin_only() -> OriginPolicy {
        OriginPolicy {
            any: false,
            loopback: false,
            null: false,
            listed: Vec::new(),
        }
    }

    /// Whether a request with `origin`, sent to `target`, is allowed.
    pub fn allows(&self, origin: &HeaderValue, target: Target<'_>) -> bool {
        if self.any {
            return true;
        }
        let Ok(text) = origin.to_str() else {
            return false;
        };
        if text == "null" {
            return self.null;
        }
        let Some(origin) = parse_origin(text) else {
            return false;
        };
        if target
            .host
            .is_some_and(|host| same_origin(&origin, host, target.scheme))
        {
            return true;
        }
        if self.loopback && matches!(origin.host.as_str(), "localhost" | "127.0.0.1" | "[::1]") {
            return true;
        }
        self.listed.iter().any(|a| {
            a.scheme == origin.scheme
                && a.port == origin.port
                && if a.subdomains {
                    origin.host.ends_with(&a.host)
                } else {
                    a.host == origin.host
                }
        })
    }
}

/// Where a request was sent, as far as the server can tell.
#[derive(Debug, Clone, Copy, Default)]
pub struct Target<'a> {
    /// The `Host` header (or the URI's authority), or the host a trusted proxy reports.
    pub host: Option<&'a str>,
    /// `http` or `https`, when a trusted proxy reports it.
    pub scheme: Option<&'a str>,
}

impl<'a> Target<'a> {
    /// The target of a request with `headers` and `uri`, as reported by a trusted proxy if one
    /// `forwarded` it.
    fn of(headers: &'a HeaderMap, uri: &'a Uri, forwarded: Option<&'a Forwarded>) -> Target<'a> {
        let reported = forwarded.and_then(|f| f.host.as_deref());
        Target {
            host: reported.or_else(|| host_of(headers, uri)),
            scheme: forwarded.and_then(|f| f.scheme),
        }
    }
}

/// Whether `origin` names the host the request was sent to. Without a `scheme` (the `Host` header
/// carries none) any scheme matches and a missing port matches the origin's default port (a
/// TLS-terminating proxy in front); with one, the origin's scheme must be it and a missing port
/// is its default.
fn same_origin(origin: &Parsed, host: &str, scheme: Option<&str>) -> bool {
    let Ok(authority) = host.parse::<axum::http::uri::Authority>() else {
        return false;
    };
    let port = match scheme {
        None => authority.port_u16().unwrap_or(origin.port),
        Some(scheme) if scheme != origin.scheme => return false,
        Some(scheme) => authority
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 }),
    };
    authority.host().eq_ignore_ascii_case(&origin.host) && port == origin.port
}

fn host_of<'a>(headers: &'a HeaderMap, uri: &'a Uri) -> Option<&'a str> {
    headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
}

/// The policy of the `allowed_origins` setting. `Config::load` has checked the list; a list that
/// was never checked and is invalid falls back to same-origin only (closed, not open).
pub fn policy(allowed_origins: &[String]) -> Arc<OriginPolicy> {
    Arc::new(
        OriginPolicy::new(allowed_origins).unwrap_or_else(|e| {
            tracing::error!(event = "origin.bad_config", error = %e, "allowing the server's own origin only");
            OriginPolicy::same_origin_only()
        }),
    )
}

/// What the policy makes of one request.
pub enum Verdict {
    /// The complete answer: 403 `forbidden` for a disallowed origin, or a CORS preflight's.
    Answered(Response),
    /// The request goes on; its answer gets these CORS headers.
    Pass(CorsHeaders),
}

/// The CORS headers of an answer to an actual (not preflight) request.
pub struct CorsHeaders {
    /// The request's `Origin`, when it is allowed on a guarded path.
    allow_origin: Option<HeaderValue>,
}

/// Caches may not serve one origin's answer to another.
const VARY_ON: &str = "origin, access-control-request-method, access-control-request-headers";

impl CorsHeaders {
    /// Adds the headers to `response`; those every CORS answer carries, and `Retry-After` made
    /// readable.
    pub fn apply(self, response: &mut Response) {
        response.headers_mut().insert(
            ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("retry-after"),
        );
        self.apply_common(response);
    }

    /// The answer to a preflight (any `OPTIONS` request): allowed origins may `GET` and `POST`
    /// with `Authorization`, `Content-Type` and `Last-Event-ID`, for ten minutes.
    fn preflight(self) -> Response {
        let mut response = Response::new(axum::body::Body::empty());
        let headers = response.headers_mut();
        headers.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET,POST"),
        );
        headers.insert(
            ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization,content-type,last-event-id"),
        );
        headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        self.apply_common(&mut response);
        response
    }

    /// What preflights and actual answers both carry: `Vary` (added to any the answer has) and
    /// the allowed origin.
    fn apply_common(self, response: &mut Response) {
        let headers = response.headers_mut();
        headers.append(VARY, HeaderValue::from_static(VARY_ON));
        if let Some(origin) = self.allow_origin {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        }
    }
}

impl OriginPolicy {
    /// Judges a request before anything else looks at it: a `/v1/` request whose `Origin` the
    /// policy does not allow is refused with HTTP 403 and the JSON error body (no CORS headers);
    /// any other `OPTIONS` request is answered as a CORS preflight; the rest pass.
    /// `forwarded` is what a trusted proxy reported about the request, if one sent it.
    pub fn judge(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        forwarded: Option<&Forwarded>,
    ) -> Verdict {
        let origin = headers
            .get(ORIGIN)
            .filter(|_| uri.path().starts_with(GUARDED_PREFIX));
        if let Some(origin) = origin
            && !self.allows(origin, Target::of(headers, uri, forwarded))
        {
            tracing::info!(
                event = "origin.refused",
                origin = %String::from_utf8_lossy(&origin.as_bytes()[..origin.len().min(128)]),
                path = uri.path(),
                "request from a disallowed origin refused"
            );
            let refused = ApiError(SignalError::Forbidden(
                "requests from this origin are not allowed (allowed_origins)".into(),
            ));
            return Verdict::Answered(refused.into_response());
        }
        let cors = CorsHeaders {
            allow_origin: origin.cloned(),
        };
        if method == Method::OPTIONS {
            return Verdict::Answered(cors.preflight());
        }
        Verdict::Pass(cors)
    }

    /// Serves `request` with `handle` if the policy lets it through, adding the CORS headers to
    /// its answer; otherwise answers it as [`judge`](Self::judge) says. The request's [`Client`]
    /// (an extension) tells what a trusted proxy reported.
    pub async fn guard<F>(&self, request: Request, handle: impl FnOnce(Request) -> F) -> Response
    where
        F: Future<Output = Response>,
    {
        let forwarded = request.extensions().get::<Client>();
        let forwarded = forwarded.and_then(|client| client.forwarded.as_ref());
        match self.judge(
            request.method(),
            request.uri(),
            request.headers(),
            forwarded,
        ) {
            Verdict::Answered(response) => response,
            Verdict::Pass(cors) => {
                let mut response = handle(request).await;
                cors.apply(&mut response);
                response
            }
        }
    }
}

/// Middleware for the router's routes: [`OriginPolicy::guard`].
pub async fn middleware(
    State(policy): State<Arc<OriginPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    policy.guard(request, |request| next.run(request)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(policy: &OriginPolicy, origin: &str, host: &str) -> bool {
        let target = Target {
            host: Some(host),
            scheme: None,
        };
        policy.allows(&HeaderValue::from_str(origin).unwrap(), target)
    }

    #[test]
    fn default_allows_same_origin_and_loopback_only() {
        let p = OriginPolicy::new(&[]).unwrap();
        assert!(allows(&p, "https://sb.example.com", "sb.example.com"));
        assert!(allows(
            &p,
            "http://sb.example.com:8080",
            "sb.example.com:8080"
        ));
        assert!(!allows(
            &p,
            "http://sb.example.com:9090",
            "sb.example.com:8080"
        ));
        assert!(allows(&p, "http://localhost:5173", "sb.example.com"));
        assert!(allows(&p, "https://127.0.0.1:3000", "sb.example.com"));
        assert!(allows(&p, "http://[::1]:3000", "sb.example.com"));
        assert!(!allows(&p, "https://evil.example", "sb.example.com"));
        assert!(!allows(
            &p,
            "https://localhost.evil.example",
            "sb.example.com"
        ));
        assert!(!allows(&p, "null", "sb.example.com"));
        assert!(!allows(&p, "not an origin", "sb.example.com"));
        assert!(!allows(&p, "ftp://sb.example.com", "sb.example.com"));
    }

    #[test]
    fn a_forwarded_scheme_and_host_decide_the_same_origin() {
        let p = OriginPolicy::new(&["https://other.example".to_owned()]).unwrap();
        let origin = |text: &str| HeaderValue::from_str(text).unwrap();
        let behind = |host, scheme| Target {
            host: Some(host),
            scheme: Some(scheme),
        };
        let app = behind("app.example", "https");
        assert!(p.allows(&origin("https://app.example"), app));
        assert!(p.allows(&origin("https://app.example:443"), app));
        assert!(!p.allows(&origin("http://app.example"), app));
        assert!(!p.allows(&origin("https://app.example:8443"), app));
        assert!(p.allows(
            &origin("https://app.example:8443"),
            behind("app.example:8443", "https")
        ));
        assert!(p.allows(&origin("http://app.example"), behind("app.example", "http")));
        assert!(!p.allows(&origin("https://evil.example"), app));
    }

    #[test]
    fn a_list_replaces_loopback() {
        let list = [
            "https://app.example.com".to_owned(),
            "https://*.tenant.example".to_owned(),
            "http://dev.example:8000".to_owned(),
        ];
        let p = OriginPolicy::new(&list).unwrap();
        let host = "sb.example.com";
        assert!(allows(&p, "https://app.example.com", host));
        assert!(allows(&p, "https://APP.example.com:443", host));
        assert!(!allows(&p, "http://app.example.com", host));
        assert!(allows(&p, "https://a.tenant.example", host));
        assert!(!allows(&p, "https://tenant.example", host));
        assert!(!allows(&p, "https://eviltenant.example", host));
        assert!(allows(&p, "http://dev.example:8000", host));
        assert!(!allows(&p, "http://dev.example", host));
        assert!(!allows(&p, "http://localhost:3000", host));
        assert!(allows(&p, "https://sb.example.com", host), "same origin");
        let any = OriginPolicy::new(&["*".to_owned()]).unwrap();
        assert!(allows(&any, "https://anything.example", host));
    }

    #[test]
    fn bad_entries_are_errors() {
        for bad in [
            "example.com",
            "https://a.example/path",
            "ws://a.example",
            "",
        ] {
            assert!(OriginPolicy::new(&[bad.to_owned()]).is_err(), "{bad}");
        }
    }
}
