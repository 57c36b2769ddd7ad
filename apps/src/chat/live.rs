//! What comes through `chat.>`: a message in the shown room appears (and is read), one
//! elsewhere counts as unread, edits and deletes change what shows, members come and go,
//! a room read elsewhere is read here.

use aether_proto::api::Event as _;
use aether_proto::api::chat::{self, MemberEvent, Message, RoomInfo};
use serde_json::Value;

use app_kit::app::Effect;

use super::{Chat, Loaded};

impl Chat {
    /// A new message of the shown room (the answer to your post, or live).
    pub(super) fn arrived(&mut self, message: Message) {
        if let Some(info) = self.info_mut(&message.room) {
            info.last_seq = info.last_seq.max(message.seq);
        }
        if let Some(shown) = self.shown.as_mut().filter(|s| s.room == message.room) {
            shown.upsert(message);
        }
    }

    /// An edited or deleted message, wherever it shows.
    pub(super) fn changed(&mut self, message: Message) {
        if let Some(found) = self.found.as_mut().and_then(|f| f.messages.as_mut())
            && let Some(known) = found
                .iter_mut()
                .find(|m| m.seq == message.seq && m.room == message.room)
        {
            *known = message.clone();
        }
        if let Some(shown) = self.shown.as_mut().filter(|s| s.room == message.room)
            && shown.get(message.seq).is_some()
        {
            shown.upsert(message);
        }
    }

    pub(super) fn on_delivery(&mut self, topic: &str, data: Value) -> Vec<Effect> {
        // Mentions are the desktop's to announce (`Unread`), with or without this window.
        if chat::MentionEvents::parse(topic).is_some() {
            return Vec::new();
        }
        let Some(chat::RoomEvent { id: room, kind }) = chat::RoomEvents::parse(topic) else {
            return Vec::new();
        };
        let kind = kind.as_str();
        match kind {
            "message" => match serde_json::from_value::<Message>(data) {
                Ok(message) => self.live_message(message),
                Err(_) => Vec::new(),
            },
            "edit" | "delete" => {
                if let Ok(message) = serde_json::from_value::<Message>(data) {
                    self.changed(message);
                }
                Vec::new()
            }
            "member" => match serde_json::from_value::<MemberEvent>(data) {
                Ok(event) => self.member(room, event),
                Err(_) => Vec::new(),
            },
            // Read in another window or on another terminal.
            "read" => {
                if let Ok(read) = serde_json::from_value::<RoomInfo>(data)
                    && let Some(info) = self.info_mut(&read.room)
                {
                    info.unread = read.unread;
                    info.mentions = read.mentions;
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// A message posted anywhere you are: shown here, counted unread there, or in a room
    /// not listed yet (a first direct message, an invitation) that lists the rooms again.
    fn live_message(&mut self, message: Message) -> Vec<Effect> {
        if !matches!(self.rooms, Loaded::Ready(_)) {
            return Vec::new();
        }
        let me = self.me.clone();
        let mine = me.as_deref() == Some(message.user.as_str());
        let shown_here = self.shown.as_ref().is_some_and(|s| s.room == message.room);
        let Some(info) = self.info_mut(&message.room).filter(|i| i.joined) else {
            return self.refresh();
        };
        if shown_here || mine {
            let seq = message.seq;
            self.arrived(message);
            // You see it as it comes (your own need no marking).
            return if shown_here && !mine {
                self.mark_read(Some(seq))
            } else {
                Vec::new()
            };
        }
        info.unread += 1;
        if me.is_some_and(|me| message.mentions.contains(&me)) {
            info.mentions += 1;
        }
        info.last_seq = info.last_seq.max(message.seq);
        Vec::new()
    }

    fn member(&mut self, room: &str, event: MemberEvent) -> Vec<Effect> {
        if self.me.as_deref() == Some(event.user.as_str()) {
            // You joined or left (here, or on another terminal), or were invited.
            return self.refresh();
        }
        if let Some(info) = self.info_mut(room) {
            info.members = if event.joined {
                info.members + 1
            } else {
                info.members.saturating_sub(1)
            };
        }
        if let Some(shown) = self.shown.as_mut().filter(|s| s.room == room) {
            shown.member_joined(&event.user, event.joined);
        }
        Vec::new()
    }
}
