//! `session.*`: a user's saved workspace layouts, by name, so a desktop restores them on any
//! terminal. Sessions belong to the signed-in user (whichever app saved them); the last save wins.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::calls;

/// The longest session name, in characters (each one of `A-Z a-z 0-9 . _ -`).
pub const MAX_NAME_CHARS: usize = 64;

/// The largest `state` a session may hold, as compact JSON (1 MiB).
pub const MAX_STATE_BYTES: usize = 1 << 20;

/// The most sessions one user may keep.
pub const MAX_SESSIONS_PER_USER: usize = 100;

/// Save a session's state under its name, replacing what was saved before (last write wins).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Save {
    /// The session's name: 1 to 64 characters, each one of `A-Z a-z 0-9 . _ -`.
    pub name: String,
    /// What to restore later: a JSON object, at most 1 MiB as compact JSON.
    pub state: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Saved {
    /// The session's name, as saved.
    pub name: String,
    /// The session's revision after this save: 1 for the first save, one more for each save after.
    pub revision: u64,
}

/// Load the state last saved under a name.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// The session's name.
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Loaded {
    /// The session's name, as asked.
    pub name: String,
    /// The state last saved, or null when nothing is saved under this name.
    pub state: Option<Value>,
    /// The revision of that save; 0 when nothing is saved.
    pub revision: u64,
    /// When that save happened, in milliseconds since the Unix epoch; null when nothing is saved.
    pub saved_at_ms: Option<u64>,
}

/// The caller's saved sessions, without their state.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListSessions {}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SessionList {
    /// Every session the caller has saved, sorted by name.
    pub sessions: Vec<SessionInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SessionInfo {
    /// The session's name.
    pub name: String,
    /// The revision of its last save.
    pub revision: u64,
    /// When it was last saved, in milliseconds since the Unix epoch.
    pub saved_at_ms: u64,
    /// The size of its state as compact JSON, in bytes.
    pub bytes: u64,
}

/// Forget a saved session. Saving under its name again starts over at revision 1.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Delete {
    /// The session's name.
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Deleted {
    /// The session's name, as asked.
    pub name: String,
    /// Whether a session was saved under this name (and is now gone).
    pub existed: bool,
}

calls! {
    Save => Saved, "session.save";
    Load => Loaded, "session.load";
    ListSessions => SessionList, "session.list";
    Delete => Deleted, "session.delete";
}

/// What is wrong with a session name, if anything (the daemon's check, for clients to share).
pub fn name_problem(name: &str) -> Option<String> {
    let chars = name.chars().count();
    if chars == 0 {
        return Some("`name` is empty: a session name has 1 to 64 characters".into());
    }
    if chars > MAX_NAME_CHARS {
        return Some(format!(
            "`name` has {chars} characters; a session name has at most {MAX_NAME_CHARS}"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Some(format!(
            "`name` may not contain {bad:?}: a session name uses only A-Z a-z 0-9 . _ -"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(name_problem("main").is_none());
        assert!(name_problem("work.laptop_2-a").is_none());
        assert!(name_problem(&"a".repeat(64)).is_none());
        assert!(name_problem("").unwrap().contains("empty"));
        assert!(name_problem(&"a".repeat(65)).unwrap().contains("65"));
        assert!(name_problem("a/b").unwrap().contains("'/'"));
        assert!(name_problem("a b").unwrap().contains("' '"));
        assert!(name_problem("café").unwrap().contains("'é'"));
    }
}
