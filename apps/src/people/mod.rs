//! People: you and everyone you share a room with, each with a coloured dot (online, away,
//! offline and since when) and their status text, kept live by `presence.changed`. Enter
//! starts a direct message in a Chat window; `a` says you are away (or back), `s` sets
//! your status text. It acts as the chat app, whose manifest grants presence.

mod view;

use std::collections::HashMap;

use aether_proto::ErrorBody;
use aether_proto::api::presence::{self, Person, State};
use aether_proto::api::{chat, sys};
use serde_json::Value;

use crate::app::{
    App, AppKind, Effect, Event, Hint, Level, Payload, Ticket, Tickets, decode, hint,
};
use crate::key::{Key, KeyCode};
use crate::widgets::ListWindow;

#[derive(Debug, Clone)]
enum Pending {
    Whoami,
    List,
    Set,
    Status,
    /// The direct-message room with this user, to open in Chat.
    Direct(String),
}

pub struct People {
    tickets: Tickets,
    pending: HashMap<Ticket, Pending>,
    events: Option<Ticket>,
    pub(crate) me: Option<String>,
    /// `None` until the list came; yours first, then online, away, offline.
    pub(crate) people: Option<Vec<Person>>,
    pub(crate) list: ListWindow,
    pub(crate) message: Option<(Level, String)>,
}

impl People {
    pub fn new() -> People {
        People {
            tickets: Tickets::default(),
            pending: HashMap::new(),
            events: None,
            me: None,
            people: None,
            list: ListWindow::default(),
            message: None,
        }
    }

    fn request<C: aether_proto::api::Call>(&mut self, pending: Pending, call: &C) -> Vec<Effect> {
        let ticket = self.tickets.issue();
        self.pending.insert(ticket, pending);
        vec![Effect::request(ticket, call)]
    }

    fn say(&mut self, level: Level, text: impl Into<String>) {
        self.message = Some((level, text.into()));
    }

    fn refresh(&mut self) -> Vec<Effect> {
        self.pending.retain(|_, p| !matches!(p, Pending::List));
        self.request(Pending::List, &presence::List {})
    }

    pub(crate) fn people(&self) -> &[Person] {
        self.people.as_deref().unwrap_or_default()
    }

    fn selected(&self) -> Option<&Person> {
        self.people().get(self.list.selected)
    }

    fn mine(&self) -> Option<&Person> {
        let me = self.me.as_deref()?;
        self.people().iter().find(|p| p.user == me)
    }

    /// Keep the list in its order (you, then by state, then by name), the selection on
    /// the same person.
    fn set_people(&mut self, mut people: Vec<Person>) {
        let keep = self.selected().map(|p| p.user.clone());
        let me = self.me.clone();
        people.sort_by_key(|p| {
            let rank = match p.state {
                State::Online => 1,
                State::Away => 2,
                State::Offline => 3,
            };
            (Some(&p.user) != me.as_ref(), rank, p.user.clone())
        });
        let index = keep
            .and_then(|user| people.iter().position(|p| p.user == user))
            .unwrap_or(self.list.selected);
        let len = people.len();
        self.people = Some(people);
        self.list.select(index, len);
    }

    fn changed(&mut self, person: Person) {
        let mut people = self.people.clone().unwrap_or_default();
        match people.iter_mut().find(|p| p.user == person.user) {
            Some(known) => *known = person,
            None => people.push(person),
        }
        self.set_people(people);
    }

    fn on_key(&mut self, key: Key) -> Vec<Effect> {
        let len = self.people().len();
        match key.code {
            KeyCode::Down | KeyCode::Char('j') => self.list.move_by(1, len),
            KeyCode::Up | KeyCode::Char('k') => self.list.move_by(-1, len),
            KeyCode::Home => self.list.move_by(isize::MIN / 2, len),
            KeyCode::End => self.list.move_by(isize::MAX / 2, len),
            KeyCode::Enter | KeyCode::Char('m') => return self.message_selected(),
            KeyCode::Char('a') => return self.toggle_away(),
            KeyCode::Char('s') => {
                let initial = self.mine().and_then(|p| p.text.clone()).unwrap_or_default();
                let ticket = self.tickets.issue();
                self.pending.insert(ticket, Pending::Status);
                return vec![Effect::Prompt {
                    ticket,
                    question: "Your status, for those who share a room with you (empty clears it)"
                        .into(),
                    initial,
                    secret: false,
                }];
            }
            KeyCode::Char('r') | KeyCode::F(5) => return self.refresh(),
            KeyCode::Esc => self.message = None,
            _ => {}
        }
        Vec::new()
    }

    /// Enter: the direct-message room with the selected person, opened in Chat.
    fn message_selected(&mut self) -> Vec<Effect> {
        let Some(user) = self.selected().map(|p| p.user.clone()) else {
            return Vec::new();
        };
        if self.me.as_deref() == Some(user.as_str()) {
            self.say(Level::Info, "that is you: pick someone else to write to");
            return Vec::new();
        }
        self.request(Pending::Direct(user.clone()), &chat::Direct { user })
    }

    fn toggle_away(&mut self) -> Vec<Effect> {
        let away = self.mine().is_none_or(|p| p.state != State::Away);
        self.request(
            Pending::Set,
            &presence::Set {
                away: Some(away),
                text: None,
            },
        )
    }

    fn on_answer(&mut self, pending: Pending, result: Result<Payload, ErrorBody>) -> Vec<Effect> {
        match pending {
            Pending::Whoami => {
                if let Ok(me) = decode::<sys::Whoami>(result) {
                    self.me = Some(me.user.name);
                    let people = self.people.take().unwrap_or_default();
                    if !people.is_empty() {
                        self.set_people(people);
                    }
                }
            }
            Pending::List => match decode::<presence::List>(result) {
                Ok(list) => self.set_people(list.people),
                Err(e) => self.say(Level::Error, format!("who is around? {}", e.msg)),
            },
            Pending::Set | Pending::Status => match decode::<presence::Set>(result) {
                Ok(person) => {
                    self.message = None;
                    self.changed(person);
                }
                Err(e) => self.say(Level::Error, format!("not changed: {}", e.msg)),
            },
            Pending::Direct(user) => match decode::<chat::Direct>(result) {
                Ok(room) => {
                    return vec![Effect::Open {
                        app: AppKind::Chat,
                        path: room.room,
                        line: None,
                    }];
                }
                Err(e) => self.say(Level::Error, format!("no message to {user}: {}", e.msg)),
            },
        }
        Vec::new()
    }
}

impl Default for People {
    fn default() -> Self {
        People::new()
    }
}

impl App for People {
    fn kind(&self) -> AppKind {
        AppKind::People
    }

    fn title(&self) -> String {
        let online = self
            .people()
            .iter()
            .filter(|p| p.state != State::Offline && Some(&p.user) != self.me.as_ref())
            .count();
        match online {
            0 => "People".into(),
            n => format!("People: {n} around"),
        }
    }

    fn start(&mut self) -> Vec<Effect> {
        let ticket = self.tickets.issue();
        self.events = Some(ticket);
        let mut effects = vec![Effect::Subscribe {
            ticket,
            pattern: presence::SUBSCRIBE.to_owned(),
        }];
        effects.extend(self.request(Pending::Whoami, &sys::Whoami {}));
        effects.extend(self.refresh());
        effects
    }

    fn update(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Key(key) => self.on_key(key),
            Event::Answer { ticket, result } => match self.pending.remove(&ticket) {
                Some(pending) => self.on_answer(pending, result),
                None => Vec::new(),
            },
            Event::Delivery {
                ticket,
                topic,
                data,
            } if Some(ticket) == self.events => {
                if topic == presence::CHANGED
                    && let Ok(person) = serde_json::from_value::<Person>(data)
                {
                    self.changed(person);
                }
                Vec::new()
            }
            Event::SubscribeFailed { error, .. } => {
                let text = format!("changes will not show up: {}", error.msg);
                self.say(Level::Warn, text);
                Vec::new()
            }
            Event::Prompted { ticket, text } => match (self.pending.remove(&ticket), text) {
                (Some(Pending::Status), Some(text)) => self.request(
                    Pending::Status,
                    &presence::Set {
                        away: None,
                        text: Some(text.trim().to_owned()),
                    },
                ),
                _ => Vec::new(),
            },
            Event::Reconnected => self.refresh(),
            _ => Vec::new(),
        }
    }

    fn view(
        &self,
        area: ratatui::layout::Rect,
        buf: &mut ratatui::buffer::Buffer,
        cx: &crate::app::ViewCx,
    ) {
        view::render(self, area, buf, cx)
    }

    fn hints(&self) -> Vec<Hint> {
        vec![
            hint("↑ ↓ j k", "move"),
            hint("Enter m", "write to them: a direct message in Chat"),
            hint("a", "say you are away, or back"),
            hint("s", "set your status text (empty clears it)"),
            hint("r F5", "refresh"),
        ]
    }

    fn save(&self) -> Value {
        Value::Null
    }
}

#[cfg(test)]
mod tests;
