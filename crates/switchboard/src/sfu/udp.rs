//! The SFU's UDP socket, written in batches: the datagrams one turn of the worker produces (a
//! frame fanned out to every subscriber, a timer round's RTCP) leave in `sendmmsg` calls of up to
//! [`SEND_BATCH`] datagrams instead of one `sendto` each. One `sendto` per datagram was 21 % of
//! the server's CPU with 50 subscribers per publisher (docs/benchmarks.md, "SFU through the
//! server"); a batch enters the kernel once. rustix's safe `sendmmsg` is used because the
//! workspace forbids `unsafe`; tokio's `UdpSocket` has no batched send.
//!
//! Overflow policy: a datagram the socket cannot take right away (its send buffer is full) is
//! dropped, and so is the rest of its batch, as the network would drop them; str0m's
//! retransmissions and keyframe requests recover. A datagram the kernel refuses for its own sake
//! (say, an address it cannot route) is dropped alone and the batch goes on.

#[cfg(target_os = "linux")]
use std::io::IoSlice;
use std::{io::ErrorKind, net::SocketAddr};

#[cfg(target_os = "linux")]
use rustix::net::{
    MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny, addr::SocketAddrArg, sendmmsg,
};
use tokio::{io::Interest, net::UdpSocket};

/// Datagrams per `sendmmsg` call at most (Linux takes up to 1,024): one frame fanned out to 50
/// subscribers leaves in one call.
pub const SEND_BATCH: usize = 64;

/// What became of the datagrams handed to [`send`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Datagrams the kernel took.
    pub sent: u64,
    /// Datagrams dropped (see the module doc).
    pub dropped: u64,
}

/// Sends each `(contents, destination)` of `datagrams` from `socket`, in order.
pub fn send(socket: &UdpSocket, datagrams: &[(Vec<u8>, SocketAddr)]) -> Sent {
    let mut outcome = Sent::default();
    let mut rest = datagrams;
    while !rest.is_empty() {
        let batch = &rest[..rest.len().min(SEND_BATCH)];
        match socket.try_io(Interest::WRITABLE, || send_batch(socket, batch)) {
            Ok(n) => {
                outcome.sent += n as u64;
                rest = &rest[n..];
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                outcome.dropped += rest.len() as u64;
                break;
            }
            Err(e) => {
                // The first datagram of the batch was refused; the others may well go.
                tracing::debug!(event = "sfu.send_failed", error = %e, "SFU datagram not sent");
                outcome.dropped += 1;
                rest = &rest[1..];
            }
        }
    }
    outcome
}

/// One `sendmmsg` call: how many of `batch` (at least one) the kernel took.
#[cfg(target_os = "linux")]
fn send_batch(socket: &UdpSocket, batch: &[(Vec<u8>, SocketAddr)]) -> std::io::Result<usize> {
    let addrs: Vec<SocketAddrAny> = batch.iter().map(|(_, to)| to.as_any()).collect();
    let iovs: Vec<[IoSlice<'_>; 1]> = batch.iter().map(|(data, _)| [IoSlice::new(data)]).collect();
    // No ancillary data: one empty buffer per message, as `MMsgHdr` borrows one mutably.
    let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> = batch
        .iter()
        .map(|_| SendAncillaryBuffer::default())
        .collect();
    let mut headers: Vec<MMsgHdr<'_>> = addrs
        .iter()
        .zip(&iovs)
        .zip(&mut controls)
        .map(|((addr, iov), control)| MMsgHdr::new_with_addr(addr, iov, control))
        .collect();
    Ok(sendmmsg(socket, &mut headers, SendFlags::empty())?)
}

/// Where there is no `sendmmsg` (it is Linux's), one datagram per call.
#[cfg(not(target_os = "linux"))]
fn send_batch(socket: &UdpSocket, batch: &[(Vec<u8>, SocketAddr)]) -> std::io::Result<usize> {
    let (data, to) = &batch[0];
    socket.try_send_to(data, *to).map(|_| 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn bound() -> UdpSocket {
        UdpSocket::bind("127.0.0.1:0").await.unwrap()
    }

    /// A socket to send from, once the reactor has seen it writable (as the worker's has long
    /// been: `send` never waits for readiness).
    async fn sender() -> UdpSocket {
        let socket = bound().await;
        socket.writable().await.unwrap();
        socket
    }

    async fn read(socket: &UdpSocket) -> Vec<u8> {
        let mut buf = vec![0; 2048];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), socket.recv(&mut buf))
            .await
            .expect("a datagram within 5 s")
            .unwrap();
        buf.truncate(n);
        buf
    }

    #[tokio::test]
    async fn datagrams_past_one_call_all_arrive_in_order() {
        let (sender, even, odd) = (sender().await, bound().await, bound().await);
        let count = 2 * SEND_BATCH + 7;
        let datagrams: Vec<(Vec<u8>, SocketAddr)> = (0..count)
            .map(|i| {
                let to = if i % 2 == 0 { &even } else { &odd };
                (vec![i as u8; 1 + i], to.local_addr().unwrap())
            })
            .collect();
        let outcome = send(&sender, &datagrams);
        assert_eq!(
            outcome,
            Sent {
                sent: count as u64,
                dropped: 0
            }
        );
        for i in 0..count {
            let from = if i % 2 == 0 { &even } else { &odd };
            assert_eq!(read(from).await, vec![i as u8; 1 + i], "datagram {i}");
        }
    }

    #[tokio::test]
    async fn a_refused_datagram_is_dropped_alone() {
        let (sender, receiver) = (sender().await, bound().await);
        let to = receiver.local_addr().unwrap();
        // An IPv4 socket cannot send to an IPv6 address: the kernel refuses that one.
        let elsewhere: SocketAddr = "[::1]:9".parse().unwrap();
        let datagrams = vec![
            (b"one".to_vec(), to),
            (b"lost".to_vec(), elsewhere),
            (b"two".to_vec(), to),
        ];
        assert_eq!(
            send(&sender, &datagrams),
            Sent {
                sent: 2,
                dropped: 1
            }
        );
        assert_eq!(read(&receiver).await, b"one");
        assert_eq!(read(&receiver).await, b"two");
    }
}
