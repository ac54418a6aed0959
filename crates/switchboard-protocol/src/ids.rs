//! Room and peer identifiers, roles, and the room grant a token carries.
//!
//! Identifiers are validated once, at the edge, and are cheap to clone afterwards (`Arc<str>`), since
//! every relayed message carries a room and a sender.

use std::{borrow::Cow, fmt, sync::Arc};

use serde::{Deserialize, Serialize};

use crate::SignalError;

/// Longest room or peer id, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// The characters of an id: ASCII letters, digits, `_`, `-` and the kind's `extra` ones.
struct Alphabet {
    /// `room` or `peer`, to word errors with.
    kind: &'static str,
    extra: &'static [u8],
    /// Whether each byte is in the alphabet: one lookup a byte, as every relayed frame's ids are
    /// checked.
    allowed: [bool; 256],
}

impl Alphabet {
    const fn new(kind: &'static str, extra: &'static [u8]) -> Self {
        let mut allowed = [false; 256];
        let mut b = 0;
        while b < 256 {
            let c = b as u8;
            allowed[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
            b += 1;
        }
        let mut i = 0;
        while i < extra.len() {
            allowed[extra[i] as usize] = true;
            i += 1;
        }
        Alphabet {
            kind,
            extra,
            allowed,
        }
    }
}

static ROOM_ALPHABET: Alphabet = Alphabet::new("room", b".:");
static PEER_ALPHABET: Alphabet = Alphabet::new("peer", b".");

fn check_id(alphabet: &Alphabet, value: &str) -> Result<(), SignalError> {
    let kind = alphabet.kind;
    if value.is_empty() || value.len() > MAX_ID_LEN {
        return Err(SignalError::invalid(format!(
            "{kind} id must be 1 to {MAX_ID_LEN} characters"
        )));
    }
    if !value.bytes().all(|b| alphabet.allowed[usize::from(b)]) {
        let extra = alphabet.extra;
        let allowed = String::from_utf8_lossy(extra).into_owned();
        return Err(SignalError::invalid(format!(
            "{kind} id may contain only ASCII letters, digits, `_`, `-`{}{allowed}",
            if extra.is_empty() { "" } else { " and " }
        )));
    }
    Ok(())
}

macro_rules! id_type {
    ($name:ident, $borrowed:ident, $alphabet:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates `value` and wraps it.
            pub fn parse(value: &str) -> Result<Self, SignalError> {
                check_id(&$alphabet, value)?;
                Ok(Self(Arc::from(value)))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id's text, to encode.
            pub fn text(&self) -> IdText<'_> {
                IdText(&self.0)
            }

            /// The id as the type client frames carry.
            pub fn borrowed(&self) -> $borrowed<'_> {
                $borrowed(Cow::Borrowed(&self.0))
            }
        }

        /// Maps keyed by ids are searched with the borrowed text of a client frame.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok($borrowed::deserialize(d)?.owned())
            }
        }

        #[doc = concat!("A validated [`", stringify!($name), "`] as read from a client frame: borrowed from the frame's")]
        /// text whenever it was written without escapes, so looking it up allocates nothing.
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $borrowed<'a>(Cow<'a, str>);

        impl<'a> $borrowed<'a> {
            /// Validates `value` and borrows it.
            pub fn parse(value: &'a str) -> Result<Self, SignalError> {
                check_id(&$alphabet, value)?;
                Ok(Self(Cow::Borrowed(value)))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id's text, to encode.
            pub fn text(&self) -> IdText<'_> {
                IdText(&self.0)
            }

            /// The id, to keep.
            pub fn owned(&self) -> $name {
                $name(Arc::from(&*self.0))
            }
        }

        impl fmt::Display for $borrowed<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $borrowed<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl<'de: 'a, 'a> Deserialize<'de> for $borrowed<'a> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = d.deserialize_str(CowStr)?;
                check_id(&$alphabet, &text).map_err(serde::de::Error::custom)?;
                Ok(Self(text))
            }
        }
    };
}

/// The text of a validated room or peer id. Only the id types hand it out, so it is always of their
/// alphabet, which needs no escaping in JSON: an encoder writes it between quotes as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdText<'a>(&'a str);

impl<'a> IdText<'a> {
    /// The id as text.
    pub fn as_str(self) -> &'a str {
        self.0
    }
}

/// Reads a string, borrowing it from the input when it has no escapes.
struct CowStr;

impl<'de> serde::de::Visitor<'de> for CowStr {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

id_type!(
    RoomId,
    RoomRef,
    ROOM_ALPHABET,
    "A room id: 1 to 64 of `A-Z a-z 0-9 _ - . :`."
);
id_type!(
    PeerId,
    PeerRef,
    PEER_ALPHABET,
    "A peer id, unique inside a room: 1 to 64 of `A-Z a-z 0-9 _ - .`."
);

/// A member's role in a room, from the token's `role` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// May change the room's mode and kick members; may always signal anyone.
    Host,
    /// The default role.
    #[default]
    Guest,
}

/// The rooms a token grants: one exact id, or every id starting with a prefix (`"team-*"`, or `"*"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomGrant {
    /// Exactly this room.
    Exact(String),
    /// Every room whose id starts with this prefix (possibly empty).
    Prefix(String),
}

impl RoomGrant {
    /// Parses a `room` claim. A `*` is allowed only as the last character.
    pub fn parse(claim: &str) -> Result<Self, SignalError> {
        match claim.strip_suffix('*') {
            Some(prefix) if !prefix.contains('*') => Ok(RoomGrant::Prefix(prefix.to_owned())),
            Some(_) => Err(SignalError::Unauthorized(
                "room claim may contain `*` only at its end".into(),
            )),
            None => {
                RoomId::parse(claim)
                    .map_err(|e| SignalError::Unauthorized(format!("room claim: {e}")))?;
                Ok(RoomGrant::Exact(claim.to_owned()))
            }
        }
    }

    /// Whether the grant covers `room`.
    pub fn allows(&self, room: &RoomId) -> bool {
        match self {
            RoomGrant::Exact(id) => id == room.as_str(),
            RoomGrant::Prefix(prefix) => room.as_str().starts_with(prefix.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_documented_alphabet() {
        assert!(RoomId::parse("team-a_1.b:c").is_ok());
        assert!(PeerId::parse("peer_1-x.y").is_ok());
        assert!(PeerId::parse("a:b").is_err());
        assert!(RoomId::parse("").is_err());
        assert!(RoomId::parse(&"x".repeat(65)).is_err());
        assert!(RoomId::parse(&"x".repeat(64)).is_ok());
        assert!(RoomId::parse("sp ace").is_err());
        assert!(RoomId::parse("ünï").is_err());
        assert!(RoomId::parse("r*").is_err());
    }

    #[test]
    fn the_alphabets_hold_exactly_the_documented_bytes() {
        for b in 0..=u8::MAX {
            let common = b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
            assert_eq!(
                ROOM_ALPHABET.allowed[usize::from(b)],
                common || b".:".contains(&b)
            );
            assert_eq!(PEER_ALPHABET.allowed[usize::from(b)], common || b == b'.');
        }
    }

    #[test]
    fn id_errors_are_worded_as_documented() {
        let message = |e: SignalError| e.to_string();
        assert_eq!(
            message(RoomId::parse("a b").unwrap_err()),
            SignalError::invalid("room id may contain only ASCII letters, digits, `_`, `-` and .:")
                .to_string()
        );
        assert_eq!(
            message(PeerRef::parse("a:b").unwrap_err()),
            SignalError::invalid("peer id may contain only ASCII letters, digits, `_`, `-` and .")
                .to_string()
        );
        assert_eq!(
            message(PeerId::parse("").unwrap_err()),
            SignalError::invalid("peer id must be 1 to 64 characters").to_string()
        );
    }

    #[test]
    fn grants_match_exactly_or_by_prefix() {
        let r = |s| RoomId::parse(s).unwrap();
        assert!(RoomGrant::parse("a").unwrap().allows(&r("a")));
        assert!(!RoomGrant::parse("a").unwrap().allows(&r("ab")));
        assert!(RoomGrant::parse("team-*").unwrap().allows(&r("team-7")));
        assert!(!RoomGrant::parse("team-*").unwrap().allows(&r("other")));
        assert!(RoomGrant::parse("*").unwrap().allows(&r("anything")));
        assert!(RoomGrant::parse("a*b*").is_err());
        assert!(RoomGrant::parse("bad room").is_err());
    }
}
