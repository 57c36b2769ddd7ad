//! The keys and dialogs about rooms: make one (its name, then public or private), join a
//! public one, invite someone, leave (asked first); and opening a room another app named.

use aether_proto::api::chat::{self, room_problem};

use app_kit::{Answer, Effect, Level};
use app_kit::{Key, KeyCode};

use super::{Chat, Focus, Msg, words};

/// The dialogs about rooms (a new room's name, then who may join it; a room to join;
/// whom to invite; leaving or deleting, asked first) and the requests they lead to.
pub enum RoomMsg {
    NewName(Option<String>),
    NewKind(String, Option<usize>),
    Created(Answer<chat::Create>),
    JoinName(Option<String>),
    Joined(Answer<chat::Join>),
    InviteWhom(String, Option<String>),
    Invited(Answer<chat::Invite>),
    Leave(String, bool),
    Left(Answer<chat::Leave>),
    Delete { room: String, seq: u64, yes: bool },
    Deleted(Answer<chat::Delete>),
}

/// A line typed in a dialog, trimmed; `None` when cancelled or empty.
fn typed(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

impl Chat {
    /// The keys about rooms, with the rooms or the messages focused.
    pub(super) fn room_command(&mut self, key: Key) -> Vec<Effect> {
        match key.code {
            KeyCode::Char('n') => {
                let question = "A new room's name (a-z, 0-9, - and _)";
                self.prompt(question, RoomMsg::NewName)
            }
            KeyCode::Char('j') => match self.selected_room() {
                Some(info) if !info.joined => {
                    let room = info.room.clone();
                    self.join(room)
                }
                _ => self.prompt("Join which public room?", RoomMsg::JoinName),
            },
            KeyCode::Char('i') => {
                let Some(info) = self.shown_info().cloned() else {
                    self.say(Level::Info, "show a room you are in first, then i invites");
                    return Vec::new();
                };
                if info.with.is_some() {
                    self.say(
                        Level::Info,
                        "a direct message is for two: n makes a room for more",
                    );
                    return Vec::new();
                }
                let question = format!(
                    "Invite whom to {}? (their user name)",
                    words::room_name(&info)
                );
                let room = info.room;
                self.prompt(question, |text| RoomMsg::InviteWhom(room, text))
            }
            KeyCode::Char('l') => {
                let Some(info) = self.shown_info().cloned() else {
                    return Vec::new();
                };
                let question = if info.private {
                    format!(
                        "Leave {}? It is private: only an invitation brings you back.",
                        words::room_name(&info)
                    )
                } else {
                    format!("Leave {}?", words::room_name(&info))
                };
                let room = info.room;
                let confirm = self
                    .requests
                    .confirm(question, |yes| Msg::Room(RoomMsg::Leave(room, yes)));
                vec![confirm]
            }
            KeyCode::Char('/') => self.start_search(),
            KeyCode::Char('R') => self.refresh(),
            _ => Vec::new(),
        }
    }

    fn prompt(
        &mut self,
        question: impl Into<String>,
        route: impl FnOnce(Option<String>) -> RoomMsg + 'static,
    ) -> Vec<Effect> {
        let prompt = self
            .requests
            .prompt(question, "", false, |text| Msg::Room(route(text)));
        vec![prompt]
    }

    fn room_call<C: aether_proto::api::Call>(
        &mut self,
        call: &C,
        route: fn(Answer<C>) -> RoomMsg,
    ) -> Vec<Effect> {
        vec![
            self.requests
                .call(call, move |answer| Msg::Room(route(answer))),
        ]
    }

    pub(super) fn join(&mut self, room: String) -> Vec<Effect> {
        self.want = Some(room.clone());
        self.room_call(&chat::Join { room }, RoomMsg::Joined)
    }

    pub(super) fn on_room(&mut self, msg: RoomMsg) -> Vec<Effect> {
        match msg {
            RoomMsg::NewName(text) => {
                let Some(room) = typed(text).map(|t| t.to_lowercase()) else {
                    return Vec::new();
                };
                if let Some(problem) = room_problem(&room) {
                    self.say(Level::Error, problem);
                    return Vec::new();
                }
                let question = format!("Who may join #{room}?");
                let options = vec![
                    "Public: anyone may join".into(),
                    "Private: only those you invite".into(),
                ];
                let choose = self.requests.choose(question, options, |index| {
                    Msg::Room(RoomMsg::NewKind(room, index))
                });
                return vec![choose];
            }
            RoomMsg::NewKind(room, Some(index)) => {
                let create = chat::Create {
                    room,
                    private: index == 1,
                    topic: None,
                };
                return self.room_call(&create, RoomMsg::Created);
            }
            RoomMsg::JoinName(text) => {
                let Some(room) = typed(text).map(|t| t.trim_start_matches('#').to_lowercase())
                else {
                    return Vec::new();
                };
                match room_problem(&room) {
                    Some(problem) => self.say(Level::Error, problem),
                    None => return self.join(room),
                }
            }
            RoomMsg::InviteWhom(room, text) => {
                if let Some(user) = typed(text) {
                    let user = user.trim_start_matches('@').to_owned();
                    return self.room_call(&chat::Invite { room, user }, RoomMsg::Invited);
                }
            }
            RoomMsg::Leave(room, true) => {
                return self.room_call(&chat::Leave { room }, RoomMsg::Left);
            }
            RoomMsg::Delete {
                room,
                seq,
                yes: true,
            } => return self.room_call(&chat::Delete { room, seq }, RoomMsg::Deleted),
            RoomMsg::NewKind(_, None) | RoomMsg::Leave(_, false) | RoomMsg::Delete { .. } => {}
            answered => return self.on_room_answer(answered),
        }
        Vec::new()
    }

    fn on_room_answer(&mut self, msg: RoomMsg) -> Vec<Effect> {
        match msg {
            RoomMsg::Created(answer) => match answer {
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
            RoomMsg::Joined(answer) => match answer {
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
            RoomMsg::Invited(answer) => match answer {
                Ok(invited) => {
                    let room = words::room_id_name(&invited.room, self.room_infos());
                    self.say(Level::Info, format!("{} is in {room} now", invited.user));
                }
                Err(e) => self.say(Level::Error, words::refusal("not invited", &e)),
            },
            RoomMsg::Left(answer) => match answer {
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
            RoomMsg::Deleted(answer) => match answer {
                Ok(message) => self.changed(message),
                Err(e) => self.say(Level::Error, words::refusal("not deleted", &e)),
            },
            _ => {}
        }
        Vec::new()
    }

    /// Open a room (a direct message People started): show it, listing the rooms again
    /// when it is new.
    pub(super) fn open(&mut self, room: String) -> Vec<Effect> {
        self.focus = Focus::Input;
        if self.room_infos().iter().any(|r| r.room == room) {
            return self.select_room(&room);
        }
        self.want = Some(room);
        self.refresh()
    }
}
