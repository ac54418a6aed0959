//! The SQL of the audit log and the webhook outbox ([`crate::JournalStore`]), for both databases:
//! `journal_impl!`, which `store_impl!` (in `queries.rs`) expands for each backend.
//!
//! The outbox keeps order per stream without a lock: only a stream's oldest entry (its lowest id)
//! is ever handed out, so its next one waits until it is removed, delivered or given up. Nodes
//! sharing the database take turns by lease: handing out a head leases it to the node that asked
//! (`leased_by`, `lease_until`), in the same statement, and no other node gets it while the
//! lease lasts. On PostgreSQL the statement locks the heads it takes `FOR UPDATE SKIP LOCKED`, so
//! two nodes claiming at once skip each other's rows instead of waiting; the lease condition is
//! checked again on the row as updated, so a head another node took a moment before is not
//! taken twice. On SQLite the statement runs under the database's one write lock.

pub(crate) const AUDIT: &str = "id, at, kind, room_id, actor, subject, detail";
pub(crate) const OUTBOX: &str =
    "id, endpoint, stream, event_id, kind, body, created_at, attempts, next_at";

/// The oldest entry of every (endpoint, stream): the only ones that may be tried.
pub(crate) const HEADS: &str = "SELECT MIN(id) FROM webhook_outbox GROUP BY endpoint, stream";

/// An entry no other holder than `$1` has a lease on at `$2`.
pub(crate) const FREE: &str = "(lease_until IS NULL OR lease_until <= $2 OR leased_by = $1)";

/// Implements [`crate::JournalStore`] for `$store` (a struct with a `pool` field) whose rows are
/// `$row`; expanded where `store_impl!`'s `sql` and `Result` are in scope.
macro_rules! journal_impl {
    ($store:ty, $row:ty, $backend:expr) => {
        fn audit_entry(row: &$row) -> Result<crate::AuditEntry> {
            Ok(crate::AuditEntry {
                id: row.try_get("id")?,
                at: row.try_get("at")?,
                kind: row.try_get("kind")?,
                room_id: row.try_get("room_id")?,
                actor: row.try_get("actor")?,
                subject: row.try_get("subject")?,
                detail: row.try_get("detail")?,
            })
        }

        fn outbox_entry(row: &$row) -> Result<crate::OutboxEntry> {
            Ok(crate::OutboxEntry {
                id: row.try_get("id")?,
                endpoint: row.try_get("endpoint")?,
                stream: row.try_get("stream")?,
                event_id: row.try_get("event_id")?,
                kind: row.try_get("kind")?,
                body: row.try_get("body")?,
                created_at: row.try_get("created_at")?,
                attempts: row.try_get("attempts")?,
                next_at: row.try_get("next_at")?,
            })
        }

        #[async_trait::async_trait]
        impl crate::JournalStore for $store {
            async fn append_audit(&self, entries: &[crate::NewAuditEntry]) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                for entry in entries {
                    sqlx::query(
                        "INSERT INTO audit_log (at, kind, room_id, actor, subject, detail) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(entry.at)
                    .bind(&entry.kind)
                    .bind(&entry.room_id)
                    .bind(&entry.actor)
                    .bind(&entry.subject)
                    .bind(&entry.detail)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn audit(&self, query: &crate::AuditQuery) -> Result<Vec<crate::AuditEntry>> {
                use crate::journal_sql::AUDIT;
                let rows = sqlx::query(sql(format!(
                    "SELECT {AUDIT} FROM audit_log WHERE ($1 IS NULL OR room_id = $1) \
                     AND ($2 IS NULL OR kind = $2) AND ($3 IS NULL OR at >= $3) \
                     AND ($4 IS NULL OR at < $4) AND ($5 IS NULL OR id < $5) \
                     ORDER BY id DESC LIMIT $6"
                )))
                .bind(&query.room_id)
                .bind(&query.kind)
                .bind(query.since)
                .bind(query.until)
                .bind(query.before)
                .bind(i64::from(query.limit))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(audit_entry).collect()
            }

            async fn sweep_audit(&self, before: i64) -> Result<u64> {
                let done = sqlx::query("DELETE FROM audit_log WHERE at < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn enqueue_webhooks(&self, entries: &[crate::NewOutboxEntry]) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                for entry in entries {
                    sqlx::query(
                        "INSERT INTO webhook_outbox (endpoint, stream, event_id, kind, body, \
                         created_at, attempts, next_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $6)",
                    )
                    .bind(&entry.endpoint)
                    .bind(&entry.stream)
                    .bind(&entry.event_id)
                    .bind(&entry.kind)
                    .bind(&entry.body)
                    .bind(entry.now)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn claim_webhooks(
                &self,
                holder: &str,
                now: i64,
                lease_until: i64,
                limit: u32,
            ) -> Result<Vec<crate::OutboxEntry>> {
                use crate::journal_sql::{FREE, HEADS, OUTBOX};
                let lock = match $backend {
                    Backend::Postgres => "FOR UPDATE SKIP LOCKED",
                    Backend::Sqlite => "",
                };
                let rows = sqlx::query(sql(format!(
                    "UPDATE webhook_outbox SET leased_by = $1, lease_until = $3 \
                     WHERE {FREE} AND id IN (SELECT id FROM webhook_outbox \
                     WHERE id IN ({HEADS}) AND next_at <= $2 AND {FREE} \
                     ORDER BY id LIMIT $4 {lock}) RETURNING {OUTBOX}"
                )))
                .bind(holder)
                .bind(now)
                .bind(lease_until)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                let mut claimed = rows.iter().map(outbox_entry).collect::<Result<Vec<_>>>()?;
                // RETURNING keeps no order: oldest first, as documented.
                claimed.sort_by_key(|e| e.id);
                Ok(claimed)
            }

            async fn release_webhooks(&self, holder: &str) -> Result<u64> {
                let done = sqlx::query(
                    "UPDATE webhook_outbox SET leased_by = NULL, lease_until = NULL \
                     WHERE leased_by = $1",
                )
                .bind(holder)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn next_webhook_at(&self) -> Result<Option<i64>> {
                use crate::journal_sql::HEADS;
                let row = sqlx::query(sql(format!(
                    "SELECT MIN(next_at) AS next_at FROM webhook_outbox WHERE id IN ({HEADS})"
                )))
                .fetch_one(&self.pool)
                .await?;
                Ok(row.try_get("next_at")?)
            }

            async fn remove_webhook(&self, id: i64) -> Result<bool> {
                let done = sqlx::query("DELETE FROM webhook_outbox WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn retry_webhook(&self, holder: &str, id: i64, next_at: i64) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE webhook_outbox SET attempts = attempts + 1, next_at = $2, \
                     leased_by = NULL, lease_until = NULL WHERE id = $1 AND leased_by = $3",
                )
                .bind(id)
                .bind(next_at)
                .bind(holder)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn webhook_depth(&self) -> Result<i64> {
                let row = sqlx::query("SELECT COUNT(*) AS depth FROM webhook_outbox")
                    .fetch_one(&self.pool)
                    .await?;
                Ok(row.try_get("depth")?)
            }
        }
    };
}

pub(crate) use journal_impl;
