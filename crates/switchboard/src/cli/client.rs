//! `switchboard client`: an interactive WebSocket client for trying and debugging a server.
//!
//! Reads commands or raw JSON from stdin, fills in `seq` and `ts` (using the server's clock from
//! `hello`), prints every server message as one JSON line on stdout and notes on stderr. When the
//! connection drops it resumes the session, resending what the server had not received.

use std::{
    collections::VecDeque,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard_protocol::{ClientEnvelope, ServerEnvelope};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::{
    Message, client::IntoClientRequest, http::HeaderValue, protocol::frame::coding::CloseCode,
};

use super::ClientArgs;

const HELP: &str = "\
commands (ROOM defaults to the last joined room):
  join ROOM [PEER]            join a room, optionally choosing your peer id
  leave [ROOM]
  offer PEER SDP...           answer PEER SDP...
  candidate PEER CANDIDATE... (no CANDIDATE = end of candidates)
  call_start PEER CALL_ID     call_end PEER CALL_ID [REASON]
  msg [@PEER] TEXT...         chat to the room, or to one peer
  mode host_only|free_for_all kick PEER
  ping                        ack SEQ
  room ROOM                   switch the current room
  {json}                      send raw JSON; seq and ts are filled in when missing
  help                        quit";

/// Sent frames kept for resending after a resume.
const RESEND_WINDOW: usize = 256;
/// Acknowledge after this many unacknowledged server messages.
const ACK_EVERY: u64 = 32;

#[derive(Default)]
struct State {
    seq: u64,
    room: Option<String>,
    /// Server clock minus local clock, from `hello.ts`.
    clock_offset_ms: i64,
    session: Option<String>,
    last_seq: u64,
    acked: u64,
    sent: VecDeque<(u64, String)>,
}

fn local_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

impl State {
    fn next(&mut self, kind: &str) -> ClientEnvelope {
        self.seq += 1;
        let ts = (local_ms() + self.clock_offset_ms).max(0) as u64;
        ClientEnvelope::new(kind, self.seq, ts)
    }

    fn current_room(&self, given: Option<&str>) -> Result<String, String> {
        given
            .map(str::to_owned)
            .or_else(|| self.room.clone())
            .ok_or_else(|| "no room: join one first or name it".into())
    }

    /// Turns one input line into the JSON to send, `Ok(None)` for local commands.
    fn command(&mut self, line: &str) -> Result<Option<String>, String> {
        let line = line.trim();
        if line.starts_with('{') {
            return self.raw(line).map(Some);
        }
        let mut words = line.split_whitespace();
        let Some(cmd) = words.next() else {
            return Ok(None);
        };
        let rest: Vec<&str> = words.collect();
        let arg = |i: usize, what: &str| -> Result<String, String> {
            rest.get(i)
                .map(|s| s.to_string())
                .ok_or_else(|| format!("`{cmd}` needs {what}"))
        };
        let tail = |from: usize| rest.get(from..).unwrap_or_default().join(" ");
        let env = match cmd {
            "help" => {
                eprintln!("{HELP}");
                return Ok(None);
            }
            "room" => {
                self.room = Some(arg(0, "ROOM")?);
                return Ok(None);
            }
            "join" => {
                let room = arg(0, "ROOM")?;
                self.room = Some(room.clone());
                let env = self.next("join").room(&room);
                match rest.get(1) {
                    Some(peer) => env.payload(json!({"peer": peer})),
                    None => env,
                }
            }
            "leave" => {
                let room = self.current_room(rest.first().copied())?;
                self.next("leave").room(&room)
            }
            "offer" | "answer" => {
                let (to, sdp) = (arg(0, "PEER")?, tail(1).replace("\\r\\n", "\r\n"));
                let room = self.current_room(None)?;
                self.next(cmd)
                    .room(&room)
                    .to(&to)
                    .payload(json!({"sdp": sdp}))
            }
            "candidate" => {
                let to = arg(0, "PEER")?;
                let room = self.current_room(None)?;
                self.next(cmd)
                    .room(&room)
                    .to(&to)
                    .payload(json!({"candidate": tail(1), "sdp_mid": "0", "sdp_m_line_index": 0}))
            }
            "call_start" | "call_end" => {
                let (to, call_id) = (arg(0, "PEER")?, arg(1, "CALL_ID")?);
                let room = self.current_room(None)?;
                let mut payload = json!({"call_id": call_id});
                if cmd == "call_end" && rest.len() > 2 {
                    payload["reason"] = json!(tail(2));
                }
                self.next(cmd).room(&room).to(&to).payload(payload)
            }
            "msg" => {
                let room = self.current_room(None)?;
                let (to, text) = match rest.first().and_then(|w| w.strip_prefix('@')) {
                    Some(peer) => (Some(peer.to_owned()), tail(1)),
                    None => (None, tail(0)),
                };
                let env = self
                    .next("message")
                    .room(&room)
                    .payload(json!({"text": text}));
                match to {
                    Some(peer) => env.to(&peer),
                    None => env,
                }
            }
            "mode" => {
                let mode = arg(0, "host_only or free_for_all")?;
                let room = self.current_room(None)?;
                self.next("mode").room(&room).payload(json!({"mode": mode}))
            }
            "kick" => {
                let peer = arg(0, "PEER")?;
                let room = self.current_room(None)?;
                self.next("kick").room(&room).payload(json!({"peer": peer}))
            }
            "ping" => self.next("ping"),
            "ack" => {
                let seq: u64 = arg(0, "SEQ")?.parse().map_err(|_| "SEQ must be a number")?;
                self.next("ack").payload(json!({"seq": seq}))
            }
            other => return Err(format!("unknown command `{other}`; try `help`")),
        };
        Ok(Some(env.to_json()))
    }

    /// Raw JSON from the user: fills in `seq` and `ts` when missing, sends it as given otherwise
    /// (so a user can also try what the server refuses).
    fn raw(&mut self, line: &str) -> Result<String, String> {
        let mut value: Value = serde_json::from_str(line).map_err(|e| format!("bad JSON: {e}"))?;
        let Some(obj) = value.as_object_mut() else {
            return Ok(line.to_owned());
        };
        if !obj.contains_key("seq") {
            self.seq += 1;
            obj.insert("seq".into(), json!(self.seq));
        } else if let Some(seq) = obj.get("seq").and_then(Value::as_u64) {
            self.seq = self.seq.max(seq);
        }
        if !obj.contains_key("ts") {
            obj.insert("ts".into(), json!(local_ms() + self.clock_offset_ms));
        }
        if let (Some("join"), Some(room)) = (
            obj.get("type").and_then(Value::as_str),
            obj.get("room").and_then(Value::as_str),
        ) {
            self.room = Some(room.to_owned());
        }
        Ok(value.to_string())
    }

    fn remember_sent(&mut self, text: &str) {
        if self.sent.len() == RESEND_WINDOW {
            self.sent.pop_front();
        }
        self.sent.push_back((self.seq, text.to_owned()));
    }
}

enum Ended {
    Quit,
    /// The server closed the session for good.
    Closed(String),
    /// The connection broke; the session can be resumed.
    Lost(String),
}

pub(super) fn run(args: ClientArgs) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(run_client(args))
}

async fn run_client(args: ClientArgs) -> Result<(), String> {
    let (lines_tx, mut lines) = tokio::sync::mpsc::channel::<String>(64);
    tokio::spawn(async move {
        let mut stdin = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = stdin.next_line().await {
            if lines_tx.send(line).await.is_err() {
                break;
            }
        }
    });
    let mut state = State::default();
    let mut attempt = 0u32;
    loop {
        let url = match &state.session {
            Some(session) => format!(
                "{}{}resume={session}&last_seq={}",
                args.url,
                if args.url.contains('?') { '&' } else { '?' },
                state.last_seq
            ),
            None => args.url.clone(),
        };
        match session(&url, &args.token, &mut state, &mut lines).await {
            Ok(Ended::Quit) => return Ok(()),
            Ok(Ended::Closed(why)) => return Err(format!("server closed the session: {why}")),
            Ok(Ended::Lost(why)) | Err(why) if state.session.is_some() && attempt < 8 => {
                attempt += 1;
                let delay = Duration::from_millis(250 * 2u64.pow(attempt.min(5)));
                eprintln!("# connection lost ({why}); resuming in {delay:?}");
                tokio::time::sleep(delay).await;
            }
            Ok(Ended::Lost(why)) | Err(why) => return Err(why),
        }
    }
}

async fn session(
    url: &str,
    token: &str,
    state: &mut State,
    lines: &mut tokio::sync::mpsc::Receiver<String>,
) -> Result<Ended, String> {
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| e.to_string())?;
    request.headers_mut().insert("authorization", bearer);
    let (mut ws, _) = match tokio_tungstenite::connect_async(request).await {
        Ok(ok) => ok,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            return Ok(Ended::Closed(format!("HTTP {}: {body}", response.status())));
        }
        Err(e) => return Err(format!("cannot connect: {e}")),
    };
    eprintln!("# connected to {}", url.split('?').next().unwrap_or(url));
    loop {
        tokio::select! {
            line = lines.recv() => {
                let Some(line) = line else {
                    let _ = ws.close(None).await;
                    return Ok(Ended::Quit);
                };
                if matches!(line.trim(), "quit" | "exit") {
                    let _ = ws.close(None).await;
                    return Ok(Ended::Quit);
                }
                match state.command(&line) {
                    Ok(Some(text)) => {
                        state.remember_sent(&text);
                        ws.send(Message::Text(text.into())).await.map_err(|e| e.to_string())?;
                    }
                    Ok(None) => {}
                    Err(e) => eprintln!("# {e}"),
                }
            }
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    println!("{text}");
                    if let Some(reply) = on_server_message(state, &text) {
                        for frame in reply {
                            ws.send(Message::Text(frame.into())).await.map_err(|e| e.to_string())?;
                        }
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame
                        .map(|f| (f.code, f.reason.to_string()))
                        .unwrap_or((CloseCode::Status, String::new()));
                    let code = u16::from(code);
                    let why = format!("close {code} {reason}");
                    // 4002 superseded, 4003 heartbeat timeout: the session lives on and can resume.
                    return Ok(if matches!(code, 4002 | 4003) { Ended::Lost(why) } else { Ended::Closed(why) });
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Ok(Ended::Lost(e.to_string())),
                None => return Ok(Ended::Lost("connection ended".into())),
            }
        }
    }
}

/// Tracks `seq`, the clock offset and the session; returns frames to send (resends after a
/// resume, acknowledgements).
fn on_server_message(state: &mut State, text: &str) -> Option<Vec<String>> {
    let env: ServerEnvelope = serde_json::from_str(text).ok()?;
    if env.seq == 0 {
        return None;
    }
    state.last_seq = env.seq;
    let mut out = Vec::new();
    if env.kind == "hello" && env.payload["resumed"] == json!(true) {
        let confirmed = env.payload["last_client_seq"].as_u64().unwrap_or(0);
        state.seq = state.seq.max(confirmed);
        let resend: Vec<String> = state
            .sent
            .iter()
            .filter(|(seq, _)| *seq > confirmed)
            .map(|(_, text)| text.clone())
            .collect();
        if !resend.is_empty() {
            eprintln!(
                "# resending {} message(s) the server did not get",
                resend.len()
            );
        }
        state.sent.retain(|(seq, _)| *seq > confirmed);
        out.extend(resend);
    }
    if env.kind == "hello" {
        state.clock_offset_ms = env.ts as i64 - local_ms();
        state.session = env.payload["session"].as_str().map(str::to_owned);
    }
    if state.last_seq - state.acked >= ACK_EVERY {
        state.acked = state.last_seq;
        let ack = state.next("ack").payload(json!({"seq": state.acked}));
        out.push(ack.to_json());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::{ClientMessage, Limits, parse_client_message};

    /// Whether the message `line` becomes passes `check`.
    fn parsed(state: &mut State, line: &str, check: impl Fn(&ClientMessage) -> bool) -> bool {
        let text = state.command(line).unwrap().unwrap();
        check(
            &parse_client_message(&text, &Limits::default())
                .unwrap()
                .message,
        )
    }

    #[test]
    fn commands_become_valid_messages_with_rising_seq() {
        let mut s = State::default();
        assert!(parsed(&mut s, "join r1 alice", |m| matches!(
            m,
            ClientMessage::Join { .. }
        )));
        assert!(parsed(&mut s, "offer bob v=0\\r\\no=-", |m| matches!(
            m,
            ClientMessage::Signal { .. }
        )));
        assert!(parsed(&mut s, "candidate bob", |m| matches!(
            m,
            ClientMessage::Signal { .. }
        )));
        assert!(parsed(&mut s, "msg hello all", |m| matches!(
            m,
            ClientMessage::Message { to: None, .. }
        )));
        assert!(parsed(&mut s, "msg @bob hi", |m| matches!(
            m,
            ClientMessage::Message { to: Some(_), .. }
        )));
        assert!(parsed(&mut s, "mode host_only", |m| matches!(
            m,
            ClientMessage::Mode { .. }
        )));
        assert!(parsed(&mut s, "kick bob", |m| matches!(
            m,
            ClientMessage::Kick { .. }
        )));
        assert!(parsed(&mut s, "call_end bob c1 hung up", |m| matches!(
            m,
            ClientMessage::Signal { .. }
        )));
        assert!(parsed(&mut s, "ping", |m| matches!(m, ClientMessage::Ping)));
        assert_eq!(s.seq, 9);
        assert!(s.command("frobnicate").is_err());
        assert!(s.command("offer").is_err());
    }

    #[test]
    fn raw_json_gets_seq_and_ts_filled_in() {
        let mut s = State::default();
        let text = s
            .command(r#"{"type":"join","room":"r9"}"#)
            .unwrap()
            .unwrap();
        let frame = parse_client_message(&text, &Limits::default()).unwrap();
        assert_eq!(frame.header.seq, 1);
        assert_eq!(s.room.as_deref(), Some("r9"));
        let kept = s
            .command(r#"{"type":"ping","seq":40,"ts":5}"#)
            .unwrap()
            .unwrap();
        assert!(kept.contains("\"seq\":40"));
        assert_eq!(s.next("ping").seq, 41);
    }

    #[test]
    fn hello_triggers_resend_of_unconfirmed_messages() {
        let mut s = State::default();
        for line in ["join r", "msg one", "msg two"] {
            let text = s.command(line).unwrap().unwrap();
            s.remember_sent(&text);
        }
        let fresh = r#"{"type":"hello","seq":1,"ts":1,"payload":{"session":"S","last_client_seq":0,"resumed":false}}"#;
        assert_eq!(
            on_server_message(&mut s, fresh).unwrap(),
            Vec::<String>::new()
        );
        let hello = r#"{"type":"hello","seq":5,"ts":1,"payload":{"session":"S","last_client_seq":1,"resumed":true}}"#;
        let out = on_server_message(&mut s, hello).unwrap();
        assert_eq!(out.len(), 2);
        assert!(out[0].contains("one") && out[1].contains("two"));
        assert_eq!(s.session.as_deref(), Some("S"));
        assert_eq!(s.last_seq, 5);
    }
}
