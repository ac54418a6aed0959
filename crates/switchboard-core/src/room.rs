//! A room: its members in join order, its mode, its kicked users and its activity clock.

use std::{collections::HashSet, sync::Arc, time::Instant};

use switchboard_protocol::{Media, MediaMode, Mode, PeerInfo};

use crate::{RateLimits, SessionId, deadlines::TimerToken, rate::TokenBucket};

pub(crate) struct Member {
    pub(crate) session: SessionId,
    pub(crate) user: Arc<str>,
    pub(crate) info: PeerInfo,
}

pub(crate) struct Room {
    pub(crate) mode: Mode,
    /// Its media setting: from the server or its stored policy when it opens, then its hosts'.
    pub(crate) media_mode: MediaMode,
    /// Where its media goes now (follows the members' count in `auto`).
    pub(crate) media: Media,
    /// When an `auto` room down to two members goes back to mesh: a little later, so a member
    /// reloading its page (its old session leaves, its new one joins) moves nobody's media.
    pub(crate) mesh_at: Option<Instant>,
    /// In join order, so `joined.peers` lists the longest-present first. Rooms are small (`max_peers`),
    /// so a linear search beats a map here.
    pub(crate) members: Vec<Member>,
    /// Users a host kicked; they cannot rejoin while the room lives.
    pub(crate) banned: HashSet<Arc<str>>,
    /// Activity taken up so far; members' messages since are on their sessions (`last_active`).
    pub(crate) last_activity: Instant,
    /// Budget for messages relayed in the room by all members together.
    pub(crate) budget: TokenBucket,
    /// Cluster mode: messages this node's members were charged to `budget` since the cluster's
    /// budget of the room was last synced ([`Hub::take_room_use`](crate::Hub::take_room_use)).
    pub(crate) used: u32,
    /// The room's live entry in the hub's timers (its idle deadline).
    pub(crate) timer: TimerToken,
}

impl Room {
    pub(crate) fn new(
        rate: &RateLimits,
        media_mode: MediaMode,
        sfu: bool,
        now: Instant,
        timer: TimerToken,
    ) -> Self {
        Room {
            timer,
            mode: Mode::default(),
            media_mode,
            media: media_mode.media(0, sfu),
            mesh_at: None,
            members: Vec::new(),
            banned: HashSet::new(),
            last_activity: now,
            budget: TokenBucket::new(rate.room_messages(), now),
            used: 0,
        }
    }

    pub(crate) fn member(&self, peer: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.info.peer.as_str() == peer)
    }

    pub(crate) fn member_of_session(&self, session: &SessionId) -> Option<&Member> {
        self.members.iter().find(|m| &m.session == session)
    }

    pub(crate) fn remove_session(&mut self, session: &SessionId) -> Option<Member> {
        let i = self.members.iter().position(|m| &m.session == session)?;
        Some(self.members.remove(i))
    }
}
