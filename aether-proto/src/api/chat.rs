//! `chat.*`: rooms (public or private), direct messages, posts with replies, edits and
//! deletes, history in pages, unread counts and mentions. The daemon enforces membership:
//! a room's events are published only into its members' own namespaces, so no topic or
//! pattern reaches a room one is not in.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::calls;

fn is_false(value: &bool) -> bool {
    !*value
}

/// The longest message, in bytes.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;
/// The most messages one history page holds.
pub const MAX_PAGE: u32 = 200;

/// A direct message's room (`dm-<id>-<id>`; no other room may be named so).
pub fn is_direct(room: &str) -> bool {
    room.starts_with("dm-")
}

super::event::id_events! {
    /// A room's events: `chat.room.<room>.message|edit|delete` ([`Message`]), `.member`
    /// ([`MemberEvent`]), and `.read` (its [`RoomInfo`], to you alone) when you marked it
    /// read anywhere.
    RoomEvents, RoomEvent, RoomEventKind, "chat.room",
    { Message => "message", Edit => "edit", Delete => "delete", Member => "member", Read => "read" }
}

/// Where a room's events go: this, then `.<kind>`.
pub fn room_topic(room: &str) -> String {
    RoomEvents::of(room)
}

/// All of them, as a pattern.
pub const EVENTS: &str = <RoomEvents as super::Event>::PATTERN;
/// Everything the chat service sends you: your rooms' events and your mentions.
pub const SUBSCRIBE: &str = "chat.>";
super::event::kind_events! {
    /// `chat.mention` ([`Message`]): someone mentioned you, in a room you are in.
    MentionEvents, MentionKind, "chat", "chat.mention",
    { Mention => "mention" }
}

/// `chat.mention`: someone mentioned you.
pub const MENTIONS: &str = <MentionEvents as super::Event>::PATTERN;

/// The rooms you are in, every one of them and first; then a page of the public ones you
/// could join, by name.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rooms {
    /// The public rooms to list come after this name (the last answer's `more_public`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_after: Option<String>,
    /// How many public rooms to list: 1 to [`MAX_PUBLIC_PAGE`] (default 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_limit: Option<usize>,
}

/// The most public rooms one `chat.rooms` lists.
pub const MAX_PUBLIC_PAGE: usize = 1000;

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct RoomList {
    pub rooms: Vec<RoomInfo>,
    /// More public rooms follow: ask again with this as `public_after`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more_public: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RoomInfo {
    /// `[a-z0-9][a-z0-9_-]{0,39}`; a direct message's is `dm-<id>-<id>`.
    pub room: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    pub private: bool,
    /// A direct message between two users: `with` names the other one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<String>,
    pub members: u64,
    /// You are a member.
    pub joined: bool,
    /// Messages after the last one you read, and those of them that mention you.
    pub unread: u64,
    pub mentions: u64,
    /// The newest message's sequence number (0: none yet).
    pub last_seq: u64,
}

/// Make a room; you are its first member.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Create {
    pub room: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub private: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

/// Join a public room.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Join {
    pub room: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Leave {
    pub room: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Left {
    pub room: String,
}

/// Add a user to a room you are in (a private room's only way in).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Invite {
    pub room: String,
    pub user: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Invited {
    pub room: String,
    pub user: String,
}

/// The direct-message room between you and `user` (made the first time).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Direct {
    pub user: String,
}

/// Post a message (Markdown); `reply_to` makes it a reply in that message's thread.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Post {
    pub room: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<u64>,
}

/// One message as history and events carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Message {
    pub room: String,
    /// Counts up from 1 in each room.
    pub seq: u64,
    pub user: String,
    /// Empty once deleted.
    pub text: String,
    pub at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<u64>,
    /// Users it mentions (`@name`), who are members.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<String>,
}

/// Change the text of a message of yours.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Edit {
    pub room: String,
    pub seq: u64,
    pub text: String,
}

/// Delete a message of yours (its place stays, its text goes).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Delete {
    pub room: String,
    pub seq: u64,
}

/// A page of a room's messages, newest last: those before `before` (default: the newest).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct History {
    pub room: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
    /// At most 200 (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Only this message's thread (it and its replies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<u64>,
    /// Only messages containing these words (any case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Page {
    pub room: String,
    pub messages: Vec<Message>,
    /// Older messages remain.
    pub more: bool,
}

/// Mark a room read up to `seq` (default: its newest message).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    pub room: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// A room's members.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Members {
    pub room: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MemberList {
    pub room: String,
    pub members: Vec<String>,
}

/// `chat.room.<room>.member`: someone joined or left.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MemberEvent {
    pub room: String,
    pub user: String,
    pub joined: bool,
}

calls! {
    Rooms => RoomList, "chat.rooms";
    Create => RoomInfo, "chat.create";
    Join => RoomInfo, "chat.join";
    Leave => Left, "chat.leave";
    Invite => Invited, "chat.invite";
    Direct => RoomInfo, "chat.direct";
    Post => Message, "chat.post";
    Edit => Message, "chat.edit";
    Delete => Message, "chat.delete";
    History => Page, "chat.history";
    MarkRead => RoomInfo, "chat.read";
    Members => MemberList, "chat.members";
}

/// What is wrong with a room name, if anything.
pub fn room_problem(room: &str) -> Option<String> {
    let mut bytes = room.bytes();
    let ok = matches!(bytes.next(), Some(b'a'..=b'z' | b'0'..=b'9'))
        && room.len() <= 40
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    (!ok).then(|| {
        format!(
            "{room:?} is not a room name: 1 to 40 of a-z 0-9 _ - (starting with a letter or digit)"
        )
    })
}
