//! The browser SDK and the web app, embedded in the binary at compile time from `web/`.
//!
//! URLs mirror the repository's `web/` folder, so the app's relative imports work the same from a
//! checkout and from the server: `/` is `web/app/index.html`, `/app/...` is `web/app/...` and
//! `/sdk/...` is `web/sdk/...` (the SDK's own tests are not served). The admin page is
//! `/admin` (`web/admin/index.html`), its files `/admin/...`. Every answer has an `ETag`
//! and `Cache-Control: no-cache`, so browsers revalidate cheaply and never run a stale SDK.

use std::{collections::HashMap, sync::OnceLock};

use axum::{
    Router,
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use include_dir::{Dir, include_dir};
use sha2::{Digest, Sha256};
use switchboard_protocol::SignalError;

use crate::error::ApiError;

static APP: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../web/app");
static SDK: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../web/sdk");
static DOCS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../web/docs");
static ADMIN: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../web/admin");

/// The page's policy: everything from this origin, media from the camera and peers (blob:), and
/// the signaling connections back to this server.
const CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; \
                   media-src 'self' blob: mediastream:; style-src 'self'; script-src 'self'; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The API reference's policy: the app's, but Swagger UI sets `style` attributes (syntax
/// highlighting) and shows the schema's images as `data:` URLs; it talks only to this server.
const DOCS_CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
                        style-src 'self' 'unsafe-inline'; script-src 'self'; object-src 'none'; \
                        base-uri 'none'; frame-ancestors 'none'";

/// Routes for `/`, `/app/*`, `/sdk/*`, the API reference (`/docs`, `/docs/*`) and the admin page
/// (`/admin`, `/admin/*`).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/app/{*path}", get(app))
        .route("/sdk/{*path}", get(sdk))
        .route("/docs", get(docs_index))
        .route("/docs/", get(docs_index))
        .route("/docs/{*path}", get(docs))
        .route("/admin", get(admin_index))
        .route("/admin/", get(admin_index))
        .route("/admin/{*path}", get(admin))
}

async fn admin_index(headers: HeaderMap) -> Response {
    serve(&ADMIN, "admin", "index.html", &headers)
}

async fn admin(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&ADMIN, "admin", &path, &headers)
}

async fn index(headers: HeaderMap) -> Response {
    serve(&APP, "app", "index.html", &headers)
}

async fn app(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&APP, "app", &path, &headers)
}

async fn docs_index(headers: HeaderMap) -> Response {
    serve(&DOCS, "docs", "index.html", &headers)
}

async fn docs(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&DOCS, "docs", &path, &headers)
}

async fn sdk(Path(path): Path<String>, headers: HeaderMap) -> Response {
    if path.starts_with("test/") {
        return not_found(&path);
    }
    serve(&SDK, "sdk", &path, &headers)
}

fn not_found(path: &str) -> Response {
    ApiError(SignalError::NotFound(format!("no file `{path}`"))).into_response()
}

/// The content type for a file name.
pub fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    match ext.to_ascii_lowercase().as_str() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" | "md" => "text/plain; charset=utf-8",
        "ts" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// The ETag of every embedded file, computed once.
fn etag(key: &str, contents: &[u8]) -> HeaderValue {
    static TAGS: OnceLock<parking_lot::Mutex<HashMap<String, HeaderValue>>> = OnceLock::new();
    let tags = TAGS.get_or_init(Default::default);
    let mut tags = tags.lock();
    tags.entry(key.to_owned())
        .or_insert_with(|| {
            let digest = Sha256::digest(contents);
            let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
            HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex is a valid header value")
        })
        .clone()
}

fn serve(dir: &'static Dir<'static>, root: &str, path: &str, headers: &HeaderMap) -> Response {
    // include_dir paths are relative, with `/` separators; `..` never matches one.
    let Some(file) = dir.get_file(path) else {
        return not_found(path);
    };
    let tag = etag(&format!("{root}/{path}"), file.contents());
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == tag.to_str().unwrap_or_default())
        });
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        file.contents().into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    h.insert(header::ETAG, tag);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if path.ends_with(".html") {
        let csp = if root == "docs" { DOCS_CSP } else { CSP };
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(csp),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    async fn get(uri: &str, etag: Option<&str>) -> Response {
        let mut request = axum::http::Request::get(uri);
        if let Some(tag) = etag {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        routes::<()>()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn serves_the_app_and_the_sdk_with_their_types() {
        let index = get("/", None).await;
        assert_eq!(index.status(), StatusCode::OK);
        assert_eq!(
            index.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert!(
            index
                .headers()
                .contains_key(header::CONTENT_SECURITY_POLICY)
        );
        let sdk = get("/sdk/switchboard.js", None).await;
        assert_eq!(sdk.status(), StatusCode::OK);
        assert_eq!(
            sdk.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        let tag = sdk.headers()[header::ETAG].to_str().unwrap().to_owned();
        assert_eq!(
            get("/sdk/switchboard.js", Some(&tag)).await.status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            get("/app/style.css", None).await.headers()[header::CONTENT_TYPE],
            "text/css; charset=utf-8"
        );
    }

    #[tokio::test]
    async fn serves_the_admin_page_under_the_apps_policy() {
        for path in ["/admin", "/admin/"] {
            let page = get(path, None).await;
            assert_eq!(page.status(), StatusCode::OK, "{path}");
            assert_eq!(page.headers()[header::CONTENT_SECURITY_POLICY], CSP);
        }
        let script = get("/admin/admin.js", None).await;
        assert_eq!(
            script.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            get("/admin/../app/index.html", None).await.status(),
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn unknown_files_and_sdk_tests_are_not_found() {
        for uri in [
            "/sdk/nope.js",
            "/app/../sdk/client.js",
            "/sdk/test/client.test.js",
            "/app/",
        ] {
            assert_eq!(
                get(uri, None).await.status(),
                StatusCode::NOT_FOUND,
                "{uri}"
            );
        }
    }
}
