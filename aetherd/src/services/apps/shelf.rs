//! Where installed bundles' files live: `<apps dir>/<id>/<sha256>/`, one folder per bundle,
//! written under `.staging/` (fsynced) and renamed into place whole. The store's `apps` row is
//! the commit point: a folder no row names is a leftover of an install that never committed
//! (or of a version replaced since), and `sweep` removes it at start.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use super::bundle::Bundle;

pub struct Shelf {
    root: PathBuf,
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

impl Shelf {
    pub fn new(root: PathBuf) -> Shelf {
        Shelf { root }
    }

    pub fn dir_of(&self, id: &str, sha256: &str) -> PathBuf {
        self.root.join(id).join(sha256)
    }

    fn staging(&self) -> PathBuf {
        self.root.join(".staging")
    }

    /// Put a checked bundle's files in place, whole or not at all. Blocking.
    pub fn place(&self, bundle: &Bundle) -> std::io::Result<PathBuf> {
        let target = self.dir_of(&bundle.manifest.id, &bundle.sha256);
        let placed = std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir());
        if placed {
            // Named by content: the same bundle, placed before and complete (renames are whole).
            return Ok(target);
        }
        let staging = self.staging();
        std::fs::create_dir_all(&staging)?;
        sync_dir(&self.root)?;
        let work = staging.join(format!(
            "{}-{:016x}",
            bundle.manifest.id,
            rand::random::<u64>()
        ));
        std::fs::create_dir(&work)?;
        let written = self.write_files(&work, bundle).and_then(|()| {
            let parent = self.root.join(&bundle.manifest.id);
            std::fs::create_dir_all(&parent)?;
            sync_dir(&self.root)?;
            std::fs::rename(&work, &target)?;
            sync_dir(&parent)
        });
        if written.is_err() {
            let _ = std::fs::remove_dir_all(&work);
        }
        written.map(|()| target)
    }

    /// Each file through a capability on the fresh folder, so no name can lead out of it.
    fn write_files(&self, work: &Path, bundle: &Bundle) -> std::io::Result<()> {
        let dir = Dir::open_ambient_dir(work, ambient_authority())?;
        for (path, bytes) in &bundle.files {
            if let Some((parent, _)) = path.rsplit_once('/') {
                dir.create_dir_all(parent)?;
            }
            let mut file = dir.create(path)?;
            file.write_all(bytes)?;
            file.sync_all()?;
        }
        // Every folder made, the deepest first, so each one's entry is durable in its parent.
        let mut dirs: Vec<&str> = bundle
            .files
            .keys()
            .flat_map(|p| p.match_indices('/').map(move |(at, _)| &p[..at]))
            .collect();
        dirs.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        dirs.dedup();
        for sub in dirs {
            sync_dir(&work.join(sub))?;
        }
        sync_dir(work)
    }

    /// Remove one bundle's folder (its app was replaced or uninstalled). Blocking.
    pub fn remove(&self, id: &str, sha256: &str) {
        let dir = self.dir_of(id, sha256);
        if let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("cannot remove {}: {e}", dir.display());
        }
        // The app's own folder goes once empty.
        let _ = std::fs::remove_dir(self.root.join(id));
    }

    /// Remove the staging area and every bundle folder not in `keep` (id, sha256). Blocking.
    pub fn sweep(&self, keep: &HashSet<(String, String)>) -> std::io::Result<usize> {
        let mut removed = 0;
        match std::fs::remove_dir_all(self.staging()) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let apps = match std::fs::read_dir(&self.root) {
            Ok(apps) => apps,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
            Err(e) => return Err(e),
        };
        for app in apps.flatten() {
            // Only real folders: a link here is no bundle, and is never followed.
            if !app.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let id = app.file_name().to_string_lossy().into_owned();
            let Ok(versions) = std::fs::read_dir(app.path()) else {
                continue;
            };
            for version in versions.flatten() {
                if !version.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let sha = version.file_name().to_string_lossy().into_owned();
                if !keep.contains(&(id.clone(), sha.clone())) {
                    tracing::info!("removing {id}/{sha}: no installed app uses it");
                    let _ = std::fs::remove_dir_all(version.path());
                    removed += 1;
                }
            }
            let _ = std::fs::remove_dir(app.path());
        }
        Ok(removed)
    }
}
