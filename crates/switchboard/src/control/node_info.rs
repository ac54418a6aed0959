//! `GET /v1/node`: what an operator asks of the node a request reaches (admin grant only): its
//! id and version, how long it has served, what its hub holds now (sessions, rooms, members),
//! which database and media it serves, and in cluster mode whether it reaches Redis. The admin
//! page shows it beside the rooms; monitoring scrapes `/metrics` instead, which has all of this
//! as series but needs no account.

use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};
use switchboard_protocol::SignalError;
use switchboard_store::Backend;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    Control,
    extract::{Caller, Refused},
    openapi::{Forbidden, Unauthorized},
    rooms::Media,
};

pub(super) fn routes() -> OpenApiRouter<Control> {
    OpenApiRouter::new().routes(routes!(node))
}

/// The node that answered.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NodeInfo {
    /// Its id in the cluster (`node_id`); null on a single node.
    pub node: Option<String>,
    /// The server's version.
    pub version: String,
    /// Seconds since it started serving.
    pub uptime_secs: u64,
    /// Sessions it holds, attached or waiting for a resume.
    pub sessions: usize,
    /// Of those, sessions with a transport attached now.
    pub attached: usize,
    /// Rooms with a member on this node.
    pub rooms: usize,
    /// Room memberships of its sessions.
    pub members: usize,
    /// The database: `sqlite` or `postgres`.
    pub database: String,
    /// New rooms' media setting (`media_mode`): `mesh`, `sfu` or `auto`.
    pub media_mode: String,
    /// Whether it runs the SFU (`sfu.udp_port`).
    pub sfu: bool,
    /// Cluster mode: its link to Redis; null on a single node.
    pub cluster: Option<ClusterLink>,
}

/// A node's link to the cluster's Redis.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClusterLink {
    /// The key prefix (`redis_prefix`).
    pub prefix: String,
    /// Redis answers its probes.
    pub reachable: bool,
    /// Its lease ran out and it let its sessions go (docs/cluster.md, fencing).
    pub fenced: bool,
}

/// The node that answered this request (admin grant only).
#[utoipa::path(
    get, path = "/v1/node", tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The node that answered", body = NodeInfo),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    )
)]
async fn node(State(control): State<Control>, caller: Caller) -> Result<Json<NodeInfo>, Refused> {
    if !control.is_admin(&caller).await? {
        return Err(SignalError::Forbidden("node information needs the admin grant".into()).into());
    }
    let node = control.node();
    let stats = node.hub().stats();
    let config = node.config();
    let cluster = node.cluster();
    Ok(Json(NodeInfo {
        node: cluster.map(|c| c.node_id().to_owned()),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_secs: control.started().elapsed().as_secs(),
        sessions: stats.sessions,
        attached: stats.attached,
        rooms: stats.rooms,
        members: stats.members,
        database: match control.store().backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
        .to_owned(),
        media_mode: Media::from(config.media_mode).as_str().to_owned(),
        sfu: config.sfu.udp_port.is_some(),
        cluster: cluster.map(|c| ClusterLink {
            prefix: config.redis_prefix.clone(),
            reachable: c.reachable(),
            fenced: c.fenced(),
        }),
    }))
}
