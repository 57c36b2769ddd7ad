//! Blocking file operations on one user's root, through a cap-std `Dir`: every
//! path is resolved inside the root, and a symlink that points out of it is
//! never followed. Writes go to a temp file outside the root, are fsynced, then
//! renamed into place and the directory fsynced: a crash leaves the old file whole.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, MetadataExt, OpenOptions};

use super::path::VfsPath;

/// What an entry is.
pub use aether_proto::api::vfs::{Entry, Kind};

/// Identity of a file's current content on disk, to validate cached versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stamp {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

pub struct Info {
    pub kind: Kind,
    pub size: u64,
    pub modified_ms: i64,
    pub stamp: Stamp,
}

fn kind_of(file_type: cap_std::fs::FileType) -> Kind {
    if file_type.is_symlink() {
        Kind::Symlink
    } else if file_type.is_dir() {
        Kind::Dir
    } else if file_type.is_file() {
        Kind::File
    } else {
        Kind::Other
    }
}

fn info_of(meta: &cap_std::fs::Metadata) -> Info {
    let modified_ms = meta
        .modified()
        .ok()
        .and_then(|t| t.into_std().duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    Info {
        kind: kind_of(meta.file_type()),
        size: meta.len(),
        modified_ms,
        stamp: Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
            ctime_ns: meta.ctime() as i128 * 1_000_000_000 + meta.ctime_nsec() as i128,
        },
    }
}

/// One user's files, and a scratch dir beside (not inside) the root for temp files.
pub struct UserRoot {
    root: Dir,
    scratch: Dir,
}

impl UserRoot {
    pub fn open(root: &Path, scratch: &Path) -> io::Result<UserRoot> {
        for dir in [root, scratch] {
            std::fs::create_dir_all(dir)?;
        }
        // Temp files left by a crash are garbage: the real files were never touched.
        if let Ok(entries) = std::fs::read_dir(scratch) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(UserRoot {
            root: Dir::open_ambient_dir(root, ambient_authority())?,
            scratch: Dir::open_ambient_dir(scratch, ambient_authority())?,
        })
    }

    pub fn info(&self, path: &VfsPath) -> io::Result<Info> {
        if path.is_root() {
            return self.root.dir_metadata().map(|m| info_of(&m));
        }
        self.root
            .symlink_metadata(path.relative())
            .map(|m| info_of(&m))
    }

    /// Follows symlinks (inside the root only).
    pub fn info_followed(&self, path: &VfsPath) -> io::Result<Info> {
        if path.is_root() {
            return self.root.dir_metadata().map(|m| info_of(&m));
        }
        self.root.metadata(path.relative()).map(|m| info_of(&m))
    }

    /// Is any part of `path` that exists a symbolic link (which leads elsewhere in the root)?
    pub fn has_link_on_the_way(&self, path: &VfsPath) -> bool {
        let mut walked = PathBuf::new();
        for part in path.relative().components() {
            walked.push(part);
            match self.root.symlink_metadata(&walked) {
                Ok(meta) if meta.file_type().is_symlink() => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    }

    pub fn list(&self, path: &VfsPath) -> io::Result<Vec<Entry>> {
        let dir = if path.is_root() {
            self.root.try_clone()?
        } else {
            self.root.open_dir(path.relative())?
        };
        let mut entries = vec![];
        for entry in dir.entries()? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                Err(_) => continue, // removed meanwhile
            };
            let info = info_of(&meta);
            entries.push(Entry {
                name,
                kind: info.kind,
                size: info.size,
                modified_ms: info.modified_ms,
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Open a file (following symlinks inside the root only) with the stamp of what was opened.
    pub fn open_file(&self, path: &VfsPath) -> io::Result<(std::fs::File, Info)> {
        let file = self.root.open(path.relative())?;
        let info = info_of(&file.metadata()?);
        if info.kind != Kind::File {
            return Err(io::Error::new(io::ErrorKind::IsADirectory, "not a file"));
        }
        Ok((file.into_std(), info))
    }

    /// Read up to `length` bytes at `offset`.
    pub fn read_at(
        &self,
        path: &VfsPath,
        offset: u64,
        length: usize,
    ) -> io::Result<(Vec<u8>, Info)> {
        let (file, info) = self.open_file(path)?;
        Ok((read_from(&file, &info, offset, length)?, info))
    }

    /// A new temp file in the scratch dir; `seed` copies an existing file's content first (append).
    pub fn temp_file(&self, name: &str, seed: Option<&VfsPath>) -> io::Result<TempFile> {
        let file = self.scratch.open_with(
            name,
            OpenOptions::new().read(true).write(true).create_new(true),
        )?;
        let mut temp = TempFile {
            name: name.to_owned(),
            file: file.into_std(),
            scratch: self.scratch.try_clone()?,
            hasher: Some(blake3::Hasher::new()),
            len: 0,
            committed: false,
        };
        if let Some(seed) = seed {
            let mut source = self.root.open(seed.relative())?.into_std();
            let mut buf = vec![0; 256 * 1024];
            loop {
                let n = source.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                temp.append(&buf[..n])?;
            }
        }
        Ok(temp)
    }

    /// fsync the temp file, rename it over `path`, fsync the directory.
    pub fn commit(&self, mut temp: TempFile, path: &VfsPath) -> io::Result<(blake3::Hash, Info)> {
        temp.file.sync_all()?;
        let hash = temp.hash()?;
        self.scratch
            .rename(&temp.name, &self.root, path.relative())?;
        temp.committed = true;
        self.sync_parent(path)?;
        let info = self.info(path)?;
        Ok((hash, info))
    }

    /// fsync the directory holding `path`, so a rename or create survives a crash.
    /// (cap-std's directory handles are O_PATH, which cannot be fsynced: open it for reading.)
    fn sync_parent(&self, path: &VfsPath) -> io::Result<()> {
        let parent = path.parent().unwrap_or_else(VfsPath::root);
        let dir = self
            .root
            .open_with(parent.relative(), OpenOptions::new().read(true))?;
        dir.sync_all()
    }

    pub fn mkdir(&self, path: &VfsPath, parents: bool) -> io::Result<()> {
        if parents {
            self.root.create_dir_all(path.relative())?;
        } else {
            self.root.create_dir(path.relative())?;
        }
        self.sync_parent(path)
    }

    pub fn remove_file(&self, path: &VfsPath) -> io::Result<()> {
        self.root.remove_file(path.relative())?;
        self.sync_parent(path)
    }

    pub fn remove_dir(&self, path: &VfsPath, recursive: bool) -> io::Result<()> {
        if recursive {
            self.root.remove_dir_all(path.relative())?;
        } else {
            self.root.remove_dir(path.relative())?;
        }
        self.sync_parent(path)
    }

    pub fn rename(&self, from: &VfsPath, to: &VfsPath) -> io::Result<()> {
        self.root
            .rename(from.relative(), &self.root, to.relative())?;
        self.sync_parent(to)?;
        self.sync_parent(from)
    }

    /// Total bytes and files under `path`, never following symlinks.
    pub fn usage(&self, path: &VfsPath) -> io::Result<(u64, u64)> {
        let (mut bytes, mut files) = (0, 0);
        self.scan(path, &mut |_, info| {
            bytes += info.size;
            files += 1;
        })?;
        Ok((bytes, files))
    }

    /// Visit every entry that is not a directory under `path` (or `path` itself), with its
    /// path relative to the root, never following symlinks. Every name on disk is visited,
    /// also names the VFS cannot address (programs can make them), so no file escapes the
    /// quota; what cannot be read (gone meanwhile, nested past PATH_MAX) is skipped.
    pub fn scan(&self, path: &VfsPath, visit: &mut dyn FnMut(&Path, &Info)) -> io::Result<()> {
        let info = self.info(path)?;
        if info.kind != Kind::Dir {
            visit(&path.relative(), &info);
            return Ok(());
        }
        // Paths, not open handles: a wide tree must not hold a descriptor per pending dir.
        let mut pending = vec![path.relative()];
        while let Some(relative) = pending.pop() {
            let dir = match self.root.open_dir(&relative) {
                Ok(dir) => dir,
                Err(e) => {
                    tracing::warn!("vfs scan: skipping {}: {e}", relative.display());
                    continue;
                }
            };
            let Ok(entries) = dir.entries() else { continue };
            for entry in entries.flatten() {
                let child = relative.join(entry.file_name());
                match entry.file_type() {
                    Ok(kind) if kind.is_dir() => pending.push(child),
                    Ok(_) => {
                        if let Ok(meta) = entry.metadata() {
                            visit(&child, &info_of(&meta));
                        }
                    }
                    Err(_) => {}
                }
            }
        }
        Ok(())
    }

    /// Visit `path` and everything under it, depth first, never following symlinks.
    pub fn walk(&self, path: &VfsPath, visit: &mut dyn FnMut(&VfsPath, &Info)) -> io::Result<()> {
        let info = self.info(path)?;
        visit(path, &info);
        if info.kind == Kind::Dir {
            for entry in self.list(path)? {
                // Names that are not valid VFS names cannot be addressed; skip them.
                // A child that cannot be read (gone meanwhile, or a name on disk that is not
                // its VFS form) is skipped, not the whole walk.
                if let Ok(child) = path.join(&entry.name) {
                    let _ = self.walk(&child, visit);
                }
            }
        }
        Ok(())
    }

    /// Copy a file or a directory tree; symlinks are not copied.
    pub fn copy(
        &self,
        from: &VfsPath,
        to: &VfsPath,
        temp_name: &mut dyn FnMut() -> String,
    ) -> io::Result<u64> {
        let info = self.info(from)?;
        match info.kind {
            Kind::File => {
                let temp = self.temp_file(&temp_name(), Some(from))?;
                let bytes = temp.len;
                self.commit(temp, to)?;
                Ok(bytes)
            }
            Kind::Dir => {
                self.root.create_dir(to.relative())?;
                let mut bytes = 0;
                for entry in self.list(from)? {
                    if let (Ok(src), Ok(dst)) = (from.join(&entry.name), to.join(&entry.name))
                        && matches!(entry.kind, Kind::File | Kind::Dir)
                    {
                        bytes += self.copy(&src, &dst, temp_name)?;
                    }
                }
                self.sync_parent(to)?;
                Ok(bytes)
            }
            Kind::Symlink | Kind::Other => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "only files and directories can be copied",
            )),
        }
    }
}

/// A file being written in the scratch dir, hashed as it is written in order.
/// Dropped without being committed, it removes itself.
pub struct TempFile {
    name: String,
    file: std::fs::File,
    scratch: Dir,
    /// Valid while every write appended at the end; else the hash is recomputed at commit.
    hasher: Option<blake3::Hasher>,
    pub len: u64,
    committed: bool,
}

impl TempFile {
    pub fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.write_at(self.len, data)
    }

    /// Write at an offset; chunks of an upload may arrive in any order.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.write_all_at(data, offset)?;
        match &mut self.hasher {
            Some(hasher) if offset == self.len => {
                hasher.update(data);
            }
            _ => self.hasher = None,
        }
        self.len = self.len.max(offset + data.len() as u64);
        Ok(())
    }

    fn hash(&mut self) -> io::Result<blake3::Hash> {
        if let Some(hasher) = self.hasher.take() {
            return Ok(hasher.finalize());
        }
        self.file.seek(SeekFrom::Start(0))?;
        let mut hasher = blake3::Hasher::new();
        hasher.update_reader(&mut self.file)?;
        Ok(hasher.finalize())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = self.scratch.remove_file(&self.name);
        }
    }
}

/// Up to `length` bytes at `offset` of an open file.
pub fn read_from(
    file: &std::fs::File,
    info: &Info,
    offset: u64,
    length: usize,
) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let want = length.min(info.size.saturating_sub(offset) as usize);
    let mut buf = vec![0; want];
    let mut filled = 0;
    while filled < want {
        let n = file.read_at(&mut buf[filled..], offset + filled as u64)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    buf.truncate(filled);
    Ok(buf)
}

/// The BLAKE3 of an open file's whole content.
pub fn hash_file(file: &std::fs::File) -> io::Result<blake3::Hash> {
    use std::os::unix::fs::FileExt;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0; 256 * 1024];
    let mut offset = 0;
    loop {
        let n = file.read_at(&mut buf, offset)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        offset += n as u64;
    }
    Ok(hasher.finalize())
}
