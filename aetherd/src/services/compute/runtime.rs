//! The WASM runtime: one wasmtime `Engine` with epoch interruption, a ticker
//! thread, compiled modules cached by content hash in memory and on disk, and
//! the sandboxed run of one job (WASI preview1, no network, no host
//! environment, only the user's root preopened as the app's capabilities allow).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmtime::{
    Config, Engine, ExternType, InstancePre, Linker, Module, ResourceLimiter, Store, Trap,
    UpdateDeadline,
};
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use aether_proto::api::apps::{HOST_FUNCTIONS, HOST_MODULE};
use aether_proto::{ErrorBody, ErrorCode};

use super::guard::{self, Budget, Guard, Guarded};
use super::host::{self, GuestBus, GuestData};
use super::output::{ChannelOutput, OutputLimit, Stream};
use super::trampoline::Trampoline;

/// How often the epoch ticks: deadlines and kills act within this.
const TICK: Duration = Duration::from_millis(10);
/// Compiled modules kept in memory.
const MEMORY_CACHE: usize = 64;

pub use aether_proto::api::vm::Ending;

/// What a run came to.
#[derive(Default)]
pub struct Outcome {
    pub ending: Ending,
    pub code: Option<i32>,
    pub error: Option<String>,
    pub micros: u64,
    pub files: FileEffects,
}

/// What a run did to the user's files, as far as the sandbox saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct FileEffects {
    pub changed: bool,
    pub removed: bool,
    /// A write was refused because it would pass the user's quota.
    pub quota_hit: bool,
}

/// Where a run's output goes, and the limits it runs under.
pub struct RunSpec {
    /// Pre-linked: a run only allocates and starts, no import resolution.
    pub program: Program,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub stdin: Option<std::fs::File>,
    /// The user's root and how the app may use it (None: no file system at all).
    pub preopen: Option<(PathBuf, FsPerms)>,
    /// What the job may add to the user's files, shared with the user's other jobs
    /// (None: it cannot write them).
    pub budget: Option<Arc<Budget>>,
    pub memory_bytes: usize,
    pub timeout: Duration,
    pub output: ChannelOutput,
    pub kill: Arc<AtomicBool>,
    /// An installed app's program reaches the bus as that app.
    pub bus: Option<GuestBus>,
    /// The paths its app's file capabilities are limited to, if they are.
    pub scope: Option<super::guard::FileScope>,
}

pub struct Runtime {
    engine: Engine,
    linker: Linker<Host>,
    trampoline: Trampoline<Host>,
    cache_dir: PathBuf,
    modules: parking_lot::Mutex<HashMap<blake3::Hash, Program>>,
    /// One compile per module at a time: others wanting it wait for it, then take it from
    /// the cache, instead of compiling it again.
    compiling: parking_lot::Mutex<HashMap<blake3::Hash, Arc<parking_lot::Mutex<()>>>>,
    /// Part of every on-disk cache name: a different engine never loads another's code.
    compat: u64,
    /// Modules compiled (not taken from a cache) since start.
    compiled: std::sync::atomic::AtomicU64,
}

pub struct Host {
    wasi: WasiP1Ctx,
    limits: Limits,
    guard: Guard,
    /// The `aether` host interface's state: installed apps' programs only.
    bus: Option<GuestBus>,
    /// The last answer, message or error a host call made, for the guest to copy out.
    held: Vec<u8>,
}

impl Guarded for Host {
    fn guard(&self) -> &Guard {
        &self.guard
    }

    fn guard_mut(&mut self) -> &mut Guard {
        &mut self.guard
    }
}

impl GuestData for Host {
    fn bus(&mut self) -> Option<&mut GuestBus> {
        self.bus.as_mut()
    }

    fn held(&mut self) -> &mut Vec<u8> {
        &mut self.held
    }
}

/// A compiled module linked against the sandbox's imports, ready to instantiate.
pub type Program = InstancePre<Host>;

/// Caps memory and remembers whether the cap was hit, to say so.
struct Limits {
    memory_bytes: usize,
    hit: bool,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.memory_bytes;
        self.hit |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

fn bad_module(msg: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::BadFrame, msg)
}

/// A core module, not a component or something else.
fn header(wasm: &[u8]) -> Result<(), ErrorBody> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err(bad_module("not a WebAssembly module (no \\0asm header)"));
    }
    if wasm[4..8] == [0x0d, 0, 1, 0] {
        return Err(bad_module(
            "this is a WebAssembly component; only WASI preview1 command modules run here",
        ));
    }
    Ok(())
}

/// The sandbox provides WASI preview1 and the bus interface, nothing else: no sockets.
/// (Whether an import's type matches is for linking to say.)
fn check_import(module: &str, name: &str) -> Result<(), ErrorBody> {
    if module == "wasi_snapshot_preview1"
        || (module == HOST_MODULE && HOST_FUNCTIONS.contains(&name))
    {
        return Ok(());
    }
    Err(bad_module(format!(
        "the module imports `{module}::{name}`, which the sandbox does not provide (only WASI preview1 and `aether`)"
    )))
}

impl Runtime {
    pub fn new(cache_dir: PathBuf) -> anyhow::Result<Arc<Runtime>> {
        std::fs::create_dir_all(&cache_dir)?;
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config)?;
        let mut linker: Linker<Host> = Linker::new(&engine);
        p1::add_to_linker_sync(&mut linker, |host| &mut host.wasi)?;
        let trampoline = Trampoline::new(&engine, linker.clone())?;
        guard::add_to_linker(&mut linker)?;
        host::add_to_linker(&mut linker)?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let runtime = Arc::new(Runtime {
            compat: hasher.finish(),
            engine,
            linker,
            trampoline,
            cache_dir,
            modules: parking_lot::Mutex::default(),
            compiling: parking_lot::Mutex::default(),
            compiled: std::sync::atomic::AtomicU64::new(0),
        });
        let weak = runtime.engine.weak();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })?;
        Ok(runtime)
    }

    /// Is this module compiled already (in memory or on disk)?
    pub fn is_compiled(&self, wasm: &[u8]) -> bool {
        let hash = blake3::hash(wasm);
        self.modules.lock().contains_key(&hash) || self.cache_path(&hash).exists()
    }

    /// What can be known of a module without compiling it, quickly: a core module that
    /// validates, exports `_start` and imports only what the sandbox provides. Blocking.
    pub fn check(&self, wasm: &[u8]) -> Result<(), ErrorBody> {
        header(wasm)?;
        let types = wasmparser::Validator::new()
            .validate_all(wasm)
            .map_err(|e| bad_module(format!("not a valid module: {e}")))?;
        let mut start = None;
        for payload in wasmparser::Parser::new(0).parse_all(wasm) {
            match payload.map_err(|e| bad_module(format!("not a valid module: {e}")))? {
                wasmparser::Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        let import =
                            import.map_err(|e| bad_module(format!("not a valid module: {e}")))?;
                        check_import(import.module, import.name)?;
                    }
                }
                wasmparser::Payload::ExportSection(reader) => {
                    for export in reader {
                        let export =
                            export.map_err(|e| bad_module(format!("not a valid module: {e}")))?;
                        if export.name == "_start" && export.kind == wasmparser::ExternalKind::Func
                        {
                            start = Some(export.index);
                        }
                    }
                }
                _ => {}
            }
        }
        let Some(start) = start else {
            return Err(bad_module(
                "the module has no `_start`: it is not a WASI command",
            ));
        };
        let types = types.as_ref();
        let start = types[types.core_function_at(start)].unwrap_func();
        if !start.params().is_empty() || !start.results().is_empty() {
            return Err(bad_module(
                "`_start` is not a function taking and returning nothing",
            ));
        }
        Ok(())
    }

    fn cache_path(&self, hash: &blake3::Hash) -> PathBuf {
        self.cache_dir
            .join(format!("{}-{:016x}.cwasm", hash.to_hex(), self.compat))
    }

    /// Compile a module, or take it from the caches; refuse what cannot run here. A module
    /// being compiled by another caller is waited for, not compiled twice. Blocking.
    pub fn load(&self, wasm: &[u8]) -> Result<(Program, bool), ErrorBody> {
        header(wasm)?;
        let hash = blake3::hash(wasm);
        if let Some(program) = self.modules.lock().get(&hash) {
            return Ok((program.clone(), true));
        }
        let turn = self.compiling.lock().entry(hash).or_default().clone();
        let loaded = {
            let _turn = turn.lock();
            // Another caller may have compiled it while this one waited.
            if let Some(program) = self.modules.lock().get(&hash) {
                return Ok((program.clone(), true));
            }
            self.compile(wasm, &hash)
        };
        self.compiling.lock().remove(&hash);
        loaded
    }

    fn compile(&self, wasm: &[u8], hash: &blake3::Hash) -> Result<(Program, bool), ErrorBody> {
        let path = self.cache_path(hash);
        let cached = path
            .exists()
            // SAFETY: files in the cache dir are written only by `serialize` below, through a
            // temp file and a rename, and never modified afterwards.
            .then(|| unsafe { Module::deserialize_file(&self.engine, &path) }.ok())
            .flatten();
        let (module, from_disk) = match cached {
            Some(module) => (module, true),
            None => {
                let module = Module::from_binary(&self.engine, wasm)
                    .map_err(|e| bad_module(format!("cannot compile the module: {e:#}")))?;
                self.compiled.fetch_add(1, Ordering::Relaxed);
                self.store_compiled(&module, &path);
                (module, false)
            }
        };
        self.check_runnable(&module)?;
        let program = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| bad_module(format!("cannot link the module: {e:#}")))?;
        let mut modules = self.modules.lock();
        if modules.len() >= MEMORY_CACHE {
            modules.clear();
        }
        modules.insert(*hash, program.clone());
        Ok((program, from_disk))
    }

    fn store_compiled(&self, module: &Module, path: &Path) {
        let tmp = path.with_extension(format!("tmp{}", rand::random::<u32>()));
        let written = module
            .serialize()
            .map_err(|e| anyhow::anyhow!("{e:#}"))
            .and_then(|bytes| Ok(std::fs::write(&tmp, bytes)?))
            .and_then(|()| Ok(std::fs::rename(&tmp, path)?));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!("cannot cache a compiled module: {e:#}");
        }
    }

    /// A command module: `_start` taking and returning nothing, and only imports we provide.
    fn check_runnable(&self, module: &Module) -> Result<(), ErrorBody> {
        match module.get_export("_start") {
            Some(ExternType::Func(f)) if f.params().len() == 0 && f.results().len() == 0 => {}
            Some(_) => {
                return Err(bad_module(
                    "`_start` is not a function taking and returning nothing",
                ));
            }
            None => {
                return Err(bad_module(
                    "the module has no `_start`: it is not a WASI command",
                ));
            }
        }
        for import in module.imports() {
            check_import(import.module(), import.name())?;
        }
        Ok(())
    }

    /// Run one job to its end. Blocking: call from a plain thread.
    pub fn run(&self, spec: RunSpec) -> Outcome {
        match self.try_run(spec) {
            Ok(outcome) => outcome,
            Err(e) => Outcome {
                ending: Ending::Trap,
                error: Some(format!("{e:#}")),
                ..Outcome::default()
            },
        }
    }

    fn try_run(&self, spec: RunSpec) -> anyhow::Result<Outcome> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.args(&spec.args)
            .stdout(spec.output.clone_for(Stream::Stdout))
            .stderr(spec.output.clone_for(Stream::Stderr));
        for (key, value) in &spec.env {
            wasi.env(key, value);
        }
        if let Some(stdin) = spec.stdin {
            wasi.stdin(wasmtime_wasi::cli::InputFile::new(stdin));
        }
        if let Some((dir, perms)) = &spec.preopen {
            wasi.preopened_dir(dir, "/", *perms)
                .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        }
        let deadline = Instant::now() + spec.timeout;
        let host = Host {
            wasi: wasi.build_p1(),
            limits: Limits {
                memory_bytes: spec.memory_bytes,
                hit: false,
            },
            guard: Guard::new(spec.budget, deadline, spec.kill.clone(), spec.scope),
            bus: spec.bus.map(|mut bus| {
                bus.deadline = deadline;
                bus
            }),
            held: Vec::new(),
        };
        let mut store = Store::new(&self.engine, host);
        store.limiter(|host| &mut host.limits);
        // Checked on every epoch tick: a kill or the wall-clock deadline interrupts the guest.
        let kill = spec.kill.clone();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if kill.load(Ordering::Relaxed) || Instant::now() >= deadline {
                return Ok(UpdateDeadline::Interrupt);
            }
            Ok(UpdateDeadline::Continue(1))
        });
        let result = spec.program.instantiate(&mut store).and_then(|instance| {
            self.trampoline.attach(&mut store, &instance)?;
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            start.call(&mut store, ())
        });
        let memory_hit = store.data().limits.hit;
        let guard = &store.data().guard;
        let files = FileEffects {
            changed: guard.changed,
            removed: guard.removed,
            quota_hit: guard.quota_hit,
        };
        let error = match result {
            Ok(()) => {
                return Ok(Outcome {
                    code: Some(0),
                    files,
                    ..Outcome::default()
                });
            }
            Err(e) => e,
        };
        if let Some(exit) = error.downcast_ref::<I32Exit>() {
            return Ok(Outcome {
                code: Some(exit.0),
                files,
                ..Outcome::default()
            });
        }
        let (ending, message) = if error.downcast_ref::<OutputLimit>().is_some() {
            (
                Ending::OutputLimit,
                "the output passed its limit".to_owned(),
            )
        } else if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            if spec.kill.load(Ordering::Relaxed) {
                (Ending::Killed, "killed".to_owned())
            } else {
                (
                    Ending::Timeout,
                    format!("no exit within {} ms", spec.timeout.as_millis()),
                )
            }
        } else if memory_hit {
            (
                Ending::MemoryLimit,
                format!(
                    "the program needed more than its {} MiB of memory",
                    spec.memory_bytes >> 20
                ),
            )
        } else {
            (Ending::Trap, format!("{error:#}"))
        };
        Ok(Outcome {
            ending,
            error: Some(message),
            files,
            ..Outcome::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_wanted_by_several_at_once_is_compiled_once() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = Runtime::new(dir.path().to_owned()).unwrap();
        let wasm =
            wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#)
                .unwrap();
        runtime.check(&wasm).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (runtime, wasm) = (runtime.clone(), wasm.clone());
                std::thread::spawn(move || runtime.load(&wasm).map(|_| ()))
            })
            .collect();
        for thread in threads {
            thread.join().unwrap().unwrap();
        }
        assert_eq!(runtime.compiled.load(Ordering::Relaxed), 1);
        assert!(runtime.is_compiled(&wasm));
    }

    #[test]
    fn what_can_be_known_without_compiling_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = Runtime::new(dir.path().to_owned()).unwrap();
        let takes = wat::parse_str(r#"(module (func (export "_start") (param i32)))"#).unwrap();
        assert!(
            runtime
                .check(&takes)
                .unwrap_err()
                .msg
                .contains("taking and returning nothing")
        );
        let sock =
            wat::parse_str(r#"(module (import "env" "socket" (func)) (func (export "_start")))"#)
                .unwrap();
        assert!(
            runtime
                .check(&sock)
                .unwrap_err()
                .msg
                .contains("env::socket")
        );
    }
}
