//! People: you and everyone you share a room with, each with a coloured dot (online, away,
//! offline and since when) and their status text, kept live by `presence.changed`. Enter
//! starts a direct message in a Chat window; `a` says you are away (or back), `s` sets
//! your status text. It acts as the chat app, whose manifest grants presence.

mod away;
mod view;

pub use away::{AWAY, Away};

use aether_proto::ErrorBody;
use aether_proto::api::presence::{self, Person, State};
use aether_proto::api::{Event as _, chat, sys};
use serde_json::Value;

use app_kit::widgets::ListWindow;
use app_kit::{
    App, AppKind, Effect, Event, Hint, Key, KeyCode, Latest, Level, Registration, Replies,
    Requests, Ticket, hint,
};

/// What the app's asks come back as.
pub enum Msg {
    Whoami(Result<sys::WhoamiAnswer, ErrorBody>),
    /// The list, from the `n`th time it was asked for.
    List(u64, Result<presence::People, ErrorBody>),
    Set(Result<Person, ErrorBody>),
    Status(Option<String>),
    /// The direct-message room with this user, to open in Chat.
    Direct(String, Result<chat::RoomInfo, ErrorBody>),
}

/// The registry's entry for this app.
pub const APP: AppKind = AppKind::of(&Registration {
    name: "people",
    title: "People",
    manifest: "chat",
    standalone: true,
    launcher_key: Some('o'),
    opens: &[],
    launch: |_| Box::new(People::new()),
    restore: |_| Box::new(People::new()),
});

#[derive(Default)]
pub struct People {
    requests: Requests<Msg>,
    lists: Latest,
    events: Option<Ticket>,
    pub(crate) me: Option<String>,
    /// `None` until the list came; yours first, then online, away, offline.
    pub(crate) people: Option<Vec<Person>>,
    pub(crate) list: ListWindow,
    pub(crate) message: Option<(Level, String)>,
}

impl People {
    pub fn new() -> People {
        People::default()
    }

    fn say(&mut self, level: Level, text: impl Into<String>) {
        self.message = Some((level, text.into()));
    }

    fn refresh(&mut self) -> Vec<Effect> {
        let n = self.lists.ask();
        vec![
            self.requests
                .call(&presence::List {}, move |answer| Msg::List(n, answer)),
        ]
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
                let question = "Your status, for those who share a room with you (empty clears it)";
                return vec![self.requests.prompt(question, initial, false, Msg::Status)];
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
        let call = chat::Direct { user: user.clone() };
        vec![
            self.requests
                .call(&call, |answer| Msg::Direct(user, answer)),
        ]
    }

    fn toggle_away(&mut self) -> Vec<Effect> {
        let away = self.mine().is_none_or(|p| p.state != State::Away);
        let call = presence::Set {
            away: Some(away),
            text: None,
        };
        vec![self.requests.call(&call, Msg::Set)]
    }
}

impl Replies for People {
    app_kit::replies_through!(requests: Msg);

    fn on(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Whoami(answer) => {
                if let Ok(me) = answer {
                    self.me = Some(me.user.name);
                    let people = self.people.take().unwrap_or_default();
                    if !people.is_empty() {
                        self.set_people(people);
                    }
                }
            }
            Msg::List(n, _) if !self.lists.take(n) => {}
            Msg::List(_, answer) => match answer {
                Ok(list) => self.set_people(list.people),
                Err(e) => self.say(Level::Error, format!("who is around? {}", e.msg)),
            },
            Msg::Set(answer) => match answer {
                Ok(person) => {
                    self.message = None;
                    self.changed(person);
                }
                Err(e) => self.say(Level::Error, format!("not changed: {}", e.msg)),
            },
            Msg::Status(Some(text)) => {
                let call = presence::Set {
                    away: None,
                    text: Some(text.trim().to_owned()),
                };
                return vec![self.requests.call(&call, Msg::Set)];
            }
            Msg::Status(None) => {}
            Msg::Direct(user, answer) => match answer {
                Ok(room) => {
                    return vec![Effect::Open {
                        app: crate::chat::APP,
                        path: room.room,
                        line: None,
                    }];
                }
                Err(e) => self.say(Level::Error, format!("no message to {user}: {}", e.msg)),
            },
        }
        Vec::new()
    }

    fn on_event(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Key(key) => self.on_key(key),
            Event::Delivery {
                ticket,
                topic,
                data,
            } if Some(ticket) == self.events => {
                if presence::PresenceEvents::parse(&topic) == Some(presence::PresenceKind::Changed)
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
            Event::Reconnected => self.refresh(),
            _ => Vec::new(),
        }
    }
}

impl App for People {
    app_kit::app_plumbing!(APP);

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
        let (ticket, listen) = self.requests.subscribe(presence::SUBSCRIBE);
        self.events = Some(ticket);
        let mut effects = vec![listen];
        effects.push(self.requests.call(&sys::Whoami {}, Msg::Whoami));
        effects.extend(self.refresh());
        effects
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
