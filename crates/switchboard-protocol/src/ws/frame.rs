//! RFC 6455 framing, server side: reads the client's masked frames out of received bytes and
//! writes the server's unmasked frame headers. It owns no buffer and does no IO, so the connection
//! decides where bytes live (an idle connection keeps none) and how they reach the socket.
//!
//! No extension is negotiated, so the reserved bits must be clear; client frames must be masked;
//! control frames must be final and at most 125 bytes. Violations end the connection with the
//! close code [`Violation::close_code`] names.

/// What a frame carries; the discriminants are the wire's opcode bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Opcode {
    /// More of a fragmented message.
    Continuation = 0x0,
    /// A text message (or its first fragment).
    Text = 0x1,
    /// A binary message (or its first fragment).
    Binary = 0x2,
    /// The closing handshake.
    Close = 0x8,
    /// A ping, answered with a pong carrying the same bytes.
    Ping = 0x9,
    /// A pong.
    Pong = 0xA,
}

impl Opcode {
    fn from_bits(bits: u8) -> Option<Opcode> {
        [
            Opcode::Continuation,
            Opcode::Text,
            Opcode::Binary,
            Opcode::Close,
            Opcode::Ping,
            Opcode::Pong,
        ]
        .into_iter()
        .find(|opcode| *opcode as u8 == bits)
    }

    /// Whether this is a control frame (close, ping, pong).
    #[inline]
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// Why the client's bytes are not acceptable WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// Broken framing: unmasked frame, reserved bits or opcode, bad fragmentation, oversized
    /// control frame.
    #[error("{0}")]
    Protocol(&'static str),
    /// A frame or a reassembled message over the hard size cap.
    #[error("frame over the hard size cap")]
    TooBig,
    /// A text message that is not UTF-8.
    #[error("text frame is not valid UTF-8")]
    NotUtf8,
}

impl Violation {
    /// The close code that reports it (RFC 6455 section 7.4.1).
    #[inline]
    pub fn close_code(self) -> u16 {
        match self {
            Violation::Protocol(_) => 1002,
            Violation::TooBig => 1009,
            Violation::NotUtf8 => 1007,
        }
    }
}

/// A client frame's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Whether this frame ends its message.
    pub fin: bool,
    /// What it carries.
    pub opcode: Opcode,
    /// The key its payload is masked with.
    pub mask: [u8; 4],
    /// Bytes of header before the payload.
    pub header_len: usize,
    /// Bytes of payload.
    pub payload_len: usize,
}

impl Header {
    /// Header and payload together.
    #[inline]
    pub fn frame_len(&self) -> usize {
        self.header_len + self.payload_len
    }
}

/// Reads the header at the start of `bytes`: `Ok(None)` when more bytes are needed to know it.
/// A payload longer than `max_payload` is refused as soon as its length is known, before any of
/// it is buffered.
#[inline]
pub fn parse_header(bytes: &[u8], max_payload: usize) -> Result<Option<Header>, Violation> {
    let [first, second, ..] = *bytes else {
        return Ok(None);
    };
    if first & 0x70 != 0 {
        return Err(Violation::Protocol(
            "reserved bits set without an extension",
        ));
    }
    let opcode = Opcode::from_bits(first & 0x0F).ok_or(Violation::Protocol("unknown opcode"))?;
    let fin = first & 0x80 != 0;
    if second & 0x80 == 0 {
        return Err(Violation::Protocol("client frames must be masked"));
    }
    let (length_len, short_len) = match second & 0x7F {
        126 => (2, None),
        127 => (8, None),
        n => (0, Some(usize::from(n))),
    };
    if opcode.is_control() && (!fin || short_len.is_none()) {
        return Err(Violation::Protocol(
            "control frames must be final and at most 125 bytes",
        ));
    }
    let Some(length) = bytes.get(2..2 + length_len) else {
        return Ok(None);
    };
    let payload_len = match short_len {
        Some(n) => n,
        None => {
            let mut be = [0u8; 8];
            be[8 - length_len..].copy_from_slice(length);
            usize::try_from(u64::from_be_bytes(be)).unwrap_or(usize::MAX)
        }
    };
    if payload_len > max_payload {
        return Err(Violation::TooBig);
    }
    let header_len = 2 + length_len + 4;
    let Some(header) = bytes.get(..header_len) else {
        return Ok(None);
    };
    let mut mask = [0u8; 4];
    mask.copy_from_slice(&header[header_len - 4..]);
    Ok(Some(Header {
        fin,
        opcode,
        mask,
        header_len,
        payload_len,
    }))
}

/// Unmasks a whole payload in place (the key cycles every four bytes from its first byte).
#[inline]
pub fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let word = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = payload.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let value = u64::from_ne_bytes((&*chunk).try_into().expect("chunks of eight")) ^ word;
        chunk.copy_from_slice(&value.to_ne_bytes());
    }
    for (byte, key) in chunks.into_remainder().iter_mut().zip(mask.iter().cycle()) {
        *byte ^= key;
    }
}

/// The longest server frame header: opcode byte, length byte, 64-bit length.
pub const MAX_HEADER: usize = 10;

/// Writes the header of an unmasked, final server frame carrying `payload_len` bytes into `out`;
/// returns how many bytes it used.
#[inline]
pub fn write_header(out: &mut [u8; MAX_HEADER], opcode: Opcode, payload_len: usize) -> usize {
    out[0] = 0x80 | opcode as u8;
    match payload_len {
        0..=125 => {
            out[1] = payload_len as u8;
            2
        }
        126..=0xFFFF => {
            out[1] = 126;
            out[2..4].copy_from_slice(&(payload_len as u16).to_be_bytes());
            4
        }
        _ => {
            out[1] = 127;
            out[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
            10
        }
    }
}

/// A close frame's payload: the code, then the reason (truncated to fit a control frame).
#[inline]
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    payload
}

/// Reads a received close frame's payload: `Err` if it is malformed (RFC 6455 section 5.5.1).
#[inline]
pub fn parse_close(payload: &[u8]) -> Result<Option<u16>, Violation> {
    match payload {
        [] => Ok(None),
        [_] => Err(Violation::Protocol("a close payload needs a two-byte code")),
        [high, low, reason @ ..] => {
            std::str::from_utf8(reason).map_err(|_| Violation::NotUtf8)?;
            let code = u16::from_be_bytes([*high, *low]);
            let valid = matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999);
            if !valid {
                return Err(Violation::Protocol("invalid close code"));
            }
            Ok(Some(code))
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A masked client frame, as a browser sends it.
    pub fn client_frame(fin: bool, opcode: Opcode, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut frame = vec![u8::from(fin) << 7 | opcode as u8];
        match payload.len() {
            n @ 0..=125 => frame.push(0x80 | n as u8),
            n @ 126..=0xFFFF => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        let start = frame.len();
        frame.extend_from_slice(payload);
        unmask(&mut frame[start..], mask);
        frame
    }

    #[test]
    fn parses_every_length_encoding() {
        for len in [0, 1, 125, 126, 1000, 0xFFFF, 0x10000, 70_000] {
            let payload = vec![b'x'; len];
            let frame = client_frame(true, Opcode::Text, &payload, [1, 2, 3, 4]);
            let header = parse_header(&frame, 1 << 20).unwrap().unwrap();
            assert_eq!(header.payload_len, len);
            assert_eq!(header.frame_len(), frame.len());
            assert_eq!(header.opcode, Opcode::Text);
            assert!(header.fin);
            let mut body = frame[header.header_len..].to_vec();
            unmask(&mut body, header.mask);
            assert_eq!(body, payload);
        }
    }

    #[test]
    fn needs_the_whole_header_before_answering() {
        let frame = client_frame(true, Opcode::Text, &[b'a'; 300], [9, 8, 7, 6]);
        for cut in 0..8 {
            assert_eq!(parse_header(&frame[..cut], 1024), Ok(None), "cut at {cut}");
        }
        assert!(parse_header(&frame[..8], 1024).unwrap().is_some());
    }

    #[test]
    fn refuses_what_rfc_6455_forbids() {
        let text = client_frame(true, Opcode::Text, b"hi", [1, 1, 1, 1]);
        let mut unmasked = text.clone();
        unmasked[1] &= 0x7F;
        assert!(matches!(
            parse_header(&unmasked, 64),
            Err(Violation::Protocol(_))
        ));
        let mut reserved = text.clone();
        reserved[0] |= 0x40;
        assert!(matches!(
            parse_header(&reserved, 64),
            Err(Violation::Protocol(_))
        ));
        let mut unknown = text.clone();
        unknown[0] = 0x83;
        assert!(matches!(
            parse_header(&unknown, 64),
            Err(Violation::Protocol(_))
        ));
        let fragmented_ping = client_frame(false, Opcode::Ping, b"", [0; 4]);
        assert!(matches!(
            parse_header(&fragmented_ping, 64),
            Err(Violation::Protocol(_))
        ));
        let long_ping = client_frame(true, Opcode::Ping, &[0; 126], [0; 4]);
        assert!(matches!(
            parse_header(&long_ping, 1024),
            Err(Violation::Protocol(_))
        ));
        assert_eq!(parse_header(&text, 1), Err(Violation::TooBig));
        // The length alone decides: a huge declared length is refused with only the header here.
        let mut huge = vec![0x81, 0x80 | 127];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(parse_header(&huge, 1 << 20), Err(Violation::TooBig));
    }

    #[test]
    fn server_headers_use_the_shortest_length_encoding() {
        let mut out = [0u8; MAX_HEADER];
        assert_eq!(write_header(&mut out, Opcode::Text, 5), 2);
        assert_eq!(out[..2], [0x81, 5]);
        assert_eq!(write_header(&mut out, Opcode::Text, 300), 4);
        assert_eq!(out[..4], [0x81, 126, 1, 44]);
        assert_eq!(write_header(&mut out, Opcode::Pong, 70_000), 10);
        assert_eq!(out[..2], [0x8A, 127]);
        assert_eq!(u64::from_be_bytes(out[2..10].try_into().unwrap()), 70_000);
    }

    #[test]
    fn close_payloads_are_checked() {
        assert_eq!(parse_close(&[]), Ok(None));
        assert!(parse_close(&[3]).is_err());
        assert_eq!(parse_close(&close_payload(1000, "bye")), Ok(Some(1000)));
        assert!(parse_close(&close_payload(1005, "")).is_err());
        assert_eq!(
            parse_close(&[0x03, 0xE8, 0xFF]),
            Err(Violation::NotUtf8),
            "the reason must be UTF-8"
        );
        let long = "é".repeat(100);
        let payload = close_payload(4001, &long);
        assert!(payload.len() <= 125);
        assert!(std::str::from_utf8(&payload[2..]).is_ok());
    }

    proptest! {
        #[test]
        fn unmasking_twice_restores_the_payload(
            payload in proptest::collection::vec(any::<u8>(), 0..100),
            mask in any::<[u8; 4]>(),
        ) {
            let mut bytes = payload.clone();
            unmask(&mut bytes, mask);
            let expected: Vec<u8> = payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
            prop_assert_eq!(&bytes, &expected);
            unmask(&mut bytes, mask);
            prop_assert_eq!(bytes, payload);
        }
    }
}
