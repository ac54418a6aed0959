//! A session's id: opaque, unguessable, chosen by the server; and the cheap hash the hub's table
//! of sessions uses for it.

use std::{fmt, hash::Hasher, sync::Arc};

/// An opaque, unguessable session id (128 random bits, base62).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(Arc<str>);

impl SessionId {
    pub(crate) fn random(rng: &mut impl rand::RngCore) -> Self {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut n = u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64());
        let mut s = String::with_capacity(22);
        for _ in 0..22 {
            s.push(ALPHABET[(n % 62) as usize] as char);
            n /= 62;
        }
        SessionId(s.into())
    }

    /// A session id another node made (read back from the shared store): 22 base62 characters,
    /// or `None`.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 22 && text.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| SessionId(text.into()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// A cheap hash for session ids, which are looked up several times per message. They are random
/// and chosen by the server, so nobody can make them collide and they need no keyed hash. Lookups
/// by the text a client sent hash it the same way, as a `str` (its bytes, then `0xff`).
#[derive(Default)]
pub(crate) struct SessionIdHasher(u64);

impl SessionIdHasher {
    /// FxHash's round: the multiplication spreads every input bit over the high bits, which the
    /// table reads first; the rotation carries them into the low ones.
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for SessionIdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Whole words are loaded as such and the tail folded byte by byte: a copy of a variable
        // length would be a call to `memcpy` per word.
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut whole = [0u8; 8];
            whole.copy_from_slice(word);
            self.add(u64::from_le_bytes(whole));
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            self.add(tail.iter().rev().fold(0, |w, &b| w << 8 | u64::from(b)));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
