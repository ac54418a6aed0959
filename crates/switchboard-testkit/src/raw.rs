//! A WebSocket client on a bare TCP stream that does only what it is told, frame by frame and byte
//! by byte. Unlike [`Client`](crate::Client) it never answers a ping by itself, so once a test
//! stops calling it, the server's heartbeat sees a dead peer; it writes frames a client library
//! would refuse to (unmasked, fragmented around control frames, split across writes, invalid
//! UTF-8); and it can read what the server sent after the server hung up.
//!
//! It checks what the server writes: the handshake is RFC 6455's own example (so the server must
//! answer its accept value), and server frames are final and unmasked.

use std::net::SocketAddr;

use switchboard_protocol::{ClientEnvelope, Role, ServerEnvelope};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{DEADLINE, TestServer, unix_ms};

/// Frame opcodes (RFC 6455, 5.2).
pub const CONTINUATION: u8 = 0x0;
/// A text frame.
pub const TEXT: u8 = 0x1;
/// A close frame.
pub const CLOSE: u8 = 0x8;
/// A ping.
pub const PING: u8 = 0x9;
/// A pong.
pub const PONG: u8 = 0xA;

/// The handshake key of RFC 6455's example (1.3), and the accept value it must get back.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// See the module documentation.
pub struct RawClient {
    stream: TcpStream,
    /// Read and not yet taken as a frame.
    buf: Vec<u8>,
    /// The last client `seq` used.
    pub seq: u64,
}

impl TestServer {
    /// A [`RawClient`] of `user` (a token for `room` as `role`), its `hello` read.
    pub async fn raw_client(&self, user: &str, room: &str, role: Role) -> RawClient {
        let token = self.token(user, room, role);
        let mut c = RawClient::connect(self.addr, &format!("/v1/ws?token={token}")).await;
        c.expect("hello").await;
        c
    }
}

impl RawClient {
    /// Upgrades `GET path_and_query` (such as `/v1/ws?token=...`) on `addr` by hand.
    pub async fn connect(addr: SocketAddr, path_and_query: &str) -> RawClient {
        let stream = tokio::time::timeout(DEADLINE, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        let mut c = RawClient {
            stream,
            buf: Vec::new(),
            seq: 0,
        };
        let request = format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        c.write(request.as_bytes()).await;
        let end = loop {
            if let Some(i) = c.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            assert!(c.fill().await, "connection closed during the handshake");
        };
        let head = String::from_utf8_lossy(&c.buf[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
        assert!(
            head.lines()
                .any(|line| line.split_once(':').is_some_and(|(name, value)| name
                    .eq_ignore_ascii_case("sec-websocket-accept")
                    && value.trim() == ACCEPT)),
            "the accept value of RFC 6455's example: {head}"
        );
        c.buf.drain(..end);
        c
    }

    /// Writes `bytes` as they are: frames (see [`frame`]), part of one, or anything else.
    pub async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
        self.stream.flush().await.expect("flush");
    }

    /// Sends one masked text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.write(&frame(true, TEXT, text.as_bytes(), true)).await;
    }

    /// Sends `env` as one text frame.
    pub async fn send(&mut self, env: ClientEnvelope) {
        self.send_text(&env.to_json()).await;
    }

    /// An envelope with the next seq and the current time.
    pub fn msg(&mut self, kind: &str) -> ClientEnvelope {
        self.seq += 1;
        ClientEnvelope::new(kind, self.seq, unix_ms())
    }

    /// Reads more of the stream; `false` at its end.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(DEADLINE, self.stream.read(&mut chunk))
            .await
            .expect("the server writes in time")
            .expect("read");
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// The next frame as (opcode, payload); `None` at the end of the stream.
    pub async fn next_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if let Some((opcode, payload, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                return Some((opcode, payload));
            }
            if !self.fill().await {
                assert!(self.buf.is_empty(), "stream ended inside a frame");
                return None;
            }
        }
    }

    /// The next text message as sent, skipping pings and pongs.
    pub async fn recv_text(&mut self) -> String {
        loop {
            match self.next_frame().await.expect("stream open") {
                (TEXT, payload) => return String::from_utf8(payload).expect("UTF-8 text"),
                (PING | PONG, _) => continue,
                (opcode, payload) => panic!("expected text, got opcode {opcode}: {payload:?}"),
            }
        }
    }

    /// The next text message, decoded, skipping pings and pongs.
    pub async fn recv(&mut self) -> ServerEnvelope {
        let text = self.recv_text().await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("valid JSON ({e}): {text}"))
    }

    /// The next message, which must be of `kind`.
    pub async fn expect(&mut self, kind: &str) -> ServerEnvelope {
        let env = self.recv().await;
        assert_eq!(env.kind, kind, "expected {kind}, got {env:?}");
        env
    }

    /// Skips pings and pongs up to the close frame; returns its code (`None` if the stream ended
    /// without one).
    pub async fn expect_close(&mut self) -> Option<u16> {
        loop {
            match self.next_frame().await? {
                (CLOSE, payload) => {
                    return payload
                        .get(..2)
                        .map(|code| u16::from_be_bytes([code[0], code[1]]));
                }
                (PING | PONG, _) => continue,
                (opcode, payload) => panic!(
                    "expected close, got opcode {opcode}: {}",
                    String::from_utf8_lossy(&payload)
                ),
            }
        }
    }
}

/// A client frame: final or not (`fin`), masked unless `masked` is false (which a server must
/// refuse).
pub fn frame(fin: bool, opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![u8::from(fin) << 7 | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// One server frame at the start of `buf`: (opcode, payload, bytes used); `None` until it is all
/// there. Server frames must be final and unmasked.
fn parse_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    assert_eq!(b0 & 0x80, 0x80, "server frames are final");
    assert_eq!(b1 & 0x80, 0, "server frames are not masked");
    let (len, header) = match b1 & 0x7f {
        126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 4),
        127 => {
            let bytes: [u8; 8] = buf.get(2..10)?.try_into().expect("8 bytes");
            (u64::from_be_bytes(bytes) as usize, 10)
        }
        n => (n as usize, 2),
    };
    let payload = buf.get(header..header + len)?.to_vec();
    Some((b0 & 0x0f, payload, header + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame as a server would write it: `frame` without the mask.
    fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        frame(true, opcode, payload, false)
    }

    #[test]
    fn frames_of_every_length_encoding_read_back() {
        for len in [0, 125, 126, 65_535, 65_536] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let bytes = server_frame(TEXT, &payload);
            let header = match len {
                0..=125 => 2,
                126..=65_535 => 4,
                _ => 10,
            };
            assert_eq!(bytes.len(), header + len, "{len}");
            assert_eq!(parse_frame(&bytes), Some((TEXT, payload, bytes.len())));
            // Not all there yet.
            assert_eq!(parse_frame(&bytes[..bytes.len() - 1]), None, "{len}");
        }
    }

    #[test]
    fn a_masked_frame_carries_the_payload_xored_with_its_key() {
        let bytes = frame(false, CONTINUATION, b"abcdef", true);
        assert_eq!(bytes[0], CONTINUATION, "not final");
        assert_eq!(bytes[1], 0x80 | 6);
        let key = &bytes[2..6];
        let unmasked: Vec<u8> = bytes[6..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect();
        assert_eq!(unmasked, b"abcdef");
    }
}
