//! The SQL of every store operation, written once for both databases, and [`store_impl!`], which
//! stamps the [`crate::Store`] implementation of a backend from it.
//!
//! The SQL is portable: `$N` placeholders (SQLite takes them as PostgreSQL does), `RETURNING`,
//! `BIGINT` times, `BOOLEAN`s and byte strings that sqlx maps alike on both. The contract tests
//! run every operation on both databases.

pub(crate) const USER: &str =
    "id, username, display_name, password_hash, admin, created_at, updated_at";
pub(crate) const ROOM: &str =
    "id, owner_id, name, max_peers, mode, media, lobby, expires_at, created_at, updated_at";
pub(crate) const INVITE: &str =
    "id, room_id, role, max_uses, uses, expires_at, created_by, created_at, revoked_at";

/// Implements [`crate::Store`] for `$store` (a struct with a `pool` field) whose rows are `$row`.
macro_rules! store_impl {
    ($store:ty, $row:ty, $backend:expr, $migrator:path) => {
        use sqlx::{AssertSqlSafe, Row as _};

        use crate::{
            Backend, Invite, NewInvite, NewRefresh, NewRoom, NewUser, Result, Room, RoomPatch,
            Rotation, Store, Swept, User, UserPatch,
            queries::{INVITE, ROOM, USER},
        };

        fn user(row: &$row) -> Result<User> {
            Ok(User {
                id: row.try_get("id")?,
                username: row.try_get("username")?,
                display_name: row.try_get("display_name")?,
                password_hash: row.try_get("password_hash")?,
                admin: row.try_get("admin")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        fn room(row: &$row) -> Result<Room> {
            Ok(Room {
                id: row.try_get("id")?,
                owner_id: row.try_get("owner_id")?,
                name: row.try_get("name")?,
                max_peers: row.try_get("max_peers")?,
                mode: row.try_get("mode")?,
                media: row.try_get("media")?,
                lobby: row.try_get("lobby")?,
                expires_at: row.try_get("expires_at")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        fn invite(row: &$row) -> Result<Invite> {
            Ok(Invite {
                id: row.try_get("id")?,
                room_id: row.try_get("room_id")?,
                role: row.try_get("role")?,
                max_uses: row.try_get("max_uses")?,
                uses: row.try_get("uses")?,
                expires_at: row.try_get("expires_at")?,
                created_by: row.try_get("created_by")?,
                created_at: row.try_get("created_at")?,
                revoked_at: row.try_get("revoked_at")?,
            })
        }

        crate::journal_sql::journal_impl!($store, $row, $backend);

        /// `SELECT`/`RETURNING` statements name their columns from the constants above; the SQL is
        /// still made of constants only, so no input reaches it but through bound parameters.
        fn sql(text: String) -> AssertSqlSafe<String> {
            AssertSqlSafe(text)
        }

        #[async_trait::async_trait]
        impl Store for $store {
            fn backend(&self) -> Backend {
                $backend
            }

            async fn migrate(&self) -> Result<()> {
                $migrator().run(&self.pool).await?;
                Ok(())
            }

            async fn create_user(&self, new: &NewUser) -> Result<User> {
                let row = sqlx::query(sql(format!(
                    "INSERT INTO users (id, username, display_name, password_hash, admin, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, FALSE, $5, $5) \
                     RETURNING {USER}"
                )))
                .bind(&new.id)
                .bind(&new.username)
                .bind(&new.display_name)
                .bind(&new.password_hash)
                .bind(new.now)
                .fetch_one(&self.pool)
                .await?;
                user(&row)
            }

            async fn user(&self, id: &str) -> Result<Option<User>> {
                let row = sqlx::query(sql(format!("SELECT {USER} FROM users WHERE id = $1")))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(user).transpose()
            }

            async fn user_by_username(&self, username: &str) -> Result<Option<User>> {
                let row = sqlx::query(sql(format!(
                    "SELECT {USER} FROM users WHERE username = $1"
                )))
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(user).transpose()
            }

            async fn update_user(
                &self,
                id: &str,
                patch: &UserPatch,
                now: i64,
            ) -> Result<Option<User>> {
                let row = sqlx::query(sql(format!(
                    "UPDATE users SET display_name = COALESCE($2, display_name), \
                     password_hash = COALESCE($3, password_hash), updated_at = $4 \
                     WHERE id = $1 RETURNING {USER}"
                )))
                .bind(id)
                .bind(&patch.display_name)
                .bind(&patch.password_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(user).transpose()
            }

            async fn set_admin(&self, username: &str, admin: bool, now: i64) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE users SET admin = $2, updated_at = $3 WHERE username = $1",
                )
                .bind(username)
                .bind(admin)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn create_refresh(&self, token: &NewRefresh) -> Result<()> {
                sqlx::query(
                    "INSERT INTO refresh_tokens (token_hash, user_id, family, created_at, \
                     expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&token.token_hash)
                .bind(&token.user_id)
                .bind(&token.family)
                .bind(token.now)
                .bind(token.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn rotate_refresh(
                &self,
                presented: &[u8],
                next_hash: &[u8],
                next_expires_at: i64,
                now: i64,
            ) -> Result<Rotation> {
                let mut tx = self.pool.begin().await?;
                let spent = sqlx::query(
                    "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 \
                     AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2 \
                     RETURNING user_id, family",
                )
                .bind(presented)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(spent) = spent {
                    let user_id: String = spent.try_get("user_id")?;
                    let family: String = spent.try_get("family")?;
                    sqlx::query(
                        "INSERT INTO refresh_tokens (token_hash, user_id, family, created_at, \
                         expires_at) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(next_hash)
                    .bind(&user_id)
                    .bind(&family)
                    .bind(now)
                    .bind(next_expires_at)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    return Ok(Rotation::Rotated { user_id });
                }
                let reused = sqlx::query(
                    "SELECT family FROM refresh_tokens WHERE token_hash = $1 \
                     AND used_at IS NOT NULL",
                )
                .bind(presented)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(reused) = reused else {
                    return Ok(Rotation::Invalid);
                };
                let family: String = reused.try_get("family")?;
                sqlx::query(
                    "UPDATE refresh_tokens SET revoked_at = $2 WHERE family = $1 \
                     AND revoked_at IS NULL",
                )
                .bind(&family)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Rotation::Reused)
            }

            async fn revoke_refresh(&self, presented: &[u8], now: i64) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE refresh_tokens SET revoked_at = $2 WHERE revoked_at IS NULL \
                     AND family = (SELECT family FROM refresh_tokens WHERE token_hash = $1 \
                     AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2)",
                )
                .bind(presented)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn revoke_user_refresh(&self, user_id: &str, now: i64) -> Result<u64> {
                let done = sqlx::query(
                    "UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 \
                     AND revoked_at IS NULL AND used_at IS NULL AND expires_at > $2",
                )
                .bind(user_id)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn create_room(&self, new: &NewRoom) -> Result<Room> {
                let row = sqlx::query(sql(format!(
                    "INSERT INTO rooms (id, owner_id, name, max_peers, mode, media, lobby, \
                     expires_at, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING {ROOM}"
                )))
                .bind(&new.id)
                .bind(&new.owner_id)
                .bind(&new.name)
                .bind(new.max_peers)
                .bind(&new.mode)
                .bind(&new.media)
                .bind(new.lobby)
                .bind(new.expires_at)
                .bind(new.now)
                .fetch_one(&self.pool)
                .await?;
                room(&row)
            }

            async fn room(&self, id: &str) -> Result<Option<Room>> {
                let row = sqlx::query(sql(format!("SELECT {ROOM} FROM rooms WHERE id = $1")))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(room).transpose()
            }

            async fn rooms(
                &self,
                owner: Option<&str>,
                after: Option<&str>,
                limit: u32,
                now: i64,
            ) -> Result<Vec<Room>> {
                let rows = sqlx::query(sql(format!(
                    "SELECT {ROOM} FROM rooms WHERE ($1 IS NULL OR owner_id = $1) \
                     AND ($2 IS NULL OR id > $2) \
                     AND (expires_at IS NULL OR expires_at > $4) ORDER BY id LIMIT $3"
                )))
                .bind(owner)
                .bind(after)
                .bind(i64::from(limit))
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(room).collect()
            }

            async fn update_room(
                &self,
                id: &str,
                patch: &RoomPatch,
                now: i64,
            ) -> Result<Option<Room>> {
                let row = sqlx::query(sql(format!(
                    "UPDATE rooms SET name = COALESCE($2, name), \
                     max_peers = CASE WHEN $3 THEN $4 ELSE max_peers END, \
                     mode = COALESCE($5, mode), media = COALESCE($6, media), \
                     lobby = COALESCE($7, lobby), \
                     expires_at = CASE WHEN $8 THEN $9 ELSE expires_at END, updated_at = $10 \
                     WHERE id = $1 RETURNING {ROOM}"
                )))
                .bind(id)
                .bind(&patch.name)
                .bind(patch.max_peers.is_some())
                .bind(patch.max_peers.flatten())
                .bind(&patch.mode)
                .bind(&patch.media)
                .bind(patch.lobby)
                .bind(patch.expires_at.is_some())
                .bind(patch.expires_at.flatten())
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(room).transpose()
            }

            async fn delete_room(&self, id: &str) -> Result<bool> {
                let done = sqlx::query("DELETE FROM rooms WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn create_invite(&self, new: &NewInvite) -> Result<Invite> {
                let row = sqlx::query(sql(format!(
                    "INSERT INTO invites (id, room_id, code_hash, role, max_uses, uses, \
                     expires_at, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8) RETURNING {INVITE}"
                )))
                .bind(&new.id)
                .bind(&new.room_id)
                .bind(&new.code_hash)
                .bind(&new.role)
                .bind(new.max_uses)
                .bind(new.expires_at)
                .bind(&new.created_by)
                .bind(new.now)
                .fetch_one(&self.pool)
                .await?;
                invite(&row)
            }

            async fn invite_by_code(&self, code_hash: &[u8]) -> Result<Option<Invite>> {
                let row = sqlx::query(sql(format!(
                    "SELECT {INVITE} FROM invites WHERE code_hash = $1"
                )))
                .bind(code_hash)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(invite).transpose()
            }

            async fn invites(&self, room_id: &str) -> Result<Vec<Invite>> {
                let rows = sqlx::query(sql(format!(
                    "SELECT {INVITE} FROM invites WHERE room_id = $1 \
                     ORDER BY created_at DESC, id"
                )))
                .bind(room_id)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(invite).collect()
            }

            async fn redeem_invite(&self, code_hash: &[u8], now: i64) -> Result<Option<Invite>> {
                let row = sqlx::query(sql(format!(
                    "UPDATE invites SET uses = uses + 1 WHERE code_hash = $1 \
                     AND revoked_at IS NULL AND expires_at > $2 \
                     AND (max_uses IS NULL OR uses < max_uses) RETURNING {INVITE}"
                )))
                .bind(code_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(invite).transpose()
            }

            async fn revoke_invite(&self, room_id: &str, id: &str, now: i64) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE invites SET revoked_at = $3 WHERE room_id = $1 AND id = $2 \
                     AND revoked_at IS NULL",
                )
                .bind(room_id)
                .bind(id)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn sweep_expired(&self, before: i64, limit: u32) -> Result<Swept> {
                let limit = i64::from(limit);
                // Rooms first: each takes its share codes with it (ON DELETE CASCADE).
                let rooms = sqlx::query(
                    "DELETE FROM rooms WHERE id IN \
                     (SELECT id FROM rooms WHERE expires_at < $1 LIMIT $2)",
                )
                .bind(before)
                .bind(limit)
                .execute(&self.pool)
                .await?;
                let invites = sqlx::query(
                    "DELETE FROM invites WHERE id IN \
                     (SELECT id FROM invites WHERE expires_at < $1 LIMIT $2)",
                )
                .bind(before)
                .bind(limit)
                .execute(&self.pool)
                .await?;
                let refresh_tokens = sqlx::query(
                    "DELETE FROM refresh_tokens WHERE token_hash IN \
                     (SELECT token_hash FROM refresh_tokens \
                      WHERE expires_at < $1 OR revoked_at < $1 LIMIT $2)",
                )
                .bind(before)
                .bind(limit)
                .execute(&self.pool)
                .await?;
                Ok(Swept {
                    rooms: rooms.rows_affected(),
                    invites: invites.rows_affected(),
                    refresh_tokens: refresh_tokens.rows_affected(),
                })
            }
        }
    };
}

pub(crate) use store_impl;
