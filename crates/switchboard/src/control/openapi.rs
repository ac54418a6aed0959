//! The OpenAPI 3.1 document, served at `/openapi.json`: generated from the handlers' annotations
//! (`#[utoipa::path]`) and the request and answer types (`ToSchema`), so it cannot drift from the
//! code. This file holds what the handlers share: the bearer security scheme, the error body and
//! one reusable response per refusal, and the schemas of types from other crates.

use axum::{extract::State, http::header, response::IntoResponse};
use switchboard_protocol::ErrorCode;
use utoipa::{
    Modify, OpenApi, PartialSchema, ToSchema,
    openapi::{
        self, ContentBuilder, HeaderBuilder, ObjectBuilder, RefOr, ResponseBuilder, Schema, Type,
        schema::SchemaType,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

/// The document's fixed parts; the paths come from the routes (`super::routes`).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "switchboard control API",
        description = "Accounts, stored rooms and share codes of a switchboard server. \
                       Errors are `{\"error\": {\"code\", \"message\"}}` with the code's status \
                       (docs/protocol.md, Error codes).",
        license(name = "MIT OR Apache-2.0")
    ),
    modifiers(&BearerScheme),
    components(schemas(ErrorBody, ErrorDetail), responses(
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PayloadTooLarge,
        TooManyRequests,
        Unavailable
    )),
    tags(
        (name = "accounts", description = "Registering, signing in, profiles"),
        (name = "rooms", description = "Stored rooms and room tokens"),
        (name = "live", description = "Calls in stored rooms: members, removal, server messages"),
        (name = "invites", description = "Share codes"),
        (name = "admin", description = "What needs the admin grant: the audit log")
    )
)]
pub struct ApiDoc;

/// The `bearer` security scheme: an access token from `POST /v1/auth/login`.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, api: &mut openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from POST /v1/auth/login or /v1/auth/refresh",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as served: `api` with what comes from the settings filled in: the bound of
/// `max_peers`, and `sfu` among the media only on a server that runs the SFU (`auto` is mesh there).
pub fn served(api: &openapi::OpenApi, max_peers: usize, sfu: bool) -> bytes::Bytes {
    let mut document = serde_json::to_value(api).unwrap_or_default();
    for schema in ["RoomRequest", "RoomChange"] {
        let path = format!("/components/schemas/{schema}/properties/max_peers");
        if let Some(property) = document.pointer_mut(&path) {
            property["maximum"] = max_peers.into();
        }
    }
    if !sfu && let Some(media) = document.pointer_mut("/components/schemas/Media/enum") {
        *media = serde_json::json!(["mesh", "auto"]);
    }
    document.to_string().into()
}

/// `GET /openapi.json`.
pub async fn document(State(document): State<bytes::Bytes>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document)
}

/// The error body: `{"error": {"code", "message"}}`.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: `crate::error::ApiError` writes the body
pub struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only
pub struct ErrorDetail {
    /// One of the documented codes; clients branch on it.
    #[schema(schema_with = error_code)]
    code: String,
    /// For people; carries no internals.
    message: String,
}

/// The error codes, from the protocol's list.
fn error_code() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .enum_values(Some(ErrorCode::ALL.iter().map(|c| c.as_str())))
        .into()
}

/// A string of one of `values`, or null when `nullable`.
fn one_of(values: &[&str], nullable: bool) -> Schema {
    let mut types = vec![Type::String];
    let mut values: Vec<serde_json::Value> = values.iter().map(|v| (*v).into()).collect();
    if nullable {
        types.push(Type::Null);
        values.push(serde_json::Value::Null);
    }
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter(types))
        .enum_values(Some(values))
        .into()
}

const ROLES: &[&str] = &["host", "guest"];
const MODES: &[&str] = &["free_for_all", "host_only"];

/// A role in a room.
pub fn role() -> Schema {
    one_of(ROLES, false)
}

/// A role in a room, or null for the default.
pub fn role_or_null() -> Schema {
    one_of(ROLES, true)
}

/// A room's control mode.
pub fn mode() -> Schema {
    one_of(MODES, false)
}

/// A room's control mode, or null for the default.
pub fn mode_or_null() -> Schema {
    one_of(MODES, true)
}

fn error_response(description: &str, retry_after: bool) -> RefOr<openapi::Response> {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(ErrorBody::schema()))
            .build(),
    );
    if retry_after {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(u64::schema()))
                .description(Some("Seconds to wait before trying again"))
                .build(),
        );
    }
    response.build().into()
}

/// Declares a reusable error response named after the type.
macro_rules! refusal {
    ($name:ident, $description:literal, $retry_after:literal) => {
        #[doc = $description]
        pub struct $name;

        impl<'r> utoipa::ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<openapi::Response>) {
                (
                    stringify!($name),
                    error_response($description, $retry_after),
                )
            }
        }
    };
}

refusal!(
    BadRequest,
    "`invalid_message`: the body, path or query is malformed or a value is out of range",
    false
);
refusal!(
    Unauthorized,
    "`unauthorized`: no valid access token, or wrong credentials",
    false
);
refusal!(
    Forbidden,
    "`forbidden`: the caller lacks the grant this needs",
    false
);
refusal!(
    NotFound,
    "`not_found`: no such resource, or not the caller's",
    false
);
refusal!(Conflict, "`conflict`: it exists already", false);
refusal!(
    PayloadTooLarge,
    "`payload_too_large`: a part of the body is over its documented limit",
    false
);
refusal!(
    Unavailable,
    "`unavailable`: in cluster mode, the shared store (Redis) cannot be reached; try again",
    false
);
refusal!(
    TooManyRequests,
    "`rate_limited`: over the budget of this address or account; retry after `Retry-After`",
    true
);
