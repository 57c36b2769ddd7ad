//! Shadows over a few WASI preview1 calls, each delegating to wasmtime-wasi's
//! own implementation, so that:
//! - a program's writes to the user's files stay within the user's quota (the
//!   VFS's counters cannot see them: they go straight to the preopened root);
//! - the job knows whether it changed or removed files, so the VFS can catch
//!   up afterwards (usage, search index, events);
//! - a program sleeping in `poll_oneoff` wakes for a kill or its deadline
//!   (epoch interruption only reaches code that runs).
//!
//! wasmtime-wasi finds the guest's memory through its caller's `memory` export,
//! so a host function cannot simply call it. Each job gets a tiny trampoline
//! instance (`trampoline.rs`) that imports the guest's memory, re-exports it, and calls
//! the real functions from wasm: the shadows delegate through it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use wasmtime::{Caller, Extern, Func, Linker, Trap, WasmParams};

/// The WASI preview1 import module the shadows replace calls of.
pub(super) const MODULE: &str = "wasi_snapshot_preview1";
const ERRNO_SUCCESS: i32 = 0;
const ERRNO_ACCES: i32 = 2;
const ERRNO_LOOP: i32 = 32;
const ERRNO_NOTCAPABLE: i32 = 76;
/// The preopened root: the user's files, at `/`.
const ROOT_FD: i32 = 3;
const OFLAGS_DIRECTORY: i32 = 2;
const OFLAGS_EXCL: i32 = 4;
const FDFLAGS_APPEND: i32 = 1;
/// `fd_write` among a file's rights: asked when opening to write.
const RIGHT_FD_WRITE: i64 = 1 << 6;
const ERRNO_DQUOT: i32 = 19;
const ERRNO_FAULT: i32 = 21;
const ERRNO_INVAL: i32 = 28;
const ERRNO_NOSYS: i32 = 52;
const ERRNO_NOTSUP: i32 = 58;
/// IOV_MAX: more buffers in one write is refused, as POSIX does.
const MAX_IOVECS: u64 = 1024;
const OFLAGS_CREAT: i32 = 1;
const OFLAGS_TRUNC: i32 = 8;
/// How often a sleeping guest checks for a kill or its deadline.
const SLEEP_SLICE: Duration = Duration::from_millis(5);

/// What a user's running jobs may still add to their files: the quota left when the first of
/// them started, drawn on by all of them (so running several does not multiply it).
pub struct Budget {
    bytes: AtomicU64,
    files: AtomicU64,
}

impl Budget {
    pub fn new(bytes: u64, files: u64) -> Arc<Budget> {
        Arc::new(Budget {
            bytes: AtomicU64::new(bytes),
            files: AtomicU64::new(files),
        })
    }

    fn take(counter: &AtomicU64, n: u64) -> bool {
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(n)
            })
            .is_ok()
    }

    fn refund(counter: &AtomicU64, n: u64) {
        let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
            Some(left.saturating_add(n))
        });
    }
}

/// What a program may touch of its user's files when its app's manifest limits its file
/// capabilities to paths: the same scopes the VFS holds requests to.
pub struct FileScope {
    /// None: reading is not limited (beyond the preopen itself).
    pub read: Option<aether_proto::manifest::PathScope>,
    pub write: Option<aether_proto::manifest::PathScope>,
    /// The user's root, to look for symbolic links on a path's way.
    pub root: cap_std::fs::Dir,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    Read,
    Write,
}

/// A store's data that carries a [`Guard`]: what the shadowed calls work on. The guard
/// is generic over it so that it need not know the runtime's store type.
pub trait Guarded: Send + 'static {
    fn guard(&self) -> &Guard;
    fn guard_mut(&mut self) -> &mut Guard;
}

/// Per job: its share of the budget, what it did, when it must stop.
pub struct Guard {
    /// None: the job cannot write (or nothing limits it).
    budget: Option<Arc<Budget>>,
    /// fds 1 and 2 are the job's stdout and stderr until closed or replaced.
    stdio: [bool; 2],
    pub quota_hit: bool,
    pub changed: bool,
    pub removed: bool,
    deadline: Instant,
    kill: Arc<AtomicBool>,
    /// The trampoline's exports: wasmtime-wasi's functions, called from wasm.
    delegates: HashMap<&'static str, Func>,
    /// Set when its app may touch only some paths.
    scope: Option<FileScope>,
    /// Folders a scoped program opened, by fd: paths relative to them are checked too.
    dirs: HashMap<i32, String>,
}

impl Guard {
    pub fn new(
        budget: Option<Arc<Budget>>,
        deadline: Instant,
        kill: Arc<AtomicBool>,
        scope: Option<FileScope>,
    ) -> Guard {
        Guard {
            budget,
            stdio: [true; 2],
            quota_hit: false,
            changed: false,
            removed: false,
            deadline,
            kill,
            delegates: HashMap::new(),
            // The root is open from the start; what a program opens, closes or renumbers
            // after that is followed, so an fd always names the folder it is.
            dirs: match scope {
                Some(_) => HashMap::from([(ROOT_FD, "/".to_owned())]),
                None => HashMap::new(),
            },
            scope,
        }
    }

    /// The folder `fd` names, for a scoped program: the root, or one it opened.
    fn folder_of(&self, fd: i32) -> Option<String> {
        self.dirs.get(&fd).cloned()
    }

    fn is_stdio(&self, fd: i32) -> bool {
        matches!(fd, 1 | 2) && self.stdio[fd as usize - 1]
    }

    fn not_stdio(&mut self, fd: i32) {
        if matches!(fd, 1 | 2) {
            self.stdio[fd as usize - 1] = false;
        }
    }

    /// Reserve `n` bytes before a write; records a refusal.
    fn take_bytes(&mut self, n: u64) -> bool {
        let taken = self
            .budget
            .as_ref()
            .is_none_or(|b| Budget::take(&b.bytes, n));
        self.quota_hit |= !taken;
        taken
    }

    fn refund_bytes(&self, n: u64) {
        if let Some(budget) = &self.budget {
            Budget::refund(&budget.bytes, n);
        }
    }

    fn take_file(&mut self) -> bool {
        let taken = self
            .budget
            .as_ref()
            .is_none_or(|b| Budget::take(&b.files, 1));
        self.quota_hit |= !taken;
        taken
    }

    fn refund_file(&self) {
        if let Some(budget) = &self.budget {
            Budget::refund(&budget.files, 1);
        }
    }

    /// The trampoline's function that calls wasmtime-wasi's own `name`.
    pub(super) fn set_delegate(&mut self, name: &'static str, func: Func) {
        self.delegates.insert(name, func);
    }

    fn stopped(&self) -> bool {
        self.kill.load(Ordering::Relaxed) || Instant::now() >= self.deadline
    }
}

/// Call wasmtime-wasi's own `name` with `params`, through the trampoline.
fn delegate<T: Guarded, P: WasmParams>(
    caller: &mut Caller<'_, T>,
    name: &'static str,
    params: P,
) -> wasmtime::Result<i32> {
    // Only a module's start function runs before the trampoline is attached.
    let Some(func) = caller.data().guard().delegates.get(name).copied() else {
        return Ok(ERRNO_NOSYS);
    };
    func.typed::<P, i32>(&*caller)?.call(&mut *caller, params)
}

/// The guest's linear memory.
fn memory<T: Guarded>(caller: &mut Caller<'_, T>) -> Option<wasmtime::Memory> {
    caller.get_export("memory").and_then(Extern::into_memory)
}

fn read_bytes<T: Guarded, const N: usize>(caller: &mut Caller<'_, T>, at: u64) -> Option<[u8; N]> {
    let memory = memory(caller)?;
    let data = memory.data(&*caller);
    let start = usize::try_from(at).ok()?;
    data.get(start..start.checked_add(N)?)?.try_into().ok()
}

fn read_u32<T: Guarded>(caller: &mut Caller<'_, T>, at: i32) -> Option<u32> {
    read_bytes::<_, 4>(caller, at as u32 as u64).map(u32::from_le_bytes)
}

/// The total length of an iovec array: `EINVAL` past IOV_MAX, `EFAULT` outside memory.
fn iovec_total<T: Guarded>(caller: &mut Caller<'_, T>, iovs: i32, count: i32) -> Result<u64, i32> {
    let (base, count) = (iovs as u32 as u64, count as u32 as u64);
    if count > MAX_IOVECS {
        return Err(ERRNO_INVAL);
    }
    let memory = memory(caller).ok_or(ERRNO_FAULT)?;
    let data = memory.data(&*caller);
    (0..count).try_fold(0u64, |total, i| {
        let at = usize::try_from(base + i * 8 + 4).map_err(|_| ERRNO_FAULT)?;
        let len = data.get(at..at + 4).ok_or(ERRNO_FAULT)?;
        let len = u32::from_le_bytes(len.try_into().expect("4 bytes"));
        Ok(total + u64::from(len))
    })
}

/// `path` from folder `fd` as a tidy absolute path in the user's files, or the errno that
/// refuses it: a scoped program names paths from the root or a folder it opened, and never
/// climbs out of the root.
fn resolve(guard: &Guard, fd: i32, path: &str) -> Result<String, i32> {
    let base = guard.folder_of(fd).ok_or(ERRNO_NOTCAPABLE)?;
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop().ok_or(ERRNO_NOTCAPABLE)?;
            }
            part => parts.push(part),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// May the program `need` the path the guest passed at (`path`, `len`) from folder `fd`?
/// Ok(None) when nothing limits it; Ok(Some(path)) when it is within its app's scope;
/// else the errno: outside the scope, or through a symbolic link (which could lead to any
/// of the user's files).
fn within_scope<T: Guarded>(
    caller: &mut Caller<'_, T>,
    fd: i32,
    path: i32,
    len: i32,
    need: Need,
) -> Result<Option<String>, i32> {
    if caller.data().guard().scope.is_none() {
        return Ok(None);
    }
    let name = read_str(caller, path, len)?;
    let guard = &caller.data().guard();
    let Some(scope) = &guard.scope else {
        return Ok(None);
    };
    let full = resolve(guard, fd, &name)?;
    let limit = match need {
        Need::Read => &scope.read,
        Need::Write => &scope.write,
    };
    if limit.as_ref().is_some_and(|limit| !limit.covers(&full)) {
        return Err(ERRNO_ACCES);
    }
    let mut walked = std::path::PathBuf::new();
    for part in full.split('/').filter(|p| !p.is_empty()) {
        walked.push(part);
        match scope.root.symlink_metadata(&walked) {
            Ok(meta) if meta.file_type().is_symlink() => return Err(ERRNO_LOOP),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(Some(full))
}

/// A path the guest passed, as text (WASI paths are UTF-8).
fn read_str<T: Guarded>(caller: &mut Caller<'_, T>, at: i32, len: i32) -> Result<String, i32> {
    let memory = memory(caller).ok_or(ERRNO_FAULT)?;
    let data = memory.data(&*caller);
    let start = at as u32 as usize;
    let end = start.checked_add(len as u32 as usize).ok_or(ERRNO_FAULT)?;
    let bytes = data.get(start..end).ok_or(ERRNO_FAULT)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| ERRNO_INVAL)
}

/// A write to a file: reserve its bytes, write, give back what was not written.
fn guarded_write<T: Guarded, P: WasmParams>(
    caller: &mut Caller<'_, T>,
    name: &'static str,
    (iovs, len, nwritten): (i32, i32, i32),
    params: P,
) -> wasmtime::Result<i32> {
    caller.data_mut().guard_mut().changed = true;
    let total = match iovec_total(caller, iovs, len) {
        Ok(total) => total,
        Err(errno) => return Ok(errno),
    };
    if !caller.data_mut().guard_mut().take_bytes(total) {
        return Ok(ERRNO_DQUOT);
    }
    let errno = delegate(caller, name, params)?;
    let written = match errno {
        ERRNO_SUCCESS => u64::from(read_u32(caller, nwritten).unwrap_or(0)),
        _ => 0,
    };
    caller
        .data()
        .guard()
        .refund_bytes(total.saturating_sub(written));
    Ok(errno)
}

/// A call that adds a name: reserve a file, give it back if the call fails.
fn guarded_create<T: Guarded, P: WasmParams>(
    caller: &mut Caller<'_, T>,
    name: &'static str,
    params: P,
) -> wasmtime::Result<i32> {
    caller.data_mut().guard_mut().changed = true;
    if !caller.data_mut().guard_mut().take_file() {
        return Ok(ERRNO_DQUOT);
    }
    let errno = delegate(caller, name, params)?;
    if errno != ERRNO_SUCCESS {
        caller.data().guard().refund_file();
    }
    Ok(errno)
}

/// Shadow the calls that change files, that close or replace stdout and stderr, and that sleep.
pub fn add_to_linker<T: Guarded>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    shadow_writes(linker)?;
    shadow_names(linker)?;
    shadow_stdio(linker)?;
    shadow_sleep(linker)
}

/// Writes and size changes: charged to the budget.
fn shadow_writes<T: Guarded>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "fd_write",
        |mut caller: Caller<'_, T>, fd: i32, iovs: i32, len: i32, nwritten: i32| {
            let params = (fd, iovs, len, nwritten);
            if caller.data().guard().is_stdio(fd) {
                return delegate(&mut caller, "fd_write", params);
            }
            guarded_write(&mut caller, "fd_write", (iovs, len, nwritten), params)
        },
    )?;

    linker.func_wrap(
        MODULE,
        "fd_pwrite",
        |mut caller: Caller<'_, T>, fd: i32, iovs: i32, len: i32, offset: i64, nwritten: i32| {
            let params = (fd, iovs, len, offset, nwritten);
            guarded_write(&mut caller, "fd_pwrite", (iovs, len, nwritten), params)
        },
    )?;

    // Setting a size is charged the new size (it may grow the file by that much), given back
    // if the call fails.
    linker.func_wrap(
        MODULE,
        "fd_filestat_set_size",
        |mut caller: Caller<'_, T>, fd: i32, size: i64| {
            let guard = &mut caller.data_mut().guard_mut();
            guard.changed = true;
            if !guard.take_bytes(size as u64) {
                return Ok(ERRNO_DQUOT);
            }
            let errno = delegate(&mut caller, "fd_filestat_set_size", (fd, size))?;
            if errno != ERRNO_SUCCESS {
                caller.data().guard().refund_bytes(size as u64);
            }
            Ok(errno)
        },
    )?;
    Ok(())
}

/// Names created, removed and renamed: new names cost a file, any change is noted; and
/// every path a scoped program opens or looks at held to its scope.
fn shadow_names<T: Guarded>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    shadow_open(linker)?;
    shadow_lookups(linker)?;
    // Names that cost a file: symlinks and directories (each takes an inode and a block).
    linker.func_wrap(
        MODULE,
        "path_symlink",
        |mut caller: Caller<'_, T>, old: i32, old_len: i32, fd: i32, new: i32, new_len: i32| {
            // A link could lead a scoped program anywhere in the user's files: none are made.
            if caller.data().guard().scope.is_some() {
                return Ok(ERRNO_NOTSUP);
            }
            let params = (old, old_len, fd, new, new_len);
            guarded_create(&mut caller, "path_symlink", params)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_create_directory",
        |mut caller: Caller<'_, T>, fd: i32, path: i32, len: i32| {
            if let Err(errno) = within_scope(&mut caller, fd, path, len, Need::Write) {
                return Ok(errno);
            }
            guarded_create(&mut caller, "path_create_directory", (fd, path, len))
        },
    )?;
    // Hard links would count a file's bytes once per name without writing them: not offered
    // (the VFS has none either).
    linker.func_wrap(
        MODULE,
        "path_link",
        |_: Caller<'_, T>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| Ok(ERRNO_NOTSUP),
    )?;

    // Removals use no quota; noted so the VFS catches up after the job.
    for name in ["path_remove_directory", "path_unlink_file"] {
        linker.func_wrap(
            MODULE,
            name,
            move |mut caller: Caller<'_, T>, fd: i32, path: i32, len: i32| {
                if let Err(errno) = within_scope(&mut caller, fd, path, len, Need::Write) {
                    return Ok(errno);
                }
                let guard = &mut caller.data_mut().guard_mut();
                (guard.changed, guard.removed) = (true, true);
                delegate(&mut caller, name, (fd, path, len))
            },
        )?;
    }
    linker.func_wrap(
        MODULE,
        "path_rename",
        move |mut caller: Caller<'_, T>,
              fd: i32,
              old: i32,
              old_len: i32,
              new_fd: i32,
              new: i32,
              new_len: i32| {
            for (fd, path, len) in [(fd, old, old_len), (new_fd, new, new_len)] {
                if let Err(errno) = within_scope(&mut caller, fd, path, len, Need::Write) {
                    return Ok(errno);
                }
            }
            let guard = &mut caller.data_mut().guard_mut();
            (guard.changed, guard.removed) = (true, true);
            delegate(
                &mut caller,
                "path_rename",
                (fd, old, old_len, new_fd, new, new_len),
            )
        },
    )?;
    Ok(())
}

/// `path_open`: within the scope for a scoped program; creating or truncating charged and
/// noted.
fn shadow_open<T: Guarded>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "path_open",
        |mut caller: Caller<'_, T>,
         fd: i32,
         dirflags: i32,
         path: i32,
         path_len: i32,
         oflags: i32,
         rights_base: i64,
         rights_inheriting: i64,
         fdflags: i32,
         opened: i32| {
            let params = (
                fd,
                dirflags,
                path,
                path_len,
                oflags,
                rights_base,
                rights_inheriting,
                fdflags,
                opened,
            );
            let writes = oflags & (OFLAGS_CREAT | OFLAGS_TRUNC | OFLAGS_EXCL) != 0
                || fdflags & FDFLAGS_APPEND != 0
                || rights_base & RIGHT_FD_WRITE != 0;
            let need = if writes { Need::Write } else { Need::Read };
            let scoped = match within_scope(&mut caller, fd, path, path_len, need) {
                Ok(scoped) => scoped,
                Err(errno) => return Ok(errno),
            };
            caller.data_mut().guard_mut().changed |= oflags & (OFLAGS_CREAT | OFLAGS_TRUNC) != 0;
            // Charged even when the file already existed: the budget errs on the safe side.
            let errno = if oflags & OFLAGS_CREAT != 0 {
                guarded_create(&mut caller, "path_open", params)?
            } else {
                delegate(&mut caller, "path_open", params)?
            };
            // A folder a scoped program opened: paths from it are checked from its place.
            if errno == ERRNO_SUCCESS
                && let Some(full) = scoped
                && let Some(new_fd) = read_u32(&mut caller, opened)
            {
                let guard = &mut caller.data_mut().guard_mut();
                if oflags & OFLAGS_DIRECTORY != 0 {
                    guard.dirs.insert(new_fd as i32, full);
                } else {
                    guard.dirs.remove(&(new_fd as i32));
                }
            }
            Ok(errno)
        },
    )?;
    Ok(())
}

/// Looking at paths (stat, links, times) and listing folders: within the scope for a
/// scoped program.
fn shadow_lookups<T: Guarded>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    // Looking at a path, or reading a link: within the scope, for a scoped program.
    linker.func_wrap(
        MODULE,
        "path_filestat_get",
        |mut caller: Caller<'_, T>, fd: i32, flags: i32, path: i32, len: i32, buf: i32| {
            if let Err(errno) = within_scope(&mut caller, fd, path, len, Need::Read) {
                return Ok(errno);
            }
            delegate(
                &mut caller,
                "path_filestat_get",
                (fd, flags, path, len, buf),
            )
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_readlink",
        |mut caller: Caller<'_, T>,
         fd: i32,
         path: i32,
         len: i32,
         buf: i32,
         buf_len: i32,
         used: i32| {
            if let Err(errno) = within_scope(&mut caller, fd, path, len, Need::Read) {
                return Ok(errno);
            }
            delegate(
                &mut caller,
                "path_readlink",
                (fd, path, len, buf, buf_len, used),
            )
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_filestat_set_times",
        |mut caller: Caller<'_, T>,
         fd: i32,
         flags: i32,
         path: i32,
         len: i32,
         atim: i64,
         mtim: i64,
         what: i32| {
            if let Err(errno) = within_scope(&mut caller, fd, path, len, Need::Write) {
                return Ok(errno);
            }
            delegate(
                &mut caller,
                "path_filestat_set_times",
                (fd, flags, path, len, atim, mtim, what),
            )
        },
    )?;
    // A folder's listing names what is in it: a scoped program lists only a folder its
    // scope covers whole.
    linker.func_wrap(
        MODULE,
        "fd_readdir",
        |mut caller: Caller<'_, T>, fd: i32, buf: i32, len: i32, cookie: i64, used: i32| {
            let guard = &caller.data().guard();
            if let Some(scope) = &guard.scope
                && let Some(read) = &scope.read
            {
                let covered = guard
                    .folder_of(fd)
                    .is_some_and(|folder| read.covers_tree(&folder));
                if !covered {
                    return Ok(ERRNO_ACCES);
                }
            }
            delegate(&mut caller, "fd_readdir", (fd, buf, len, cookie, used))
        },
    )?;
    Ok(())
}

/// After these, fd 1 or 2 may name a file: its writes count from then on.
fn shadow_stdio<T: Guarded>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "fd_close",
        move |mut caller: Caller<'_, T>, fd: i32| {
            let guard = &mut caller.data_mut().guard_mut();
            guard.not_stdio(fd);
            guard.dirs.remove(&fd);
            delegate(&mut caller, "fd_close", (fd,))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_renumber",
        move |mut caller: Caller<'_, T>, from: i32, to: i32| {
            if from != to {
                let guard = &mut caller.data_mut().guard_mut();
                guard.not_stdio(from);
                guard.not_stdio(to);
                // `to` now names what `from` named; the root is never renumbered away.
                let moved = guard.dirs.remove(&from);
                guard.dirs.remove(&to);
                if let Some(folder) = moved {
                    guard.dirs.insert(to, folder);
                }
            }
            delegate(&mut caller, "fd_renumber", (from, to))
        },
    )?;
    Ok(())
}

/// Sleeps the deadline and `vm.kill` can cut short, and those they cannot, refused.
fn shadow_sleep<T: Guarded>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "poll_oneoff",
        move |mut caller: Caller<'_, T>, subs: i32, events: i32, count: i32, nevents: i32| {
            match classify_poll(&mut caller, subs, count) {
                Poll::Sleep(clocks) => answer_sleep(&mut caller, &clocks, events, nevents),
                Poll::Refuse(errno) => Ok(errno),
                Poll::Delegate => {
                    delegate(&mut caller, "poll_oneoff", (subs, events, count, nevents))
                }
            }
        },
    )?;
    Ok(())
}

/// One clock subscription: its userdata and how long it waits from now.
struct Clock {
    userdata: u64,
    wait: Duration,
}

/// How a `poll_oneoff` is answered.
enum Poll {
    /// Only clocks: slept here, interruptibly.
    Sleep(Vec<Clock>),
    /// A clock this sandbox does not sleep on (CPU time, absolute monotonic), or too many.
    Refuse(i32),
    /// With file descriptors (every one here is ready at once, so WASI's poll returns at
    /// once), or unreadable (WASI's poll reports the fault).
    Delegate,
}

/// WASI's realtime clock: nanoseconds since the Unix epoch.
fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn classify_poll<T: Guarded>(caller: &mut Caller<'_, T>, subs: i32, count: i32) -> Poll {
    const SIZE: u64 = 48;
    let count = count as u32 as u64;
    if count == 0 {
        return Poll::Delegate;
    }
    if count > 4096 {
        return Poll::Refuse(ERRNO_NOTSUP);
    }
    let (mut clocks, mut fds, mut unsupported) = (vec![], false, false);
    for i in 0..count {
        let Some(sub) = read_bytes::<_, 48>(caller, subs as u32 as u64 + i * SIZE) else {
            return Poll::Delegate;
        };
        let field = |at: usize| u64::from_le_bytes(sub[at..at + 8].try_into().expect("8 bytes"));
        if sub[8] != 0 {
            fds = true;
            continue;
        }
        let clock_id = u32::from_le_bytes(sub[16..20].try_into().expect("4 bytes"));
        let absolute = u16::from_le_bytes(sub[40..42].try_into().expect("2 bytes")) & 1 == 1;
        let wait = match (clock_id, absolute) {
            (0 | 1, false) => field(24),
            (0, true) => field(24).saturating_sub(realtime_ns()),
            _ => {
                unsupported = true;
                continue;
            }
        };
        clocks.push(Clock {
            userdata: field(0),
            wait: Duration::from_nanos(wait),
        });
    }
    match (fds, unsupported) {
        (true, _) => Poll::Delegate,
        (false, true) => Poll::Refuse(ERRNO_NOTSUP),
        (false, false) => Poll::Sleep(clocks),
    }
}

/// Sleep until the first timeout in short slices, waking for a kill or the deadline; then
/// write one event per timeout that is due.
fn answer_sleep<T: Guarded>(
    caller: &mut Caller<'_, T>,
    clocks: &[Clock],
    events: i32,
    nevents: i32,
) -> wasmtime::Result<i32> {
    let wait = clocks.iter().map(|c| c.wait).min().unwrap_or_default();
    // Past the deadline the sleep is cut short anyway.
    let until = Instant::now()
        .checked_add(wait)
        .unwrap_or(caller.data().guard().deadline)
        .min(caller.data().guard().deadline + SLEEP_SLICE);
    loop {
        if caller.data().guard().stopped() {
            return Err(Trap::Interrupt.into());
        }
        let now = Instant::now();
        if now >= until {
            break;
        }
        std::thread::sleep((until - now).min(SLEEP_SLICE));
    }
    let due: Vec<&Clock> = clocks.iter().filter(|c| c.wait <= wait).collect();
    let Some(memory) = memory(caller) else {
        return Ok(ERRNO_FAULT);
    };
    let data = memory.data_mut(&mut *caller);
    let (events, nevents) = (events as u32 as usize, nevents as u32 as usize);
    let needed = events.checked_add(due.len() * 32);
    let fits = needed.is_some_and(|end| end <= data.len())
        && nevents.checked_add(4).is_some_and(|end| end <= data.len());
    if !fits {
        return Ok(ERRNO_FAULT);
    }
    for (i, clock) in due.iter().enumerate() {
        let event = &mut data[events + i * 32..events + (i + 1) * 32];
        event.fill(0);
        event[..8].copy_from_slice(&clock.userdata.to_le_bytes());
        // error 0 (success), type 0 (clock): already zero.
    }
    data[nevents..nevents + 4].copy_from_slice(&(due.len() as u32).to_le_bytes());
    Ok(ERRNO_SUCCESS)
}
