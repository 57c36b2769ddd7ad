//! Where each key goes: the line you write in, the messages, or the rooms (Esc and
//! Shift-Tab move between them, Enter comes back to the line); a few work everywhere
//! (Ctrl-n/Ctrl-p, PgUp/PgDn, Ctrl-f, F5).

use aether_proto::api::chat;

use app_kit::app::{Effect, Level};
use app_kit::key::{Key, KeyCode};
use app_kit::widgets::{LineEdit, LineInput};

use super::compose::Draft;
use super::{Chat, Focus, Found, Msg, PAGE};

impl Chat {
    pub(super) fn on_key(&mut self, key: Key) -> Vec<Effect> {
        // A word of information was read by now; errors stay until something works.
        if matches!(self.message, Some((Level::Info, _))) {
            self.message = None;
        }
        if self.search.is_some() {
            return self.on_search_key(key);
        }
        if key.mods.ctrl {
            match key.code {
                KeyCode::Char('n') => return self.move_room(1),
                KeyCode::Char('p') => return self.move_room(-1),
                KeyCode::Char('f') => return self.start_search(),
                _ => {}
            }
        }
        match key.code {
            KeyCode::F(5) => return self.refresh(),
            KeyCode::PageUp => return self.page(true),
            KeyCode::PageDown => return self.page(false),
            KeyCode::Esc if self.found.is_some() => {
                self.found = None;
                return Vec::new();
            }
            _ => {}
        }
        match self.focus {
            // No room to write in (a public one you are not in): the keys are the rooms'.
            Focus::Input if self.shown.is_none() => self.on_rooms_key(key),
            Focus::Input => self.on_input_key(key),
            Focus::Messages => self.on_messages_key(key),
            Focus::Rooms => self.on_rooms_key(key),
        }
    }

    pub(super) fn page(&mut self, up: bool) -> Vec<Effect> {
        let near_top = self.shown.as_mut().is_some_and(|s| s.page(up));
        if near_top {
            self.load_older()
        } else {
            Vec::new()
        }
    }

    pub(super) fn scroll(&mut self, delta: isize) -> Vec<Effect> {
        let near_top = self.shown.as_mut().is_some_and(|s| s.scroll_by(delta));
        if near_top {
            self.load_older()
        } else {
            Vec::new()
        }
    }

    fn on_input_key(&mut self, key: Key) -> Vec<Effect> {
        if key.code != KeyCode::Tab {
            self.compose.end_completion();
        }
        match key.code {
            KeyCode::Tab => {
                let members = self
                    .shown
                    .as_ref()
                    .map(|s| s.members.clone())
                    .unwrap_or_default();
                if !self.compose.complete(&members, self.me.as_deref()) {
                    self.say(
                        Level::Info,
                        "Tab completes a name after @; Shift-Tab goes to the messages",
                    );
                }
                return Vec::new();
            }
            KeyCode::BackTab => {
                self.focus_messages();
                return Vec::new();
            }
            KeyCode::Up if self.compose.input.text().is_empty() => return self.edit_last(),
            KeyCode::Esc if self.compose.draft != Draft::New => {
                if matches!(self.compose.draft, Draft::Edit(_)) {
                    self.compose.input.take();
                }
                self.compose.draft = Draft::New;
                return Vec::new();
            }
            KeyCode::Esc => {
                self.focus_messages();
                return Vec::new();
            }
            _ => {}
        }
        match self.compose.input.handle(key) {
            LineEdit::Submit => self.submit(),
            LineEdit::Cancel => {
                self.compose.clear();
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Focus the messages, the newest selected.
    fn focus_messages(&mut self) {
        self.focus = Focus::Messages;
        if self.selected.is_none() {
            self.selected = self.listed().last().map(|m| m.seq);
        }
    }

    fn on_messages_key(&mut self, key: Key) -> Vec<Effect> {
        match key.code {
            KeyCode::Up => return self.move_selection(-1),
            KeyCode::Down => return self.move_selection(1),
            KeyCode::Home => return self.move_selection(isize::MIN / 2),
            KeyCode::End => return self.move_selection(isize::MAX / 2),
            KeyCode::Enter | KeyCode::Esc | KeyCode::Tab => self.focus = Focus::Input,
            KeyCode::Left | KeyCode::BackTab => self.focus = Focus::Rooms,
            KeyCode::Char('r') => return self.reply_selected(),
            KeyCode::Char('e') => return self.edit_selected(),
            KeyCode::Char('d') | KeyCode::Delete => return self.delete_selected(),
            KeyCode::Char('y') => {
                if let Some(message) = self.selected_message() {
                    return vec![Effect::Copy(message.text.clone())];
                }
            }
            _ => return self.room_command(key),
        }
        Vec::new()
    }

    fn on_rooms_key(&mut self, key: Key) -> Vec<Effect> {
        match key.code {
            KeyCode::Up => return self.move_room(-1),
            KeyCode::Down => return self.move_room(1),
            KeyCode::Home => return self.move_room(isize::MIN / 2),
            KeyCode::End => return self.move_room(isize::MAX / 2),
            KeyCode::Enter => match self.selected_room() {
                Some(info) if !info.joined => {
                    let room = info.room.clone();
                    return self.join(room);
                }
                _ => self.focus = Focus::Input,
            },
            KeyCode::Right | KeyCode::Tab => self.focus_messages(),
            KeyCode::Esc | KeyCode::BackTab => self.focus = Focus::Input,
            _ => return self.room_command(key),
        }
        Vec::new()
    }

    pub(super) fn start_search(&mut self) -> Vec<Effect> {
        if self.shown.is_none() {
            self.say(
                Level::Info,
                "show a room you are in first, then / searches it",
            );
            return Vec::new();
        }
        let query = self
            .found
            .as_ref()
            .map(|f| f.query.clone())
            .unwrap_or_default();
        self.search = Some(LineInput::new(query));
        Vec::new()
    }

    fn on_search_key(&mut self, key: Key) -> Vec<Effect> {
        let Some(search) = self.search.as_mut() else {
            return Vec::new();
        };
        match search.handle(key) {
            LineEdit::Submit => {
                let query = search.text().trim().to_owned();
                self.search = None;
                let Some(room) = self.shown.as_ref().map(|s| s.room.clone()) else {
                    return Vec::new();
                };
                if query.is_empty() {
                    self.found = None;
                    return Vec::new();
                }
                self.found = Some(Found {
                    query: query.clone(),
                    messages: None,
                });
                self.selected = None;
                let history = chat::History {
                    room,
                    limit: Some(PAGE),
                    search: Some(query),
                    ..Default::default()
                };
                let (era, n) = (self.era, self.searches.ask());
                let search = self
                    .requests
                    .call(&history, move |answer| Msg::Searched(era, n, answer));
                vec![search]
            }
            LineEdit::Cancel => {
                self.search = None;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }
}
