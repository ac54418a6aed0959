//! Accounts: registering, signing in (an access token and a rotating refresh token), signing out,
//! and profiles.
//!
//! Nothing here tells which usernames have accounts, except registering a taken one (as with
//! every service whose users pick names), which is budgeted per address: a login for an unknown
//! username verifies against a dummy hash (same time, same `unauthorized`), and the lockout after
//! repeated failures applies to any username, existing or not.

use std::time::Instant;

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_protocol::SignalError;
use switchboard_store::{NewRefresh, NewUser, Rotation, StoreError, User, UserPatch};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ApiKind, Control,
    extract::{Caller, JsonBody, PathParams, Refused},
    guard::Budget,
    now_ms,
    openapi::{BadRequest, Conflict, NotFound, TooManyRequests, Unauthorized},
    password::Passwords,
    seconds,
    tokens::{new_refresh, refresh_hash},
};
use crate::{guest::clean_name, transport::http::ClientAddress};

pub(super) fn routes() -> OpenApiRouter<Control> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me, update_me))
        .routes(routes!(user))
}

/// Shortest and longest usernames, in characters.
const USERNAME_CHARS: std::ops::RangeInclusive<usize> = 3..=64;

/// A username as kept: trimmed and lower case; letters, digits and `.`, `_`, `-`, `@`, `+` (so
/// an email address is one). ASCII only, so no two names look alike.
fn normalize_username(input: &str) -> Result<String, SignalError> {
    let name = input.trim().to_ascii_lowercase();
    let valid = USERNAME_CHARS.contains(&name.chars().count())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@+".contains(&b));
    if !valid {
        return Err(SignalError::invalid(
            "`username` must be 3 to 64 of a-z, 0-9, `.`, `_`, `-`, `@`, `+`",
        ));
    }
    Ok(name)
}

/// An account, as its owner sees it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Account {
    /// The account's id.
    pub id: String,
    /// The login name (normalized: lower case).
    pub username: String,
    /// The name shown to others.
    pub display_name: String,
    /// Whether it holds the admin grant.
    pub admin: bool,
    /// When it was made, Unix seconds.
    pub created_at: i64,
}

impl From<User> for Account {
    fn from(user: User) -> Self {
        Account {
            id: user.id,
            username: user.username,
            display_name: user.display_name,
            admin: user.admin,
            created_at: seconds(user.created_at),
        }
    }
}

/// An account, as others see it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PublicUser {
    /// The account's id.
    pub id: String,
    /// The name it shows.
    pub display_name: String,
}

/// `POST /v1/accounts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// 3 to 64 of a-z, 0-9, `.`, `_`, `-`, `@`, `+` (any case; kept in lower case).
    #[schema(pattern = "^\\s*[A-Za-z0-9._@+-]{3,64}\\s*$")]
    pub username: String,
    /// 8 to 1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    /// The name shown to others (default, or when blank: the username); at most 64 characters.
    #[serde(default)]
    #[schema(max_length = 64, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub display_name: Option<String>,
}

/// Registers an account.
#[utoipa::path(
    post, path = "/v1/accounts", tag = "accounts",
    request_body = Registration,
    responses(
        (status = 201, description = "The new account", body = Account),
        (status = 400, response = BadRequest),
        (status = 409, response = Conflict),
        (status = 429, response = TooManyRequests),
    )
)]
async fn register(
    State(control): State<Control>,
    ClientAddress(address): ClientAddress,
    JsonBody(request): JsonBody<Registration>,
) -> Result<(StatusCode, Json<Account>), Refused> {
    control
        .0
        .guard
        .charge(Budget::Register, address, Instant::now())?;
    let username = normalize_username(&request.username)?;
    Passwords::acceptable(&request.password)?;
    let display_name = clean_name(request.display_name)?.unwrap_or_else(|| username.clone());
    let password_hash = control.0.passwords.hash(request.password).await?;
    let new = NewUser {
        id: super::code::random_id("u"),
        username,
        display_name,
        password_hash,
        now: now_ms(),
    };
    match control.store().create_user(&new).await {
        Ok(user) => {
            tracing::info!(event = "account.created", "account registered");
            Ok((StatusCode::CREATED, Json(user.into())))
        }
        Err(StoreError::Conflict) => {
            Err(SignalError::Conflict("that username is taken".into()).into())
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /v1/auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// The username (any case).
    pub username: String,
    /// The password.
    pub password: String,
}

/// `POST /v1/auth/refresh` and `POST /v1/auth/logout`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshToken {
    /// The refresh token of the last login or refresh.
    pub refresh_token: String,
}

/// What signing in gives.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Tokens {
    /// The bearer token of the API (`Authorization: Bearer`); it joins no room.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Trades for new tokens once at `POST /v1/auth/refresh`; replaying a used one signs the
    /// login out everywhere.
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
    /// The account signed in.
    pub account: Account,
}

impl Control {
    /// What signing in answers: a new access token for `user`, and `refresh`, already kept.
    fn tokens(&self, user: User, refresh: String) -> Result<Tokens, SignalError> {
        Ok(Tokens {
            access_token: self.0.access.mint(&user.id)?,
            token_type: "Bearer".into(),
            expires_in: self.0.access.ttl().as_secs(),
            refresh_token: refresh,
            refresh_expires_in: self.0.refresh_ttl.as_secs(),
            account: user.into(),
        })
    }

    fn refresh_expiry(&self, now: i64) -> i64 {
        now + self.0.refresh_ttl.as_millis() as i64
    }
}

fn wrong_credentials() -> Refused {
    SignalError::Unauthorized("wrong username or password".into()).into()
}

/// Signs in: an access token and a refresh token.
#[utoipa::path(
    post, path = "/v1/auth/login", tag = "accounts",
    request_body = Login,
    responses(
        (status = 200, description = "Signed in", body = Tokens),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 429, response = TooManyRequests),
    )
)]
async fn login(
    State(control): State<Control>,
    ClientAddress(address): ClientAddress,
    JsonBody(request): JsonBody<Login>,
) -> Result<Json<Tokens>, Refused> {
    let guard = &control.0.guard;
    guard.charge(Budget::Login, address, Instant::now())?;
    // A malformed username gets what a wrong password gets, after the same work.
    let username = normalize_username(&request.username).unwrap_or_default();
    guard.account_open(&username, Instant::now())?;
    let user = match username.is_empty() {
        true => None,
        false => control.store().user_by_username(&username).await?,
    };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    if !control.0.passwords.verify(request.password, stored).await {
        guard.login_failed(&username, Instant::now());
        tracing::info!(event = "auth.login_failed", "failed login");
        let user = user.as_ref().map(|u| u.id.as_str());
        control.record(ApiKind::LoginFailed, None, user, None, Value::Null);
        return Err(wrong_credentials());
    }
    guard.login_succeeded(&username);
    let user = user.ok_or_else(wrong_credentials)?;
    let (refresh, hash) = new_refresh();
    let now = now_ms();
    control
        .store()
        .create_refresh(&NewRefresh {
            token_hash: hash,
            user_id: user.id.clone(),
            family: super::code::random_id("f"),
            now,
            expires_at: control.refresh_expiry(now),
        })
        .await?;
    tracing::info!(event = "auth.login", "signed in");
    control.record(ApiKind::Login, None, Some(&user.id), None, Value::Null);
    Ok(Json(control.tokens(user, refresh)?))
}

/// Trades a refresh token for new tokens; the old one is spent.
#[utoipa::path(
    post, path = "/v1/auth/refresh", tag = "accounts",
    request_body = RefreshToken,
    responses(
        (status = 200, description = "New tokens", body = Tokens),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
    )
)]
async fn refresh(
    State(control): State<Control>,
    JsonBody(request): JsonBody<RefreshToken>,
) -> Result<Json<Tokens>, Refused> {
    let (next, next_hash) = new_refresh();
    let now = now_ms();
    let rotation = control
        .store()
        .rotate_refresh(
            &refresh_hash(&request.refresh_token),
            &next_hash,
            control.refresh_expiry(now),
            now,
        )
        .await?;
    let refused = || SignalError::Unauthorized("refresh token expired or revoked".into());
    let user_id = match rotation {
        Rotation::Rotated { user_id } => user_id,
        Rotation::Reused => {
            tracing::warn!(
                event = "auth.refresh_reused",
                "a spent refresh token was presented again: its login is signed out"
            );
            return Err(refused().into());
        }
        Rotation::Invalid => return Err(refused().into()),
    };
    let user = control.store().user(&user_id).await?.ok_or_else(refused)?;
    Ok(Json(control.tokens(user, next)?))
}

/// Signs out: the refresh token and every one descended from the same login stop working.
/// Access tokens already issued run out by themselves (`expires_in`).
#[utoipa::path(
    post, path = "/v1/auth/logout", tag = "accounts",
    request_body = RefreshToken,
    responses(
        (status = 204, description = "Signed out (also when the token was not live)"),
        (status = 400, response = BadRequest),
    )
)]
async fn logout(
    State(control): State<Control>,
    JsonBody(request): JsonBody<RefreshToken>,
) -> Result<StatusCode, Refused> {
    let hash = refresh_hash(&request.refresh_token);
    control.store().revoke_refresh(&hash, now_ms()).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn no_account() -> Refused {
    SignalError::NotFound("no such account".into()).into()
}

/// The caller's account.
#[utoipa::path(
    get, path = "/v1/users/me", tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's account", body = Account),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    )
)]
async fn me(State(control): State<Control>, caller: Caller) -> Result<Json<Account>, Refused> {
    let user = control.store().user(&caller.user).await?;
    Ok(Json(user.ok_or_else(no_account)?.into()))
}

/// `PATCH /v1/users/me`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountChange {
    /// A new display name (a blank one changes nothing); at most 64 characters.
    #[serde(default)]
    #[schema(max_length = 64, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub display_name: Option<String>,
    /// A new password; needs the current one too.
    #[serde(default)]
    pub password: Option<PasswordChange>,
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The password now.
    pub current: String,
    /// The password from now on, 8 to 1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub new: String,
}

/// Changes the caller's display name or password. A new password signs out every login (their
/// refresh tokens are revoked).
#[utoipa::path(
    patch, path = "/v1/users/me", tag = "accounts",
    security(("bearer" = [])),
    request_body = AccountChange,
    responses(
        (status = 200, description = "The changed account", body = Account),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
    )
)]
async fn update_me(
    State(control): State<Control>,
    ClientAddress(address): ClientAddress,
    caller: Caller,
    JsonBody(request): JsonBody<AccountChange>,
) -> Result<Json<Account>, Refused> {
    let user = control
        .store()
        .user(&caller.user)
        .await?
        .ok_or_else(no_account)?;
    let mut patch = UserPatch {
        display_name: clean_name(request.display_name)?,
        password_hash: None,
    };
    if let Some(change) = request.password {
        // Guessing the current password here is guessing a login.
        let guard = &control.0.guard;
        guard.charge(Budget::Login, address, Instant::now())?;
        guard.account_open(&user.username, Instant::now())?;
        Passwords::acceptable(&change.new)?;
        let passwords = &control.0.passwords;
        if !passwords
            .verify(change.current, Some(user.password_hash.clone()))
            .await
        {
            guard.login_failed(&user.username, Instant::now());
            return Err(SignalError::Unauthorized("the current password is wrong".into()).into());
        }
        patch.password_hash = Some(passwords.hash(change.new).await?);
    }
    let now = now_ms();
    let changed = control
        .store()
        .update_user(&user.id, &patch, now)
        .await?
        .ok_or_else(no_account)?;
    if patch.password_hash.is_some() {
        control.store().revoke_user_refresh(&user.id, now).await?;
        tracing::info!(
            event = "account.password_changed",
            "password changed; logins revoked"
        );
    }
    Ok(Json(changed.into()))
}

/// Another account's public profile.
#[utoipa::path(
    get, path = "/v1/users/{id}", tag = "accounts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The account's id")),
    responses(
        (status = 200, description = "The account's public profile", body = PublicUser),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    )
)]
async fn user(
    State(control): State<Control>,
    _caller: Caller,
    PathParams(id): PathParams<String>,
) -> Result<Json<PublicUser>, Refused> {
    let user = control.store().user(&id).await?.ok_or_else(no_account)?;
    Ok(Json(PublicUser {
        id: user.id,
        display_name: user.display_name,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_normalized_and_bounded() {
        assert_eq!(
            normalize_username("  Ann.B@Example.org ").unwrap(),
            "ann.b@example.org"
        );
        for bad in ["ab", "ann b", "änn", &"a".repeat(65), "an\nn", ""] {
            assert!(normalize_username(bad).is_err(), "{bad:?}");
        }
    }
}
