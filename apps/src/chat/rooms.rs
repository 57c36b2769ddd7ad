//! The keys and dialogs about rooms: make one (its name, then public or private), join a
//! public one, invite someone, leave (asked first); and opening a room another app named.

use aether_proto::api::chat::{self, room_problem};

use app_kit::app::{Effect, Level};
use app_kit::key::{Key, KeyCode};

use super::{Chat, Focus, Pending, words};

impl Chat {
    /// The keys about rooms, with the rooms or the messages focused.
    pub(super) fn room_command(&mut self, key: Key) -> Vec<Effect> {
        match key.code {
            KeyCode::Char('n') => self.dialog(Pending::NewName, |ticket| Effect::Prompt {
                ticket,
                question: "A new room's name (a-z, 0-9, - and _)".into(),
                initial: String::new(),
                secret: false,
            }),
            KeyCode::Char('j') => match self.selected_room() {
                Some(info) if !info.joined => {
                    let room = info.room.clone();
                    self.join(room)
                }
                _ => self.dialog(Pending::JoinName, |ticket| Effect::Prompt {
                    ticket,
                    question: "Join which public room?".into(),
                    initial: String::new(),
                    secret: false,
                }),
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
                self.dialog(Pending::InviteWhom(info.room), |ticket| Effect::Prompt {
                    ticket,
                    question,
                    initial: String::new(),
                    secret: false,
                })
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
                self.dialog(Pending::ConfirmLeave(info.room), |ticket| Effect::Confirm {
                    ticket,
                    question,
                })
            }
            KeyCode::Char('/') => self.start_search(),
            KeyCode::Char('R') => self.refresh(),
            _ => Vec::new(),
        }
    }

    pub(super) fn join(&mut self, room: String) -> Vec<Effect> {
        self.want = Some(room.clone());
        self.request(Pending::Join, &chat::Join { room })
    }

    pub(super) fn on_prompted(&mut self, pending: Pending, text: Option<String>) -> Vec<Effect> {
        let Some(text) = text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) else {
            return Vec::new();
        };
        match pending {
            Pending::NewName => {
                let room = text.to_lowercase();
                if let Some(problem) = room_problem(&room) {
                    self.say(Level::Error, problem);
                    return Vec::new();
                }
                let question = format!("Who may join #{room}?");
                self.dialog(Pending::NewKind(room), |ticket| Effect::Choose {
                    ticket,
                    question,
                    options: vec![
                        "Public: anyone may join".into(),
                        "Private: only those you invite".into(),
                    ],
                })
            }
            Pending::JoinName => {
                let room = text.trim_start_matches('#').to_lowercase();
                match room_problem(&room) {
                    Some(problem) => {
                        self.say(Level::Error, problem);
                        Vec::new()
                    }
                    None => self.join(room),
                }
            }
            Pending::InviteWhom(room) => {
                let user = text.trim_start_matches('@').to_owned();
                self.request(Pending::Invite, &chat::Invite { room, user })
            }
            _ => Vec::new(),
        }
    }

    pub(super) fn on_chose(&mut self, pending: Pending, index: Option<usize>) -> Vec<Effect> {
        match (pending, index) {
            (Pending::NewKind(room), Some(index)) => {
                let create = chat::Create {
                    room,
                    private: index == 1,
                    topic: None,
                };
                self.request(Pending::Create, &create)
            }
            _ => Vec::new(),
        }
    }

    pub(super) fn on_confirmed(&mut self, pending: Pending, yes: bool) -> Vec<Effect> {
        if !yes {
            return Vec::new();
        }
        match pending {
            Pending::ConfirmLeave(room) => self.request(Pending::Leave, &chat::Leave { room }),
            Pending::ConfirmDelete { room, seq } => {
                self.request(Pending::Delete, &chat::Delete { room, seq })
            }
            _ => Vec::new(),
        }
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
