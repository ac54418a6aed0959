//! The network and the clock of the [`World`]: datagrams in flight with a fixed one-way delay
//! (lost when an end is cut off), the virtual clock jumping to the next thing due, and the SFU's
//! output handed to the clients, which answer it as a browser would.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use str0m::{
    Event, Input, Output as RtcOutput,
    change::{SdpAnswer, SdpOffer},
    format::CodecExtra,
    net::{Protocol, Receive},
};
use switchboard_sfu::{Datagram, Inbound, Output, ToPeer};

use super::{DELAY, Frame, ROOM, World};

/// This thread's CPU time: what the SFU's calls cost, however loaded the machine is.
#[cfg(unix)]
fn cpu_now() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Wall time where no thread CPU clock is at hand.
#[cfg(not(unix))]
fn cpu_now() -> Duration {
    use std::sync::OnceLock;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// A datagram on its way, due at `at`.
pub(super) struct InFlight {
    at: Instant,
    source: SocketAddr,
    destination: SocketAddr,
    contents: Vec<u8>,
}

impl World {
    /// Runs the world for `d` of virtual time, with every client in `senders` writing a
    /// frame on each of its published m-lines every 20 ms (a keyframe every `gop` frames).
    pub fn run_media(&mut self, d: Duration, senders: &[usize]) {
        let end = self.now + d;
        let mut next_frame = self.now;
        while self.now < end {
            if self.now >= next_frame {
                for &i in senders {
                    for t in 0..self.clients[i].sending.len() {
                        self.write_frame(i, t, self.ticks.is_multiple_of(self.gop));
                    }
                }
                self.ticks += 1;
                next_frame += Duration::from_millis(20);
            }
            self.step(next_frame.min(end));
        }
    }

    /// Runs until `done` holds, failing after `limit` of virtual time.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&World) -> bool) {
        let end = self.now + limit;
        while !done(self) {
            assert!(
                self.now < end,
                "condition not met within {limit:?} of virtual time"
            );
            self.step(end);
        }
    }

    /// Advances to the next thing due (no later than `until`) and does it.
    fn step(&mut self, until: Instant) {
        let next = [
            self.sfu.poll_timeout(),
            self.net.iter().map(|p| p.at).min(),
            self.clients.iter().filter_map(|c| c.next_timeout).min(),
            Some(until),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap();
        // Time only moves forward, and by at least a little so a busy timer cannot stall it.
        self.now = next.max(self.now + Duration::from_micros(100));
        let (due, later): (Vec<_>, Vec<_>) = self.net.drain(..).partition(|p| p.at <= self.now);
        self.net = later.into();
        for p in due {
            self.deliver(p);
        }
        if self.sfu.poll_timeout().is_some_and(|t| t <= self.now) {
            let began = cpu_now();
            self.sfu.handle_timeout(self.now);
            self.sfu_calls.push(cpu_now() - began);
            self.pump();
        }
        self.client_timers();
    }

    /// Runs the clients' timers that are due.
    fn client_timers(&mut self) {
        for i in 0..self.clients.len() {
            if self.clients[i].next_timeout.is_some_and(|t| t <= self.now) {
                self.clients[i]
                    .rtc
                    .handle_input(Input::Timeout(self.now))
                    .unwrap();
                self.drain_client(i);
            }
        }
    }

    /// Lets the clients send what is due, then delivers the datagrams in flight to the SFU, and
    /// only those, moving the clock to the last one's arrival: no timer of the SFU runs.
    pub fn deliver_to_sfu(&mut self) {
        self.client_timers();
        let sfu = self.sfu_addr;
        let (to_sfu, rest): (Vec<_>, Vec<_>) =
            self.net.drain(..).partition(|p| p.destination == sfu);
        self.net = rest.into();
        for p in to_sfu {
            self.now = self.now.max(p.at);
            self.deliver(p);
        }
    }

    /// Datagrams in flight to client `i`.
    pub fn in_flight_to(&self, i: usize) -> usize {
        let addr = self.clients[i].addr;
        self.net.iter().filter(|p| p.destination == addr).count()
    }

    fn deliver(&mut self, p: InFlight) {
        if self.cut.contains(&p.source) || self.cut.contains(&p.destination) {
            return;
        }
        if p.destination == self.sfu_addr {
            let began = cpu_now();
            let taken = self.sfu.receive(
                self.now,
                Datagram {
                    proto: switchboard_sfu::Protocol::Udp,
                    source: p.source,
                    destination: p.destination,
                    contents: &p.contents,
                },
            );
            self.sfu_calls.push(cpu_now() - began);
            if !taken {
                self.stray += 1;
            }
            self.pump();
            return;
        }
        let Some(i) = self.clients.iter().position(|c| c.addr == p.destination) else {
            self.stray += 1;
            return;
        };
        let receive = Receive::new(Protocol::Udp, p.source, p.destination, &p.contents).unwrap();
        let c = &mut self.clients[i];
        if c.rtc.is_alive() {
            c.rtc
                .handle_input(Input::Receive(self.now, receive))
                .unwrap();
            self.drain_client(i);
        }
    }

    /// Takes the SFU's output: datagrams into the network, messages to the clients, which act
    /// on them (and may answer the SFU, which makes more output).
    pub fn pump(&mut self) {
        loop {
            while let Some(out) = self.sfu.poll_output() {
                match out {
                    Output::Transmit(t) => {
                        self.sfu_sent += 1;
                        self.net.push_back(InFlight {
                            at: self.now + DELAY,
                            source: t.source,
                            destination: t.destination,
                            contents: t.contents.to_vec(),
                        })
                    }
                    Output::Signal { room, to, message } => {
                        assert_eq!(&*room, ROOM);
                        let c = self.clients.iter_mut().find(|c| *c.peer == *to).unwrap();
                        c.inbox.push_back(message);
                    }
                }
            }
            let Some(i) = self.clients.iter().position(|c| !c.inbox.is_empty()) else {
                return;
            };
            let message = self.clients[i].inbox.pop_front().unwrap();
            self.on_message(i, message);
        }
    }

    fn on_message(&mut self, i: usize, message: ToPeer) {
        let c = &mut self.clients[i];
        match message {
            ToPeer::Answer { sdp } => {
                let answer = SdpAnswer::from_sdp_string(&sdp).unwrap();
                let pending = c.pending.take().expect("an offer out");
                c.rtc.sdp_api().accept_answer(pending, answer).unwrap();
                self.drain_client(i);
            }
            ToPeer::Offer { sdp } => {
                if c.pending.is_some() {
                    // Impolite: our own offer wins; the SFU offers again after answering it.
                    return;
                }
                let offer = SdpOffer::from_sdp_string(&sdp).unwrap();
                let answer = c.rtc.sdp_api().accept_offer(offer).unwrap();
                self.drain_client(i);
                self.send(
                    i,
                    Inbound::Answer {
                        sdp: answer.to_sdp_string(),
                    },
                );
            }
            ToPeer::TrackMap { mids } => {
                c.track_map = mids
                    .into_iter()
                    .map(|e| (e.mid, (e.peer.to_string(), e.track)))
                    .collect();
            }
            ToPeer::TrackPublished(info) => match info.mid {
                Some(mid) => c
                    .own
                    .push((mid, info.track, info.tag.map(|t| t.to_string()))),
                None => {
                    if let Some(tag) = info.tag {
                        c.tags.insert(info.track.clone(), tag.to_string());
                    }
                    c.published.push((info.peer.to_string(), info.track));
                }
            },
            ToPeer::TrackUnpublished { peer, track } => {
                c.unpublished.push((peer.to_string(), track))
            }
            ToPeer::Layers {
                track,
                active,
                paused,
            } => c.layers.push((track, active, paused)),
            ToPeer::StreamState {
                peer,
                track,
                state,
                layer,
                ..
            } => c
                .stream_states
                .push((peer.to_string(), track, state, layer)),
            ToPeer::TrackState {
                peer,
                track,
                muted,
                by,
            } => c
                .track_states
                .push((peer.to_string(), track, muted, by.to_string())),
            ToPeer::Speakers { peers } => c
                .speakers
                .push(peers.iter().map(|p| p.to_string()).collect()),
            ToPeer::Error(e) => c.errors.push(e),
        }
    }

    pub(super) fn drain_client(&mut self, i: usize) {
        let c = &mut self.clients[i];
        loop {
            match c.rtc.poll_output().unwrap() {
                RtcOutput::Timeout(t) => {
                    c.next_timeout = Some(t);
                    return;
                }
                RtcOutput::Transmit(t) => self.net.push_back(InFlight {
                    at: self.now + DELAY,
                    source: t.source,
                    destination: t.destination,
                    contents: t.contents.to_vec(),
                }),
                RtcOutput::Event(e) => match e {
                    Event::Connected => c.connected = true,
                    Event::MediaData(data) => c.frames.push(Frame {
                        mid: data.mid,
                        keyframe: data.is_keyframe(),
                        time: data.time.numer(),
                        seq: (**data.seq_range.start(), **data.seq_range.end()),
                        picture_id: match data.codec_extra {
                            CodecExtra::Vp8(vp8) => vp8.picture_id,
                            _ => None,
                        },
                        data: data.data.to_vec(),
                    }),
                    Event::KeyframeRequest(r) => {
                        c.keyframe_requests += 1;
                        c.keyframe_rids.push(r.rid.map(|r| r.to_string()));
                    }
                    _ => {}
                },
            }
        }
    }
}
