//! The checks an offer passes before str0m sees it: the number of m-lines and, for every m-line
//! the peer sends on, a codec the SFU can forward.
//!
//! str0m answers an m-line with no common codec by rejecting just that line, which a browser
//! reports as a track that never plays; refusing the offer with `unsupported_codec` tells the
//! app why. Counting m-lines before parsing bounds the work one offer can cause.

use crate::SfuError;

/// The codecs the SFU negotiates and forwards, by kind (`a=rtpmap` names, case-insensitive).
pub(crate) const AUDIO_CODECS: &[&str] = &["opus"];
/// See [`AUDIO_CODECS`].
pub(crate) const VIDEO_CODECS: &[&str] = &["vp8"];

struct Section<'a> {
    index: usize,
    kind: &'a str,
    sends: bool,
    codecs: Vec<&'a str>,
}

impl Section<'_> {
    fn check(&self) -> Result<(), SfuError> {
        let wanted = match self.kind {
            "audio" => AUDIO_CODECS,
            "video" => VIDEO_CODECS,
            _ => return Ok(()),
        };
        if !self.sends
            || self
                .codecs
                .iter()
                .any(|c| wanted.iter().any(|w| c.eq_ignore_ascii_case(w)))
        {
            return Ok(());
        }
        Err(SfuError::UnsupportedCodec(format!(
            "m-line {} ({}) offers none of: {}",
            self.index,
            self.kind,
            wanted.join(", ")
        )))
    }
}

/// Checks `sdp` (an offer from a peer) against the limits; see the module doc.
pub(crate) fn check_offer(sdp: &str, max_media_lines: usize) -> Result<(), SfuError> {
    let mut count = 0;
    let mut section: Option<Section> = None;
    for line in sdp.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(m) = line.strip_prefix("m=") {
            if let Some(done) = section.take() {
                done.check()?;
            }
            count += 1;
            if count > max_media_lines {
                return Err(SfuError::TooManyTracks(format!(
                    "the offer has more than {max_media_lines} m-lines"
                )));
            }
            let mut fields = m.split(' ');
            let kind = fields.next().unwrap_or("");
            let rejected = fields.next() == Some("0");
            section = Some(Section {
                index: count - 1,
                kind,
                // No direction attribute means sendrecv (RFC 8866); a port of 0 sends nothing.
                sends: !rejected,
                codecs: Vec::new(),
            });
        } else if let Some(section) = section.as_mut() {
            if let Some(map) = line.strip_prefix("a=rtpmap:") {
                if let Some(name) = map.split(' ').nth(1).and_then(|e| e.split('/').next()) {
                    section.codecs.push(name);
                }
            } else if line == "a=recvonly" || line == "a=inactive" {
                section.sends = false;
            }
        }
    }
    if let Some(done) = section {
        done.check()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdp(sections: &[&str]) -> String {
        let mut s = String::from("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n");
        for section in sections {
            s.push_str(section);
        }
        s
    }

    const OPUS: &str =
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendonly\r\na=rtpmap:111 opus/48000/2\r\n";
    const VP8: &str = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendrecv\r\na=rtpmap:96 VP8/90000\r\n";
    const H264: &str =
        "m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=sendonly\r\na=rtpmap:102 H264/90000\r\n";

    #[test]
    fn supported_codecs_pass() {
        assert_eq!(check_offer(&sdp(&[OPUS, VP8]), 8), Ok(()));
    }

    #[test]
    fn a_sent_track_without_a_forwarded_codec_is_refused() {
        let err = check_offer(&sdp(&[OPUS, H264]), 8).unwrap_err();
        assert!(matches!(err, SfuError::UnsupportedCodec(ref m) if m.contains("m-line 1")));
    }

    #[test]
    fn a_received_only_track_may_offer_anything() {
        let recv = H264.replace("a=sendonly", "a=recvonly");
        assert_eq!(check_offer(&sdp(&[&recv]), 8), Ok(()));
        let rejected = H264.replace(" 9 ", " 0 ");
        assert_eq!(check_offer(&sdp(&[&rejected]), 8), Ok(()));
    }

    #[test]
    fn too_many_m_lines_are_refused() {
        let many = vec![OPUS; 9];
        assert!(matches!(
            check_offer(&sdp(&many), 8),
            Err(SfuError::TooManyTracks(_))
        ));
        assert_eq!(check_offer(&sdp(&many[..8]), 8), Ok(()));
    }
}
