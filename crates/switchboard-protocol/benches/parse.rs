//! A client message's parse (`parse_client_message`), the part of every relay that scans the frame's
//! JSON, on the frames a call sends: the benchmark tool's 256-byte `message`, an ICE `candidate`,
//! an `offer` carrying a browser's SDP (about 2.6 KB, `\r\n` escaped between its lines) and an
//! `ack`. Payloads are mostly strings, so this is where the string scan's speed shows.
//!
//! `parse KIND [FRAMES]` prints wall time per frame, but only instruction counts are repeatable on
//! a shared machine: run it under callgrind with collection limited to [`run_parses`] (commands in
//! `docs/benchmarks.md`, "The string scan without `unsafe`").

use std::{hint::black_box, time::Instant};

use switchboard_protocol::{Limits, parse_client_message};

const T0_UNIX_MS: u64 = 1_763_700_000_000;

/// The benchmark tool's relayed message: `{"t":NS,"p":"xx…"}` padded to 256 bytes.
fn message() -> String {
    let body = format!(r#"{{"t":1763700000123456789,"p":"{}"}}"#, "x".repeat(224));
    assert_eq!(body.len(), 256);
    format!(
        r#"{{"type":"message","room":"a1b2c3-p7","seq":42,"ts":{T0_UNIX_MS},"to":"a1b2c3-pb7","payload":{body}}}"#
    )
}

fn candidate() -> String {
    let c = "candidate:842163049 1 udp 1677729535 192.0.2.3 54400 typ srflx raddr 10.0.0.2 \
             rport 54400 generation 0 ufrag EsAw network-cost 999";
    format!(
        r#"{{"type":"candidate","room":"a1b2c3-p7","seq":42,"ts":{T0_UNIX_MS},"to":"a1b2c3-pb7","payload":{{"candidate":"{c}","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"EsAw"}}}}"#
    )
}

const AUDIO_CODECS: &[&str] = &["111 opus/48000/2", "63 red/48000/2", "9 G722/8000"];
const VIDEO_CODECS: &[&str] = &[
    "96 VP8/90000",
    "97 rtx/90000",
    "98 VP9/90000",
    "99 rtx/90000",
    "45 AV1/90000",
];

/// An SDP offer shaped like a browser's for one audio and one video track.
fn offer() -> String {
    let mut lines = vec![
        "v=0".to_owned(),
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1".to_owned(),
        "s=-".to_owned(),
        "t=0 0".to_owned(),
        "a=group:BUNDLE 0 1".to_owned(),
        "a=extmap-allow-mixed".to_owned(),
        "a=msid-semantic: WMS 3d5a8f0e-2b7c-4d2e-9a51-6c1f0b3e7d42".to_owned(),
    ];
    for (mid, kind, codecs) in [("0", "audio", AUDIO_CODECS), ("1", "video", VIDEO_CODECS)] {
        let pts: Vec<&str> = codecs
            .iter()
            .filter_map(|c| c.split_once(' '))
            .map(|(pt, _)| pt)
            .collect();
        lines.push(format!("m={kind} 9 UDP/TLS/RTP/SAVPF {}", pts.join(" ")));
        lines.extend([
            "c=IN IP4 0.0.0.0".to_owned(),
            "a=rtcp:9 IN IP4 0.0.0.0".to_owned(),
            "a=ice-ufrag:EsAw".to_owned(),
            "a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y".to_owned(),
            "a=ice-options:trickle".to_owned(),
            "a=fingerprint:sha-256 0D:2C:87:A5:17:B0:4E:19:7B:32:6F:C8:AA:5E:30:92:D1:44:6A:\
             B3:E7:0F:51:88:29:C6:D4:7E:13:0B:AF:62"
                .to_owned(),
            "a=setup:actpass".to_owned(),
            format!("a=mid:{mid}"),
            "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level".to_owned(),
            "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time".to_owned(),
            "a=sendrecv".to_owned(),
            "a=msid:3d5a8f0e-2b7c-4d2e-9a51-6c1f0b3e7d42 8c0e1f7a-4b2d-4e6f-a1c3-5d7e9f0b2c4e"
                .to_owned(),
            "a=rtcp-mux".to_owned(),
            "a=rtcp-rsize".to_owned(),
        ]);
        for (pt, name) in codecs.iter().filter_map(|c| c.split_once(' ')) {
            lines.push(format!("a=rtpmap:{pt} {name}"));
            lines.push(format!("a=rtcp-fb:{pt} transport-cc"));
            lines.push(format!("a=fmtp:{pt} minptime=10;useinbandfec=1"));
        }
        lines.push("a=ssrc:1001 cname:dBvVRAtDQzYmGmUk".to_owned());
    }
    let sdp = lines.join("\\r\\n") + "\\r\\n";
    format!(
        r#"{{"type":"offer","room":"a1b2c3-p7","seq":42,"ts":{T0_UNIX_MS},"to":"a1b2c3-pb7","payload":{{"type":"offer","sdp":"{sdp}"}}}}"#
    )
}

fn ack() -> String {
    format!(r#"{{"type":"ack","seq":43,"ts":{T0_UNIX_MS},"payload":{{"seq":1234}}}}"#)
}

/// Parses `text` `frames` times; everything counted under callgrind happens here.
#[inline(never)]
fn run_parses(text: &str, frames: usize, limits: &Limits) {
    for _ in 0..frames {
        let frame = parse_client_message(black_box(text), limits).expect("a valid frame");
        black_box(frame);
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let frames = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let kinds: Vec<&str> = match args.get(1).map(String::as_str) {
        Some(kind) => vec![kind],
        None => vec!["message", "candidate", "offer", "ack"],
    };
    if args.first().is_some_and(|mode| mode != "parse") {
        panic!("unknown mode {}: parse [KIND [FRAMES]]", args[0]);
    }
    let limits = Limits::default();
    for kind in kinds {
        let text = match kind {
            "message" => message(),
            "candidate" => candidate(),
            "offer" => offer(),
            "ack" => ack(),
            other => panic!("unknown kind {other}: message, candidate, offer or ack"),
        };
        let started = Instant::now();
        run_parses(&text, frames, &limits);
        let elapsed = started.elapsed();
        println!(
            "{kind} ({} bytes): {frames} frames, {:.0} ns per frame (wall clock; use callgrind for repeatable figures)",
            text.len(),
            elapsed.as_nanos() as f64 / frames as f64
        );
    }
}
