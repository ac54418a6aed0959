//! Turns the bytes a client sends into whole WebSocket messages. It keeps what a read left
//! unfinished: the start of a frame that has not fully arrived, and a fragmented message being
//! reassembled. Between messages it keeps nothing allocated, which is what lets an idle
//! connection cost no buffer at all.

use std::ops::ControlFlow;

use super::frame::{Opcode, Violation, parse_close, parse_header, unmask};

/// One thing the client sent, borrowed from the bytes just read.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// A text message.
    Text(&'a str),
    /// A binary message (its bytes do not matter: the server refuses binary).
    Binary,
    /// A ping with its payload, to be echoed in a pong.
    Ping(&'a [u8]),
    /// A pong.
    Pong,
    /// The client started the closing handshake, with this code if it gave one.
    Close(Option<u16>),
}

/// See the module documentation.
#[derive(Debug)]
pub struct Reader {
    /// The largest message accepted, in bytes.
    max_message: usize,
    /// Bytes of a frame that has not fully arrived yet.
    partial: Vec<u8>,
    /// A fragmented message being reassembled, and whether it is text.
    fragments: Option<(Opcode, Vec<u8>)>,
}

impl Reader {
    /// A reader refusing messages over `max_message` bytes.
    #[inline]
    pub fn new(max_message: usize) -> Self {
        Reader {
            max_message,
            partial: Vec::new(),
            fragments: None,
        }
    }

    /// Hands every complete message in `bytes` (which follow what earlier calls got) to `on`, in
    /// order, and keeps the rest for the next call. Stops early when `on` breaks (after a close,
    /// the rest does not matter). `bytes` is unmasked in place.
    #[inline]
    pub fn feed(
        &mut self,
        bytes: &mut [u8],
        on: &mut impl FnMut(Inbound<'_>) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, Violation> {
        // After a break nothing is kept: what follows a close may hold whole frames, which are
        // not an unfinished one to make room for.
        if self.partial.is_empty() {
            let (used, flow) = self.frames(bytes, on)?;
            if flow.is_continue() {
                self.keep(&bytes[used..])?;
            }
            return Ok(flow);
        }
        self.partial.extend_from_slice(bytes);
        let mut buffered = std::mem::take(&mut self.partial);
        let (used, flow) = self.frames(&mut buffered, on)?;
        if flow.is_continue() && used < buffered.len() {
            buffered.drain(..used);
            self.partial = buffered;
            self.reserve_frame()?;
        }
        Ok(flow)
    }

    /// Starts `partial` with the unfinished frame at the end of a read.
    #[inline]
    fn keep(&mut self, rest: &[u8]) -> Result<(), Violation> {
        if rest.is_empty() {
            return Ok(());
        }
        self.partial.extend_from_slice(rest);
        self.reserve_frame()
    }

    /// Once its header is known, makes room for the whole of the unfinished frame at once.
    #[inline]
    fn reserve_frame(&mut self) -> Result<(), Violation> {
        if let Some(header) = parse_header(&self.partial, self.max_message)? {
            // `partial` starts with one unfinished frame, so this does not saturate.
            let missing = header.frame_len().saturating_sub(self.partial.len());
            self.partial.reserve_exact(missing);
        }
        Ok(())
    }

    /// Handles the complete frames at the start of `bytes`; returns how many bytes they took.
    fn frames(
        &mut self,
        bytes: &mut [u8],
        on: &mut impl FnMut(Inbound<'_>) -> ControlFlow<()>,
    ) -> Result<(usize, ControlFlow<()>), Violation> {
        let mut used = 0;
        while let Some(header) = parse_header(&bytes[used..], self.max_message)? {
            let Some(frame) = bytes.get_mut(used..used + header.frame_len()) else {
                break;
            };
            let payload = &mut frame[header.header_len..];
            unmask(payload, header.mask);
            used += header.frame_len();
            if self
                .frame(header.fin, header.opcode, payload, on)?
                .is_break()
            {
                return Ok((used, ControlFlow::Break(())));
            }
        }
        Ok((used, ControlFlow::Continue(())))
    }

    fn frame(
        &mut self,
        fin: bool,
        opcode: Opcode,
        payload: &[u8],
        on: &mut impl FnMut(Inbound<'_>) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, Violation> {
        Ok(match opcode {
            Opcode::Ping => on(Inbound::Ping(payload)),
            Opcode::Pong => on(Inbound::Pong),
            Opcode::Close => on(Inbound::Close(parse_close(payload)?)),
            Opcode::Text | Opcode::Binary if self.fragments.is_some() => {
                return Err(Violation::Protocol(
                    "a new message started inside a fragmented one",
                ));
            }
            Opcode::Text | Opcode::Binary if fin => on(message(opcode, payload)?),
            Opcode::Text | Opcode::Binary => {
                self.fragments = Some((opcode, payload.to_vec()));
                ControlFlow::Continue(())
            }
            Opcode::Continuation => {
                let Some((_, buffered)) = self.fragments.as_mut() else {
                    return Err(Violation::Protocol(
                        "a continuation frame outside a fragmented message",
                    ));
                };
                if buffered.len() + payload.len() > self.max_message {
                    return Err(Violation::TooBig);
                }
                buffered.extend_from_slice(payload);
                if !fin {
                    return Ok(ControlFlow::Continue(()));
                }
                let (opcode, whole) = self.fragments.take().expect("checked above");
                on(message(opcode, &whole)?)
            }
        })
    }
}

#[inline]
fn message(opcode: Opcode, payload: &[u8]) -> Result<Inbound<'_>, Violation> {
    if opcode == Opcode::Binary {
        return Ok(Inbound::Binary);
    }
    std::str::from_utf8(payload)
        .map(Inbound::Text)
        .map_err(|_| Violation::NotUtf8)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::frame::tests::client_frame;
    use super::*;

    /// What a reader makes of `chunks`, fed one after the other.
    fn read_all(reader: &mut Reader, chunks: &[Vec<u8>]) -> Result<Vec<String>, Violation> {
        let mut seen = Vec::new();
        let mut on = |inbound: Inbound<'_>| {
            seen.push(match inbound {
                Inbound::Text(text) => format!("text:{text}"),
                Inbound::Binary => "binary".into(),
                Inbound::Ping(bytes) => format!("ping:{}", String::from_utf8_lossy(bytes)),
                Inbound::Pong => "pong".into(),
                Inbound::Close(code) => format!("close:{code:?}"),
            });
            ControlFlow::Continue(())
        };
        for chunk in chunks {
            let mut chunk = chunk.clone();
            let _flow = reader.feed(&mut chunk, &mut on)?;
        }
        Ok(seen)
    }

    fn text(s: &str) -> Vec<u8> {
        client_frame(true, Opcode::Text, s.as_bytes(), [0x37, 0xfa, 0x21, 0x3d])
    }

    #[test]
    fn several_frames_in_one_read_are_all_delivered() {
        let mut bytes = text("one");
        bytes.extend(client_frame(true, Opcode::Ping, b"p", [1, 2, 3, 4]));
        bytes.extend(text("two"));
        let mut reader = Reader::new(1024);
        assert_eq!(
            read_all(&mut reader, &[bytes]).unwrap(),
            ["text:one", "ping:p", "text:two"]
        );
        assert!(
            reader.partial.capacity() == 0,
            "nothing kept between messages"
        );
    }

    #[test]
    fn fragments_are_reassembled_around_control_frames() {
        let mask = [5, 6, 7, 8];
        let chunks = vec![
            client_frame(false, Opcode::Text, "hé".as_bytes(), mask),
            client_frame(true, Opcode::Pong, b"", mask),
            client_frame(false, Opcode::Continuation, b"ll", mask),
            client_frame(true, Opcode::Continuation, b"o", mask),
        ];
        let mut reader = Reader::new(1024);
        assert_eq!(
            read_all(&mut reader, &chunks).unwrap(),
            ["pong", "text:héllo"]
        );
        assert!(reader.fragments.is_none());
    }

    #[test]
    fn broken_streams_are_refused() {
        let mask = [1, 1, 1, 1];
        let cases: Vec<(Vec<Vec<u8>>, Violation)> = vec![
            (
                vec![client_frame(true, Opcode::Continuation, b"x", mask)],
                Violation::Protocol("a continuation frame outside a fragmented message"),
            ),
            (
                vec![
                    client_frame(false, Opcode::Text, b"x", mask),
                    client_frame(true, Opcode::Text, b"y", mask),
                ],
                Violation::Protocol("a new message started inside a fragmented one"),
            ),
            (
                vec![client_frame(true, Opcode::Text, &[0xC3, 0x28], mask)],
                Violation::NotUtf8,
            ),
            (
                vec![
                    client_frame(false, Opcode::Text, &[b'a'; 10], mask),
                    client_frame(true, Opcode::Continuation, &[b'a'; 10], mask),
                ],
                Violation::TooBig,
            ),
        ];
        for (chunks, violation) in cases {
            let mut reader = Reader::new(16);
            assert_eq!(read_all(&mut reader, &chunks), Err(violation));
        }
    }

    #[test]
    fn nothing_after_a_break_is_handled() {
        let mut bytes = client_frame(true, Opcode::Close, &[0x03, 0xE8], [1, 2, 3, 4]);
        bytes.extend(text("late"));
        let mut reader = Reader::new(1024);
        let mut seen = 0;
        let flow = reader
            .feed(&mut bytes, &mut |_| {
                seen += 1;
                ControlFlow::Break(())
            })
            .unwrap();
        assert!(flow.is_break());
        assert_eq!(seen, 1);
    }

    /// Found by the `ws_frames` fuzz target: whole frames after a close in the same read were
    /// kept as if they were one unfinished frame, and making room for its rest underflowed (a
    /// capacity overflow panic in the connection task).
    #[test]
    fn whole_frames_after_a_close_are_dropped_not_kept() {
        let close = client_frame(true, Opcode::Close, &[0x03, 0xE8], [1, 2, 3, 4]);
        let after = [text("one"), text("two"), text("three")].concat();
        let stop = |_: Inbound<'_>| ControlFlow::Break(());
        // In one read.
        let mut reader = Reader::new(1024);
        let mut bytes = [close.clone(), after.clone()].concat();
        assert!(
            reader
                .feed(&mut bytes, &mut stop.clone())
                .unwrap()
                .is_break()
        );
        // After part of the close came in an earlier read (the buffered path).
        let mut reader = Reader::new(1024);
        let mut first = close[..3].to_vec();
        assert!(
            reader
                .feed(&mut first, &mut stop.clone())
                .unwrap()
                .is_continue()
        );
        let mut rest = [close[3..].to_vec(), after].concat();
        assert!(
            reader
                .feed(&mut rest, &mut stop.clone())
                .unwrap()
                .is_break()
        );
    }

    proptest! {
        /// However the bytes are cut into reads, the same messages come out, in order.
        #[test]
        fn any_split_of_the_stream_yields_the_same_messages(
            messages in proptest::collection::vec("[a-zé\u{1F600}]{0,300}", 1..8),
            fragment_at in proptest::collection::vec(0usize..400, 8),
            cuts in proptest::collection::vec(0usize..4000, 0..12),
        ) {
            let mask = [0xde, 0xad, 0xbe, 0xef];
            let mut stream = Vec::new();
            for (message, at) in messages.iter().zip(&fragment_at) {
                let bytes = message.as_bytes();
                let at = (*at).min(bytes.len());
                if at == 0 || at == bytes.len() {
                    stream.extend(client_frame(true, Opcode::Text, bytes, mask));
                } else {
                    stream.extend(client_frame(false, Opcode::Text, &bytes[..at], mask));
                    stream.extend(client_frame(true, Opcode::Ping, b"", mask));
                    stream.extend(client_frame(true, Opcode::Continuation, &bytes[at..], mask));
                }
            }
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(stream.len())).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([stream.len()]) {
                chunks.push(stream[start..cut].to_vec());
                start = cut;
            }
            let mut reader = Reader::new(4096);
            let seen: Vec<String> = read_all(&mut reader, &chunks)
                .unwrap()
                .into_iter()
                .filter(|s| s != "ping:")
                .collect();
            let expected: Vec<String> = messages.iter().map(|m| format!("text:{m}")).collect();
            prop_assert_eq!(seen, expected);
            prop_assert!(reader.partial.is_empty() && reader.fragments.is_none());
        }
    }
}
