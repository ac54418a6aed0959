//! The records the store keeps and the changes it is asked to make. Times are Unix milliseconds.

/// An account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Server-made id, stable for the account's life.
    pub id: String,
    /// The login name, normalized (trimmed, lower case); unique.
    pub username: String,
    /// The name shown to others.
    pub display_name: String,
    /// The password's argon2id hash in PHC form (parameters and salt included).
    pub password_hash: String,
    /// Whether the account holds the admin grant (every room).
    pub admin: bool,
    /// When it was made.
    pub created_at: i64,
    /// When it last changed.
    pub updated_at: i64,
}

/// An account to add.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// See [`User::id`].
    pub id: String,
    /// See [`User::username`].
    pub username: String,
    /// See [`User::display_name`].
    pub display_name: String,
    /// See [`User::password_hash`].
    pub password_hash: String,
    /// When it is made.
    pub now: i64,
}

/// What to change on an account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    /// A new display name.
    pub display_name: Option<String>,
    /// A new password hash.
    pub password_hash: Option<String>,
}

/// A refresh token to keep: only its hash.
#[derive(Debug, Clone)]
pub struct NewRefresh {
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// Whose it is.
    pub user_id: String,
    /// The login it descends from: rotation keeps the family, reuse revokes all of it.
    pub family: String,
    /// When it is made.
    pub now: i64,
    /// When it stops working.
    pub expires_at: i64,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// It was live: spent, and the next token kept in its place. The account it belongs to.
    Rotated {
        /// The account.
        user_id: String,
    },
    /// It had been spent already: someone replayed it, so its whole family is revoked now.
    Reused,
    /// Unknown, expired or revoked.
    Invalid,
}

/// A stored room: the policy of a room of the signaling hub that outlives calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    /// The hub's room id.
    pub id: String,
    /// The account that made it.
    pub owner_id: String,
    /// The name shown to people.
    pub name: String,
    /// Members at most; `None`: the server's `max_peers`.
    pub max_peers: Option<i64>,
    /// Control mode a call starts in: `free_for_all` or `host_only`.
    pub mode: String,
    /// Media topology: `mesh` or `sfu`, as the server's `media_mode` names them.
    pub media: String,
    /// Whether guests with a share code wait in the lobby for a host to admit them.
    pub lobby: bool,
    /// When the room stops existing; `None`: persistent.
    pub expires_at: Option<i64>,
    /// When it was made.
    pub created_at: i64,
    /// When it last changed.
    pub updated_at: i64,
}

/// A room to add.
#[derive(Debug, Clone)]
pub struct NewRoom {
    /// See [`Room::id`].
    pub id: String,
    /// See [`Room::owner_id`].
    pub owner_id: String,
    /// See [`Room::name`].
    pub name: String,
    /// See [`Room::max_peers`].
    pub max_peers: Option<i64>,
    /// See [`Room::mode`].
    pub mode: String,
    /// See [`Room::media`].
    pub media: String,
    /// See [`Room::lobby`].
    pub lobby: bool,
    /// See [`Room::expires_at`].
    pub expires_at: Option<i64>,
    /// When it is made.
    pub now: i64,
}

/// What to change on a room; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct RoomPatch {
    /// A new name.
    pub name: Option<String>,
    /// A new member limit, or none.
    pub max_peers: Option<Option<i64>>,
    /// A new control mode.
    pub mode: Option<String>,
    /// A new media topology.
    pub media: Option<String>,
    /// Lobby on or off.
    pub lobby: Option<bool>,
    /// A new expiry, or persistent.
    pub expires_at: Option<Option<i64>>,
}

/// A share code as stored: everything but the code, of which only a hash is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// Server-made id, for listing and revoking.
    pub id: String,
    /// The room it lets into.
    pub room_id: String,
    /// The role its redeemers get: `host` or `guest`.
    pub role: String,
    /// Redemptions allowed; `None`: unlimited until it expires.
    pub max_uses: Option<i64>,
    /// Redemptions so far.
    pub uses: i64,
    /// When it stops working.
    pub expires_at: i64,
    /// The account that made it.
    pub created_by: String,
    /// When it was made.
    pub created_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// A share code to add.
#[derive(Debug, Clone)]
pub struct NewInvite {
    /// See [`Invite::id`].
    pub id: String,
    /// See [`Invite::room_id`].
    pub room_id: String,
    /// SHA-256 of the normalized code.
    pub code_hash: Vec<u8>,
    /// See [`Invite::role`].
    pub role: String,
    /// See [`Invite::max_uses`].
    pub max_uses: Option<i64>,
    /// See [`Invite::expires_at`].
    pub expires_at: i64,
    /// See [`Invite::created_by`].
    pub created_by: String,
    /// When it is made.
    pub now: i64,
}

/// Rows one batch of the expiry sweep deleted, by kind ([`crate::Store::sweep_expired`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Stored rooms past their `expires_at`.
    pub rooms: u64,
    /// Share codes past their `expires_at` (not counting those their room took with it).
    pub invites: u64,
    /// Refresh tokens past their `expires_at` or revoked.
    pub refresh_tokens: u64,
}

impl Swept {
    /// Whether some kind had `limit` rows to delete, so more may be waiting.
    pub fn full(&self, limit: u32) -> bool {
        let limit = u64::from(limit);
        self.rooms >= limit || self.invites >= limit || self.refresh_tokens >= limit
    }

    /// Adds `other`'s counts.
    pub fn add(&mut self, other: Swept) {
        self.rooms += other.rooms;
        self.invites += other.invites;
        self.refresh_tokens += other.refresh_tokens;
    }
}
