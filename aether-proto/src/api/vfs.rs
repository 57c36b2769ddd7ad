//! `vfs.*`: each user's files. Paths are absolute inside the user's own root.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::calls;

/// How file content travels in JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// Text when the bytes are UTF-8, else base64 (reads); text (writes).
    #[default]
    Auto,
    Utf8,
    Base64,
}

impl Encoding {
    fn is_auto(&self) -> bool {
        *self == Encoding::Auto
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// Read a file, or a range of it (at most the daemon's `max_chunk_bytes` per answer).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Read {
    pub path: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<usize>,
    #[serde(default, skip_serializing_if = "Encoding::is_auto")]
    pub encoding: Encoding,
    /// Fail with `conflict` unless the file is at this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_version: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ReadAnswer {
    pub path: String,
    pub offset: u64,
    /// Bytes in this answer.
    pub length: usize,
    /// The whole file's size.
    pub size: u64,
    pub eof: bool,
    pub version: String,
    pub encoding: Encoding,
    pub data: String,
}

/// Write a whole file, append to it, or send one chunk of an upload.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Write {
    pub path: String,
    #[serde(default)]
    pub data: String,
    #[serde(default, skip_serializing_if = "Encoding::is_auto")]
    pub encoding: Encoding,
    #[serde(default, skip_serializing_if = "is_false")]
    pub append: bool,
    /// Replace only if the file is still at this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_version: Option<String>,
    /// Create only: fail if the file exists.
    #[serde(default, skip_serializing_if = "is_false")]
    pub if_absent: bool,
    /// Create missing parent directories.
    #[serde(default, skip_serializing_if = "is_false")]
    pub parents: bool,
    /// Chunked upload: the id from the first chunk's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// More chunks follow.
    #[serde(default, skip_serializing_if = "is_false")]
    pub more: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum WriteAnswer {
    /// The file is written (a whole write, or an upload's last chunk).
    Committed {
        path: String,
        size: u64,
        version: String,
        created: bool,
    },
    /// A chunk of an upload arrived; more are expected.
    Uploading {
        path: String,
        upload: String,
        received: u64,
    },
}

/// A directory's entries, sorted by name.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct List {
    pub path: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Listing {
    pub path: String,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Entry {
    pub name: String,
    pub kind: Kind,
    pub size: u64,
    /// Milliseconds since the Unix epoch.
    pub modified_ms: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stat {
    pub path: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StatAnswer {
    pub path: String,
    pub kind: Kind,
    pub size: u64,
    pub modified_ms: i64,
    /// Files only.
    pub version: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mkdir {
    pub path: String,
    /// Create missing parents too; an existing directory is then not an error.
    #[serde(default, skip_serializing_if = "is_false")]
    pub parents: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MkdirAnswer {
    pub path: String,
    pub created: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Remove {
    pub path: String,
    /// Needed to remove a directory that is not empty.
    #[serde(default, skip_serializing_if = "is_false")]
    pub recursive: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Removed {
    pub path: String,
    pub kind: Kind,
    /// Files freed.
    pub files: u64,
    /// Bytes freed.
    pub bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Move {
    pub from: String,
    pub to: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub overwrite: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Copy {
    pub from: String,
    pub to: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub overwrite: bool,
}

/// Where a move or copy went.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Moved {
    pub from: String,
    pub to: String,
}

/// Full-text search (tantivy syntax: `a AND b`, `a OR b`, `-a`, `"a phrase"`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Search {
    pub query: String,
    /// 1 to 200 (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Rank by meaning as well as by words (needs an AI provider with embeddings).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub semantic: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SearchAnswer {
    pub hits: Vec<Hit>,
    /// With `semantic`: whether meaning took part, and how (or why not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semantic: Option<SemanticNote>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SemanticNote {
    pub ranked: bool,
    pub note: String,
}

/// One hit, with where in the file it matched.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Hit {
    pub path: String,
    pub score: f32,
    pub line: Option<usize>,
    pub snippet: String,
}

/// How much of the quota is used.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Usage {}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UsageAnswer {
    pub bytes: u64,
    pub files: u64,
    pub quota_bytes: u64,
    pub quota_files: u64,
}

/// Catch up after a program changed files: recount usage, reindex, publish events.
/// Only services may ask for it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rescan {
    /// When the writer started, in ms since the Unix epoch.
    pub since_ms: i64,
    /// The job that changed the files, named in the events.
    pub job: String,
    /// Whether anything may have been removed or renamed (the index is pruned then).
    #[serde(default)]
    pub removed: bool,
}

/// The answer to `vfs.rescan`, also published as `vfs.events.rescanned`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Rescanned {
    pub job: String,
    pub app: String,
    /// Files written since the job started.
    pub written: usize,
    /// Of those, how many have their own `vfs.events.written`.
    pub itemized: usize,
    pub removed: bool,
    /// Usage after the job.
    pub bytes: u64,
    pub files: u64,
}

/// Payloads of `vfs.events.created|written|removed|moved` (absent fields do not apply).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Changed {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Moves and copies: the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Moves: the destination (also `path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Writes by a program: the app and job that wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
}

calls! {
    Read => ReadAnswer, "vfs.read";
    Write => WriteAnswer, "vfs.write";
    List => Listing, "vfs.list";
    Stat => StatAnswer, "vfs.stat";
    Mkdir => MkdirAnswer, "vfs.mkdir";
    Remove => Removed, "vfs.remove";
    Move => Moved, "vfs.move";
    Copy => Moved, "vfs.copy";
    Search => SearchAnswer, "vfs.search";
    Usage => UsageAnswer, "vfs.usage";
    Rescan => Rescanned, "vfs.rescan";
}

super::event::kind_events! {
    /// A user's file events: `vfs.events.created|written|removed|moved` ([`Changed`]) and
    /// `vfs.events.rescanned` ([`Rescanned`]).
    FileEvents, FileEventKind, "vfs.events", "vfs.events.>",
    { Created => "created", Written => "written", Removed => "removed", Moved => "moved", Rescanned => "rescanned" }
}

/// Events the vfs service publishes.
pub const EVENTS: &str = <FileEvents as super::Event>::PATTERN;
