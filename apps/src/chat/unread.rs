//! The desktop's chat counter, an app with no window (the desktop runs it in the
//! background, through the same effects as every window): what is unread in your rooms
//! and how much of it mentions you, for the status bar, and a notice when someone
//! mentions you or writes to you directly. The daemon's counts are the truth: whenever a message arrives
//! or a room is read (in any window, on any terminal) it asks `chat.rooms` again, one
//! question at a time, so a burst of messages costs one more question, not one each.

use aether_proto::api::Event as _;
use aether_proto::api::chat::{self, Message, RoomInfo};
use aether_proto::api::sys;
use serde_json::Value;

use app_kit::widgets::fit;
use app_kit::{
    Answer, App, AppKind, Effect, Event, Level, Registration, Replies, Requests, Ticket,
};

use super::words;

/// The registry's entry for the counter (a background app: the launcher never offers it).
pub const UNREAD: AppKind = AppKind::of(&Registration {
    name: "unread",
    title: "Chat counter",
    manifest: "chat",
    standalone: false,
    launcher_key: None,
    opens: &[],
    launch: |_| Box::new(Unread::default()),
    restore: |_| Box::new(Unread::default()),
});

pub enum Msg {
    Whoami(Answer<sys::Whoami>),
    Rooms(Answer<chat::Rooms>),
}

#[derive(Default)]
pub struct Unread {
    requests: Requests<Msg>,
    watch: Option<Ticket>,
    /// Who you are (`sys.whoami` when not given): your own messages are not news.
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

    fn delivered(&mut self, topic: &str, data: Value) -> Vec<Effect> {
        let mut effects = Vec::new();
        if chat::MentionEvents::parse(topic).is_some() {
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
        vec![self.requests.call(&chat::Rooms::default(), Msg::Rooms)]
    }
}

impl Replies for Unread {
    type Msg = Msg;

    fn requests(&mut self) -> &mut Requests<Msg> {
        &mut self.requests
    }

    fn on(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Whoami(answer) => {
                if let Ok(me) = answer {
                    self.me = me.user.name;
                }
                Vec::new()
            }
            Msg::Rooms(answer) => {
                self.asking = false;
                // Not answered (the daemon going away): the last counts stay until the next.
                if let Ok(list) = answer {
                    self.rooms = list.rooms;
                }
                if std::mem::take(&mut self.ask_again) {
                    return self.ask();
                }
                Vec::new()
            }
        }
    }

    fn on_event(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Subscribed { ticket } if Some(ticket) == self.watch => self.ask(),
            Event::Reconnected => self.ask(),
            Event::SubscribeFailed { ticket, .. } if Some(ticket) == self.watch => {
                self.off = true;
                Vec::new()
            }
            Event::Delivery {
                ticket,
                topic,
                data,
            } if Some(ticket) == self.watch => self.delivered(&topic, data),
            _ => Vec::new(),
        }
    }
}

impl App for Unread {
    app_kit::headless_plumbing!(UNREAD);

    /// Listen first, then ask: nothing said in between is missed.
    fn start(&mut self) -> Vec<Effect> {
        let (ticket, listen) = self.requests.subscribe(chat::SUBSCRIBE);
        self.watch = Some(ticket);
        let mut effects = vec![listen];
        if self.me.is_empty() {
            effects.push(self.requests.call(&sys::Whoami {}, Msg::Whoami));
        }
        effects
    }

    fn update(&mut self, event: Event) -> Vec<Effect> {
        app_kit::route(self, event)
    }
}

#[cfg(test)]
mod tests {
    use aether_proto::api::chat::RoomList;
    use aether_proto::{ErrorBody, ErrorCode};
    use serde::Serialize;

    use super::*;
    use app_kit::Payload;

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

    /// The counter and the `chat.rooms` question it has out, if any.
    struct Watched {
        watch: Unread,
        asked: Option<Ticket>,
    }

    impl Watched {
        /// Note the question these effects ask, if they ask one.
        fn saw(&mut self, effects: &[Effect]) {
            for effect in effects {
                if let Effect::Request { ticket, topic, .. } = effect
                    && *topic == "chat.rooms"
                {
                    self.asked = Some(*ticket);
                }
            }
        }

        fn answer(&mut self, rooms: Vec<RoomInfo>) -> Vec<Effect> {
            let body = serde_json::to_string(&RoomList {
                rooms,
                more_public: None,
            })
            .unwrap();
            let ticket = self.asked.take().expect("a question out");
            let effects = self.watch.update(Event::Answer {
                ticket,
                result: Ok(Payload::new(&body)),
            });
            self.saw(&effects);
            effects
        }

        fn deliver(&mut self, topic: &str, event: impl Serialize) -> Vec<Effect> {
            let effects = self.watch.update(Event::Delivery {
                ticket: self.watch.watch.expect("listening"),
                topic: topic.into(),
                data: serde_json::to_value(event).unwrap(),
            });
            self.saw(&effects);
            effects
        }
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

    fn started() -> Watched {
        let mut watch = Unread::new("bob");
        let Some(
            &[
                Effect::Subscribe {
                    ticket,
                    ref pattern,
                },
            ],
        ) = Some(&watch.start()[..])
        else {
            panic!("it listens first, and knows who you are");
        };
        assert_eq!(pattern, "chat.>");
        let effects = watch.update(Event::Subscribed { ticket });
        assert_eq!(asks(&effects), 1, "asks once listening");
        let mut watched = Watched { watch, asked: None };
        watched.saw(&effects);
        watched.answer(vec![
            room("team", None, 3, 1),
            room("dm-2-3", Some("ana"), 2, 0),
        ]);
        watched
    }

    #[test]
    fn counts_add_up_over_joined_rooms() {
        let mut w = started();
        assert_eq!(
            w.watch.counts(),
            Counts {
                unread: 5,
                mentions: 1
            }
        );
        let mut public = room("lobby", None, 4, 0);
        public.joined = false;
        let again = w.watch.update(Event::Reconnected);
        w.saw(&again);
        w.answer(vec![public]);
        assert_eq!(w.watch.counts(), Counts::default(), "not yours to read");
    }

    #[test]
    fn a_burst_of_messages_asks_once_more_not_once_each() {
        let mut w = started();
        let first = w.deliver("chat.room.team.message", message("team", "ana", "one", &[]));
        assert_eq!(asks(&first), 1);
        for n in 0..5 {
            let more = w.deliver(
                "chat.room.team.message",
                message("team", "ana", &format!("more {n}"), &[]),
            );
            assert_eq!(asks(&more), 0, "one question at a time");
        }
        let after = w.answer(vec![room("team", None, 9, 1)]);
        assert_eq!(asks(&after), 1, "what came meanwhile is counted");
        assert!(asks(&w.answer(vec![room("team", None, 9, 1)])) == 0);
        assert_eq!(w.watch.counts().unread, 9);
    }

    #[test]
    fn a_room_read_elsewhere_is_counted_again() {
        let mut w = started();
        let effects = w.deliver("chat.room.team.read", room("team", None, 0, 0));
        assert_eq!(asks(&effects), 1);
        w.answer(vec![room("team", None, 0, 0)]);
        assert_eq!(w.watch.counts(), Counts::default());
    }

    #[test]
    fn a_direct_message_is_a_notice_unless_chat_is_in_view_and_yours_are_not_news() {
        let mut w = started();
        let effects = w.deliver(
            "chat.room.dm-2-3.message",
            message("dm-2-3", "ana", "lunch?\nat noon", &[]),
        );
        assert!(effects.contains(&Effect::notify(Level::Info, "ana to you: lunch?")));
        let effects = w.deliver(
            "chat.room.team.message",
            message("team", "ana", "not to you", &[]),
        );
        assert!(!effects.iter().any(|e| matches!(e, Effect::Notify { .. })));
        w.watch.chat_in_view = true;
        let effects = w.deliver(
            "chat.room.dm-2-3.message",
            message("dm-2-3", "ana", "still there?", &[]),
        );
        assert!(!effects.iter().any(|e| matches!(e, Effect::Notify { .. })));
        let own = w.deliver(
            "chat.room.team.message",
            message("team", "bob", "mine", &[]),
        );
        assert!(own.is_empty(), "{own:?}");
    }

    #[test]
    fn a_mention_anywhere_is_a_notice() {
        let mut w = started();
        let effects = w.deliver(
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
        let Some(Effect::Subscribe { ticket, .. }) = watch.start().first().cloned() else {
            panic!("it listens first");
        };
        let effects = watch.update(Event::SubscribeFailed {
            ticket,
            error: ErrorBody::new(ErrorCode::Forbidden, "no chat for guests"),
        });
        assert!(effects.is_empty());
        assert!(watch.update(Event::Reconnected).is_empty());
        assert_eq!(watch.counts(), Counts::default());
    }
}
