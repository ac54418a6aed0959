//! The delivery task: claims what is due from the outbox, POSTs it signed, and removes it on a 2xx
//! answer or schedules it again (`backoff`). Entries of different streams go out concurrently,
//! at most [`BATCH`] at once; one stream's go one after another (the store hands out only a
//! stream's oldest). Its owner is the control plane's task set (`super::super::tasks`); it stops
//! when its token is cancelled, leaving what is not delivered in the outbox for the next start.
//!
//! Nodes sharing one database each run this task over the one outbox. What a round claims is
//! leased to this task (a holder id drawn at its start) for [`lease`]: longer than a round can
//! take, so no other node delivers those streams meanwhile. A failed attempt gives its lease
//! back; stopping gives back all of them, so another node takes the streams over at its next look;
//! a node that dies keeps them until its leases run out. While another node holds a due stream this
//! task looks again every [`LEASED_CHECK`].

use std::{sync::Arc, time::Duration};

use switchboard_store::OutboxEntry;
use tokio_util::sync::CancellationToken;

use super::{
    Webhooks,
    backoff::{self, Next},
};
use crate::{
    control::{Control, now_ms},
    metrics::DeliveryResult,
};

/// Deliveries in flight at most.
const BATCH: u32 = 32;

/// The wait before the store is asked again after it failed.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// How often to look again while a due stream is leased to another node: how soon a stream is
/// taken over after the node delivering it stops.
const LEASED_CHECK: Duration = Duration::from_secs(1);

/// What a lease adds to the longest a round's attempts may take (`timeout_ms`): the store's
/// writes after them.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// How long this task holds what it claims: the attempts' timeout (a round's attempts run at
/// once, each bounded by it) twice over, for slack, and [`LEASE_MARGIN`].
fn lease(timeout_ms: u64) -> i64 {
    let lease = Duration::from_millis(timeout_ms).saturating_mul(2) + LEASE_MARGIN;
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
}

/// The longest sleep with nothing due: a change made by another node sharing the database is
/// seen within it.
const IDLE_CHECK: Duration = Duration::from_secs(30);

/// Runs until `stop` is cancelled.
pub(crate) async fn run(control: Control, webhooks: Arc<Webhooks>, stop: CancellationToken) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_millis(webhooks.delivery.timeout_ms))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("switchboard-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(event = "webhook.client_failed", error = %e, "webhooks are not delivered");
            return;
        }
    };
    let metrics = control.node().metrics().journal().clone();
    let holder = crate::control::code::random_id("dlv");
    while !stop.is_cancelled() {
        let wait = match round(&control, &webhooks, &client, &holder, &stop).await {
            Ok(wait) => wait,
            Err(e) => {
                tracing::error!(event = "webhook.store_failed", error = %e, "webhook outbox unreadable");
                Some(STORE_RETRY)
            }
        };
        if let Ok(depth) = control.store().webhook_depth().await {
            metrics.webhook_outbox(depth);
        }
        let Some(wait) = wait else { continue };
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = webhooks.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
    if let Err(e) = control.store().release_webhooks(&holder).await {
        tracing::warn!(event = "webhook.release_failed", error = %e, "webhook leases kept until they run out");
    }
}

/// Delivers what is due now; how long to wait before the next round (`None`: go on at once).
async fn round(
    control: &Control,
    webhooks: &Webhooks,
    client: &reqwest::Client,
    holder: &str,
    stop: &CancellationToken,
) -> Result<Option<Duration>, switchboard_store::StoreError> {
    let store = control.store();
    let now = now_ms();
    let lease_until = now.saturating_add(lease(webhooks.delivery.timeout_ms));
    let due = store
        .claim_webhooks(holder, now, lease_until, BATCH)
        .await?;
    if due.is_empty() {
        let wait = match store.next_webhook_at().await? {
            // Due, yet not handed to us: another node holds it.
            Some(at) if at <= now_ms() => LEASED_CHECK,
            Some(at) => Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)),
            None => IDLE_CHECK,
        };
        return Ok(Some(wait.min(IDLE_CHECK)));
    }
    let sends = due.iter().map(|entry| attempt(webhooks, client, entry));
    let results = tokio::select! {
        // Stopping mid-flight leaves the entries in the outbox: sent again after the restart.
        _ = stop.cancelled() => return Ok(Some(Duration::ZERO)),
        results = futures_util::future::join_all(sends) => results,
    };
    let metrics = control.node().metrics().journal();
    for (entry, result) in due.iter().zip(results) {
        let now = now_ms();
        let outcome = match result {
            Attempt::Delivered => {
                store.remove_webhook(entry.id).await?;
                DeliveryResult::Delivered
            }
            Attempt::Unwanted(why) => {
                tracing::warn!(event = "webhook.dropped", id = %entry.event_id, why, "webhook dropped");
                store.remove_webhook(entry.id).await?;
                DeliveryResult::Dropped
            }
            Attempt::Failed(why) => {
                let failures = entry.attempts + 1;
                match backoff::after_failure(&webhooks.delivery, failures, entry.created_at, now) {
                    Next::RetryAt(at) => {
                        tracing::info!(
                            event = "webhook.failed",
                            id = %entry.event_id,
                            failures,
                            why = %why,
                            retry_in_ms = at - now,
                            "webhook delivery failed; will retry"
                        );
                        if !store.retry_webhook(holder, entry.id, at).await? {
                            // The attempt outlived the lease and another node took the entry:
                            // its schedule is that node's now.
                            tracing::info!(
                                event = "webhook.lease_lost",
                                id = %entry.event_id,
                                "webhook lease ran out during the attempt"
                            );
                        }
                        DeliveryResult::Failed
                    }
                    Next::GiveUp => {
                        tracing::warn!(
                            event = "webhook.dropped",
                            id = %entry.event_id,
                            failures,
                            why = %why,
                            "webhook given up at its maximum age"
                        );
                        metrics.webhook_delivery(DeliveryResult::Failed);
                        store.remove_webhook(entry.id).await?;
                        DeliveryResult::Dropped
                    }
                }
            }
        };
        metrics.webhook_delivery(outcome);
    }
    Ok(None)
}

/// How one attempt went.
enum Attempt {
    Delivered,
    /// Not to be sent at all.
    Unwanted(&'static str),
    Failed(String),
}

async fn attempt(webhooks: &Webhooks, client: &reqwest::Client, entry: &OutboxEntry) -> Attempt {
    let now = now_ms();
    if backoff::expired(&webhooks.delivery, entry.created_at, now) {
        return Attempt::Unwanted("older than webhook_delivery.max_age_ms");
    }
    let Some(key) = webhooks.keys.get(&entry.endpoint) else {
        return Attempt::Unwanted("its receiver is no longer configured");
    };
    let timestamp = u64::try_from(now / 1000).unwrap_or(0);
    let sent = client
        .post(&entry.endpoint)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", &entry.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            key.sign(&entry.event_id, timestamp, &entry.body),
        )
        .body(entry.body.clone())
        .send()
        .await;
    match sent {
        Ok(answer) if answer.status().is_success() => Attempt::Delivered,
        Ok(answer) => Attempt::Failed(format!("answered {}", answer.status().as_u16())),
        Err(e) => Attempt::Failed(e.without_url().to_string()),
    }
}
