//! Exactly once and in order, from an inbox that may lose, repeat and reorder: for each session of
//! this node, the position in its log up to which messages were handed to the hub.
//!
//! A doorbell at the next position is applied; one at or below it is a repeat and dropped; one
//! above it means doorbells were lost, and the gap is read from the session's log (which holds
//! every message in position order) before going on. Sans IO: the inbox task does the reading.

use std::collections::{HashMap, HashSet};

use switchboard_core::SessionId;

use super::store::LogEntry;

/// What to do with a doorbell ([`Sequencer::offer`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Offer {
    /// Hand it to the hub: it is the next one.
    Apply,
    /// Already handed over: drop it.
    Repeat,
    /// Doorbells before it were lost: read the log after this position and hand over what it
    /// holds ([`Sequencer::fill`]) instead.
    Gap {
        /// The position handed over last.
        after: u64,
    },
}

/// See the module documentation.
#[derive(Default)]
pub struct Sequencer {
    handed: HashMap<SessionId, u64>,
    /// Sessions this node is claiming from another node: their doorbells are dropped until the
    /// claim says from which position on they are this node's ([`Sequencer::adopt`]); the log
    /// has them.
    claiming: HashSet<SessionId>,
}

impl Sequencer {
    /// What to do with the doorbell of `session` at `position`.
    pub fn offer(&mut self, session: &SessionId, position: u64) -> Offer {
        if self.claiming.contains(session) {
            return Offer::Repeat;
        }
        let handed = self.handed.entry(session.clone()).or_insert(0);
        if position <= *handed {
            Offer::Repeat
        } else if position == *handed + 1 {
            *handed = position;
            Offer::Apply
        } else {
            Offer::Gap { after: *handed }
        }
    }

    /// Takes a log read of `session` (entries from position `first` on) and returns what to hand
    /// over, in order from the position returned, with the number of positions that were no
    /// longer kept (lost for good: the log keeps only its latest entries).
    pub fn fill(
        &mut self,
        session: &SessionId,
        first: u64,
        entries: Vec<LogEntry>,
    ) -> (u64, Vec<LogEntry>, u64) {
        if self.claiming.contains(session) {
            return (first, Vec::new(), 0);
        }
        let handed = self.handed.entry(session.clone()).or_insert(0);
        let skipped = first.saturating_sub(*handed + 1);
        let start = first.max(*handed + 1);
        let fresh: Vec<LogEntry> = entries.into_iter().skip((start - first) as usize).collect();
        *handed = start - 1 + fresh.len() as u64;
        (start, fresh, skipped)
    }

    /// The position handed over last for each session tracked, to check against the logs after
    /// the inbox was lost for a while.
    pub fn positions(&self) -> Vec<(SessionId, u64)> {
        self.handed.iter().map(|(s, p)| (s.clone(), *p)).collect()
    }

    /// Starts tracking a session that came to this node (its log starts empty).
    pub fn track(&mut self, session: SessionId) {
        self.handed.entry(session).or_insert(0);
    }

    /// Stops tracking a session that ended or left this node.
    pub fn forget(&mut self, session: &SessionId) {
        self.handed.remove(session);
        self.claiming.remove(session);
    }

    /// Forgets every session: the node let them all go (it was fenced).
    pub fn reset(&mut self) {
        self.handed.clear();
        self.claiming.clear();
    }

    /// This node is claiming `session`: its doorbells wait for [`Sequencer::adopt`].
    pub fn claim(&mut self, session: SessionId) {
        self.claiming.insert(session);
    }

    /// The claim of `session` ended: adopted with everything up to `position` handed over, or
    /// (`None`) not adopted.
    pub fn adopt(&mut self, session: &SessionId, position: Option<u64>) {
        self.claiming.remove(session);
        match position {
            Some(position) => {
                self.handed.insert(session.clone(), position);
            }
            None => {
                self.handed.remove(session);
            }
        }
    }
}

#[cfg(test)]
mod tests;
