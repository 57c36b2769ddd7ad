//! `vfs.write`: one-frame writes, chunked uploads, and the atomic commit both end in.

use std::io;
use std::sync::Arc;

use aether_proto::api::vfs::{self, WriteAnswer};
use aether_proto::{ErrorBody, ErrorCode};

use super::disk::{Kind, TempFile};
use super::path::VfsPath;
use super::search::Change;
use super::upload::{Upload, WriteOpts};
use super::{
    Ctx, Usage, UserVfs, Vfs, bad, blocking, conflict, decode_data, io_error, parse_path,
    version_string,
};

/// One chunk of an upload, with the conditions sent alongside it.
struct Chunk {
    offset: u64,
    data: Vec<u8>,
    more: bool,
    opts: WriteOpts,
}

/// What a commit writes: bytes from one frame, or a finished upload.
enum Source {
    Bytes(Vec<u8>),
    Upload(Box<TempFile>),
}

fn temp_name() -> String {
    format!("w-{:016x}", rand::random::<u64>())
}

fn quota_error(what: &str, needed: u64, quota: u64, used: u64) -> ErrorBody {
    ErrorBody::new(
        ErrorCode::QuotaExceeded,
        format!("{what} would need {needed} in all; your quota is {quota} and {used} are in use"),
    )
}

impl Vfs {
    pub(super) async fn write(
        &self,
        user: Arc<UserVfs>,
        ctx: &Ctx<'_>,
        req: vfs::Write,
    ) -> Result<WriteAnswer, ErrorBody> {
        let path = parse_path(&req.path)?;
        if path.is_root() {
            return Err(conflict("/ is a directory"));
        }
        let data = decode_data(&req.data, req.encoding)?;
        let opts = WriteOpts {
            append: req.append,
            if_version: req.if_version.clone(),
            if_absent: req.if_absent,
            parents: req.parents,
        };
        match (req.upload.as_deref(), req.more) {
            (None, false) => {
                if req.offset.is_some_and(|offset| offset != 0) {
                    return Err(bad(
                        "an offset needs an upload: start one with `more: true` at offset 0",
                    ));
                }
                self.commit(user, ctx, path, Source::Bytes(data), opts)
                    .await
            }
            (None, true) => self.start_upload(user, path, data, opts, req.offset).await,
            (Some(id), more) => {
                let Some(offset) = req.offset else {
                    return Err(bad("a chunk needs its `offset`"));
                };
                if opts.append {
                    return Err(bad("append cannot be combined with a chunked upload"));
                }
                let chunk = Chunk {
                    offset,
                    data,
                    more,
                    opts,
                };
                self.chunk(user, ctx, id, path, chunk).await
            }
        }
    }

    async fn start_upload(
        &self,
        user: Arc<UserVfs>,
        path: VfsPath,
        data: Vec<u8>,
        opts: WriteOpts,
        offset: Option<u64>,
    ) -> Result<WriteAnswer, ErrorBody> {
        if opts.append {
            return Err(bad("append cannot be combined with a chunked upload"));
        }
        if offset.is_some_and(|offset| offset != 0) {
            return Err(conflict("a new upload starts at offset 0"));
        }
        let user_id = user.id;
        self.check_quota_for_upload(&user, &path, data.len() as u64)
            .await?;
        let len = data.len() as u64;
        let temp = {
            let (user, path) = (user.clone(), path.clone());
            blocking(move || {
                let mut temp = user
                    .root
                    .temp_file(&temp_name(), None)
                    .map_err(|e| io_error(e, &path))?;
                temp.append(&data).map_err(|e| io_error(e, &path))?;
                Ok(temp)
            })
            .await?
        };
        let id = format!("u{:016x}", rand::random::<u64>());
        let mut upload = Upload::new(user_id, path.clone(), opts, temp);
        upload.record(0, len);
        if !self
            .uploads
            .insert_within(id.clone(), upload, self.limits.max_uploads)
        {
            return Err(ErrorBody::new(
                ErrorCode::RateLimited,
                format!(
                    "you have {} uploads open, the limit; finish or abandon one",
                    self.limits.max_uploads
                ),
            ));
        }
        Ok(WriteAnswer::Uploading {
            path: path.to_string(),
            upload: id,
            received: len,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn chunk(
        &self,
        user: Arc<UserVfs>,
        ctx: &Ctx<'_>,
        id: &str,
        path: VfsPath,
        chunk: Chunk,
    ) -> Result<WriteAnswer, ErrorBody> {
        let Chunk {
            offset,
            data,
            more,
            opts: given,
        } = chunk;
        let user_id = user.id;
        let Some(shared) = self.uploads.get(id, user_id) else {
            return Err(ErrorBody::new(
                ErrorCode::NotFound,
                format!("no upload {id} (it may have been finished or abandoned)"),
            ));
        };
        let mut upload = shared.lock().await;
        if upload.path != path {
            return Err(conflict(format!(
                "upload {id} is for {}, not {path}",
                upload.path
            )));
        }
        // Conditions sent with any chunk count, not only the first chunk's.
        if given.if_version.is_some() {
            upload.opts.if_version = given.if_version;
        }
        upload.opts.if_absent |= given.if_absent;
        upload.opts.parents |= given.parents;
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or_else(|| bad("offset + length overflows"))?;
        if let Err((from, to)) = upload.check(offset, end) {
            return Err(conflict(format!(
                "bytes {from}..{to} of upload {id} were already received; the chunk at offset {offset} overlaps them"
            )));
        }
        // The last chunk commits: refuse it before writing if bytes are still missing,
        // so it can simply be sent again once they are.
        if !more && let Err(missing) = upload.complete_with(offset, end) {
            return Err(conflict(format!(
                "upload {id} is missing bytes from offset {missing}; send them, then the last chunk again"
            )));
        }
        self.check_quota_for_upload(&user, &path, end.max(upload.end()))
            .await?;
        let Some(mut temp) = upload.temp.take() else {
            return Err(ErrorBody::new(
                ErrorCode::Internal,
                "the upload lost its temp file",
            ));
        };
        let (temp, written) = {
            let path = path.clone();
            blocking(move || {
                let written = temp.write_at(offset, &data).map_err(|e| io_error(e, &path));
                Ok((temp, written))
            })
            .await?
        };
        upload.temp = Some(temp);
        written?;
        upload.record(offset, end);
        if more {
            return Ok(WriteAnswer::Uploading {
                path: path.to_string(),
                upload: id.to_owned(),
                received: upload.received(),
            });
        }
        let temp = upload
            .temp
            .take()
            .ok_or_else(|| ErrorBody::new(ErrorCode::Internal, "no temp file"))?;
        let opts = upload.opts.clone();
        drop(upload);
        self.uploads.remove(id);
        self.commit(user, ctx, path, Source::Upload(Box::new(temp)), opts)
            .await
    }

    /// Refuse an upload early when its size alone is over the quota.
    async fn check_quota_for_upload(
        &self,
        user: &Arc<UserVfs>,
        path: &VfsPath,
        size: u64,
    ) -> Result<(), ErrorBody> {
        let used = user.lock().await?.unwrap_or_default().bytes;
        let quota = self.limits.quota_bytes;
        // The file being replaced frees its bytes; only count what it adds.
        let replaced = user.root.info_followed(path).map(|i| i.size).unwrap_or(0);
        let total = used.saturating_sub(replaced) + size;
        if total > quota {
            return Err(quota_error(
                &format!("writing {size} bytes to {path}"),
                total,
                quota,
                used,
            ));
        }
        Ok(())
    }

    /// The one place a file's content changes: under the user's lock, check the
    /// version and quota, then rename the fsynced temp file into place.
    async fn commit(
        &self,
        user: Arc<UserVfs>,
        ctx: &Ctx<'_>,
        path: VfsPath,
        source: Source,
        opts: WriteOpts,
    ) -> Result<WriteAnswer, ErrorBody> {
        let mut guard = user.lock().await?;
        let usage = guard.unwrap_or_default();
        let limits = self.limits.clone();
        let (size, version, created, usage) = {
            let (user, path) = (user.clone(), path.clone());
            blocking(move || {
                let fail = |e: io::Error| io_error(e, &path);
                let current = match user.root.info_followed(&path) {
                    Ok(info) => Some(info),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                    Err(e) => return Err(fail(e)),
                };
                if current.as_ref().is_some_and(|info| info.kind == Kind::Dir) {
                    return Err(conflict(format!("{path} is a directory")));
                }
                if opts.if_absent && current.is_some() {
                    return Err(conflict(format!("{path} already exists")));
                }
                if let Some(expected) = &opts.if_version {
                    let now = user.version(&path).map_err(fail)?;
                    if now.as_deref() != Some(expected.as_str()) {
                        let now = now.unwrap_or_else(|| "absent".into());
                        return Err(conflict(format!(
                            "{path} changed since version {expected} (it is now {now}): reload it and merge"
                        )));
                    }
                }
                ensure_parent(&user, &path, opts.parents)?;
                let temp = match source {
                    Source::Upload(temp) => *temp,
                    Source::Bytes(bytes) => {
                        let seed = (opts.append && current.is_some()).then_some(&path);
                        let mut temp = user.root.temp_file(&temp_name(), seed).map_err(fail)?;
                        temp.append(&bytes).map_err(fail)?;
                        temp
                    }
                };
                let old_size = current.as_ref().map_or(0, |info| info.size);
                let bytes = usage.bytes.saturating_sub(old_size) + temp.len;
                if bytes > limits.quota_bytes {
                    return Err(quota_error(
                        &format!("writing {} bytes to {path}", temp.len),
                        bytes,
                        limits.quota_bytes,
                        usage.bytes,
                    ));
                }
                let files = usage.files + u64::from(current.is_none());
                if files > limits.quota_files {
                    return Err(ErrorBody::new(
                        ErrorCode::QuotaExceeded,
                        format!("creating {path} would make {files} files; your quota is {} files", limits.quota_files),
                    ));
                }
                let (hash, info) = user.root.commit(temp, &path).map_err(fail)?;
                let version = version_string(&hash);
                user.remember(&info, &version);
                Ok((info.size, version, current.is_none(), Usage { bytes, files }))
            })
            .await?
        };
        *guard = Some(usage);
        drop(guard);
        user.index.changed(Change::Upsert(path.clone()));
        let kind = if created {
            vfs::FileEventKind::Created
        } else {
            vfs::FileEventKind::Written
        };
        ctx.event(
            kind,
            &vfs::Changed {
                path: path.to_string(),
                kind: Some(vfs::Kind::File),
                size: Some(size),
                version: Some(version.clone()),
                ..Default::default()
            },
        );
        Ok(WriteAnswer::Committed {
            path: path.to_string(),
            size,
            version,
            created,
        })
    }
}

/// The parent of `path` must be a directory; with `parents`, create it.
pub(super) fn ensure_parent(
    user: &UserVfs,
    path: &VfsPath,
    parents: bool,
) -> Result<(), ErrorBody> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    if parent.is_root() {
        return Ok(());
    }
    match user.root.info_followed(&parent) {
        Ok(info) if info.kind == Kind::Dir => Ok(()),
        Ok(_) => Err(conflict(format!("{parent} is not a directory"))),
        Err(e) if e.kind() == io::ErrorKind::NotFound && parents => user
            .root
            .mkdir(&parent, true)
            .map_err(|e| io_error(e, &parent)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ErrorBody::new(
            ErrorCode::NotFound,
            format!("no directory {parent}: create it first, or pass parents"),
        )),
        Err(e) => Err(io_error(e, &parent)),
    }
}
