//! `vfs.*`: each user's files, in a root of their own under the data dir.
//!
//! Every change for one user is serialized by that user's lock, which also
//! guards the quota counters. Versions are content hashes (BLAKE3), cached by
//! the file's on-disk stamp, so a write can name the version it replaces and
//! get `conflict` if the file changed meanwhile. Files larger than one frame
//! travel in chunks: reads by offset/length, writes as an upload.

mod disk;
mod examples;
mod ops;
pub(crate) mod path;
mod rescan;
mod search;
mod semantic;
mod upload;
mod write;

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use aether_proto::api::Call as _;
use aether_proto::api::telemetry::TelemetryEvents;
use aether_proto::api::vfs::{self, Encoding};
use aether_proto::{ErrorBody, ErrorCode};

use super::{Handler, Incoming, OnBehalf, Publisher, Reply, Requester, Seat};
use crate::config::{UserRoots, VfsLimits};
use disk::{Info, Stamp, UserRoot};

pub use path::{PathError, VfsPath};
use upload::Uploads;

/// An upload idle this long is abandoned and its temp file removed.
const UPLOAD_IDLE: Duration = Duration::from_secs(600);

/// Where the VFS keeps things.
pub struct Places {
    /// Users' roots, one folder per user id.
    pub roots: UserRoots,
    /// Temp files for atomic writes: beside the roots, never inside one.
    pub scratch: PathBuf,
    /// Per-user search indexes.
    pub index: PathBuf,
}

pub fn start(seat: Seat, places: Places, limits: VfsLimits) -> anyhow::Result<()> {
    let vfs = Arc::new(Vfs {
        roots: places.roots,
        scratch: places.scratch,
        limits,
        users: parking_lot::Mutex::default(),
        uploads: Uploads::default(),
        vectors_dir: places.index.clone(),
        indexes: search::Indexes::new(places.index, seat.tasks()),
        events: seat.publisher(),
        requester: seat.requester(),
        perms: seat.perms(),
    });
    std::fs::create_dir_all(vfs.roots.dir())?;
    std::fs::create_dir_all(&vfs.scratch)?;
    let sweeper = Arc::downgrade(&vfs);
    let shutdown = seat.shutdown();
    seat.tasks().spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
            let Some(vfs) = sweeper.upgrade() else { break };
            vfs.uploads.sweep(UPLOAD_IDLE);
        }
    });
    seat.run(vfs);
    Ok(())
}

impl Handler for Vfs {
    async fn handle(self: &Arc<Self>, request: &Incoming) -> Reply {
        let user = self.user(request.caller.user_id)?;
        let ctx = Ctx {
            events: &self.events,
            on: request.on_behalf(),
        };
        self.within_scope(request, &user).await?;
        let user = || user.clone();
        match request.topic.as_str() {
            vfs::Read::TOPIC => request.call(|req| self.read(user(), req)).await,
            vfs::Write::TOPIC => request.call(|req| self.write(user(), &ctx, req)).await,
            vfs::List::TOPIC => request.call(|req| self.list(user(), req)).await,
            vfs::Stat::TOPIC => request.call(|req| self.stat(user(), req)).await,
            vfs::Mkdir::TOPIC => request.call(|req| self.mkdir(user(), &ctx, req)).await,
            vfs::Remove::TOPIC => request.call(|req| self.remove(user(), &ctx, req)).await,
            vfs::Move::TOPIC => request.call(|req| self.rename(user(), &ctx, req)).await,
            vfs::Copy::TOPIC => request.call(|req| self.copy(user(), &ctx, req)).await,
            vfs::Search::TOPIC => request.call(|req| self.search(user(), &ctx.on, req)).await,
            vfs::Usage::TOPIC => request.call(|_: vfs::Usage| self.usage(user())).await,
            vfs::Rescan::TOPIC => request.call(|req| self.rescan(user(), &ctx, req)).await,
            _ => Err(request.unknown()),
        }
    }

    /// Telemetry names the path acted on, so rules can match it by glob.
    fn telemetry(&self, request: &Incoming, ok: bool, took: Duration) -> Option<(String, Value)> {
        let op = TelemetryEvents::request_op(request.topic.as_str());
        let target: PathHint = serde_json::from_str(request.data.get()).unwrap_or_default();
        let telemetry = json!({
            "op": op,
            "path": target.to.or(target.path),
            "ok": ok,
            "micros": took.as_micros() as u64,
        });
        Some((TelemetryEvents::topic_of("vfs", op), telemetry))
    }
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
    vectors: Arc<semantic::Vectors>,
    /// Serializes changes; the usage is counted on first use.
    changes: tokio::sync::Mutex<Option<Usage>>,
    /// (dev, ino) → the stamp the version was computed for, and the version.
    versions: parking_lot::Mutex<HashMap<(u64, u64), (Stamp, String)>>,
}

pub struct Vfs {
    roots: UserRoots,
    scratch: PathBuf,
    limits: VfsLimits,
    users: parking_lot::Mutex<HashMap<i64, Arc<UserVfs>>>,
    uploads: Uploads,
    indexes: search::Indexes,
    events: Publisher,
    /// For `ai.embed`, which the VFS asks for its users' semantic search.
    requester: Requester,
    /// Where each user's file vectors are kept (beside the search indexes).
    vectors_dir: PathBuf,
    /// For the paths an app's file capabilities are limited to.
    perms: crate::perms::PermsView,
}

/// The paths a request names, by what it does to them.
#[derive(Deserialize, Default)]
struct Touches {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

/// The path a request acts on, read loosely for telemetry.
#[derive(Deserialize, Default)]
struct PathHint {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    to: Option<String>,
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
    /// An app whose file capabilities its manifest limits to some paths touches those and
    /// nothing else (the permission manager decides), and never through a symbolic link,
    /// which could lead anywhere in the user's files.
    async fn within_scope(&self, request: &Incoming, user: &Arc<UserVfs>) -> Result<(), ErrorBody> {
        use aether_proto::Capability::{VfsRead, VfsWrite};
        let (user_id, app) = (request.caller.user_id, request.app.as_str());
        if self.perms.scope(user_id, app, VfsRead).is_none()
            && self.perms.scope(user_id, app, VfsWrite).is_none()
        {
            return Ok(());
        }
        let named: Touches = serde_json::from_str(request.data.get()).unwrap_or_default();
        let mut touched = Vec::new();
        match request.topic.as_str() {
            vfs::Read::TOPIC | vfs::List::TOPIC | vfs::Stat::TOPIC => {
                touched.extend(named.path.map(|p| (VfsRead, p)));
            }
            vfs::Write::TOPIC | vfs::Mkdir::TOPIC | vfs::Remove::TOPIC => {
                touched.extend(named.path.map(|p| (VfsWrite, p)));
            }
            vfs::Move::TOPIC => {
                touched.extend(named.from.map(|p| (VfsWrite, p)));
                touched.extend(named.to.map(|p| (VfsWrite, p)));
            }
            vfs::Copy::TOPIC => {
                touched.extend(named.from.map(|p| (VfsRead, p)));
                touched.extend(named.to.map(|p| (VfsWrite, p)));
            }
            _ => {}
        }
        for (cap, raw) in touched {
            // A path that does not parse is refused by the request's own handler.
            let Ok(path) = VfsPath::parse(&raw) else {
                continue;
            };
            self.perms
                .check_path(&request.caller, app, cap, &path.to_string())
                .map_err(ErrorBody::from)?;
            if self.perms.scope(user_id, app, cap).is_some() {
                let root = user.root.clone();
                let (shown, checked) = (path.to_string(), path.clone());
                if blocking(move || Ok(root.has_link_on_the_way(&checked))).await? {
                    return Err(ErrorBody::new(
                        ErrorCode::Forbidden,
                        format!(
                            "{shown} passes through a symbolic link, which app {app:?} may not \
                             follow: it is limited to some of your files"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn user(&self, user_id: i64) -> Result<Arc<UserVfs>, ErrorBody> {
        let mut users = self.users.lock();
        if let Some(user) = users.get(&user_id) {
            return Ok(user.clone());
        }
        let root_dir = self.roots.of(user_id);
        if self.limits.examples && !root_dir.exists() {
            // A first visit: the examples go in before anything counts or indexes the root.
            if let Err(e) =
                std::fs::create_dir_all(&root_dir).and_then(|()| examples::seed(&root_dir))
            {
                tracing::warn!("vfs: no examples for user {user_id}: {e}");
            }
        }
        let root =
            UserRoot::open(&root_dir, &self.scratch.join(user_id.to_string())).map_err(|e| {
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
            vectors: Arc::new(semantic::Vectors::new(
                self.vectors_dir.join(format!("{user_id}.vectors.json")),
            )),
            changes: tokio::sync::Mutex::new(None),
            versions: parking_lot::Mutex::default(),
        });
        users.insert(user_id, user.clone());
        Ok(user)
    }

    async fn read(&self, user: Arc<UserVfs>, req: vfs::Read) -> Result<vfs::ReadAnswer, ErrorBody> {
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
        Ok(vfs::ReadAnswer {
            path: req.path,
            offset: req.offset,
            length: returned,
            size: info.size,
            eof: req.offset + returned as u64 >= info.size,
            version,
            encoding,
            data,
        })
    }
}

impl Vfs {
    async fn search(
        &self,
        user: Arc<UserVfs>,
        on: &OnBehalf,
        req: vfs::Search,
    ) -> Result<vfs::SearchAnswer, ErrorBody> {
        if req.query.trim().is_empty() {
            return Err(bad("the query is empty"));
        }
        if req.query.len() > 1024 {
            return Err(bad("the query is longer than 1024 bytes"));
        }
        let limit = req.limit.unwrap_or(20).clamp(1, 200);
        let (semantic, query) = (req.semantic, req.query.clone());
        let searching = user.clone();
        let mut hits =
            blocking(move || searching.index.search(&searching.root, &req.query, limit)).await?;
        // An app limited to some paths finds only those.
        let scope = self.perms.scope(
            on.caller.user_id,
            &on.app,
            aether_proto::Capability::VfsRead,
        );
        if let Some(scope) = &scope {
            hits.retain(|hit| scope.covers(&hit.path));
        }
        if !semantic {
            return Ok(vfs::SearchAnswer {
                hits,
                semantic: None,
            });
        }
        if scope.is_some() {
            return Ok(vfs::SearchAnswer {
                hits,
                semantic: Some(vfs::SemanticNote {
                    ranked: false,
                    note: "full text only: this app may read only some of your files".into(),
                }),
            });
        }
        // By meaning too, when an AI provider makes embeddings; else full text, and say so.
        Ok(
            match self.by_meaning(&user, on, &query, limit, &hits).await {
                Ok((fused, note)) => vfs::SearchAnswer {
                    hits: fused,
                    semantic: Some(vfs::SemanticNote { ranked: true, note }),
                },
                Err(why) => vfs::SearchAnswer {
                    hits,
                    semantic: Some(vfs::SemanticNote {
                        ranked: false,
                        note: format!("full text only: {why}"),
                    }),
                },
            },
        )
    }

    /// Fuse the full-text hits with the files nearest the query in meaning, embedding
    /// first the files that changed since they were last embedded.
    async fn by_meaning(
        &self,
        user: &Arc<UserVfs>,
        on: &OnBehalf,
        query: &str,
        limit: usize,
        hits: &[vfs::Hit],
    ) -> Result<(Vec<vfs::Hit>, String), String> {
        use aether_proto::api::ai;
        const EMBED_TIMEOUT: Duration = Duration::from_secs(120);
        let asked = self
            .requester
            .request_internal(
                on,
                &ai::Embed {
                    texts: vec![query.to_owned()],
                    ..Default::default()
                },
                EMBED_TIMEOUT,
            )
            .await
            .map_err(|e| e.msg)?;
        let model = asked.model.clone();
        let query_vector = asked
            .vectors
            .into_iter()
            .next()
            .ok_or("the provider gave no vector for the query")?;
        let root = user.root.clone();
        let candidates = blocking(move || Ok(semantic::candidates(&root)))
            .await
            .map_err(|e| e.msg)?;
        let stale = user.vectors.stale(&candidates, &model);
        let present: HashSet<String> = candidates.iter().map(|c| c.path.clone()).collect();
        // Each batch is kept as soon as it is embedded; a batch the provider refuses is
        // halved until the one file it refuses is found, skipped and remembered. Anything
        // else (no quota left, the provider down) stops embedding: the files not embedded
        // yet are ranked by words alone this time.
        let mut embedded_now = 0;
        let mut stopped = None;
        for batch in stale.chunks(semantic::BATCH) {
            let (fresh, failed, stop) = self
                .embed_each(on, batch, &asked.provider, &model, EMBED_TIMEOUT)
                .await;
            embedded_now += fresh.len();
            user.vectors
                .update(fresh, failed, &present, &model)
                .map_err(|e| format!("cannot keep the vectors: {e}"))?;
            if let Some(why) = stop {
                stopped = Some(why);
                break;
            }
        }
        if stale.is_empty() {
            user.vectors
                .update(Vec::new(), Vec::new(), &present, &model)
                .map_err(|e| format!("cannot keep the vectors: {e}"))?;
        }
        let nearest = user.vectors.nearest(&query_vector, &model, limit);
        let words: Vec<String> = hits.iter().map(|h| h.path.clone()).collect();
        let meaning: Vec<String> = nearest.into_iter().map(|(path, _)| path).collect();
        let fused = semantic::fuse(&words, &meaning, limit)
            .into_iter()
            .map(|(path, score)| fused_hit(path, score, hits, &candidates))
            .collect();
        let mut note = format!(
            "ranked by meaning and words ({model}; {} files, {embedded_now} embedded now)",
            candidates.len()
        );
        let failures = user.vectors.failures(&model);
        if !failures.is_empty() {
            let named: Vec<String> = failures
                .iter()
                .take(5)
                .map(|(path, why)| format!("{path} ({why})"))
                .collect();
            note.push_str(&format!(
                "; {} by words only, as the provider refused them: {}{}",
                failures.len(),
                named.join(", "),
                if failures.len() > 5 { ", …" } else { "" }
            ));
        }
        if let Some(why) = stopped {
            note.push_str(&format!(
                "; some files are not embedded yet (by words only this time): {why}"
            ));
        }
        Ok((fused, note))
    }

    /// Embed `items`, halving a batch the provider refuses until each refused text is
    /// alone: (vectors, refused texts with why, why embedding must stop if it must).
    async fn embed_each<'a>(
        &self,
        on: &OnBehalf,
        items: &[&'a semantic::Candidate],
        provider: &str,
        model: &str,
        timeout: Duration,
    ) -> (
        Vec<(&'a semantic::Candidate, Vec<f32>)>,
        Vec<(&'a semantic::Candidate, String)>,
        Option<String>,
    ) {
        use aether_proto::api::ai;
        let (mut fresh, mut failed) = (Vec::new(), Vec::new());
        let mut work = vec![items];
        while let Some(part) = work.pop() {
            let asked = self
                .requester
                .request_internal(
                    on,
                    &ai::Embed {
                        texts: part.iter().map(|c| c.text.clone()).collect(),
                        provider: Some(provider.to_owned()),
                        model: Some(model.to_owned()),
                    },
                    timeout,
                )
                .await;
            match asked {
                Ok(embedded) if embedded.vectors.len() == part.len() => {
                    fresh.extend(part.iter().copied().zip(embedded.vectors));
                }
                Ok(_) => {
                    let why = "the provider gave a vector count that does not match".to_owned();
                    return (fresh, failed, Some(why));
                }
                // The provider refused what was sent: find which text.
                Err(e) if matches!(e.code, ErrorCode::BadFrame | ErrorCode::TooLarge) => {
                    if let [one] = part {
                        failed.push((*one, e.msg));
                    } else {
                        let (first, second) = part.split_at(part.len() / 2);
                        work.push(second);
                        work.push(first);
                    }
                }
                Err(e) => return (fresh, failed, Some(e.msg)),
            }
        }
        (fresh, failed, None)
    }
}

/// Who is acting, for events.
struct Ctx<'a> {
    events: &'a Publisher,
    on: OnBehalf,
}

impl Ctx<'_> {
    fn event<T: Serialize>(&self, kind: vfs::FileEventKind, data: &T) {
        self.events
            .publish(&self.on, &vfs::FileEvents::topic_of(kind), data);
    }
}

/// A hit of the fused ranking: the word search's own hit when it had one, else the file's
/// first line (after the path its text starts with) as the snippet.
fn fused_hit(
    path: String,
    score: f32,
    hits: &[vfs::Hit],
    candidates: &[semantic::Candidate],
) -> vfs::Hit {
    if let Some(hit) = hits.iter().find(|h| h.path == path) {
        return vfs::Hit {
            score,
            ..hit.clone()
        };
    }
    let snippet = candidates
        .iter()
        .find(|c| c.path == path)
        .and_then(|c| c.text.lines().skip(2).find(|l| !l.trim().is_empty()))
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    vfs::Hit {
        path,
        score,
        line: None,
        snippet,
    }
}
