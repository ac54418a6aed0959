//! Delivery: the one seam between the hub and whatever carries a session's messages.
//!
//! Every hub call ends the same way ([`crate::node::Node::with_hub`]): the hub's outputs are
//! drained, and each [`Sink`] the hub signalled (a session with messages to take or a close to act
//! on) is delivered to. What delivering means is the sink's own business, and nothing else in the
//! server knows which kind of sink a session has:
//!
//! | sink | where | on delivery |
//! |---|---|---|
//! | a WebSocket connection | `transport::ws::sender` | takes the messages and writes them into the socket on the spot, from the task that made the hub call; wakes the connection's task only for what cannot be done there |
//! | an SSE or long-poll stream | [`StreamSink`] | wakes the stream's task, which takes the messages itself |
//!
//! The SFU is no session and has no sink: what members send it comes out of the hub as media
//! commands, which [`crate::node::Node`] hands to the media worker after each call
//! ([`Delivery::take_media`]); what it sends members goes into their outboxes through the hub
//! ([`switchboard_core::Hub::media_message`]) and is delivered here like any message. The sink
//! still to come plugs in here the same way: a session whose transport is on another node (its
//! sink forwards the messages to that node).
//!
//! A WebSocket read often carries several messages (a burst of ICE candidates, a pipelined
//! client). The connection gathers the outputs of every hub call of one read into one
//! [`Delivery`], a value it owns for the length of the read, and delivers them once the read is
//! handled: each recipient then gets what the read produced for it in one write.

use std::{sync::Arc, time::Instant};

use futures_util::task::AtomicWaker;
use parking_lot::{Mutex, MutexGuard};
use switchboard_core::Outputs;

use crate::metrics::Metrics;

/// The hub as the server runs it: its sinks are [`Sink`] trait objects.
pub type Hub = switchboard_core::Hub<SinkRef>;

/// A session's sink as the hub keeps it.
pub type SinkRef = Arc<dyn Sink>;

/// What carries a session's messages to its client. See the module documentation.
pub trait Sink: Send + Sync {
    /// The session behind this sink has messages to take ([`Hub::transmit`]) or must close.
    /// `hub` may still be locked by the call that signalled the sink (the first sink of a
    /// delivery), so a sink that takes its messages on the spot needs no second lock; release it
    /// before any IO. `out` says when the messages were queued and where to count them.
    ///
    /// [`Hub::transmit`]: switchboard_core::Hub::transmit
    fn deliver(self: Arc<Self>, hub: &mut HubAccess<'_>, out: &Outlet<'_>);
}

/// What a sink needs besides the hub to hand messages over.
pub struct Outlet<'a> {
    /// Where messages handed over are counted.
    pub metrics: &'a Metrics,
    /// When the latest hub call of the delivery began: the time the messages were queued by, for
    /// the relay latency metric. Reading the clock again per sink costs more than that precision
    /// is worth: the two are microseconds apart, below the histogram's resolution.
    pub queued_by: Instant,
}

/// The hub's lock, held or not: a delivery starts with the lock of the call that produced it (when
/// it is delivered at once) and takes it again only for a sink that needs it.
pub struct HubAccess<'a> {
    lock: &'a Mutex<Hub>,
    guard: Option<MutexGuard<'a, Hub>>,
}

impl<'a> HubAccess<'a> {
    /// Access through `lock`, already held as `guard` if given.
    pub fn new(lock: &'a Mutex<Hub>, guard: Option<MutexGuard<'a, Hub>>) -> Self {
        HubAccess { lock, guard }
    }

    /// The hub, locked (again, if it was released).
    pub fn hub(&mut self) -> &mut Hub {
        self.guard.get_or_insert_with(|| self.lock.lock())
    }

    /// Releases the lock, before IO.
    pub fn release(&mut self) {
        self.guard = None;
    }
}

/// The outputs of one or more hub calls, to be delivered together. Events are taken out after
/// each call (they are logged in the span of the call that made them); the signalled sinks wait
/// here until [`Delivery::deliver`].
#[derive(Default)]
pub struct Delivery {
    outputs: Outputs<SinkRef>,
    queued_by: Option<Instant>,
}

impl Delivery {
    /// Takes the hub's outputs after a call that began at `began`.
    pub fn gather(&mut self, hub: &mut Hub, began: Instant) {
        hub.drain_outputs(&mut self.outputs);
        if !self.outputs.ready.is_empty() {
            self.queued_by = Some(began);
        }
    }

    /// The events gathered since the last call of this.
    pub fn events(&mut self) -> std::vec::Drain<'_, switchboard_core::Event> {
        self.outputs.events.drain(..)
    }

    /// What the gathered calls changed in shared state (cluster mode), taken out in order.
    pub fn take_shared(&mut self) -> Vec<switchboard_core::SharedOp> {
        std::mem::take(&mut self.outputs.shared)
    }

    /// The media commands gathered since the last call of this, for the SFU's worker.
    pub fn take_media(&mut self) -> Vec<switchboard_core::MediaCommand> {
        std::mem::take(&mut self.outputs.media)
    }

    /// The rooms spread over nodes that the gathered calls found idle here (cluster mode), to
    /// check across the cluster.
    pub fn take_idle(&mut self) -> Vec<switchboard_protocol::RoomId> {
        std::mem::take(&mut self.outputs.idle)
    }

    /// The lobby guests admitted in the gathered calls, for their room tokens.
    pub fn take_admissions(&mut self) -> Vec<switchboard_core::Admission> {
        std::mem::take(&mut self.outputs.admissions)
    }

    /// When the hub's timers next need to run, as of the latest gathered call.
    pub fn deadline(&self) -> Option<Instant> {
        self.outputs.deadline
    }

    /// Delivers to every signalled sink, the first with `hub` as it is (possibly still locked).
    pub fn deliver(&mut self, mut hub: HubAccess<'_>, metrics: &Metrics) {
        let Some(queued_by) = self.queued_by.take() else {
            return;
        };
        let out = Outlet { metrics, queued_by };
        // Delivering makes no hub call that signals, so nothing is added while these are served.
        while let Some(sink) = self.outputs.ready.pop() {
            sink.deliver(&mut hub, &out);
        }
    }
}

/// The sink of a stream served by its own task (SSE, long-poll): delivering wakes the task, which
/// takes the messages itself.
#[derive(Default)]
pub struct StreamSink {
    task: AtomicWaker,
}

impl StreamSink {
    /// Makes `waker` the one woken at the next delivery. Register before taking from the hub, so a
    /// delivery between the two is not missed.
    pub fn register(&self, waker: &std::task::Waker) {
        self.task.register(waker);
    }
}

impl Sink for StreamSink {
    fn deliver(self: Arc<Self>, _: &mut HubAccess<'_>, _: &Outlet<'_>) {
        self.task.wake();
    }
}
