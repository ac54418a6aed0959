//! The server's own WebSocket framing, seen from a raw TCP client that writes frames byte by
//! byte: fragmented messages with control frames between their fragments are reassembled, frames
//! split across TCP writes are read whole, and broken framing or text that is not UTF-8 closes
//! the connection with the RFC 6455 code (1002, 1007) while the server keeps serving. Messages
//! written at once are answered in order, and a close written after them comes after the answers.

mod common;

use std::time::Duration;

use common::{TestServer, unix_ms};
use switchboard_protocol::Role;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const TEXT: u8 = 0x1;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// A client frame: masked unless `masked` is false (which the server must refuse).
fn frame(fin: bool, opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![u8::from(fin) << 7 | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | n as u8),
        n => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    let key = [0x12, 0x34, 0x56, 0x78];
    if masked {
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

struct Raw {
    stream: TcpStream,
    buffered: Vec<u8>,
}

impl Raw {
    /// Opens a session by hand: the upgrade request, the `101`, then the server's `hello`.
    async fn open(server: &TestServer, user: &str) -> Raw {
        let token = server.token(user, "r1", Role::Guest);
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let request = format!(
            "GET /v1/ws?token={token} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n",
            server.addr
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Raw {
            stream,
            buffered: Vec::new(),
        };
        let head_end = loop {
            if let Some(at) = raw.buffered.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            raw.fill().await;
        };
        let head = String::from_utf8(raw.buffered.drain(..head_end).collect()).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(
            head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "the accept key of RFC 6455's example: {head}"
        );
        let (opcode, hello) = raw.next_frame().await;
        assert_eq!(opcode, TEXT);
        assert!(
            String::from_utf8(hello)
                .unwrap()
                .contains(r#""type":"hello""#)
        );
        raw
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut chunk))
            .await
            .expect("the server answers in time")
            .unwrap();
        assert!(
            n > 0,
            "the server closed the connection without a close frame"
        );
        self.buffered.extend_from_slice(&chunk[..n]);
    }

    /// The next server frame (never masked, never fragmented): its opcode and payload.
    async fn next_frame(&mut self) -> (u8, Vec<u8>) {
        loop {
            if self.buffered.len() >= 2 {
                assert_eq!(self.buffered[1] & 0x80, 0, "server frames are not masked");
                let (len, start) = match self.buffered[1] & 0x7F {
                    126 if self.buffered.len() >= 4 => (
                        usize::from(u16::from_be_bytes([self.buffered[2], self.buffered[3]])),
                        4,
                    ),
                    126 | 127 => (usize::MAX, 0),
                    n => (usize::from(n), 2),
                };
                if start > 0 && self.buffered.len() >= start + len {
                    assert_eq!(self.buffered[0] & 0x80, 0x80, "server frames are final");
                    let opcode = self.buffered[0] & 0x0F;
                    let payload = self.buffered[start..start + len].to_vec();
                    self.buffered.drain(..start + len);
                    return (opcode, payload);
                }
            }
            self.fill().await;
        }
    }

    /// The next text message that is not a relayed heartbeat or control frame.
    async fn next_text(&mut self) -> String {
        loop {
            let (opcode, payload) = self.next_frame().await;
            if opcode == TEXT {
                return String::from_utf8(payload).unwrap();
            }
        }
    }

    async fn expect_close(&mut self) -> u16 {
        loop {
            let (opcode, payload) = self.next_frame().await;
            if opcode == CLOSE {
                return u16::from_be_bytes([payload[0], payload[1]]);
            }
        }
    }
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
    let mut raw = Raw::open(&server, "frag").await;
    let message = ping_message(1);
    let (a, rest) = message.split_at(5);
    let (b, c) = rest.split_at(10);
    // Three fragments, with a ping between them, which must be answered on its own.
    let mut bytes = frame(false, TEXT, a, true);
    bytes.extend(frame(true, PING, b"hi", true));
    bytes.extend(frame(false, CONTINUATION, b, true));
    bytes.extend(frame(true, CONTINUATION, c, true));
    raw.stream.write_all(&bytes).await.unwrap();
    let (opcode, payload) = raw.next_frame().await;
    assert_eq!((opcode, payload.as_slice()), (PONG, &b"hi"[..]));
    let pong = raw.next_text().await;
    assert!(
        pong.contains(r#""type":"pong""#) && pong.contains(r#""id":"p1""#),
        "{pong}"
    );

    // One frame written a byte at a time still reads as one message.
    for byte in frame(true, TEXT, &ping_message(2), true) {
        raw.stream.write_all(&[byte]).await.unwrap();
        raw.stream.flush().await.unwrap();
    }
    let pong = raw.next_text().await;
    assert!(pong.contains(r#""id":"p2""#), "{pong}");
}

#[tokio::test]
async fn broken_framing_closes_1002_and_bad_text_closes_1007() {
    let server = TestServer::start().await;
    let mut unmasked = Raw::open(&server, "unmasked").await;
    let frame_bytes = frame(true, TEXT, &ping_message(1), false);
    unmasked.stream.write_all(&frame_bytes).await.unwrap();
    assert_eq!(unmasked.expect_close().await, 1002);

    let mut stray = Raw::open(&server, "stray").await;
    let frame_bytes = frame(true, CONTINUATION, b"x", true);
    stray.stream.write_all(&frame_bytes).await.unwrap();
    assert_eq!(stray.expect_close().await, 1002);

    let mut latin1 = Raw::open(&server, "latin1").await;
    let frame_bytes = frame(true, TEXT, b"{\"type\":\"ping\",\"x\":\"\xe9\"}", true);
    latin1.stream.write_all(&frame_bytes).await.unwrap();
    assert_eq!(latin1.expect_close().await, 1007);

    // The server keeps serving.
    let mut fine = Raw::open(&server, "fine").await;
    fine.stream
        .write_all(&frame(true, TEXT, &ping_message(1), true))
        .await
        .unwrap();
    assert!(fine.next_text().await.contains(r#""type":"pong""#));
}

#[tokio::test]
async fn messages_written_at_once_are_answered_in_order_before_the_close() {
    let server = TestServer::start().await;
    let mut raw = Raw::open(&server, "burst").await;
    let mut bytes = Vec::new();
    for seq in 1..=3 {
        bytes.extend(frame(true, TEXT, &ping_message(seq), true));
    }
    bytes.extend(frame(true, CLOSE, &1000u16.to_be_bytes(), true));
    raw.stream.write_all(&bytes).await.unwrap();
    let mut answers = Vec::new();
    let code = loop {
        match raw.next_frame().await {
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
