//! `chat.*` and `presence.*`: rooms, messages and who is around. Membership is the daemon's:
//! a room's events are published only into its members' own namespaces (the hub keeps every
//! user's traffic apart), so a subscription to `chat.>` receives the rooms one is in and no
//! others, and history and posting check membership in the store.

mod limit;
pub mod presence;
mod rows;

use std::sync::Arc;

use serde::Serialize;

use aether_proto::api::Call as _;
use aether_proto::api::chat::{self as api, Message, RoomInfo, room_problem};
use aether_proto::{ErrorBody, ErrorCode};

use super::{Handler, Incoming, OnBehalf, Publisher, Reply, Seat};
use crate::identity::{Identity, users};
use crate::store::Store;

use limit::RateLimit;
use rows::Room;

pub struct ChatService {
    store: Store,
    publisher: Publisher,
    /// Posts, edits and deletes: each reaches every member.
    posts: RateLimit,
    /// Joining, leaving and invitations: each is told to the room.
    moves: RateLimit,
    /// New rooms.
    rooms_made: RateLimit,
    presence: presence::Presence,
}

pub fn start(seat: Seat, store: Store, identity: Identity) {
    let publisher = seat.publisher();
    let service = Arc::new(ChatService {
        presence: presence::Presence::new(store.clone(), publisher.clone()),
        store,
        publisher,
        posts: RateLimit::new(10.0, 30.0),
        moves: RateLimit::new(1.0, 10.0),
        rooms_made: RateLimit::new(0.2, 10.0),
    });
    presence::watch(service.clone(), identity, seat.shutdown(), &seat.tasks());
    seat.run(service);
}

impl Handler for ChatService {
    async fn handle(self: &Arc<Self>, request: &Incoming) -> Reply {
        match request.topic.as_str() {
            api::Rooms::TOPIC => request.call(|ask| self.rooms(request, ask)).await,
            api::Create::TOPIC => request.call(|ask| self.create(request, ask)).await,
            api::Join::TOPIC => request.call(|ask| self.join(request, ask)).await,
            api::Leave::TOPIC => request.call(|ask| self.leave(request, ask)).await,
            api::Invite::TOPIC => request.call(|ask| self.invite(request, ask)).await,
            api::Direct::TOPIC => request.call(|ask| self.direct(request, ask)).await,
            api::Post::TOPIC => request.call(|ask| self.post(request, ask)).await,
            api::Edit::TOPIC => request.call(|ask| self.edit(request, ask)).await,
            api::Delete::TOPIC => request.call(|ask| self.delete(request, ask)).await,
            api::History::TOPIC => request.call(|ask| self.history(request, ask)).await,
            api::MarkRead::TOPIC => request.call(|ask| self.mark_read(request, ask)).await,
            api::Members::TOPIC => request.call(|ask| self.members(request, ask)).await,
            topic if topic.starts_with("presence.") => self.presence.handle(request).await,
            _ => Err(request.unknown()),
        }
    }
}

fn bad(msg: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::BadFrame, msg)
}

fn internal(e: impl std::fmt::Display) -> ErrorBody {
    ErrorBody::new(ErrorCode::Internal, e.to_string())
}

/// `rate_limited`, saying what and when to try again.
fn limited(what: &str, wait: std::time::Duration) -> ErrorBody {
    ErrorBody::new(
        ErrorCode::RateLimited,
        format!("{what}; try again in {:.1} s", wait.as_secs_f64()),
    )
    .retry_after(wait)
}

fn not_member(room: &str) -> ErrorBody {
    // The same answer whether the room exists or not: a private room's name stays private.
    ErrorBody::new(
        ErrorCode::Forbidden,
        format!("you are not a member of room {room:?} (or it does not exist)"),
    )
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn check_room(room: &str) -> Result<(), ErrorBody> {
    match room_problem(room) {
        Some(problem) => Err(bad(problem)),
        None => Ok(()),
    }
}

fn check_text(text: &str) -> Result<(), ErrorBody> {
    if text.trim().is_empty() {
        return Err(bad("the message is empty"));
    }
    if text.len() > api::MAX_TEXT_BYTES {
        return Err(ErrorBody::new(
            ErrorCode::TooLarge,
            format!(
                "the message is {} bytes; at most {}",
                text.len(),
                api::MAX_TEXT_BYTES
            ),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(bad("the message holds control characters"));
    }
    Ok(())
}

/// `@name` words in a message.
fn mentioned_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '@' | '_' | '-' | '.')))
        .filter_map(|word| word.strip_prefix('@'))
        .map(|name| name.trim_end_matches('.').to_owned())
        .filter(|name| !name.is_empty())
        .collect();
    names.sort();
    names.dedup();
    names
}

impl ChatService {
    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> Result<T, ErrorBody> + Send + 'static,
    ) -> Result<T, ErrorBody> {
        self.store.call(move |c| Ok(f(c))).await.map_err(internal)?
    }

    /// Publish a room event to its members, each in their own namespace.
    fn to_members<T: Serialize>(
        &self,
        on: &OnBehalf,
        members: &[i64],
        event: api::RoomEventKind,
        room: &str,
        data: &T,
    ) {
        let topic = api::RoomEvents::topic_of(room, event);
        self.publisher.publish_to_users(on, members, &topic, data);
    }

    /// Every room of yours first, whatever others make; then a page of public rooms.
    async fn rooms(&self, request: &Incoming, ask: api::Rooms) -> Result<api::RoomList, ErrorBody> {
        let limit = ask.public_limit.unwrap_or(200);
        if limit == 0 || limit > api::MAX_PUBLIC_PAGE {
            return Err(bad(format!(
                "public_limit is 1 to {}",
                api::MAX_PUBLIC_PAGE
            )));
        }
        let user_id = request.caller.user_id;
        let after = ask.public_after.unwrap_or_default();
        self.db(move |c| {
            let mut list = vec![];
            // On a later page, only public rooms: yours came with the first.
            if after.is_empty() {
                for room in &rows::rooms_of(c, user_id).map_err(internal)? {
                    list.push(rows::info(c, room, user_id).map_err(internal)?);
                }
            }
            // One more than asked says whether another page follows.
            let mut public = rows::public_rooms(c, user_id, &after, limit + 1).map_err(internal)?;
            let more = public.len() > limit;
            public.truncate(limit);
            let more_public = more
                .then(|| public.last().map(|r| r.name.clone()))
                .flatten();
            for room in &public {
                list.push(rows::info(c, room, user_id).map_err(internal)?);
            }
            Ok(api::RoomList {
                rooms: list,
                more_public,
            })
        })
        .await
    }

    async fn create(&self, request: &Incoming, ask: api::Create) -> Result<RoomInfo, ErrorBody> {
        check_room(&ask.room)?;
        if api::is_direct(&ask.room) {
            return Err(bad("room names starting with dm- are for direct messages"));
        }
        if request.caller.guest {
            return Err(ErrorBody::new(
                ErrorCode::Forbidden,
                "guests cannot make rooms",
            ));
        }
        if let Some(topic) = &ask.topic
            && (topic.len() > 200 || topic.chars().any(char::is_control))
        {
            return Err(bad("the topic is at most 200 bytes, on one line"));
        }
        let user_id = request.caller.user_id;
        let room = Room {
            name: ask.room.clone(),
            topic: ask.topic.clone(),
            private: ask.private,
            dm: None,
            last_seq: 0,
        };
        self.rooms_made
            .take(user_id)
            .map_err(|wait| limited("you are making rooms quickly", wait))?;
        self.db(move |c| {
            let tx = c.transaction().map_err(internal)?;
            if !rows::create_room(&tx, &room, user_id, now_ms()).map_err(internal)? {
                // A public room is there for all to see; a private one must not say it is.
                let public = rows::room(&tx, &room.name)
                    .map_err(internal)?
                    .is_some_and(|r| !r.private);
                return Err(ErrorBody::new(
                    ErrorCode::Conflict,
                    if public {
                        format!("room {:?} exists already: join it", room.name)
                    } else {
                        format!("the name {:?} is not available: choose another", room.name)
                    },
                ));
            }
            rows::add_member(&tx, &room.name, user_id, now_ms()).map_err(internal)?;
            tx.commit().map_err(internal)?;
            rows::info(c, &room, user_id).map_err(internal)
        })
        .await
    }

    /// The room, if `user_id` is in it.
    async fn member_room(&self, room: &str, user_id: i64) -> Result<Room, ErrorBody> {
        check_room(room)?;
        let name = room.to_owned();
        self.db(move |c| {
            let found = rows::room(c, &name).map_err(internal)?;
            match found {
                Some(room) if rows::is_member(c, &name, user_id).map_err(internal)? => Ok(room),
                _ => Err(not_member(&name)),
            }
        })
        .await
    }

    async fn join(&self, request: &Incoming, ask: api::Join) -> Result<RoomInfo, ErrorBody> {
        check_room(&ask.room)?;
        self.moves
            .take(request.caller.user_id)
            .map_err(|wait| limited("you are joining and leaving rooms quickly", wait))?;
        let user_id = request.caller.user_id;
        let name = ask.room.clone();
        let (info, members, joined) = self
            .db(move |c| {
                let room = match rows::room(c, &name).map_err(internal)? {
                    Some(room) if !room.private => room,
                    // A private room is joined by invitation only, and does not say it exists.
                    _ => {
                        return Err(ErrorBody::new(
                            ErrorCode::NotFound,
                            format!("no public room {name:?}: a private room needs an invitation"),
                        ));
                    }
                };
                let joined = rows::add_member(c, &name, user_id, now_ms()).map_err(internal)?;
                let members = rows::member_ids(c, &name).map_err(internal)?;
                Ok((
                    rows::info(c, &room, user_id).map_err(internal)?,
                    members,
                    joined,
                ))
            })
            .await?;
        if joined {
            let me = (request.caller.user_id, request.caller.user.as_str());
            self.announce_member(request, &members, &ask.room, me, true);
        }
        Ok(info)
    }

    /// Tell a room's members who joined or left; those who now share it learn the joiner's
    /// presence.
    fn announce_member(
        &self,
        request: &Incoming,
        members: &[i64],
        room: &str,
        (user_id, user): (i64, &str),
        joined: bool,
    ) {
        let event = api::MemberEvent {
            room: room.to_owned(),
            user: user.to_owned(),
            joined,
        };
        let on = request.on_behalf();
        self.to_members(&on, members, api::RoomEventKind::Member, room, &event);
        if joined {
            self.presence.tell(&on, members, user_id, user);
        }
    }

    async fn leave(&self, request: &Incoming, ask: api::Leave) -> Result<api::Left, ErrorBody> {
        self.moves
            .take(request.caller.user_id)
            .map_err(|wait| limited("you are joining and leaving rooms quickly", wait))?;
        self.member_room(&ask.room, request.caller.user_id).await?;
        let user_id = request.caller.user_id;
        let name = ask.room.clone();
        let members = self
            .db(move |c| {
                rows::remove_member(c, &name, user_id).map_err(internal)?;
                rows::member_ids(c, &name).map_err(internal)
            })
            .await?;
        // The one leaving hears it too.
        let mut told = members;
        told.push(user_id);
        let me = (request.caller.user_id, request.caller.user.as_str());
        self.announce_member(request, &told, &ask.room, me, false);
        Ok(api::Left { room: ask.room })
    }

    async fn invite(
        &self,
        request: &Incoming,
        ask: api::Invite,
    ) -> Result<api::Invited, ErrorBody> {
        self.moves
            .take(request.caller.user_id)
            .map_err(|wait| limited("you are inviting quickly", wait))?;
        let room = self.member_room(&ask.room, request.caller.user_id).await?;
        if room.dm.is_some() {
            return Err(bad(
                "a direct message is between two users; make a room for more",
            ));
        }
        if request.caller.guest {
            return Err(ErrorBody::new(ErrorCode::Forbidden, "guests cannot invite"));
        }
        let (name, user) = (ask.room.clone(), ask.user.clone());
        let (members, added, invitee) = self
            .db(move |c| {
                let Some(invitee) = users::by_name(c, &user).map_err(internal)?.map(|u| u.id)
                else {
                    return Err(ErrorBody::new(
                        ErrorCode::NotFound,
                        format!("no user {user:?}"),
                    ));
                };
                let added = rows::add_member(c, &name, invitee, now_ms()).map_err(internal)?;
                Ok((
                    rows::member_ids(c, &name).map_err(internal)?,
                    added,
                    invitee,
                ))
            })
            .await?;
        if added {
            self.announce_member(request, &members, &ask.room, (invitee, &ask.user), true);
        }
        Ok(api::Invited {
            room: ask.room,
            user: ask.user,
        })
    }

    async fn direct(&self, request: &Incoming, ask: api::Direct) -> Result<RoomInfo, ErrorBody> {
        if request.caller.guest {
            return Err(ErrorBody::new(
                ErrorCode::Forbidden,
                "guests cannot send direct messages",
            ));
        }
        let me = request.caller.user_id;
        let user = ask.user.clone();
        let (info, made, members) = self
            .db(move |c| {
                let Some(users::User {
                    id: other, guest, ..
                }) = users::by_name(c, &user).map_err(internal)?
                else {
                    return Err(ErrorBody::new(
                        ErrorCode::NotFound,
                        format!("no user {user:?}"),
                    ));
                };
                if other == me {
                    return Err(bad("a direct message needs someone else"));
                }
                if guest {
                    return Err(ErrorBody::new(
                        ErrorCode::Forbidden,
                        format!("{user:?} is a guest; guests take no direct messages"),
                    ));
                }
                let (a, b) = (me.min(other), me.max(other));
                let room = Room {
                    name: format!("dm-{a}-{b}"),
                    topic: None,
                    private: true,
                    dm: Some((a, b)),
                    last_seq: 0,
                };
                let tx = c.transaction().map_err(internal)?;
                let made = rows::create_room(&tx, &room, me, now_ms()).map_err(internal)?;
                rows::add_member(&tx, &room.name, a, now_ms()).map_err(internal)?;
                rows::add_member(&tx, &room.name, b, now_ms()).map_err(internal)?;
                tx.commit().map_err(internal)?;
                let stored = rows::room(c, &room.name).map_err(internal)?.unwrap_or(room);
                Ok((
                    rows::info(c, &stored, me).map_err(internal)?,
                    made,
                    vec![a, b],
                ))
            })
            .await?;
        if made {
            // Each learns the other's presence.
            let on = request.on_behalf();
            self.presence.tell(&on, &members, me, &request.caller.user);
            if let Some(other) = members.iter().find(|id| **id != me)
                && let Some(name) = &info.with
            {
                self.presence.tell(&on, &members, *other, name);
            }
        }
        Ok(info)
    }

    async fn post(&self, request: &Incoming, ask: api::Post) -> Result<Message, ErrorBody> {
        check_text(&ask.text)?;
        let user_id = request.caller.user_id;
        if let Err(wait) = self.posts.take(user_id) {
            return Err(ErrorBody::new(
                ErrorCode::RateLimited,
                format!(
                    "too many messages at once: wait {} ms (retry_after_ms)",
                    wait.as_millis()
                ),
            )
            .retry_after(wait));
        }
        self.member_room(&ask.room, user_id).await?;
        let mut message = Message {
            room: ask.room.clone(),
            seq: 0,
            user: request.caller.user.clone(),
            text: ask.text,
            at_ms: now_ms(),
            edited_ms: None,
            deleted: false,
            reply_to: ask.reply_to,
            mentions: vec![],
        };
        let names = mentioned_names(&message.text);
        let (message, members, mentioned) = self
            .db(move |c| {
                if let Some(parent) = message.reply_to
                    && rows::message(c, &message.room, parent)
                        .map_err(internal)?
                        .is_none()
                {
                    return Err(ErrorBody::new(
                        ErrorCode::NotFound,
                        format!("no message {parent} in {} to reply to", message.room),
                    ));
                }
                let members = rows::member_ids(c, &message.room).map_err(internal)?;
                let mut mentioned = vec![];
                for name in names {
                    if let Some(id) = users::by_name(c, &name).map_err(internal)?.map(|u| u.id)
                        && members.contains(&id)
                        && id != user_id
                    {
                        mentioned.push(id);
                        message.mentions.push(name);
                    }
                }
                let tx = c.transaction().map_err(internal)?;
                message.seq = rows::append(&tx, &message, user_id, &mentioned).map_err(internal)?;
                tx.commit().map_err(internal)?;
                Ok((message, members, mentioned))
            })
            .await?;
        let on = request.on_behalf();
        self.to_members(
            &on,
            &members,
            api::RoomEventKind::Message,
            &message.room,
            &message,
        );
        if !mentioned.is_empty() {
            self.publisher
                .publish_to_users(&on, &mentioned, api::MENTIONS, &message);
        }
        Ok(message)
    }

    /// A message of the caller's, in a room they are in.
    async fn own_message(
        &self,
        request: &Incoming,
        room: &str,
        seq: u64,
    ) -> Result<Vec<i64>, ErrorBody> {
        self.member_room(room, request.caller.user_id).await?;
        let (name, user_id) = (room.to_owned(), request.caller.user_id);
        self.db(
            move |c| match rows::message(c, &name, seq).map_err(internal)? {
                None => Err(ErrorBody::new(
                    ErrorCode::NotFound,
                    format!("no message {seq} in {name}"),
                )),
                Some((m, _)) if m.deleted => Err(ErrorBody::new(
                    ErrorCode::Conflict,
                    format!("message {seq} is deleted"),
                )),
                Some((_, author)) if author != user_id => Err(ErrorBody::new(
                    ErrorCode::Forbidden,
                    format!("message {seq} is not yours: only its author may change it"),
                )),
                Some(_) => rows::member_ids(c, &name).map_err(internal),
            },
        )
        .await
    }

    async fn edit(&self, request: &Incoming, ask: api::Edit) -> Result<Message, ErrorBody> {
        check_text(&ask.text)?;
        self.posts
            .take(request.caller.user_id)
            .map_err(|wait| limited("too many changes at once", wait))?;
        let members = self.own_message(request, &ask.room, ask.seq).await?;
        let (name, seq, text) = (ask.room.clone(), ask.seq, ask.text.clone());
        let message = self
            .db(move |c| {
                rows::set_text(c, &name, seq, Some(&text), now_ms()).map_err(internal)?;
                rows::message(c, &name, seq)
                    .map_err(internal)?
                    .map(|(m, _)| m)
                    .ok_or_else(|| internal("the edited message is gone"))
            })
            .await?;
        self.to_members(
            &request.on_behalf(),
            &members,
            api::RoomEventKind::Edit,
            &ask.room,
            &message,
        );
        Ok(message)
    }

    async fn delete(&self, request: &Incoming, ask: api::Delete) -> Result<Message, ErrorBody> {
        self.posts
            .take(request.caller.user_id)
            .map_err(|wait| limited("too many changes at once", wait))?;
        let members = self.own_message(request, &ask.room, ask.seq).await?;
        let (name, seq) = (ask.room.clone(), ask.seq);
        let message = self
            .db(move |c| {
                rows::set_text(c, &name, seq, None, now_ms()).map_err(internal)?;
                rows::message(c, &name, seq)
                    .map_err(internal)?
                    .map(|(m, _)| m)
                    .ok_or_else(|| internal("the deleted message is gone"))
            })
            .await?;
        self.to_members(
            &request.on_behalf(),
            &members,
            api::RoomEventKind::Delete,
            &ask.room,
            &message,
        );
        Ok(message)
    }

    async fn history(&self, request: &Incoming, ask: api::History) -> Result<api::Page, ErrorBody> {
        let limit = ask.limit.unwrap_or(50);
        if limit == 0 || limit > api::MAX_PAGE {
            return Err(bad(format!("limit is 1 to {}", api::MAX_PAGE)));
        }
        if let Some(search) = &ask.search
            && (search.trim().is_empty() || search.len() > 200)
        {
            return Err(bad("search is 1 to 200 bytes"));
        }
        let room = self.member_room(&ask.room, request.caller.user_id).await?;
        let before = ask.before.unwrap_or(room.last_seq + 1);
        self.db(move |c| {
            let (messages, more) = rows::page(
                c,
                &ask.room,
                before,
                limit,
                ask.thread,
                ask.search.as_deref().map(str::trim),
            )
            .map_err(internal)?;
            Ok(api::Page {
                room: ask.room,
                messages,
                more,
            })
        })
        .await
    }

    async fn mark_read(
        &self,
        request: &Incoming,
        ask: api::MarkRead,
    ) -> Result<RoomInfo, ErrorBody> {
        let user_id = request.caller.user_id;
        let room = self.member_room(&ask.room, user_id).await?;
        let seq = ask.seq.unwrap_or(room.last_seq).min(room.last_seq);
        let info = self
            .db(move |c| {
                rows::mark_read(c, &room.name, user_id, seq).map_err(internal)?;
                let room = rows::room(c, &room.name).map_err(internal)?.unwrap_or(room);
                rows::info(c, &room, user_id).map_err(internal)
            })
            .await?;
        // The reader's other windows and terminals count it read too.
        let name = info.room.clone();
        self.to_members(
            &request.on_behalf(),
            &[user_id],
            api::RoomEventKind::Read,
            &name,
            &info,
        );
        Ok(info)
    }

    async fn members(
        &self,
        request: &Incoming,
        ask: api::Members,
    ) -> Result<api::MemberList, ErrorBody> {
        self.member_room(&ask.room, request.caller.user_id).await?;
        let name = ask.room.clone();
        let members = self
            .db(move |c| rows::member_names(c, &name).map_err(internal))
            .await?;
        Ok(api::MemberList {
            room: ask.room,
            members,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_found() {
        assert_eq!(
            mentioned_names("hi @ana and @bob., not a@b"),
            ["ana", "bob"]
        );
        assert!(mentioned_names("no one").is_empty());
    }
}
