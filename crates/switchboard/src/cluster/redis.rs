//! The shared store on Redis: the `redis` crate's connection manager (one multiplexed connection
//! that reconnects by itself) for the scripts, and a connection of its own for the inbox, so a
//! large log read never holds up a doorbell.
//!
//! Every write is a Lua script (`lua/`), so each commit is atomic and costs one round
//! trip. Keys are derived from the prefix inside the scripts, which suits a standalone Redis (or a
//! primary with replicas); room and session parts are hash-tagged (`{...}`) with Redis Cluster in
//! mind, which will need the commit split by slot.
//!
//! The channel names, doorbells and script arguments, which must match the Lua byte for byte, are
//! in `redis/wire.rs`.

mod wire;

use std::time::Duration;

use futures_util::{StreamExt, future::BoxFuture, stream::BoxStream};
use redis::{
    Client, Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use switchboard_core::{Rate, RoomUse, RoomView, SessionId, SessionRecord};
use switchboard_protocol::{PeerId, RoomId};

use super::store::{
    Claim, Claimed, Doorbell, Lease, LogEntry, LogRead, Store, StoreError, Write, decode_record,
    room_view,
};
use wire::{encode, parse_doorbell};
pub use wire::{inbox_channel, media_channel, policy_channel};

/// How long a command may take before it counts as failed.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// See the module documentation.
pub struct RedisStore {
    client: Client,
    commands: ConnectionManager,
    prefix: String,
    /// Entries kept per session log.
    log_cap: usize,
    commit: Script,
    room: Script,
    log: Script,
    claim: Script,
    record: Script,
    lease: Script,
    leave: Script,
    peers: Script,
    admit: Script,
    budget: Script,
    media: Script,
}

impl RedisStore {
    /// Connects to `url`; keys and channels go under `prefix`, and each session log keeps its
    /// latest `log_cap` entries.
    pub async fn connect(url: &str, prefix: &str, log_cap: usize) -> Result<Self, StoreError> {
        let client = Client::open(url).map_err(error)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let commands = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(error)?;
        Ok(RedisStore {
            client,
            commands,
            prefix: prefix.to_owned(),
            log_cap,
            commit: Script::new(include_str!("lua/commit.lua")),
            room: Script::new(include_str!("lua/room.lua")),
            log: Script::new(include_str!("lua/log.lua")),
            claim: Script::new(include_str!("lua/claim.lua")),
            record: Script::new(include_str!("lua/record.lua")),
            lease: Script::new(concat!(
                include_str!("lua/let_go.lua"),
                include_str!("lua/lease.lua")
            )),
            peers: Script::new(include_str!("lua/peers.lua")),
            admit: Script::new(include_str!("lua/admit.lua")),
            budget: Script::new(include_str!("lua/budget.lua")),
            media: Script::new(include_str!("lua/media.lua")),
            leave: Script::new(concat!(
                include_str!("lua/let_go.lua"),
                include_str!("lua/leave.lua")
            )),
        })
    }
}

fn error(e: redis::RedisError) -> StoreError {
    StoreError::Failed(e.to_string())
}

impl Store for RedisStore {
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut c = self.commands.clone();
            redis::cmd("PING")
                .query_async::<String>(&mut c)
                .await
                .map(drop)
                .map_err(error)
        })
    }

    fn room<'a>(
        &'a self,
        room: &'a RoomId,
        lock: Option<(&'a str, u64)>,
    ) -> BoxFuture<'a, Result<Option<RoomView>, StoreError>> {
        Box::pin(async move {
            let mut c = self.commands.clone();
            let (token, ms) = lock.unwrap_or(("", 0));
            type Raw = (String, Vec<String>, Vec<String>, Vec<String>, u64, String);
            let raw: Option<Raw> = self
                .room
                .arg(&self.prefix)
                .arg(room.as_str())
                .arg(token)
                .arg(ms)
                .invoke_async(&mut c)
                .await
                .map_err(error)?;
            Ok(
                raw.map(|(mode, members, banned, knocks, quiet, media_mode)| {
                    let members = members
                        .chunks_exact(2)
                        .filter_map(|pair| {
                            let (n, record) = pair[1].split_once('\t')?;
                            Some((n.parse().ok()?, record.to_owned()))
                        })
                        .collect();
                    let knocks = (knocks.chunks_exact(2))
                        .map(|pair| (pair[0].clone(), pair[1].clone()))
                        .collect();
                    let mut view = room_view(&mode, &media_mode, members, banned, knocks);
                    view.quiet = Duration::from_millis(quiet);
                    view
                }),
            )
        })
    }

    fn commit<'a>(
        &'a self,
        node: &'a str,
        token: &'a str,
        writes: &'a [Write],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut c = self.commands.clone();
            let mut call = self.commit.prepare_invoke();
            call.arg(&self.prefix)
                .arg(node)
                .arg(self.log_cap)
                .arg(token);
            for write in writes {
                encode(&mut call, write);
            }
            match call.invoke_async::<i64>(&mut c).await.map_err(error)? {
                -1 => Err(StoreError::Fenced),
                _ => Ok(()),
            }
        })
    }

    fn log_after<'a>(
        &'a self,
        session: &'a SessionId,
        after: u64,
    ) -> BoxFuture<'a, Result<LogRead, StoreError>> {
        Box::pin(async move {
            let mut c = self.commands.clone();
            let (first, raw, holder): (u64, Vec<String>, String) = self
                .log
                .arg(&self.prefix)
                .arg(session.as_str())
                .arg(after)
                .invoke_async(&mut c)
                .await
                .map_err(error)?;
            let entries = raw
                .into_iter()
                .filter_map(|e| {
                    let (kind, text) = e.split_once('\n')?;
                    Some(LogEntry {
                        kind: kind.to_owned(),
                        text: text.to_owned(),
                    })
                })
                .collect();
            Ok(LogRead {
                first,
                entries,
                holder,
            })
        })
    }

    fn claim<'a>(
        &'a self,
        node: &'a str,
        session: &'a SessionId,
        user: &'a str,
        last_seq: u64,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        Box::pin(async move {
            let mut c = self.commands.clone();
            let (answer, from): (i64, Option<String>) = self
                .claim
                .arg(&self.prefix)
                .arg(session.as_str())
                .arg(user)
                .arg(node)
                .arg(last_seq)
                .invoke_async(&mut c)
                .await
                .map_err(error)?;
            Ok(match answer {
                1 => Claim::Won(from.unwrap_or_default()),
                -1 => Claim::Forbidden,
                _ => Claim::Gone,
            })
        })
    }

    fn record<'a>(
        &'a self,
        node: &'a str,
        session: &'a SessionId,
    ) -> BoxFuture<'a, Result<Option<Claimed>, StoreError>> {
        Box::pin(async move {
            let mut c = self.commands.clone();
            let raw: redis::Value = self
                .record
                .arg(&self.prefix)
                .arg(session.as_str())
                .arg(node)
                .invoke_async(&mut c)
                .await
                .map_err(error)?;
            let redis::Value::Array(parts) = raw else {
                return Err(StoreError::Failed(
                    "record.lua: an answer of another shape".into(),
                ));
            };
            if !matches!(parts.first(), Some(redis::Value::Int(1))) {
                return Ok(None);
            }
            type Found = (
                i64,
                String,
                u64,
                String,
                u64,
                Vec<String>,
                Vec<String>,
                Vec<String>,
                String,
            );
            let (_, moving, last_client_seq, peer, inbound_first, inbound, outbox, rooms, user): Found =
                redis::FromRedisValue::from_redis_value(redis::Value::Array(parts))
                    .map_err(|e| StoreError::Failed(format!("record.lua: {e}")))?;
            let record = SessionRecord {
                peer: PeerId::parse(&peer).ok(),
                last_client_seq,
                outbox: outbox.iter().filter_map(|e| decode_record(e)).collect(),
                inbound: inbound
                    .iter()
                    .filter_map(|e| {
                        let (kind, text) = e.split_once('\n')?;
                        Some((super::message_kind(kind)?, text.into()))
                    })
                    .collect(),
                inbound_first,
                rooms: Vec::new(),
            };
            let rooms = rooms.iter().filter_map(|r| RoomId::parse(r).ok()).collect();
            Ok(Some(Claimed {
                moving: !moving.is_empty(),
                record,
                rooms,
                user,
            }))
        })
    }

    fn lease<'a>(
        &'a self,
        node: &'a str,
        token: &'a str,
        lease: Lease,
    ) -> BoxFuture<'a, Result<Vec<SessionId>, StoreError>> {
        Box::pin(async move {
            let mut c = self.commands.clone();
            let answer: redis::Value = self
                .lease
                .arg(&self.prefix)
                .arg(node)
                .arg(lease.lease_ms)
                .arg(lease.window_ms)
                .arg(lease.most)
                .arg(if lease.fresh { "1" } else { "0" })
                .arg(token)
                .arg(if lease.all { "1" } else { "0" })
                .invoke_async(&mut c)
                .await
                .map_err(error)?;
            if answer == redis::Value::Int(-1) {
                return Err(StoreError::Fenced);
            }
            let taken: Vec<String> = redis::FromRedisValue::from_redis_value(answer)
                .map_err(|e| StoreError::Failed(format!("lease.lua: {e}")))?;
            Ok(taken.iter().filter_map(|s| SessionId::parse(s)).collect())
        })
    }

    fn admit<'a>(
        &'a self,
        user: &'a str,
        session: &'a SessionId,
        max: usize,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut c = self.commands.clone();
            self.admit
                .arg(&self.prefix)
                .arg(user)
                .arg(session.as_str())
                .arg(max)
                .invoke_async::<i64>(&mut c)
                .await
                .map(|counted| counted == 1)
                .map_err(error)
        })
    }

    fn budget<'a>(
        &'a self,
        rate: Rate,
        uses: &'a [RoomUse],
    ) -> BoxFuture<'a, Result<Vec<Option<f64>>, StoreError>> {
        Box::pin(async move {
            let mut c = self.commands.clone();
            let mut call = self.budget.prepare_invoke();
            call.arg(&self.prefix).arg(rate.per_sec).arg(rate.burst);
            for u in uses {
                call.arg(u.room.as_str()).arg(u.used);
            }
            let left: Vec<String> = call.invoke_async(&mut c).await.map_err(error)?;
            Ok(left.iter().map(|l| l.parse().ok()).collect())
        })
    }

    fn peers<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(async move {
            let mut c = self.commands.clone();
            self.peers
                .arg(&self.prefix)
                .arg(node)
                .invoke_async::<usize>(&mut c)
                .await
                .map_err(error)
        })
    }

    fn leave<'a>(
        &'a self,
        node: &'a str,
        token: &'a str,
        window_ms: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut c = self.commands.clone();
            self.leave
                .arg(&self.prefix)
                .arg(node)
                .arg(window_ms)
                .arg(token)
                .invoke_async::<i64>(&mut c)
                .await
                .map(drop)
                .map_err(error)
        })
    }

    fn room_changed<'a>(&'a self, room: &'a RoomId) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut c = self.commands.clone();
            redis::cmd("PUBLISH")
                .arg(policy_channel(&self.prefix))
                .arg(room.as_str())
                .query_async::<i64>(&mut c)
                .await
                .map(drop)
                .map_err(error)
        })
    }

    fn room_changes(&self) -> BoxFuture<'_, Result<BoxStream<'static, RoomId>, StoreError>> {
        Box::pin(async move {
            let mut pubsub = self.client.get_async_pubsub().await.map_err(error)?;
            pubsub
                .subscribe(policy_channel(&self.prefix))
                .await
                .map_err(error)?;
            let (sink, stream) = pubsub.split();
            let rooms = stream.filter_map(move |msg| {
                // The subscription lives as long as its stream.
                let _subscribed = &sink;
                std::future::ready(
                    std::str::from_utf8(msg.get_payload_bytes())
                        .ok()
                        .and_then(|room| RoomId::parse(room).ok()),
                )
            });
            Ok(rooms.boxed())
        })
    }

    fn inbox<'a>(
        &'a self,
        node: &'a str,
    ) -> BoxFuture<'a, Result<BoxStream<'static, Doorbell>, StoreError>> {
        Box::pin(async move {
            let mut pubsub = self.client.get_async_pubsub().await.map_err(error)?;
            pubsub
                .subscribe(inbox_channel(&self.prefix, node))
                .await
                .map_err(error)?;
            let (sink, stream) = pubsub.split();
            let doorbells = stream.filter_map(move |msg| {
                // The subscription lives as long as its stream.
                let _subscribed = &sink;
                std::future::ready(
                    std::str::from_utf8(msg.get_payload_bytes())
                        .ok()
                        .and_then(parse_doorbell),
                )
            });
            Ok(doorbells.boxed())
        })
    }

    fn media_node<'a>(
        &'a self,
        room: &'a RoomId,
        node: &'a str,
    ) -> BoxFuture<'a, Result<String, StoreError>> {
        Box::pin(async move {
            let mut c = self.commands.clone();
            self.media
                .arg(&self.prefix)
                .arg(room.as_str())
                .arg(node)
                .arg(super::store::MEDIA_RECORD.as_millis() as u64)
                .invoke_async(&mut c)
                .await
                .map_err(error)
        })
    }

    fn alive<'a>(&'a self, nodes: &'a [String]) -> BoxFuture<'a, Result<Vec<bool>, StoreError>> {
        Box::pin(async move {
            let mut c = self.commands.clone();
            let mut pipe = redis::pipe();
            for node in nodes {
                pipe.exists(format!("{}:node:{{{node}}}", self.prefix));
            }
            pipe.query_async(&mut c).await.map_err(error)
        })
    }

    fn send_media<'a>(
        &'a self,
        node: &'a str,
        command: String,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut c = self.commands.clone();
            redis::cmd("PUBLISH")
                .arg(media_channel(&self.prefix, node))
                .arg(command)
                .query_async::<i64>(&mut c)
                .await
                .map(drop)
                .map_err(error)
        })
    }

    fn media_inbox<'a>(
        &'a self,
        node: &'a str,
    ) -> BoxFuture<'a, Result<BoxStream<'static, String>, StoreError>> {
        Box::pin(self.subscribe(media_channel(&self.prefix, node)))
    }
}

impl RedisStore {
    /// A subscription to `channel`, each message's payload (text) as an item.
    async fn subscribe(&self, channel: String) -> Result<BoxStream<'static, String>, StoreError> {
        let mut pubsub = self.client.get_async_pubsub().await.map_err(error)?;
        pubsub.subscribe(channel).await.map_err(error)?;
        let (sink, stream) = pubsub.split();
        let payloads = stream.filter_map(move |msg| {
            // The subscription lives as long as its stream.
            let _subscribed = &sink;
            std::future::ready(String::from_utf8(msg.get_payload_bytes().to_vec()).ok())
        });
        Ok(payloads.boxed())
    }
}
