//! Admission: the caps on sessions per user and per address, the budgets every message is charged
//! to, and what happens to a sender over budget (a warning at most once a second, and the end of
//! its session once the drops show sustained abuse).

use std::{collections::HashMap, net::IpAddr};

use switchboard_protocol::{
    ClientMessage, ErrorCode, Notice, PeerLeftReason, RoomId, ServerBody, ServerMessage,
    SignalError, SignalKind,
};

use super::Hub;
use crate::{
    CloseReason, Event, Identity, Now, RateLimits, RateScope, SessionId,
    deadlines::{Deadlines, TimerKey, TimerToken},
    rate::TokenBucket,
    room::Room,
    session::Session,
};

impl<S: Clone> Hub<S> {
    /// Counts a new session of `identity` against its user's and its address's caps, or refuses
    /// it with `rate_limited` when either is reached.
    pub(super) fn count_session(&mut self, identity: &Identity) -> Result<(), SignalError> {
        let per_user = self.sessions_by_user.get(&identity.user).copied();
        if per_user.unwrap_or(0) >= self.config.max_sessions_per_user {
            return Err(SignalError::RateLimited(format!(
                "this user already has {} sessions",
                self.config.max_sessions_per_user
            )));
        }
        if let Some(address) = identity.address {
            let per_address = self.sessions_by_address.get(&address).copied();
            if per_address.unwrap_or(0) >= self.config.max_sessions_per_address {
                return Err(SignalError::RateLimited(format!(
                    "this address already has {} sessions",
                    self.config.max_sessions_per_address
                )));
            }
        }
        self.count_moved_session(identity);
        Ok(())
    }

    /// Counts a session without checking the caps: one that moved here from another node of a
    /// cluster is no new session (it was admitted where it started).
    pub(super) fn count_moved_session(&mut self, identity: &Identity) {
        if let Some(address) = identity.address {
            *self.sessions_by_address.entry(address).or_default() += 1;
        }
        *self
            .sessions_by_user
            .entry(identity.user.clone())
            .or_default() += 1;
    }

    /// Gives back what [`Hub::count_session`] counted, when the session is gone.
    pub(super) fn uncount_session(&mut self, identity: &Identity) {
        if let Some(n) = self.sessions_by_user.get_mut(&identity.user) {
            *n -= 1;
            if *n == 0 {
                self.sessions_by_user.remove(&identity.user);
            }
        }
        if let Some(address) = identity.address
            && let Some(n) = self.sessions_by_address.get_mut(&address)
        {
            *n -= 1;
            if *n == 0 {
                self.sessions_by_address.remove(&address);
            }
        }
    }

    /// Charges `message` to the budgets it draws on; `Err` names the one that is spent.
    /// Takes the sender (its id and session) and the tables it draws on apart from the hub, so
    /// the caller's lookup of the sender serves. A `clustered` hub counts what a room's budget
    /// gave, for the cluster's budget of the room (`shared_budget.rs`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn admit(
        (id, s): (&SessionId, &mut Session<S>),
        rate: &RateLimits,
        clustered: bool,
        joins_by_address: &mut HashMap<IpAddr, (TokenBucket, TimerToken)>,
        timers: &mut Deadlines,
        rooms: &mut HashMap<RoomId, Box<Room>>,
        message: &ClientMessage,
        now: Now,
    ) -> Result<(), RateScope> {
        let (own, own_rate, scope) = match message {
            ClientMessage::Signal {
                kind: SignalKind::Candidate,
                ..
            } => (&mut s.candidates, rate.candidates(), RateScope::Candidate),
            _ => (&mut s.messages, rate.messages(), RateScope::Session),
        };
        if own_rate.is_on() && !own.try_take(own_rate, now.at) {
            return Err(scope);
        }
        match message {
            ClientMessage::Join { .. } => {
                let joins = rate.joins_per_address();
                if let Some(address) = s.identity.address
                    && joins.is_on()
                {
                    let (bucket, _) = joins_by_address.entry(address).or_insert_with(|| {
                        let bucket = TokenBucket::new(joins, now.at);
                        // Checked again when due: forgotten once full, else scheduled later.
                        (
                            bucket,
                            timers.schedule(TimerKey::JoinBudget(address), now.at),
                        )
                    });
                    if !bucket.try_take(joins, now.at) {
                        return Err(RateScope::Address);
                    }
                }
            }
            ClientMessage::Signal { room, .. } | ClientMessage::Message { room, .. } => {
                // Only members spend a room's budget: anyone else is refused `not_in_room` by
                // `dispatch`, and must not be able to drain the budget of a room it is not in.
                let shared = rate.room_messages();
                if shared.is_on()
                    && let Some(r) = rooms.get_mut(room.as_str())
                    && r.member_of_session(id).is_some()
                {
                    if !r.budget.try_take(shared, now.at) {
                        return Err(RateScope::Room);
                    }
                    if clustered {
                        r.used = r.used.saturating_add(1);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A message of `id` was dropped: warn it at most once a second, and end it once the drops
    /// show sustained abuse.
    pub(super) fn throttled(&mut self, id: &SessionId, scope: RateScope, now: Now) {
        let rate = &self.config.rate;
        let budget = match scope {
            RateScope::Candidate => rate.candidates_per_sec,
            _ => rate.messages_per_sec,
        };
        let threshold = (budget * (rate.abuse_factor - 1.0)).max(1.0) as u32;
        let window = (rate.abuse_window_ms / 1000).max(1) as u32;
        let Some(s) = self.sessions.get_mut(id) else {
            return;
        };
        let abusive = s.abuse.dropped(now.at, threshold, window);
        let warned = !abusive && s.abuse.may_warn(now.at);
        self.events.push(Event::RateLimited {
            scope,
            session: id.clone(),
            warned,
        });
        if abusive {
            self.close_session(id, CloseReason::Abuse, PeerLeftReason::Disconnected, now);
        } else if warned {
            let notice = ServerBody::Warning(Notice {
                code: ErrorCode::RateLimited,
                message: format!(
                    "messages over the {} budget are being dropped; slow down",
                    scope.as_str()
                ),
            });
            self.push(id, &ServerMessage::new(notice), now);
        }
    }
}

#[cfg(test)]
mod tests;
