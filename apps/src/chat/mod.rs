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

use std::collections::HashMap;

use aether_proto::ErrorBody;
use aether_proto::api::chat::{self, Message, RoomInfo};
use aether_proto::api::sys;
use serde_json::Value;

use app_kit::app::{
    App, AppKind, Effect, Event, Hint, Level, Payload, Registration, Ticket, Tickets, decode, hint,
};
use app_kit::key::Mouse;
use app_kit::widgets::{LineInput, ListWindow};

use compose::{Composer, Draft};
use room::{PAGE, Shown};
pub use unread::{Counts, Unread};

/// Where the keys go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Focus {
    Rooms,
    Messages,
    Input,
}

/// Something the daemon was asked for: loading, there, or why not.
#[derive(Debug, Clone)]
pub(crate) enum Loaded<T> {
    Loading,
    Ready(T),
    Failed(String),
}

/// What a search in the shown room found.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub query: String,
    /// `None` while the daemon looks.
    pub messages: Option<Vec<Message>>,
}

#[derive(Debug, Clone)]
enum Pending {
    Whoami,
    Rooms,
    /// The shown room's newest page, or an older one.
    History {
        room: String,
        older: bool,
    },
    Search(String),
    Members(String),
    /// Kept to put back in the line if it is refused.
    Post {
        text: String,
        draft: Draft,
    },
    Edit {
        text: String,
        seq: u64,
    },
    Delete,
    Read,
    // The dialogs (a new room's name, then who may join it; a room to join; whom to
    // invite; leaving or deleting, asked first) and the requests they lead to.
    NewName,
    NewKind(String),
    Create,
    JoinName,
    Join,
    InviteWhom(String),
    Invite,
    ConfirmLeave(String),
    Leave,
    ConfirmDelete {
        room: String,
        seq: u64,
    },
}

impl Pending {
    /// Answers about the shown room, stale once another is shown.
    fn about_shown(&self) -> bool {
        matches!(
            self,
            Pending::History { .. } | Pending::Search(_) | Pending::Members(_)
        )
    }
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

pub struct Chat {
    tickets: Tickets,
    pending: HashMap<Ticket, Pending>,
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
        Chat {
            tickets: Tickets::default(),
            pending: HashMap::new(),
            events: None,
            me: None,
            rooms: Loaded::Loading,
            room_list: ListWindow::default(),
            shown: None,
            focus: Focus::Input,
            selected: None,
            compose: Composer::default(),
            search: None,
            found: None,
            message: None,
            want: None,
        }
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

    fn request<C: aether_proto::api::Call>(&mut self, pending: Pending, call: &C) -> Vec<Effect> {
        let ticket = self.tickets.issue();
        self.pending.insert(ticket, pending);
        vec![Effect::request(ticket, call)]
    }

    fn dialog(&mut self, pending: Pending, make: impl FnOnce(Ticket) -> Effect) -> Vec<Effect> {
        let ticket = self.tickets.issue();
        self.pending.insert(ticket, pending);
        vec![make(ticket)]
    }

    fn say(&mut self, level: Level, text: impl Into<String>) {
        self.message = Some((level, text.into()));
    }

    /// List the rooms again; an earlier listing's answer is stale from now on.
    fn refresh(&mut self) -> Vec<Effect> {
        self.pending.retain(|_, p| !matches!(p, Pending::Rooms));
        self.request(Pending::Rooms, &chat::Rooms::default())
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
        self.pending.retain(|_, p| !p.about_shown());
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
        let newest = Pending::History {
            room: room.to_owned(),
            older: false,
        };
        let mut effects = self.request(newest, &history);
        effects.extend(self.request(
            Pending::Members(room.to_owned()),
            &chat::Members {
                room: room.to_owned(),
            },
        ));
        effects
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
            room: room.clone(),
            before,
            limit: Some(PAGE),
            ..Default::default()
        };
        self.request(Pending::History { room, older: true }, &history)
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
        self.request(Pending::Read, &chat::MarkRead { room, seq })
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

    fn on_answer(&mut self, pending: Pending, result: Result<Payload, ErrorBody>) -> Vec<Effect> {
        match pending {
            Pending::Whoami => {
                if let Ok(me) = decode::<sys::Whoami>(result) {
                    self.me = Some(me.user.name);
                }
            }
            Pending::Rooms => return self.listed_rooms(result),
            Pending::History { room, older } => return self.history(&room, older, result),
            Pending::Search(room) => match decode::<chat::History>(result) {
                Ok(page) if self.shown.as_ref().is_some_and(|s| s.room == room) => {
                    if let Some(found) = self.found.as_mut() {
                        found.messages = Some(page.messages);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    self.found = None;
                    self.say(Level::Error, words::refusal("search", &e));
                }
            },
            Pending::Members(room) => {
                if let Ok(list) = decode::<chat::Members>(result)
                    && let Some(shown) = self.shown.as_mut().filter(|s| s.room == room)
                {
                    shown.members = list.members;
                    shown.members.sort();
                }
            }
            Pending::Post { text, draft } => match decode::<chat::Post>(result) {
                Ok(message) => self.arrived(message),
                Err(e) => self.refused(text, draft, "not sent", &e),
            },
            Pending::Edit { text, seq } => match decode::<chat::Edit>(result) {
                Ok(message) => self.changed(message),
                Err(e) => self.refused(text, Draft::Edit(seq), "not edited", &e),
            },
            Pending::Delete => match decode::<chat::Delete>(result) {
                Ok(message) => self.changed(message),
                Err(e) => self.say(Level::Error, words::refusal("not deleted", &e)),
            },
            Pending::Read => {
                if let Ok(info) = decode::<chat::MarkRead>(result)
                    && let Some(known) = self.info_mut(&info.room)
                {
                    *known = info;
                }
            }
            Pending::Create => match decode::<chat::Create>(result) {
                Ok(info) => {
                    let text = format!(
                        "made {} (to invite people: Esc, then i)",
                        words::room_name(&info)
                    );
                    self.say(Level::Info, text);
                    self.want = Some(info.room);
                    self.focus = Focus::Input;
                    return self.refresh();
                }
                Err(e) => self.say(Level::Error, words::refusal("no room made", &e)),
            },
            Pending::Join => match decode::<chat::Join>(result) {
                Ok(info) => {
                    self.want = Some(info.room);
                    self.focus = Focus::Input;
                    self.message = None;
                    return self.refresh();
                }
                Err(e) => {
                    self.want = None;
                    self.say(Level::Error, words::refusal("not joined", &e));
                }
            },
            Pending::Invite => match decode::<chat::Invite>(result) {
                Ok(invited) => {
                    let room = words::room_id_name(&invited.room, self.room_infos());
                    self.say(Level::Info, format!("{} is in {room} now", invited.user));
                }
                Err(e) => self.say(Level::Error, words::refusal("not invited", &e)),
            },
            Pending::Leave => match decode::<chat::Leave>(result) {
                Ok(left) => {
                    let room = words::room_id_name(&left.room, self.room_infos());
                    self.say(Level::Info, format!("you left {room}"));
                    if self.shown.as_ref().is_some_and(|s| s.room == left.room) {
                        self.shown = None;
                    }
                    return self.refresh();
                }
                Err(e) => self.say(Level::Error, words::refusal("still in the room", &e)),
            },
            Pending::NewName
            | Pending::NewKind(_)
            | Pending::JoinName
            | Pending::InviteWhom(_)
            | Pending::ConfirmLeave(_)
            | Pending::ConfirmDelete { .. } => {}
        }
        Vec::new()
    }

    fn listed_rooms(&mut self, result: Result<Payload, ErrorBody>) -> Vec<Effect> {
        let rooms = match decode::<chat::Rooms>(result) {
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

    fn history(
        &mut self,
        room: &str,
        older: bool,
        result: Result<Payload, ErrorBody>,
    ) -> Vec<Effect> {
        let Some(shown) = self.shown.as_mut().filter(|s| s.room == room) else {
            return Vec::new();
        };
        match decode::<chat::History>(result) {
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

impl Default for Chat {
    fn default() -> Self {
        Chat::new()
    }
}

impl App for Chat {
    fn kind(&self) -> AppKind {
        APP
    }

    fn title(&self) -> String {
        match self.shown_info() {
            Some(info) => format!("Chat: {}", words::room_name(info)),
            None => "Chat".into(),
        }
    }

    fn start(&mut self) -> Vec<Effect> {
        let ticket = self.tickets.issue();
        self.events = Some(ticket);
        let mut effects = vec![Effect::Subscribe {
            ticket,
            pattern: chat::SUBSCRIBE.to_owned(),
        }];
        effects.extend(self.request(Pending::Whoami, &sys::Whoami {}));
        effects.extend(self.refresh());
        effects
    }

    fn update(&mut self, event: Event) -> Vec<Effect> {
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
            Event::Answer { ticket, result } => match self.pending.remove(&ticket) {
                Some(pending) => self.on_answer(pending, result),
                None => Vec::new(),
            },
            Event::Delivery {
                ticket,
                topic,
                data,
            } if Some(ticket) == self.events => self.on_event(&topic, data),
            Event::SubscribeFailed { error, .. } => {
                let text = format!("new messages will not show up: {}", error.msg);
                self.say(Level::Warn, text);
                Vec::new()
            }
            Event::Prompted { ticket, text } => match self.pending.remove(&ticket) {
                Some(pending) => self.on_prompted(pending, text),
                None => Vec::new(),
            },
            Event::Chose { ticket, index } => match self.pending.remove(&ticket) {
                Some(pending) => self.on_chose(pending, index),
                None => Vec::new(),
            },
            Event::Confirmed { ticket, yes } => match self.pending.remove(&ticket) {
                Some(pending) => self.on_confirmed(pending, yes),
                None => Vec::new(),
            },
            Event::OpenPath { path, .. } => self.open(path),
            Event::Reconnected => {
                // What was said meanwhile came with no event.
                let mut effects = self.refresh();
                if let Some(room) = self.shown.as_ref().map(|s| s.room.clone()) {
                    self.pending.retain(|_, p| !p.about_shown());
                    effects.extend(self.load(&room));
                }
                effects
            }
            _ => Vec::new(),
        }
    }

    fn view(
        &self,
        area: ratatui::layout::Rect,
        buf: &mut ratatui::buffer::Buffer,
        cx: &app_kit::app::ViewCx,
    ) {
        view::render(self, area, buf, cx)
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
