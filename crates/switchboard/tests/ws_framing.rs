//! The server's own WebSocket framing, seen from a raw TCP client that writes frames byte by
//! byte: fragmented messages with control frames between their fragments are reassembled, frames
//! split across TCP writes are read whole, and broken framing or text that is not UTF-8 closes
//! the connection with the RFC 6455 code (1002, 1007) while the server keeps serving. Messages
//! written at once are answered in order, and a close written after them comes after the answers.

use switchboard_protocol::Role;
use switchboard_testkit::{
    RawClient, TestServer,
    raw::{CLOSE, CONTINUATION, PING, PONG, TEXT, frame},
    unix_ms,
};

/// A session of `user` on a raw client, its `hello` read.
async fn open(server: &TestServer, user: &str) -> RawClient {
    server.raw_client(user, "r1", Role::Guest).await
}

fn ping_message(seq: u64) -> Vec<u8> {
    format!(
        r#"{{"type":"ping","seq":{seq},"ts":{},"id":"p{seq}"}}"#,
        unix_ms()
    )
    .into_bytes()
}

#[tokio::test]
async fn fragments_and_split_frames_are_reassembled() {
    let server = TestServer::start().await;
    let mut raw = open(&server, "frag").await;
    let message = ping_message(1);
    let (a, rest) = message.split_at(5);
    let (b, c) = rest.split_at(10);
    // Three fragments, with a ping between them, which must be answered on its own.
    let mut bytes = frame(false, TEXT, a, true);
    bytes.extend(frame(true, PING, b"hi", true));
    bytes.extend(frame(false, CONTINUATION, b, true));
    bytes.extend(frame(true, CONTINUATION, c, true));
    raw.write(&bytes).await;
    let (opcode, payload) = raw.next_frame().await.expect("a frame");
    assert_eq!((opcode, payload.as_slice()), (PONG, &b"hi"[..]));
    let pong = raw.recv_text().await;
    assert!(
        pong.contains(r#""type":"pong""#) && pong.contains(r#""id":"p1""#),
        "{pong}"
    );

    // One frame written a byte at a time still reads as one message.
    for byte in frame(true, TEXT, &ping_message(2), true) {
        raw.write(&[byte]).await;
    }
    let pong = raw.recv_text().await;
    assert!(pong.contains(r#""id":"p2""#), "{pong}");
}

#[tokio::test]
async fn broken_framing_closes_1002_and_bad_text_closes_1007() {
    let server = TestServer::start().await;
    let mut unmasked = open(&server, "unmasked").await;
    unmasked
        .write(&frame(true, TEXT, &ping_message(1), false))
        .await;
    assert_eq!(unmasked.expect_close().await, Some(1002));

    let mut stray = open(&server, "stray").await;
    stray.write(&frame(true, CONTINUATION, b"x", true)).await;
    assert_eq!(stray.expect_close().await, Some(1002));

    let mut latin1 = open(&server, "latin1").await;
    let text = b"{\"type\":\"ping\",\"x\":\"\xe9\"}";
    latin1.write(&frame(true, TEXT, text, true)).await;
    assert_eq!(latin1.expect_close().await, Some(1007));

    // The server keeps serving.
    let mut fine = open(&server, "fine").await;
    fine.write(&frame(true, TEXT, &ping_message(1), true)).await;
    assert!(fine.recv_text().await.contains(r#""type":"pong""#));
}

#[tokio::test]
async fn messages_written_at_once_are_answered_in_order_before_the_close() {
    let server = TestServer::start().await;
    let mut raw = open(&server, "burst").await;
    let mut bytes = Vec::new();
    for seq in 1..=3 {
        bytes.extend(frame(true, TEXT, &ping_message(seq), true));
    }
    bytes.extend(frame(true, CLOSE, &1000u16.to_be_bytes(), true));
    raw.write(&bytes).await;
    let mut answers = Vec::new();
    let code = loop {
        match raw.next_frame().await.expect("a frame") {
            (TEXT, payload) => answers.push(String::from_utf8(payload).unwrap()),
            (CLOSE, payload) => break u16::from_be_bytes([payload[0], payload[1]]),
            _ => {}
        }
    };
    assert_eq!(code, 1000);
    assert_eq!(answers.len(), 3, "{answers:?}");
    let ids: Vec<bool> = (1..=3)
        .map(|seq| answers[seq - 1].contains(&format!(r#""id":"p{seq}""#)))
        .collect();
    assert_eq!(ids, [true; 3], "{answers:?}");
}
