//! Chat in the store: rooms, members (with how far each has read), messages keyed by
//! (room, seq) so a page of history is one index range however long the room is, and
//! mentions per user.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use aether_proto::api::chat::{Message, RoomInfo};

use crate::identity::users;

/// A room as stored.
#[derive(Debug, Clone)]
pub struct Room {
    pub name: String,
    pub topic: Option<String>,
    pub private: bool,
    /// A direct message's two users.
    pub dm: Option<(i64, i64)>,
    pub last_seq: u64,
}

pub fn room(conn: &Connection, name: &str) -> rusqlite::Result<Option<Room>> {
    conn.query_row(
        "SELECT name, topic, private, dm_a, dm_b, last_seq FROM chat_rooms WHERE name = ?1",
        params![name],
        |r| {
            let (a, b): (Option<i64>, Option<i64>) = (r.get(3)?, r.get(4)?);
            Ok(Room {
                name: r.get(0)?,
                topic: r.get(1)?,
                private: r.get::<_, i64>(2)? != 0,
                dm: a.zip(b),
                last_seq: r.get::<_, i64>(5)? as u64,
            })
        },
    )
    .optional()
}

pub fn is_member(conn: &Connection, room: &str, user_id: i64) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT 1 FROM chat_members WHERE room = ?1 AND user_id = ?2",
        params![room, user_id],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
}

/// Every member's user id.
pub fn member_ids(conn: &Connection, room: &str) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached("SELECT user_id FROM chat_members WHERE room = ?1")?;
    let ids = stmt
        .query_map(params![room], |r| r.get(0))?
        .collect::<Result<Vec<i64>, _>>()?;
    Ok(ids)
}

/// A room's members by name, in order.
pub fn member_names(conn: &Connection, room: &str) -> rusqlite::Result<Vec<String>> {
    let ids = member_ids(conn, room)?;
    let mut names: Vec<String> = users::names(conn, &ids)?.into_values().collect();
    names.sort();
    Ok(names)
}

/// The users who share at least one room with `user_id` (and that user), by name.
pub fn neighbours(conn: &Connection, user_id: i64) -> rusqlite::Result<Vec<(i64, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT user_id FROM chat_members
         WHERE room IN (SELECT room FROM chat_members WHERE user_id = ?1)",
    )?;
    let ids = stmt
        .query_map(params![user_id], |r| r.get(0))?
        .collect::<Result<Vec<i64>, _>>()?;
    let mut named: Vec<(i64, String)> = users::names(conn, &ids)?.into_iter().collect();
    named.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(named)
}

/// The names of messages' authors, filled in (`(gone)`: a user removed since).
fn name_authors(conn: &Connection, messages: &mut [(Message, i64)]) -> rusqlite::Result<()> {
    let ids: Vec<i64> = messages.iter().map(|(_, id)| *id).collect();
    let names = users::names(conn, &ids)?;
    for (message, id) in messages {
        message.user = names.get(id).cloned().unwrap_or_else(|| "(gone)".into());
    }
    Ok(())
}

pub fn create_room(
    tx: &Transaction,
    room: &Room,
    creator: i64,
    now_ms: u64,
) -> rusqlite::Result<bool> {
    let made = tx.execute(
        "INSERT INTO chat_rooms (name, topic, private, dm_a, dm_b, created_by, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (name) DO NOTHING",
        params![
            room.name,
            room.topic,
            room.private as i64,
            room.dm.map(|d| d.0),
            room.dm.map(|d| d.1),
            creator,
            now_ms as i64
        ],
    )? > 0;
    Ok(made)
}

/// Add a member (reading from the room's newest message on); false if already one.
pub fn add_member(
    conn: &Connection,
    room: &str,
    user_id: i64,
    now_ms: u64,
) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "INSERT INTO chat_members (room, user_id, joined_ms, last_read)
         SELECT ?1, ?2, ?3, last_seq FROM chat_rooms WHERE name = ?1
         ON CONFLICT (room, user_id) DO NOTHING",
        params![room, user_id, now_ms as i64],
    )? > 0)
}

pub fn remove_member(conn: &Connection, room: &str, user_id: i64) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "DELETE FROM chat_members WHERE room = ?1 AND user_id = ?2",
        params![room, user_id],
    )? > 0)
}

/// A room as `user_id` sees it in lists.
pub fn info(conn: &Connection, room: &Room, user_id: i64) -> rusqlite::Result<RoomInfo> {
    let members: i64 = conn.query_row(
        "SELECT COUNT(*) FROM chat_members WHERE room = ?1",
        params![room.name],
        |r| r.get(0),
    )?;
    let read: Option<i64> = conn
        .query_row(
            "SELECT last_read FROM chat_members WHERE room = ?1 AND user_id = ?2",
            params![room.name, user_id],
            |r| r.get(0),
        )
        .optional()?;
    let mentions: i64 = match read {
        Some(read) => conn.query_row(
            "SELECT COUNT(*) FROM chat_mentions WHERE user_id = ?1 AND room = ?2 AND seq > ?3",
            params![user_id, room.name, read],
            |r| r.get(0),
        )?,
        None => 0,
    };
    let with = match room.dm {
        Some((a, b)) => users::by_id(conn, if a == user_id { b } else { a })?.map(|u| u.name),
        None => None,
    };
    Ok(RoomInfo {
        room: room.name.clone(),
        topic: room.topic.clone(),
        private: room.private,
        with,
        members: members as u64,
        joined: read.is_some(),
        unread: read.map_or(0, |read| room.last_seq.saturating_sub(read as u64)),
        mentions: mentions as u64,
        last_seq: room.last_seq,
    })
}

/// Every room `user_id` is in, by name.
pub fn rooms_of(conn: &Connection, user_id: i64) -> rusqlite::Result<Vec<Room>> {
    let mut stmt =
        conn.prepare_cached("SELECT room FROM chat_members WHERE user_id = ?1 ORDER BY room")?;
    let names = stmt
        .query_map(params![user_id], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    rooms_named(conn, names)
}

/// Public rooms `user_id` is not in, by name after `after`: at most `limit`.
pub fn public_rooms(
    conn: &Connection,
    user_id: i64,
    after: &str,
    limit: usize,
) -> rusqlite::Result<Vec<Room>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name FROM chat_rooms r WHERE r.private = 0 AND r.name > ?2
            AND NOT EXISTS (SELECT 1 FROM chat_members m WHERE m.room = r.name AND m.user_id = ?1)
         ORDER BY name LIMIT ?3",
    )?;
    let names = stmt
        .query_map(params![user_id, after, limit as i64], |r| {
            r.get::<_, String>(0)
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rooms_named(conn, names)
}

fn rooms_named(conn: &Connection, names: Vec<String>) -> rusqlite::Result<Vec<Room>> {
    let mut rooms = vec![];
    for name in names {
        if let Some(room) = room(conn, &name)? {
            rooms.push(room);
        }
    }
    Ok(rooms)
}

/// Store a new message as the room's next; its seq.
pub fn append(
    tx: &Transaction,
    message: &Message,
    user_id: i64,
    mentioned: &[i64],
) -> rusqlite::Result<u64> {
    let seq: i64 = tx.query_row(
        "UPDATE chat_rooms SET last_seq = last_seq + 1 WHERE name = ?1 RETURNING last_seq",
        params![message.room],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO chat_messages (room, seq, user_id, text, at_ms, reply_to, mentions)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            message.room,
            seq,
            user_id,
            message.text,
            message.at_ms as i64,
            message.reply_to.map(|r| r as i64),
            serde_json::to_string(&message.mentions).unwrap_or_default()
        ],
    )?;
    for user in mentioned {
        tx.execute(
            "INSERT OR IGNORE INTO chat_mentions (user_id, room, seq) VALUES (?1, ?2, ?3)",
            params![user, message.room, seq],
        )?;
    }
    // Your own message is read.
    tx.execute(
        "UPDATE chat_members SET last_read = ?3 WHERE room = ?1 AND user_id = ?2",
        params![message.room, user_id, seq],
    )?;
    Ok(seq as u64)
}

const MESSAGE_COLUMNS: &str = "m.room, m.seq, m.text, m.at_ms, m.edited_ms, m.deleted, \
     m.reply_to, m.mentions, m.user_id";

/// A message row and its author's id; the author's name comes from [`name_authors`].
fn message_row(r: &rusqlite::Row) -> rusqlite::Result<(Message, i64)> {
    let deleted = r.get::<_, i64>(5)? != 0;
    let mentions: Option<String> = r.get(7)?;
    Ok((
        Message {
            room: r.get(0)?,
            seq: r.get::<_, i64>(1)? as u64,
            user: String::new(),
            text: if deleted { String::new() } else { r.get(2)? },
            at_ms: r.get::<_, i64>(3)? as u64,
            edited_ms: r.get::<_, Option<i64>>(4)?.map(|v| v as u64),
            deleted,
            reply_to: r.get::<_, Option<i64>>(6)?.map(|v| v as u64),
            mentions: mentions
                .and_then(|m| serde_json::from_str(&m).ok())
                .unwrap_or_default(),
        },
        r.get(8)?,
    ))
}

/// One message and its author's id.
pub fn message(
    conn: &Connection,
    room: &str,
    seq: u64,
) -> rusqlite::Result<Option<(Message, i64)>> {
    let found = conn
        .query_row(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM chat_messages m WHERE m.room = ?1 AND m.seq = ?2"
            ),
            params![room, seq as i64],
            message_row,
        )
        .optional()?;
    let mut found: Vec<(Message, i64)> = found.into_iter().collect();
    name_authors(conn, &mut found)?;
    Ok(found.pop())
}

pub fn set_text(
    conn: &Connection,
    room: &str,
    seq: u64,
    text: Option<&str>,
    now_ms: u64,
) -> rusqlite::Result<()> {
    match text {
        Some(text) => conn.execute(
            "UPDATE chat_messages SET text = ?3, edited_ms = ?4 WHERE room = ?1 AND seq = ?2",
            params![room, seq as i64, text, now_ms as i64],
        )?,
        None => conn.execute(
            "UPDATE chat_messages SET text = '', deleted = 1, edited_ms = ?3
             WHERE room = ?1 AND seq = ?2",
            params![room, seq as i64, now_ms as i64],
        )?,
    };
    Ok(())
}

/// Up to `limit` messages before `before`, oldest first; and whether older ones remain.
pub fn page(
    conn: &Connection,
    room: &str,
    before: u64,
    limit: u32,
    thread: Option<u64>,
    search: Option<&str>,
) -> rusqlite::Result<(Vec<Message>, bool)> {
    let mut sql =
        format!("SELECT {MESSAGE_COLUMNS} FROM chat_messages m WHERE m.room = ?1 AND m.seq < ?2");
    if thread.is_some() {
        sql.push_str(" AND (m.seq = ?3 OR m.reply_to = ?3)");
    }
    if search.is_some() {
        sql.push_str(" AND m.deleted = 0 AND instr(lower(m.text), ?4) > 0");
    }
    sql.push_str(" ORDER BY m.seq DESC LIMIT ?5");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut messages = stmt
        .query_map(
            params![
                room,
                before.min(i64::MAX as u64) as i64,
                thread.map(|t| t as i64),
                search.map(str::to_lowercase),
                i64::from(limit) + 1
            ],
            message_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    name_authors(conn, &mut messages)?;
    let mut messages: Vec<Message> = messages.into_iter().map(|(m, _)| m).collect();
    let more = messages.len() > limit as usize;
    messages.truncate(limit as usize);
    messages.reverse();
    Ok((messages, more))
}

pub fn mark_read(conn: &Connection, room: &str, user_id: i64, seq: u64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE chat_members SET last_read = MAX(last_read, ?3) WHERE room = ?1 AND user_id = ?2",
        params![room, user_id, seq as i64],
    )?;
    Ok(())
}
