//! Reading a relayed message in the exact shape its server writes it, without a JSON parse.
//!
//! The generator has to read every message a server relays, on one core, and in closed loop it is
//! the bottleneck: what it spends per message decides how busy the server under test gets, and a
//! server that runs dry goes back to `epoll_wait` more often and pays more CPU per relay. So a
//! relayed application message is read the way its server writes it, field by field in that
//! server's order; anything else (another order, another field, an escape in an id) is not
//! recognized here and the caller parses it with serde, as it did before. Only the application
//! body's `t` and the fields the generator uses are read: every target relays the body verbatim
//! and checks its JSON, so what lies between `"p":"` and the closing `"}` is not looked at.

/// The `t` of a body written by [`crate::proto::body`]: `{"t":DIGITS,"p":"…"}`.
pub fn body_time(body: &str) -> Option<u64> {
    let (t, rest) = number(body, r#"{"t":"#)?;
    let padding = rest.strip_prefix(r#","p":""#)?;
    padding.ends_with(r#""}"#).then_some(t)
}

/// A switchboard `message` as the server writes it to a member:
/// `{"type":"message","room":R,"seq":N,"ts":MS,"from":P,"payload":BODY}`. Returns its `seq`, its
/// `from` and the body's `t`.
pub fn switchboard_message(text: &str) -> Option<(u64, &str, u64)> {
    let rest = text.strip_prefix(r#"{"type":"message""#)?;
    let (_, rest) = string(rest, r#","room":""#)?;
    let (seq, rest) = number(rest, r#","seq":"#)?;
    let (_, rest) = number(rest, r#","ts":"#)?;
    let (from, rest) = string(rest, r#","from":""#)?;
    let body = rest.strip_prefix(r#","payload":"#)?.strip_suffix('}')?;
    Some((seq, from, body_time(body)?))
}

/// A matchbox signal: `{"Signal":{"sender":UUID,"data":BODY}}`. Returns the sender and the
/// body's `t`.
pub fn matchbox_signal(text: &str) -> Option<(&str, u64)> {
    let (sender, rest) = string(text, r#"{"Signal":{"sender":""#)?;
    let body = rest.strip_prefix(r#","data":"#)?.strip_suffix("}}")?;
    Some((sender, body_time(body)?))
}

/// A PeerJS relay as its server writes it (`JSON.stringify` of `{type, src, dst, payload}`):
/// `{"type":"OFFER","src":ID,"dst":ID,"payload":BODY}`, and likewise `ANSWER` and `CANDIDATE`.
/// Returns the source and the body's `t`.
pub fn peerjs_signal(text: &str) -> Option<(&str, u64)> {
    let (kind, rest) = string(text, r#"{"type":""#)?;
    if !matches!(kind, "OFFER" | "ANSWER" | "CANDIDATE") {
        return None;
    }
    let (src, rest) = string(rest, r#","src":""#)?;
    let (_, rest) = string(rest, r#","dst":""#)?;
    let body = rest.strip_prefix(r#","payload":"#)?.strip_suffix('}')?;
    Some((src, body_time(body)?))
}

/// After `key` (which ends with the opening quote): a string value without escapes, and the text
/// after its closing quote.
fn string<'a>(text: &'a str, key: &str) -> Option<(&'a str, &'a str)> {
    let rest = text.strip_prefix(key)?;
    let end = rest.find('"')?;
    let value = &rest[..end];
    (!value.contains('\\')).then(|| (value, &rest[end + 1..]))
}

/// After `key`: a non-negative integer written in plain digits, and the text after it.
fn number<'a>(text: &'a str, key: &str) -> Option<(u64, &'a str)> {
    let rest = text.strip_prefix(key)?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    // An empty run fails to parse; a leading zero is not how any target writes a number.
    if digits > 1 && rest.starts_with('0') {
        return None;
    }
    Some((rest[..digits].parse().ok()?, &rest[digits..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::body;

    #[test]
    fn bodies_as_written_give_their_time() {
        assert_eq!(body_time(&body(123_456, 200)), Some(123_456));
        assert_eq!(body_time(&body(0, 1)), Some(0));
        for other in [
            r#"{"p":"xx","t":42}"#,
            r#"{ "t":5,"p":""}"#,
            r#"{"t":-1,"p":""}"#,
            r#"{"t":+1,"p":""}"#,
            r#"{"t":01,"p":""}"#,
            r#"{"t":,"p":""}"#,
            r#"{"t":1,"p":"x"} "#,
            r#"{"t":1,"p":"}"#,
            r#"{"t":99999999999999999999,"p":""}"#,
        ] {
            assert_eq!(body_time(other), None, "{other}");
        }
    }

    #[test]
    fn switchboard_messages_in_the_servers_shape() {
        let b = body(77, 64);
        let m = format!(
            r#"{{"type":"message","room":"r-p1","seq":12,"ts":1700000000000,"from":"p-b1","payload":{b}}}"#
        );
        assert_eq!(switchboard_message(&m), Some((12, "p-b1", 77)));
        for other in [
            // another type, an echoed id, fields in another order, an escape in an id
            m.replace(r#""type":"message""#, r#""type":"offer""#),
            m.replace(r#","payload""#, r#","id":"x","payload""#),
            m.replace(
                r#""seq":12,"ts":1700000000000"#,
                r#""ts":1700000000000,"seq":12"#,
            ),
            m.replace("p-b1", r#"p\u0031"#),
            m.replace(r#""seq":12"#, r#""seq":"12""#),
            m[..m.len() - 1].to_owned(),
        ] {
            assert_eq!(switchboard_message(&other), None, "{other}");
        }
    }

    #[test]
    fn matchbox_and_peerjs_signals_in_their_servers_shape() {
        let b = body(9, 40);
        let m = format!(r#"{{"Signal":{{"sender":"9b1c-uuid","data":{b}}}}}"#);
        assert_eq!(matchbox_signal(&m), Some(("9b1c-uuid", 9)));
        assert_eq!(matchbox_signal(r#"{"NewPeer":"abc"}"#), None);
        assert_eq!(matchbox_signal(&m[..m.len() - 1]), None);
        let p = format!(r#"{{"type":"OFFER","src":"a1","dst":"b1","payload":{b}}}"#);
        assert_eq!(peerjs_signal(&p), Some(("a1", 9)));
        assert_eq!(
            peerjs_signal(&p.replace("OFFER", "ANSWER")),
            Some(("a1", 9))
        );
        assert_eq!(peerjs_signal(&p.replace("OFFER", "LEAVE")), None);
        assert_eq!(peerjs_signal(r#"{"type":"OPEN"}"#), None);
        let reordered = format!(r#"{{"type":"OFFER","dst":"b1","src":"a1","payload":{b}}}"#);
        assert_eq!(peerjs_signal(&reordered), None);
    }
}
