//! The bare relay: the leanest WebSocket relay tokio and tungstenite make, the ceiling any
//! signaling server can approach on this machine.
//!
//! A client connects to `ws://host/<room>`; every text or binary frame it sends is forwarded,
//! verbatim and without parsing, to the other connections of the same room (for a pair: to the
//! other one). No auth, no ids, no acks, no queues: the reading task writes straight into the
//! receivers' sockets. `TCP_NODELAY`, 4 KiB read buffers, writes not buffered.

use std::{collections::HashMap, net::SocketAddr, sync::Arc};

use futures_util::{SinkExt, StreamExt, stream::SplitSink};
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        Message,
        handshake::server::{Request, Response},
    },
};

use crate::net::ws_config;

type Sink = Arc<tokio::sync::Mutex<SplitSink<WebSocketStream<TcpStream>, Message>>>;

#[derive(Default)]
struct Room {
    members: Mutex<Vec<(u64, Sink)>>,
}

#[derive(Default)]
struct Rooms {
    by_name: Mutex<HashMap<String, Arc<Room>>>,
    next_id: Mutex<u64>,
}

/// Accepts connections on `listener` until the task is dropped or the listener fails.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let rooms = Arc::new(Rooms::default());
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) if is_transient(&e) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let rooms = rooms.clone();
        tokio::spawn(async move {
            let _ = connection(stream, rooms).await;
        });
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    !matches!(
        e.kind(),
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::NotConnected
    )
}

/// Binds `addr` and serves in a background task; returns the bound address.
pub async fn spawn(addr: SocketAddr) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = serve(listener).await;
    });
    Ok((bound, task))
}

async fn connection(stream: TcpStream, rooms: Arc<Rooms>) -> Result<(), String> {
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut path = String::new();
    // The error type is tungstenite's callback signature, not ours to shrink.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| {
        path = request.uri().path().trim_start_matches('/').to_owned();
        Ok(response)
    };
    let ws = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(ws_config()))
        .await
        .map_err(|e| e.to_string())?;
    let (sink, mut source) = ws.split();
    let sink: Sink = Arc::new(tokio::sync::Mutex::new(sink));
    let id = {
        let mut next = rooms.next_id.lock();
        *next += 1;
        *next
    };
    let room = rooms
        .by_name
        .lock()
        .entry(path.clone())
        .or_default()
        .clone();
    room.members.lock().push((id, sink.clone()));
    let mut others: Vec<Sink> = Vec::new();
    while let Some(frame) = source.next().await {
        let frame = match frame {
            Ok(frame @ (Message::Text(_) | Message::Binary(_))) => frame,
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        others.clear();
        others.extend(
            room.members
                .lock()
                .iter()
                .filter(|(member, _)| *member != id)
                .map(|(_, sink)| sink.clone()),
        );
        for other in &others {
            // A receiver that is gone is noticed by its own reading task.
            let _ = other.lock().await.send(frame.clone()).await;
        }
    }
    let empty = {
        let mut members = room.members.lock();
        members.retain(|(member, _)| *member != id);
        members.is_empty()
    };
    if empty {
        let mut by_name = rooms.by_name.lock();
        if by_name
            .get(&path)
            .is_some_and(|r| Arc::ptr_eq(r, &room) && r.members.lock().is_empty())
        {
            by_name.remove(&path);
        }
    }
    let _ = sink.lock().await.close().await;
    Ok(())
}
