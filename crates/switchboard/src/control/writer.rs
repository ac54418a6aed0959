//! The journal's writer task and the audit log's retention sweep: the two tasks that keep the
//! audit log, owned by the control plane's task set (`tasks.rs`).
//!
//! The writer takes records from the journal's queue ([`crate::journal`]) up to [`BATCH`] at a
//! time and writes each batch's audit lines and webhook outbox entries in two statements'
//! transactions. A batch the database refuses is logged and counted as dropped
//! (`journal_dropped_total`): the queue keeps filling meanwhile, and a stuck database must not
//! hold records without bound. On stop it writes what is still queued, then ends.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Control, audit, now_ms};
use crate::journal::Record;

/// Records written at once at most.
const BATCH: usize = 256;

/// How often the sweep deletes audit lines past `audit_retention_days`.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// A day in Unix milliseconds.
const DAY_MS: i64 = 24 * 3600 * 1000;

/// Writes what the journal queues until `stop` is cancelled, then what is left.
pub(crate) async fn write(
    control: Control,
    mut records: mpsc::Receiver<Record>,
    stop: CancellationToken,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let stopping = tokio::select! {
            biased;
            n = records.recv_many(&mut batch, BATCH) => n == 0,
            _ = stop.cancelled() => true,
        };
        if stopping {
            records.close();
            while let Ok(record) = records.try_recv() {
                batch.push(record);
                if batch.len() == BATCH {
                    write_batch(&control, &mut batch).await;
                }
            }
            write_batch(&control, &mut batch).await;
            return;
        }
        write_batch(&control, &mut batch).await;
    }
}

/// Writes `batch`'s audit lines and webhook entries, and empties it.
async fn write_batch(control: &Control, batch: &mut Vec<Record>) {
    if batch.is_empty() {
        return;
    }
    let hasher = control.node().user_hasher();
    let webhooks = control.webhooks();
    let lines: Vec<_> = batch
        .iter()
        .filter_map(|r| audit::entry(r, hasher))
        .collect();
    let mut outbox = Vec::new();
    let now = now_ms();
    for record in batch.iter() {
        webhooks.queue(record, now, &mut outbox);
    }
    let metrics = control.node().metrics().journal();
    let store = control.store();
    match store.append_audit(&lines).await {
        Ok(()) => metrics.audit_written(lines.len()),
        Err(e) => {
            metrics.journal_dropped_many(lines.len());
            tracing::error!(event = "audit.write_failed", error = %e, lines = lines.len(), "audit lines lost");
        }
    }
    if !outbox.is_empty() {
        match store.enqueue_webhooks(&outbox).await {
            Ok(()) => webhooks.wake(),
            Err(e) => {
                metrics.journal_dropped_many(outbox.len());
                tracing::error!(event = "webhook.queue_failed", error = %e, events = outbox.len(), "webhook events lost");
            }
        }
    }
    batch.clear();
}

/// Deletes audit lines older than `audit_retention_days` now and every [`SWEEP_EVERY`] until
/// `shutdown` is cancelled; does nothing when the setting is 0 (keep forever).
pub(crate) async fn sweep(control: Control, shutdown: CancellationToken) {
    let days = control.node().config().audit_retention_days;
    if days == 0 {
        return;
    }
    loop {
        let before = now_ms() - i64::from(days) * DAY_MS;
        match control.store().sweep_audit(before).await {
            Ok(swept) => tracing::info!(
                event = "audit.swept",
                swept,
                days,
                "old audit lines deleted"
            ),
            Err(e) => {
                tracing::error!(event = "audit.sweep_failed", error = %e, "audit sweep failed")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
        }
    }
}
