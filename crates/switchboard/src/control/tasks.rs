//! The control plane's tasks and their shutdown: the journal's writer, the audit sweep, the
//! expiry sweep, the webhook delivery task and, in cluster mode, the task that follows stored
//! rooms' changes made through other nodes ([`super::cluster`]), started together by the server
//! and stopped after its drain, so the
//! sessions' last leaves still reach the audit log and the outbox.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Control, cluster, expiry, webhooks, writer};

/// The running tasks; see the module documentation.
pub struct Tasks {
    stop: CancellationToken,
    writer: Option<JoinHandle<()>>,
    sweep: JoinHandle<()>,
    expiry: JoinHandle<()>,
    delivery: JoinHandle<()>,
    follow: JoinHandle<()>,
}

impl Tasks {
    /// Starts the tasks of `control`. The sweeps and the follower of stored rooms' changes stop
    /// when `shutdown` fires; the writer and the delivery task when [`Tasks::stop`] is called.
    pub fn start(control: &Control, shutdown: &CancellationToken) -> Tasks {
        let stop = CancellationToken::new();
        let writer = control
            .take_records()
            .map(|records| tokio::spawn(writer::write(control.clone(), records, stop.clone())));
        let sweep = tokio::spawn(writer::sweep(control.clone(), shutdown.clone()));
        let expiry = tokio::spawn(expiry::sweep(control.clone(), shutdown.clone()));
        let delivery = tokio::spawn(webhooks::deliver::run(
            control.clone(),
            control.webhooks().clone(),
            stop.clone(),
        ));
        let follow = tokio::spawn(cluster::follow(control.clone(), shutdown.clone()));
        Tasks {
            stop,
            writer,
            sweep,
            expiry,
            delivery,
            follow,
        }
    }

    /// Stops the tasks: the writer writes what is queued (within `grace`), the delivery task
    /// leaves what is undelivered in the outbox.
    pub async fn stop(self, grace: Duration) {
        self.stop.cancel();
        if let Some(mut writer) = self.writer
            && tokio::time::timeout(grace, &mut writer).await.is_err()
        {
            tracing::warn!(
                event = "journal.stop_timeout",
                "journal records still unwritten at the shutdown deadline"
            );
            writer.abort();
        }
        let _ = self.delivery.await;
        let _ = self.sweep.await;
        let _ = self.follow.await;
        let _ = self.expiry.await;
    }
}
