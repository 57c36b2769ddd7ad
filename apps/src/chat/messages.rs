//! What you do to messages: select one, reply to it, edit or delete yours, and send the
//! line (a post, a reply, or an edit); a refusal puts the text back.

use aether_proto::ErrorBody;
use aether_proto::api::chat::{self, Message};

use app_kit::app::{Effect, Level};

use super::compose::Draft;
use super::rooms::RoomMsg;
use super::{Chat, Focus, Msg, words};

impl Chat {
    pub(super) fn selected_message(&self) -> Option<&Message> {
        let seq = self.selected?;
        self.listed().iter().find(|m| m.seq == seq)
    }

    pub(super) fn move_selection(&mut self, delta: isize) -> Vec<Effect> {
        let listed = self.listed();
        if listed.is_empty() {
            return Vec::new();
        }
        let at = self
            .selected
            .and_then(|seq| listed.iter().position(|m| m.seq == seq))
            .unwrap_or(listed.len() - 1);
        let to = at.saturating_add_signed(delta).min(listed.len() - 1);
        self.selected = Some(listed[to].seq);
        if self.found.is_some() {
            return Vec::new();
        }
        let Some(shown) = self.shown.as_mut() else {
            return Vec::new();
        };
        shown.reveal(to);
        // At the oldest loaded, going further up loads the page before it.
        if to == 0 && delta < 0 && shown.more {
            return self.load_older();
        }
        Vec::new()
    }

    pub(super) fn reply_selected(&mut self) -> Vec<Effect> {
        let Some((seq, deleted)) = self.selected_message().map(|m| (m.seq, m.deleted)) else {
            return Vec::new();
        };
        if deleted {
            self.say(Level::Info, "that message is deleted");
            return Vec::new();
        }
        if matches!(self.compose.draft, Draft::Edit(_)) {
            self.compose.input.take();
        }
        self.compose.draft = Draft::Reply(seq);
        self.focus = Focus::Input;
        Vec::new()
    }

    /// Whether `message` is yours; says why not when it is not.
    fn yours(&mut self, message: &Message, verb: &str) -> bool {
        if message.deleted {
            self.say(Level::Info, "that message is deleted");
            return false;
        }
        if self.me.as_deref() != Some(message.user.as_str()) {
            let text = format!("only {} may {verb} that message", message.user);
            self.say(Level::Info, text);
            return false;
        }
        true
    }

    pub(super) fn edit_selected(&mut self) -> Vec<Effect> {
        let Some(message) = self.selected_message().cloned() else {
            return Vec::new();
        };
        if self.yours(&message, "edit") {
            self.start_edit(&message);
        }
        Vec::new()
    }

    /// ↑ in an empty line: edit your newest message.
    pub(super) fn edit_last(&mut self) -> Vec<Effect> {
        let Some(me) = self.me.clone() else {
            return Vec::new();
        };
        match self.shown.as_ref().and_then(|s| s.last_of(&me)).cloned() {
            Some(message) => self.start_edit(&message),
            None => self.say(Level::Info, "nothing of yours here to edit"),
        }
        Vec::new()
    }

    fn start_edit(&mut self, message: &Message) {
        self.compose.input.set(message.text.clone());
        self.compose.draft = Draft::Edit(message.seq);
        self.focus = Focus::Input;
    }

    pub(super) fn delete_selected(&mut self) -> Vec<Effect> {
        let Some(message) = self.selected_message().cloned() else {
            return Vec::new();
        };
        if !self.yours(&message, "delete") {
            return Vec::new();
        }
        let question = format!(
            "Delete your message #{} (\"{}\")? Everyone in the room sees it as deleted.",
            message.seq,
            words::snippet(&message, 40)
        );
        let (room, seq) = (message.room, message.seq);
        let confirm = self.requests.confirm(question, move |yes| {
            Msg::Room(RoomMsg::Delete { room, seq, yes })
        });
        vec![confirm]
    }

    /// Enter: post the line (a reply when replying), or save the edit.
    pub(super) fn submit(&mut self) -> Vec<Effect> {
        let text = self.compose.input.text().trim().to_owned();
        if text.is_empty() {
            return Vec::new();
        }
        let Some(room) = self.shown.as_ref().map(|s| s.room.clone()) else {
            self.say(Level::Info, "join a room first: j joins, n makes one");
            return Vec::new();
        };
        let draft = self.compose.draft;
        self.compose.clear();
        self.message = None;
        if let Some(shown) = self.shown.as_mut() {
            shown.follow();
        }
        match draft {
            Draft::Edit(seq) => {
                let call = chat::Edit {
                    room,
                    seq,
                    text: text.clone(),
                };
                let edit =
                    self.requests
                        .call(&call, move |answer| Msg::Edited { text, seq, answer });
                vec![edit]
            }
            Draft::New | Draft::Reply(_) => {
                let reply_to = match draft {
                    Draft::Reply(seq) => Some(seq),
                    _ => None,
                };
                let post = chat::Post {
                    room,
                    text: text.clone(),
                    reply_to,
                };
                let post = self.requests.call(&post, move |answer| Msg::Posted {
                    text,
                    draft,
                    answer,
                });
                vec![post]
            }
        }
    }

    /// A refused post or edit: its text back in the line (unless you typed on), and why.
    pub(super) fn refused(&mut self, text: String, draft: Draft, doing: &str, e: &ErrorBody) {
        if self.compose.input.text().is_empty() {
            self.compose.input.set(text);
            self.compose.draft = draft;
        }
        self.say(Level::Error, words::refusal(doing, e));
    }
}
