//! The webhooks' settings: `[[webhooks]]` (one table per receiver: its URL, the events it wants,
//! its signing secret) and `[webhook_delivery]` (timeouts, retries, how long an event is tried).

use serde::{Deserialize, Serialize};

use super::sign::SigningKey;

/// The events a receiver may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEvent {
    /// A room's call started (its first member joined).
    RoomStarted,
    /// A room's call ended (its last member left, or it was closed).
    RoomFinished,
    /// A member joined a room.
    ParticipantJoined,
    /// A member left a room (any reason, a kick included).
    ParticipantLeft,
    /// A share code was redeemed.
    InviteRedeemed,
    /// A lobby guest knocked on a room.
    Knock,
}

impl WebhookEvent {
    /// The event's `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::RoomStarted => "room_started",
            WebhookEvent::RoomFinished => "room_finished",
            WebhookEvent::ParticipantJoined => "participant_joined",
            WebhookEvent::ParticipantLeft => "participant_left",
            WebhookEvent::InviteRedeemed => "invite_redeemed",
            WebhookEvent::Knock => "knock",
        }
    }
}

/// One `[[webhooks]]` table: a receiver.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Where events are POSTed (`http://` or `https://`); one table per URL.
    pub url: String,
    /// The events it gets; empty or absent: all of them.
    #[serde(default)]
    pub events: Vec<WebhookEvent>,
    /// The Standard Webhooks signing secret, `whsec_` and base64 of 24 to 64 random bytes.
    pub secret: String,
}

impl WebhookSettings {
    /// Whether this receiver gets `event`.
    pub fn wants(&self, event: WebhookEvent) -> bool {
        self.events.is_empty() || self.events.contains(&event)
    }
}

/// `[webhook_delivery]`: how the outbox is delivered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookDelivery {
    /// How long one attempt may take, in ms.
    pub timeout_ms: u64,
    /// The wait after the first failure, in ms; it doubles with each further failure.
    pub retry_base_ms: u64,
    /// The longest wait between attempts, in ms.
    pub retry_max_ms: u64,
    /// How long an event is tried before it is dropped (and counted), in ms.
    pub max_age_ms: u64,
}

impl Default for WebhookDelivery {
    fn default() -> Self {
        WebhookDelivery {
            timeout_ms: 10_000,
            retry_base_ms: 1_000,
            retry_max_ms: 10 * 60 * 1000,
            max_age_ms: 24 * 3600 * 1000,
        }
    }
}

/// What makes no sense in `webhooks` and `delivery`, if anything.
pub fn check(webhooks: &[WebhookSettings], delivery: &WebhookDelivery) -> Result<(), String> {
    for (i, hook) in webhooks.iter().enumerate() {
        let scheme_ok = hook.url.starts_with("http://") || hook.url.starts_with("https://");
        if !scheme_ok || reqwest::Url::parse(&hook.url).is_err() {
            return Err(format!(
                "webhooks[{i}].url must be an http:// or https:// URL"
            ));
        }
        if webhooks[..i].iter().any(|other| other.url == hook.url) {
            return Err(format!(
                "webhooks[{i}].url appears twice: one table per URL"
            ));
        }
        if let Err(e) = SigningKey::parse(&hook.secret) {
            return Err(format!("webhooks[{i}].secret: {e}"));
        }
    }
    if delivery.timeout_ms == 0 || delivery.retry_base_ms == 0 {
        return Err("webhook_delivery.timeout_ms and retry_base_ms must be positive".into());
    }
    if delivery.retry_max_ms < delivery.retry_base_ms
        || delivery.max_age_ms < delivery.retry_base_ms
    {
        return Err(
            "webhook_delivery.retry_max_ms and max_age_ms must be at least retry_base_ms".into(),
        );
    }
    Ok(())
}
