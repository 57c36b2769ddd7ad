//! The desktop's chat counter, with no window: what is unread in your rooms and how much
//! of it mentions you, for the status bar, and a notice when someone mentions you or
//! writes to you directly. The daemon's counts are the truth: whenever a message arrives
//! or a room is read (in any window, on any terminal) it asks `chat.rooms` again, one
//! question at a time, so a burst of messages costs one more question, not one each.

use aether_proto::api::Event as _;
use aether_proto::api::chat::{self, Message, RoomInfo};
use serde_json::Value;

use app_kit::app::{Effect, Event, Level, Ticket, decode};
use app_kit::widgets::fit;

use super::words;

const ROOMS: Ticket = Ticket(1);
const WATCH: Ticket = Ticket(2);

#[derive(Debug, Default)]
pub struct Unread {
    /// Who you are: your own messages are not news.
    me: String,
    rooms: Vec<RoomInfo>,
    asking: bool,
    ask_again: bool,
    /// Chat is not for this user (a guest, or no `chat` grant): stay quiet.
    off: bool,
    /// A Chat window has the focus: it shows direct messages itself.
    pub chat_in_view: bool,
}

/// What the status bar shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub unread: u64,
    pub mentions: u64,
}

impl Unread {
    pub fn new(me: impl Into<String>) -> Unread {
        Unread {
            me: me.into(),
            ..Unread::default()
        }
    }

    /// Listen first, then ask: nothing said in between is missed.
    pub fn start(&mut self) -> Vec<Effect> {
        vec![Effect::Subscribe {
            ticket: WATCH,
            pattern: chat::SUBSCRIBE.into(),
        }]
    }

    pub fn counts(&self) -> Counts {
        if self.off {
            return Counts::default();
        }
        self.rooms
            .iter()
            .filter(|r| r.joined)
            .fold(Counts::default(), |sum, r| Counts {
                unread: sum.unread + r.unread,
                mentions: sum.mentions + r.mentions,
            })
    }

    pub fn update(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Subscribed { ticket: WATCH } | Event::Reconnected => self.ask(),
            Event::SubscribeFailed { ticket: WATCH, .. } => {
                self.off = true;
                Vec::new()
            }
            Event::Answer {
                ticket: ROOMS,
                result,
            } => {
                self.asking = false;
                // Not answered (the daemon going away): the last counts stay until the next.
                if let Ok(list) = decode::<chat::Rooms>(result) {
                    self.rooms = list.rooms;
                }
                if std::mem::take(&mut self.ask_again) {
                    return self.ask();
                }
                Vec::new()
            }
            Event::Delivery {
                ticket: WATCH,
                topic,
                data,
            } => self.delivered(&topic, data),
            _ => Vec::new(),
        }
    }

    fn delivered(&mut self, topic: &str, data: Value) -> Vec<Effect> {
        let mut effects = Vec::new();
        if topic == chat::MENTIONS {
            if let Ok(message) = serde_json::from_value::<Message>(data) {
                effects.push(Effect::notify(
                    Level::Info,
                    words::mentioned(&message, &self.rooms),
                ));
            }
            return effects;
        }
        let Some(chat::RoomEvent { kind, .. }) = chat::RoomEvents::parse(topic) else {
            return effects;
        };
        let kind = kind.as_str();
        match kind {
            "message" => {
                if let Ok(message) = serde_json::from_value::<Message>(data) {
                    if message.user == self.me {
                        return effects;
                    }
                    // By its name: a first direct message's room is not counted yet.
                    let direct = chat::is_direct(&message.room);
                    // A mention says so itself (`chat.mention`); say the rest of a direct one.
                    if direct && !self.chat_in_view && !message.mentions.contains(&self.me) {
                        let first = message.text.lines().next().unwrap_or_default();
                        effects.push(Effect::notify(
                            Level::Info,
                            fit(&format!("{} to you: {first}", message.user), 100),
                        ));
                    }
                }
                effects.extend(self.ask());
            }
            "read" | "member" => effects.extend(self.ask()),
            _ => {}
        }
        effects
    }

    fn ask(&mut self) -> Vec<Effect> {
        if self.off {
            return Vec::new();
        }
        if self.asking {
            self.ask_again = true;
            return Vec::new();
        }
        self.asking = true;
        vec![Effect::request(ROOMS, &chat::Rooms::default())]
    }
}

#[cfg(test)]
mod tests {
    use aether_proto::api::chat::RoomList;
    use aether_proto::{ErrorBody, ErrorCode};
    use serde::Serialize;

    use super::*;
    use app_kit::app::Payload;

    fn room(name: &str, with: Option<&str>, unread: u64, mentions: u64) -> RoomInfo {
        RoomInfo {
            room: name.into(),
            topic: None,
            private: with.is_some(),
            with: with.map(str::to_owned),
            members: 2,
            joined: true,
            unread,
            mentions,
            last_seq: 9,
        }
    }

    fn answer(watch: &mut Unread, rooms: Vec<RoomInfo>) -> Vec<Effect> {
        let body = serde_json::to_string(&RoomList {
            rooms,
            more_public: None,
        })
        .unwrap();
        watch.update(Event::Answer {
            ticket: ROOMS,
            result: Ok(Payload::new(&body)),
        })
    }

    fn deliver(watch: &mut Unread, topic: &str, event: impl Serialize) -> Vec<Effect> {
        watch.update(Event::Delivery {
            ticket: WATCH,
            topic: topic.into(),
            data: serde_json::to_value(event).unwrap(),
        })
    }

    fn message(room: &str, user: &str, text: &str, mentions: &[&str]) -> Message {
        Message {
            room: room.into(),
            seq: 10,
            user: user.into(),
            text: text.into(),
            at_ms: 1,
            edited_ms: None,
            deleted: false,
            reply_to: None,
            mentions: mentions.iter().map(|m| m.to_string()).collect(),
        }
    }

    fn asks(effects: &[Effect]) -> usize {
        effects
            .iter()
            .filter(|e| matches!(e, Effect::Request { topic, .. } if *topic == "chat.rooms"))
            .count()
    }

    fn started() -> Unread {
        let mut watch = Unread::new("bob");
        assert!(matches!(
            &watch.start()[..],
            [Effect::Subscribe { pattern, .. }] if pattern == "chat.>"
        ));
        let effects = watch.update(Event::Subscribed { ticket: WATCH });
        assert_eq!(asks(&effects), 1, "asks once listening");
        answer(
            &mut watch,
            vec![room("team", None, 3, 1), room("dm-2-3", Some("ana"), 2, 0)],
        );
        watch
    }

    #[test]
    fn counts_add_up_over_joined_rooms() {
        let mut watch = started();
        assert_eq!(
            watch.counts(),
            Counts {
                unread: 5,
                mentions: 1
            }
        );
        let mut public = room("lobby", None, 4, 0);
        public.joined = false;
        answer(&mut watch, vec![public]);
        assert_eq!(watch.counts(), Counts::default(), "not yours to read");
    }

    #[test]
    fn a_burst_of_messages_asks_once_more_not_once_each() {
        let mut watch = started();
        let first = deliver(
            &mut watch,
            "chat.room.team.message",
            message("team", "ana", "one", &[]),
        );
        assert_eq!(asks(&first), 1);
        for n in 0..5 {
            let more = deliver(
                &mut watch,
                "chat.room.team.message",
                message("team", "ana", &format!("more {n}"), &[]),
            );
            assert_eq!(asks(&more), 0, "one question at a time");
        }
        let after = answer(&mut watch, vec![room("team", None, 9, 1)]);
        assert_eq!(asks(&after), 1, "what came meanwhile is counted");
        assert!(asks(&answer(&mut watch, vec![room("team", None, 9, 1)])) == 0);
        assert_eq!(watch.counts().unread, 9);
    }

    #[test]
    fn a_room_read_elsewhere_is_counted_again() {
        let mut watch = started();
        let effects = deliver(&mut watch, "chat.room.team.read", room("team", None, 0, 0));
        assert_eq!(asks(&effects), 1);
        answer(&mut watch, vec![room("team", None, 0, 0)]);
        assert_eq!(watch.counts(), Counts::default());
    }

    #[test]
    fn a_direct_message_is_a_notice_unless_chat_is_in_view_and_yours_are_not_news() {
        let mut watch = started();
        let effects = deliver(
            &mut watch,
            "chat.room.dm-2-3.message",
            message("dm-2-3", "ana", "lunch?\nat noon", &[]),
        );
        assert!(effects.contains(&Effect::notify(Level::Info, "ana to you: lunch?")));
        let effects = deliver(
            &mut watch,
            "chat.room.team.message",
            message("team", "ana", "not to you", &[]),
        );
        assert!(!effects.iter().any(|e| matches!(e, Effect::Notify { .. })));
        watch.chat_in_view = true;
        let effects = deliver(
            &mut watch,
            "chat.room.dm-2-3.message",
            message("dm-2-3", "ana", "still there?", &[]),
        );
        assert!(!effects.iter().any(|e| matches!(e, Effect::Notify { .. })));
        let own = deliver(
            &mut watch,
            "chat.room.team.message",
            message("team", "bob", "mine", &[]),
        );
        assert!(own.is_empty(), "{own:?}");
    }

    #[test]
    fn a_mention_anywhere_is_a_notice() {
        let mut watch = started();
        let effects = deliver(
            &mut watch,
            "chat.mention",
            message("team", "ana", "@bob is the build green?\nmore", &["bob"]),
        );
        assert_eq!(
            effects,
            [Effect::notify(
                Level::Info,
                "ana mentioned you in #team: @bob is the build green?"
            )]
        );
    }

    #[test]
    fn without_chat_it_stays_quiet() {
        let mut watch = Unread::new("guest");
        watch.start();
        let effects = watch.update(Event::SubscribeFailed {
            ticket: WATCH,
            error: ErrorBody::new(ErrorCode::Forbidden, "no chat for guests"),
        });
        assert!(effects.is_empty());
        assert!(watch.update(Event::Reconnected).is_empty());
        assert_eq!(watch.counts(), Counts::default());
    }
}
