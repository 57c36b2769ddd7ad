//! Who a user id is, for the services that name users (chat, agents): the one place
//! outside identity that reads its `users` table, on the caller's connection (so inside
//! its transaction). Read-only: only identity changes users.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

/// A user as other services see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub admin: bool,
    pub guest: bool,
}

fn user_row(r: &rusqlite::Row) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        name: r.get(1)?,
        admin: r.get(2)?,
        guest: r.get(3)?,
    })
}

pub fn by_name(conn: &Connection, name: &str) -> rusqlite::Result<Option<User>> {
    conn.prepare_cached("SELECT id, name, admin, guest FROM users WHERE name = ?1")?
        .query_row(params![name], user_row)
        .optional()
}

pub fn by_id(conn: &Connection, id: i64) -> rusqlite::Result<Option<User>> {
    conn.prepare_cached("SELECT id, name, admin, guest FROM users WHERE id = ?1")?
        .query_row(params![id], user_row)
        .optional()
}

/// The names of these users (an id no user has any more is left out).
pub fn names(conn: &Connection, ids: &[i64]) -> rusqlite::Result<HashMap<i64, String>> {
    let mut stmt = conn.prepare_cached("SELECT name FROM users WHERE id = ?1")?;
    let mut names = HashMap::new();
    for &id in ids {
        if names.contains_key(&id) {
            continue;
        }
        if let Some(name) = stmt.query_row(params![id], |r| r.get(0)).optional()? {
            names.insert(id, name);
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn users_are_found_by_name_and_id_and_named_in_bulk() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("aether.db")).unwrap();
        store
            .call_sync(|c| {
                c.execute(
                    "INSERT INTO users(name, admin, guest, created_at) VALUES
                     ('ana', 1, 0, 0), ('bob', 0, 1, 0)",
                    [],
                )?;
                let ana = by_name(c, "ana")?.expect("ana");
                assert!(ana.admin && !ana.guest);
                let bob = by_id(c, ana.id + 1)?.expect("bob");
                assert_eq!((bob.name.as_str(), bob.guest), ("bob", true));
                assert_eq!(by_name(c, "nobody")?, None);
                let named = names(c, &[ana.id, bob.id, ana.id, 99])?;
                assert_eq!(named.len(), 2, "each once, the unknown id left out");
                assert_eq!(named[&bob.id], "bob");
                Ok(())
            })
            .unwrap();
    }
}
