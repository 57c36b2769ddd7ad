//! `vfs.list`, `vfs.stat`, `vfs.mkdir`, `vfs.remove`, `vfs.move`, `vfs.copy`.

use std::io;
use std::sync::Arc;

use aether_proto::api::vfs;
use aether_proto::{ErrorBody, ErrorCode};

use super::disk::Kind;
use super::path::VfsPath;
use super::search::Change;
use super::write::ensure_parent;
use super::{Ctx, Usage, UserVfs, Vfs, blocking, conflict, io_error, parse_path};

fn forbidden(msg: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::Forbidden, msg)
}

impl Vfs {
    pub(super) async fn list(
        &self,
        user: Arc<UserVfs>,
        req: vfs::List,
    ) -> Result<vfs::Listing, ErrorBody> {
        let path = parse_path(&req.path)?;
        let entries = blocking(move || {
            let info = user
                .root
                .info_followed(&path)
                .map_err(|e| io_error(e, &path))?;
            if info.kind != Kind::Dir {
                return Err(conflict(format!("{path} is not a directory")));
            }
            user.root.list(&path).map_err(|e| io_error(e, &path))
        })
        .await?;
        Ok(vfs::Listing {
            path: req.path,
            entries,
        })
    }

    pub(super) async fn stat(
        &self,
        user: Arc<UserVfs>,
        req: vfs::Stat,
    ) -> Result<vfs::StatAnswer, ErrorBody> {
        let path = parse_path(&req.path)?;
        blocking(move || {
            let fail = |e| io_error(e, &path);
            let info = user.root.info(&path).map_err(fail)?;
            let version = match info.kind {
                Kind::File => user.version(&path).map_err(fail)?,
                _ => None,
            };
            Ok(vfs::StatAnswer {
                path: path.to_string(),
                kind: info.kind,
                size: info.size,
                modified_ms: info.modified_ms,
                version,
            })
        })
        .await
    }

    pub(super) async fn mkdir(
        &self,
        user: Arc<UserVfs>,
        ctx: &Ctx<'_>,
        req: vfs::Mkdir,
    ) -> Result<vfs::MkdirAnswer, ErrorBody> {
        let path = parse_path(&req.path)?;
        if path.is_root() {
            return Err(conflict("/ already exists"));
        }
        let guard = user.lock().await?;
        let created = {
            let (user, path) = (user.clone(), path.clone());
            blocking(move || {
                match user.root.info_followed(&path) {
                    Ok(info) if info.kind == Kind::Dir && req.parents => return Ok(false),
                    Ok(_) => return Err(conflict(format!("{path} already exists"))),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error(e, &path)),
                }
                ensure_parent(&user, &path, req.parents)?;
                user.root
                    .mkdir(&path, false)
                    .map_err(|e| io_error(e, &path))?;
                Ok(true)
            })
            .await?
        };
        drop(guard);
        if created {
            ctx.event(
                vfs::FileEventKind::Created,
                &vfs::Changed {
                    path: path.to_string(),
                    kind: Some(vfs::Kind::Dir),
                    ..Default::default()
                },
            );
        }
        Ok(vfs::MkdirAnswer {
            path: path.to_string(),
            created,
        })
    }

    pub(super) async fn remove(
        &self,
        user: Arc<UserVfs>,
        ctx: &Ctx<'_>,
        req: vfs::Remove,
    ) -> Result<vfs::Removed, ErrorBody> {
        let path = parse_path(&req.path)?;
        if path.is_root() {
            return Err(forbidden(
                "the root cannot be removed; remove what is inside it",
            ));
        }
        let mut guard = user.lock().await?;
        let usage = guard.unwrap_or_default();
        let (kind, freed) = {
            let (user, path) = (user.clone(), path.clone());
            blocking(move || {
                let fail = |e| io_error(e, &path);
                let info = user.root.info(&path).map_err(fail)?;
                let freed = user.root.usage(&path).map_err(fail)?;
                match info.kind {
                    Kind::Dir => user.root.remove_dir(&path, req.recursive).map_err(fail)?,
                    Kind::File | Kind::Symlink | Kind::Other => {
                        user.root.remove_file(&path).map_err(fail)?
                    }
                }
                Ok((info.kind, freed))
            })
            .await?
        };
        *guard = Some(Usage {
            bytes: usage.bytes.saturating_sub(freed.0),
            files: usage.files.saturating_sub(freed.1),
        });
        drop(guard);
        user.index.changed(Change::Remove(path.clone()));
        ctx.event(
            vfs::FileEventKind::Removed,
            &vfs::Changed {
                path: path.to_string(),
                kind: Some(kind),
                ..Default::default()
            },
        );
        Ok(vfs::Removed {
            path: path.to_string(),
            kind,
            files: freed.1,
            bytes: freed.0,
        })
    }

    pub(super) async fn rename(
        &self,
        user: Arc<UserVfs>,
        ctx: &Ctx<'_>,
        req: vfs::Move,
    ) -> Result<vfs::Moved, ErrorBody> {
        let (from, to) = (parse_path(&req.from)?, parse_path(&req.to)?);
        check_pair(&from, &to, "move")?;
        let mut guard = user.lock().await?;
        let usage = guard.unwrap_or_default();
        let replaced = {
            let (user, from, to) = (user.clone(), from.clone(), to.clone());
            blocking(move || {
                user.root.info(&from).map_err(|e| io_error(e, &from))?;
                let replaced = check_target(&user, &to, req.overwrite)?;
                ensure_parent(&user, &to, false)?;
                user.root
                    .rename(&from, &to)
                    .map_err(|e| io_error(e, &from))?;
                Ok(replaced)
            })
            .await?
        };
        *guard = Some(Usage {
            bytes: usage.bytes.saturating_sub(replaced.unwrap_or(0)),
            files: usage.files.saturating_sub(u64::from(replaced.is_some())),
        });
        drop(guard);
        user.index.changed(Change::Remove(from.clone()));
        user.index.changed(Change::Upsert(to.clone()));
        ctx.event(
            vfs::FileEventKind::Moved,
            &vfs::Changed {
                path: to.to_string(),
                from: Some(from.to_string()),
                to: Some(to.to_string()),
                ..Default::default()
            },
        );
        Ok(vfs::Moved {
            from: from.to_string(),
            to: to.to_string(),
        })
    }

    pub(super) async fn copy(
        &self,
        user: Arc<UserVfs>,
        ctx: &Ctx<'_>,
        req: vfs::Copy,
    ) -> Result<vfs::Moved, ErrorBody> {
        let (from, to) = (parse_path(&req.from)?, parse_path(&req.to)?);
        check_pair(&from, &to, "copy")?;
        let mut guard = user.lock().await?;
        let usage = guard.unwrap_or_default();
        let limits = self.limits.clone();
        let (bytes, files) = {
            let (user, from, to) = (user.clone(), from.clone(), to.clone());
            blocking(move || {
                let (bytes, files) = user.root.usage(&from).map_err(|e| io_error(e, &from))?;
                let replaced = check_target(&user, &to, req.overwrite)?;
                ensure_parent(&user, &to, false)?;
                let total = usage.bytes.saturating_sub(replaced.unwrap_or(0)) + bytes;
                if total > limits.quota_bytes {
                    return Err(ErrorBody::new(
                        ErrorCode::QuotaExceeded,
                        format!(
                            "copying {bytes} bytes to {to} would need {total} in all; your quota is {}",
                            limits.quota_bytes
                        ),
                    ));
                }
                let after = (usage.files + files).saturating_sub(u64::from(replaced.is_some()));
                if after > limits.quota_files {
                    return Err(ErrorBody::new(
                        ErrorCode::QuotaExceeded,
                        format!("copying {files} files would pass your quota of {} files", limits.quota_files),
                    ));
                }
                let mut name = || format!("c-{:016x}", rand::random::<u64>());
                user.root.copy(&from, &to, &mut name).map_err(|e| io_error(e, &from))?;
                Ok((total, (usage.files + files).saturating_sub(u64::from(replaced.is_some()))))
            })
            .await?
        };
        *guard = Some(Usage { bytes, files });
        drop(guard);
        user.index.changed(Change::Upsert(to.clone()));
        ctx.event(
            vfs::FileEventKind::Created,
            &vfs::Changed {
                path: to.to_string(),
                from: Some(from.to_string()),
                ..Default::default()
            },
        );
        Ok(vfs::Moved {
            from: from.to_string(),
            to: to.to_string(),
        })
    }
}

/// Refuse moving or copying the root, or a directory into itself.
fn check_pair(from: &VfsPath, to: &VfsPath, verb: &str) -> Result<(), ErrorBody> {
    if from.is_root() {
        return Err(forbidden(format!(
            "the root cannot be the source of a {verb}"
        )));
    }
    if to.is_root() {
        return Err(conflict("/ already exists"));
    }
    if to.starts_with(from) {
        return Err(conflict(format!("cannot {verb} {from} into itself ({to})")));
    }
    Ok(())
}

/// The destination must be free, or a file that `overwrite` may replace.
/// Returns the size of the file it replaces, if any.
fn check_target(user: &UserVfs, to: &VfsPath, overwrite: bool) -> Result<Option<u64>, ErrorBody> {
    match user.root.info(to) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(e, to)),
        Ok(info) if info.kind == Kind::Dir => {
            Err(conflict(format!("{to} is a directory; remove it first")))
        }
        Ok(_) if !overwrite => Err(conflict(format!(
            "{to} already exists; pass overwrite to replace it"
        ))),
        Ok(info) => Ok(Some(info.size)),
    }
}
