//! `presence.*`: who is around. A user is online while any of their connections is open,
//! offline when none is; a client says when its user is away (the desktop does after a few
//! idle minutes) and may set a status text. Changes go only to the users who share a room
//! with that user, as `presence.changed`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::calls;

super::event::kind_events! {
    /// `presence.changed` ([`Person`]): how someone who shares a room with you is now.
    PresenceEvents, PresenceKind, "presence", "presence.>",
    { Changed => "changed" }
}

/// Everything presence sends you.
pub const SUBSCRIBE: &str = <PresenceEvents as super::Event>::PATTERN;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Online,
    Away,
    Offline,
}

/// One person as presence shows them (also the `presence.changed` event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Person {
    pub user: String,
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// When they were last connected (offline only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_ms: Option<u64>,
}

/// Say you are away (or back), and set or clear your status text (at most 100 bytes).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Set {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub away: Option<bool>,
    /// `""` clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// You and the users you share a room with.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct List {}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct People {
    pub people: Vec<Person>,
}

calls! {
    Set => Person, "presence.set";
    List => People, "presence.list";
}
