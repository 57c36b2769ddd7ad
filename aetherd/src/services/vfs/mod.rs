//! `vfs.*`: each user's files, in a root of their own under the data dir.
//!
//! Every change for one user is serialized by that user's lock, which also
//! guards the quota counters. Versions are content hashes (BLAKE3), cached by
//! the file's on-disk stamp, so a write can name the version it replaces and
//! get `conflict` if the file changed meanwhile. Files larger than one frame
//! travel in chunks: reads by offset/length, writes as an upload.

mod disk;
mod ops;
mod path;
mod rescan;
mod search;
mod upload;
mod write;

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use aether_proto::{ErrorBody, ErrorCode};

use super::{Incoming, Participant, Publisher};
use crate::config::VfsLimits;
use crate::daemon::Shared;
use crate::identity::Caller;
use crate::perms::Service;
use disk::{Info, Stamp, UserRoot};

pub use path::{PathError, VfsPath};
use upload::Uploads;

const TOPICS: &[&str] = &[
    "vfs.read",
    "vfs.write",
    "vfs.list",
    "vfs.stat",
    "vfs.mkdir",
    "vfs.remove",
    "vfs.move",
    "vfs.copy",
    "vfs.search",
    "vfs.usage",
    "vfs.rescan",
];

/// An upload idle this long is abandoned and its temp file removed.
const UPLOAD_IDLE: Duration = Duration::from_secs(600);

pub fn start(shared: Arc<Shared>) -> anyhow::Result<()> {
    let config = &shared.config;
    let vfs = Arc::new(Vfs {
        roots: config.vfs_dir(),
        scratch: config.vfs_scratch_dir(),
        limits: config.vfs.clone(),
        users: parking_lot::Mutex::default(),
        uploads: Uploads::default(),
        indexes: search::Indexes::new(config.data_dir.join("index")),
    });
    std::fs::create_dir_all(&vfs.roots)?;
    std::fs::create_dir_all(&vfs.scratch)?;
    let mut participant = Participant::serve(
        shared.hub.clone(),
        shared.perms.clone(),
        Service::Vfs,
        TOPICS,
    )?;
    let responder = participant.responder();
    let events = participant.publisher();
    let sweeper = Arc::downgrade(&vfs);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(30)).await;
            let Some(vfs) = sweeper.upgrade() else { break };
            vfs.uploads.sweep(UPLOAD_IDLE);
        }
    });
    tokio::spawn(async move {
        while let Some(request) = participant.next().await {
            let (vfs, events, responder) = (vfs.clone(), events.clone(), responder.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let result = vfs.handle(&events, &request).await;
                let ok = result.is_ok();
                responder.answer(&request, result);
                let op = request.topic.as_str().trim_start_matches("vfs.").to_owned();
                // Telemetry names the path acted on, so rules can match it by glob.
                let target: PathHint = serde_json::from_str(request.data.get()).unwrap_or_default();
                let path = target.to.or(target.path);
                let telemetry = json!({
                    "op": op,
                    "path": path,
                    "ok": ok,
                    "micros": started.elapsed().as_micros() as u64,
                });
                let topic = format!("telemetry.vfs.{op}");
                events.publish(
                    &request.caller,
                    &request.app,
                    &topic,
                    &telemetry,
                    request.origin,
                );
            });
        }
    });
    Ok(())
}

/// Bytes and files a user stores.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    bytes: u64,
    files: u64,
}

struct UserVfs {
    id: i64,
    root: Arc<UserRoot>,
    index: Arc<search::UserIndex>,
    /// Serializes changes; the usage is counted on first use.
    changes: tokio::sync::Mutex<Option<Usage>>,
    /// (dev, ino) → the stamp the version was computed for, and the version.
    versions: parking_lot::Mutex<HashMap<(u64, u64), (Stamp, String)>>,
}

pub struct Vfs {
    roots: PathBuf,
    scratch: PathBuf,
    limits: VfsLimits,
    users: parking_lot::Mutex<HashMap<i64, Arc<UserVfs>>>,
    uploads: Uploads,
    indexes: search::Indexes,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
enum Encoding {
    /// Text when the bytes are UTF-8, else base64 (reads only).
    #[default]
    Auto,
    Utf8,
    Base64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadReq {
    path: String,
    #[serde(default)]
    offset: u64,
    #[serde(default)]
    length: Option<usize>,
    #[serde(default)]
    encoding: Encoding,
    #[serde(default)]
    if_version: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteReq {
    path: String,
    #[serde(default)]
    data: String,
    #[serde(default)]
    encoding: Encoding,
    #[serde(default)]
    append: bool,
    /// Replace only if the file is still at this version.
    #[serde(default)]
    if_version: Option<String>,
    /// Create only: fail if the file exists.
    #[serde(default)]
    if_absent: bool,
    /// Create missing parent directories.
    #[serde(default)]
    parents: bool,
    /// Chunked upload: the id from the first chunk's answer.
    #[serde(default)]
    upload: Option<String>,
    #[serde(default)]
    offset: Option<u64>,
    /// More chunks follow.
    #[serde(default)]
    more: bool,
}

/// The path a request acts on, read loosely for telemetry.
#[derive(Deserialize, Default)]
struct PathHint {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PathReq {
    path: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchReq {
    query: String,
    #[serde(default)]
    limit: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MkdirReq {
    path: String,
    #[serde(default)]
    parents: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveReq {
    path: String,
    #[serde(default)]
    recursive: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveReq {
    from: String,
    to: String,
    #[serde(default)]
    overwrite: bool,
}

fn bad(msg: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::BadFrame, msg)
}

fn conflict(msg: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::Conflict, msg)
}

fn parse_path(raw: &str) -> Result<VfsPath, ErrorBody> {
    VfsPath::parse(raw).map_err(|e| bad(format!("bad path: {e}")))
}

/// What an I/O error means for the client, naming the path.
fn io_error(e: io::Error, path: &VfsPath) -> ErrorBody {
    use io::ErrorKind as K;
    match e.kind() {
        K::NotFound => ErrorBody::new(
            ErrorCode::NotFound,
            format!("no such file or directory: {path}"),
        ),
        K::AlreadyExists => conflict(format!("{path} already exists")),
        K::PermissionDenied => ErrorBody::new(
            ErrorCode::Forbidden,
            format!(
                "{path}: access denied (a path or symlink leading outside your root is never followed)"
            ),
        ),
        K::IsADirectory => conflict(format!("{path} is a directory")),
        K::NotADirectory => conflict(format!("{path}: a parent is not a directory")),
        K::DirectoryNotEmpty => conflict(format!("{path} is not empty: remove it with recursive")),
        K::StorageFull | K::QuotaExceeded => {
            ErrorBody::new(ErrorCode::QuotaExceeded, "the daemon's disk is full")
        }
        K::InvalidInput | K::InvalidFilename => bad(format!("{path}: {e}")),
        _ if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => ErrorBody::new(
            ErrorCode::Forbidden,
            format!("{path}: too many symlinks, or a symlink where none may be"),
        ),
        _ => {
            tracing::error!("vfs: {path}: {e}");
            ErrorBody::new(
                ErrorCode::Internal,
                format!("{path}: the file system failed; see the daemon log"),
            )
        }
    }
}

/// Run blocking file work off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ErrorBody> + Send + 'static,
) -> Result<T, ErrorBody> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        tracing::error!("vfs task failed: {e}");
        Err(ErrorBody::new(
            ErrorCode::Internal,
            "the file operation failed; see the daemon log",
        ))
    })
}

/// Bytes as the client asked: text, base64, or text when it is UTF-8 (auto).
fn encode(bytes: Vec<u8>, wanted: Encoding, path: &str) -> Result<(Encoding, String), ErrorBody> {
    match wanted {
        Encoding::Base64 => Ok((Encoding::Base64, BASE64.encode(&bytes))),
        Encoding::Utf8 => String::from_utf8(bytes)
            .map(|text| (Encoding::Utf8, text))
            .map_err(|_| {
                bad(format!(
                    "{path} is not UTF-8 text in that range; read it with encoding base64"
                ))
            }),
        Encoding::Auto => Ok(match String::from_utf8(bytes) {
            Ok(text) => (Encoding::Utf8, text),
            Err(e) => (Encoding::Base64, BASE64.encode(e.as_bytes())),
        }),
    }
}

fn version_string(hash: &blake3::Hash) -> String {
    hash.to_hex()[..32].to_owned()
}

fn decode_data(data: &str, encoding: Encoding) -> Result<Vec<u8>, ErrorBody> {
    match encoding {
        Encoding::Auto | Encoding::Utf8 => Ok(data.as_bytes().to_vec()),
        Encoding::Base64 => BASE64
            .decode(data)
            .map_err(|e| bad(format!("data is not valid base64: {e}"))),
    }
}

impl UserVfs {
    /// The version of the file at `path`, or None when there is no file there.
    fn version(&self, path: &VfsPath) -> io::Result<Option<String>> {
        match self.root.open_file(path) {
            Ok((file, info)) => self.version_of(&file, &info).map(Some),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::IsADirectory
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The version of an open file, hashing it (the same open file, so the same
    /// content) only when the cached version is for another stamp.
    fn version_of(&self, file: &std::fs::File, info: &Info) -> io::Result<String> {
        let key = (info.stamp.dev, info.stamp.ino);
        if let Some((stamp, version)) = self.versions.lock().get(&key)
            && *stamp == info.stamp
        {
            return Ok(version.clone());
        }
        let version = version_string(&disk::hash_file(file)?);
        self.remember(info, &version);
        Ok(version)
    }

    fn remember(&self, info: &Info, version: &str) {
        let mut versions = self.versions.lock();
        if versions.len() > 100_000 {
            versions.clear();
        }
        versions.insert(
            (info.stamp.dev, info.stamp.ino),
            (info.stamp, version.to_owned()),
        );
    }

    /// Take the change lock, counting usage the first time.
    async fn lock(
        self: &Arc<Self>,
    ) -> Result<tokio::sync::MutexGuard<'_, Option<Usage>>, ErrorBody> {
        let mut guard = self.changes.lock().await;
        if guard.is_none() {
            let me = self.clone();
            let (bytes, files) = blocking(move || {
                me.root
                    .usage(&VfsPath::root())
                    .map_err(|e| io_error(e, &VfsPath::root()))
            })
            .await?;
            *guard = Some(Usage { bytes, files });
        }
        Ok(guard)
    }
}

impl Vfs {
    fn user(&self, user_id: i64) -> Result<Arc<UserVfs>, ErrorBody> {
        let mut users = self.users.lock();
        if let Some(user) = users.get(&user_id) {
            return Ok(user.clone());
        }
        let root = UserRoot::open(
            &self.roots.join(user_id.to_string()),
            &self.scratch.join(user_id.to_string()),
        )
        .map_err(|e| {
            tracing::error!("vfs: cannot open the root of user {user_id}: {e}");
            ErrorBody::new(
                ErrorCode::Internal,
                "cannot open your file root; see the daemon log",
            )
        })?;
        let root = Arc::new(root);
        let index = self.indexes.for_user(user_id, &root)?;
        let user = Arc::new(UserVfs {
            id: user_id,
            root,
            index,
            changes: tokio::sync::Mutex::new(None),
            versions: parking_lot::Mutex::default(),
        });
        users.insert(user_id, user.clone());
        Ok(user)
    }

    async fn handle(&self, events: &Publisher, request: &Incoming) -> Result<Value, ErrorBody> {
        let user = self.user(request.caller.user_id)?;
        let ctx = Ctx {
            events,
            caller: &request.caller,
            app: &request.app,
            origin: request.origin,
        };
        match request.topic.as_str() {
            "vfs.read" => self.read(user, request.decode()?).await,
            "vfs.write" => self.write(user, ctx, request.decode()?).await,
            "vfs.list" => self.list(user, request.decode()?).await,
            "vfs.stat" => self.stat(user, request.decode()?).await,
            "vfs.mkdir" => self.mkdir(user, ctx, request.decode()?).await,
            "vfs.remove" => self.remove(user, ctx, request.decode()?).await,
            "vfs.move" => self.rename(user, ctx, request.decode()?).await,
            "vfs.copy" => self.copy(user, ctx, request.decode()?).await,
            "vfs.search" => self.search(user, request.decode()?).await,
            "vfs.usage" => self.usage(user).await,
            "vfs.rescan" => self.rescan(user, ctx, request.decode()?).await,
            other => Err(ErrorBody::new(
                ErrorCode::NotFound,
                format!("vfs has no {other}"),
            )),
        }
    }

    async fn read(&self, user: Arc<UserVfs>, req: ReadReq) -> Result<Value, ErrorBody> {
        let path = parse_path(&req.path)?;
        let path_text = path.to_string();
        let length = req
            .length
            .unwrap_or(self.limits.max_chunk_bytes)
            .min(self.limits.max_chunk_bytes);
        let (bytes, info, version) = blocking(move || {
            let fail = |e| io_error(e, &path);
            // One open file for the data and its version: they always describe the same content.
            let (file, info) = user.root.open_file(&path).map_err(fail)?;
            let version = user.version_of(&file, &info).map_err(fail)?;
            if let Some(expected) = &req.if_version
                && *expected != version
            {
                return Err(conflict(format!("{path} changed since version {expected}")));
            }
            let bytes = disk::read_from(&file, &info, req.offset, length).map_err(fail)?;
            Ok((bytes, info, version))
        })
        .await?;
        let returned = bytes.len();
        let (encoding, data) = encode(bytes, req.encoding, &path_text)?;
        Ok(json!({
            "path": req.path,
            "offset": req.offset,
            "length": returned,
            "size": info.size,
            "eof": req.offset + returned as u64 >= info.size,
            "version": version,
            "encoding": encoding,
            "data": data,
        }))
    }
}

impl Vfs {
    async fn search(&self, user: Arc<UserVfs>, req: SearchReq) -> Result<Value, ErrorBody> {
        if req.query.trim().is_empty() {
            return Err(bad("the query is empty"));
        }
        if req.query.len() > 1024 {
            return Err(bad("the query is longer than 1024 bytes"));
        }
        let limit = req.limit.unwrap_or(20).clamp(1, 200);
        let hits = blocking(move || user.index.search(&user.root, &req.query, limit)).await?;
        Ok(json!({ "hits": hits }))
    }
}

/// Who is acting, for events.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    events: &'a Publisher,
    caller: &'a Arc<Caller>,
    app: &'a str,
    origin: Option<u64>,
}

impl Ctx<'_> {
    fn event(&self, kind: &str, data: Value) {
        let topic = format!("vfs.events.{kind}");
        self.events
            .publish(self.caller, self.app, &topic, &data, self.origin);
    }
}
