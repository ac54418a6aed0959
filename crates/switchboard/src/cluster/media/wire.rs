//! Media commands between nodes: the JSON a node publishes on a media node's inbox, and reading
//! it back. Each names the room, the member and (when its node knew it) the member's session.

use serde::{Deserialize, Serialize};
use switchboard_core::{MediaCommand, SessionId};
use switchboard_protocol::{PeerId, RoomId, SignalKind, View};

use crate::sfu::Routed;

/// A media command between nodes, as JSON on a media inbox.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Wire {
    room: String,
    peer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session: Option<String>,
    #[serde(flatten)]
    what: What,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(tag = "c", rename_all = "snake_case")]
enum What {
    Joined,
    Left,
    Signal {
        kind: String,
        payload: String,
    },
    Subscribe {
        tracks: Vec<String>,
        subscribe: bool,
        /// `[width, height]`, `[]` for paused; absent when the member named no view.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        view: Option<Vec<u32>>,
    },
    Mute {
        track: String,
        muted: bool,
        host: bool,
    },
}

pub(super) fn encode(command: &MediaCommand, session: Option<&SessionId>) -> String {
    let (room, peer, what) = match command {
        MediaCommand::Joined { room, peer } => (room, peer, What::Joined),
        MediaCommand::Left { room, peer } => (room, peer, What::Left),
        MediaCommand::Signal {
            room,
            peer,
            kind,
            payload,
        } => (
            room,
            peer,
            What::Signal {
                kind: kind.as_str().to_owned(),
                payload: payload.to_string(),
            },
        ),
        MediaCommand::Subscribe {
            room,
            peer,
            tracks,
            subscribe,
            view,
        } => (
            room,
            peer,
            What::Subscribe {
                tracks: tracks.iter().map(|t| t.to_string()).collect(),
                subscribe: *subscribe,
                view: view.map(|v| match v {
                    View::Paused => vec![],
                    View::Visible { width, height } => vec![width, height],
                }),
            },
        ),
        MediaCommand::Mute {
            room,
            peer,
            track,
            muted,
            host,
        } => (
            room,
            peer,
            What::Mute {
                track: track.to_string(),
                muted: *muted,
                host: *host,
            },
        ),
    };
    let wire = Wire {
        room: room.as_str().to_owned(),
        peer: peer.as_str().to_owned(),
        session: session.map(|s| s.as_str().to_owned()),
        what,
    };
    // A struct of strings, numbers and booleans always encodes.
    serde_json::to_string(&wire).expect("a media command encodes")
}

/// A media command from another node; `None` when it does not read (a bug, or a node of another
/// version).
pub(super) fn decode(text: &str) -> Option<Routed> {
    let wire: Wire = serde_json::from_str(text).ok()?;
    let room = RoomId::parse(&wire.room).ok()?;
    let peer = PeerId::parse(&wire.peer).ok()?;
    let session = match wire.session {
        Some(s) => Some(SessionId::parse(&s)?),
        None => None,
    };
    let command = match wire.what {
        What::Joined => MediaCommand::Joined { room, peer },
        What::Left => MediaCommand::Left { room, peer },
        What::Signal { kind, payload } => MediaCommand::Signal {
            room,
            peer,
            kind: match kind.as_str() {
                "offer" => SignalKind::Offer,
                "answer" => SignalKind::Answer,
                "candidate" => SignalKind::Candidate,
                _ => return None,
            },
            payload: payload.into(),
        },
        What::Subscribe {
            tracks,
            subscribe,
            view,
        } => MediaCommand::Subscribe {
            room,
            peer,
            tracks: tracks.into_iter().map(Into::into).collect(),
            subscribe,
            view: match view.as_deref() {
                None => None,
                Some([]) => Some(View::Paused),
                Some(&[width, height]) => Some(View::Visible { width, height }),
                Some(_) => return None,
            },
        },
        What::Mute { track, muted, host } => MediaCommand::Mute {
            room,
            peer,
            track: track.into(),
            muted,
            host,
        },
    };
    Some((command, session))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_media_command_reads_back_as_it_was_sent() {
        let room = RoomId::parse("r1").unwrap();
        let peer = PeerId::parse("alice").unwrap();
        let session = SessionId::parse("0123456789abcdefABCDEF");
        assert!(session.is_some());
        let commands = [
            MediaCommand::Joined {
                room: room.clone(),
                peer: peer.clone(),
            },
            MediaCommand::Left {
                room: room.clone(),
                peer: peer.clone(),
            },
            MediaCommand::Signal {
                room: room.clone(),
                peer: peer.clone(),
                kind: SignalKind::Offer,
                payload: r#"{"sdp":"v=0\r\n","type":"offer"}"#.into(),
            },
            MediaCommand::Subscribe {
                room: room.clone(),
                peer: peer.clone(),
                tracks: vec!["t1".into(), "t2".into()],
                subscribe: true,
                view: Some(View::Visible {
                    width: 320,
                    height: 180,
                }),
            },
            MediaCommand::Subscribe {
                room: room.clone(),
                peer: peer.clone(),
                tracks: vec![],
                subscribe: false,
                view: Some(View::Paused),
            },
            MediaCommand::Mute {
                room: room.clone(),
                peer: peer.clone(),
                track: "t1".into(),
                muted: true,
                host: true,
            },
        ];
        for command in commands {
            for session in [None, session.clone()] {
                let text = encode(&command, session.as_ref());
                assert_eq!(decode(&text), Some((command.clone(), session)), "{text}");
            }
        }
        assert_eq!(
            decode(r#"{"room":"r1","peer":"a","c":"signal","kind":"call_start","payload":"{}"}"#),
            None
        );
        assert_eq!(decode(r#"{"room":"r 1","peer":"a","c":"joined"}"#), None);
    }
}
