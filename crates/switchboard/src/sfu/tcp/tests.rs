//! ICE-TCP connections over real loopback sockets: frames both ways in RFC 4571 framing, an idle
//! connection closed after [`IDLE`] (on tokio's paused clock), and the cap on connections.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_util::sync::CancellationToken;

use super::{IDLE, TcpConnections, TcpEvent};

async fn connected(connections: &mut TcpConnections, listener: &TcpListener) -> TcpStream {
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (stream, peer) = listener.accept().await.unwrap();
    connections.accepted(stream, peer);
    client
}

#[tokio::test]
async fn frames_go_both_ways_with_a_two_byte_length() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (events, mut inbound) = mpsc::channel(8);
    let stop = CancellationToken::new();
    let mut connections = TcpConnections::new(events, stop.clone());
    let mut client = connected(&mut connections, &listener).await;
    let peer = client.local_addr().unwrap();

    client.write_all(&[0, 3, b'a', b'b', b'c']).await.unwrap();
    match inbound.recv().await.unwrap() {
        TcpEvent::Frame(from, frame) => {
            assert_eq!(from, peer);
            assert_eq!(&frame[..], b"abc");
        }
        TcpEvent::Closed(_) => panic!("closed"),
    }
    assert!(connections.send(peer, b"hello".to_vec()));
    let mut got = [0; 7];
    client.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"\0\x05hello");
    assert!(
        !connections.send("127.0.0.1:9".parse().unwrap(), b"x".to_vec()),
        "no such connection"
    );

    drop(client);
    assert!(matches!(inbound.recv().await.unwrap(), TcpEvent::Closed(p) if p == peer));
    connections.closed(peer);
    assert!(connections.is_empty());
    stop.cancel();
    connections.stopped().await;
}

#[tokio::test(start_paused = true)]
async fn a_silent_connection_is_closed_after_the_idle_time() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (events, mut inbound) = mpsc::channel(8);
    let stop = CancellationToken::new();
    let mut connections = TcpConnections::new(events, stop.clone());
    let mut client = connected(&mut connections, &listener).await;
    let before = tokio::time::Instant::now();
    assert!(matches!(inbound.recv().await.unwrap(), TcpEvent::Closed(_)));
    assert!(before.elapsed() >= IDLE);
    let mut rest = Vec::new();
    assert_eq!(
        client.read_to_end(&mut rest).await.unwrap(),
        0,
        "the server closed it"
    );
    stop.cancel();
    connections.stopped().await;
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_at_accept() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (events, _inbound) = mpsc::channel(8);
    let stop = CancellationToken::new();
    let mut connections = TcpConnections::new(events, stop.clone());
    let mut clients = Vec::new();
    for _ in 0..super::MAX_CONNECTIONS {
        clients.push(connected(&mut connections, &listener).await);
    }
    assert_eq!(connections.len(), super::MAX_CONNECTIONS);
    let mut refused = connected(&mut connections, &listener).await;
    assert_eq!(connections.len(), super::MAX_CONNECTIONS);
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), refused.read_to_end(&mut rest));
    assert_eq!(read.await.expect("closed at once").unwrap(), 0);
    stop.cancel();
    connections.stopped().await;
}
