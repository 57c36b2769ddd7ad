//! Chat: your rooms on the left (unread counts, a mark when you were mentioned, then the
//! public rooms you could join), the shown room's messages on the right (Markdown, edits,
//! deletes, replies; older pages as you scroll up), and a line to write in. Everything
//! comes live through `chat.>`: a message in the shown room appears, one elsewhere counts
//! as unread, a mention anywhere is a notification.

mod compose;
mod keys;
mod live;
pub(crate) mod markdown;
mod messages;
mod room;
mod rooms;
mod unread;
mod view;
mod words;

use aether_proto::api::chat::{self, Message, RoomInfo};
use aether_proto::api::sys;
use serde_json::Value;

use app_kit::widgets::{LineInput, ListWindow};
use app_kit::{
    Answer, App, AppKind, Effect, Event, Hint, Latest, Level, Mouse, Registration, Replies,
    Requests, Ticket, hint,
};

use compose::Composer;
pub use compose::Draft;
use room::{PAGE, Shown};
pub use rooms::RoomMsg;
pub use unread::{Counts, UNREAD, Unread};

/// Where the keys go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Focus {
    Rooms,
    Messages,
    #[default]
    Input,
}

pub(crate) use app_kit::Loaded;

/// What a search in the shown room found.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub query: String,
    /// `None` while the daemon looks.
    pub messages: Option<Vec<Message>>,
}

/// What the app's asks come back as. Answers about the shown room carry the `era` they
/// were asked in: once another room is shown (a new era) they are stale.
pub enum Msg {
    Whoami(Answer<sys::Whoami>),
    Rooms(u64, Answer<chat::Rooms>),
    /// The shown room's newest page, or an older one.
    History {
        era: u64,
        older: bool,
        answer: Answer<chat::History>,
    },
    Searched(u64, u64, Answer<chat::History>),
    Members(u64, Answer<chat::Members>),
    /// The text is kept to put back in the line if it is refused.
    Posted {
        text: String,
        draft: Draft,
        answer: Answer<chat::Post>,
    },
    Edited {
        text: String,
        seq: u64,
        answer: Answer<chat::Edit>,
    },
    Read(Answer<chat::MarkRead>),
    /// The dialogs about rooms and what they lead to: see `rooms.rs`.
    Room(rooms::RoomMsg),
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct Saved {
    room: Option<String>,
}

/// The registry's entry for this app.
pub const APP: AppKind = AppKind::of(&Registration {
    name: "chat",
    title: "Chat",
    manifest: "chat",
    standalone: true,
    launcher_key: Some('c'),
    opens: &[],
    launch: |arg| Box::new(Chat::showing(arg)),
    restore: |state| Box::new(Chat::restore(state)),
});

#[derive(Default)]
pub struct Chat {
    requests: Requests<Msg>,
    room_lists: Latest,
    searches: Latest,
    /// Counts the rooms shown: an answer asked about an earlier one is stale.
    era: u64,
    events: Option<Ticket>,
    /// Your user name (`sys.whoami`): your messages are the ones you may edit.
    pub(crate) me: Option<String>,
    /// Yours first, then the public ones to join (the daemon's order).
    pub(crate) rooms: Loaded<Vec<RoomInfo>>,
    pub(crate) room_list: ListWindow,
    pub(crate) shown: Option<Shown>,
    pub(crate) focus: Focus,
    /// The message selected in the message pane (by sequence number).
    pub(crate) selected: Option<u64>,
    pub(crate) compose: Composer,
    /// Typing a search.
    pub(crate) search: Option<LineInput>,
    pub(crate) found: Option<Found>,
    pub(crate) message: Option<(Level, String)>,
    /// The room to show once the rooms are listed (a restored session, an opened DM).
    want: Option<String>,
}

impl Chat {
    pub fn new() -> Chat {
        Chat::default()
    }

    /// A chat window showing `room` once the rooms are listed.
    pub fn showing(room: Option<&str>) -> Chat {
        Chat {
            want: room.map(str::to_owned),
            ..Chat::new()
        }
    }

    pub fn restore(state: &Value) -> Chat {
        let saved: Saved = serde_json::from_value(state.clone()).unwrap_or_default();
        Chat {
            want: saved.room,
            ..Chat::new()
        }
    }

    fn say(&mut self, level: Level, text: impl Into<String>) {
        self.message = Some((level, text.into()));
    }

    /// List the rooms again; an earlier listing's answer is stale from now on.
    fn refresh(&mut self) -> Vec<Effect> {
        let n = self.room_lists.ask();
        let call = chat::Rooms::default();
        vec![
            self.requests
                .call(&call, move |answer| Msg::Rooms(n, answer)),
        ]
    }

    pub(crate) fn room_infos(&self) -> &[RoomInfo] {
        match &self.rooms {
            Loaded::Ready(rooms) => rooms,
            _ => &[],
        }
    }

    fn info_mut(&mut self, room: &str) -> Option<&mut RoomInfo> {
        match &mut self.rooms {
            Loaded::Ready(rooms) => rooms.iter_mut().find(|r| r.room == room),
            _ => None,
        }
    }

    pub(crate) fn selected_room(&self) -> Option<&RoomInfo> {
        self.room_infos().get(self.room_list.selected)
    }

    pub(crate) fn shown_info(&self) -> Option<&RoomInfo> {
        let shown = self.shown.as_ref()?;
        self.room_infos().iter().find(|r| r.room == shown.room)
    }

    /// Show the selected room: its newest messages and its members, if you are in it.
    fn show_selected(&mut self) -> Vec<Effect> {
        let Some(info) = self.selected_room() else {
            self.shown = None;
            return Vec::new();
        };
        let (room, joined) = (info.room.clone(), info.joined);
        if self.shown.as_ref().is_some_and(|s| s.room == room) {
            return Vec::new();
        }
        self.era += 1;
        self.selected = None;
        self.found = None;
        if self.compose.draft != Draft::New {
            self.compose.clear();
        }
        if !joined {
            self.shown = None;
            return Vec::new();
        }
        self.shown = Some(Shown::new(&room));
        self.load(&room)
    }

    /// The newest page and the members of a room.
    fn load(&mut self, room: &str) -> Vec<Effect> {
        let history = chat::History {
            room: room.to_owned(),
            limit: Some(PAGE),
            ..Default::default()
        };
        let era = self.era;
        let members = chat::Members {
            room: room.to_owned(),
        };
        vec![
            self.requests.call(&history, move |answer| Msg::History {
                era,
                older: false,
                answer,
            }),
            self.requests
                .call(&members, move |answer| Msg::Members(era, answer)),
        ]
    }

    /// Ask for the page before the oldest message shown.
    fn load_older(&mut self) -> Vec<Effect> {
        let Some(shown) = self.shown.as_mut() else {
            return Vec::new();
        };
        if !shown.more || shown.loading_older || !shown.loaded {
            return Vec::new();
        }
        shown.loading_older = true;
        let (room, before) = (shown.room.clone(), shown.first_seq());
        let history = chat::History {
            room,
            before,
            limit: Some(PAGE),
            ..Default::default()
        };
        let era = self.era;
        let older = self.requests.call(&history, move |answer| Msg::History {
            era,
            older: true,
            answer,
        });
        vec![older]
    }

    /// Tell the daemon you read the shown room up to `seq` (its newest when `None`).
    fn mark_read(&mut self, seq: Option<u64>) -> Vec<Effect> {
        let Some(room) = self.shown.as_ref().map(|s| s.room.clone()) else {
            return Vec::new();
        };
        if let Some(info) = self.info_mut(&room) {
            info.unread = 0;
            info.mentions = 0;
        }
        vec![self.requests.call(&chat::MarkRead { room, seq }, Msg::Read)]
    }

    fn move_room(&mut self, delta: isize) -> Vec<Effect> {
        let len = self.room_infos().len();
        self.room_list.move_by(delta, len);
        self.show_selected()
    }

    fn select_room(&mut self, room: &str) -> Vec<Effect> {
        let Some(index) = self.room_infos().iter().position(|r| r.room == room) else {
            return Vec::new();
        };
        let len = self.room_infos().len();
        self.room_list.select(index, len);
        self.show_selected()
    }

    /// The messages the pane shows: what a search found, or the room's.
    pub(crate) fn listed(&self) -> &[Message] {
        match (&self.found, &self.shown) {
            (Some(found), _) => found.messages.as_deref().unwrap_or_default(),
            (None, Some(shown)) => &shown.messages,
            (None, None) => &[],
        }
    }

    fn listed_rooms(&mut self, answer: Answer<chat::Rooms>) -> Vec<Effect> {
        let rooms = match answer {
            Ok(list) => list.rooms,
            Err(e) => {
                self.rooms = Loaded::Failed(e.msg);
                return Vec::new();
            }
        };
        // The room to show: the one asked for, else the one shown (or selected) before.
        let keep = self
            .want
            .take()
            .or_else(|| self.shown.as_ref().map(|s| s.room.clone()))
            .or_else(|| self.selected_room().map(|r| r.room.clone()));
        self.rooms = Loaded::Ready(rooms);
        if let Some(shown) = &self.shown
            && !self
                .room_infos()
                .iter()
                .any(|r| r.room == shown.room && r.joined)
        {
            // Left, here or elsewhere.
            self.shown = None;
        }
        let len = self.room_infos().len();
        let index = keep
            .and_then(|room| self.room_infos().iter().position(|r| r.room == room))
            .unwrap_or(self.room_list.selected);
        self.room_list.select(index, len);
        self.show_selected()
    }

    fn history(&mut self, older: bool, answer: Answer<chat::History>) -> Vec<Effect> {
        let Some(shown) = self.shown.as_mut() else {
            return Vec::new();
        };
        match answer {
            Ok(page) if older => shown.prepend(page.messages, page.more),
            Ok(page) => {
                shown.first_page(page.messages, page.more);
                return self.mark_read(None);
            }
            Err(e) if older => {
                shown.loading_older = false;
                let text = words::refusal("older messages could not be read", &e);
                self.say(Level::Error, text);
            }
            Err(e) => shown.failed = Some(e.msg),
        }
        Vec::new()
    }
}

impl Replies for Chat {
    app_kit::replies_through!(requests: Msg);

    fn on(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Whoami(answer) => {
                if let Ok(me) = answer {
                    self.me = Some(me.user.name);
                }
            }
            Msg::Rooms(n, answer) if self.room_lists.take(n) => return self.listed_rooms(answer),
            Msg::History { era, older, answer } if era == self.era => {
                return self.history(older, answer);
            }
            Msg::Searched(era, n, answer) if era == self.era && self.searches.take(n) => {
                match answer {
                    Ok(page) => {
                        if let Some(found) = self.found.as_mut() {
                            found.messages = Some(page.messages);
                        }
                    }
                    Err(e) => {
                        self.found = None;
                        self.say(Level::Error, words::refusal("search", &e));
                    }
                }
            }
            Msg::Members(era, answer) if era == self.era => {
                if let Ok(list) = answer
                    && let Some(shown) = self.shown.as_mut()
                {
                    shown.members = list.members;
                    shown.members.sort();
                }
            }
            Msg::Rooms(..) | Msg::History { .. } | Msg::Searched(..) | Msg::Members(..) => {}
            Msg::Posted {
                text,
                draft,
                answer,
            } => match answer {
                Ok(message) => self.arrived(message),
                Err(e) => self.refused(text, draft, "not sent", &e),
            },
            Msg::Edited { text, seq, answer } => match answer {
                Ok(message) => self.changed(message),
                Err(e) => self.refused(text, Draft::Edit(seq), "not edited", &e),
            },
            Msg::Read(answer) => {
                if let Ok(info) = answer
                    && let Some(known) = self.info_mut(&info.room)
                {
                    *known = info;
                }
            }
            Msg::Room(msg) => return self.on_room(msg),
        }
        Vec::new()
    }

    fn on_event(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Key(key) => self.on_key(key),
            Event::Paste(text) => {
                match self.search.as_mut() {
                    Some(search) => search.insert_str(&text),
                    None => {
                        self.focus = Focus::Input;
                        self.compose.input.insert_str(&text);
                    }
                }
                Vec::new()
            }
            Event::Mouse(Mouse::ScrollUp { .. }) => self.scroll(3),
            Event::Mouse(Mouse::ScrollDown { .. }) => self.scroll(-3),
            Event::Delivery {
                ticket,
                topic,
                data,
            } if Some(ticket) == self.events => self.on_delivery(&topic, data),
            Event::SubscribeFailed { error, .. } => {
                let text = format!("new messages will not show up: {}", error.msg);
                self.say(Level::Warn, text);
                Vec::new()
            }
            Event::OpenPath { path, .. } => self.open(path),
            Event::Reconnected => {
                // What was said meanwhile came with no event.
                let mut effects = self.refresh();
                if let Some(room) = self.shown.as_ref().map(|s| s.room.clone()) {
                    self.era += 1;
                    effects.extend(self.load(&room));
                }
                effects
            }
            _ => Vec::new(),
        }
    }
}

impl App for Chat {
    app_kit::app_plumbing!(APP);

    fn title(&self) -> String {
        match self.shown_info() {
            Some(info) => format!("Chat: {}", words::room_name(info)),
            None => "Chat".into(),
        }
    }

    fn start(&mut self) -> Vec<Effect> {
        let (ticket, listen) = self.requests.subscribe(chat::SUBSCRIBE);
        self.events = Some(ticket);
        let mut effects = vec![listen];
        effects.push(self.requests.call(&sys::Whoami {}, Msg::Whoami));
        effects.extend(self.refresh());
        effects
    }

    fn hints(&self) -> Vec<Hint> {
        vec![
            hint(
                "Enter",
                "send the line (a reply when replying; saves an edit)",
            ),
            hint(
                "Tab",
                "after @: complete a member's name (again: the next one)",
            ),
            hint("↑", "in an empty line: edit your last message"),
            hint("Ctrl-n Ctrl-p", "the next or previous room"),
            hint("PgUp PgDn", "scroll; older messages load as you go up"),
            hint("Ctrl-f", "search the room (Esc: back to the room)"),
            hint(
                "Esc Shift-Tab",
                "off the line, to the messages (← the rooms; Enter back): the keys below work there",
            ),
            hint("↑ ↓", "select a message, or a room"),
            hint("r", "reply to the selected message"),
            hint("e", "edit the selected message (yours)"),
            hint("d Del", "delete the selected message (yours; asks)"),
            hint("y", "copy the selected message"),
            hint("/", "search the room"),
            hint("n", "make a room (public or private)"),
            hint("j", "join the selected public room, or one by name"),
            hint("i", "invite someone to the room"),
            hint("l", "leave the room (asks)"),
            hint("R F5", "list the rooms again"),
        ]
    }

    fn save(&self) -> Value {
        serde_json::to_value(Saved {
            room: self
                .shown
                .as_ref()
                .map(|s| s.room.clone())
                .or_else(|| self.want.clone()),
        })
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
