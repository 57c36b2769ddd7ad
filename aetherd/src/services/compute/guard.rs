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
//! instance that imports the guest's memory, re-exports it, and calls the real
//! functions from wasm: the shadows delegate through it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmtime::{Caller, Engine, Extern, Func, Instance, Linker, Module, Store, Trap, WasmParams};

use super::runtime::Host;

const MODULE: &str = "wasi_snapshot_preview1";
const ERRNO_SUCCESS: i32 = 0;
const ERRNO_DQUOT: i32 = 19;
const ERRNO_FAULT: i32 = 21;
const ERRNO_NOSYS: i32 = 52;
const OFLAGS_CREAT: i32 = 1;
const OFLAGS_TRUNC: i32 = 8;
/// How often a sleeping guest checks for a kill or its deadline.
const SLEEP_SLICE: Duration = Duration::from_millis(5);

/// Per job: what its file writes may still use, what it did, when it must stop.
pub struct Guard {
    bytes_left: u64,
    files_left: u64,
    /// fds 1 and 2 are the job's stdout and stderr until closed or replaced.
    stdio: [bool; 2],
    pub quota_hit: bool,
    pub changed: bool,
    pub removed: bool,
    deadline: Instant,
    kill: Arc<AtomicBool>,
    /// The trampoline's exports: wasmtime-wasi's functions, called from wasm.
    delegates: HashMap<&'static str, Func>,
}

impl Guard {
    /// `budget`: bytes and files the job may add to the user's files (None: unlimited).
    pub fn new(budget: Option<(u64, u64)>, deadline: Instant, kill: Arc<AtomicBool>) -> Guard {
        let (bytes_left, files_left) = budget.unwrap_or((u64::MAX, u64::MAX));
        Guard {
            bytes_left,
            files_left,
            stdio: [true; 2],
            quota_hit: false,
            changed: false,
            removed: false,
            deadline,
            kill,
            delegates: HashMap::new(),
        }
    }

    fn is_stdio(&self, fd: i32) -> bool {
        matches!(fd, 1 | 2) && self.stdio[fd as usize - 1]
    }

    fn not_stdio(&mut self, fd: i32) {
        if matches!(fd, 1 | 2) {
            self.stdio[fd as usize - 1] = false;
        }
    }

    /// May `bytes` more be written? Records the refusal.
    fn allow_bytes(&mut self, bytes: u64) -> bool {
        let allowed = bytes <= self.bytes_left;
        self.quota_hit |= !allowed;
        allowed
    }

    fn allow_file(&mut self) -> bool {
        let allowed = self.files_left > 0;
        self.quota_hit |= !allowed;
        allowed
    }

    fn stopped(&self) -> bool {
        self.kill.load(Ordering::Relaxed) || Instant::now() >= self.deadline
    }
}

/// The shadowed calls and their parameter types (each returns an errno).
const SHADOWED: &[(&str, &str)] = &[
    ("fd_write", "i32 i32 i32 i32"),
    ("fd_pwrite", "i32 i32 i32 i64 i32"),
    ("fd_filestat_set_size", "i32 i64"),
    ("path_open", "i32 i32 i32 i32 i32 i64 i64 i32 i32"),
    ("path_symlink", "i32 i32 i32 i32 i32"),
    ("path_link", "i32 i32 i32 i32 i32 i32 i32"),
    ("path_create_directory", "i32 i32 i32"),
    ("path_remove_directory", "i32 i32 i32"),
    ("path_unlink_file", "i32 i32 i32"),
    ("path_rename", "i32 i32 i32 i32 i32 i32"),
    ("fd_close", "i32"),
    ("fd_renumber", "i32 i32"),
    ("poll_oneoff", "i32 i32 i32 i32"),
];

/// The trampoline: the guest's memory in, re-exported as `memory`, and one wasm function per
/// shadowed call that calls wasmtime-wasi's.
pub struct Trampoline {
    module: Module,
    /// wasmtime-wasi's own functions, unshadowed.
    wasi: Linker<Host>,
}

impl Trampoline {
    pub fn new(engine: &Engine, wasi: Linker<Host>) -> wasmtime::Result<Trampoline> {
        let mut wat = String::from("(module (import \"env\" \"memory\" (memory 0))\n");
        for (name, params) in SHADOWED {
            wat += &format!(
                "(import \"{MODULE}\" \"{name}\" (func ${name} (param {params}) (result i32)))\n"
            );
        }
        wat += "(export \"memory\" (memory 0))\n";
        for (name, params) in SHADOWED {
            let args: String = (0..params.split(' ').count())
                .map(|i| format!(" (local.get {i})"))
                .collect();
            wat += &format!(
                "(func (export \"{name}\") (param {params}) (result i32) (call ${name}{args}))\n"
            );
        }
        wat += ")";
        Ok(Trampoline {
            module: Module::new(engine, &wat)?,
            wasi,
        })
    }

    /// Give the guest's store its trampoline, once the guest (and so its memory) exists.
    /// A guest without a `memory` export cannot use WASI at all; it gets none.
    pub fn attach(&self, store: &mut Store<Host>, guest: &Instance) -> wasmtime::Result<()> {
        let Some(memory) = guest.get_memory(&mut *store, "memory") else {
            return Ok(());
        };
        let mut imports = vec![Extern::Memory(memory)];
        for (name, _) in SHADOWED {
            imports.push(self.wasi.get(&mut *store, MODULE, name)?);
        }
        let instance = Instance::new(&mut *store, &self.module, &imports)?;
        for (name, _) in SHADOWED {
            let func = instance
                .get_func(&mut *store, name)
                .ok_or_else(|| wasmtime::Error::msg(format!("the trampoline has no {name}")))?;
            store.data_mut().guard.delegates.insert(name, func);
        }
        Ok(())
    }
}

/// Call wasmtime-wasi's own `name` with `params`, through the trampoline.
fn delegate<P: WasmParams>(
    caller: &mut Caller<'_, Host>,
    name: &'static str,
    params: P,
) -> wasmtime::Result<i32> {
    // Only a module's start function runs before the trampoline is attached.
    let Some(func) = caller.data().guard.delegates.get(name).copied() else {
        return Ok(ERRNO_NOSYS);
    };
    func.typed::<P, i32>(&*caller)?.call(&mut *caller, params)
}

/// The guest's linear memory.
fn memory(caller: &mut Caller<'_, Host>) -> Option<wasmtime::Memory> {
    caller.get_export("memory").and_then(Extern::into_memory)
}

fn read_bytes<const N: usize>(caller: &mut Caller<'_, Host>, at: u64) -> Option<[u8; N]> {
    let memory = memory(caller)?;
    let data = memory.data(&*caller);
    let start = usize::try_from(at).ok()?;
    data.get(start..start.checked_add(N)?)?.try_into().ok()
}

fn read_u32(caller: &mut Caller<'_, Host>, at: i32) -> Option<u32> {
    read_bytes::<4>(caller, at as u32 as u64).map(u32::from_le_bytes)
}

/// The total length of an iovec array, or None if it is not in memory.
fn iovec_total(caller: &mut Caller<'_, Host>, iovs: i32, count: i32) -> Option<u64> {
    let (base, count) = (iovs as u32 as u64, count as u32 as u64);
    (0..count).try_fold(0u64, |total, i| {
        let len = read_u32(caller, (base + i * 8 + 4) as i32)?;
        Some(total.saturating_add(u64::from(len)))
    })
}

/// A write of `total` bytes (None: a bad iovec) to a file: may it go ahead?
fn check_write(caller: &mut Caller<'_, Host>, total: Option<u64>) -> Result<(), i32> {
    let guard = &mut caller.data_mut().guard;
    guard.changed = true;
    match total {
        None => Err(ERRNO_FAULT),
        Some(total) if !guard.allow_bytes(total) => Err(ERRNO_DQUOT),
        Some(_) => Ok(()),
    }
}

/// After a successful write, charge what was written.
fn charge_written(caller: &mut Caller<'_, Host>, nwritten: i32) {
    let written = read_u32(caller, nwritten).unwrap_or(0);
    let guard = &mut caller.data_mut().guard;
    guard.bytes_left = guard.bytes_left.saturating_sub(u64::from(written));
}

/// Shadow the calls that change files, that close or replace stdout and stderr, and that sleep.
pub fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);

    linker.func_wrap(
        MODULE,
        "fd_write",
        move |mut caller: Caller<'_, Host>, fd: i32, iovs: i32, len: i32, nwritten: i32| {
            let to_file = !caller.data().guard.is_stdio(fd);
            if to_file {
                let total = iovec_total(&mut caller, iovs, len);
                if let Err(errno) = check_write(&mut caller, total) {
                    return Ok(errno);
                }
            }
            let errno = delegate(&mut caller, "fd_write", (fd, iovs, len, nwritten))?;
            if to_file && errno == ERRNO_SUCCESS {
                charge_written(&mut caller, nwritten);
            }
            Ok(errno)
        },
    )?;

    linker.func_wrap(
        MODULE,
        "fd_pwrite",
        move |mut caller: Caller<'_, Host>,
              fd: i32,
              iovs: i32,
              len: i32,
              offset: i64,
              nwritten: i32| {
            let total = iovec_total(&mut caller, iovs, len);
            if let Err(errno) = check_write(&mut caller, total) {
                return Ok(errno);
            }
            let errno = delegate(&mut caller, "fd_pwrite", (fd, iovs, len, offset, nwritten))?;
            if errno == ERRNO_SUCCESS {
                charge_written(&mut caller, nwritten);
            }
            Ok(errno)
        },
    )?;

    // Growing a file by its size: charged as if it were written (it may become real data).
    linker.func_wrap(
        MODULE,
        "fd_filestat_set_size",
        move |mut caller: Caller<'_, Host>, fd: i32, size: i64| {
            if let Err(errno) = check_write(&mut caller, Some(size as u64)) {
                return Ok(errno);
            }
            let errno = delegate(&mut caller, "fd_filestat_set_size", (fd, size))?;
            if errno == ERRNO_SUCCESS {
                let guard = &mut caller.data_mut().guard;
                guard.bytes_left = guard.bytes_left.saturating_sub(size as u64);
            }
            Ok(errno)
        },
    )?;

    linker.func_wrap(
        MODULE,
        "path_open",
        move |mut caller: Caller<'_, Host>,
              fd: i32,
              dirflags: i32,
              path: i32,
              path_len: i32,
              oflags: i32,
              rights_base: i64,
              rights_inheriting: i64,
              fdflags: i32,
              opened: i32| {
            let creates = oflags & OFLAGS_CREAT != 0;
            let guard = &mut caller.data_mut().guard;
            guard.changed |= oflags & (OFLAGS_CREAT | OFLAGS_TRUNC) != 0;
            if creates && !guard.allow_file() {
                return Ok(ERRNO_DQUOT);
            }
            let errno = delegate(
                &mut caller,
                "path_open",
                (
                    fd,
                    dirflags,
                    path,
                    path_len,
                    oflags,
                    rights_base,
                    rights_inheriting,
                    fdflags,
                    opened,
                ),
            )?;
            // Charged even when the file already existed: the budget errs on the safe side.
            if creates && errno == ERRNO_SUCCESS {
                caller.data_mut().guard.files_left -= 1;
            }
            Ok(errno)
        },
    )?;

    // Links add a name the quota counts as a file.
    linker.func_wrap(
        MODULE,
        "path_symlink",
        move |mut caller: Caller<'_, Host>,
              old: i32,
              old_len: i32,
              fd: i32,
              new: i32,
              new_len: i32| {
            let guard = &mut caller.data_mut().guard;
            guard.changed = true;
            if !guard.allow_file() {
                return Ok(ERRNO_DQUOT);
            }
            guard.files_left -= 1;
            delegate(
                &mut caller,
                "path_symlink",
                (old, old_len, fd, new, new_len),
            )
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_link",
        move |mut caller: Caller<'_, Host>,
              old_fd: i32,
              old_flags: i32,
              old: i32,
              old_len: i32,
              new_fd: i32,
              new: i32,
              new_len: i32| {
            let guard = &mut caller.data_mut().guard;
            guard.changed = true;
            if !guard.allow_file() {
                return Ok(ERRNO_DQUOT);
            }
            guard.files_left -= 1;
            delegate(
                &mut caller,
                "path_link",
                (old_fd, old_flags, old, old_len, new_fd, new, new_len),
            )
        },
    )?;

    // Changes that use no quota, noted so the VFS catches up after the job.
    for name in [
        "path_create_directory",
        "path_remove_directory",
        "path_unlink_file",
    ] {
        let removes = name != "path_create_directory";
        linker.func_wrap(
            MODULE,
            name,
            move |mut caller: Caller<'_, Host>, fd: i32, path: i32, len: i32| {
                let guard = &mut caller.data_mut().guard;
                guard.changed = true;
                guard.removed |= removes;
                delegate(&mut caller, name, (fd, path, len))
            },
        )?;
    }
    linker.func_wrap(
        MODULE,
        "path_rename",
        move |mut caller: Caller<'_, Host>,
              fd: i32,
              old: i32,
              old_len: i32,
              new_fd: i32,
              new: i32,
              new_len: i32| {
            let guard = &mut caller.data_mut().guard;
            (guard.changed, guard.removed) = (true, true);
            delegate(
                &mut caller,
                "path_rename",
                (fd, old, old_len, new_fd, new, new_len),
            )
        },
    )?;

    // After these, fd 1 or 2 may name a file: its writes count from then on.
    linker.func_wrap(
        MODULE,
        "fd_close",
        move |mut caller: Caller<'_, Host>, fd: i32| {
            caller.data_mut().guard.not_stdio(fd);
            delegate(&mut caller, "fd_close", (fd,))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_renumber",
        move |mut caller: Caller<'_, Host>, from: i32, to: i32| {
            if from != to {
                let guard = &mut caller.data_mut().guard;
                guard.not_stdio(from);
                guard.not_stdio(to);
            }
            delegate(&mut caller, "fd_renumber", (from, to))
        },
    )?;

    linker.func_wrap(
        MODULE,
        "poll_oneoff",
        move |mut caller: Caller<'_, Host>, subs: i32, events: i32, count: i32, nevents: i32| {
            match sleep_only(&mut caller, subs, count) {
                Some(clocks) => answer_sleep(&mut caller, &clocks, events, nevents),
                None => delegate(&mut caller, "poll_oneoff", (subs, events, count, nevents)),
            }
        },
    )?;
    Ok(())
}

/// One relative clock subscription: its userdata and how long it waits.
struct Clock {
    userdata: u64,
    wait: Duration,
}

/// The subscriptions, when every one is a relative timeout on the realtime or monotonic clock
/// (what a plain sleep asks for); None for anything else, which WASI's own poll handles.
fn sleep_only(caller: &mut Caller<'_, Host>, subs: i32, count: i32) -> Option<Vec<Clock>> {
    const SIZE: u64 = 48;
    let count = u64::try_from(count)
        .ok()
        .filter(|c| (1..=4096).contains(c))?;
    (0..count)
        .map(|i| {
            let sub = read_bytes::<48>(caller, subs as u32 as u64 + i * SIZE)?;
            let field =
                |at: usize| u64::from_le_bytes(sub[at..at + 8].try_into().expect("8 bytes"));
            let tag = sub[8];
            let clock_id = u32::from_le_bytes(sub[16..20].try_into().expect("4 bytes"));
            let flags = u16::from_le_bytes(sub[40..42].try_into().expect("2 bytes"));
            (tag == 0 && clock_id <= 1 && flags & 1 == 0).then(|| Clock {
                userdata: field(0),
                wait: Duration::from_nanos(field(24)),
            })
        })
        .collect()
}

/// Sleep until the first timeout in short slices, waking for a kill or the deadline; then
/// write one event per timeout that is due.
fn answer_sleep(
    caller: &mut Caller<'_, Host>,
    clocks: &[Clock],
    events: i32,
    nevents: i32,
) -> wasmtime::Result<i32> {
    let wait = clocks.iter().map(|c| c.wait).min().unwrap_or_default();
    let until = Instant::now() + wait;
    loop {
        if caller.data().guard.stopped() {
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
