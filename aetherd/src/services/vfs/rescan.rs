//! Catching up with changes made behind the VFS's back: a program writes the
//! user's files through its preopened root, not through `vfs.write`. After a
//! job that changed files the compute service asks for `vfs.rescan`, which
//! recounts the usage, reindexes what changed, and reports it as events.

use std::path::Path;
use std::sync::Arc;

use aether_proto::ErrorBody;
use aether_proto::api::vfs;

use super::disk::Kind;
use super::search::Change;
use super::{Ctx, Usage, UserVfs, Vfs, VfsPath, blocking, io_error};

/// Changed files reported one by one; past this, only the count.
const MAX_ITEMIZED: usize = 1000;
/// File timestamps come from a coarse kernel clock (one tick, ≤ 10 ms, behind the precise
/// one): files touched this long before `since` count as changed too.
const SLACK_NS: i128 = 10_000_000;

/// The VFS path of a name on disk, if the VFS can address it exactly as it is.
fn addressable(relative: &Path) -> Option<VfsPath> {
    let text = relative.to_str()?;
    let raw = format!("/{}", text.trim_start_matches("./"));
    VfsPath::parse(&raw)
        .ok()
        .filter(|path| path.to_string() == raw)
}

impl Vfs {
    pub(super) async fn usage(&self, user: Arc<UserVfs>) -> Result<vfs::UsageAnswer, ErrorBody> {
        let usage = user.lock().await?.unwrap_or_default();
        Ok(vfs::UsageAnswer {
            bytes: usage.bytes,
            files: usage.files,
            quota_bytes: self.limits.quota_bytes,
            quota_files: self.limits.quota_files,
        })
    }

    pub(super) async fn rescan(
        &self,
        user: Arc<UserVfs>,
        ctx: &Ctx<'_>,
        req: vfs::Rescan,
    ) -> Result<vfs::Rescanned, ErrorBody> {
        // Held while counting: no VFS change interleaves with the recount.
        let mut guard = user.changes.lock().await;
        let since_ns = i128::from(req.since_ms) * 1_000_000 - SLACK_NS;
        let root = user.root.clone();
        let (usage, changed) = blocking(move || {
            let (mut usage, mut changed) = (Usage::default(), vec![]);
            // One pass: counted over every name on disk, itemized over those the VFS addresses.
            root.scan(&VfsPath::root(), &mut |relative, info| {
                usage.bytes += info.size;
                usage.files += 1;
                // ctime too: a rename or a metadata change leaves mtime alone.
                if info.kind == Kind::File
                    && info.stamp.mtime_ns.max(info.stamp.ctime_ns) >= since_ns
                    && let Some(path) = addressable(relative)
                {
                    changed.push(path);
                }
            })
            .map_err(|e| io_error(e, &VfsPath::root()))?;
            Ok((usage, changed))
        })
        .await?;
        *guard = Some(usage);
        drop(guard);
        for path in &changed {
            user.index.changed(Change::Upsert(path.clone()));
        }
        if req.removed {
            user.index.changed(Change::Prune);
        }
        for path in changed.iter().take(MAX_ITEMIZED) {
            ctx.event(
                vfs::FileEventKind::Written,
                &vfs::Changed {
                    path: path.to_string(),
                    app: Some(ctx.on.app.clone()),
                    job: Some(req.job.clone()),
                    ..Default::default()
                },
            );
        }
        let summary = vfs::Rescanned {
            job: req.job,
            app: ctx.on.app.clone(),
            written: changed.len(),
            itemized: changed.len().min(MAX_ITEMIZED),
            removed: req.removed,
            bytes: usage.bytes,
            files: usage.files,
        };
        // Listeners that keep views of the tree refresh on this one.
        ctx.event(vfs::FileEventKind::Rescanned, &summary);
        Ok(summary)
    }
}
