//! Reading the peers' messages: `matchbox_server`'s and the PeerJS server's, each tried first
//! on the fast path of [`crate::shape`] and parsed in full otherwise.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Incoming, body_time};
use crate::shape;

pub(super) fn clip(text: &str) -> String {
    text.chars().take(300).collect()
}

pub(super) fn decode_matchbox(text: &str) -> Incoming {
    if let Some((sender, t)) = shape::matchbox_signal(text) {
        return Incoming::Data {
            from: Some(sender.to_owned()),
            t,
        };
    }
    #[derive(Deserialize)]
    enum In<'a> {
        IdAssigned(Cow<'a, str>),
        NewPeer(Cow<'a, str>),
        PeerLeft(#[allow(dead_code)] Cow<'a, str>),
        Signal {
            #[serde(borrow)]
            sender: Cow<'a, str>,
            #[serde(borrow)]
            data: &'a RawValue,
        },
    }
    match serde_json::from_str::<In>(text) {
        Ok(In::Signal { sender, data }) => match body_time(data.get()) {
            Some(t) => Incoming::Data {
                from: Some(sender.into_owned()),
                t,
            },
            None => Incoming::Other,
        },
        Ok(In::IdAssigned(id)) => Incoming::Joined(id.into_owned()),
        Ok(In::NewPeer(id)) => Incoming::PeerJoined(id.into_owned()),
        Ok(In::PeerLeft(_)) => Incoming::Other,
        Err(_) => Incoming::Error(format!("unreadable: {}", clip(text))),
    }
}

pub(super) fn decode_peerjs(text: &str) -> Incoming {
    if let Some((src, t)) = shape::peerjs_signal(text) {
        return Incoming::Data {
            from: Some(src.to_owned()),
            t,
        };
    }
    #[derive(Deserialize)]
    struct In<'a> {
        #[serde(rename = "type", borrow)]
        kind: Cow<'a, str>,
        #[serde(default, borrow)]
        src: Option<Cow<'a, str>>,
        #[serde(default, borrow)]
        payload: Option<&'a RawValue>,
    }
    let Ok(m) = serde_json::from_str::<In>(text) else {
        return Incoming::Error(format!("unreadable: {}", clip(text)));
    };
    match &*m.kind {
        "OFFER" | "ANSWER" | "CANDIDATE" => match m.payload.and_then(|p| body_time(p.get())) {
            Some(t) => Incoming::Data {
                from: m.src.map(Cow::into_owned),
                t,
            },
            None => Incoming::Other,
        },
        "OPEN" => Incoming::Joined(String::new()),
        "ERROR" | "ID-TAKEN" => Incoming::Error(clip(text)),
        _ => Incoming::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_each_protocol() {
        let m = r#"{"Signal":{"sender":"9b1c","data":{"t":42,"p":"xx"}}}"#;
        assert_eq!(
            decode_matchbox(m),
            Incoming::Data {
                from: Some("9b1c".into()),
                t: 42
            }
        );
        assert_eq!(
            decode_matchbox(r#"{"IdAssigned":"abc"}"#),
            Incoming::Joined("abc".into())
        );
        assert_eq!(
            decode_matchbox(r#"{"NewPeer":"abc"}"#),
            Incoming::PeerJoined("abc".into())
        );
        let p = r#"{"type":"OFFER","src":"a1","dst":"b1","payload":{"t":9,"p":""}}"#;
        assert_eq!(
            decode_peerjs(p),
            Incoming::Data {
                from: Some("a1".into()),
                t: 9
            }
        );
        assert_eq!(
            decode_peerjs(r#"{"type":"OPEN"}"#),
            Incoming::Joined(String::new())
        );
    }
}
