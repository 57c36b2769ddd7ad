//! Presence: online while any connection of the user is open (the identity's live
//! connections say when that changes), away when the client says so, offline with when last
//! seen. A change goes to the users who share a room with that user, each in their own
//! namespace.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use aether_proto::api::Call as _;
use aether_proto::api::presence::{self as api, Person, State};
use aether_proto::{ErrorBody, ErrorCode};

use super::{ChatService, internal, now_ms, rows};
use crate::identity::{Caller, Identity, users};
use crate::services::{Incoming, OnBehalf, Publisher, Reply};
use crate::store::Store;

#[derive(Debug, Clone, Default)]
struct Seen {
    connections: usize,
    away: bool,
    text: Option<String>,
    last_seen_ms: Option<u64>,
}

impl Seen {
    fn state(&self) -> State {
        match (self.connections, self.away) {
            (0, _) => State::Offline,
            (_, true) => State::Away,
            (_, false) => State::Online,
        }
    }
}

pub struct Presence {
    store: Store,
    publisher: Publisher,
    seen: Mutex<HashMap<i64, Seen>>,
    /// `presence.set`: each change is told to everyone who shares a room.
    changes: super::limit::RateLimit,
}

impl Presence {
    pub fn new(store: Store, publisher: Publisher) -> Presence {
        Presence {
            store,
            publisher,
            seen: Mutex::default(),
            changes: super::limit::RateLimit::new(1.0, 10.0),
        }
    }

    pub async fn handle(&self, request: &Incoming) -> Reply {
        match request.topic.as_str() {
            api::Set::TOPIC => request.call(|ask| self.set(request, ask)).await,
            api::List::TOPIC => request.call(|_: api::List| self.list(request)).await,
            _ => Err(ErrorBody::new(
                ErrorCode::NotFound,
                format!("no service answers {}", request.topic),
            )),
        }
    }

    fn person(&self, user_id: i64, name: &str) -> Person {
        let seen = self.seen.lock().get(&user_id).cloned().unwrap_or_default();
        Person {
            user: name.to_owned(),
            state: seen.state(),
            text: seen.text.clone(),
            last_seen_ms: (seen.state() == State::Offline)
                .then_some(seen.last_seen_ms)
                .flatten(),
        }
    }

    async fn set(&self, request: &Incoming, ask: api::Set) -> Result<Person, ErrorBody> {
        if let Some(text) = &ask.text
            && (text.len() > 100 || text.chars().any(char::is_control))
        {
            return Err(ErrorBody::new(
                ErrorCode::BadFrame,
                "the status text is at most 100 bytes, on one line",
            ));
        }
        let user_id = request.caller.user_id;
        self.changes
            .take(user_id)
            .map_err(|wait| super::limited("you are changing your presence quickly", wait))?;
        {
            let mut seen = self.seen.lock();
            let me = seen.entry(user_id).or_default();
            if let Some(away) = ask.away {
                me.away = away;
            }
            if let Some(text) = ask.text {
                me.text = (!text.is_empty()).then_some(text);
            }
        }
        let person = self.person(user_id, &request.caller.user);
        self.tell_neighbours(&request.on_behalf(), user_id, &person)
            .await;
        Ok(person)
    }

    async fn list(&self, request: &Incoming) -> Result<api::People, ErrorBody> {
        let user_id = request.caller.user_id;
        let mut people = self
            .store
            .call(move |c| Ok(rows::neighbours(c, user_id)?))
            .await
            .map_err(internal)?;
        if !people.iter().any(|(id, _)| *id == user_id) {
            people.push((user_id, request.caller.user.clone()));
        }
        let mut people: Vec<Person> = people
            .iter()
            .map(|(id, name)| self.person(*id, name))
            .collect();
        people.sort_by(|a, b| a.user.cmp(&b.user));
        Ok(api::People { people })
    }

    /// Tell `users` how `user_id` is now (they just came to share a room).
    pub fn tell(&self, on: &OnBehalf, users: &[i64], user_id: i64, name: &str) {
        let person = self.person(user_id, name);
        self.publisher
            .publish_to_users(on, users, &changed(), &person);
    }

    /// Tell the users sharing a room with `user_id` (and that user) how they are now.
    async fn tell_neighbours(&self, on: &OnBehalf, user_id: i64, person: &Person) {
        let neighbours = self
            .store
            .call(move |c| Ok(rows::neighbours(c, user_id)?))
            .await
            .unwrap_or_default();
        let mut ids: Vec<i64> = neighbours.into_iter().map(|(id, _)| id).collect();
        if !ids.contains(&user_id) {
            ids.push(user_id);
        }
        self.publisher
            .publish_to_users(on, &ids, &changed(), person);
    }

    /// A user's connections changed: online, offline, or no change to tell.
    async fn connections_changed(&self, identity: &Identity, user_id: i64) {
        let count = identity.connections_of(user_id);
        let before = {
            let mut seen = self.seen.lock();
            let me = seen.entry(user_id).or_default();
            let before = me.state();
            me.connections = count;
            if count == 0 {
                me.away = false;
                me.last_seen_ms = Some(now_ms());
            }
            before
        };
        let name = self
            .store
            .call(move |c| Ok(users::by_id(c, user_id)?.map(|u| u.name)))
            .await
            .ok()
            .flatten();
        let Some(name) = name else { return };
        let person = self.person(user_id, &name);
        if person.state != before {
            let on = OnBehalf {
                caller: Arc::new(Caller {
                    user_id,
                    user: name,
                    ..Caller::default()
                }),
                app: "chat".into(),
                origin: None,
            };
            self.tell_neighbours(&on, user_id, &person).await;
        }
    }
}

/// Follow the identity's live connections until shutdown.
pub fn watch(
    service: Arc<ChatService>,
    identity: Identity,
    shutdown: CancellationToken,
    tasks: &TaskTracker,
) {
    let mut changes = identity.connection_changes();
    tasks.spawn(async move {
        loop {
            let user_id = tokio::select! {
                () = shutdown.cancelled() => return,
                change = changes.recv() => match change {
                    Ok(user_id) => user_id,
                    // Missed some: whoever is known is looked at again.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        let known: Vec<i64> = service.presence.seen.lock().keys().copied().collect();
                        for user_id in known {
                            service.presence.connections_changed(&identity, user_id).await;
                        }
                        continue;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            };
            service.presence.connections_changed(&identity, user_id).await;
        }
    });
}

/// Where a change of presence goes.
fn changed() -> String {
    api::PresenceEvents::topic_of(api::PresenceKind::Changed)
}
